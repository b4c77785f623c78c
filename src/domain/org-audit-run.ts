import type { AuditReport } from './audit-fleet';
import type { ReportStore } from './audit-reports';
import { describeError } from './errors';
import type { ServiceLocation } from './model';
import {
  attemptOf,
  combineOrgReport,
  type FinishedItem,
  itemCountsOf,
  itemNameOf,
  itemsOf,
  type OrgAccount,
  type OrgAuditItem,
  type OrgAuditReport,
  type OrgAuditRun,
  orgAuditCompleted,
  orgReportKeyOf,
} from './org-audit';
import type { Clock, IdGenerator, Log, Notifier } from './ports';

/** The run table (src/adapters/dynamodb-org-audit-runs.ts). */
export interface OrgAuditRuns {
  createRun(run: OrgAuditRun): Promise<void>;
  recordSent(runId: string, sent: number): Promise<void>;
  recordFailedAttempt(item: OrgAuditItem, attempt: number, error: string): Promise<void>;
  itemState(item: OrgAuditItem): Promise<{ finished: boolean; lastError?: string; attempts?: number }>;
  finishItem(runId: string, finished: FinishedItem): Promise<'counted' | 'already'>;
  claimReport(runId: string, claimant: string): Promise<boolean>;
  markReported(runId: string, at: string): Promise<void>;
  finishedItems(runId: string): Promise<FinishedItem[]>;
  run(runId: string): Promise<(OrgAuditRun & { done: number; reportedAt?: string }) | undefined>;
}

export interface OrgAccountDirectory {
  activeAccountsUnder(parentIds: readonly string[]): Promise<OrgAccount[]>;
}

export interface OrgAuditQueue {
  sendItems(
    items: readonly OrgAuditItem[],
  ): Promise<{ sent: OrgAuditItem[]; unsent: { item: OrgAuditItem; error: string }[] }>;
}

/** What reporting a finished run needs: the run table, the topic, the report bucket when on. */
export interface OrgReportDeps {
  runs: OrgAuditRuns;
  notifier: Notifier;
  reports?: ReportStore;
  clock: Clock;
  log: Log;
  /** The central account and Region: where the organization's `AuditCompleted` comes from. */
  location: ServiceLocation;
}

/**
 * Once every item of the run is done, exactly one caller (the one whose claim succeeds; the same
 * message again after a crash may claim again) combines the items into the organization report,
 * writes it to the report bucket when on, and sends the one `AuditCompleted`.
 */
export const reportIfComplete = async (
  runId: string,
  claimant: string,
  deps: OrgReportDeps,
): Promise<OrgAuditReport | undefined> => {
  if (!(await deps.runs.claimReport(runId, claimant))) return undefined;
  const run = await deps.runs.run(runId);
  if (!run) throw new Error(`Run ${runId} has no row in the run table`);
  const report = combineOrgReport(run, await deps.runs.finishedItems(runId), deps.clock.now().toISOString());
  if (deps.reports) {
    const uri = await deps.reports.put({
      key: orgReportKeyOf(runId, run.startedAt),
      body: JSON.stringify(report),
      contentType: 'application/json',
    });
    deps.log.info('organization audit report written', { runId, uri });
  }
  await deps.notifier.publish(orgAuditCompleted(report, deps.location));
  await deps.runs.markReported(runId, report.finishedAt);
  deps.log.info(report.summary, { runId, severity: report.severity, totals: report.totals });
  return report;
};

export interface OrgFanOutDeps extends OrgReportDeps {
  accounts: OrgAccountDirectory;
  queue: OrgAuditQueue;
  ids: IdGenerator;
  organizationUnitIds: readonly string[];
  /** The Regions to audit in each account (the stage's `organizationRegions`, or the central Region). */
  regions: readonly string[];
}

export interface OrgFanOutResult {
  runId?: string;
  dryRun: boolean;
  accounts: number;
  regions: string[];
  expected: number;
  sent: number;
  /** Items that could not be sent to the queue: recorded failed, named in the report. */
  unsent: string[];
  items?: string[];
  summary: string;
}

/**
 * `orgAudit`: lists the accounts, records the run with its expected item count, then queues one
 * message per item. Items that cannot be sent for good are recorded failed with the reason (so the
 * run still completes and names them) and the run records how many were sent.
 */
