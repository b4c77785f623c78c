import { describe, expect, it } from 'vitest';
import { AwsServiceError } from '../../../src/domain/errors';
import type { KeyDescription } from '../../../src/domain/model';
import type { KeyRecord, ReplicaReader } from '../../../src/domain/ports';
import { checkReplicas, judgeReplicas, watchReplicas } from '../../../src/domain/replica-material';
import { FakeClock, LOCATION, RecordingNotifier } from './rotate/support/world';

const KEY_ID = 'mrk-1234abcd12ab34cd56ef1234567890ab';
const PRIMARY_MATERIAL = 'a'.repeat(64);
const OLD_MATERIAL = 'b'.repeat(64);
const NOW = new Date('2026-12-02T03:00:00.000Z');
const arnIn = (region: string) => `arn:aws:kms:${region}:123456789012:key/${KEY_ID}`;

const primary: KeyDescription = {
  keyId: KEY_ID,
  arn: arnIn('us-east-1'),
  keyState: 'Enabled',
  multiRegion: true,
  multiRegionKeyType: 'PRIMARY',
  currentKeyMaterialId: PRIMARY_MATERIAL,
  replicaKeys: [
    { region: 'eu-west-1', arn: arnIn('eu-west-1') },
    { region: 'ap-southeast-2', arn: arnIn('ap-southeast-2') },
  ],
};

/** Each replica's DescribeKey answer, or the error its Region answers with; every read recorded. */
class FakeReplicas implements ReplicaReader {
  readonly reads: { arn: string; region: string }[] = [];
  constructor(private readonly answers: Record<string, string | undefined | Error>) {}
  async describeReplica(arn: string, region: string): Promise<KeyDescription> {
    this.reads.push({ arn, region });
    const answer = this.answers[region];
    if (answer instanceof Error) throw answer;
    return { ...primary, arn, multiRegionKeyType: 'REPLICA', replicaKeys: undefined, currentKeyMaterialId: answer };
  }
}

const denied = () =>
  new AwsServiceError('DescribeKey', false, 'AccessDeniedException: not authorized', { accessDenied: true });
const throttled = () => new AwsServiceError('DescribeKey', true, 'ThrottlingException: rate exceeded');

describe('Function: checkReplicas', () => {
  it('reads each replica in its own Region and compares its current material with the primary', async () => {
    const reader = new FakeReplicas({ 'eu-west-1': PRIMARY_MATERIAL, 'ap-southeast-2': OLD_MATERIAL });
    expect(await checkReplicas(primary, reader)).toEqual([
      {
        region: 'eu-west-1',
        arn: arnIn('eu-west-1'),
        status: 'in-step',
        primaryMaterialId: PRIMARY_MATERIAL,
        replicaMaterialId: PRIMARY_MATERIAL,
        detail: `replica in eu-west-1 has the current material ${PRIMARY_MATERIAL}`,
      },
      {
        region: 'ap-southeast-2',
        arn: arnIn('ap-southeast-2'),
        status: 'lagging',
        primaryMaterialId: PRIMARY_MATERIAL,
        replicaMaterialId: OLD_MATERIAL,
        detail: `replica in ap-southeast-2 has material ${OLD_MATERIAL}, the primary ${PRIMARY_MATERIAL}`,
      },
    ]);
    expect(reader.reads).toEqual([
      { arn: arnIn('eu-west-1'), region: 'eu-west-1' },
      { arn: arnIn('ap-southeast-2'), region: 'ap-southeast-2' },
    ]);
  });

  it.each([
    ['denied', denied()],
    ['throttled past every retry', throttled()],
  ])('takes a replica whose read was %s for unreadable: neither lagging nor in step', async (_, error) => {
    const checks = await checkReplicas(
      primary,
      new FakeReplicas({ 'eu-west-1': error, 'ap-southeast-2': OLD_MATERIAL }),
    );
    expect(checks[0]).toEqual({
      region: 'eu-west-1',
      arn: arnIn('eu-west-1'),
      status: 'unreadable',
      primaryMaterialId: PRIMARY_MATERIAL,
      detail: `DescribeKey of the replica in eu-west-1 failed (AwsServiceError: ${error.message}): its material is unknown`,
    });
    expect(checks[1]?.status).toBe('lagging');
  });

  it('says unknown, never in step, when KMS does not report a material on either side', async () => {
    const checks = await checkReplicas(
      { ...primary, currentKeyMaterialId: undefined },
      new FakeReplicas({ 'eu-west-1': undefined, 'ap-southeast-2': undefined }),
    );
    expect(checks.map((check) => [check.status, check.detail])).toEqual([
      ['unknown', 'KMS did not report the current key material of the primary'],
      ['unknown', 'KMS did not report the current key material of the primary'],
    ]);
    const replicaSilent = await checkReplicas(
      primary,
      new FakeReplicas({ 'eu-west-1': undefined, 'ap-southeast-2': PRIMARY_MATERIAL }),
    );
    expect(replicaSilent.map((check) => [check.status, check.detail])).toEqual([
      ['unknown', 'KMS did not report the current key material of the replica in eu-west-1'],
      ['in-step', `replica in ap-southeast-2 has the current material ${PRIMARY_MATERIAL}`],
    ]);
  });

  it('reads nothing for a primary without replicas', async () => {
    const reader = new FakeReplicas({});
    expect(await checkReplicas({ ...primary, replicaKeys: [] }, reader)).toEqual([]);
    expect(reader.reads).toEqual([]);
  });
});

