import { type AliasScope, describeAliasScope, inAliasScope } from './alias-scope';
import { aliasTargetOf } from './alias-target';
import { keyArnOf, type SecurityFindings, sendFindings } from './asff';
import { EXCEPTABLE_RULES, readExceptions } from './audit-exceptions';
import { type DeclaredState, readDeclaredState } from './declared-state';
import { driftSecurityHubBatch } from './drift-asff';
import {
  currentFingerprint,
  type DriftMode,
  type DriftRuleId,
  evaluateDrift,
  type Finding,
  highestSeverity,
  type KeySnapshot,
  type Remediation,
} from './drift-rules';
import { excerpt, PreconditionFailedError, verdictOrRethrow } from './errors';
import { classifyKey } from './key-classification';
import { holdingKeys, type LeaseDeps } from './key-lease';
import { keyIdOf, parseArn } from './key-ref';
import { type KeyVerificationDeps, verifyKeyWorks } from './key-verification';
import { lineageStateOf } from './lineage';
import type { KeyDescription, Notification, ServiceLocation, Severity, Tags } from './model';
import { notificationOf } from './notification';
import type {
  Clock,
  KeyAdmin,
  KeyReader,
  KeyRecord,
  KeyRecordStore,
  Log,
  ManagedKeyDirectory,
  Notifier,
} from './ports';
import { requireEventForThisService, requireLocalArn } from './service-location';

/** Who made a call, from the CloudTrail record. */
export interface Actor {
  type?: string;
  /** The principal's ARN (for a role session: the assumed-role ARN). */
  arn?: string;
  /** For role sessions: the role that was assumed. */
  roleArn?: string;
  /** The AWS service that made the call on the principal's behalf, if any. Says nothing of who the principal is. */
  invokedBy?: string;
  sourceIp?: string;
  userAgent?: string;
}

/** A KMS management call (CloudTrail) or a KMS service event, after schema validation. */
export interface KeyActivity {
  eventId: string;
  /** CloudTrail's id of the call; absent for KMS service events. */
  callId?: string;
  /** `DisableKeyRotation`, `UpdateAlias`, ... or `KMS CMK Deletion`, `KMS Imported Key Material Expiration`. */
  name: string;
  time: Date;
  account: string;
  region: string;
  /** Key ids and key ARNs the record names. */
  keyRefs: string[];
  aliasNames: string[];
  /** Every ARN the record names, with its field: each must be of this partition, account and Region. */
  arns: { field: string; arn: string }[];
  actor?: Actor;
  errorCode?: string;
  errorMessage?: string;
}

export interface RemediationResult {
  rule: DriftRuleId;
  keyId: string;
  status: 'remediated' | 'failed';
  detail: string;
}

export interface DriftReport {
  outcome: 'no-drift' | 'drift' | 'ignored';
  summary: string;
  eventId: string;
  activity: string;
  actor?: Actor;
  keys: string[];
  findings: Finding[];
  /** Findings not notified before (the rest are still open from an earlier event). */
  newFindings: Finding[];
  remediations: RemediationResult[];
  /** With Security Hub on: the findings imported open (or suppressed), and those resolved. */
  securityHub?: { imported: number; resolved: number };
}

export interface DriftWatchDeps extends KeyVerificationDeps, LeaseDeps {
  keys: KeyReader;
  admin: KeyAdmin;
  directory: ManagedKeyDirectory;
  records: KeyRecordStore;
  notifier: Notifier;
  clock: Clock;
  log: Log;
  location: ServiceLocation;
  mode: DriftMode;
  /** Rules whose drift is put back in `remediate` mode; others are only notified. */
  remediateRules: ReadonlySet<DriftRuleId>;
  /** The service's own roles: their changes are expected, never remediated. */
  serviceRoleArns: readonly string[];
  /**
   * Organization mode, acting in a member account: the member stack's role there. Its sessions
   * named for the functions that change keys (`MEMBER_SESSION_NAMES`) are the service's own changes.
   */
  memberRole?: { roleArn: string };
  /** The aliases remediation may create and move (the stack's `aliasScope`). */
  aliasScope: AliasScope;
  /** Security Hub, when the stack's `securityHubFindings` is on: the judged keys' findings. */
  securityHub?: SecurityFindings;
}

