import { type SecurityFindings, securityHubBatch } from './asff';
import {
  type AuditException,
  applyExceptions,
  EXCEPTABLE_RULES,
  readExceptions,
  type SuppressedFinding,
} from './audit-exceptions';
import { type ReportStore, sliceReportObjects, summaryReportObject } from './audit-reports';
import {
  type AuditedKey,
  type AuditFinding,
  type AuditLimits,
  type AuditRuleId,
  auditKey,
  CONTROLS,
  declaredKeyMissing,
  keyUnreadable,
} from './audit-rules';
import { readDeclaredState } from './declared-state';
import { AwsServiceError, PreconditionFailedError } from './errors';
import { classifyKey, type KeyClass } from './key-classification';
import { holdingKeys, type LeaseDeps } from './key-lease';
import { LINEAGE, lineageStateOf } from './lineage';
import type { AliasEntry, KeyDescription, Notification, ServiceLocation, Severity, Tags } from './model';
import type { ReportedFinding } from './ocsf';
import type { Clock, IdGenerator, KeyAdmin, KeyReader, Log, Notifier } from './ports';

/** The account's keys and aliases, listed a page at a time. */
export interface FleetReader {
  listKeysPage(marker?: string): Promise<{ keyIds: string[]; nextMarker?: string }>;
  /** Every alias of the account and Region, read once per audit slice. */
  listAllAliases(): Promise<AliasEntry[]>;
}

/** The audit's read of the keys' records (`KeyRecordStore`): the keys that have one. If one is gone, an auditor must hear of it. */
export interface KeyRecordIndex {
  declaredKeyIds(): Promise<string[]>;
}

/** Hands the rest of the fleet to a further invocation. */
export interface Continuation {
  continueLater(request: AuditRequest): Promise<void>;
}

export interface AuditTotals {
  keysAudited: number;
  /** Keys per class; `unreadable` for keys the audit was denied reading before it could classify them. */
  byClass: Partial<Record<KeyClass | 'unreadable', number>>;
  findingsByRule: Partial<Record<AuditRuleId, number>>;
  bySeverity: Partial<Record<Severity, number>>;
  /** Keys with at least one finding left after remediation. */
  nonCompliantKeys: number;
  nonCompliantByRule: Partial<Record<AuditRuleId, number>>;
  remediated: number;
  /** Findings an exception in force suppressed: counted here only, never in the counts above. */
  suppressed: number;
  suppressedByRule: Partial<Record<AuditRuleId, number>>;
  /** Exceptions past their end date: their findings are open again. */
  expiredExceptions: number;
  /** Declared keys seen managed and usable so far (small: the service's own keys). */
  declaredSeen: string[];
}

export interface AuditCheckpoint {
  auditId: string;
  startedAt: string;
  /** ListKeys marker of the first page not yet audited. */
  marker: string;
  slice: number;
  totals: AuditTotals;
}

export interface AuditRequest {
  remediate: boolean;
  keyIds?: string[];
  checkpoint?: AuditCheckpoint;
}

export interface AuditReport {
  auditId: string;
  startedAt: string;
  finishedAt: string;
  /** False when the rest of the fleet was handed to a further invocation. */
  complete: boolean;
  slice: number;
  remediate: boolean;
  limits: AuditLimits;
  /** Totals over every slice so far. */
  totals: AuditTotals;
  /** This slice's findings, each with the controls it maps to (capped; see `findingsOmitted`). */
  findings: (AuditFinding & { controls: string[]; remediated?: boolean })[];
  /** This slice's findings suppressed by an exception in force, each with it (capped with `findings`). */
  suppressed: (SuppressedFinding & { controls: string[] })[];
  findingsOmitted: number;
  /** This slice's exceptions past their end date, and whether a finding of their rule is open again. */
  expiredExceptions: ExpiredException[];
  remediations: { keyId: string; detail: string }[];
  /** Keys asked for by id (`keyIds`) that do not exist in this account and Region: never audited, never dropped silently. */
  keysNotFound: string[];
  /** With Security Hub on: this slice's findings imported (open and suppressed), and those resolved. */
  securityHub?: { imported: number; resolved: number };
  /** With the audit's reports on: the `s3://` URIs of the objects this slice wrote (the last slice's summary too). */
  reportObjects?: string[];
  summary: string;
}

