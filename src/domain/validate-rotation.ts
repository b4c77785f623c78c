import { aliasTargetOf } from './alias-target';
import { type AliasVerification, describeAliasDrift, verifyDeclaredAliases } from './alias-verification';
import { type DeclaredState, readDeclaredState } from './declared-state';
import {
  describeError,
  PreconditionFailedError,
  type PreconditionReason,
  VerificationFailedError,
  verdictOrRethrow,
} from './errors';
import { holdingKeys, type LeaseDeps } from './key-lease';
import { keyIdOf, sameKey } from './key-ref';
import { equalBytes } from './key-verification';
import { SELF_TEST_TAG } from './lineage';
import type {
  KeyDescription,
  Notification,
  RotationEvent,
  RotationRecord,
  RotationType,
  ServiceLocation,
  Severity,
} from './model';
import { notificationOf } from './notification';
import type {
  Canary,
  Clock,
  Digest,
  EncryptionContext,
  KeyCrypto,
  KeyReader,
  KeyRecord,
  KeyRecordStore,
  Log,
  Notifier,
  RandomSource,
  ReplicaReader,
} from './ports';
import { isMultiRegionPrimary, type ReplicaJudgement, watchReplicas } from './replica-material';
import {
  type CheckResult,
  checkCurrentMaterial,
  checkKeyState,
  checkKeyType,
  checkRotationRecorded,
  checkRotationSchedule,
  preconditionReasonOf,
} from './rotation-checks';
import { requireEventForThisService, requireLocalKeyRef } from './service-location';
import { settledValue } from './settled';

export interface RotationValidationDeps {
  keys: KeyReader;
  crypto: KeyCrypto;
  records: KeyRecordStore;
  notifier: Notifier;
  clock: Clock;
  random: RandomSource;
  digest: Digest;
  log: Log;
  location: ServiceLocation;
  /** How far a history entry's date may be from the event's time and still be "this rotation". */
  toleranceMs: number;
  /** DescribeKey in other Regions: a multi-Region primary's replicas are checked after its rotation validated. */
  replicas?: ReplicaReader;
}

export interface RotationValidationReport {
  outcome: 'validated' | 'failed' | 'skipped';
  eventId: string;
  keyId: string;
  keyArn: string;
  rotationType?: RotationType;
  summary: string;
  checks: CheckResult[];
  aliases?: AliasVerification;
  declaredStateProblems: string[];
  /** Set when the outcome is `failed`: why, in the error taxonomy's terms. */
  failure?: { kind: 'precondition-failed' | 'verification-failed'; message: string; reason?: PreconditionReason };
  notification?: { type: Notification['type']; severity: Severity; status: 'published' | 'already-notified' };
  /** False when an earlier attempt at the same event already reported this failure. */
  firstReport: boolean;
  /** A multi-Region primary's replicas, after its rotation validated (src/domain/replica-material.ts). */
  replicas?: Pick<ReplicaJudgement, 'checks' | 'lagging'> & { notified?: Severity };
}

/** Plaintext test data is random and never logged; the context binds a ciphertext to its key and purpose. */
const CANARY_BYTES = 32;
const canaryContext = (keyId: string): EncryptionContext => ({
  'kms-rotation:purpose': 'rotation-canary',
  'kms-rotation:key-id': keyId,
});
const MAX_REMEMBERED_FAILURES = 20;

/** What a rotation's checks found, before anyone is told. */
export type RotationAssessment =
  | { kind: 'skipped'; keyId: string; keyArn: string; reason: string }
  | {
      kind: 'assessed';
      key: KeyDescription;
      declared: DeclaredState;
      checks: CheckResult[];
      rotationType?: RotationType;
      /** The history entry of this rotation, when the history has it. */
      recorded?: RotationRecord;
      aliases?: AliasVerification;
      /** The key's record as read (possibly unreadable). */
      savedRecord: PromiseSettledResult<KeyRecord>;
      /** Fresh ciphertext from the round trip, to keep as the next canary once everything passed. */
      newCanary?: Canary;
      roundTripVia?: string;
      failure?: 'precondition-failed' | 'verification-failed';
      /** With a `precondition-failed` failure: which precondition. */
      preconditionFailed?: PreconditionReason;
    };

