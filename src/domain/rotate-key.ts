import { ALIAS_SWAP_STEPS } from './alias-swap';
import { locateRollback, ROLLBACK_STEPS, type RollbackState } from './alias-swap-rollback';
import { type AliasSwapDeps, locateSwap, type SwapState } from './alias-swap-state';
import type { DeclaredState } from './declared-state';
import { describeError, excerpt, KmsRotationError, PreconditionFailedError, VerificationFailedError } from './errors';
import { currentMaterialOf, type MaterialReport, materialReportOf } from './imported-material';
import { classifyKey } from './key-classification';
import { holdingKeys, type LeaseDeps } from './key-lease';
import { LINEAGE, lineageStateOf } from './lineage';
import type { KeyDescription, Notification, Severity, Tags } from './model';
import { notificationOf } from './notification';
import { locateOnDemand, ON_DEMAND_STEPS, type OnDemandDeps, type OnDemandState } from './on-demand-rotation';
import type { Notifier } from './ports';
import { awaitRollbackReadBack, awaitSwapReadBack } from './read-back';
import type { CheckResult } from './rotation-checks';
import { chooseStrategy, type RequestedStrategy, type Strategy } from './rotation-strategy';
import { requireLocalKeyRef } from './service-location';
import type { StepReport } from './step-report';

export interface RotateRequest {
  /** Alias name, key id or key ARN. */
  key: string;
  strategy: RequestedStrategy;
  dryRun: boolean;
  reason?: string;
  action: 'rotate' | 'rollback';
  /** Rotate even though the key was rotated moments ago (see `recentRotationMs`). */
  force?: boolean;
  /** Organization mode: the member account and Region the key is in (both or neither; docs/manual-invoke.md). */
  account?: string;
  region?: string;
}

export interface RotateReport {
  action: 'rotate' | 'rollback';
  requestedKey: string;
  /** The key the declared aliases point at when the work is done. */
  keyId: string;
  keyArn?: string;
  aliases: string[];
  strategy?: Strategy;
  dryRun: boolean;
  rotationId?: string;
  /** `in-progress`: KMS accepted an on-demand rotation that was not recorded within the wait. */
  outcome: 'completed' | 'planned' | 'in-progress' | 'nothing-to-do';
  summary: string;
  steps: StepReport[];
  predecessor?: string;
  successor?: string;
  checks?: CheckResult[];
  /**
   * Imported material (`Origin: EXTERNAL`), on demand: the key's current material (its id, state,
   * import state, expiry) and the material still waiting as `PENDING_ROTATION`, read after the
   * rotation (before it, in a dry run).
   */
  keyMaterial?: { current?: MaterialReport; pendingRotation: MaterialReport[] };
  notification?: { type: Notification['type']; severity: Severity };
}

export interface RotateDeps extends AliasSwapDeps, OnDemandDeps, LeaseDeps {
  notifier: Notifier;
}

/** The error a rotation that began and then failed ends with, after its CRITICAL notification. */
export class RotationFailedError extends KmsRotationError {
  /** The cause's kind: a throttled call is an AWS service error, a key that failed its checks a verification failure. */
  readonly kind: KmsRotationError['kind'];
  /** The cause's: a rotation that failed on throttling may pass when run again; one that failed verification will not. */
  readonly retryable: boolean;
  constructor(
    message: string,
    readonly report: RotateReport,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'RotationFailedError';
    const cause = options?.cause;
    this.kind = cause instanceof KmsRotationError ? cause.kind : 'verification-failed';
    this.retryable = cause instanceof KmsRotationError ? cause.retryable : false;
  }
}

/**
 * `rotate`: on-demand rotation for keys KMS can rotate, alias-swap for keys it cannot,
 * rollback of the last alias-swap. Refusals come before any change; once work has begun, a
 * failure is notified CRITICAL and re-running the same request converges.
 *
 * The orchestration lives here: the request, the leases (`underLease`), the strategy
 * (`rotateLocated`), the steps (`ALIAS_SWAP_STEPS` in `alias-swap.ts`, `ON_DEMAND_STEPS` in
 * `on-demand-rotation.ts`, `ROLLBACK_STEPS` in `alias-swap-rollback.ts`) and the notification.
 */
