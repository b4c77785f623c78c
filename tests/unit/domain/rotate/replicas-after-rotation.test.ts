import { describe, expect, it } from 'vitest';
import { AwsServiceError } from '../../../../src/domain/errors';
import type { RotationEvent } from '../../../../src/domain/model';
import { rotateKey } from '../../../../src/domain/rotate-key';
import { validateRotation } from '../../../../src/domain/validate-rotation';
import { FakeReplicas, MRK_ID, replicaArn } from '../../support/replicas';
import { addManagedKey, createWorld, LOCATION, request, seedCanary, type World } from './support/world';

const ALIAS = 'alias/app/orders';
const REPLICAS = [
  { region: 'eu-west-1', arn: replicaArn('eu-west-1') },
  { region: 'ap-southeast-2', arn: replicaArn('ap-southeast-2') },
];

/** A managed multi-Region primary with two replicas, rotated on demand just now (KMS has recorded it). */
const rotatedPrimary = async (world: World) => {
  addManagedKey(world, [ALIAS], {
    keyId: MRK_ID,
    multiRegion: true,
    multiRegionKeyType: 'PRIMARY',
    replicaKeys: REPLICAS,
    rotationEnabled: true,
  });
  await seedCanary(world, MRK_ID);
  const before = (await world.kms.describeKey(MRK_ID)).currentKeyMaterialId as string;
  await world.kms.rotateKeyOnDemand(MRK_ID);
  await world.kms.listRotations(MRK_ID);
  const after = (await world.kms.describeKey(MRK_ID)).currentKeyMaterialId as string;
  const event: RotationEvent = {
    eventId: 'event-1',
    time: world.clock.now(),
    account: LOCATION.account,
    region: LOCATION.region,
    keyId: MRK_ID,
    keyArn: `arn:aws:kms:${LOCATION.region}:${LOCATION.account}:key/${MRK_ID}`,
    rotationType: 'ON_DEMAND',
    currentKeyMaterialId: after,
  };
  return { before, after, event };
};

