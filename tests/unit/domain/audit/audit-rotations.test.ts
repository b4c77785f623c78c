import { describe, expect, it } from 'vitest';
import { parseAuditRequest } from '../../../../src/adapters/schemas/audit-request';
import { type AuditDeps, type AuditRequest, auditFleet } from '../../../../src/domain/audit-fleet';
import { AwsServiceError } from '../../../../src/domain/errors';
import type { RotationRecord } from '../../../../src/domain/model';
import { FakeReplicas, MRK_ID, replicaArn } from '../../support/replicas';
import { addManagedKey, createWorld, LOCATION, seedCanary, type World } from '../rotate/support/world';

const day = (n: number) => new Date(Date.UTC(2026, 1, n, 9, 0, 0));
const ALIAS = 'alias/app/orders';
const DAY_MS = 86_400_000;
let auditCount = 0;

/** The audit over the fake KMS of `world`, with the reconciliation and replica deps. */
const auditDeps = (world: World, replicas?: FakeReplicas): AuditDeps => ({
  fleet: {
    listKeysPage: async () => ({ keyIds: world.kms.keyIds() }),
    listAllAliases: async () => (await Promise.all(world.kms.keyIds().map((id) => world.kms.listAliasesOf(id)))).flat(),
  },
  keys: world.kms,
  admin: world.kms,
  records: { declaredKeyIds: async () => [...world.records.byKey.keys()] },
  continuation: { continueLater: async () => undefined },
  notifier: world.notifier,
  clock: world.clock,
  ids: { newId: () => `audit-${++auditCount}` },
  log: world.log,
  location: { ...LOCATION },
  limits: { maxRotationPeriodDays: 365, maxMaterialAgeDays: 1000 },
  concurrency: 2,
  remainingMs: () => 900_000,
  handOverBelowMs: 120_000,
  maxFindingsListed: 500,
  leases: world.leases,
  holder: 'kms-rotation-test-audit request-1',
  leaseWait: { ms: 10_000, sleeper: world.sleeper },
  rotations: {
    store: world.records,
    crypto: world.kms,
    random: world.deps.random,
    digest: world.deps.digest,
    ...(replicas ? { replicas } : {}),
  },
});

/** A managed key rotated on these days, validated on record up to the first of them. */
const managedKeyRotatedOn = async (world: World, days: number[], init: Parameters<typeof addManagedKey>[2] = {}) => {
  const keyId = addManagedKey(world, [ALIAS], {
    rotationEnabled: true,
    history: days.map((n) => ({ rotationType: 'AUTOMATIC' as const, rotationDate: day(n) })),
    ...init,
  });
  await seedCanary(world, keyId);
  const history = await world.kms.listRotations(keyId);
  const first = history[0] as RotationRecord;
  world.records.byKey.set(keyId, {
    ...world.records.byKey.get(keyId),
    lastValidatedRotation: {
      keyMaterialId: first.keyMaterialId,
      rotationDate: first.rotationDate?.toISOString() as string,
    },
  });
  return { keyId, history };
};