/** What every report of an event starts from: which event, and nothing found yet. */
/** The actor as logs and notifications show it: every value from the record bounded. */
const shownActor = (actor: Actor | undefined): Actor | undefined =>
  actor &&
  (Object.fromEntries(
    Object.entries(actor).map(([name, value]) => [name, typeof value === 'string' ? excerpt(value, 256) : value]),
  ) as Actor);

const reportBaseOf = (activity: KeyActivity) => ({
  eventId: activity.eventId,
  activity: activity.name,
  /** Who made the call, as CloudTrail recorded it: what ops invoking the watch by hand want to see first. */
  actor: shownActor(activity.actor),
  findings: [],
  newFindings: [],
  remediations: [],
});

/** A role session's parts from CloudTrail's `userIdentity`, when the role ARN and the session ARN agree. */
const roleSessionOf = (actor: Actor | undefined) => {
  if (actor?.type !== 'AssumedRole' || !actor.roleArn || !actor.arn) return undefined;
  const role = parseArn(actor.roleArn);
  const session = parseArn(actor.arn);
  if (role?.service !== 'iam' || session?.service !== 'sts' || !role.resource.startsWith('role/')) return undefined;
  const roleName = role.resource.slice(role.resource.lastIndexOf('/') + 1);
  const [kind, sessionRole, sessionName, ...rest] = session.resource.split('/');
  const agree =
    session.partition === role.partition &&
    session.account === role.account &&
    kind === 'assumed-role' &&
    sessionRole === roleName &&
    Boolean(sessionName) &&
    rest.length === 0;
  return agree ? { role, roleArn: actor.roleArn, roleName, sessionName: sessionName as string } : undefined;
};

/**
 * The session names the central functions that change keys give the member role
 * (`kms-rotation-<function>`, src/adapters/acting-location.ts): the drift watch's remediation,
 * `rotate`, and the audit's remediation (single-account audit and the organization audit's worker).
 */
export const MEMBER_SESSION_NAMES: readonly string[] = [
  'kms-rotation-onKeyActivity',
  'kms-rotation-rotate',
  'kms-rotation-audit',
  'kms-rotation-orgAuditItem',
];

/**
 * Whether the call was made by one of the service's own roles: a session of exactly that role
 * (CloudTrail's `userIdentity` of type `AssumedRole`, its session issuer the role's ARN, its
 * ARN `arn:<partition>:sts::<account>:assumed-role/<role name>/<session>`), in this account.
 * A role name alone proves nothing: another account, an IAM user's path or `invokedBy` can
 * carry the same text (docs/trust-boundaries.md).
 *
 * In a member account (organization mode) the service acts through the member role
 * (`<memberRoleName>-<region>`) of that account: a call is its own only when it is a session of
 * exactly that role, in that account, named for one of the functions that change keys
 * (`MEMBER_SESSION_NAMES`). A look-alike session name in any other role is not the service.
 */
export const isOwnCall = (
  actor: Actor | undefined,
  serviceRoleArns: readonly string[],
  location: ServiceLocation,
  memberRole?: { roleArn: string },
): boolean => {
  const session = roleSessionOf(actor);
  if (!session) return false;
  if (session.role.partition !== location.partition || session.role.account !== location.account) return false;
  if (serviceRoleArns.includes(session.roleArn)) return true;
  return (
    memberRole !== undefined &&
    session.roleArn === memberRole.roleArn &&
    MEMBER_SESSION_NAMES.includes(session.sessionName)
  );
};

/**
 * `onKeyActivity`: the event says which key or alias to look at; the key's real state is
 * re-read and judged against its declared state. Events repeat and arrive out of order, so
 * nothing is concluded from the event itself, and a drift is notified once while it lasts.
 */
