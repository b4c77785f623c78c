import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  KMSClient,
  ListKeyRotationsCommand,
  ReplicateKeyCommand,
  RotateKeyOnDemandCommand,
} from '@aws-sdk/client-kms';
import { GetParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsProxy, startAwsProxy } from '../../scripts/lib/aws-proxy';
import type { Emulator } from '../../scripts/lib/emulator';
import { type InvokeResult, invokeBundled } from '../../scripts/lib/invoke';
import { type KeyMaterialGap, keyMaterialGap } from '../../scripts/lib/kms-gaps/key-material';
import { multiRegionKeyTypeGap } from '../../scripts/lib/kms-gaps/multi-region-key-type';
import { type EmulatorClients, rotationEvent, type subscribeQueueToTopic } from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import type { AuditReport } from '../../src/domain/audit-fleet';
import type { KeyRecord } from '../../src/domain/ports';
import { deployTestStack } from './support/deployed-stack';

/**
 * Multi-Region keys and reconciliation, end to end: the packaged stack deployed into moto, the
 * bundled functions run against it through the proxy, whose gaps give moto what it lacks (material
 * ids, a replica that lags, each multi-Region key its own type: docs/kms-facts.md#moto). Rotations are made with the
 * SDK through the same proxy; the "lost event" is a rotation for which no event is sent at all.
 */
