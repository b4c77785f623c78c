import { describe, expect, it } from 'vitest';
import type { AuditedKey } from '../../../../src/domain/audit-rules';
import type { KeyDescription, RotationRecord } from '../../../../src/domain/model';
import { rotationDue, rotationDueIn, rotationScheduleOf } from '../../../../src/domain/rotation-budget';

const NOW = new Date('2026-11-22T00:00:00Z');
const DAY = 86_400_000;
const LIMITS = { maxRotationPeriodDays: 365, maxMaterialAgeDays: 400 };
const WHERE = { partition: 'aws', account: '111122223333', region: 'us-east-1' };
const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = `arn:aws:kms:us-east-1:111122223333:key/${KEY_ID}`;

const daysAgo = (days: number) => new Date(NOW.getTime() - days * DAY);
const onDemand = (count: number): RotationRecord[] =>
  Array.from({ length: count }, (_, index) => ({ rotationType: 'ON_DEMAND', rotationDate: daysAgo(500 - index) }));

const audited = (overrides: Omit<Partial<AuditedKey>, 'key'> & { key?: Partial<KeyDescription> } = {}): AuditedKey => {
  const { key, ...rest } = overrides;
  return {
    keyClass: 'auto-rotatable',
    aliases: ['alias/app/key'],
    declared: { managed: true, aliases: ['alias/app/key'], problems: [] },
    history: [],
    ...rest,
    key: { keyId: KEY_ID, arn: ARN, keyState: 'Enabled', creationDate: daysAgo(100), ...key },
  };
};

describe('Rotation budget: on-demand rotations used and left of 25, and the next rotation', () => {
  it.each([
    { used: 0, left: 25 },
    { used: 24, left: 1 },
    { used: 25, left: 0 },
  ])('counts $used on-demand rotations used, $left left (automatic rotations spend none)', ({ used, left }) => {
    const history: RotationRecord[] = [...onDemand(used), { rotationType: 'AUTOMATIC', rotationDate: daysAgo(10) }];
    const schedule = rotationScheduleOf(
      audited({ history, rotation: { enabled: true, nextRotationDate: new Date('2027-01-01T00:00:00Z') } }),
      LIMITS,
    );
    expect(schedule).toEqual({
      keyId: KEY_ID,
      aliases: ['alias/app/key'],
      keyClass: 'auto-rotatable',
      materialDate: daysAgo(10).toISOString(),
      onDemand: { used, left, quota: 25 },
      next: { basis: 'automatic', date: '2027-01-01T00:00:00.000Z' },
    });
  });

  it('says why there is no next date when KMS reports none, or rotation is off', () => {
    expect(rotationScheduleOf(audited({ rotation: { enabled: true } }), LIMITS)?.next).toEqual({
      basis: 'none',
      reason: 'KMS reported no next rotation date',
    });
    expect(rotationScheduleOf(audited({ rotation: { enabled: false, nextRotationDate: NOW } }), LIMITS)?.next).toEqual({
      basis: 'none',
      reason: 'automatic rotation is off',
    });
  });

  it('dates an imported key (on demand only) by its material reaching the maximum age, with its on-demand budget', () => {
    const schedule = rotationScheduleOf(
      audited({ keyClass: 'on-demand-only', history: onDemand(3), key: { origin: 'EXTERNAL' } }),
      LIMITS,
    );
    const latest = daysAgo(498);
    expect(schedule).toEqual({
      keyId: KEY_ID,
      aliases: ['alias/app/key'],
      keyClass: 'on-demand-only',
      materialDate: latest.toISOString(),
      onDemand: { used: 3, left: 22, quota: 25 },
      next: { basis: 'maximum-material-age', date: new Date(latest.getTime() + 400 * DAY).toISOString() },
    });
  });

  it('dates an alias-swap key by when it took over, with no on-demand budget (it cannot rotate on demand)', () => {
    const rotatedAt = daysAgo(50);
    const schedule = rotationScheduleOf(audited({ keyClass: 'alias-swap', rotatedAt, history: undefined }), LIMITS);
    expect(schedule).toEqual({
      keyId: KEY_ID,
      aliases: ['alias/app/key'],
      keyClass: 'alias-swap',
      materialDate: rotatedAt.toISOString(),
      next: { basis: 'maximum-material-age', date: new Date(rotatedAt.getTime() + 400 * DAY).toISOString() },
    });
  });

  it('reports no date for a key that never rotates by itself when the date of its material is unknown', () => {
    const schedule = rotationScheduleOf(
      audited({ keyClass: 'alias-swap', key: { creationDate: undefined }, history: undefined }),
      LIMITS,
    );
    expect(schedule?.next).toEqual({ basis: 'none', reason: 'the date of the current material is unknown' });
    expect(schedule?.materialDate).toBeUndefined();
  });

  it.each(['inactive', 'aws-managed', 'replica', 'unsupported'] as const)(
    'has no schedule for a key of class %s',
    (keyClass) => {
      expect(rotationScheduleOf(audited({ keyClass }), LIMITS)).toBeUndefined();
    },
  );
});

