import { TAG_PREFIX } from './declared-state';
import { describeError, InvalidInputError, KmsRotationError, PreconditionFailedError } from './errors';
import { holdingKeys, type LeaseDeps } from './key-lease';
import { LINEAGE, lineageStateOf } from './lineage';
import type { KeyDescription, Notification, ServiceLocation, Severity, Tags } from './model';
import { notificationOf } from './notification';
import type { Clock, KeyReader, Log, Notifier, TaggedKeyFinder } from './ports';

/**
 * Retiring the predecessors of alias-swaps (docs/retire.md). A predecessor `finish` retired stays
 * enabled so that data it protected still decrypts; once nothing has used it for
 * `disableAfterDays` it is disabled (reversible), and after `deleteAfterDays` more without use it
 * is scheduled for deletion with the longest pending window. A use seen in between stops the
 * retirement for good: the key is enabled again (its deletion cancelled first) and ops are told.
 *
 * Each step is a short named function that re-reads what it decides on (tags, state, aliases,
 * last use), plans in a dry run, acts otherwise, and reports `skipped` what is already done.
 * Progress is kept on the predecessor as tags (`RETIREMENT`), written after the step's KMS call
 * and its notification: a run that dies in between finds the key in the new state with the old
 * tag, finishes the step (tag and notification) and tells it at least once.
 */

/** Tags that record a retirement's progress on the predecessor. */
export const RETIREMENT = {
  /** `disabled` → `deletion-scheduled`; `stopped` when a use was seen (never resumed by the service). */
  step: `${TAG_PREFIX}retirement`,
  /** ISO-8601: when the last step was taken. */
  at: `${TAG_PREFIX}retirement-at`,
  /** Why a retirement stopped, when it did. */
  stoppedBy: `${TAG_PREFIX}retirement-stopped-by`,
} as const;

export type RetirementStep = 'disabled' | 'deletion-scheduled' | 'stopped';

const retirementStepOf = (tags: Tags): RetirementStep | undefined => {
  const value = tags[RETIREMENT.step];
  return value === 'disabled' || value === 'deletion-scheduled' || value === 'stopped' ? value : undefined;
};

/** KMS's longest pending window for ScheduleKeyDeletion (7 to 30 days; docs/kms-facts.md#retiring-a-key). */
export const LONGEST_DELETION_WINDOW_DAYS = 30;

export type RetireMode = 'off' | 'dry-run' | 'enforce';

/**
 * Bounds of `retireDisableAfterDays` and `retireDeleteAfterDays` (config/stack.cjs holds the same):
 * at least a week, so that a weekly job's use is seen; at most a year.
 */
export const RETIRE_DAYS = { min: 7, max: 365 } as const;

/** The last successful cryptographic use KMS recorded, and since when it records (GetKeyLastUsage). */
export interface KeyLastUsage {
  lastUsedAt?: Date;
  operation?: string;
  /** When KMS began recording for this key, or its creation, whichever is later. */
  trackingStartDate?: Date;
}

/** The calls of a retirement, on retired predecessors only (IAM: `kms-rotation:state=retired`). */
export interface KeyRetirement {
  getKeyLastUsage(keyId: string): Promise<KeyLastUsage>;
  disableKey(keyId: string): Promise<void>;
  enableKey(keyId: string): Promise<void>;
  /** Returns when the key will be deleted, when KMS says. */
  scheduleKeyDeletion(keyId: string, pendingWindowDays: number): Promise<Date | undefined>;
  cancelKeyDeletion(keyId: string): Promise<void>;
  tagKey(keyId: string, tags: Readonly<Record<string, string>>): Promise<void>;
}

/** A use of a predecessor KMS refused because we disabled it or scheduled its deletion (a CloudTrail record). */
export interface UseAttempt {
  eventId: string;
  keyId: string;
  eventName: string;
  errorCode: string;
  at: Date;
  /** Who tried, as CloudTrail names them. */
  actor?: string;
}