export type ExpiredException = AuditException & { keyId: string; reopened: boolean };

export interface AuditDeps extends LeaseDeps {
  fleet: FleetReader;
  keys: KeyReader;
  admin: KeyAdmin;
  records: KeyRecordIndex;
  continuation: Continuation;
  notifier: Notifier;
  clock: Clock;
  ids: IdGenerator;
  log: Log;
  location: ServiceLocation;
  limits: AuditLimits;
  /** Keys audited at once; the KMS client paces each API to its quota. */
  concurrency: number;
  /** Hand over to a further invocation when less than this is left after a page. */
  handOverBelowMs: number;
  /** Most findings listed in one report; the rest are counted. */
  maxFindingsListed: number;
  /** Security Hub, when the stack's `securityHubFindings` is on: every finding of every slice, uncapped. */
  securityHub?: SecurityFindings;
  /** The stack's report bucket, when its `auditReports` is on: every finding of every slice, uncapped. */
  reports?: { store: ReportStore; productVersion: string };
}

const emptyTotals = (): AuditTotals => ({
  keysAudited: 0,
  byClass: {},
  findingsByRule: {},
  bySeverity: {},
  nonCompliantKeys: 0,
  nonCompliantByRule: {},
  remediated: 0,
  suppressed: 0,
  suppressedByRule: {},
  expiredExceptions: 0,
  declaredSeen: [],
});

const increment = <K extends string>(counts: Partial<Record<K, number>>, key: K, by = 1): void => {
  counts[key] = (counts[key] ?? 0) + by;
};

/** Runs `work` over `items`, at most `limit` at a time. */
const inPool = async <T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> => {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
};

/**
 * `audit`: every customer managed key of the account and Region, classified, judged only by
 * the rules that apply to its class, at KMS's pace, page by page. A fleet too large for one
 * invocation continues from a checkpoint in the next; each key is audited exactly once.
 */