export const rotateKey = async (request: RotateRequest, deps: RotateDeps): Promise<RotateReport> => {
  requireLocalKeyRef(request.key, deps.location, 'key');
  const started = deps.clock.now().getTime();
  const steps: StepReport[] = [];
  let report: RotateReport = {
    action: request.action,
    requestedKey: request.key,
    keyId: request.key,
    aliases: [],
    dryRun: request.dryRun,
    outcome: 'planned',
    summary: '',
    steps,
  };
  const progress: SwapProgress = {};
  try {
    report =
      request.action === 'rollback'
        ? await rollback(request, report, deps)
        : await rotate(request, report, deps, progress);
  } catch (error) {
    const began =
      steps.some((step) => step.status === 'done' || step.status === 'failed') ||
      (progress.swap !== undefined && swapBegun(progress.swap));
    if (!began || request.dryRun) throw error;
    const failed: RotateReport = {
      ...report,
      summary: `${request.action} of ${report.keyId} failed: ${describeError(error)}`,
    };
    await deps.notifier.publish(rotationNotification('RotationFailed', 'CRITICAL', failed, deps, started));
    throw new RotationFailedError(
      failed.summary,
      { ...failed, notification: { type: 'RotationFailed', severity: 'CRITICAL' } },
      {
        cause: error,
      },
    );
  }
  if (!request.dryRun && report.outcome !== 'nothing-to-do') {
    const severity: Severity = report.outcome === 'in-progress' ? 'WARNING' : 'INFO';
    await deps.notifier.publish(rotationNotification('RotationCompleted', severity, report, deps, started));
    report.notification = { type: 'RotationCompleted', severity };
  }
  deps.log.info(report.summary, { outcome: report.outcome, steps });
  return report;
};

const requireManaged = (key: KeyDescription, declared: DeclaredState): void => {
  // AWS managed keys cannot be tagged: name what the key is, not a tag nobody can add.
  const { keyClass, reason } = classifyKey(key);
  if (keyClass === 'aws-managed') {
    throw new PreconditionFailedError('aws-managed', `${key.keyId} cannot be rotated by kms-rotation: ${reason}`);
  }
  if (!declared.managed) {
    throw new PreconditionFailedError(
      'not-managed',
      `${key.keyId} is not managed by kms-rotation (tag kms-rotation:managed is not "true"); tag it to let kms-rotation rotate it`,
    );
  }
};

/** The alias-swap whose steps are running, so that a failure can tell whether the rotation has begun. */
interface SwapProgress {
  swap?: SwapState;
}

/**
 * An alias-swap has begun once its predecessor carries its rotation id: tagged by this run, or
 * by an earlier one this run resumes (whose steps then report `skipped`, not `done`).
 */
const swapBegun = (swap: SwapState): boolean => swap.predecessorTags[LINEAGE.rotationId] === swap.rotationId;

const LEASE_ATTEMPTS = 3;

const sameKeys = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && [...a].sort().every((keyId, index) => keyId === [...b].sort()[index]);

/**
 * Locates what the run would change, holds those keys' leases, and locates again under them:
 * what was read before the lease may be stale, another run having finished in between. When
 * the keys changed meanwhile (the rotation moved on), the leases follow them. A dry run
 * changes nothing and holds nothing.
 */