export interface RetireSettings {
  mode: RetireMode;
  disableAfterDays: number;
  deleteAfterDays: number;
}

export interface RetireDeps extends LeaseDeps {
  keys: KeyReader;
  retirement: KeyRetirement;
  directory: TaggedKeyFinder;
  notifier: Notifier;
  clock: Clock;
  log: Log;
  location: ServiceLocation;
  settings: RetireSettings;
}

export interface RetireRequest {
  /** Plan only. Unset: a dry run unless the stage's `retireMode` is `enforce`. */
  dryRun?: boolean;
  /** Only this predecessor (a key id). */
  keyId?: string;
  /** Sent by the schedule. */
  scheduled?: boolean;
}

export type RetireStepName = 'checkLineage' | 'watchUse' | 'stopOnUse' | 'disablePredecessor' | 'scheduleDeletion';

export interface RetireStepReport {
  step: RetireStepName;
  status: 'done' | 'skipped' | 'planned' | 'failed';
  detail: string;
}

export interface RetiredKeyReport {
  keyId: string;
  /** Where the key stands after this run (or would, in a dry run). */
  outcome: 'not-ours' | 'aliased' | 'waiting' | 'disabled' | 'deletion-scheduled' | 'stopped' | 'failed';
  steps: RetireStepReport[];
  notification?: Notification;
}

export interface RetireReport {
  mode: RetireMode;
  dryRun: boolean;
  /** Retired predecessors looked at: a report that examined none says so, it never reads clean. */
  examined: number;
  keys: RetiredKeyReport[];
  summary: string;
}

const DAY_MS = 86_400_000;

/** What the steps of one key share: re-read by `readRetiredKey`, updated by each step that acts. */
interface RetiredKey {
  key: KeyDescription;
  tags: Tags;
  successorId: string;
  /** When the aliases moved away: the successor's `rotated-at`. */
  swappedAt: Date;
}

const isoOf = (value: string | undefined): Date | undefined => {
  if (value === undefined) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
};

const later = (...dates: (Date | undefined)[]): Date =>
  new Date(Math.max(...dates.flatMap((date) => (date ? [date.getTime()] : []))));

/**
 * "This service retired it": the predecessor is `retired` and names its successor, and the
 * successor names it back as its predecessor under the same rotation id and says when it became
 * active. Anything less is a key someone else tagged, or a swap not finished: never touched.
 */
export const lineageHolds = (
  keyId: string,
  tags: Tags,
  successorTags: Tags | undefined,
): { holds: true; swappedAt: Date } | { holds: false; why: string } => {
  if (lineageStateOf(tags) !== 'retired') return { holds: false, why: `${keyId} is not tagged retired` };
  const successorId = tags[LINEAGE.successor];
  const rotationId = tags[LINEAGE.rotationId];
  if (!successorId || !rotationId) return { holds: false, why: `${keyId} names no successor or rotation id` };
  if (!successorTags) return { holds: false, why: `its successor ${successorId} could not be found` };
  if (successorTags[LINEAGE.predecessor] !== keyId)
    return { holds: false, why: `its successor ${successorId} does not name ${keyId} as its predecessor` };
  if (successorTags[LINEAGE.rotationId] !== rotationId)
    return { holds: false, why: `its successor ${successorId} is of another rotation` };
  const state = lineageStateOf(successorTags);
  if (state !== 'active') return { holds: false, why: `its successor ${successorId} is ${state ?? 'not active'}` };
  const swappedAt = isoOf(successorTags[LINEAGE.rotatedAt]);
  if (!swappedAt) return { holds: false, why: `its successor ${successorId} has no valid rotated-at` };
  return { holds: true, swappedAt };
};