export const watchKeyActivity = async (activity: KeyActivity, deps: DriftWatchDeps): Promise<DriftReport> => {
  requireEventForThisService(activity, deps.location);
  const base = reportBaseOf(activity);
  if (activity.errorCode) {
    const errorCode = excerpt(activity.errorCode, 64);
    deps.log.info('Failed KMS call: nothing changed', {
      call: activity.name,
      errorCode,
      errorMessage: activity.errorMessage && excerpt(activity.errorMessage, 256),
      actor: shownActor(activity.actor),
    });
    return {
      ...base,
      outcome: 'ignored',
      keys: [],
      summary: `${activity.name} failed (${errorCode}); nothing changed`,
    };
  }
  for (const { field, arn } of activity.arns) requireLocalArn(arn, deps.location, field);
  if (isOwnCall(activity.actor, deps.serviceRoleArns, deps.location, deps.memberRole)) {
    deps.log.info('Change made by kms-rotation itself', { call: activity.name, actor: shownActor(activity.actor) });
    return { ...base, outcome: 'ignored', keys: [], summary: `${activity.name} was made by kms-rotation itself` };
  }

  const { keyIds, aliasesLeadingNowhere } = await keysConcerned(activity, deps);
  // Under the keys' leases: records of one key arrive in bursts and twice, and each reads, notifies and writes its record.
  return holdingKeys(keyIds, `drift watch: ${activity.name}`, deps, () =>
    judgeKeys(activity, keyIds, aliasesLeadingNowhere, deps),
  );
};

/** Examines each key against its declared state, notifies new drift, records it, and puts back what it may. */
const judgeKeys = async (
  activity: KeyActivity,
  keyIds: readonly string[],
  aliasesLeadingNowhere: readonly string[],
  deps: DriftWatchDeps,
): Promise<DriftReport> => {
  const base = reportBaseOf(activity);
  const examined = await Promise.all(keyIds.map((keyId) => examineKey(keyId, activity, deps)));
  if (!examined.some((result) => result.managed)) {
    // Nothing was checked: say why, never "no drift".
    const reasons = [
      ...examined.map((result) => `${result.keyId}: ${result.notChecked}`),
      ...aliasesLeadingNowhere.map((alias) => `${alias}: points at no key, and no managed key declares it`),
    ];
    const summary = `${activity.name} concerns nothing kms-rotation manages; nothing checked (${reasons.join('; ')})`;
    deps.log.info(summary, { call: activity.name, actor: shownActor(activity.actor) });
    return { ...base, outcome: 'ignored', keys: [], summary };
  }
  const findings = examined.flatMap((result) => result.findings);
  const newFindings = examined.flatMap((result) => result.newFindings);
  const managedKeys = examined.filter((result) => result.managed).map((result) => result.keyId);

  if (newFindings.length > 0) {
    await deps.notifier.publish(driftNotification(activity, newFindings, examined, deps));
  }
  // Record what was notified before trying to put anything back: a retry must not notify twice.
  await Promise.all(examined.filter((result) => result.managed).map((result) => saveOpenDrift(result, deps)));

  const remediations: RemediationResult[] = [];
  /** Fingerprints of the findings put back, with what was done. */
  const remediated = new Map<string, string>();
  if (deps.mode === 'remediate') {
    for (const result of examined) {
      for (const item of result.findings) {
        if (!item.remediation || !deps.remediateRules.has(item.rule)) continue;
        const outcome = await remediate(item, item.remediation, result.key, deps);
        remediations.push(outcome);
        if (outcome.status === 'remediated') {
          delete result.openDrift[item.fingerprint];
          remediated.set(item.fingerprint, outcome.detail);
        }
      }
      // Writes only when a drift was put back (saveOpenDrift skips a record that holds what it would write).
      if (result.managed) await saveOpenDrift(result, deps);
    }
    if (remediations.length > 0)
      await deps.notifier.publish(remediationNotification(activity, remediations, examined, deps));
  }
  // Security Hub last, once notified, recorded and put back. A refused finding (or a failed call)
  // fails the invocation, after all of that: Lambda retries the event, and the retry re-judges the
  // keys without notifying again (the record holds what was notified), finds nothing left to put
  // back, and imports what it finds then. Importing first would tell Security Hub of a remediation
  // not yet made; what a retry cannot redo (resolving a drift the failed attempt put back) the
  // next audit resolves.
  const securityHub = await toSecurityHub(activity, examined, remediated, deps);

  const summary =
    findings.length === 0
      ? `${activity.name}: no drift on ${managedKeys.join(', ')}`
      : `${activity.name}: ${findings.map((item) => item.summary).join('; ')}`;
  deps.log.info(summary, { findings: findings.map((item) => item.rule), remediations });
  return {
    ...base,
    outcome: findings.length === 0 ? 'no-drift' : 'drift',
    summary,
    keys: managedKeys,
    findings,
    newFindings,
    remediations,
    ...(securityHub ? { securityHub } : {}),
  };
};

