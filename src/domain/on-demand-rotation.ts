import { PreconditionFailedError } from './errors';
import type { KeyDescription, RotationRecord, RotationStatus } from './model';
import type { KeyAdmin, Notifier, Sleeper } from './ports';
import { isMultiRegionPrimary, watchReplicas } from './replica-material';
import type { CheckResult } from './rotation-checks';
import type { StepReport } from './step-report';
import { assessRotation, keepCanary, type RotationAssessmentDeps, validatedRotationUpdate } from './validate-rotation';

/**
 * On-demand rotation, for keys KMS can rotate: KMS makes new key material under the same key
 * id, ARN and aliases, and the run validates it with the checks of `onRotation`. Named steps
 * like the alias-swap's (`alias-swap.ts`): `locateOnDemand` reads where the key stands and
 * refuses what KMS would refuse; then `rotateKeyOnDemand`, `waitForRotation` and `validate`,
 * each planning in a dry run and acting otherwise. Nothing is remembered between runs but the
 * key's rotation history: a request moments after an on-demand rotation (a re-run after a
 * crash or a lost answer) validates that rotation again instead of spending another.
 */

export interface OnDemandDeps extends RotationAssessmentDeps {
  admin: KeyAdmin;
  sleeper: Sleeper;
  /** Per-key on-demand rotation limit (KMS: 25, not adjustable). */
  onDemandLimit: number;
  /** How long to wait for KMS to record an on-demand rotation. */
  rotationWaitMs: number;
  /**
   * A request for a key rotated less than this long ago is taken as a re-run of that rotation
   * (after a crash or a timeout the caller never heard back from), not as a new one.
   */
  recentRotationMs: number;
  /** With `replicas`: where a multi-Region primary's lagging replicas are told (`rotate` passes its own). */
  notifier?: Notifier;
}

/** Where an on-demand rotation stands, read from the key's rotation history. */
export interface OnDemandState {
  key: KeyDescription;
  /** How many of its on-demand rotations the key has used. */
  used: number;
  /** An on-demand rotation less than `recentRotationMs` ago (unless forced): validated again, not repeated. */
  recent?: RotationRecord;
  /** The rotation `validate` checks: the recent one, or the one this run started, once KMS recorded it. */
  recorded?: RotationRecord;
  /** What `validate` found, once it ran. */
  checks?: CheckResult[];
}

/** An on-demand step: `undefined` when it has nothing to do and nothing to report in this run. */
export type OnDemandStepRun = (
  state: OnDemandState,
  deps: OnDemandDeps,
  dryRun: boolean,
) => Promise<StepReport | undefined>;

const onDemandCount = (history: readonly RotationRecord[]): number =>
  history.filter((record) => record.rotationType === 'ON_DEMAND').length;

const latestOnDemand = (history: readonly RotationRecord[]): RotationRecord | undefined =>
  history
    .filter((record) => record.rotationType === 'ON_DEMAND')
    .reduce<RotationRecord | undefined>(
      (latest, record) =>
        !latest?.rotationDate || (record.rotationDate && record.rotationDate > latest.rotationDate) ? record : latest,
      undefined,
    );

/** The latest on-demand rotation, when it is less than `recentRotationMs` old and the request does not force a new one. */
const recentOnDemand = (
  history: readonly RotationRecord[],
  force: boolean | undefined,
  deps: OnDemandDeps,
): RotationRecord | undefined => {
  const latest = latestOnDemand(history);
  return !force &&
    latest?.rotationDate &&
    latest.rotationDate.getTime() > deps.clock.now().getTime() - deps.recentRotationMs
    ? latest
    : undefined;
};

/** What KMS would refuse, refused before the call: its LimitExceededException would be retried by the SDK as throttling. */
const requireOnDemandAllowed = (
  key: KeyDescription,
  used: number,
  status: RotationStatus,
  deps: OnDemandDeps,
): void => {
  if (used >= deps.onDemandLimit) {
    throw new PreconditionFailedError(
      'on-demand-limit',
      `${key.keyId} has used ${used} of its ${deps.onDemandLimit} on-demand rotations; rotate it with strategy "alias-swap"`,
    );
  }
  if (status.onDemandRotationStartDate) {
    throw new PreconditionFailedError(
      'rotation-conflict',
      `${key.keyId} has an on-demand rotation in progress since ${status.onDemandRotationStartDate.toISOString()}; wait for it to finish`,
    );
  }
};

/**
 * Reads the key's rotation history and rotation status, at once. A request moments after an
 * on-demand rotation re-runs that rotation's validation (the caller may never have heard
 * back), rather than spending another of the key's rotations; any other request is refused
 * when the key has used its on-demand rotations or one is in progress.
 */
export const locateOnDemand = async (
  key: KeyDescription,
  deps: OnDemandDeps,
  options: { force?: boolean },
): Promise<OnDemandState> => {
  const [history, status] = await Promise.all([
    deps.keys.listRotations(key.keyId),
    deps.keys.getRotationStatus(key.keyId),
  ]);
  const used = onDemandCount(history);
  const recent = recentOnDemand(history, options.force, deps);
  if (!recent) requireOnDemandAllowed(key, used, status, deps);
  return { key, used, recent, recorded: recent };
};

/**
 * Step 1: KMS rotates the key on demand. Re-reads nothing: `locateOnDemand` read the history.
 * Idempotent within `recentRotationMs`: a rotation that recent is `skipped`, and validated again.
 */