/** Step 1: re-reads the predecessor, its successor and their lineage; a key whose lineage does not hold is left alone. */
export const checkLineage = async (
  keyId: string,
  deps: RetireDeps,
): Promise<{ report: RetireStepReport; state?: RetiredKey }> => {
  const [key, tags] = await Promise.all([deps.keys.describeKey(keyId), deps.keys.listTags(keyId)]);
  const successorId = tags[LINEAGE.successor];
  let successorTags: Tags | undefined;
  if (successorId) {
    try {
      successorTags = await deps.keys.listTags(successorId);
    } catch (error) {
      if (!(error instanceof PreconditionFailedError && error.reason === 'key-not-found')) throw error;
    }
  }
  const verdict = lineageHolds(key.keyId, tags, successorTags);
  if (!verdict.holds) {
    return {
      report: { step: 'checkLineage', status: 'skipped', detail: `not retired by kms-rotation: ${verdict.why}` },
    };
  }
  return {
    report: {
      step: 'checkLineage',
      status: 'done',
      detail: `retired by rotation ${tags[LINEAGE.rotationId]} on ${verdict.swappedAt.toISOString()}, successor ${successorId}`,
    },
    state: { key, tags, successorId: successorId as string, swappedAt: verdict.swappedAt },
  };
};

/** What a step did, and whether an alias stopped it. */
interface StepResult {
  report: RetireStepReport;
  notification?: Notification;
  aliased?: boolean;
}

/** Aliases are re-read just before any change: a key an alias points at is never disabled or deleted. */
const aliasesOn = async (keyId: string, deps: RetireDeps): Promise<string[]> =>
  (await deps.keys.listAliasesOf(keyId)).map((alias) => alias.aliasName);

/** The use that stops a retirement: a successful use after the key was disabled, or a refused one (CloudTrail). */
type SeenUse = { kind: 'last-usage'; at: Date; operation?: string } | { kind: 'use-attempt'; attempt: UseAttempt };

const describeUse = (use: SeenUse): string =>
  use.kind === 'last-usage'
    ? `KMS recorded a successful ${use.operation ?? 'cryptographic operation'} at ${use.at.toISOString()}`
    : `${use.attempt.eventName} by ${use.attempt.actor ?? 'an unknown caller'} refused with ${use.attempt.errorCode} at ${use.attempt.at.toISOString()} (CloudTrail event ${use.attempt.eventId})`;

const notify = async (
  deps: RetireDeps,
  state: RetiredKey,
  type: 'PredecessorDisabled' | 'PredecessorDeletionScheduled' | 'PredecessorInUse',
  severity: Severity,
  summary: string,
  details: Record<string, unknown>,
): Promise<Notification> => {
  const notification = notificationOf({
    type,
    severity,
    about: { keyId: state.key.keyId, keyArn: state.key.arn, aliases: [] },
    where: deps.location,
    at: deps.clock.now(),
    summary,
    details: {
      successor: state.successorId,
      rotationId: state.tags[LINEAGE.rotationId],
      swappedAt: state.swappedAt.toISOString(),
      ...details,
    },
  });
  await deps.notifier.publish(notification);
  return notification;
};

/**
 * Stops the retirement of a key a use was seen on: cancels its deletion if scheduled, enables it,
 * notifies `PredecessorInUse` (WARNING), then tags it `stopped`. A stopped retirement is never
 * resumed by the service: ops remove the tags once the use is gone (docs/retire.md).
 */