export type RotationAssessmentDeps = Omit<RotationValidationDeps, 'notifier'>;

/**
 * Runs every check of a rotation of a managed key against the key's real state; the event
 * only says which key to look at. Changes nothing. Shared by `onRotation` (events) and
 * `rotate` (after an on-demand rotation): one validation, two callers.
 */
export const assessRotation = async (
  event: RotationEvent,
  deps: RotationAssessmentDeps,
  /** `onRotation` leaves self-test keys to the self-test run that made them: it keeps no record of them. */
  options: { skipSelfTestKeys: boolean } = { skipSelfTestKeys: false },
): Promise<RotationAssessment> => {
  requireEventForThisService(event, deps.location);
  requireLocalKeyRef(event.keyArn, deps.location, 'resources.0');
  const { keys } = deps;

  // Round trip 1: what any key of the account may be asked (DescribeKey, its tags and aliases,
  // our own record). The calls IAM allows on managed keys only come after the tags say the key
  // is managed: a rotation of someone else's key must not leave an AccessDenied in CloudTrail,
  // the very signal the CIS "unauthorized API calls" alarm counts.
  const [describedKey, tags, aliasesOfKey, savedRecord] = await Promise.allSettled([
    keys.describeKey(event.keyId),
    keys.listTags(event.keyId),
    keys.listAliasesOf(event.keyId),
    deps.records.load(event.keyId),
  ]);
  const key = settledValue(describedKey);
  if (key.keyManager === 'AWS') {
    const reason = `${key.keyId} is an AWS managed key: AWS rotates it, kms-rotation does not manage it`;
    return { kind: 'skipped', keyId: key.keyId, keyArn: key.arn, reason };
  }
  const declared = readDeclaredState(settledValue(tags));
  if (!declared.managed) {
    const reason = `${key.keyId} is not managed by kms-rotation (tag kms-rotation:managed is not "true")`;
    return { kind: 'skipped', keyId: key.keyId, keyArn: key.arn, reason };
  }
  const selfTestRun = settledValue(tags)[SELF_TEST_TAG];
  if (options.skipSelfTestKeys && selfTestRun !== undefined) {
    const reason = `${key.keyId} is a throwaway key of self-test run ${selfTestRun}, which validates its own rotations`;
    return { kind: 'skipped', keyId: key.keyId, keyArn: key.arn, reason };
  }

  const preconditions = [checkKeyState(key), checkKeyType(key)];
  const preconditionFailed = preconditionReasonOf(key);
  if (preconditionFailed) {
    const checks = preconditions;
    return { kind: 'assessed', key, declared, checks, savedRecord, failure: 'precondition-failed', preconditionFailed };
  }

  // Round trip 2: the managed key's rotation settings and history, and the first half of the round trip.
  const probe = deps.random.bytes(CANARY_BYTES);
  const [status, history, probeEncrypted] = await Promise.allSettled([
    keys.getRotationStatus(event.keyId),
    keys.listRotations(event.keyId),
    deps.crypto.encrypt(key.arn, probe, canaryContext(key.keyId)),
  ]);

  const rotations = settledValue(history);
  const recorded = checkRotationRecorded(event, rotations, deps.toleranceMs);
  const rotationType = event.rotationType ?? recorded.record?.rotationType;
  const readChecks = [
    ...preconditions,
    checkRotationSchedule(rotationType, settledValue(status), declared),
    recorded.check,
    checkCurrentMaterial(event, key, rotations),
  ];

  const aliases = settledValue(aliasesOfKey);
  const roundTripVia = declared.aliases.find((name) => aliases.some((alias) => alias.aliasName === name)) ?? key.arn;
  // Round trip 3: decrypt the probe, encrypt the next canary through the alias, decrypt the old canary.
  const [roundTrip, canary, aliasVerification] = await Promise.all([
    runRoundTrip(key, { plaintext: probe, encrypted: probeEncrypted }, roundTripVia, deps),
    checkCanary(key, savedRecord, deps),
    verifyDeclaredAliases(key.keyId, declared.aliases, aliases, (name) => aliasTargetOf(keys, name)),
  ]);
  const checks = [...readChecks, roundTrip.check, canary];
  return {
    kind: 'assessed',
    key,
    declared,
    checks,
    rotationType,
    recorded: recorded.record,
    aliases: aliasVerification,
    savedRecord,
    newCanary: roundTrip.newCanary,
    roundTripVia,
    failure: checks.some((check) => check.status === 'failed') ? 'verification-failed' : undefined,
  };
};