const underLease = async <S>(
  request: RotateRequest,
  deps: RotateDeps,
  /** `firstLook`: only to learn which keys to hold; nothing is prepared, no rotation named. */
  locate: (deps: RotateDeps, firstLook: boolean) => Promise<S>,
  keysOf: (state: S) => string[],
  work: (state: S) => Promise<RotateReport>,
): Promise<RotateReport> => {
  if (request.dryRun) return work(await locate(deps, false));
  const purpose = request.reason ? `${request.action}: ${excerpt(request.reason, 100)}` : request.action;
  let keys = keysOf(await locate({ ...deps, ids: { newId: () => 'not-yet-named' } }, true));
  for (let attempt = 1; attempt <= LEASE_ATTEMPTS; attempt++) {
    const held = keys;
    const outcome: { report: RotateReport } | { keys: string[] } = await holdingKeys(held, purpose, deps, async () => {
      const state = await locate(deps, false);
      return sameKeys(keysOf(state), held) ? { report: await work(state) } : { keys: keysOf(state) };
    });
    if ('report' in outcome) return outcome.report;
    keys = outcome.keys;
  }
  throw new PreconditionFailedError(
    'key-busy',
    `${request.key} changed hands ${LEASE_ATTEMPTS} times while this run took its lease: other runs are rotating it; nothing was changed, try again later`,
  );
};

const rotate = (
  request: RotateRequest,
  report: RotateReport,
  deps: RotateDeps,
  progress: SwapProgress,
): Promise<RotateReport> =>
  underLease(
    request,
    deps,
    (located, firstLook) =>
      locateSwap(request.key, located, {
        // A key named by id is read before anything is known about it: then only "on-demand" rules a successor out.
        prepareSuccessor: (key) =>
          !firstLook &&
          !request.dryRun &&
          request.strategy !== 'on-demand' &&
          (key === undefined || request.strategy === 'alias-swap' || classifyKey(key).keyClass === 'alias-swap'),
      }),
    // The rotation's predecessor: named by alias or id, before or after the swap, every run of one rotation meets there.
    (swap) => [swap.predecessor.keyId],
    (swap) => rotateLocated(swap, request, report, deps, progress),
  );

const rotateLocated = async (
  swap: SwapState,
  request: RotateRequest,
  report: RotateReport,
  deps: RotateDeps,
  progress: SwapProgress,
): Promise<RotateReport> => {
  swap.reason = request.reason;
  const key = swap.predecessor;
  report.keyId = key.keyId;
  report.keyArn = key.arn;
  report.aliases = swap.declared.aliases;
  requireManaged(key, swap.declared);

  // A rotation already under way is resumed with the strategy it was started with.
  const strategy: Strategy = swap.resumed
    ? 'alias-swap'
    : chooseStrategy(key.keyId, classifyKey(key), request.strategy, await hasPendingImportedMaterial(key, deps));
  if (swap.resumed && request.strategy === 'on-demand') {
    throw new PreconditionFailedError(
      'strategy-mismatch',
      `${key.keyId} has an unfinished alias-swap rotation ${swap.rotationId}; re-run with strategy "alias-swap" or "auto" to finish it`,
    );
  }
  report.strategy = strategy;

  const recent =
    swap.resumed || request.force || strategy !== 'alias-swap'
      ? undefined
      : recentAliasSwap(swap.predecessorTags, deps);
  if (recent) {
    report.outcome = 'nothing-to-do';
    report.summary = `${key.keyId} was rotated ${recent}, less than ${Math.round(deps.recentRotationMs / 60_000)} minutes ago; nothing to do (pass "force": true to rotate it again now)`;
    return report;
  }

  if (strategy === 'on-demand') return rotateOnDemand(key, request, report, deps);
  progress.swap = swap;
  return rotateBySwap(swap, report, deps, request.dryRun);
};

/**
 * Runs the alias-swap's steps (`ALIAS_SWAP_STEPS`), group by group; a failed step ends the run,
 * once the steps of its group have settled.
 */
const runSwapSteps = async (swap: SwapState, report: RotateReport, deps: RotateDeps, dryRun: boolean) => {
  for (const group of ALIAS_SWAP_STEPS) {
    const results = await Promise.allSettled(group.map((step) => step(swap, deps, dryRun)));
    report.successor = swap.successor?.keyId;
    for (const result of results) if (result.status === 'fulfilled') report.steps.push(result.value);
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  }
};