export const stopOnUse = async (
  state: RetiredKey,
  use: SeenUse,
  deps: RetireDeps,
  dryRun: boolean,
): Promise<{ report: RetireStepReport; notification?: Notification }> => {
  const keyId = state.key.keyId;
  const seen = describeUse(use);
  if (dryRun) {
    return {
      report: {
        step: 'stopOnUse',
        status: 'planned',
        detail: `${seen}: cancel any deletion, enable ${keyId}, notify PredecessorInUse, tag the retirement stopped`,
      },
    };
  }
  const current = await deps.keys.describeKey(keyId);
  if (current.keyState === 'PendingDeletion') await deps.retirement.cancelKeyDeletion(keyId);
  if (current.keyState === 'PendingDeletion' || current.keyState === 'Disabled') await deps.retirement.enableKey(keyId);
  const notification = await notify(
    deps,
    state,
    'PredecessorInUse',
    'WARNING',
    `Retired key ${keyId} is still in use: its retirement is stopped and the key enabled again`,
    {
      use: use.kind === 'last-usage' ? { lastUsedAt: use.at.toISOString(), operation: use.operation } : use.attempt,
      wasState: current.keyState,
      eventId: use.kind === 'use-attempt' ? use.attempt.eventId : undefined,
    },
  );
  await deps.retirement.tagKey(keyId, {
    [RETIREMENT.step]: 'stopped',
    [RETIREMENT.at]: deps.clock.now().toISOString(),
    [RETIREMENT.stoppedBy]:
      use.kind === 'last-usage' ? 'last-usage' : `use-attempt ${use.attempt.eventId}`.slice(0, 256),
  });
  return {
    report: { step: 'stopOnUse', status: 'done', detail: `${seen}: ${keyId} enabled again, retirement stopped` },
    notification,
  };
};

/**
 * Step: disable the predecessor once nothing has used it for `disableAfterDays`, counted from the
 * latest of the swap, KMS's tracking start (no record before tracking began is no proof of no
 * use) and its last recorded use. Re-reads its aliases just before acting.
 */
export const disablePredecessor = async (
  state: RetiredKey,
  usage: KeyLastUsage,
  deps: RetireDeps,
  dryRun: boolean,
): Promise<StepResult> => {
  const keyId = state.key.keyId;
  const quietSince = later(state.swappedAt, usage.trackingStartDate, usage.lastUsedAt);
  const quietDays = (deps.clock.now().getTime() - quietSince.getTime()) / DAY_MS;
  // Adopting a key found disabled (a run that died after DisableKey) needs the same quiet time:
  // one someone else disabled early is not taken into the retirement before it is due.
  const adopting = state.key.keyState === 'Disabled';
  if (quietDays < deps.settings.disableAfterDays) {
    return {
      report: {
        step: 'disablePredecessor',
        status: 'skipped',
        detail: `unused for ${Math.floor(quietDays)} of ${deps.settings.disableAfterDays} days (since ${quietSince.toISOString()})`,
      },
    };
  }
  if (!adopting && state.key.keyState !== 'Enabled') {
    return {
      report: {
        step: 'disablePredecessor',
        status: 'skipped',
        detail: `${keyId} is ${state.key.keyState}: left alone`,
      },
    };
  }
  const aliases = await aliasesOn(keyId, deps);
  if (aliases.length > 0) {
    return {
      report: {
        step: 'disablePredecessor',
        status: 'skipped',
        detail: `${aliases.join(', ')} point${aliases.length === 1 ? 's' : ''} at ${keyId}: never disabled`,
      },
      aliased: true,
    };
  }
  if (dryRun) {
    return {
      report: {
        step: 'disablePredecessor',
        status: 'planned',
        detail: adopting
          ? `${keyId} is already disabled: tag it and notify PredecessorDisabled`
          : `disable ${keyId}, unused for ${Math.floor(quietDays)} days since ${quietSince.toISOString()}; notify PredecessorDisabled`,
      },
    };
  }
  if (!adopting) await deps.retirement.disableKey(keyId);
  const deleteFrom = new Date(deps.clock.now().getTime() + deps.settings.deleteAfterDays * DAY_MS);
  const notification = await notify(
    deps,
    state,
    'PredecessorDisabled',
    'INFO',
    `Retired key ${keyId} disabled: unused since ${quietSince.toISOString()}; its deletion will be scheduled from ${deleteFrom.toISOString()} unless it is used`,
    { unusedSince: quietSince.toISOString(), deletionFrom: deleteFrom.toISOString() },
  );
  await deps.retirement.tagKey(keyId, {
    [RETIREMENT.step]: 'disabled',
    [RETIREMENT.at]: deps.clock.now().toISOString(),
  });
  return {
    report: {
      step: 'disablePredecessor',
      status: 'done',
      detail: adopting ? `${keyId} found disabled: tagged and notified` : `${keyId} disabled`,
    },
    notification,
  };
};