/**
 * With Security Hub on, the judged keys' findings, read back (only these keys' open findings) and
 * imported: open or suppressed, resolved once put back, and resolved when the drift watch no longer
 * finds what it last imported (docs/security-hub.md, "Drift findings").
 */
const toSecurityHub = async (
  activity: KeyActivity,
  examined: readonly Examined[],
  remediated: ReadonlyMap<string, string>,
  deps: DriftWatchDeps,
): Promise<DriftReport['securityHub']> => {
  if (!deps.securityHub) return undefined;
  const judged = examined.filter((result) => result.managed);
  const active = await deps.securityHub.activeFindings(judged.map((result) => keyArnOf(deps.location, result.keyId)));
  const { imports, resolved } = driftSecurityHubBatch(
    judged.map((result) => ({
      keyId: result.keyId,
      aliases: result.aliasesOfKey,
      findings: result.findings,
      exceptions: result.tags
        ? readExceptions(
            { keyId: result.keyId, aliases: result.aliasesOfKey, tags: result.tags },
            { exceptableRules: EXCEPTABLE_RULES, now: deps.clock.now() },
          ).active
        : [],
    })),
    active,
    {
      location: deps.location,
      now: deps.clock.now(),
      eventId: activity.eventId,
      cause: actorLine(activity),
      actor: actorNameOf(activity),
      remediated,
    },
  );
  return sendFindings(deps.securityHub, { imports, resolved }, deps.log, { eventId: activity.eventId });
};

/** The keys an event concerns: the ones it names, an alias's target, and the keys that declare the alias. */
const keysConcerned = async (
  activity: KeyActivity,
  deps: DriftWatchDeps,
): Promise<{ keyIds: string[]; aliasesLeadingNowhere: string[] }> => {
  const ids = new Set(activity.keyRefs.map(keyIdOf));
  const aliasesLeadingNowhere: string[] = [];
  // CreateAlias, UpdateAlias and DeleteAlias records always name their alias.
  if (activity.aliasNames.length > 0) {
    const [targets, managed] = await Promise.all([
      Promise.all(activity.aliasNames.map((alias) => aliasTargetOf(deps.keys, alias))),
      deps.directory.managedKeys(),
    ]);
    for (const target of targets) if (target) ids.add(target);
    activity.aliasNames.forEach((alias, index) => {
      const declaredBy = managed.filter(({ tags }) => readDeclaredState(tags).aliases.includes(alias));
      for (const { keyId } of declaredBy) ids.add(keyId);
      if (!targets[index] && declaredBy.length === 0) aliasesLeadingNowhere.push(alias);
    });
  }
  return { keyIds: [...ids].sort(), aliasesLeadingNowhere };
};

interface Examined {
  keyId: string;
  managed: boolean;
  /** Why a key that is not managed was not checked. */
  notChecked?: string;
  key?: KeyDescription;
  declared?: DeclaredState;
  findings: Finding[];
  newFindings: Finding[];
  record: KeyRecord;
  openDrift: Record<string, string>;
  /** Aliases that point at the key now. */
  aliasesOfKey: string[];
  /** Its tags, as read (managed keys that exist): audit exceptions suppress its findings in Security Hub. */
  tags?: Tags;
}

const NOT_DECLARED: DeclaredState = { managed: true, aliases: [], problems: [] };

/** Only a deletion event may name a key that no longer exists; any other record naming one names nothing here. */
const KEY_DELETED = 'KMS CMK Deletion';