export const auditFleet = async (request: AuditRequest, deps: AuditDeps): Promise<AuditReport> => {
  const checkpoint = request.checkpoint;
  const auditId = checkpoint?.auditId ?? deps.ids.newId();
  const startedAt = checkpoint?.startedAt ?? deps.clock.now().toISOString();
  const slice = (checkpoint?.slice ?? 0) + 1;
  // A checkpoint written before exceptions existed lacks their counts: they start at zero.
  const totals = checkpoint ? { ...emptyTotals(), ...structuredClone(checkpoint.totals) } : emptyTotals();
  const findings: AuditReport['findings'] = [];
  const suppressed: AuditReport['suppressed'] = [];
  const expiredExceptions: ExpiredException[] = [];
  let findingsOmitted = 0;
  const remediations: AuditReport['remediations'] = [];
  const keysNotFound: string[] = [];
  /**
   * Every finding of this slice (open, suppressed, or remediated with what was done), for Security
   * Hub and the report bucket: the report's own list is capped. Collected only when one is on.
   */
  const exported: ReportedFinding[] = [];
  const exporting = deps.securityHub !== undefined || deps.reports !== undefined;

  const [aliases, declaredIds] = await Promise.all([deps.fleet.listAllAliases(), deps.records.declaredKeyIds()]);
  const aliasesByKey = new Map<string, string[]>();
  const targetByAlias = new Map<string, string>();
  for (const alias of aliases) {
    if (!alias.targetKeyId) continue;
    aliasesByKey.set(alias.targetKeyId, [...(aliasesByKey.get(alias.targetKeyId) ?? []), alias.aliasName]);
    targetByAlias.set(alias.aliasName, alias.targetKeyId);
  }
  const declared = new Set(declaredIds);
  const seen = new Set(totals.declaredSeen);

  /** `remediatedRules`: each rule this audit remediated on the key, with what it did. */
  const record = (found: AuditFinding[], remediatedRules: Map<AuditRuleId, string>): void => {
    for (const item of found) {
      increment(totals.findingsByRule, item.rule);
      increment(totals.bySeverity, item.severity);
      if (findings.length + suppressed.length < deps.maxFindingsListed) {
        findings.push({
          ...item,
          controls: CONTROLS[item.rule],
          ...(remediatedRules.has(item.rule) ? { remediated: true } : {}),
        });
      } else {
        findingsOmitted += 1;
      }
    }
    const open = found.filter((item) => !remediatedRules.has(item.rule));
    if (exporting) {
      exported.push(...found.map((item) => ({ ...item, remediation: remediatedRules.get(item.rule) })));
    }
    if (open.length > 0) {
      totals.nonCompliantKeys += 1;
      for (const rule of new Set(open.map((item) => item.rule))) increment(totals.nonCompliantByRule, rule);
    }
  };

  /** Suppressed findings are counted apart and listed with their exception, never dropped. */
  const recordSuppressed = (found: SuppressedFinding[]): void => {
    if (exporting) exported.push(...found);
    for (const item of found) {
      totals.suppressed += 1;
      increment(totals.suppressedByRule, item.rule);
      if (findings.length + suppressed.length < deps.maxFindingsListed) {
        suppressed.push({ ...item, controls: CONTROLS[item.rule] });
      } else {
        findingsOmitted += 1;
      }
    }
  };

  /** Only the reads the key's class needs; `undefined` for a key that is gone. */
  const readKey = async (keyId: string, progress: { keyClass?: KeyClass; tags?: Tags }) => {
    let key: KeyDescription;
    try {
      key = await deps.keys.describeKey(keyId);
    } catch (error) {
      if (error instanceof PreconditionFailedError && error.reason === 'key-not-found') {
        // Listed, then deleted before it was read: nothing left to judge. A key asked for by id
        // is another matter: whoever asked must hear that it is not there.
        if (request.keyIds) keysNotFound.push(keyId);
        return undefined;
      }
      throw error;
    }
    const { keyClass } = classifyKey(key);
    progress.keyClass = keyClass;
    if (keyClass === 'aws-managed' || keyClass === 'replica') return { key, keyClass };
    const tags = await deps.keys.listTags(key.keyId);
    progress.tags = tags;
    const declaredState = readDeclaredState(tags);
    const [rotation, history, policy] = await Promise.all([
      keyClass === 'auto-rotatable' ? deps.keys.getRotationStatus(key.keyId) : undefined,
      keyClass === 'auto-rotatable' || keyClass === 'on-demand-only' ? deps.keys.listRotations(key.keyId) : undefined,
      declaredState.managed && keyClass !== 'inactive' ? deps.admin.getKeyPolicy(key.keyId) : undefined,
    ]);
    return { key, keyClass, tags, declaredState, rotation, history, policy };
  };

  /** A key IAM or its key policy keeps the audit from reading: counted, and reported as such. */
  const recordUnreadable = (
    keyId: string,
    progress: { keyClass?: KeyClass; tags?: Tags },
    error: AwsServiceError,
  ): void => {
    totals.keysAudited += 1;
    increment(totals.byClass, progress.keyClass ?? 'unreadable');
    const managed = declared.has(keyId) || readDeclaredState(progress.tags ?? {}).managed;
    // One of the service's own keys, locked away: this finding says so, not declared-key-missing.
    if (declared.has(keyId)) seen.add(keyId);
    deps.log.warn('key unreadable', { keyId, operation: error.operation, error: error.message });
    record(
      [keyUnreadable(keyId, (aliasesByKey.get(keyId) ?? []).sort(), error.operation, managed, error.message)],
      new Map(),
    );
  };

  const auditOne = async (keyId: string): Promise<void> => {
    const progress: { keyClass?: KeyClass; tags?: Tags } = {};
    let read: Awaited<ReturnType<typeof readKey>>;
    try {
      read = await readKey(keyId, progress);
    } catch (error) {
      // A denied read is the key's own trouble: the rest of the fleet is still audited. Any
      // other failure (throttling past every retry, an outage) fails the run loudly.
      if (error instanceof AwsServiceError && error.accessDenied) return recordUnreadable(keyId, progress, error);
      throw error;
    }
    if (!read) return;
    const { key, keyClass } = read;
    totals.keysAudited += 1;
    increment(totals.byClass, keyClass);
    if (!read.tags || !read.declaredState) return;
    const { tags, declaredState } = read;

    const rotatedAt = tags[LINEAGE.rotatedAt] ? new Date(tags[LINEAGE.rotatedAt] as string) : undefined;
    const audited: AuditedKey = {
      key,
      keyClass,
      aliases: (aliasesByKey.get(key.keyId) ?? []).sort(),
      declared: declaredState,
      rotation: read.rotation,
      history: read.history,
      policy: read.policy,
      rotatedAt: rotatedAt && !Number.isNaN(rotatedAt.getTime()) ? rotatedAt : undefined,
      declaredAliasTargets: declaredState.managed
        ? Object.fromEntries(declaredState.aliases.map((alias) => [alias, targetByAlias.get(alias) ?? 'missing']))
        : undefined,
    };
    const judged = auditKey(audited, deps.limits, deps.clock.now());

    if (declared.has(key.keyId)) {
      seen.add(key.keyId);
      // A retired or rolled-back key of an alias-swap lost its declared state on purpose.
      const retired = ['retired', 'rolled-back'].includes(lineageStateOf(tags) ?? '');
      if (!retired && !(declaredState.managed && key.keyState === 'Enabled')) {
        const why = declaredState.managed ? `is ${key.keyState}` : 'is no longer tagged kms-rotation:managed=true';
        judged.push(declaredKeyMissing(key.keyId, why));
      }
    }

    // Exceptions before remediation: an excepted rule is never remediated, an expired one is as usual.
    const exceptions = readExceptions(
      { keyId: key.keyId, aliases: audited.aliases, tags },
      { exceptableRules: EXCEPTABLE_RULES, now: deps.clock.now() },
    );
    const { open: found, suppressed: excepted } = applyExceptions(judged, exceptions);
    for (const exception of exceptions.expired) {
      totals.expiredExceptions += 1;
      const reopened = found.some((item) => item.rule === exception.rule);
      expiredExceptions.push({ ...exception, keyId: key.keyId, reopened });
      deps.log.warn('exception expired', { auditId, keyId: key.keyId, rule: exception.rule, until: exception.until });
    }
    recordSuppressed(excepted);

    const remediated = new Map<AuditRuleId, string>();
    const rotationOff = found.find((item) => item.rule === 'rotation-enabled');
    if (request.remediate && declaredState.managed && rotationOff) {
      const outcome = await enableRotationUnderLease(key.keyId, declaredState.periodDays, deps);
      if (outcome.kind === 'enabled') {
        remediated.set('rotation-enabled', outcome.detail);
        totals.remediated += 1;
        remediations.push({ keyId: key.keyId, detail: outcome.detail });
        // Logged as it happens: should the run fail later, the change is on record all the same.
        deps.log.info('remediated', { auditId, keyId: key.keyId, detail: outcome.detail });
      } else if (outcome.kind === 'enabled-meanwhile') {
        // Read again under the lease: another run (the drift watch) put it back since the key was read.
        found.splice(found.indexOf(rotationOff), 1);
        deps.log.info('rotation was enabled by another run meanwhile', { auditId, keyId: key.keyId });
      } else {
        deps.log.warn(`remediation ${outcome.kind}`, { keyId: key.keyId, error: outcome.message });
        rotationOff.evidence = {
          ...rotationOff.evidence,
          [outcome.kind === 'denied' ? 'remediationDenied' : 'remediationSkipped']: outcome.message,
        };
      }
    }
    record(found, remediated);
  };

  /**
   * This slice's findings to Security Hub, each updating the finding of its key and rule; at the
   * end of a complete audit of the whole fleet, the open findings no slice found again, resolved.
   */
  const toSecurityHubSlice = async (resolveUnseen: boolean): Promise<AuditReport['securityHub']> => {
    if (!deps.securityHub) return undefined;
    const active = await deps.securityHub.activeFindings();
    // Security Hub resolves what is no longer found: a finding this audit remediated is not sent.
    const open = exported.filter((item) => item.remediation === undefined);
    const { imports, resolved } = securityHubBatch(open, active, {
      location: deps.location,
      auditId,
      startedAt,
      now: deps.clock.now(),
      resolveUnseen,
    });
    await deps.securityHub.importFindings([...imports, ...resolved]);
    deps.log.info('findings sent to Security Hub', {
      auditId,
      slice,
      imported: imports.length,
      resolved: resolved.length,
    });
    return { imported: imports.length, resolved: resolved.length };
  };

  /**
   * This slice's findings to the report bucket, as OCSF JSON and CSV; at the end of the audit
   * (`final`), its summary too. A write that fails fails the invocation (Lambda retries it).
   */
  const writeReports = async (final?: AuditReport): Promise<string[] | undefined> => {
    if (!deps.reports) return undefined;
    const objects = sliceReportObjects(exported, {
      location: deps.location,
      auditId,
      now: deps.clock.now(),
      productVersion: deps.reports.productVersion,
      startedAt,
      slice,
    });
    if (final) {
      // The audit's totals over every slice; the lists of one slice are in its own objects.
      objects.push(
        summaryReportObject({
          auditId,
          startedAt,
          finishedAt: final.finishedAt,
          slices: slice,
          remediate: request.remediate,
          limits: deps.limits,
          totals: { ...final.totals, declaredSeen: undefined },
          keysNotFound: final.keysNotFound,
          summary: final.summary,
        }),
      );
    }
    const uris: string[] = [];
    for (const object of objects) uris.push(await deps.reports.store.put(object));
    deps.log.info('audit reports written', { auditId, slice, objects: uris });
    return uris;
  };

  let marker = checkpoint?.marker;
  let handedOver = false;
  let sentBeforeHandOver: AuditReport['securityHub'];
  let writtenBeforeHandOver: string[] | undefined;
  for (;;) {
    // A key asked for twice is still audited, and counted, once.
    const page = request.keyIds
      ? { keyIds: [...new Set(request.keyIds)], nextMarker: undefined }
      : await deps.fleet.listKeysPage(marker);
    await inPool(page.keyIds, deps.concurrency, auditOne);
    marker = page.nextMarker;
    if (!marker) break;
    if (deps.remainingMs() < deps.handOverBelowMs) {
      totals.declaredSeen = [...seen];
      // Imported before the next slice starts: its end resolves what no slice of this audit found.
      sentBeforeHandOver = await toSecurityHubSlice(false);
      // Written before the next slice starts, as Security Hub: a failed write hands nothing over.
      writtenBeforeHandOver = await writeReports();
      await deps.continuation.continueLater({
        remediate: request.remediate,
        checkpoint: { auditId, startedAt, marker, slice, totals },
      });
      handedOver = true;
      break;
    }
  }

  if (!handedOver && !request.keyIds) {
    for (const keyId of declared) {
      if (!seen.has(keyId)) record([declaredKeyMissing(keyId, 'does not exist in this account and Region')], new Map());
    }
  }
  totals.declaredSeen = [...seen];
  // Resolving what this audit did not find again needs the whole fleet: not for keys asked by id.
  const securityHub = handedOver ? sentBeforeHandOver : await toSecurityHubSlice(!request.keyIds);

  const report: AuditReport = {
    auditId,
    startedAt,
    finishedAt: deps.clock.now().toISOString(),
    complete: !handedOver,
    slice,
    remediate: request.remediate,
    limits: deps.limits,
    totals,
    findings,
    suppressed,
    findingsOmitted,
    expiredExceptions,
    remediations,
    keysNotFound: keysNotFound.sort(),
    ...(securityHub ? { securityHub } : {}),
    summary: summaryOf(totals, handedOver, keysNotFound),
  };
  const reportObjects = handedOver ? writtenBeforeHandOver : await writeReports(report);
  if (reportObjects) report.reportObjects = reportObjects;
  deps.log.info(report.summary, { auditId, slice, complete: report.complete, totals });
  if (!handedOver) await deps.notifier.publish(notificationOf(report, deps));
  return report;
};