/** Step: schedule the deletion of a predecessor disabled `deleteAfterDays` ago and unused since, with the longest window. */
export const scheduleDeletion = async (state: RetiredKey, deps: RetireDeps, dryRun: boolean): Promise<StepResult> => {
  const keyId = state.key.keyId;
  const disabledAt = isoOf(state.tags[RETIREMENT.at]);
  if (!disabledAt) {
    return {
      report: {
        step: 'scheduleDeletion',
        status: 'skipped',
        detail: `${keyId} has no valid ${RETIREMENT.at}: left alone`,
      },
    };
  }
  const adopting = state.key.keyState === 'PendingDeletion';
  const disabledDays = (deps.clock.now().getTime() - disabledAt.getTime()) / DAY_MS;
  if (disabledDays < deps.settings.deleteAfterDays) {
    return {
      report: {
        step: 'scheduleDeletion',
        status: 'skipped',
        detail: `disabled for ${Math.floor(disabledDays)} of ${deps.settings.deleteAfterDays} days`,
      },
    };
  }
  if (!adopting && state.key.keyState !== 'Disabled') {
    return {
      report: { step: 'scheduleDeletion', status: 'skipped', detail: `${keyId} is ${state.key.keyState}: left alone` },
    };
  }
  const aliases = await aliasesOn(keyId, deps);
  if (aliases.length > 0) {
    return {
      report: {
        step: 'scheduleDeletion',
        status: 'skipped',
        detail: `${aliases.join(', ')} point${aliases.length === 1 ? 's' : ''} at ${keyId}: never deleted`,
      },
      aliased: true,
    };
  }
  if (dryRun) {
    return {
      report: {
        step: 'scheduleDeletion',
        status: 'planned',
        detail: adopting
          ? `${keyId} is already pending deletion: tag it and notify PredecessorDeletionScheduled`
          : `schedule the deletion of ${keyId} in ${LONGEST_DELETION_WINDOW_DAYS} days; notify PredecessorDeletionScheduled`,
      },
    };
  }
  const deletionDate = adopting
    ? state.key.deletionDate
    : await deps.retirement.scheduleKeyDeletion(keyId, LONGEST_DELETION_WINDOW_DAYS);
  const notification = await notify(
    deps,
    state,
    'PredecessorDeletionScheduled',
    'WARNING',
    `Retired key ${keyId}, disabled and unused since ${disabledAt.toISOString()}, will be deleted on ${deletionDate?.toISOString() ?? `in ${LONGEST_DELETION_WINDOW_DAYS} days`}; CancelKeyDeletion until then keeps it`,
    {
      disabledAt: disabledAt.toISOString(),
      deletionDate: deletionDate?.toISOString(),
      pendingWindowDays: LONGEST_DELETION_WINDOW_DAYS,
    },
  );
  await deps.retirement.tagKey(keyId, {
    [RETIREMENT.step]: 'deletion-scheduled',
    [RETIREMENT.at]: deps.clock.now().toISOString(),
  });
  return {
    report: {
      step: 'scheduleDeletion',
      status: 'done',
      detail: `${keyId} deletion scheduled for ${deletionDate?.toISOString() ?? 'the end of its window'}`,
    },
    notification,
  };
};

/**
 * A use seen while the retirement runs: once disabled, a successful use recorded after the step
 * (the key was enabled by someone and used), or the key found enabled again. Before it is disabled
 * a use only moves the quiet period on.
 */
const useSeen = (state: RetiredKey, usage: KeyLastUsage): SeenUse | undefined => {
  const step = retirementStepOf(state.tags);
  if (step !== 'disabled' && step !== 'deletion-scheduled') return undefined;
  const since = isoOf(state.tags[RETIREMENT.at]);
  if (usage.lastUsedAt && since && usage.lastUsedAt.getTime() > since.getTime()) {
    return { kind: 'last-usage', at: usage.lastUsedAt, operation: usage.operation };
  }
  return undefined;
};