const examineKey = async (keyId: string, activity: KeyActivity, deps: DriftWatchDeps): Promise<Examined> => {
  let notFound: PreconditionFailedError | undefined;
  const [described, record] = await Promise.all([
    deps.keys.describeKey(keyId).catch((error: unknown) => {
      if (!(error instanceof PreconditionFailedError && error.reason === 'key-not-found')) throw error;
      notFound = error;
      return undefined;
    }),
    deps.records.load(keyId),
  ]);
  const unmanaged = (notChecked: string): Examined => ({
    keyId,
    managed: false,
    notChecked,
    findings: [],
    newFindings: [],
    record,
    openDrift: {},
    aliasesOfKey: [],
  });
  let snapshot: KeySnapshot;
  let declared: DeclaredState | undefined;
  let tags: Tags | undefined;
  if (!described) {
    // Deleted: ours only if we kept a record of it.
    if (!record.managed && !record.canary && !record.openDrift) {
      if (activity.name !== KEY_DELETED && notFound) throw notFound;
      return unmanaged('deleted, and kms-rotation kept no record of it (DescribeKey: not found)');
    }
    snapshot = {
      account: deps.location.account,
      keyId,
      declared: NOT_DECLARED,
      aliasesOfKey: [],
      declaredAliasTargets: {},
    };
  } else {
    if (described.keyManager === 'AWS') return unmanaged('an AWS managed key');
    tags = await deps.keys.listTags(keyId);
    declared = readDeclaredState(tags);
    if (!declared.managed) return unmanaged('not managed by kms-rotation (no kms-rotation:managed tag)');
    const wantsRotation = classifyKey(described).keyClass === 'auto-rotatable';
    const [rotation, aliasesOfKey, policy, targets] = await Promise.all([
      wantsRotation ? deps.keys.getRotationStatus(keyId) : Promise.resolve(undefined),
      deps.keys.listAliasesOf(keyId),
      deps.admin.getKeyPolicy(keyId),
      Promise.all(
        declared.aliases.map(async (alias) => [alias, (await aliasTargetOf(deps.keys, alias)) ?? 'missing'] as const),
      ),
    ]);
    snapshot = {
      account: deps.location.account,
      keyId,
      key: described,
      declared,
      lineageState: lineageStateOf(tags),
      rotation,
      aliasesOfKey: aliasesOfKey.map((alias) => alias.aliasName),
      declaredAliasTargets: Object.fromEntries(targets),
      policy,
    };
  }
  const findings = evaluateDrift(snapshot);
  // Kept before a rule id was renamed, a fingerprint is read as the new one: that drift is not notified again.
  const previous = Object.fromEntries(
    Object.entries(record.openDrift ?? {}).map(([fingerprint, since]) => [currentFingerprint(fingerprint), since]),
  );
  const now = deps.clock.now().toISOString();
  const openDrift = Object.fromEntries(findings.map((item) => [item.fingerprint, previous[item.fingerprint] ?? now]));
  return {
    keyId,
    managed: true,
    key: described,
    declared,
    findings,
    newFindings: findings.filter((item) => previous[item.fingerprint] === undefined),
    record,
    openDrift,
    aliasesOfKey: snapshot.aliasesOfKey,
    ...(tags ? { tags } : {}),
  };
};

const saveOpenDrift = async (result: Examined, deps: DriftWatchDeps): Promise<void> => {
  const before = JSON.stringify(result.record.openDrift ?? {});
  if (before === JSON.stringify(result.openDrift) && result.record.managed) return;
  await deps.records.save(result.keyId, {
    ...result.record,
    managed: true,
    openDrift: Object.keys(result.openDrift).length > 0 ? { ...result.openDrift } : undefined,
  });
  result.record = { ...result.record, managed: true, openDrift: { ...result.openDrift } };
};