export const rotateKeyOnDemand: OnDemandStepRun = async (state, deps, dryRun) => {
  const { key, used, recent } = state;
  if (recent) {
    return {
      step: 'rotateKeyOnDemand',
      status: 'skipped',
      detail: dryRun
        ? `rotated on demand at ${recent.rotationDate?.toISOString()}; that rotation is validated again`
        : `rotated on demand at ${recent.rotationDate?.toISOString()}, less than ${Math.round(deps.recentRotationMs / 60_000)} minutes ago: validating that rotation (pass "force": true to rotate again)`,
    };
  }
  if (dryRun) {
    return {
      step: 'rotateKeyOnDemand',
      status: 'planned',
      detail: `rotation ${used + 1} of ${deps.onDemandLimit} on demand`,
    };
  }
  await deps.admin.rotateKeyOnDemand(key.keyId);
  return { step: 'rotateKeyOnDemand', status: 'done', detail: `rotation ${used + 1} of ${deps.onDemandLimit} started` };
};

/**
 * Step 2: waits, polling the history, until KMS records the rotation this run started. Fails,
 * and so ends the run `in-progress`, when KMS has not recorded it within `rotationWaitMs`:
 * `onRotation` validates it when KMS reports it. A recent rotation, recorded long since, is not
 * waited for and not reported.
 */
export const waitForRotation: OnDemandStepRun = async (state, deps, dryRun) => {
  const wait = `${deps.rotationWaitMs / 1000} s`;
  if (dryRun) {
    return {
      step: 'waitForRotation',
      status: state.recent ? 'skipped' : 'planned',
      detail: `wait up to ${wait} for KMS to record it`,
    };
  }
  if (state.recent) return undefined;
  state.recorded = await waitForRecordedRotation(state, deps);
  if (!state.recorded) {
    return {
      step: 'waitForRotation',
      status: 'failed',
      detail: `KMS had not recorded the rotation after ${wait}; onRotation validates it when KMS reports it`,
    };
  }
  return {
    step: 'waitForRotation',
    status: 'done',
    detail: `recorded at ${state.recorded.rotationDate?.toISOString() ?? 'an unreported time'}`,
  };
};

/** Polls, with a growing interval, until the history holds one more on-demand rotation, or the wait is over. */
const waitForRecordedRotation = async (
  { key, used }: OnDemandState,
  deps: OnDemandDeps,
): Promise<RotationRecord | undefined> => {
  const deadline = deps.clock.now().getTime() + deps.rotationWaitMs;
  let interval = 500;
  for (;;) {
    const history = await deps.keys.listRotations(key.keyId);
    if (onDemandCount(history) > used) return latestOnDemand(history);
    if (deps.clock.now().getTime() + interval > deadline) return undefined;
    await deps.sleeper.sleep(interval);
    interval = Math.min(interval * 2, 5_000);
  }
};

/**
 * Step 3: the checks of `onRotation` on the recorded rotation: round trip, canary, rotation
 * history, aliases; fails when any check failed. Re-reads the key's whole state (its own
 * round trips: `assessRotation`); once every check passed, the round trip's ciphertext is kept
 * as the next canary. Idempotent: it writes only the canary, which a re-run replaces.
 */
export const validate: OnDemandStepRun = async (state, deps, dryRun) => {
  if (dryRun) {
    return {
      step: 'validate',
      status: 'planned',
      detail: 'the checks of onRotation: round trip, canary, history, aliases',
    };
  }
  // Recorded: the run ends at `waitForRotation` when KMS has not recorded the rotation.
  const { key, recorded } = state;
  const assessment = await assessRotation(
    {
      eventId: `rotate:${key.keyId}:${recorded?.rotationDate?.toISOString() ?? 'now'}`,
      time: recorded?.rotationDate ?? deps.clock.now(),
      account: deps.location.account,
      region: deps.location.region,
      keyId: key.keyId,
      keyArn: key.arn,
      rotationType: 'ON_DEMAND',
      currentKeyMaterialId: recorded?.keyMaterialId,
    },
    deps,
  );
  if (assessment.kind === 'skipped') throw new PreconditionFailedError('not-managed', assessment.reason);
  state.checks = assessment.checks;
  if (assessment.failure) return { step: 'validate', status: 'failed', detail: failedChecks(assessment.checks) };
  // A multi-Region primary's replicas must follow it: a new lag is told (ReplicaMaterialLagging) and kept on record.
  const replicas =
    deps.replicas && deps.notifier && isMultiRegionPrimary(assessment.key)
      ? await watchReplicas(
          assessment.key,
          assessment.declared.aliases,
          assessment.savedRecord.status === 'fulfilled' ? assessment.savedRecord.value : {},
          { kind: 'rotate', eventId: `rotate:${key.keyId}:${recorded?.rotationDate?.toISOString() ?? 'now'}` },
          { ...deps, replicas: deps.replicas, notifier: deps.notifier },
        )
      : undefined;
  if (assessment.newCanary) {
    await keepCanary(key.keyId, assessment.savedRecord, assessment.newCanary, deps, {
      ...validatedRotationUpdate(assessment.savedRecord, assessment.recorded),
      ...(replicas ? { replicaLag: replicas.replicaLag } : {}),
    });
  }
  const replicaDetail = replicas
    ? `; replicas: ${replicas.checks.map((check) => `${check.region} ${check.status}`).join(', ') || 'none'}`
    : '';
  return {
    step: 'validate',
    status: 'done',
    detail: `round trip, canary, rotation history and aliases checked${replicaDetail}`,
  };
};

const failedChecks = (checks: readonly CheckResult[]): string =>
  checks
    .filter((check) => check.status === 'failed')
    .map((check) => `${check.id}: ${check.detail}`)
    .join('; ');

/** The steps, in the order they run; a failed one ends the run. */
export const ON_DEMAND_STEPS: readonly OnDemandStepRun[] = [rotateKeyOnDemand, waitForRotation, validate];