describe('Multi-Region replicas and reconciliation against the local AWS emulator', () => {
  const region = 'us-east-1';
  const replicaRegion = 'eu-west-1';
  let emulator: Emulator;
  let stack: DeployedStack;
  let clients: EmulatorClients;
  let inbox: Awaited<ReturnType<typeof subscribeQueueToTopic>>;
  let proxy: AwsProxy;
  let gap: KeyMaterialGap;
  let kms: KMSClient;

  beforeAll(async () => {
    ({ emulator, stack, clients, inbox } = await deployTestStack('itrepl'));
    gap = keyMaterialGap();
    proxy = await startAwsProxy({ target: emulator.endpoint, gaps: [gap, multiRegionKeyTypeGap()] });
    kms = new KMSClient({
      endpoint: proxy.endpoint,
      region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await emulator?.stop();
  });

  const invoke = async <T>(name: string, event: unknown): Promise<T> => {
    const outcome: InvokeResult = await invokeBundled({
      endpoint: proxy.endpoint,
      region,
      fn: stack.functions[name] as DeployedStack['functions'][string],
      event,
    });
    if (!outcome.ok) throw new Error(`${name} failed: ${outcome.error.name}: ${outcome.error.message}`);
    return outcome.result as T;
  };
  const recordOf = async (keyId: string): Promise<KeyRecord> => {
    const { Parameter } = await clients.ssm.send(
      new GetParameterCommand({ Name: `/kms-rotation/itrepl/keys/${keyId}` }),
    );
    return JSON.parse(Parameter?.Value ?? '{}') as KeyRecord;
  };
  const rotateNow = async (keyId: string) => {
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    const { Rotations = [] } = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
    return Rotations.at(-1);
  };

  // moto cannot serve onRotation or rotate on a multi-Region key: its ids are `mrk-` + a UUID (the
  // event and the audit's `keyIds` follow AWS's `mrk-` + 32 hex digits, and refuse them), and it
  // cannot decrypt under one (docs/kms-facts.md#moto). So the rotation is validated on record, as
  // onRotation leaves it, and the audits cover the whole fleet; onRotation's and rotate's replica
  // checks are unit-tested (tests/unit/domain/rotate/replicas-after-rotation.test.ts).
  it('the audit finds a replica behind its primary WARNING, still behind at the next audit CRITICAL, and once caught up nothing', async () => {
    const alias = 'alias/app/global';
    const { KeyMetadata } = await kms.send(
      new CreateKeyCommand({
        MultiRegion: true,
        Description: 'orders, multi-Region',
        Tags: [
          { TagKey: 'kms-rotation:managed', TagValue: 'true' },
          { TagKey: 'kms-rotation:aliases', TagValue: alias },
        ],
      }),
    );
    const keyId = KeyMetadata?.KeyId as string;
    const keyArn = KeyMetadata?.Arn as string;
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
    await kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
    await kms.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: replicaRegion }));
    const described = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(described.KeyMetadata?.MultiRegionConfiguration?.ReplicaKeys?.map((replica) => replica.Region)).toEqual([
      replicaRegion,
    ]);

    // The primary rotates; the replica does not take the new material (the gap holds it back).
    gap.holdBack(keyId, replicaRegion);
    const rotation = await rotateNow(keyId);
    await clients.ssm.send(
      new PutParameterCommand({
        Name: `/kms-rotation/itrepl/keys/${keyId}`,
        Type: 'String',
        Overwrite: true,
        Value: JSON.stringify({
          managed: true,
          lastValidatedRotation: {
            keyMaterialId: rotation?.KeyMaterialId,
            rotationDate: rotation?.RotationDate?.toISOString(),
          },
        }),
      }),
    );
    await inbox.drain();
    const primaryMaterial = gap.currentIn(keyId, region);
    const replicaMaterial = gap.currentIn(keyId, replicaRegion);
    expect(primaryMaterial).toBe(rotation?.KeyMaterialId);
    expect(primaryMaterial).not.toBe(replicaMaterial);
    const replicaArn = keyArn.replace(`:${region}:`, `:${replicaRegion}:`);

    const first = await invoke<AuditReport>('audit', {});

    const firstSeen = (await recordOf(keyId)).replicaLag?.[replicaRegion]?.firstSeen;
    const evidence = {
      region: replicaRegion,
      replicaArn,
      primaryMaterialId: primaryMaterial,
      replicaMaterialId: replicaMaterial,
      firstSeen,
    };
    expect(first.findings.filter((item) => item.keyId === keyId)).toEqual([
      expect.objectContaining({ rule: 'replica-material', severity: 'WARNING', evidence }),
    ]);
    const firstTold = (await inbox.drain()).filter((n) => n.body.type === 'ReplicaMaterialLagging');
    expect(firstTold.map((n) => n.attributes)).toEqual([
      expect.objectContaining({ type: 'ReplicaMaterialLagging', severity: 'WARNING' }),
    ]);
    expect(firstTold[0]?.body).toMatchObject({
      keyId,
      keyArn,
      aliases: [alias],
      details: {
        source: 'audit',
        auditId: first.auditId,
        primaryMaterialId: primaryMaterial,
        replicas: [
          {
            region: replicaRegion,
            arn: replicaArn,
            replicaMaterialId: replicaMaterial,
            firstSeen,
            severity: 'WARNING',
          },
        ],
      },
    });
    // The replica was read where it lives: a DescribeKey signed for its Region reached the proxy.
    expect(proxy.calls().filter((call) => call.api === 'DescribeKey' && call.keyId === keyId).length).toBeGreaterThan(
      0,
    );

    const second = await invoke<AuditReport>('audit', {});

    expect(second.findings.filter((item) => item.keyId === keyId)).toEqual([
      expect.objectContaining({ rule: 'replica-material', severity: 'CRITICAL', evidence }),
    ]);
    expect((await inbox.drain()).map((n) => `${n.body.type}/${n.body.severity}`).sort()).toEqual([
      'AuditCompleted/CRITICAL',
      'ReplicaMaterialLagging/CRITICAL',
    ]);

    gap.catchUp(keyId, replicaRegion);
    const caughtUp = await invoke<AuditReport>('audit', {});

    expect(caughtUp.findings.filter((item) => item.keyId === keyId)).toEqual([]);
    expect((await inbox.drain()).map((n) => n.body.type)).toEqual(['AuditCompleted']);
    expect((await recordOf(keyId)).replicaLag).toEqual({});
  });

  it('the audit validates a rotation whose event was lost, counts it reconciled, and a re-run finds nothing left', async () => {
    const keyId = stack.outputs.KeyId as string;
    const keyArn = stack.outputs.KeyArn as string;
    // A first rotation, validated from its event: the record says where validation stands.
    const first = await rotateNow(keyId);
    await invoke(
      'onRotation',
      rotationEvent({ keyId, keyArn, time: first?.RotationDate ?? new Date(), rotationType: 'ON_DEMAND' }),
    );
    expect((await recordOf(keyId)).lastValidatedRotation?.keyMaterialId).toBe(first?.KeyMaterialId);
    await inbox.drain();

    // A second rotation whose event never arrives.
    const lost = await rotateNow(keyId);
    expect(lost?.KeyMaterialId).not.toBe(first?.KeyMaterialId);

    const audit = await invoke<AuditReport>('audit', { keyIds: [keyId] });

    expect(audit.totals).toMatchObject({ reconciled: 1, reconcileFailed: 0, reconcileUnfinished: 0 });
    expect(audit.reconciliations).toEqual([
      {
        keyId,
        rotation: {
          keyMaterialId: lost?.KeyMaterialId,
          rotationDate: lost?.RotationDate?.toISOString(),
          rotationType: 'ON_DEMAND',
        },
        outcome: 'validated',
        summary: expect.stringContaining('validated: new material encrypts and decrypts'),
      },
    ]);
    const told = await inbox.drain();
    expect(told.map((n) => `${n.body.type}/${n.body.severity}`).sort()).toEqual([
      'AuditCompleted/INFO',
      'RotationValidated/INFO',
    ]);
    const validated = told.find((n) => n.body.type === 'RotationValidated');
    expect(validated?.body.details).toMatchObject({
      eventId: `reconcile:${keyId}:${lost?.KeyMaterialId}`,
      checks: expect.arrayContaining([
        { id: 'canary', status: 'passed', detail: expect.stringContaining('before the rotation, still decrypts') },
        {
          id: 'current-material',
          status: 'passed',
          detail: `current key material is ${lost?.KeyMaterialId}, as the event says`,
        },
      ]),
    });
    const completed = told.find((n) => n.body.type === 'AuditCompleted');
    expect(completed?.body.summary).toContain(
      '1 rotation without a validation reconciled (1 validated, 0 failed, 0 left for the next audit)',
    );
    expect((await recordOf(keyId)).lastValidatedRotation?.keyMaterialId).toBe(lost?.KeyMaterialId);

    const again = await invoke<AuditReport>('audit', { keyIds: [keyId] });
    expect(again.totals).toMatchObject({ reconciled: 0, reconcileFailed: 0, reconcileUnfinished: 0 });
    expect((await inbox.drain()).map((n) => n.body.type)).toEqual(['AuditCompleted']);
  });
});
