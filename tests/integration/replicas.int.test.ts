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
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsProxy, startAwsProxy } from '../../scripts/lib/aws-proxy';
import type { Emulator } from '../../scripts/lib/emulator';
import { type InvokeResult, invokeBundled } from '../../scripts/lib/invoke';
import { type KeyMaterialGap, keyMaterialGap } from '../../scripts/lib/kms-gaps/key-material';
import { type EmulatorClients, rotationEvent, type subscribeQueueToTopic } from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import type { AuditReport } from '../../src/domain/audit-fleet';
import type { KeyRecord } from '../../src/domain/ports';
import type { RotateReport } from '../../src/domain/rotate-key';
import { deployTestStack } from './support/deployed-stack';

/**
 * Multi-Region keys and reconciliation, end to end: the packaged stack deployed into moto, the
 * bundled functions run against it through the proxy, whose key-material gap gives moto what it
 * lacks (material ids, a replica that lags: docs/kms-facts.md#moto). Rotations are made with the
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
    proxy = await startAwsProxy({ target: emulator.endpoint, gaps: [gap] });
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

  // moto names a multi-Region key `mrk-` + a UUID with dashes, not AWS's `mrk-` + 32 hex digits, so the
  // rotation event and the audit's `keyIds` (AWS's format, refused otherwise) cannot name it here:
  // the rotation is made by `rotate` on demand (which names the key by its alias), and the audits
  // cover the whole fleet. onRotation's own replica check is unit-tested
  // (tests/unit/rotate/replicas-after-rotation.test.ts).
  it('rotate tells a replica behind its primary WARNING; the next audit, CRITICAL; once caught up, nothing', async () => {
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
    await inbox.drain();

    // The replica does not take the new material (the gap holds it back, as a lagging Region would).
    gap.holdBack(keyId, replicaRegion);
    const rotated = await invoke<RotateReport>('rotate', { key: alias, strategy: 'on-demand' });

    const primaryMaterial = gap.currentIn(keyId, region);
    const replicaMaterial = gap.currentIn(keyId, replicaRegion);
    expect(primaryMaterial).not.toBe(replicaMaterial);
    expect(rotated.outcome).toBe('completed');
    expect(rotated.steps.find((step) => step.step === 'validate')?.detail).toBe(
      `round trip, canary, rotation history and aliases checked; replicas: ${replicaRegion} lagging`,
    );
    const afterRotation = await inbox.drain();
    expect(afterRotation.map((n) => `${n.body.type}/${n.body.severity}`).sort()).toEqual([
      'ReplicaMaterialLagging/WARNING',
      'RotationCompleted/INFO',
    ]);
    const lagging = afterRotation.find((n) => n.body.type === 'ReplicaMaterialLagging');
    expect(lagging?.attributes).toMatchObject({ type: 'ReplicaMaterialLagging', severity: 'WARNING' });
    const replicaArn = keyArn.replace(`:${region}:`, `:${replicaRegion}:`);
    const firstSeen = (await recordOf(keyId)).replicaLag?.[replicaRegion]?.firstSeen;
    expect(lagging?.body).toMatchObject({
      keyId,
      keyArn,
      aliases: [alias],
      details: {
        source: 'rotate',
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

    const audit = await invoke<AuditReport>('audit', {});

    expect(audit.findings.filter((item) => item.keyId === keyId)).toEqual([
      expect.objectContaining({
        rule: 'replica-material',
        severity: 'CRITICAL',
        evidence: {
          region: replicaRegion,
          replicaArn,
          primaryMaterialId: primaryMaterial,
          replicaMaterialId: replicaMaterial,
          firstSeen,
        },
      }),
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
