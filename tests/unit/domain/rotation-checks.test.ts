import { describe, expect, it } from 'vitest';
import { readDeclaredState } from '../../../src/domain/declared-state';
import type { KeyDescription, RotationEvent, RotationRecord } from '../../../src/domain/model';
import {
  checkCurrentMaterial,
  checkKeyState,
  checkKeyType,
  checkRotationRecorded,
  checkRotationSchedule,
  findRecordedRotation,
  preconditionReasonOf,
} from '../../../src/domain/rotation-checks';
import { keyDescription } from '../support/key-description';
import { ACCOUNT, CURRENT_MATERIAL, KEY_ARN, KEY_ID, PREVIOUS_MATERIAL, REGION } from '../support/key-metadata';

const HOUR = 3_600_000;
const EVENT_TIME = new Date('2026-11-20T03:11:54Z');
const NEWER_MATERIAL = 'c'.repeat(64);

const key = (overrides: Partial<KeyDescription> = {}): KeyDescription =>
  keyDescription(KEY_ID, { currentKeyMaterialId: CURRENT_MATERIAL, ...overrides }, ACCOUNT);

/** The on-demand sample event, parsed. */
const rotationEvent = (overrides: Partial<RotationEvent> = {}): RotationEvent => ({
  eventId: '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
  time: EVENT_TIME,
  account: ACCOUNT,
  region: REGION,
  keyId: KEY_ID,
  keyArn: KEY_ARN,
  rotationType: 'ON_DEMAND',
  keyOrigin: 'AWS_KMS',
  previousKeyMaterialId: PREVIOUS_MATERIAL,
  currentKeyMaterialId: CURRENT_MATERIAL,
  ...overrides,
});

/** The legacy minimal event: key id and time only. */
const legacyEvent = (time = EVENT_TIME): RotationEvent =>
  rotationEvent({ time, rotationType: undefined, previousKeyMaterialId: undefined, currentKeyMaterialId: undefined });

const record = (
  rotationType: RotationRecord['rotationType'],
  offsetMs: number,
  keyMaterialId?: string,
): RotationRecord => ({
  rotationType,
  rotationDate: new Date(EVENT_TIME.getTime() + offsetMs),
  keyMaterialId,
});

const declared = (periodDays?: string) =>
  readDeclaredState({
    'kms-rotation:managed': 'true',
    ...(periodDays === undefined ? {} : { 'kms-rotation:period-days': periodDays }),
  });

describe('Function: checkKeyState', () => {
  it('passes when the key is Enabled', () => {
    expect(checkKeyState(key())).toEqual({ id: 'key-state', status: 'passed', detail: 'key is Enabled' });
  });

  it.each(['Disabled', 'PendingImport', 'Unavailable', 'Creating'])(
    'fails naming the state when the key is %s',
    (state) => {
      expect(checkKeyState(key({ keyState: state }))).toEqual({
        id: 'key-state',
        status: 'failed',
        detail: `key is ${state}, not Enabled: it cannot encrypt or decrypt`,
      });
    },
  );

  it('fails with the deletion date when the key is PendingDeletion', () => {
    const result = checkKeyState(key({ keyState: 'PendingDeletion', deletionDate: new Date('2026-12-20T00:00:00Z') }));
    expect(result.status).toBe('failed');
    expect(result.detail).toBe(
      'key is PendingDeletion: it will be deleted on 2026-12-20T00:00:00.000Z and can no longer encrypt or decrypt',
    );
  });

  it('fails without a date when a PendingDeletion key reports none', () => {
    expect(checkKeyState(key({ keyState: 'PendingDeletion' })).detail).toBe(
      'key is PendingDeletion: it will be deleted and can no longer encrypt or decrypt',
    );
  });
});

describe('Function: checkKeyType', () => {
  it('passes when the key is a symmetric encryption key', () => {
    expect(checkKeyType(key())).toMatchObject({ id: 'key-type', status: 'passed' });
  });

  it('passes when DescribeKey reports neither spec nor usage (the defaults of older keys)', () => {
    expect(checkKeyType(key({ keySpec: undefined, keyUsage: undefined })).status).toBe('passed');
  });

  it.each([
    ['RSA_2048', 'SIGN_VERIFY'],
    ['RSA_2048', 'ENCRYPT_DECRYPT'],
    ['ECC_NIST_P256', 'SIGN_VERIFY'],
    ['HMAC_256', 'GENERATE_VERIFY_MAC'],
    ['SYMMETRIC_DEFAULT', 'GENERATE_VERIFY_MAC'],
  ])('fails naming spec and usage when the key is %s / %s', (keySpec, keyUsage) => {
    expect(checkKeyType(key({ keySpec, keyUsage }))).toEqual({
      id: 'key-type',
      status: 'failed',
      detail: `key is ${keySpec} / ${keyUsage}: KMS does not rotate the material of such keys`,
    });
  });
});

