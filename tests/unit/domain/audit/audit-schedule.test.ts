import { beforeEach, describe, expect, it } from 'vitest';
import { type AuditDeps, auditFleet } from '../../../../src/domain/audit-fleet';
import { PreconditionFailedError } from '../../../../src/domain/errors';
import type { KeyDescription, Notification, RotationRecord, RotationStatus, Tags } from '../../../../src/domain/model';
import { MemoryKeyLeases } from '../../support/memory-leases';
import { FakeClock, FakeSleeper } from '../rotate/support/world';

const ACCOUNT = '111122223333';
const NOW = new Date('2026-11-22T00:00:00Z');
const DAY = 86_400_000;
const daysAgo = (days: number) => new Date(NOW.getTime() - days * DAY);
const inDays = (days: number) => new Date(NOW.getTime() + days * DAY);
const MANAGED: Tags = { 'kms-rotation:managed': 'true' };

interface Seeded {
  key: KeyDescription;
  tags: Tags;
  rotation: RotationStatus;
  history: RotationRecord[];
}

/** A handful of keys, read the way the audit reads them. */
const fleetOf = (seeded: Seeded[]) => {
  const get = (id: string) => {
    const found = seeded.find((item) => item.key.keyId === id);
    if (!found) throw new PreconditionFailedError('key-not-found', id);
    return found;
  };
  return {
    fleet: {
      listKeysPage: async () => ({ keyIds: seeded.map((item) => item.key.keyId) }),
      listAllAliases: async () => [{ aliasName: 'alias/app/imported', targetKeyId: 'imported-soon' }],
    },
    keys: {
      describeKey: async (id: string) => get(id).key,
      listTags: async (id: string) => get(id).tags,
      getRotationStatus: async (id: string) => get(id).rotation,
      listRotations: async (id: string) => get(id).history,
      listAliasesOf: async () => [],
    },
    admin: { getKeyPolicy: async () => JSON.stringify({ Statement: [] }) },
  };
};

const key = (keyId: string, overrides: Partial<KeyDescription> = {}): KeyDescription => ({
  keyId,
  arn: `arn:aws:kms:us-east-1:${ACCOUNT}:key/${keyId}`,
  keyState: 'Enabled',
  keySpec: 'SYMMETRIC_DEFAULT',
  keyUsage: 'ENCRYPT_DECRYPT',
  origin: 'AWS_KMS',
  keyManager: 'CUSTOMER',
  creationDate: daysAgo(100),
  ...overrides,
});

