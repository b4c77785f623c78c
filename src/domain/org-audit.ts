import { type AuditReport, type AuditTotals, auditSeverityOf } from './audit-fleet';
import type { AuditRuleId } from './audit-rules';
import type { Notification, ServiceLocation, Severity } from './model';
import { notificationOf } from './notification';

/**
 * The organization audit (docs/org-audit.md): `orgAudit` lists the ACTIVE accounts of the
 * organization units, makes one item per account and Region, records the run and queues the
 * items; `orgAuditItem` audits one item, records its result, and the item that completes the run
 * combines every item into one organization report and one `AuditCompleted`.
 */

/** An account of the organization, with the OU path it was found under (`r-ab12/ou-ab12-cdefgh12`). */
export interface OrgAccount {
  account: string;
  name?: string;
  ouPath: string;
}

/** One account and Region of a run: the unit of work of `orgAuditItem`. */
export interface OrgAuditItem {
  runId: string;
  account: string;
  region: string;
  ouPath?: string;
}

/** `<account>/<region>`: an item's name in the run table, the report and the notification. */
export const itemNameOf = (item: { account: string; region: string }): string => `${item.account}/${item.region}`;

/**
 * Every account × every Region, each account once (an account found under two listed OUs keeps
 * the first path), in a stable order: accounts, then Regions, as given.
 */
export const itemsOf = (runId: string, accounts: readonly OrgAccount[], regions: readonly string[]): OrgAuditItem[] => {
  const seen = new Set<string>();
  const items: OrgAuditItem[] = [];
  for (const account of accounts) {
    if (seen.has(account.account)) continue;
    seen.add(account.account);
    for (const region of new Set(regions))
      items.push({ runId, account: account.account, region, ouPath: account.ouPath });
  }
  return items;
};

/** What one item's audit found: what the run table keeps of its `AuditReport`. */
export interface ItemCounts {
  keysAudited: number;
  nonCompliantKeys: number;
  /** Non-compliant keys per rule (a key is counted once per rule it breaks). */
  nonCompliantByRule: Partial<Record<AuditRuleId, number>>;
  findingsByRule: Partial<Record<AuditRuleId, number>>;
  bySeverity: Partial<Record<Severity, number>>;
  byClass: Record<string, number>;
  remediated: number;
  severity: Severity;
  summary: string;
}

export const itemCountsOf = (report: AuditReport): ItemCounts => {
  const totals: AuditTotals = report.totals;
  return {
    keysAudited: totals.keysAudited,
    nonCompliantKeys: totals.nonCompliantKeys,
    nonCompliantByRule: { ...totals.nonCompliantByRule },
    findingsByRule: { ...totals.findingsByRule },
    bySeverity: { ...totals.bySeverity },
    byClass: { ...(totals.byClass as Record<string, number>) },
    remediated: totals.remediated,
    severity: auditSeverityOf(report),
    summary: report.summary,
  };
};

/** An item as the run table has it once it is finished: audited, or failed for good. */
export type FinishedItem = {
  account: string;
  region: string;
  ouPath?: string;
  attempts: number;
} & ({ outcome: 'audited'; counts: ItemCounts } | { outcome: 'failed'; error: string });

/**
 * What a received item does (docs/org-audit.md#failure-rules): audit it while it has attempts
 * left; on the receive after its last attempt, no audit: it is recorded failed with its last
 * error and counted done. `receiveCount` is SQS's `ApproximateReceiveCount` (1 on the first receive).
 */
export const attemptOf = (
  receiveCount: number,
  attempts: number,
): { action: 'audit'; attempt: number } | { action: 'give-up'; attempts: number } =>
  receiveCount > attempts ? { action: 'give-up', attempts } : { action: 'audit', attempt: receiveCount };

const SEVERITY_RANK: Record<Severity, number> = { INFO: 0, WARNING: 1, CRITICAL: 2 };
export const worstOf = (severities: readonly Severity[]): Severity =>
  severities.reduce<Severity>((worst, next) => (SEVERITY_RANK[next] > SEVERITY_RANK[worst] ? next : worst), 'INFO');

/** Counts of a group of audited items (an account, a Region, the whole run). */
export interface GroupTotals {
  items: number;
  failedItems: number;
  keysAudited: number;
  nonCompliantKeys: number;
  nonCompliantByRule: Partial<Record<AuditRuleId, number>>;
  findingsByRule: Partial<Record<AuditRuleId, number>>;
}

const emptyGroup = (): GroupTotals => ({
  items: 0,
  failedItems: 0,
  keysAudited: 0,
  nonCompliantKeys: 0,
  nonCompliantByRule: {},
  findingsByRule: {},
});

const addCounts = <K extends string>(into: Partial<Record<K, number>>, from: Partial<Record<K, number>>): void => {
  for (const [name, count] of Object.entries(from) as [K, number][]) into[name] = (into[name] ?? 0) + count;
};

const addItem = (group: GroupTotals, item: FinishedItem): void => {
  group.items += 1;
  if (item.outcome === 'failed') {
    group.failedItems += 1;
    return;
  }
  group.keysAudited += item.counts.keysAudited;
  group.nonCompliantKeys += item.counts.nonCompliantKeys;
  addCounts(group.nonCompliantByRule, item.counts.nonCompliantByRule);
  addCounts(group.findingsByRule, item.counts.findingsByRule);
};