describe('RotationDue: a managed key that never rotates by itself, rotationDueWarningDays before its material reaches the maximum age', () => {
  /** An alias-swap key whose material is `ageDays` old: due at 400 days. */
  const aged = (ageDays: number, overrides: Omit<Partial<AuditedKey>, 'key'> = {}) =>
    audited({ keyClass: 'alias-swap', history: undefined, rotatedAt: daysAgo(ageDays), ...overrides });
  const dueOf = (key: AuditedKey, warningDays = 30) =>
    rotationDueIn(key, rotationScheduleOf(key, LIMITS), warningDays, NOW);

  it.each([
    { case: 'more than 30 days before', age: 369, expected: undefined },
    { case: 'exactly 30 days before', age: 370, expected: { daysLeft: 30, overdue: false } },
    { case: 'on the day', age: 400, expected: { daysLeft: 0, overdue: true } },
    { case: 'past the maximum age', age: 410, expected: { daysLeft: 0, overdue: true } },
  ])('$case', ({ age, expected }) => {
    const due = dueOf(aged(age));
    expect(due === undefined ? undefined : { daysLeft: due.daysLeft, overdue: due.overdue }).toEqual(expected);
    if (due) expect(due.dueAt).toEqual(new Date(daysAgo(age).getTime() + 400 * DAY));
  });

  it('is for managed keys only, and never for keys that rotate by themselves', () => {
    expect(dueOf(aged(390, { declared: undefined }))).toBeUndefined();
    expect(
      dueOf(
        audited({ history: [{ rotationType: 'AUTOMATIC', rotationDate: daysAgo(399) }], rotation: { enabled: true } }),
      ),
    ).toBeUndefined();
  });

  it('covers imported keys too', () => {
    const key = audited({
      keyClass: 'on-demand-only',
      history: [],
      key: { origin: 'EXTERNAL', creationDate: daysAgo(380) },
    });
    expect(dueOf(key)).toEqual({ dueAt: new Date(daysAgo(380).getTime() + 400 * DAY), daysLeft: 20, overdue: false });
  });

  it('is notified as RotationDue, INFO, with the contract fields, the declared aliases and how to rotate', () => {
    const key = aged(380);
    const schedule = rotationScheduleOf(key, LIMITS);
    const due = rotationDueIn(key, schedule, 30, NOW);
    const notification = rotationDue({
      audited: key,
      schedule: schedule as NonNullable<typeof schedule>,
      due: due as NonNullable<typeof due>,
      warningDays: 30,
      maxMaterialAgeDays: 400,
      where: WHERE,
      at: NOW,
      auditId: 'audit-1',
    });
    expect(notification).toEqual({
      type: 'RotationDue',
      severity: 'INFO',
      keyId: KEY_ID,
      keyArn: ARN,
      aliases: ['alias/app/key'],
      account: '111122223333',
      region: 'us-east-1',
      occurredAt: NOW.toISOString(),
      summary: `${KEY_ID} is due for rotation at 2026-12-12T00:00:00.000Z, in 20 days (its material reaches 400 days): rotate it with rotate (strategy "alias-swap" or "auto")`,
      details: {
        auditId: 'audit-1',
        keyClass: 'alias-swap',
        dueAt: '2026-12-12T00:00:00.000Z',
        daysLeft: 20,
        overdue: false,
        materialDate: daysAgo(380).toISOString(),
        maxMaterialAgeDays: 400,
        warningDays: 30,
      },
    });
  });

  it('says an imported key needs new material first, and carries its on-demand budget', () => {
    const key = audited({ keyClass: 'on-demand-only', history: onDemand(2), key: { origin: 'EXTERNAL' } });
    const schedule = rotationScheduleOf(key, LIMITS) as NonNullable<ReturnType<typeof rotationScheduleOf>>;
    const due = rotationDueIn(key, schedule, 30, NOW) as NonNullable<ReturnType<typeof rotationDueIn>>;
    const notification = rotationDue({
      audited: key,
      schedule,
      due,
      warningDays: 30,
      maxMaterialAgeDays: 400,
      where: WHERE,
      at: NOW,
      auditId: 'audit-1',
    });
    expect(notification.summary).toBe(
      `${KEY_ID} was due for rotation at ${due.dueAt.toISOString()} (its material is older than 400 days): import new key material (PENDING_ROTATION), then rotate it with rotate`,
    );
    expect(notification.details).toEqual({
      auditId: 'audit-1',
      keyClass: 'on-demand-only',
      dueAt: due.dueAt.toISOString(),
      daysLeft: 0,
      overdue: true,
      materialDate: daysAgo(499).toISOString(),
      maxMaterialAgeDays: 400,
      warningDays: 30,
      onDemand: { used: 2, left: 23, quota: 25 },
    });
  });
});