/** The alias-swap of a located rotation: its steps, then (once it wrote anything) its read-back, then the report. */
const rotateBySwap = async (swap: SwapState, report: RotateReport, deps: RotateDeps, dryRun: boolean) => {
  const key = swap.predecessor;
  report.rotationId = swap.rotationId;
  report.predecessor = key.keyId;
  await runSwapSteps(swap, report, deps, dryRun);
  const allSkipped = report.steps.every((step) => step.status === 'skipped');
  // What this run wrote must read back before it reports: else the next run reads the rotation as not begun.
  if (!dryRun && !allSkipped) await awaitSwapReadBack(swap, deps);
  report.outcome = dryRun ? 'planned' : allSkipped ? 'nothing-to-do' : 'completed';
  if (swap.successor && !dryRun) {
    report.keyId = swap.successor.keyId;
    report.keyArn = swap.successor.arn;
  }
  report.summary = dryRun
    ? `Would rotate ${key.keyId} by alias-swap: ${report.steps.map((step) => `${step.step} (${step.status})`).join(', ')}`
    : `Rotated ${key.keyId} by alias-swap to ${swap.successor?.keyId}: ${swap.declared.aliases.join(', ') || 'no aliases'} now point at the successor; ${key.keyId} stays enabled`;
  return report;
};

/**
 * Runs the on-demand steps (`ON_DEMAND_STEPS`) in order; a failed step ends the run and is
 * returned: `waitForRotation` when KMS has not recorded the rotation yet, `validate` when the
 * rotated key failed its checks. The checks go into the report once `validate` ran them, the
 * report of a run that fails after them included.
 */
const runOnDemandSteps = async (
  state: OnDemandState,
  report: RotateReport,
  deps: RotateDeps,
  dryRun: boolean,
): Promise<StepReport | undefined> => {
  for (const step of ON_DEMAND_STEPS) {
    const done = await step(state, deps, dryRun).finally(() => {
      if (state.checks) report.checks = state.checks;
    });
    if (done) report.steps.push(done);
    if (done?.status === 'failed') return done;
  }
  return undefined;
};

/** The on-demand rotation of a key KMS can rotate: located under the lease, its steps, then the report. */
const rotateOnDemand = async (
  key: KeyDescription,
  request: RotateRequest,
  report: RotateReport,
  deps: RotateDeps,
): Promise<RotateReport> => {
  const state = await locateOnDemand(key, deps, { force: request.force });
  const stopped = await runOnDemandSteps(state, report, deps, request.dryRun);
  const nth = `rotation ${state.used + 1} of ${deps.onDemandLimit}`;
  if (key.origin === 'EXTERNAL' && stopped?.step !== 'validate')
    report.keyMaterial = await importedMaterialOf(key, deps);
  if (request.dryRun) {
    report.outcome = 'planned';
    report.summary = state.recent
      ? `Would validate the on-demand rotation of ${key.keyId} made at ${state.recent.rotationDate?.toISOString()}`
      : `Would rotate ${key.keyId} on demand (${nth})`;
    return report;
  }
  if (stopped?.step === 'validate') {
    throw new VerificationFailedError(`the rotated key failed validation: ${stopped.detail}`);
  }
  if (stopped) {
    report.outcome = 'in-progress';
    report.summary = `On-demand rotation of ${key.keyId} started; not yet recorded by KMS, onRotation will validate it`;
    return report;
  }
  report.outcome = 'completed';
  const current = report.keyMaterial?.current;
  report.summary = current
    ? `Rotated ${key.keyId} on demand and validated the new key material (${nth}): current material ${current.keyMaterialId}${current.importState ? `, ${current.importState}` : ''}`
    : `Rotated ${key.keyId} on demand and validated the new key material (${nth})`;
  return report;
};