/**
 * `onRotation`: assess, then tell: notification, canary refresh, and a report the handler records.
 * All of it under the key's lease, taken before anything is read: the key's record (canary,
 * failures told) is read, changed and written back, and the same event arrives more than once,
 * as a drift record or a `rotate` run may write that record at the same moment.
 */
export const validateRotation = async (
  event: RotationEvent,
  deps: RotationValidationDeps & LeaseDeps,
): Promise<RotationValidationReport> => {
  requireEventForThisService(event, deps.location);
  requireLocalKeyRef(event.keyArn, deps.location, 'resources.0');
  return holdingKeys([event.keyId], 'rotation validation', deps, () => validateUnderLease(event, deps));
};

const validateUnderLease = async (
  event: RotationEvent,
  deps: RotationValidationDeps,
): Promise<RotationValidationReport> => {
  const assessment = await assessRotation(event, deps, { skipSelfTestKeys: true });
  if (assessment.kind === 'skipped') {
    return skip(
      { eventId: event.eventId, keyId: assessment.keyId, keyArn: assessment.keyArn, declaredStateProblems: [] },
      assessment.reason,
    );
  }
  if (assessment.failure) return reportFailure(event, { ...assessment, failure: assessment.failure }, deps);
  const { key, declared, checks, rotationType, aliases, savedRecord } = assessment;
  const aliasVerification = aliases as AliasVerification;
  // A multi-Region primary's replicas must carry its new material: a lag is told apart (ReplicaMaterialLagging).
  const replicas =
    deps.replicas && isMultiRegionPrimary(key)
      ? await watchReplicas(
          key,
          declared.aliases,
          savedRecord.status === 'fulfilled' ? savedRecord.value : {},
          { kind: 'onRotation', eventId: event.eventId },
          { ...deps, replicas: deps.replicas },
        )
      : undefined;
  const summary = [
    validatedSummary(key, assessment.roundTripVia ?? key.arn, aliasVerification, declared),
    ...(replicas?.unknown.length ? [`replicas not compared: ${replicas.unknown.map((r) => r.detail).join('; ')}`] : []),
  ].join('; ');
  const severity: Severity =
    aliasVerification.drift.length > 0 || declared.problems.length > 0 || (replicas?.unknown.length ?? 0) > 0
      ? 'WARNING'
      : 'INFO';
  // Round trip 4: keep the new canary (with the rotation validated, and the replicas' lag) and tell people, at once.
  const refreshed = assessment.newCanary
    ? keepCanary(key.keyId, savedRecord, assessment.newCanary, deps, {
        ...validatedRotationUpdate(savedRecord, assessment.recorded),
        ...(replicas ? { replicaLag: replicas.replicaLag } : {}),
      })
    : Promise.resolve();
  const published = deps.notifier.publish(
    validationNotification(
      'RotationValidated',
      severity,
      summary,
      { event, key, declared },
      {
        rotationType: rotationType ?? 'UNKNOWN',
        checks,
        aliasDrift: aliasVerification.drift,
        undeclaredAliases: aliasVerification.undeclared,
        declaredStateProblems: declared.problems,
        ...(replicas ? { replicas: replicas.checks } : {}),
      },
      deps.clock,
    ),
  );
  await Promise.all([refreshed, published]);
  deps.log.info('Rotation validated', { keyId: key.keyId, eventId: event.eventId, severity, checks });
  return {
    eventId: event.eventId,
    keyId: key.keyId,
    keyArn: key.arn,
    declaredStateProblems: declared.problems,
    outcome: 'validated',
    rotationType,
    summary,
    checks,
    aliases: aliasVerification,
    notification: { type: 'RotationValidated', severity, status: 'published' },
    firstReport: true,
    ...(replicas
      ? {
          replicas: {
            checks: replicas.checks,
            lagging: replicas.lagging,
            ...(replicas.notified ? { notified: replicas.notified } : {}),
          },
        }
      : {}),
  };
};