describe('Function: auditFleet, reconciliation of rotations whose event was lost', () => {
  it('validates the rotation no event told of, counts it, and tells it as onRotation would; a re-run reconciles nothing', async () => {
    const world = createWorld();
    const { keyId, history } = await managedKeyRotatedOn(world, [1, 2]);
    const lost = history[1] as RotationRecord;

    const report = await auditFleet({ remediate: false }, auditDeps(world));

    expect(report.totals).toMatchObject({ reconciled: 1, reconcileFailed: 0, reconcileUnfinished: 0 });
    expect(report.reconciliations).toEqual([
      {
        keyId,
        rotation: { keyMaterialId: lost.keyMaterialId, rotationDate: day(2).toISOString(), rotationType: 'AUTOMATIC' },
        outcome: 'validated',
        summary: `Rotation of ${ALIAS} validated: new material encrypts and decrypts (through ${ALIAS})`,
      },
    ]);
    expect(world.notifier.kinds()).toEqual(['RotationValidated/INFO', 'AuditCompleted/INFO']);
    expect(world.notifier.published[0]?.details.eventId).toBe(`reconcile:${keyId}:${lost.keyMaterialId}`);
    const completed = world.notifier.published[1];
    expect(completed?.summary).toBe(
      'Audited 1 keys (auto-rotatable 1); 1 compliant, 0 non-compliant; 1 rotation without a validation reconciled (1 validated, 0 failed, 0 left for the next audit)',
    );
    expect(completed?.details.reconciliations).toEqual(report.reconciliations);
    expect(completed?.details.totals).toMatchObject({ reconciled: 1, reconcileFailed: 0, reconcileUnfinished: 0 });
    expect(world.records.byKey.get(keyId)?.lastValidatedRotation?.keyMaterialId).toBe(lost.keyMaterialId);

    const again = await auditFleet({ remediate: false }, auditDeps(world));
    expect(again.totals).toMatchObject({ reconciled: 0, reconcileFailed: 0, reconcileUnfinished: 0 });
    expect(again.reconciliations).toEqual([]);
    expect(world.notifier.kinds()).toEqual(['RotationValidated/INFO', 'AuditCompleted/INFO', 'AuditCompleted/INFO']);
  });

  it('counts a reconciled rotation that fails validation, tells it CRITICAL once, and makes AuditCompleted a WARNING', async () => {
    const world = createWorld();
    const { keyId } = await managedKeyRotatedOn(world, [1, 2]);
    world.kms.setDefect(keyId, 'wrong-plaintext');

    const report = await auditFleet({ remediate: false }, auditDeps(world));

    expect(report.totals).toMatchObject({ reconciled: 0, reconcileFailed: 1, reconcileUnfinished: 0 });
    expect(world.notifier.kinds()).toEqual(['RotationValidationFailed/CRITICAL', 'AuditCompleted/WARNING']);
    expect(world.notifier.published[1]?.summary).toContain(
      '1 rotation without a validation reconciled (0 validated, 1 failed, 0 left for the next audit)',
    );
  });

  it('counts a rotation it could not validate (a throttled read) as left for the next audit, and still finishes the audit', async () => {
    const world = createWorld();
    await managedKeyRotatedOn(world, [1, 2]);
    // The audit's own read of the history is call 1 from now; the validation's is call 2.
    world.kms.failAt('listRotations', 2, {
      error: new AwsServiceError('ListKeyRotations', true, 'ThrottlingException'),
    });

    const report = await auditFleet({ remediate: false }, auditDeps(world));

    expect(report.totals).toMatchObject({ reconciled: 0, reconcileFailed: 0, reconcileUnfinished: 1 });
    expect(report.reconciliations.map((item) => [item.outcome, item.summary])).toEqual([
      ['unfinished', 'AwsServiceError: ThrottlingException'],
    ]);
    expect(world.notifier.kinds()).toEqual(['AuditCompleted/WARNING']);
  });

  it('carries the reconciliation counts from slice to slice: the checkpoint it hands over is one the audit accepts', async () => {
    const world = createWorld();
    await managedKeyRotatedOn(world, [1, 2]);
    await managedKeyRotatedOn(world, [3, 4]);
    const handedOver: AuditRequest[] = [];
    const deps: AuditDeps = {
      ...auditDeps(world),
      // One key per page, and time short after the first: the second key is the next slice's.
      fleet: {
        listKeysPage: async (marker?: string) => {
          const ids = world.kms.keyIds();
          const at = Number(marker ?? 0);
          return { keyIds: ids.slice(at, at + 1), ...(at + 1 < ids.length ? { nextMarker: String(at + 1) } : {}) };
        },
        listAllAliases: async () => [],
      },
      remainingMs: () => 60_000,
      continuation: { continueLater: async (request) => void handedOver.push(request) },
    };

    const first = await auditFleet({ remediate: false }, deps);
    expect(first.complete).toBe(false);
    const resumed = parseAuditRequest(JSON.parse(JSON.stringify(handedOver[0])), false);
    const last = await auditFleet(resumed, deps);

    expect(resumed.checkpoint?.totals.reconciled).toBe(1);
    expect(last).toMatchObject({
      complete: true,
      totals: { reconciled: 2, reconcileFailed: 0, reconcileUnfinished: 0 },
    });
  });

  it('leaves keys it does not manage alone: no validation, no record', async () => {
    const world = createWorld();
    const keyId = world.kms.addKey({
      rotationEnabled: true,
      history: [{ rotationType: 'AUTOMATIC', rotationDate: day(2) }],
    });

    const report = await auditFleet({ remediate: false }, auditDeps(world));

    expect(report.totals.reconciled).toBe(0);
    expect(world.kms.callsSince(0).filter((call) => call.method === 'encrypt' || call.method === 'decrypt')).toEqual(
      [],
    );
    expect(world.records.byKey.has(keyId)).toBe(false);
    expect(world.notifier.kinds()).toEqual(['AuditCompleted/INFO']);
  });
});

