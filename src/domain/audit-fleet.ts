import { type SecurityFindings, securityHubBatch, sendFindings } from './asff';
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
import { type DeclaredState, readDeclaredState } from './declared-state';
import { AwsServiceError, PreconditionFailedError } from './errors';
import { importedMaterialExpiring, importedMaterialExpiry } from './imported-material';
import { classifyKey, type KeyClass } from './key-classification';
import { holdingKeys, type LeaseDeps } from './key-lease';
import { LINEAGE, lineageStateOf, SELF_TEST_TAG } from './lineage';
import type { AliasEntry, KeyDescription, Notification, ServiceLocation, Severity, Tags } from './model';
import { notificationOf } from './notification';
import type { ReportedFinding } from './ocsf';
import type {
  Clock,
  Digest,
  IdGenerator,
  KeyAdmin,
  KeyCrypto,
  KeyReader,
  KeyRecordStore,
  Log,
  Notifier,
  RandomSource,
  ReplicaReader,
} from './ports';
import { RECONCILIATION_TOLERANCE_MS, type Reconciliation, reconcileRotations } from './reconcile-rotations';
import { isMultiRegionPrimary, type ReplicaJudgement, watchReplicas } from './replica-material';
import { type RotationSchedule, rotationDue, rotationDueIn, rotationScheduleOf } from './rotation-budget';

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
  /** Rotations whose event was lost, validated by this audit (src/domain/reconcile-rotations.ts), and how it went. */
  reconciled: number;
  reconcileFailed: number;
  /** Rotations the audit could not validate this time (a throttled read, a key held by another run): the next audit tries again. */
  reconcileUnfinished: number;
  /** Per-key notifications sent (`ImportedMaterialExpiring`, `RotationDue`), by type. */
  keyNotifications?: Partial<Record<KeyNotificationType, number>>;
}

/** The notifications the audit sends about one key (docs/audit.md#imported-material-and-rotation-budget). */
export type KeyNotificationType = 'ImportedMaterialExpiring' | 'RotationDue';

/** How far ahead the audit warns of expiring imported material and of a rotation falling due. */
export interface ScheduleSettings {
  importExpiryWarningDays: number;
  rotationDueWarningDays: number;
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
  /** A member account and Region of the organization to audit (organization mode); unset, the function's own. */
  account?: string;
  region?: string;
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
  /**
   * With `schedule` set: this slice's keys' on-demand rotations used and left and their next
   * rotation (capped at `maxFindingsListed`; see `schedulesOmitted`).
   */
  schedules?: RotationSchedule[];
  schedulesOmitted?: number;
  remediations: { keyId: string; detail: string }[];
  /** This slice's reconciled rotations, each with its validation's outcome (capped with `findings`). */
  reconciliations: Reconciliation[];
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
  /** Per-key rotation budget and schedule, and their notifications; unset, neither is reported. */
  schedule?: ScheduleSettings;
  /** With it, the audit reconciles managed keys' rotations and checks multi-Region primaries' replicas. */
  rotations?: AuditRotationDeps;
  /**
   * `item`: one account-Region of an organization audit (docs/org-audit.md): no `AuditCompleted` of
   * its own (the organization run sends one for all its items), and no hand-over to a further
   * invocation. Unset: the audit of one account and Region, as always.
   */
  orgItem?: boolean;
}