/**
 * The rotation a passed validation records as the key's last validated one, unless the record
 * already names a later one (a late or repeated event must not send the audit back over
 * rotations already validated).
 */
export const validatedRotationUpdate = (
  savedRecord: PromiseSettledResult<KeyRecord>,
  recorded: RotationRecord | undefined,
): Pick<KeyRecord, 'lastValidatedRotation'> => {
  if (!recorded?.rotationDate) return {};
  const onRecord = savedRecord.status === 'fulfilled' ? savedRecord.value.lastValidatedRotation : undefined;
  if (onRecord && Date.parse(onRecord.rotationDate) > recorded.rotationDate.getTime()) return {};
  return {
    lastValidatedRotation: {
      ...(recorded.keyMaterialId ? { keyMaterialId: recorded.keyMaterialId } : {}),
      rotationDate: recorded.rotationDate.toISOString(),
    },
  };
};

/**
 * The error a failed report ends the invocation with, so that Lambda retries it and the
 * on-failure destination keeps the event. Precondition failures name the key's state.
 */
export const failureOf = (report: RotationValidationReport): Error | undefined => {
  if (report.outcome !== 'failed' || !report.failure) return undefined;
  const message = `${report.summary} [${report.failure.message}]`;
  if (report.failure.kind === 'precondition-failed') {
    return new PreconditionFailedError(report.failure.reason ?? 'key-invalid-state', message);
  }
  return new VerificationFailedError(message);
};

const recordOrEmpty = (settled: PromiseSettledResult<KeyRecord>, log: Log): KeyRecord => {
  if (settled.status === 'fulfilled') return settled.value;
  // A store outage must not hide a rotation's result: validate without the canary, say so.
  log.warn('Validation state could not be read; validating without the canary', {
    error: describeError(settled.reason),
  });
  return {};
};

const skip = (
  base: Pick<RotationValidationReport, 'eventId' | 'keyId' | 'keyArn' | 'declaredStateProblems'>,
  summary: string,
): RotationValidationReport => ({ ...base, outcome: 'skipped', summary, checks: [], firstReport: true });

/**
 * The round trip: the probe encrypted with the key (round trip 1) must decrypt to itself, and
 * fresh data encrypted through the alias applications use must land on this key. That
 * ciphertext becomes the canary the next rotation has to decrypt.
 */
const runRoundTrip = async (
  key: KeyDescription,
  probe: { plaintext: Uint8Array; encrypted: PromiseSettledResult<{ ciphertext: Uint8Array; keyArn: string }> },
  via: string,
  deps: RotationAssessmentDeps,
): Promise<{ check: CheckResult; newCanary?: Canary }> => {
  const failed = (detail: string) => ({ check: { id: 'round-trip' as const, status: 'failed' as const, detail } });
  const context = canaryContext(key.keyId);
  const canaryPlaintext = deps.random.bytes(CANARY_BYTES);
  try {
    const encrypted = settledValue(probe.encrypted);
    const [decrypted, throughAlias] = await Promise.all([
      deps.crypto.decrypt(key.arn, encrypted.ciphertext, context),
      via === key.arn ? Promise.resolve(undefined) : deps.crypto.encrypt(via, canaryPlaintext, context),
    ]);
    if (!equalBytes(decrypted.plaintext, probe.plaintext)) {
      return failed('decryption returned different data than was encrypted');
    }
    if (throughAlias && !sameKey(throughAlias.keyArn, key.arn)) {
      return failed(`encrypting through ${via} used key ${keyIdOf(throughAlias.keyArn)}, not ${key.keyId}`);
    }
    const canary = throughAlias
      ? { ciphertext: throughAlias.ciphertext, plaintext: canaryPlaintext }
      : { ciphertext: encrypted.ciphertext, plaintext: probe.plaintext };
    return {
      check: {
        id: 'round-trip',
        status: 'passed',
        detail: `encrypted and decrypted with ${key.keyId}, with an encryption context${throughAlias ? `; encrypting through ${via} reaches it` : ''}`,
      },
      newCanary: {
        ciphertext: Buffer.from(canary.ciphertext).toString('base64'),
        plaintextSha256: deps.digest.sha256Hex(canary.plaintext),
        createdAt: deps.clock.now().toISOString(),
      },
    };
  } catch (error) {
    return failed(`round trip with ${key.keyId} through ${via} failed: ${verdictOrRethrow(error)}`);
  }
};