/** One predecessor, under its lease: lineage, then the one step its state calls for. */
const retireOne = async (keyId: string, deps: RetireDeps, dryRun: boolean): Promise<RetiredKeyReport> => {
  const lineage = await checkLineage(keyId, deps);
  const steps: RetireStepReport[] = [lineage.report];
  const state = lineage.state;
  if (!state) return { keyId, outcome: 'not-ours', steps };
  const step = retirementStepOf(state.tags);
  if (step === 'stopped') {
    steps.push({
      step: 'watchUse',
      status: 'skipped',
      detail: `retirement stopped on ${state.tags[RETIREMENT.at] ?? '?'} (${state.tags[RETIREMENT.stoppedBy] ?? 'use seen'}): remove the ${RETIREMENT.step} tag to retire it again`,
    });
    return { keyId, outcome: 'stopped', steps };
  }
  const usage = await deps.retirement.getKeyLastUsage(keyId);
  steps.push({
    step: 'watchUse',
    status: 'done',
    detail: usage.lastUsedAt
      ? `last used ${usage.lastUsedAt.toISOString()} (${usage.operation ?? 'cryptographic operation'})`
      : `no use recorded since ${usage.trackingStartDate?.toISOString() ?? 'tracking began'}`,
  });
  const use = useSeen(state, usage);
  if (use) {
    const stopped = await stopOnUse(state, use, deps, dryRun);
    steps.push(stopped.report);
    return { keyId, outcome: 'stopped', steps, notification: stopped.notification };
  }
  const result =
    step === undefined
      ? await disablePredecessor(state, usage, deps, dryRun)
      : step === 'disabled'
        ? await scheduleDeletion(state, deps, dryRun)
        : undefined;
  if (!result) {
    steps.push({ step: 'scheduleDeletion', status: 'skipped', detail: `deletion of ${keyId} already scheduled` });
    return { keyId, outcome: 'deletion-scheduled', steps };
  }
  steps.push(result.report);
  const acted = result.report.status === 'done' || result.report.status === 'planned';
  const { aliased } = result;
  const outcome: RetiredKeyReport['outcome'] = aliased
    ? 'aliased'
    : acted
      ? result.report.step === 'disablePredecessor'
        ? 'disabled'
        : 'deletion-scheduled'
      : step === 'disabled'
        ? 'disabled'
        : 'waiting';
  return { keyId, outcome, steps, notification: result.notification };
};

/**
 * A CloudTrail record of a use KMS refused on a predecessor this service disabled or scheduled
 * for deletion: the retirement stops (deletion cancelled, key enabled, `PredecessorInUse`). A key
 * whose lineage does not hold, or whose retirement did not reach that step, changes nothing.
 */
export const handleUseAttempt = async (attempt: UseAttempt, deps: RetireDeps): Promise<RetiredKeyReport> => {
  const dryRun = deps.settings.mode !== 'enforce';
  return holdingKeys([attempt.keyId], 'retire: a use of a retired key was refused', deps, async () => {
    const lineage = await checkLineage(attempt.keyId, deps);
    const steps: RetireStepReport[] = [lineage.report];
    const state = lineage.state;
    if (!state) return { keyId: attempt.keyId, outcome: 'not-ours', steps };
    const step = retirementStepOf(state.tags);
    if (step !== 'disabled' && step !== 'deletion-scheduled') {
      steps.push({
        step: 'stopOnUse',
        status: 'skipped',
        detail: `the retirement of ${attempt.keyId} is ${step ?? 'not begun'}: kms-rotation did not disable it`,
      });
      return { keyId: attempt.keyId, outcome: step === 'stopped' ? 'stopped' : 'waiting', steps };
    }
    const stopped = await stopOnUse(state, { kind: 'use-attempt', attempt }, deps, dryRun);
    steps.push(stopped.report);
    return { keyId: attempt.keyId, outcome: 'stopped', steps, notification: stopped.notification };
  });
};