type RotationRemediation =
  | { kind: 'enabled'; detail: string }
  | { kind: 'enabled-meanwhile' }
  | { kind: 'denied' | 'key-busy'; message: string };

/**
 * Puts automatic rotation back on a managed key, holding its lease, and only if it is still off
 * once the lease is held: the drift watch may be putting it back at the same moment. A key policy
 * that denies EnableKeyRotation, or a key another run holds past the wait, leaves the finding open
 * and says why; the rest of the fleet is audited all the same.
 */
const enableRotationUnderLease = async (
  keyId: string,
  periodDays: number | undefined,
  deps: AuditDeps,
): Promise<RotationRemediation> => {
  try {
    return await holdingKeys([keyId], 'audit: enable rotation', deps, async () => {
      if ((await deps.keys.getRotationStatus(keyId)).enabled) return { kind: 'enabled-meanwhile' as const };
      await deps.admin.enableKeyRotation(keyId, periodDays);
      return {
        kind: 'enabled' as const,
        detail: `enabled automatic rotation${periodDays ? ` every ${periodDays} days` : ''}`,
      };
    });
  } catch (error) {
    if (error instanceof AwsServiceError && error.accessDenied) return { kind: 'denied', message: error.message };
    if (error instanceof PreconditionFailedError && error.reason === 'key-busy') {
      return { kind: 'key-busy', message: error.message };
    }
    throw error;
  }
};