describe('Function: checkRotationSchedule', () => {
  it('skips the schedule when the rotation was on demand, even with automatic rotation disabled', () => {
    expect(checkRotationSchedule('ON_DEMAND', { enabled: false }, declared('365'))).toMatchObject({
      id: 'rotation-schedule',
      status: 'skipped',
    });
  });

  it.each([['AUTOMATIC'], [undefined]] as const)(
    'fails when the rotation is %s and automatic rotation is disabled',
    (type) => {
      expect(checkRotationSchedule(type, { enabled: false, periodDays: 365 }, declared('365'))).toEqual({
        id: 'rotation-schedule',
        status: 'failed',
        detail: 'automatic rotation is disabled on the key',
      });
    },
  );

  it('passes when the period matches the declared one', () => {
    expect(checkRotationSchedule('AUTOMATIC', { enabled: true, periodDays: 365 }, declared('365'))).toEqual({
      id: 'rotation-schedule',
      status: 'passed',
      detail: 'automatic rotation is enabled every 365 days, as declared',
    });
  });

  it('fails naming both periods when the period differs from the declared one', () => {
    expect(checkRotationSchedule('AUTOMATIC', { enabled: true, periodDays: 730 }, declared('365'))).toEqual({
      id: 'rotation-schedule',
      status: 'failed',
      detail: 'rotation period is 730 days, declared 365 days',
    });
  });

  it('passes when no period is declared', () => {
    expect(checkRotationSchedule('AUTOMATIC', { enabled: true, periodDays: 730 }, declared())).toMatchObject({
      status: 'passed',
      detail: 'automatic rotation is enabled; no period is declared on the key',
    });
  });

  it('passes, saying so, when KMS does not report the period', () => {
    expect(checkRotationSchedule('AUTOMATIC', { enabled: true }, declared('365'))).toMatchObject({
      status: 'passed',
      detail: 'automatic rotation is enabled; KMS did not report the period (declared 365 days)',
    });
  });

  it('passes against no period when the declared period tag is unreadable', () => {
    const unreadable = declared('yearly');
    expect(unreadable.problems).toHaveLength(1);
    expect(checkRotationSchedule('AUTOMATIC', { enabled: true, periodDays: 730 }, unreadable).status).toBe('passed');
  });
});

describe('Function: findRecordedRotation', () => {
  const TOLERANCE = HOUR;

  it('finds the entry by key material id when the event and the history carry ids', () => {
    const history = [
      record('AUTOMATIC', -300 * 24 * HOUR, PREVIOUS_MATERIAL),
      record('ON_DEMAND', -4_000, CURRENT_MATERIAL),
    ];
    expect(findRecordedRotation(rotationEvent(), history, TOLERANCE)).toBe(history[1]);
  });

  it('finds nothing when the material id is absent, even with an entry at the right time', () => {
    const history = [record('ON_DEMAND', -4_000, NEWER_MATERIAL)];
    expect(findRecordedRotation(rotationEvent(), history, TOLERANCE)).toBeUndefined();
  });

  it('matches by date when the history carries no material ids', () => {
    const history = [record('ON_DEMAND', -4_000)];
    expect(findRecordedRotation(rotationEvent(), history, TOLERANCE)).toBe(history[0]);
  });

  it.each([
    ['at the tolerance before the event', -HOUR, true],
    ['just past the tolerance before the event', -HOUR - 1, false],
    ['within the two seconds after the event', 2_000, true],
    ['more than two seconds after the event', 2_001, false],
  ])('matches a legacy event by date when the entry is %s: %s', (_when, offset, found) => {
    const history = [record('AUTOMATIC', offset, CURRENT_MATERIAL)];
    expect(findRecordedRotation(legacyEvent(), history, TOLERANCE)).toBe(found ? history[0] : undefined);
  });

  it('ignores entries of another rotation type than the event names', () => {
    const history = [record('AUTOMATIC', -4_000)];
    expect(
      findRecordedRotation(rotationEvent({ currentKeyMaterialId: undefined }), history, TOLERANCE),
    ).toBeUndefined();
  });

  it('picks the latest entry in the window, and ignores entries without a date', () => {
    const undated: RotationRecord = { rotationType: 'AUTOMATIC', keyMaterialId: 'd'.repeat(64) };
    const history = [
      record('AUTOMATIC', -30 * 60_000),
      undated,
      record('AUTOMATIC', -5_000),
      record('ON_DEMAND', -50 * 60_000),
    ];
    expect(findRecordedRotation(legacyEvent(), history, TOLERANCE)).toBe(history[2]);
  });

  it('finds nothing in an empty history', () => {
    expect(findRecordedRotation(legacyEvent(), [], TOLERANCE)).toBeUndefined();
  });
});