/** The predecessors to look at: one asked for, or every key tagged `retired`. */
const candidatesOf = async (request: RetireRequest, deps: RetireDeps): Promise<string[]> =>
  request.keyId
    ? [request.keyId]
    : (await deps.directory.keysTagged(LINEAGE.state, 'retired')).map(({ keyId }) => keyId).sort();

/** Whether this run acts: a dry run unless asked not to be and the stage's mode is `enforce`. */
export const dryRunOf = (request: RetireRequest, mode: RetireMode): boolean => {
  if (request.dryRun === false && mode !== 'enforce') {
    throw new InvalidInputError(
      `"dryRun": false needs the stage parameter retireMode=enforce (it is ${mode}); nothing was examined or changed`,
    );
  }
  return request.dryRun ?? mode !== 'enforce';
};

const summaryOf = (report: Omit<RetireReport, 'summary'>): string => {
  if (report.mode === 'off' && report.examined === 0) return 'retireMode is off: no key examined';
  if (report.examined === 0) return 'no retired predecessor found: no key examined';
  const count = (outcome: RetiredKeyReport['outcome']) => report.keys.filter((key) => key.outcome === outcome).length;
  const verb = report.dryRun ? 'would be' : 'are';
  return `${report.examined} retired key(s) examined${report.dryRun ? ' (dry run)' : ''}: ${count('disabled')} ${verb} disabled, ${count('deletion-scheduled')} ${verb} pending deletion, ${count('stopped')} stopped on use, ${count('waiting')} waiting, ${count('aliased')} aliased, ${count('not-ours')} not retired by kms-rotation, ${count('failed')} failed`;
};

/**
 * The schedule's and the manual invoke's run: every retired predecessor (or the one asked for),
 * each under its lease. A key that fails is reported and the others go on; the run then fails, so
 * that the failure is seen (Lambda's error metric, the dead-letter queue).
 */
export const retirePredecessors = async (request: RetireRequest, deps: RetireDeps): Promise<RetireReport> => {
  const { mode } = deps.settings;
  const dryRun = dryRunOf(request, mode);
  if (mode === 'off' && request.dryRun !== true) {
    const report = { mode, dryRun: true, examined: 0, keys: [] };
    return { ...report, summary: summaryOf(report) };
  }
  const keys: RetiredKeyReport[] = [];
  let failure: unknown;
  for (const keyId of await candidatesOf(request, deps)) {
    try {
      keys.push(
        dryRun
          ? await retireOne(keyId, deps, true)
          : await holdingKeys([keyId], 'retire: a retired predecessor', deps, () => retireOne(keyId, deps, false)),
      );
    } catch (error) {
      deps.log.error('Retirement of a key failed', { keyId, error: describeError(error) });
      failure ??= error;
      keys.push({
        keyId,
        outcome: 'failed',
        steps: [{ step: 'checkLineage', status: 'failed', detail: describeError(error) }],
      });
    }
  }
  const report = { mode, dryRun, examined: keys.length, keys };
  const done = { ...report, summary: summaryOf(report) };
  if (failure) {
    throw new RetirementFailedError(done, failure);
  }
  return done;
};

/** A run in which some key failed: carries the report of all; retryable as its first failure. */
export class RetirementFailedError extends KmsRotationError {
  readonly kind: KmsRotationError['kind'];
  readonly retryable: boolean;
  constructor(
    readonly report: RetireReport,
    cause: unknown,
  ) {
    super(`${report.summary}; first failure: ${describeError(cause)}`, { cause });
    this.name = 'RetirementFailedError';
    this.kind = cause instanceof KmsRotationError ? cause.kind : 'aws-service';
    this.retryable = cause instanceof KmsRotationError ? cause.retryable : false;
  }
}
