import type { DeclaredState } from './declared-state';
import type { PreconditionReason } from './errors';
import type { KeyDescription, RotationEvent, RotationRecord, RotationStatus, RotationType } from './model';

/** The result of one validation step; pure data, so reports and tests read the same thing. */
export interface CheckResult {
  id: CheckId;
  status: 'passed' | 'failed' | 'skipped';
  detail: string;
}

export type CheckId =
  | 'key-state'
  | 'key-type'
  | 'rotation-schedule'
  | 'rotation-recorded'
  | 'current-material'
  | 'round-trip'
  | 'canary'
  | 'key-works';

const passed = (id: CheckId, detail: string): CheckResult => ({ id, status: 'passed', detail });
const failed = (id: CheckId, detail: string): CheckResult => ({ id, status: 'failed', detail });
const skipped = (id: CheckId, detail: string): CheckResult => ({ id, status: 'skipped', detail });

/** Only an enabled key can be validated; anything else is a precondition a person must look at. */
export const checkKeyState = (key: KeyDescription): CheckResult => {
  if (key.keyState === 'Enabled') return passed('key-state', 'key is Enabled');
  if (key.keyState === 'PendingDeletion') {
    const when = key.deletionDate ? ` on ${key.deletionDate.toISOString()}` : '';
    return failed(
      'key-state',
      `key is PendingDeletion: it will be deleted${when} and can no longer encrypt or decrypt`,
    );
  }
  return failed('key-state', `key is ${key.keyState}, not Enabled: it cannot encrypt or decrypt`);
};

/**
 * Why a key fails the preconditions of a validation, as the error taxonomy names it: its state
 * first (`checkKeyState`), then its type (`checkKeyType`); `undefined` when it passes both.
 */
export const preconditionReasonOf = (key: KeyDescription): PreconditionReason | undefined => {
  if (key.keyState === 'PendingDeletion') return 'key-pending-deletion';
  if (key.keyState === 'Disabled') return 'key-disabled';
  if (key.keyState !== 'Enabled') return 'key-invalid-state';
  return checkKeyType(key).status === 'failed' ? 'wrong-key-type' : undefined;
};

/** KMS rotates key material only of symmetric encryption keys; a rotation event for another type is bogus. */
export const checkKeyType = (key: KeyDescription): CheckResult => {
  const spec = key.keySpec ?? 'SYMMETRIC_DEFAULT';
  const usage = key.keyUsage ?? 'ENCRYPT_DECRYPT';
  if (spec === 'SYMMETRIC_DEFAULT' && usage === 'ENCRYPT_DECRYPT') {
    return passed('key-type', 'symmetric encryption key (SYMMETRIC_DEFAULT / ENCRYPT_DECRYPT)');
  }
  return failed('key-type', `key is ${spec} / ${usage}: KMS does not rotate the material of such keys`);
};

/** After an automatic rotation, the schedule that produced it must still be in force, with the declared period. */
export const checkRotationSchedule = (
  rotationType: RotationType | undefined,
  status: RotationStatus,
  declared: DeclaredState,
): CheckResult => {
  if (rotationType === 'ON_DEMAND') {
    return skipped('rotation-schedule', 'on-demand rotation: the automatic schedule is checked by the drift watch');
  }
  if (!status.enabled) return failed('rotation-schedule', 'automatic rotation is disabled on the key');
  if (declared.periodDays === undefined) {
    return passed('rotation-schedule', 'automatic rotation is enabled; no period is declared on the key');
  }
  if (status.periodDays === undefined) {
    return passed(
      'rotation-schedule',
      `automatic rotation is enabled; KMS did not report the period (declared ${declared.periodDays} days)`,
    );
  }
  if (status.periodDays !== declared.periodDays) {
    return failed(
      'rotation-schedule',
      `rotation period is ${status.periodDays} days, declared ${declared.periodDays} days`,
    );
  }
  return passed('rotation-schedule', `automatic rotation is enabled every ${status.periodDays} days, as declared`);
};

/** Event times have second precision and follow the rotation they report. */
const EVENT_TIME_SLACK_MS = 2_000;

/**
 * Finds the history entry of the event's rotation: by key material id when both sides
 * carry one; otherwise the latest entry of the event's rotation type dated between
 * `toleranceMs` before the event and a moment after it (events follow their rotation).
 */
export const findRecordedRotation = (
  event: Pick<RotationEvent, 'time' | 'rotationType' | 'currentKeyMaterialId'>,
  history: readonly RotationRecord[],
  toleranceMs: number,
): RotationRecord | undefined => {
  if (event.currentKeyMaterialId && history.some((record) => record.keyMaterialId)) {
    return history.find((record) => record.keyMaterialId === event.currentKeyMaterialId);
  }
  const earliest = event.time.getTime() - toleranceMs;
  const latest = event.time.getTime() + EVENT_TIME_SLACK_MS;
  let found: RotationRecord | undefined;
  for (const record of history) {
    const at = record.rotationDate?.getTime();
    if (at === undefined || at < earliest || at > latest) continue;
    if (event.rotationType && record.rotationType && record.rotationType !== event.rotationType) continue;
    if (!found?.rotationDate || at > found.rotationDate.getTime()) found = record;
  }
  return found;
};

export const checkRotationRecorded = (
  event: RotationEvent,
  history: readonly RotationRecord[],
  toleranceMs: number,
): { check: CheckResult; record?: RotationRecord } => {
  const record = findRecordedRotation(event, history, toleranceMs);
  if (!record) {
    const what = event.currentKeyMaterialId
      ? `key material ${event.currentKeyMaterialId}`
      : `${event.rotationType ? `${event.rotationType} ` : ''}rotation within ${Math.round(toleranceMs / 60_000)} minutes of ${event.time.toISOString()}`;
    return {
      check: failed('rotation-recorded', `the key's rotation history (${history.length} entries) has no ${what}`),
    };
  }
  const date = record.rotationDate ? ` at ${record.rotationDate.toISOString()}` : '';
  const material = record.keyMaterialId ? `, material ${record.keyMaterialId}` : '';
  return {
    check: passed('rotation-recorded', `${record.rotationType ?? 'rotation'} recorded${date}${material}`),
    record,
  };
};

/** When the event names the new material, the key must report it as current, unless a newer rotation superseded it. */
export const checkCurrentMaterial = (
  event: RotationEvent,
  key: KeyDescription,
  history: readonly RotationRecord[],
): CheckResult => {
  if (!event.currentKeyMaterialId) return skipped('current-material', 'the event does not name the new key material');
  if (!key.currentKeyMaterialId) return skipped('current-material', "KMS did not report the key's current material");
  if (key.currentKeyMaterialId === event.currentKeyMaterialId) {
    return passed('current-material', `current key material is ${key.currentKeyMaterialId}, as the event says`);
  }
  const eventRecord = history.find((record) => record.keyMaterialId === event.currentKeyMaterialId);
  const superseded = eventRecord?.rotationDate
    ? history.some(
        (record) =>
          record.keyMaterialId === key.currentKeyMaterialId &&
          record.rotationDate !== undefined &&
          eventRecord.rotationDate !== undefined &&
          record.rotationDate > eventRecord.rotationDate,
      )
    : false;
  if (superseded) {
    return skipped(
      'current-material',
      `a newer rotation superseded this one: current material is ${key.currentKeyMaterialId}`,
    );
  }
  return failed(
    'current-material',
    `the event says the new material is ${event.currentKeyMaterialId}, KMS reports ${key.currentKeyMaterialId}`,
  );
};