/** An imported key's materials as KMS reports them now: the current one, and those waiting as `PENDING_ROTATION`. */
const importedMaterialOf = async (key: KeyDescription, deps: RotateDeps): Promise<RotateReport['keyMaterial']> => {
  const [described, materials] = await Promise.all([
    deps.keys.describeKey(key.keyId),
    deps.keys.listRotations(key.keyId, { includeKeyMaterial: true }),
  ]);
  const current = currentMaterialOf(materials, described.currentKeyMaterialId);
  const pendingRotation = materials
    .filter((record) => record.keyMaterialState === 'PENDING_ROTATION')
    .map(materialReportOf);
  return { ...(current ? { current } : {}), pendingRotation };
};

/** When the key took over in an alias-swap that finished within `recentRotationMs`, how it was. */
const recentAliasSwap = (tags: Tags, deps: RotateDeps): string | undefined => {
  const rotatedAt = Date.parse(tags[LINEAGE.rotatedAt] ?? '');
  return lineageStateOf(tags) === 'active' && rotatedAt > deps.clock.now().getTime() - deps.recentRotationMs
    ? `by alias-swap (rotation ${tags[LINEAGE.rotationId]}) at ${new Date(rotatedAt).toISOString()}`
    : undefined;
};

const hasPendingImportedMaterial = async (key: KeyDescription, deps: RotateDeps): Promise<boolean> => {
  if (key.origin !== 'EXTERNAL') return false;
  const materials = await deps.keys.listRotations(key.keyId, { includeKeyMaterial: true });
  return materials.some((record) => record.keyMaterialState === 'PENDING_ROTATION');
};

const rollback = (request: RotateRequest, report: RotateReport, deps: RotateDeps): Promise<RotateReport> =>
  underLease(
    request,
    deps,
    (located) => locateRollback(request.key, located),
    // Both keys the rollback changes; a swap of either holds one of them.
    (state) => [state.current.keyId, state.predecessor.keyId],
    (state) => rollbackLocated(state, request, report, deps),
  );

const rollbackLocated = async (
  state: RollbackState,
  request: RotateRequest,
  report: RotateReport,
  deps: RotateDeps,
): Promise<RotateReport> => {
  report.keyId = request.dryRun ? state.current.keyId : state.predecessor.keyId;
  report.keyArn = request.dryRun ? state.current.arn : state.predecessor.arn;
  report.aliases = state.declared.aliases;
  report.predecessor = state.predecessor.keyId;
  report.successor = state.current.keyId;
  report.strategy = 'alias-swap';
  for (const step of ROLLBACK_STEPS) report.steps.push(await step(state, deps, request.dryRun));
  const allSkipped = report.steps.every((step) => step.status === 'skipped' || step.step === 'verifyPredecessor');
  if (!request.dryRun && !allSkipped) await awaitRollbackReadBack(state, deps);
  report.outcome = request.dryRun ? 'planned' : allSkipped ? 'nothing-to-do' : 'completed';
  report.summary = request.dryRun
    ? `Would roll back ${state.current.keyId} to ${state.predecessor.keyId}`
    : `Rolled back: ${state.declared.aliases.join(', ') || 'no aliases'} point at ${state.predecessor.keyId} again; ${state.current.keyId} stays enabled`;
  return report;
};

/** `RotationCompleted` or `RotationFailed`: the run's report, with how long it took. */
const rotationNotification = (
  type: 'RotationCompleted' | 'RotationFailed',
  severity: Severity,
  report: RotateReport,
  deps: RotateDeps,
  startedMs: number,
): Notification =>
  notificationOf({
    type,
    severity,
    about: { keyId: report.keyId, ...(report.keyArn ? { keyArn: report.keyArn } : {}), aliases: report.aliases },
    where: deps.location,
    at: deps.clock.now(),
    summary: report.summary,
    details: {
      action: report.action,
      strategy: report.strategy,
      rotationId: report.rotationId,
      predecessor: report.predecessor,
      successor: report.successor,
      steps: report.steps,
      checks: report.checks,
      ...(report.keyMaterial ? { keyMaterial: report.keyMaterial } : {}),
      durationMs: deps.clock.now().getTime() - startedMs,
    },
  });