export const fanOut = async (request: { dryRun: boolean }, deps: OrgFanOutDeps): Promise<OrgFanOutResult> => {
  const accounts = await deps.accounts.activeAccountsUnder(deps.organizationUnitIds);
  const runId = deps.ids.newId();
  const items = itemsOf(runId, accounts, deps.regions);
  const accountCount = new Set(items.map((item) => item.account)).size;
  if (request.dryRun) {
    return {
      dryRun: true,
      accounts: accountCount,
      regions: [...deps.regions],
      expected: items.length,
      sent: 0,
      unsent: [],
      items: items.map(itemNameOf),
      summary: `Dry run: would audit ${items.length} account-Regions (${accountCount} accounts × ${deps.regions.length} Regions); nothing recorded, nothing sent`,
    };
  }
  if (items.length === 0) {
    // Never a clean report of nothing: no run, and the result says why.
    return {
      dryRun: false,
      accounts: 0,
      regions: [...deps.regions],
      expected: 0,
      sent: 0,
      unsent: [],
      summary: `No ACTIVE account under ${deps.organizationUnitIds.join(', ')}: nothing audited, no run recorded`,
    };
  }
  const startedAt = deps.clock.now().toISOString();
  await deps.runs.createRun({ runId, startedAt, expected: items.length });
  const outcome = await deps.queue.sendItems(items);
  await deps.runs.recordSent(runId, outcome.sent.length);
  for (const { item, error } of outcome.unsent) {
    await deps.runs.finishItem(runId, {
      account: item.account,
      region: item.region,
      ...(item.ouPath ? { ouPath: item.ouPath } : {}),
      attempts: 0,
      outcome: 'failed',
      error: `never sent to the queue: ${error}`,
    });
  }
  const unsent = outcome.unsent.map(({ item }) => itemNameOf(item));
  if (unsent.length > 0) {
    deps.log.error('organization audit items not sent', { runId, unsent });
    // The unsent items may be the last ones done: then this run's report is ours to send.
    await reportIfComplete(runId, `orgAudit ${runId}`, deps);
  }
  return {
    runId,
    dryRun: false,
    accounts: accountCount,
    regions: [...deps.regions],
    expected: items.length,
    sent: outcome.sent.length,
    unsent,
    summary:
      `Organization audit ${runId}: ${items.length} account-Regions (${accountCount} accounts × ${deps.regions.length} Regions), ${outcome.sent.length} queued` +
      (unsent.length > 0 ? `; ${unsent.length} could not be sent and are reported failed: ${unsent.join(', ')}` : ''),
  };
};

export interface OrgItemDeps extends OrgReportDeps {
  /** Attempts per item before it is reported failed (`orgAuditAttempts`). */
  attempts: number;
  /** Audits one account and Region, without its own `AuditCompleted`. */
  audit(item: OrgAuditItem): Promise<AuditReport>;
}

export type ItemOutcome =
  | { item: string; outcome: 'audited' | 'failed'; counted: boolean; reported: boolean }
  | { item: string; outcome: 'retry'; error: string };

/**
 * `orgAuditItem`, one message: an attempt left, audit the item; a failed attempt records its error
 * on the item's row and is retried by the queue (`retry`); the receive after the last attempt
 * audits nothing and finishes the item failed with its last error. A finished item counts done
 * once (a redelivered message changes nothing); the item that completes the run reports it.
 */
export const handleItem = async (
  item: OrgAuditItem,
  received: { messageId: string; receiveCount: number },
  deps: OrgItemDeps,
): Promise<ItemOutcome> => {
  const name = itemNameOf(item);
  const where = { account: item.account, region: item.region, ...(item.ouPath ? { ouPath: item.ouPath } : {}) };
  const state = await deps.runs.itemState(item);
  if (state.finished) {
    // Redelivered after it was counted: only the report may be left to send.
    const reported = (await reportIfComplete(item.runId, received.messageId, deps)) !== undefined;
    return { item: name, outcome: 'audited', counted: false, reported };
  }
  const decision = attemptOf(received.receiveCount, deps.attempts);
  let finished: FinishedItem;
  if (decision.action === 'give-up') {
    finished = {
      ...where,
      attempts: state.attempts ?? decision.attempts,
      outcome: 'failed',
      error: state.lastError ?? 'no attempt recorded an error',
    };
  } else {
    try {
      const report = await deps.audit(item);
      finished = { ...where, attempts: decision.attempt, outcome: 'audited', counts: itemCountsOf(report) };
    } catch (error) {
      const message = describeError(error);
      await deps.runs.recordFailedAttempt(item, decision.attempt, message);
      deps.log.warn('organization audit item failed', { item: name, attempt: decision.attempt, error: message });
      return { item: name, outcome: 'retry', error: message };
    }
  }
  const counted = (await deps.runs.finishItem(item.runId, finished)) === 'counted';
  const reported = (await reportIfComplete(item.runId, received.messageId, deps)) !== undefined;
  return { item: name, outcome: finished.outcome, counted, reported };
};