describe('Function: checkRotationRecorded', () => {
  it('passes with the type, date and material of the entry, and returns it', () => {
    const entry = record('ON_DEMAND', -4_000, CURRENT_MATERIAL);
    expect(checkRotationRecorded(rotationEvent(), [entry], HOUR)).toEqual({
      check: {
        id: 'rotation-recorded',
        status: 'passed',
        detail: `ON_DEMAND recorded at 2026-11-20T03:11:50.000Z, material ${CURRENT_MATERIAL}`,
      },
      record: entry,
    });
  });

  it('fails naming the material when the event names one that the history lacks', () => {
    const result = checkRotationRecorded(rotationEvent(), [record('AUTOMATIC', -HOUR, PREVIOUS_MATERIAL)], HOUR);
    expect(result.record).toBeUndefined();
    expect(result.check).toEqual({
      id: 'rotation-recorded',
      status: 'failed',
      detail: `the key's rotation history (1 entries) has no key material ${CURRENT_MATERIAL}`,
    });
  });

  it('fails naming the type and window when an event without material finds no entry', () => {
    const event = rotationEvent({ currentKeyMaterialId: undefined });
    expect(checkRotationRecorded(event, [], HOUR).check.detail).toBe(
      "the key's rotation history (0 entries) has no ON_DEMAND rotation within 60 minutes of 2026-11-20T03:11:54.000Z",
    );
  });

  it('fails naming only the window when a legacy event finds no entry', () => {
    expect(checkRotationRecorded(legacyEvent(), [record('AUTOMATIC', -2 * HOUR)], HOUR).check).toMatchObject({
      status: 'failed',
      detail: "the key's rotation history (1 entries) has no rotation within 60 minutes of 2026-11-20T03:11:54.000Z",
    });
  });

  it('passes with a plain wording when the entry carries no type, date or material', () => {
    const event = rotationEvent({ currentKeyMaterialId: undefined, rotationType: undefined });
    const bare: RotationRecord = { rotationDate: EVENT_TIME };
    expect(checkRotationRecorded(event, [bare], HOUR).check.detail).toBe(
      'rotation recorded at 2026-11-20T03:11:54.000Z',
    );
  });
});

describe('Function: checkCurrentMaterial', () => {
  const history = [
    record('AUTOMATIC', -300 * 24 * HOUR, PREVIOUS_MATERIAL),
    record('ON_DEMAND', -4_000, CURRENT_MATERIAL),
  ];

  it('passes when the key reports the material the event names', () => {
    expect(checkCurrentMaterial(rotationEvent(), key(), history)).toEqual({
      id: 'current-material',
      status: 'passed',
      detail: `current key material is ${CURRENT_MATERIAL}, as the event says`,
    });
  });

  it('skips when the event names no material', () => {
    expect(checkCurrentMaterial(legacyEvent(), key(), history)).toMatchObject({ status: 'skipped' });
  });

  it('skips when KMS reports no current material', () => {
    expect(checkCurrentMaterial(rotationEvent(), key({ currentKeyMaterialId: undefined }), history)).toMatchObject({
      status: 'skipped',
      detail: "KMS did not report the key's current material",
    });
  });

  it('skips when a newer rotation superseded the event', () => {
    const newer = [...history, record('AUTOMATIC', HOUR, NEWER_MATERIAL)];
    expect(checkCurrentMaterial(rotationEvent(), key({ currentKeyMaterialId: NEWER_MATERIAL }), newer)).toEqual({
      id: 'current-material',
      status: 'skipped',
      detail: `a newer rotation superseded this one: current material is ${NEWER_MATERIAL}`,
    });
  });

  it('fails when the current material is older than the event says', () => {
    expect(checkCurrentMaterial(rotationEvent(), key({ currentKeyMaterialId: PREVIOUS_MATERIAL }), history)).toEqual({
      id: 'current-material',
      status: 'failed',
      detail: `the event says the new material is ${CURRENT_MATERIAL}, KMS reports ${PREVIOUS_MATERIAL}`,
    });
  });

  it('fails when the current material is nowhere in the history', () => {
    expect(checkCurrentMaterial(rotationEvent(), key({ currentKeyMaterialId: NEWER_MATERIAL }), history).status).toBe(
      'failed',
    );
  });

  it("fails when the event's own entry has no date to compare with", () => {
    const undated = [{ keyMaterialId: CURRENT_MATERIAL }, record('AUTOMATIC', HOUR, NEWER_MATERIAL)];
    expect(checkCurrentMaterial(rotationEvent(), key({ currentKeyMaterialId: NEWER_MATERIAL }), undated).status).toBe(
      'failed',
    );
  });
});

describe('Function: preconditionReasonOf', () => {
  it.each([
    ['Enabled', {}, undefined],
    ['Disabled', {}, 'key-disabled'],
    ['PendingDeletion', {}, 'key-pending-deletion'],
    ['PendingImport', { origin: 'EXTERNAL' }, 'key-invalid-state'],
    ['Unavailable', {}, 'key-invalid-state'],
    ['Enabled', { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' }, 'wrong-key-type'],
    ['Disabled', { keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' }, 'key-disabled'],
  ] as const)('a %s key %j fails as %s: its state first, then its type', (keyState, overrides, reason) => {
    expect(preconditionReasonOf(keyDescription(KEY_ID, { keyState, ...overrides }, ACCOUNT))).toBe(reason);
  });
});