describe('Function: judgeReplicas', () => {
  const lagging = {
    region: 'eu-west-1',
    arn: arnIn('eu-west-1'),
    status: 'lagging' as const,
    primaryMaterialId: PRIMARY_MATERIAL,
    replicaMaterialId: OLD_MATERIAL,
    detail: 'behind',
  };
  const sighting = {
    firstSeen: '2026-12-01T03:00:00.000Z',
    primaryMaterialId: PRIMARY_MATERIAL,
    replicaMaterialId: OLD_MATERIAL,
  };

  it('makes a first sighting WARNING and remembers when it was made', () => {
    expect(judgeReplicas([lagging], undefined, { now: NOW, auditStartedAt: NOW })).toEqual({
      checks: [lagging],
      lagging: [{ ...lagging, severity: 'WARNING', firstSeen: NOW.toISOString(), newSighting: true }],
      unknown: [],
      replicaLag: {
        'eu-west-1': {
          firstSeen: NOW.toISOString(),
          primaryMaterialId: PRIMARY_MATERIAL,
          replicaMaterialId: OLD_MATERIAL,
        },
      },
    });
  });

  it('makes a lag seen before this audit began, and still there, CRITICAL, keeping its first sighting', () => {
    const judged = judgeReplicas([lagging], { 'eu-west-1': sighting }, { now: NOW, auditStartedAt: NOW });
    expect(judged.lagging).toEqual([
      { ...lagging, severity: 'CRITICAL', firstSeen: sighting.firstSeen, newSighting: false },
    ]);
    expect(judged.replicaLag).toEqual({ 'eu-west-1': sighting });
  });

  it('keeps a lag seen again after an event (not an audit) WARNING, and not new', () => {
    const judged = judgeReplicas([lagging], { 'eu-west-1': sighting }, { now: NOW });
    expect(judged.lagging).toEqual([
      { ...lagging, severity: 'WARNING', firstSeen: sighting.firstSeen, newSighting: false },
    ]);
  });

  it('drops the sighting of a replica that caught up, and of a Region no longer listed', () => {
    const caughtUp = { ...lagging, status: 'in-step' as const, replicaMaterialId: PRIMARY_MATERIAL };
    const judged = judgeReplicas(
      [caughtUp],
      { 'eu-west-1': sighting, 'sa-east-1': sighting },
      { now: NOW, auditStartedAt: NOW },
    );
    expect(judged).toEqual({ checks: [caughtUp], lagging: [], unknown: [], replicaLag: {} });
  });

  it('learns nothing from a replica it could not read: its sighting stays as it was, and it is listed unknown', () => {
    const unreadable = { ...lagging, status: 'unreadable' as const, replicaMaterialId: undefined };
    const judged = judgeReplicas([unreadable], { 'eu-west-1': sighting }, { now: NOW, auditStartedAt: NOW });
    expect(judged).toEqual({
      checks: [unreadable],
      lagging: [],
      unknown: [unreadable],
      replicaLag: { 'eu-west-1': sighting },
    });
  });
});