const SEEDS: Seeded[] = [
  {
    key: key('imported-soon', {
      origin: 'EXTERNAL',
      expirationModel: 'KEY_MATERIAL_EXPIRES',
      validTo: inDays(5),
      currentKeyMaterialId: 'b'.repeat(64),
    }),
    tags: {},
    rotation: { enabled: false },
    history: [{ rotationType: 'ON_DEMAND', rotationDate: daysAgo(30), keyMaterialId: 'b'.repeat(64) }],
  },
  {
    key: key('imported-forever', { origin: 'EXTERNAL', expirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }),
    tags: {},
    rotation: { enabled: false },
    history: [],
  },
  {
    key: key('rsa-due', { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY', creationDate: daysAgo(390) }),
    tags: { ...MANAGED, 'kms-rotation:aliases': 'alias/app/signing' },
    rotation: { enabled: false },
    history: [],
  },
  {
    key: key('rsa-young', { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' }),
    tags: MANAGED,
    rotation: { enabled: false },
    history: [],
  },
  {
    key: key('auto'),
    tags: {},
    rotation: { enabled: true, periodDays: 365, nextRotationDate: inDays(200) },
    history: [{ rotationType: 'ON_DEMAND', rotationDate: daysAgo(20) }],
  },
];

describe('Function: auditFleet, rotation budget and key notifications (schedule set)', () => {
  let published: Notification[];
  let clock: FakeClock;

  const deps = (schedule?: AuditDeps['schedule']): AuditDeps => {
    const fake = fleetOf(SEEDS);
    return {
      fleet: fake.fleet,
      keys: fake.keys,
      admin: fake.admin as unknown as AuditDeps['admin'],
      records: { declaredKeyIds: async () => [] },
      continuation: { continueLater: async () => undefined },
      notifier: { publish: async (notification) => void published.push(notification) },
      clock,
      ids: { newId: () => 'audit-1' },
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      location: { partition: 'aws', account: ACCOUNT, region: 'us-east-1' },
      limits: { maxRotationPeriodDays: 365, maxMaterialAgeDays: 400 },
      concurrency: 1,
      remainingMs: () => 900_000,
      handOverBelowMs: 120_000,
      maxFindingsListed: 500,
      leases: new MemoryKeyLeases(clock),
      holder: 'test',
      leaseWait: { ms: 10_000, sleeper: new FakeSleeper(clock) },
      ...(schedule ? { schedule } : {}),
    };
  };

  beforeEach(() => {
    published = [];
    clock = new FakeClock(NOW);
  });

  it('reports every rotatable key budget and next rotation, notifies the expiring import and the due alias-swap key, and counts them', async () => {
    const report = await auditFleet(
      { remediate: false },
      deps({ importExpiryWarningDays: 30, rotationDueWarningDays: 30 }),
    );

    expect(report.schedules).toEqual([
      {
        keyId: 'imported-soon',
        aliases: ['alias/app/imported'],
        keyClass: 'on-demand-only',
        materialDate: daysAgo(30).toISOString(),
        onDemand: { used: 1, left: 24, quota: 25 },
        next: { basis: 'maximum-material-age', date: inDays(370).toISOString() },
      },
      {
        keyId: 'imported-forever',
        aliases: [],
        keyClass: 'on-demand-only',
        materialDate: daysAgo(100).toISOString(),
        onDemand: { used: 0, left: 25, quota: 25 },
        next: { basis: 'maximum-material-age', date: inDays(300).toISOString() },
      },
      {
        keyId: 'rsa-due',
        aliases: [],
        keyClass: 'alias-swap',
        materialDate: daysAgo(390).toISOString(),
        next: { basis: 'maximum-material-age', date: inDays(10).toISOString() },
      },
      {
        keyId: 'rsa-young',
        aliases: [],
        keyClass: 'alias-swap',
        materialDate: daysAgo(100).toISOString(),
        next: { basis: 'maximum-material-age', date: inDays(300).toISOString() },
      },
      {
        keyId: 'auto',
        aliases: [],
        keyClass: 'auto-rotatable',
        materialDate: daysAgo(20).toISOString(),
        onDemand: { used: 1, left: 24, quota: 25 },
        next: { basis: 'automatic', date: inDays(200).toISOString() },
      },
    ]);
    expect(report.schedulesOmitted).toBe(0);
    expect(published.map((item) => [item.type, item.severity, item.keyId])).toEqual([
      ['ImportedMaterialExpiring', 'CRITICAL', 'imported-soon'],
      ['RotationDue', 'INFO', 'rsa-due'],
      // WARNING: rsa-due's declared alias does not exist (rule declared-alias); the notices do not raise it.
      ['AuditCompleted', 'WARNING', '*'],
    ]);
    expect(published[0]?.aliases).toEqual(['alias/app/imported']);
    expect(published[1]?.aliases).toEqual(['alias/app/signing']);
    expect(report.totals.keyNotifications).toEqual({ ImportedMaterialExpiring: 1, RotationDue: 1 });
    expect(report.summary).toContain('key notifications sent: ImportedMaterialExpiring 1, RotationDue 1');
    expect(published[2]?.details.totals).toMatchObject({
      keyNotifications: { ImportedMaterialExpiring: 1, RotationDue: 1 },
    });
  });

  it('sends them again at the next audit while they hold (a daily reminder, not once)', async () => {
    await auditFleet({ remediate: false }, deps({ importExpiryWarningDays: 30, rotationDueWarningDays: 30 }));
    clock.advance(DAY);
    await auditFleet({ remediate: false }, deps({ importExpiryWarningDays: 30, rotationDueWarningDays: 30 }));
    expect(
      published.filter((item) => item.type === 'ImportedMaterialExpiring').map((item) => item.details.daysLeft),
    ).toEqual([5, 4]);
    expect(published.filter((item) => item.type === 'RotationDue')).toHaveLength(2);
  });

  it('lists schedules up to the cap and counts the rest', async () => {
    const capped = { ...deps({ importExpiryWarningDays: 30, rotationDueWarningDays: 30 }), maxFindingsListed: 2 };
    const report = await auditFleet({ remediate: false }, capped);
    expect(report.schedules?.map((item) => item.keyId)).toEqual(['imported-soon', 'imported-forever']);
    expect(report.schedulesOmitted).toBe(3);
  });

  it('reports and sends none of it without schedule settings', async () => {
    const report = await auditFleet({ remediate: false }, deps());
    expect(report.schedules).toBeUndefined();
    expect(published.map((item) => item.type)).toEqual(['AuditCompleted']);
  });
});