/** Puts declared state back: rotation on with the declared period, or a declared alias on its (verified) key. */
const remediate = async (
  item: Finding,
  remediation: Remediation,
  key: KeyDescription | undefined,
  deps: DriftWatchDeps,
): Promise<RemediationResult> => {
  const result = (status: RemediationResult['status'], detail: string): RemediationResult => ({
    rule: item.rule,
    keyId: item.keyId,
    status,
    detail,
  });
  try {
    if (remediation.action === 'enable-rotation') {
      await deps.admin.enableKeyRotation(remediation.keyId, remediation.periodDays);
      return result(
        'remediated',
        `automatic rotation re-enabled on ${remediation.keyId}${remediation.periodDays ? ` every ${remediation.periodDays} days` : ''}`,
      );
    }
    if (!inAliasScope(remediation.aliasName, deps.aliasScope)) {
      return result(
        'failed',
        `${remediation.aliasName} left as is: it is outside the aliases kms-rotation may move (aliasScope: ${describeAliasScope(deps.aliasScope)})`,
      );
    }
    if (key?.keyState !== 'Enabled') {
      return result(
        'failed',
        `${remediation.aliasName} left as is: its declared key ${remediation.keyId} is not enabled`,
      );
    }
    // No alias ever points at a key that did not just prove it works.
    const verdict = await verifyKeyWorks(key, deps);
    if (verdict.status !== 'passed') {
      return result(
        'failed',
        `${remediation.aliasName} left as is: ${remediation.keyId} failed verification (${verdict.detail})`,
      );
    }
    if (remediation.aliasExists) await deps.admin.updateAlias(remediation.aliasName, remediation.keyId);
    else await deps.admin.createAlias(remediation.aliasName, remediation.keyId);
    return result('remediated', `${remediation.aliasName} points at ${remediation.keyId} again (${verdict.detail})`);
  } catch (error) {
    return result('failed', `could not remediate ${item.rule} on ${item.keyId}: ${verdictOrRethrow(error)}`);
  }
};

/** Who made the call, in one name: its ARN, else the service that made it for someone, else its type; KMS's own events have none. */
const actorNameOf = (activity: KeyActivity): string => {
  const actor = shownActor(activity.actor);
  return actor?.arn ?? actor?.invokedBy ?? actor?.type ?? 'AWS KMS';
};

const actorLine = (activity: KeyActivity): string => {
  const from = activity.actor?.sourceIp ? ` from ${excerpt(activity.actor.sourceIp, 256)}` : '';
  return `${activity.name} by ${actorNameOf(activity)}${from} at ${activity.time.toISOString()}`;
};

/** A drift notification, about the key it names first, as the record read it; where and when the call was. */
const driftNotificationOf = (
  activity: KeyActivity,
  examined: readonly Examined[],
  deps: DriftWatchDeps,
  told: {
    type: 'DriftDetected' | 'DriftRemediated';
    severity: Severity;
    keyId: string;
    summary: string;
    details: Record<string, unknown>;
  },
): Notification => {
  const subject = examined.find((result) => result.keyId === told.keyId);
  return notificationOf({
    type: told.type,
    severity: told.severity,
    about: { keyId: told.keyId, keyArn: subject?.key?.arn ?? told.keyId, aliases: subject?.declared?.aliases ?? [] },
    where: activity,
    at: deps.clock.now(),
    summary: told.summary,
    details: told.details,
  });
};

const driftNotification = (
  activity: KeyActivity,
  findings: readonly Finding[],
  examined: readonly Examined[],
  deps: DriftWatchDeps,
): Notification =>
  driftNotificationOf(activity, examined, deps, {
    type: 'DriftDetected',
    severity: highestSeverity(findings),
    keyId: (findings[0] as Finding).keyId,
    summary: `Drift after ${actorLine(activity)}: ${findings.map((item) => item.summary).join('; ')}`,
    details: {
      eventId: activity.eventId,
      callId: activity.callId,
      call: activity.name,
      actor: shownActor(activity.actor),
      eventTime: activity.time.toISOString(),
      mode: deps.mode,
      findings: findings.map(({ rule, severity, keyId, summary, evidence }) => ({
        rule,
        severity,
        keyId,
        summary,
        evidence,
        remediable: deps.remediateRules.has(rule),
      })),
    },
  });

const remediationNotification = (
  activity: KeyActivity,
  remediations: readonly RemediationResult[],
  examined: readonly Examined[],
  deps: DriftWatchDeps,
): Notification => {
  const failed = remediations.filter((item) => item.status === 'failed');
  return driftNotificationOf(activity, examined, deps, {
    type: 'DriftRemediated',
    severity: failed.length > 0 ? 'WARNING' : 'INFO',
    keyId: (remediations[0] as RemediationResult).keyId,
    summary: `Remediated after ${actorLine(activity)}: ${remediations.map((item) => item.detail).join('; ')}`,
    details: { eventId: activity.eventId, call: activity.name, actor: shownActor(activity.actor), remediations },
  });
};