/** What reconciling rotations (onRotation's validation) and remembering replica lag need beyond the audit's reads. */
export interface AuditRotationDeps {
  /** The keys' records, read and written (`KeyRecordStore`). */
  store: KeyRecordStore;
  crypto: KeyCrypto;
  random: RandomSource;
  digest: Digest;
  /** DescribeKey in other Regions, for a multi-Region primary's replicas. */
  replicas?: ReplicaReader;
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
  reconciled: 0,
  reconcileFailed: 0,
  reconcileUnfinished: 0,
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
 *
 * Four stages, each a named function below: enumerate (`readFleet`, `nextPage`), classify
 * (`classifyAndRead`), judge (`judgeKey`, `applyKeyExceptions`, `remediateKey`), report (`tally`,
 * `toSecurityHubSlice`, `writeReports`, `finishSlice`). One slice's state lives in its `Slice`.
 */
export const auditFleet = async (request: AuditRequest, deps: AuditDeps): Promise<AuditReport> => {
  const slice = startSlice(request, deps);
  const fleet = await readFleet(deps);
  let marker = request.checkpoint?.marker;
  for (;;) {
    const page = await nextPage(request, deps, marker);
    await inPool(page.keyIds, deps.concurrency, (keyId) => auditKeyOf(keyId, request, deps, slice, fleet));
    marker = page.nextMarker;
    if (!marker) break;
    if (deps.remainingMs() < deps.handOverBelowMs) return handOver(marker, request, deps, slice);
  }
  return finishSlice(request, deps, slice, fleet);
};

/** What one slice has found so far: the totals over every slice, and this slice's own lists. */
interface Slice {
  auditId: string;
  startedAt: string;
  slice: number;
  totals: AuditTotals;
  findings: AuditReport['findings'];
  suppressed: AuditReport['suppressed'];
  findingsOmitted: number;
  expiredExceptions: ExpiredException[];
  remediations: AuditReport['remediations'];
  reconciliations: Reconciliation[];
  keysNotFound: string[];
  /** Declared keys seen managed and usable, over every slice. */
  seen: Set<string>;
  /**
   * Every finding of this slice (open, suppressed, or remediated with what was done), for Security
   * Hub and the report bucket: the report's own list is capped. Collected only when one is on.
   */
  exported: ReportedFinding[];
  exporting: boolean;
  schedules: RotationSchedule[];
  schedulesOmitted: number;
}

/** The fleet as read once per slice: every alias, and the keys the service keeps records of. */
interface Fleet {
  aliasesByKey: Map<string, string[]>;
  targetByAlias: Map<string, string>;
  declared: Set<string>;
}

/** A fresh slice, or the next one of the audit its checkpoint carries on. */
const startSlice = (request: AuditRequest, deps: AuditDeps): Slice => {
  const checkpoint = request.checkpoint;
  // A checkpoint written before exceptions existed lacks their counts: they start at zero.
  const totals = checkpoint ? { ...emptyTotals(), ...structuredClone(checkpoint.totals) } : emptyTotals();
  return {
    auditId: checkpoint?.auditId ?? deps.ids.newId(),
    startedAt: checkpoint?.startedAt ?? deps.clock.now().toISOString(),
    slice: (checkpoint?.slice ?? 0) + 1,
    totals,
    findings: [],
    suppressed: [],
    findingsOmitted: 0,
    expiredExceptions: [],
    remediations: [],
    reconciliations: [],
    keysNotFound: [],
    seen: new Set(totals.declaredSeen),
    exported: [],
    exporting: deps.securityHub !== undefined || deps.reports !== undefined,
    schedules: [],
    schedulesOmitted: 0,
  };
};

// --- enumerate ---------------------------------------------------------------------------------

/** Every alias of the account (read once, not per key) and the keys the service keeps records of. */
const readFleet = async (deps: AuditDeps): Promise<Fleet> => {
  const [aliases, declaredIds] = await Promise.all([deps.fleet.listAllAliases(), deps.records.declaredKeyIds()]);
  const aliasesByKey = new Map<string, string[]>();
  const targetByAlias = new Map<string, string>();
  for (const alias of aliases) {
    if (!alias.targetKeyId) continue;
    aliasesByKey.set(alias.targetKeyId, [...(aliasesByKey.get(alias.targetKeyId) ?? []), alias.aliasName]);
    targetByAlias.set(alias.aliasName, alias.targetKeyId);
  }
  return { aliasesByKey, targetByAlias, declared: new Set(declaredIds) };
};

/** The keys asked for by id (a key asked for twice is audited, and counted, once), or the next page of the fleet. */
const nextPage = (
  request: AuditRequest,
  deps: AuditDeps,
  marker: string | undefined,
): Promise<{ keyIds: string[]; nextMarker?: string }> =>
  request.keyIds
    ? Promise.resolve({ keyIds: [...new Set(request.keyIds)], nextMarker: undefined })
    : deps.fleet.listKeysPage(marker);

// --- classify ----------------------------------------------------------------------------------

/** What the audit learned of a key before it failed to read the rest (for a key it may not read). */
interface Progress {
  keyClass?: KeyClass;
  tags?: Tags;
}

/** The key's class, and only the reads that class needs; `undefined` for a key that is gone. */
const classifyAndRead = async (
  keyId: string,
  request: AuditRequest,
  deps: AuditDeps,
  slice: Slice,
  progress: Progress,
) => {
  let key: KeyDescription;
  try {
    key = await deps.keys.describeKey(keyId);
  } catch (error) {
    if (error instanceof PreconditionFailedError && error.reason === 'key-not-found') {
      // Listed, then deleted before it was read: nothing left to judge. A key asked for by id
      // is another matter: whoever asked must hear that it is not there.
      if (request.keyIds) slice.keysNotFound.push(keyId);
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

/** One key, through every stage: classified and read, judged, excepted, remediated, tallied. */
const auditKeyOf = async (
  keyId: string,
  request: AuditRequest,
  deps: AuditDeps,
  slice: Slice,
  fleet: Fleet,
): Promise<void> => {
  const progress: Progress = {};
  let read: Awaited<ReturnType<typeof classifyAndRead>>;
  try {
    read = await classifyAndRead(keyId, request, deps, slice, progress);
  } catch (error) {
    // A denied read is the key's own trouble: the rest of the fleet is still audited. Any
    // other failure (throttling past every retry, an outage) fails the run loudly.
    if (error instanceof AwsServiceError && error.accessDenied)
      return tallyUnreadable(keyId, progress, error, deps, slice, fleet);
    throw error;
  }
  if (!read) return;
  slice.totals.keysAudited += 1;
  increment(slice.totals.byClass, read.keyClass);
  if (!read.tags || !read.declaredState) return;
  const { key, tags, declaredState } = read;
  const audited: AuditedKey = {
    key,
    keyClass: read.keyClass,
    aliases: (fleet.aliasesByKey.get(key.keyId) ?? []).sort(),
    declared: declaredState,
    rotation: read.rotation,
    history: read.history,
    policy: read.policy,
    rotatedAt: rotatedAtOf(tags),
    declaredAliasTargets: declaredState.managed
      ? Object.fromEntries(declaredState.aliases.map((alias) => [alias, fleet.targetByAlias.get(alias) ?? 'missing']))
      : undefined,
  };
  await scheduleKey(audited, deps, slice);
  const judged = judgeKey(audited, declaredState, tags, deps, slice, fleet);
  judged.push(...(await followRotations(audited, tags, deps, slice)));
  const found = applyKeyExceptions(judged, audited, tags, deps, slice);
  const remediated = await remediateKey(found, key.keyId, declaredState, request, deps, slice);
  tally(found, remediated, deps, slice);
};

/**
 * A managed, enabled key's rotations since its last validated one, validated as `onRotation`
 * would (reconciliation: an event lost is a rotation never validated); then, for a multi-Region
 * primary, its replicas' material. Self-test keys are left to their run. Returns the findings.
 */
const followRotations = async (
  audited: AuditedKey,
  tags: Tags,
  deps: AuditDeps,
  slice: Slice,
): Promise<AuditFinding[]> => {
  const extra = deps.rotations;
  const { key } = audited;
  if (!extra || !audited.declared?.managed || key.keyState !== 'Enabled' || tags[SELF_TEST_TAG] !== undefined) {
    return [];
  }
  if (audited.history) {
    const reconciled = await reconcileRotations(key, audited.history, {
      ...deps,
      ...extra,
      records: extra.store,
      toleranceMs: RECONCILIATION_TOLERANCE_MS,
    });
    for (const item of reconciled) {
      if (item.outcome === 'validated') slice.totals.reconciled += 1;
      if (item.outcome === 'failed') slice.totals.reconcileFailed += 1;
      if (item.outcome === 'unfinished') slice.totals.reconcileUnfinished += 1;
      if (slice.reconciliations.length < deps.maxFindingsListed) slice.reconciliations.push(item);
    }
  }
  // Only keys whose material rotates (their history was read) have a current material to compare.
  return extra.replicas && audited.history && isMultiRegionPrimary(key)
    ? auditReplicas(audited, extra, extra.replicas, deps, slice)
    : [];
};

/**
 * A multi-Region primary's replicas, under the key's lease (their lag is kept in the key's record,
 * which other runs write too): a lag first seen is WARNING, one already on record before this audit
 * began CRITICAL; a replica not compared (unreadable, material not reported) is a WARNING of its
 * own, never taken for in step. Each lag is also told (`ReplicaMaterialLagging`).
 */
const auditReplicas = async (
  audited: AuditedKey,
  extra: AuditRotationDeps,
  replicas: ReplicaReader,
  deps: AuditDeps,
  slice: Slice,
): Promise<AuditFinding[]> => {
  const { key } = audited;
  const finding = (severity: Severity, summary: string, evidence: Record<string, unknown>): AuditFinding => ({
    rule: 'replica-material',
    severity,
    keyId: key.keyId,
    aliases: audited.aliases,
    summary,
    evidence,
  });
  let judgement: ReplicaJudgement;
  try {
    judgement = await holdingKeys([key.keyId], 'audit: replica material', deps, async () => {
      const record = await extra.store.load(key.keyId);
      const watched = await watchReplicas(
        key,
        audited.declared?.aliases ?? [],
        record,
        { kind: 'audit', auditId: slice.auditId },
        { ...deps, replicas },
        new Date(slice.startedAt),
      );
      if (JSON.stringify(watched.replicaLag) !== JSON.stringify(record.replicaLag ?? {})) {
        await extra.store.save(key.keyId, { ...record, replicaLag: watched.replicaLag });
      }
      return watched;
    });
  } catch (error) {
    if (!(error instanceof PreconditionFailedError && error.reason === 'key-busy')) throw error;
    return [finding('WARNING', `replicas of ${key.keyId} not checked: ${error.message}`, { replicasChecked: false })];
  }
  return [
    ...judgement.lagging.map((replica) =>
      finding(
        replica.severity,
        replica.severity === 'CRITICAL'
          ? `replica of ${key.keyId} in ${replica.region} still behind its primary's key material (since ${replica.firstSeen})`
          : `replica of ${key.keyId} in ${replica.region} behind its primary's key material`,
        {
          region: replica.region,
          replicaArn: replica.arn,
          primaryMaterialId: replica.primaryMaterialId,
          replicaMaterialId: replica.replicaMaterialId,
          firstSeen: replica.firstSeen,
        },
      ),
    ),
    ...judgement.unknown.map((replica) =>
      finding('WARNING', `replica of ${key.keyId} in ${replica.region} not compared: ${replica.detail}`, {
        region: replica.region,
        replicaArn: replica.arn,
        status: replica.status,
      }),
    ),
  ];
};

/** When the key took over in an alias-swap (its lineage tag), if it says so readably. */
const rotatedAtOf = (tags: Tags): Date | undefined => {
  const rotatedAt = tags[LINEAGE.rotatedAt] ? new Date(tags[LINEAGE.rotatedAt] as string) : undefined;
  return rotatedAt && !Number.isNaN(rotatedAt.getTime()) ? rotatedAt : undefined;
};

// --- judge -------------------------------------------------------------------------------------

/**
 * With `schedule` set: the key's rotation budget and next rotation, listed (up to the cap); and
 * its notifications, sent at every audit while they hold (docs/audit.md#imported-material-and-rotation-budget):
 * `ImportedMaterialExpiring` for imported material near or past its `ValidTo`, `RotationDue` for a
 * managed key that never rotates by itself and whose material nears the maximum age.
 */
const scheduleKey = async (audited: AuditedKey, deps: AuditDeps, slice: Slice): Promise<void> => {
  if (!deps.schedule) return;
  const now = deps.clock.now();
  const schedule = rotationScheduleOf(audited, deps.limits);
  if (schedule) {
    if (slice.schedules.length < deps.maxFindingsListed) slice.schedules.push(schedule);
    else slice.schedulesOmitted += 1;
  }
  const notices: Notification[] = [];
  const expiry = importedMaterialExpiry(audited.key, deps.schedule.importExpiryWarningDays, now);
  if (expiry) {
    notices.push(
      importedMaterialExpiring({
        key: audited.key,
        aliases: audited.aliases,
        expiry,
        warningDays: deps.schedule.importExpiryWarningDays,
        where: deps.location,
        at: now,
        auditId: slice.auditId,
      }),
    );
  }
  const due = rotationDueIn(audited, schedule, deps.schedule.rotationDueWarningDays, now);
  if (schedule && due) {
    notices.push(
      rotationDue({
        audited,
        schedule,
        due,
        warningDays: deps.schedule.rotationDueWarningDays,
        maxMaterialAgeDays: deps.limits.maxMaterialAgeDays,
        where: deps.location,
        at: now,
        auditId: slice.auditId,
      }),
    );
  }
  for (const notice of notices) {
    await deps.notifier.publish(notice);
    slice.totals.keyNotifications ??= {};
    increment(slice.totals.keyNotifications, notice.type as KeyNotificationType);
  }
};

/** The rules of the key's class; and, for a key the service keeps records of, whether it is still managed and usable. */
const judgeKey = (
  audited: AuditedKey,
  declared: DeclaredState,
  tags: Tags,
  deps: AuditDeps,
  slice: Slice,
  fleet: Fleet,
): AuditFinding[] => {
  const judged = auditKey(audited, deps.limits, deps.clock.now());
  const { key } = audited;
  if (fleet.declared.has(key.keyId)) {
    slice.seen.add(key.keyId);
    // A retired or rolled-back key of an alias-swap lost its declared state on purpose.
    const retired = ['retired', 'rolled-back'].includes(lineageStateOf(tags) ?? '');
    if (!retired && !(declared.managed && key.keyState === 'Enabled')) {
      const why = declared.managed ? `is ${key.keyState}` : 'is no longer tagged kms-rotation:managed=true';
      judged.push(declaredKeyMissing(key.keyId, why));
    }
  }
  return judged;
};

/**
 * The key's exceptions, before any remediation (an excepted rule is never remediated, an expired
 * one is as usual): suppressed findings are tallied apart, expired exceptions listed; the open
 * findings are returned.
 */
const applyKeyExceptions = (
  judged: AuditFinding[],
  audited: AuditedKey,
  tags: Tags,
  deps: AuditDeps,
  slice: Slice,
): AuditFinding[] => {
  const keyId = audited.key.keyId;
  const exceptions = readExceptions(
    { keyId, aliases: audited.aliases, tags },
    { exceptableRules: EXCEPTABLE_RULES, now: deps.clock.now() },
  );
  const { open, suppressed } = applyExceptions(judged, exceptions);
  for (const exception of exceptions.expired) {
    slice.totals.expiredExceptions += 1;
    const reopened = open.some((item) => item.rule === exception.rule);
    slice.expiredExceptions.push({ ...exception, keyId, reopened });
    deps.log.warn('exception expired', { auditId: slice.auditId, keyId, rule: exception.rule, until: exception.until });
  }
  tallySuppressed(suppressed, deps, slice);
  return open;
};

/**
 * With `remediate`, rotation put back on a managed key that has it off (the one remediation the
 * audit makes). Returns each rule remediated with what was done; a finding another run resolved
 * meanwhile is dropped from `found`, one that could not be remediated says why in its evidence.
 */
const remediateKey = async (
  found: AuditFinding[],
  keyId: string,
  declared: DeclaredState,
  request: AuditRequest,
  deps: AuditDeps,
  slice: Slice,
): Promise<Map<AuditRuleId, string>> => {
  const remediated = new Map<AuditRuleId, string>();
  const rotationOff = found.find((item) => item.rule === 'rotation-enabled');
  if (!request.remediate || !declared.managed || !rotationOff) return remediated;
  const outcome = await enableRotationUnderLease(keyId, declared.periodDays, deps);
  if (outcome.kind === 'enabled') {
    remediated.set('rotation-enabled', outcome.detail);
    slice.totals.remediated += 1;
    slice.remediations.push({ keyId, detail: outcome.detail });
    // Logged as it happens: should the run fail later, the change is on record all the same.
    deps.log.info('remediated', { auditId: slice.auditId, keyId, detail: outcome.detail });
  } else if (outcome.kind === 'enabled-meanwhile') {
    // Read again under the lease: another run (the drift watch) put it back since the key was read.
    found.splice(found.indexOf(rotationOff), 1);
    deps.log.info('rotation was enabled by another run meanwhile', { auditId: slice.auditId, keyId });
  } else {
    deps.log.warn(`remediation ${outcome.kind}`, { keyId, error: outcome.message });
    rotationOff.evidence = {
      ...rotationOff.evidence,
      [outcome.kind === 'denied' ? 'remediationDenied' : 'remediationSkipped']: outcome.message,
    };
  }
  return remediated;
};

// --- report ------------------------------------------------------------------------------------

/** Counts a key's findings and lists them (up to the cap); `remediated`: each rule this audit remediated, with what it did. */
const tally = (found: AuditFinding[], remediated: Map<AuditRuleId, string>, deps: AuditDeps, slice: Slice): void => {
  const { totals } = slice;
  for (const item of found) {
    increment(totals.findingsByRule, item.rule);
    increment(totals.bySeverity, item.severity);
    if (slice.findings.length + slice.suppressed.length < deps.maxFindingsListed) {
      slice.findings.push({
        ...item,
        controls: CONTROLS[item.rule],
        ...(remediated.has(item.rule) ? { remediated: true } : {}),
      });
    } else {
      slice.findingsOmitted += 1;
    }
  }
  const open = found.filter((item) => !remediated.has(item.rule));
  if (slice.exporting) {
    slice.exported.push(...found.map((item) => ({ ...item, remediation: remediated.get(item.rule) })));
  }
  if (open.length > 0) {
    totals.nonCompliantKeys += 1;
    for (const rule of new Set(open.map((item) => item.rule))) increment(totals.nonCompliantByRule, rule);
  }
};

/** Suppressed findings are counted apart and listed with their exception, never dropped. */
const tallySuppressed = (found: SuppressedFinding[], deps: AuditDeps, slice: Slice): void => {
  if (slice.exporting) slice.exported.push(...found);
  for (const item of found) {
    slice.totals.suppressed += 1;
    increment(slice.totals.suppressedByRule, item.rule);
    if (slice.findings.length + slice.suppressed.length < deps.maxFindingsListed) {
      slice.suppressed.push({ ...item, controls: CONTROLS[item.rule] });
    } else {
      slice.findingsOmitted += 1;
    }
  }
};

/** A key IAM or its key policy keeps the audit from reading: counted, and reported as such. */
const tallyUnreadable = (
  keyId: string,
  progress: Progress,
  error: AwsServiceError,
  deps: AuditDeps,
  slice: Slice,
  fleet: Fleet,
): void => {
  slice.totals.keysAudited += 1;
  increment(slice.totals.byClass, progress.keyClass ?? 'unreadable');
  const managed = fleet.declared.has(keyId) || readDeclaredState(progress.tags ?? {}).managed;
  // One of the service's own keys, locked away: this finding says so, not declared-key-missing.
  if (fleet.declared.has(keyId)) slice.seen.add(keyId);
  deps.log.warn('key unreadable', { keyId, operation: error.operation, error: error.message });
  tally(
    [keyUnreadable(keyId, (fleet.aliasesByKey.get(keyId) ?? []).sort(), error.operation, managed, error.message)],
    new Map(),
    deps,
    slice,
  );
};

/**
 * This slice's findings to Security Hub, each updating the finding of its key and rule; at the
 * end of a complete audit of the whole fleet, the open findings no slice found again, resolved.
 */
const toSecurityHubSlice = async (
  deps: AuditDeps,
  slice: Slice,
  resolveUnseen: boolean,
): Promise<AuditReport['securityHub']> => {
  if (!deps.securityHub) return undefined;
  const active = await deps.securityHub.activeFindings();
  // Security Hub resolves what is no longer found: a finding this audit remediated is not sent.
  const open = slice.exported.filter((item) => item.remediation === undefined);
  const { imports, resolved } = securityHubBatch(open, active, {
    location: deps.location,
    auditId: slice.auditId,
    startedAt: slice.startedAt,
    now: deps.clock.now(),
    resolveUnseen,
  });
  return sendFindings(deps.securityHub, { imports, resolved }, deps.log, {
    auditId: slice.auditId,
    slice: slice.slice,
  });
};

/**
 * This slice's findings to the report bucket, as OCSF JSON and CSV; at the end of the audit
 * (`final`), its summary too. A write that fails fails the invocation (Lambda retries it).
 */
const writeReports = async (
  request: AuditRequest,
  deps: AuditDeps,
  slice: Slice,
  final?: AuditReport,
): Promise<string[] | undefined> => {
  if (!deps.reports) return undefined;
  const { auditId, startedAt } = slice;
  const objects = sliceReportObjects(slice.exported, {
    location: deps.location,
    auditId,
    now: deps.clock.now(),
    productVersion: deps.reports.productVersion,
    startedAt,
    slice: slice.slice,
  });
  if (final) {
    // The audit's totals over every slice; the lists of one slice are in its own objects.
    objects.push(
      summaryReportObject({
        auditId,
        startedAt,
        finishedAt: final.finishedAt,
        slices: slice.slice,
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
  deps.log.info('audit reports written', { auditId, slice: slice.slice, objects: uris });
  return uris;
};

/**
 * Less time left than a page may take: this slice's findings go to Security Hub and the report
 * bucket before the rest of the fleet is handed to a further invocation (a failed export hands
 * nothing over; the next slice's end resolves what no slice of this audit found). No notification:
 * the last slice sends it.
 */
const handOver = async (marker: string, request: AuditRequest, deps: AuditDeps, slice: Slice): Promise<AuditReport> => {
  const { totals } = slice;
  totals.declaredSeen = [...slice.seen];
  const securityHub = await toSecurityHubSlice(deps, slice, false);
  const reportObjects = await writeReports(request, deps, slice);
  await deps.continuation.continueLater({
    remediate: request.remediate,
    ...(request.account && request.region ? { account: request.account, region: request.region } : {}),
    checkpoint: { auditId: slice.auditId, startedAt: slice.startedAt, marker, slice: slice.slice, totals },
  });
  const report = reportOf(request, deps, slice, false, securityHub);
  if (reportObjects) report.reportObjects = reportObjects;
  deps.log.info(report.summary, { auditId: slice.auditId, slice: slice.slice, complete: false, totals });
  return report;
};

/**
 * The last slice: a declared key no slice saw is missing (only when the whole fleet was read);
 * Security Hub resolves what this audit did not find again (not for keys asked for by id); the
 * reports and their summary are written; then the one `AuditCompleted` notification.
 */
const finishSlice = async (
  request: AuditRequest,
  deps: AuditDeps,
  slice: Slice,
  fleet: Fleet,
): Promise<AuditReport> => {
  if (!request.keyIds) {
    for (const keyId of fleet.declared) {
      if (!slice.seen.has(keyId)) {
        tally([declaredKeyMissing(keyId, 'does not exist in this account and Region')], new Map(), deps, slice);
      }
    }
  }
  slice.totals.declaredSeen = [...slice.seen];
  const securityHub = await toSecurityHubSlice(deps, slice, !request.keyIds);
  const report = reportOf(request, deps, slice, true, securityHub);
  const reportObjects = await writeReports(request, deps, slice, report);
  if (reportObjects) report.reportObjects = reportObjects;
  deps.log.info(report.summary, { auditId: slice.auditId, slice: slice.slice, complete: true, totals: slice.totals });
  if (!deps.orgItem) await deps.notifier.publish(auditCompleted(report, deps));
  return report;
};

const reportOf = (
  request: AuditRequest,
  deps: AuditDeps,
  slice: Slice,
  complete: boolean,
  securityHub: AuditReport['securityHub'],
): AuditReport => ({
  auditId: slice.auditId,
  startedAt: slice.startedAt,
  finishedAt: deps.clock.now().toISOString(),
  complete,
  slice: slice.slice,
  remediate: request.remediate,
  limits: deps.limits,
  totals: slice.totals,
  findings: slice.findings,
  suppressed: slice.suppressed,
  findingsOmitted: slice.findingsOmitted,
  expiredExceptions: slice.expiredExceptions,
  ...(deps.schedule ? { schedules: slice.schedules, schedulesOmitted: slice.schedulesOmitted } : {}),
  remediations: slice.remediations,
  reconciliations: slice.reconciliations,
  keysNotFound: slice.keysNotFound.sort(),
  ...(securityHub ? { securityHub } : {}),
  summary: summaryOf(slice.totals, !complete, slice.keysNotFound),
});

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
  const reconciledAny = totals.reconciled + totals.reconcileFailed + totals.reconcileUnfinished;
  if (reconciledAny > 0) {
    parts.push(
      `${reconciledAny} rotation${reconciledAny === 1 ? '' : 's'} without a validation reconciled (${totals.reconciled} validated, ${totals.reconcileFailed} failed, ${totals.reconcileUnfinished} left for the next audit)`,
    );
  }
  if (totals.suppressed > 0) {
    parts.push(
      `${totals.suppressed} finding${totals.suppressed === 1 ? '' : 's'} suppressed by exception (${list(totals.suppressedByRule)})`,
    );
  }
  if (totals.expiredExceptions > 0) {
    parts.push(`${totals.expiredExceptions} exception${totals.expiredExceptions === 1 ? '' : 's'} expired`);
  }
  const notified = list(totals.keyNotifications ?? {});
  if (notified) parts.push(`key notifications sent: ${notified}`);
  if (keysNotFound.length > 0)
    parts.push(`${keysNotFound.length} asked for but not found (${keysNotFound.join(', ')})`);
  return parts.join('; ');
};

/** How bad a finished audit is: CRITICAL with a critical finding, WARNING with anything left to do, INFO otherwise. */
export const auditSeverityOf = (report: Pick<AuditReport, 'totals' | 'keysNotFound'>): Severity =>
  (report.totals.bySeverity.CRITICAL ?? 0) > 0
    ? 'CRITICAL'
    : report.totals.nonCompliantKeys > 0 ||
        report.keysNotFound.length > 0 ||
        report.totals.expiredExceptions > 0 ||
        report.totals.reconcileFailed > 0 ||
        report.totals.reconcileUnfinished > 0
      ? 'WARNING'
      : 'INFO';

/** The one notification of an audit, sent by its last slice. */
const auditCompleted = (report: AuditReport, deps: AuditDeps): Notification =>
  notificationOf({
    type: 'AuditCompleted',
    severity: auditSeverityOf(report),
    about: 'fleet',
    where: deps.location,
    at: report.finishedAt,
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
      ...(report.reconciliations.length > 0 ? { reconciliations: report.reconciliations.slice(0, 20) } : {}),
      ...(report.keysNotFound.length > 0 ? { keysNotFound: report.keysNotFound } : {}),
      // Named, so that the owner of each lapsed exception can be chased: at most 20, as topFindings.
      ...(report.expiredExceptions.length > 0 ? { expiredExceptions: report.expiredExceptions.slice(0, 20) } : {}),
    },
  });