/** Data encrypted before the rotation must still decrypt after it: KMS keeps every earlier material. */
const checkCanary = async (
  key: KeyDescription,
  savedRecord: PromiseSettledResult<KeyRecord>,
  deps: RotationAssessmentDeps,
): Promise<CheckResult> => {
  if (savedRecord.status === 'rejected') {
    return {
      id: 'canary',
      status: 'skipped',
      detail: `the canary on record could not be read (${describeError(savedRecord.reason)}); validated without it`,
    };
  }
  const { canary } = savedRecord.value;
  if (!canary) {
    return {
      id: 'canary',
      status: 'skipped',
      detail: 'no data encrypted before this rotation is on record yet; this validation records it for the next one',
    };
  }
  try {
    const decrypted = await deps.crypto.decrypt(
      key.arn,
      Buffer.from(canary.ciphertext, 'base64'),
      canaryContext(key.keyId),
    );
    if (deps.digest.sha256Hex(decrypted.plaintext) !== canary.plaintextSha256) {
      return {
        id: 'canary',
        status: 'failed',
        detail: `data encrypted on ${canary.createdAt} decrypts to something else`,
      };
    }
    return {
      id: 'canary',
      status: 'passed',
      detail: `data encrypted on ${canary.createdAt}, before the rotation, still decrypts`,
    };
  } catch (error) {
    return {
      id: 'canary',
      status: 'failed',
      detail: `data encrypted on ${canary.createdAt}, before the rotation, no longer decrypts: ${verdictOrRethrow(error)}`,
    };
  }
};

/**
 * Keeps a new canary with the rest of the key's record. A record that could not be read is not
 * overwritten: that would drop the canary on record (or the drift and failures remembered) for
 * good, where skipping the refresh only keeps the previous canary, which still decrypts.
 */
export const keepCanary = async (
  keyId: string,
  savedRecord: PromiseSettledResult<KeyRecord>,
  canary: Canary,
  deps: Pick<RotationValidationDeps, 'records' | 'log'>,
  /** What else the validation records with it: the rotation validated, the replicas' lag. */
  alongside: Partial<KeyRecord> = {},
): Promise<void> => {
  if (savedRecord.status === 'rejected') {
    deps.log.warn('Canary not refreshed: the state on record could not be read, so it is not overwritten', { keyId });
    return;
  }
  await refreshCanary(keyId, { ...savedRecord.value, ...alongside, canary }, deps);
};

/** The canary is refreshed only after a passed validation; losing a refresh is logged, not fatal. */
export const refreshCanary = async (
  keyId: string,
  record: KeyRecord,
  deps: Pick<RotationValidationDeps, 'records' | 'log'>,
): Promise<void> => {
  try {
    await deps.records.save(keyId, record);
  } catch (error) {
    deps.log.warn('Canary could not be refreshed; the previous one stays on record', {
      keyId,
      error: describeError(error),
    });
  }
};