describe('Function: auditFleet, multi-Region replicas', () => {
  const primaryInit = {
    keyId: MRK_ID,
    multiRegion: true,
    multiRegionKeyType: 'PRIMARY',
    replicaKeys: [{ region: 'eu-west-1', arn: replicaArn('eu-west-1') }],
  };

  it('finds a lagging replica WARNING at the first sighting, CRITICAL at the next audit, and drops it once caught up', async () => {
    const world = createWorld();
    await managedKeyRotatedOn(world, [1], primaryInit);
    const current = (await world.kms.describeKey(MRK_ID)).currentKeyMaterialId as string;
    const replicas = new FakeReplicas({ 'eu-west-1': 'older-material' });
    const firstSeen = world.clock.now().toISOString();

    const first = await auditFleet({ remediate: false }, auditDeps(world, replicas));

    const lagging = {
      rule: 'replica-material',
      keyId: MRK_ID,
      aliases: [ALIAS],
      evidence: {
        region: 'eu-west-1',
        replicaArn: replicaArn('eu-west-1'),
        primaryMaterialId: current,
        replicaMaterialId: 'older-material',
        firstSeen,
      },
    };
    expect(first.findings).toEqual([
      {
        ...lagging,
        severity: 'WARNING',
        summary: `replica of ${MRK_ID} in eu-west-1 behind its primary's key material`,
        controls: [
          'NIST SP 800-57 Part 1 §5.3 cryptoperiods: every copy of a key changes material with it',
          "kms-rotation multi-Region keys: each replica carries its primary key's current material",
        ],
      },
    ]);
    expect(world.notifier.kinds()).toEqual(['ReplicaMaterialLagging/WARNING', 'AuditCompleted/WARNING']);
    expect(world.records.byKey.get(MRK_ID)?.replicaLag).toEqual({
      'eu-west-1': { firstSeen, primaryMaterialId: current, replicaMaterialId: 'older-material' },
    });
    expect(replicas.reads).toEqual([{ arn: replicaArn('eu-west-1'), region: 'eu-west-1' }]);

    world.clock.advance(DAY_MS);
    const second = await auditFleet({ remediate: false }, auditDeps(world, replicas));

    expect(second.findings).toEqual([
      expect.objectContaining({
        ...lagging,
        severity: 'CRITICAL',
        summary: `replica of ${MRK_ID} in eu-west-1 still behind its primary's key material (since ${firstSeen})`,
      }),
    ]);
    expect(world.notifier.kinds().slice(2)).toEqual(['ReplicaMaterialLagging/CRITICAL', 'AuditCompleted/CRITICAL']);
    expect(world.notifier.published[2]?.details).toEqual({
      auditId: second.auditId,
      source: 'audit',
      primaryMaterialId: current,
      replicas: [
        {
          region: 'eu-west-1',
          arn: replicaArn('eu-west-1'),
          replicaMaterialId: 'older-material',
          firstSeen,
          severity: 'CRITICAL',
        },
      ],
    });

    replicas.answers = { 'eu-west-1': current };
    world.clock.advance(DAY_MS);
    const third = await auditFleet({ remediate: false }, auditDeps(world, replicas));

    expect(third.findings).toEqual([]);
    expect(world.notifier.kinds().slice(4)).toEqual(['AuditCompleted/INFO']);
    expect(world.records.byKey.get(MRK_ID)?.replicaLag).toEqual({});
  });

  it.each([
    ['denied', new AwsServiceError('DescribeKey', false, 'AccessDeniedException', { accessDenied: true })],
    ['throttled', new AwsServiceError('DescribeKey', true, 'ThrottlingException')],
  ])(
    'reports a replica whose read was %s as not compared, never in step nor lagging, keeping the sighting on record',
    async (_, error) => {
      const world = createWorld();
      await managedKeyRotatedOn(world, [1], primaryInit);
      const sighting = { firstSeen: '2026-02-20T00:00:00.000Z', primaryMaterialId: 'p', replicaMaterialId: 'r' };
      world.records.byKey.set(MRK_ID, { ...world.records.byKey.get(MRK_ID), replicaLag: { 'eu-west-1': sighting } });

      const report = await auditFleet({ remediate: false }, auditDeps(world, new FakeReplicas({ 'eu-west-1': error })));

      expect(report.findings).toEqual([
        {
          rule: 'replica-material',
          severity: 'WARNING',
          keyId: MRK_ID,
          aliases: [ALIAS],
          summary: `replica of ${MRK_ID} in eu-west-1 not compared: DescribeKey of the replica in eu-west-1 failed (AwsServiceError: ${error.message}): its material is unknown`,
          evidence: { region: 'eu-west-1', replicaArn: replicaArn('eu-west-1'), status: 'unreadable' },
          controls: expect.any(Array),
        },
      ]);
      expect(world.notifier.kinds()).toEqual(['AuditCompleted/WARNING']);
      expect(world.records.byKey.get(MRK_ID)?.replicaLag).toEqual({ 'eu-west-1': sighting });
    },
  );

  it('checks no replicas of a single-Region key, nor of a primary it does not manage', async () => {
    const world = createWorld();
    await managedKeyRotatedOn(world, [1]);
    world.kms.addKey({ ...primaryInit, keyId: 'mrk-ffffffffffffffffffffffffffffffff', rotationEnabled: true });
    const replicas = new FakeReplicas({ 'eu-west-1': 'older-material' });

    const report = await auditFleet({ remediate: false }, auditDeps(world, replicas));

    expect(replicas.reads).toEqual([]);
    expect(report.findings).toEqual([]);
  });
});