/** The run as `orgAudit` recorded it. */
export interface OrgAuditRun {
  runId: string;
  startedAt: string;
  expected: number;
}

/** The one organization report of a run: per account, per Region, per rule, and every failed item by name. */
export interface OrgAuditReport {
  runId: string;
  startedAt: string;
  finishedAt: string;
  expected: number;
  severity: Severity;
  totals: GroupTotals;
  byAccount: Record<string, GroupTotals & { ouPath?: string }>;
  byRegion: Record<string, GroupTotals>;
  /** Every item, by `<account>/<region>`: its counts, or its failure. */
  items: Record<
    string,
    { ouPath?: string; attempts: number } & (
      | {
          outcome: 'audited';
          keysAudited: number;
          nonCompliantKeys: number;
          nonCompliantByRule: GroupTotals['nonCompliantByRule'];
          severity: Severity;
        }
      | { outcome: 'failed'; error: string }
    )
  >;
  failedItems: { item: string; account: string; region: string; ouPath?: string; attempts: number; error: string }[];
  summary: string;
}

/**
 * Combines every finished item of a run into its report. Refuses (throws) when the items are not
 * exactly the run's expected count: a report never reads clean with an item missing.
 */
export const combineOrgReport = (
  run: OrgAuditRun,
  items: readonly FinishedItem[],
  finishedAt: string,
): OrgAuditReport => {
  if (items.length !== run.expected) {
    throw new Error(`Run ${run.runId} expects ${run.expected} items and has ${items.length} finished: not combined`);
  }
  const sorted = [...items].sort((a, b) => itemNameOf(a).localeCompare(itemNameOf(b)));
  const totals = emptyGroup();
  const byAccount: OrgAuditReport['byAccount'] = {};
  const byRegion: OrgAuditReport['byRegion'] = {};
  const reportItems: OrgAuditReport['items'] = {};
  const failedItems: OrgAuditReport['failedItems'] = [];
  const severities: Severity[] = [];
  for (const item of sorted) {
    const name = itemNameOf(item);
    addItem(totals, item);
    byAccount[item.account] ??= { ...emptyGroup(), ...(item.ouPath ? { ouPath: item.ouPath } : {}) };
    addItem(byAccount[item.account] as GroupTotals, item);
    byRegion[item.region] ??= emptyGroup();
    addItem(byRegion[item.region] as GroupTotals, item);
    const where = { ...(item.ouPath ? { ouPath: item.ouPath } : {}), attempts: item.attempts };
    if (item.outcome === 'failed') {
      // A part of the organization nobody audited is never INFO.
      severities.push('WARNING');
      reportItems[name] = { ...where, outcome: 'failed', error: item.error };
      failedItems.push({ item: name, account: item.account, region: item.region, ...where, error: item.error });
    } else {
      severities.push(item.counts.severity);
      reportItems[name] = {
        ...where,
        outcome: 'audited',
        keysAudited: item.counts.keysAudited,
        nonCompliantKeys: item.counts.nonCompliantKeys,
        nonCompliantByRule: item.counts.nonCompliantByRule,
        severity: item.counts.severity,
      };
    }
  }
  const rules = Object.entries(totals.nonCompliantByRule)
    .map(([rule, count]) => `${rule} ${count}`)
    .join(', ');
  const parts = [
    `Organization audit of ${sorted.length} account-Regions (${Object.keys(byAccount).length} accounts, ${Object.keys(byRegion).length} Regions)`,
    `${totals.keysAudited} keys audited, ${totals.keysAudited - totals.nonCompliantKeys} compliant, ${totals.nonCompliantKeys} non-compliant${rules ? ` (${rules})` : ''}`,
  ];
  if (failedItems.length > 0) {
    parts.push(`${failedItems.length} failed, not audited: ${failedItems.map((failed) => failed.item).join(', ')}`);
  }
  return {
    runId: run.runId,
    startedAt: run.startedAt,
    finishedAt,
    expected: run.expected,
    severity: worstOf(severities),
    totals,
    byAccount,
    byRegion,
    items: reportItems,
    failedItems,
    summary: parts.join('; '),
  };
};

/** Most failed items named in the notification; the report object names them all. */
export const MAX_FAILED_ITEMS_NOTIFIED = 100;

/** The one `AuditCompleted` of an organization run, sent from the central account and Region. */
export const orgAuditCompleted = (report: OrgAuditReport, where: ServiceLocation): Notification =>
  notificationOf({
    type: 'AuditCompleted',
    severity: report.severity,
    about: 'fleet',
    where,
    at: report.finishedAt,
    summary: report.summary,
    details: {
      organization: true,
      runId: report.runId,
      startedAt: report.startedAt,
      totals: report.totals,
      byAccount: report.byAccount,
      byRegion: report.byRegion,
      byRule: report.totals.nonCompliantByRule,
      failedItems: report.failedItems.slice(0, MAX_FAILED_ITEMS_NOTIFIED),
      ...(report.failedItems.length > MAX_FAILED_ITEMS_NOTIFIED
        ? { failedItemsOmitted: report.failedItems.length - MAX_FAILED_ITEMS_NOTIFIED }
        : {}),
    },
  });

/** `org-audit-reports/<yyyy>/<mm>/<dd>/<runId>.json`: the organization report's object in the report bucket. */
export const orgReportKeyOf = (runId: string, startedAt: string): string =>
  `org-audit-reports/${new Date(startedAt).toISOString().slice(0, 10).split('-').join('/')}/${runId}.json`;