const summaryOf = (totals: AuditTotals, handedOver: boolean, keysNotFound: readonly string[]): string => {
  const list = (counts: Partial<Record<string, number>>) =>
    Object.entries(counts)
      .map(([name, count]) => `${name} ${count}`)
      .join(', ');
  const rules = list(totals.nonCompliantByRule);
  const parts = [
    `Audited ${totals.keysAudited} keys${handedOver ? ' so far, continuing in a further invocation' : ''} (${list(totals.byClass) || 'none'})`,
    `${totals.keysAudited - totals.nonCompliantKeys} compliant, ${totals.nonCompliantKeys} non-compliant${rules ? ` (${rules})` : ''}`,
  ];
  if (totals.remediated > 0) parts.push(`${totals.remediated} remediated`);
  if (totals.suppressed > 0) {
    parts.push(
      `${totals.suppressed} finding${totals.suppressed === 1 ? '' : 's'} suppressed by exception (${list(totals.suppressedByRule)})`,
    );
  }
  if (totals.expiredExceptions > 0) {
    parts.push(`${totals.expiredExceptions} exception${totals.expiredExceptions === 1 ? '' : 's'} expired`);
  }
  if (keysNotFound.length > 0)
    parts.push(`${keysNotFound.length} asked for but not found (${keysNotFound.join(', ')})`);
  return parts.join('; ');
};

