import { describeError, KmsRotationError } from './errors';
import type { LeaseDeps } from './key-lease';
import type { KeyDescription, RotationEvent, RotationRecord, ServiceLocation } from './model';
import type { KeyRecord } from './ports';
import { type RotationValidationDeps, validateRotation } from './validate-rotation';

/**
 * Reconciliation: KMS's rotation event is best effort (docs/kms-facts.md#events), so the audit
 * finds each rotation in a managed key's history since its last validated one (`KeyRecord.
 * lastValidatedRotation`, written by every passed validation) and validates it with `onRotation`'s
 * own validation (`validateRotation`): a lost event never leaves a rotation unvalidated.
 */

/** One rotation the audit validated in place of its lost event. */
export interface Reconciliation {
  keyId: string;
  rotation: { keyMaterialId?: string; rotationDate: string; rotationType?: string };
  /** `validated` or `failed`: the validation's outcome (and its notification); `unfinished`: it could not run, the next audit tries again. */
  outcome: 'validated' | 'failed' | 'skipped' | 'unfinished';
  summary: string;
}

const dated = (history: readonly RotationRecord[]): (RotationRecord & { rotationDate: Date })[] =>
  history
    .filter(
      (entry): entry is RotationRecord & { rotationDate: Date } =>
        entry.rotationDate !== undefined && entry.keyMaterialState !== 'PENDING_ROTATION',
    )
    .sort((a, b) => a.rotationDate.getTime() - b.rotationDate.getTime());

/**
 * The completed rotations after the last one validated, oldest first. The last validated one is
 * found by its key material id when the record and the history both carry it, else by date. A
 * record from before this field existed has only its canary, refreshed by every passed
 * validation: the rotations after it. A key never validated at all: its latest rotation only
 * (which gives it its first canary and a place to start from), not its whole past.
 */
export const rotationsToReconcile = (history: readonly RotationRecord[], record: KeyRecord): RotationRecord[] => {
  const completed = dated(history);
  const last = record.lastValidatedRotation;
  if (last?.keyMaterialId) {
    const index = completed.findIndex((entry) => entry.keyMaterialId === last.keyMaterialId);
    if (index >= 0) return completed.slice(index + 1);
  }
  const since = last?.rotationDate ?? record.canary?.createdAt;
  if (since !== undefined) return completed.filter((entry) => entry.rotationDate.getTime() > Date.parse(since));
  return completed.slice(-1);
};

/** The rotation event KMS would have sent for a history entry; its id names the reconciliation. */
export const reconciliationEvent = (
  key: Pick<KeyDescription, 'keyId' | 'arn'>,
  rotation: RotationRecord & { rotationDate: Date },
  location: ServiceLocation,
): RotationEvent => ({
  eventId: `reconcile:${key.keyId}:${rotation.keyMaterialId ?? rotation.rotationDate.toISOString()}`,
  time: rotation.rotationDate,
  account: location.account,
  region: location.region,
  keyId: key.keyId,
  keyArn: key.arn,
  ...(rotation.rotationType ? { rotationType: rotation.rotationType } : {}),
  ...(rotation.keyMaterialId ? { currentKeyMaterialId: rotation.keyMaterialId } : {}),
});

export type ReconcileDeps = RotationValidationDeps & LeaseDeps;

/**
 * A reconciliation's event is dated by the history entry it names, so the validation finds that
 * entry at its own date (or by its material id): no event delivery lag to allow for.
 */
export const RECONCILIATION_TOLERANCE_MS = 1_000;

/**
 * Validates each rotation of the key not yet validated, oldest first, each as `onRotation` would
 * (its lease, its checks, its notification, its record). A failed validation is notified by it
 * and the next rotation is still validated; one that cannot run (a throttled read, the key held
 * by another run) ends the key's reconciliation, which the next audit takes up again from the
 * same rotation: the record moves on only past a passed validation.
 */
export const reconcileRotations = async (
  key: Pick<KeyDescription, 'keyId' | 'arn'>,
  history: readonly RotationRecord[],
  deps: ReconcileDeps,
): Promise<Reconciliation[]> => {
  const pending = rotationsToReconcile(history, await deps.records.load(key.keyId));
  const done: Reconciliation[] = [];
  for (const rotation of pending as (RotationRecord & { rotationDate: Date })[]) {
    const described = {
      ...(rotation.keyMaterialId ? { keyMaterialId: rotation.keyMaterialId } : {}),
      rotationDate: rotation.rotationDate.toISOString(),
      ...(rotation.rotationType ? { rotationType: rotation.rotationType } : {}),
    };
    try {
      const report = await validateRotation(reconciliationEvent(key, rotation, deps.location), deps);
      done.push({ keyId: key.keyId, rotation: described, outcome: report.outcome, summary: report.summary });
    } catch (error) {
      if (!(error instanceof KmsRotationError)) throw error;
      deps.log.warn('rotation not reconciled; the next audit tries again', {
        keyId: key.keyId,
        rotation: described,
        error: describeError(error),
      });
      done.push({ keyId: key.keyId, rotation: described, outcome: 'unfinished', summary: describeError(error) });
      break;
    }
  }
  return done;
};