const reportFailure = async (
  event: RotationEvent,
  assessment: Extract<RotationAssessment, { kind: 'assessed' }> & {
    failure: 'precondition-failed' | 'verification-failed';
  },
  deps: RotationValidationDeps,
): Promise<RotationValidationReport> => {
  const { key, declared, checks, aliases, savedRecord, failure: kind, preconditionFailed } = assessment;
  const failedChecks = checks.filter((check) => check.status === 'failed');
  const message = failedChecks.map((check) => `${check.id}: ${check.detail}`).join('; ');
  const summary = `Rotation of ${declared.aliases[0] ?? key.keyId} FAILED validation: ${failedChecks[0]?.detail ?? message}`;
  const record = recordOrEmpty(savedRecord, deps.log);
  // Lambda retries and EventBridge redeliveries carry the same event id; KMS may also send
  // the same rotation twice, which the material id (when present) recognises.
  const failureKey = `${key.keyId}:${event.currentKeyMaterialId ?? event.eventId}`;
  const alreadyNotified = record.notifiedFailures?.includes(failureKey) ?? false;
  const report: RotationValidationReport = {
    outcome: 'failed',
    eventId: event.eventId,
    keyId: key.keyId,
    keyArn: key.arn,
    rotationType: assessment.rotationType ?? event.rotationType,
    summary,
    checks,
    aliases,
    declaredStateProblems: declared.problems,
    failure: { kind, message, ...(preconditionFailed ? { reason: preconditionFailed } : {}) },
    notification: {
      type: 'RotationValidationFailed',
      severity: 'CRITICAL',
      status: alreadyNotified ? 'already-notified' : 'published',
    },
    firstReport: !alreadyNotified,
  };
  deps.log.error('Rotation validation failed', { keyId: key.keyId, eventId: event.eventId, checks, alreadyNotified });
  if (alreadyNotified) return report;

  await deps.notifier.publish(
    validationNotification(
      'RotationValidationFailed',
      'CRITICAL',
      summary,
      { event, key, declared },
      {
        rotationType: report.rotationType ?? 'UNKNOWN',
        failure: kind,
        checks,
        aliasDrift: aliases?.drift ?? [],
        declaredStateProblems: declared.problems,
      },
      deps.clock,
    ),
  );
  if (savedRecord.status === 'rejected') {
    // Saving now would replace the unread state (and its canary) with the failure alone.
    deps.log.warn('Could not record that the failure was notified: the state on record could not be read', {
      keyId: key.keyId,
    });
    return report;
  }
  const notifiedFailures = [...(record.notifiedFailures ?? []), failureKey].slice(-MAX_REMEMBERED_FAILURES);
  try {
    await deps.records.save(key.keyId, { ...record, notifiedFailures });
  } catch (error) {
    // At worst a retry notifies a second time: better twice than never.
    deps.log.warn('Could not record that the failure was notified', { keyId: key.keyId, error: describeError(error) });
  }
  return report;
};

const validatedSummary = (
  key: KeyDescription,
  via: string,
  aliases: AliasVerification,
  declared: DeclaredState,
): string => {
  const name = declared.aliases[0] ?? key.keyId;
  const parts = [`Rotation of ${name} validated: new material encrypts and decrypts (through ${via})`];
  if (aliases.drift.length > 0) parts.push(`alias drift: ${aliases.drift.map(describeAliasDrift).join('; ')}`);
  if (declared.problems.length > 0) parts.push(`declared state unreadable: ${declared.problems.join('; ')}`);
  return parts.join('; ');
};

/** `RotationValidated` or `RotationValidationFailed`, about the rotated key, naming the event. */
const validationNotification = (
  type: 'RotationValidated' | 'RotationValidationFailed',
  severity: Severity,
  summary: string,
  rotation: { event: RotationEvent; key: KeyDescription; declared: DeclaredState },
  details: Record<string, unknown>,
  clock: Clock,
): Notification =>
  notificationOf({
    type,
    severity,
    about: { keyId: rotation.key.keyId, keyArn: rotation.key.arn, aliases: rotation.declared.aliases },
    where: rotation.event,
    at: clock.now(),
    summary,
    details: { eventId: rotation.event.eventId, eventTime: rotation.event.time.toISOString(), ...details },
  });