const notificationOf = (report: AuditReport, deps: AuditDeps): Notification => ({
  type: 'AuditCompleted',
  severity:
    (report.totals.bySeverity.CRITICAL ?? 0) > 0
      ? 'CRITICAL'
      : report.totals.nonCompliantKeys > 0 || report.keysNotFound.length > 0 || report.totals.expiredExceptions > 0
        ? 'WARNING'
        : 'INFO',
  keyId: '*',
  keyArn: '*',
  aliases: [],
  account: deps.location.account,
  region: deps.location.region,
  occurredAt: report.finishedAt,
  summary: report.summary,
  details: {
    auditId: report.auditId,
    slices: report.slice,
    totals: { ...report.totals, declaredSeen: undefined },
    limits: report.limits,
    topFindings: report.findings
      .slice(0, 20)
      .map(({ rule, severity, keyId, aliases, summary }) => ({ rule, severity, keyId, aliases, summary })),
    remediations: report.remediations,
    ...(report.keysNotFound.length > 0 ? { keysNotFound: report.keysNotFound } : {}),
    // Named, so that the owner of each lapsed exception can be chased: at most 20, as topFindings.
    ...(report.expiredExceptions.length > 0 ? { expiredExceptions: report.expiredExceptions.slice(0, 20) } : {}),
  },
});