describe('Function: watchReplicas', () => {
  const deps = (answers: Record<string, string | undefined | Error>) => ({
    replicas: new FakeReplicas(answers),
    notifier: new RecordingNotifier(),
    clock: new FakeClock(NOW),
    location: { ...LOCATION },
  });

  it('tells a first sighting after a rotation event: ReplicaMaterialLagging, WARNING, by the contract', async () => {
    const world = deps({ 'eu-west-1': OLD_MATERIAL, 'ap-southeast-2': PRIMARY_MATERIAL });
    const watched = await watchReplicas(
      primary,
      ['alias/app/orders'],
      {},
      { kind: 'onRotation', eventId: 'event-1' },
      world,
    );
    expect(watched.notified).toBe('WARNING');
    expect(world.notifier.published).toEqual([
      {
        type: 'ReplicaMaterialLagging',
        severity: 'WARNING',
        keyId: KEY_ID,
        keyArn: arnIn('us-east-1'),
        aliases: ['alias/app/orders'],
        account: LOCATION.account,
        region: LOCATION.region,
        occurredAt: NOW.toISOString(),
        summary: `Replicas of alias/app/orders behind the primary's key material: eu-west-1 (since ${NOW.toISOString()})`,
        details: {
          eventId: 'event-1',
          source: 'onRotation',
          primaryMaterialId: PRIMARY_MATERIAL,
          replicas: [
            {
              region: 'eu-west-1',
              arn: arnIn('eu-west-1'),
              replicaMaterialId: OLD_MATERIAL,
              firstSeen: NOW.toISOString(),
              severity: 'WARNING',
            },
          ],
        },
      },
    ]);
  });

  it('does not tell the same lag again after a later event: the next audit does', async () => {
    const world = deps({ 'eu-west-1': OLD_MATERIAL, 'ap-southeast-2': PRIMARY_MATERIAL });
    const record: KeyRecord = {
      replicaLag: { 'eu-west-1': { firstSeen: '2026-12-01T00:00:00.000Z', primaryMaterialId: PRIMARY_MATERIAL } },
    };
    const watched = await watchReplicas(primary, [], record, { kind: 'onRotation', eventId: 'event-2' }, world);
    expect(watched.notified).toBeUndefined();
    expect(world.notifier.published).toEqual([]);
    expect(watched.lagging.map((replica) => replica.severity)).toEqual(['WARNING']);
  });

  it('tells a lag still there at the next audit CRITICAL, naming the audit', async () => {
    const world = deps({ 'eu-west-1': OLD_MATERIAL, 'ap-southeast-2': PRIMARY_MATERIAL });
    const record: KeyRecord = {
      replicaLag: { 'eu-west-1': { firstSeen: '2026-12-01T00:00:00.000Z', primaryMaterialId: PRIMARY_MATERIAL } },
    };
    await watchReplicas(primary, [], record, { kind: 'audit', auditId: 'audit-7' }, world, NOW);
    expect(
      world.notifier.published.map((n) => [n.type, n.severity, n.summary, n.details.auditId, n.details.source]),
    ).toEqual([
      [
        'ReplicaMaterialLagging',
        'CRITICAL',
        `Replicas of ${KEY_ID} still behind the primary's key material at this audit: eu-west-1 (since 2026-12-01T00:00:00.000Z)`,
        'audit-7',
        'audit',
      ],
    ]);
  });

  it('tells nothing when every replica is in step, or could not be read', async () => {
    const world = deps({ 'eu-west-1': PRIMARY_MATERIAL, 'ap-southeast-2': denied() });
    const watched = await watchReplicas(primary, [], {}, { kind: 'audit', auditId: 'audit-8' }, world, NOW);
    expect(world.notifier.published).toEqual([]);
    expect(watched.unknown.map((check) => check.region)).toEqual(['ap-southeast-2']);
    expect(watched.replicaLag).toEqual({});
  });
});