describe('Function: validateRotation (onRotation), a multi-Region primary', () => {
  it('compares each replica with the new material after the validation passed, and tells a lagging one apart, WARNING', async () => {
    const world = createWorld();
    const { before, after, event } = await rotatedPrimary(world);
    const replicas = new FakeReplicas({ 'eu-west-1': after, 'ap-southeast-2': before });

    const report = await validateRotation(event, { ...world.deps, replicas });

    expect(report.outcome).toBe('validated');
    expect(report.replicas?.checks.map((check) => [check.region, check.status])).toEqual([
      ['eu-west-1', 'in-step'],
      ['ap-southeast-2', 'lagging'],
    ]);
    expect(report.replicas?.notified).toBe('WARNING');
    expect(world.notifier.kinds()).toEqual(['ReplicaMaterialLagging/WARNING', 'RotationValidated/INFO']);
    const now = world.clock.now().toISOString();
    expect(world.notifier.published[0]).toEqual({
      type: 'ReplicaMaterialLagging',
      severity: 'WARNING',
      keyId: MRK_ID,
      keyArn: event.keyArn,
      aliases: [ALIAS],
      account: LOCATION.account,
      region: LOCATION.region,
      occurredAt: now,
      summary: `Replicas of ${ALIAS} behind the primary's key material: ap-southeast-2 (since ${now})`,
      details: {
        eventId: 'event-1',
        source: 'onRotation',
        primaryMaterialId: after,
        replicas: [
          {
            region: 'ap-southeast-2',
            arn: replicaArn('ap-southeast-2'),
            replicaMaterialId: before,
            firstSeen: now,
            severity: 'WARNING',
          },
        ],
      },
    });
    expect(world.notifier.published[1]?.details.replicas).toEqual(report.replicas?.checks);
    const record = world.records.byKey.get(MRK_ID);
    expect(record?.replicaLag).toEqual({
      'ap-southeast-2': { firstSeen: now, primaryMaterialId: after, replicaMaterialId: before },
    });
    expect(record?.lastValidatedRotation).toEqual({ keyMaterialId: after, rotationDate: now });
  });

  it('tells the same lag only once when the event comes again: the audit tells it next', async () => {
    const world = createWorld();
    const { before, after, event } = await rotatedPrimary(world);
    const replicas = new FakeReplicas({ 'eu-west-1': after, 'ap-southeast-2': before });
    await validateRotation(event, { ...world.deps, replicas });
    world.clock.advance(60_000);

    await validateRotation(event, { ...world.deps, replicas });

    expect(world.notifier.kinds()).toEqual([
      'ReplicaMaterialLagging/WARNING',
      'RotationValidated/INFO',
      'RotationValidated/INFO',
    ]);
  });

  it.each([
    ['denied', new AwsServiceError('DescribeKey', false, 'AccessDeniedException', { accessDenied: true })],
    ['throttled', new AwsServiceError('DescribeKey', true, 'ThrottlingException')],
  ])('never reads a replica whose read was %s as in step: the validation is WARNING and names it', async (_, error) => {
    const world = createWorld();
    const { after, event } = await rotatedPrimary(world);

    const report = await validateRotation(event, {
      ...world.deps,
      replicas: new FakeReplicas({ 'eu-west-1': after, 'ap-southeast-2': error }),
    });

    expect(report.outcome).toBe('validated');
    expect(world.notifier.kinds()).toEqual(['RotationValidated/WARNING']);
    expect(report.summary).toBe(
      `Rotation of ${ALIAS} validated: new material encrypts and decrypts (through ${ALIAS}); replicas not compared: DescribeKey of the replica in ap-southeast-2 failed (AwsServiceError: ${error.message}): its material is unknown`,
    );
    expect(world.records.byKey.get(MRK_ID)?.replicaLag).toEqual({});
  });

  it('reads no replica when the validation failed, nor for a single-Region key', async () => {
    const world = createWorld();
    const { before, event } = await rotatedPrimary(world);
    world.kms.setDefect(MRK_ID, 'wrong-plaintext');
    const replicas = new FakeReplicas({ 'eu-west-1': before, 'ap-southeast-2': before });

    const report = await validateRotation(event, { ...world.deps, replicas });

    expect(report.outcome).toBe('failed');
    expect(replicas.reads).toEqual([]);
    expect(world.notifier.kinds()).toEqual(['RotationValidationFailed/CRITICAL']);
  });
});

describe('Function: rotateKey (on demand), a multi-Region primary', () => {
  it('checks the replicas after validating its rotation, tells a new lag, and keeps it on record', async () => {
    const world = createWorld();
    addManagedKey(world, [ALIAS], {
      keyId: MRK_ID,
      multiRegion: true,
      multiRegionKeyType: 'PRIMARY',
      replicaKeys: REPLICAS,
      rotationEnabled: true,
    });
    await seedCanary(world, MRK_ID);
    const before = (await world.kms.describeKey(MRK_ID)).currentKeyMaterialId as string;
    const replicas = new FakeReplicas({ 'eu-west-1': before, 'ap-southeast-2': before });

    const report = await rotateKey(request({ key: ALIAS }), { ...world.deps, replicas });

    expect(report.outcome).toBe('completed');
    expect(report.steps.find((step) => step.step === 'validate')?.detail).toBe(
      'round trip, canary, rotation history and aliases checked; replicas: eu-west-1 lagging, ap-southeast-2 lagging',
    );
    expect(world.notifier.kinds()).toEqual(['ReplicaMaterialLagging/WARNING', 'RotationCompleted/INFO']);
    expect(world.notifier.published[0]?.details).toMatchObject({ source: 'rotate' });
    expect(Object.keys(world.records.byKey.get(MRK_ID)?.replicaLag ?? {})).toEqual(['eu-west-1', 'ap-southeast-2']);
    expect(world.records.byKey.get(MRK_ID)?.lastValidatedRotation?.keyMaterialId).toBe(
      (await world.kms.describeKey(MRK_ID)).currentKeyMaterialId,
    );
  });
});
