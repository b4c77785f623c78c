import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  ListAliasesCommand,
  ListKeyRotationsCommand,
  ListKeysCommand,
  RotateKeyOnDemandCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { GetParameterCommand, GetParametersByPathCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../../scripts/lib/emulator';
import { invokeBundled } from '../../scripts/lib/invoke';
import { type EmulatorClients, rotationEvent, type subscribeQueueToTopic } from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import { deployTestStack } from './support/deployed-stack';

/**
 * The foundation, end to end on real parts: the template `serverless package` generates,
 * linted and deployed into moto server; real KMS rotations in the emulator; the bundled
 * `onRotation` run against it; the notification read from a queue subscribed to the topic.
 */
describe('Function: onRotation against the local AWS emulator', () => {
  const region = 'us-east-1';
  let emulator: Emulator;
  let stack: DeployedStack;
  let clients: EmulatorClients;
  let inbox: Awaited<ReturnType<typeof subscribeQueueToTopic>>;
  let keyId: string;
  let keyArn: string;

  beforeAll(async () => {
    ({ emulator, stack, clients, inbox } = await deployTestStack('itrot'));
    keyId = stack.outputs.KeyId as string;
    keyArn = stack.outputs.KeyArn as string;
  });

  afterAll(async () => {
    await emulator?.stop();
  });

  /** Rotates on demand in the emulator and returns the event KMS would send for it. */
  const rotateOnDemand = async (targetKeyId: string, targetKeyArn: string) => {
    await clients.kms.send(new RotateKeyOnDemandCommand({ KeyId: targetKeyId }));
    const { Rotations = [] } = await clients.kms.send(new ListKeyRotationsCommand({ KeyId: targetKeyId }));
    const latest = Rotations.at(-1);
    expect(latest?.RotationType).toBe('ON_DEMAND');
    return rotationEvent({
      keyId: targetKeyId,
      keyArn: targetKeyArn,
      time: latest?.RotationDate ?? new Date(),
      rotationType: 'ON_DEMAND',
    });
  };

  const runOnRotation = (event: unknown) =>
    invokeBundled({
      endpoint: emulator.endpoint,
      region,
      fn: stack.functions.onRotation as DeployedStack['functions'][string],
      event,
    });

  const metricsOf = (emf: object[]) =>
    emf.map(
      (blob) =>
        blob as Record<string, unknown> & {
          _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] };
        },
    );

  const inventory = async () => {
    const keys = await clients.kms.send(new ListKeysCommand({}));
    const aliases = await clients.kms.send(new ListAliasesCommand({}));
    const parameters = await clients.ssm.send(
      new GetParametersByPathCommand({ Path: '/kms-rotation/itrot/keys', Recursive: true }),
    );
    const states = await Promise.all(
      (keys.Keys ?? []).map(async (key) => {
        const { KeyMetadata } = await clients.kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }));
        return `${KeyMetadata?.KeyId}:${KeyMetadata?.KeyState}`;
      }),
    );
    return {
      keys: states.sort(),
      aliases: (aliases.Aliases ?? []).map((alias) => `${alias.AliasName}->${alias.TargetKeyId}`).sort(),
      parameters: (parameters.Parameters ?? []).map((parameter) => `${parameter.Name}=${parameter.Value}`).sort(),
    };
  };

  it('validates an on-demand rotation of the deployed key, notifies, emits metrics and records a canary', async () => {
    // Prepare
    const event = await rotateOnDemand(keyId, keyArn);

    // Act
    const outcome = await runOnRotation(event);

    // Assess
    expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
    const report = (outcome as { result: Record<string, unknown> }).result as {
      outcome: string;
      checks: { id: string; status: string; detail: string }[];
      aliases: { verified: string[]; drift: unknown[] };
    };
    expect(report.outcome).toBe('validated');
    const status = Object.fromEntries(report.checks.map((check) => [check.id, check.status]));
    expect(status).toEqual({
      'key-state': 'passed',
      'key-type': 'passed',
      'rotation-schedule': 'skipped',
      'rotation-recorded': 'passed',
      'current-material': 'skipped',
      'round-trip': 'passed',
      canary: 'skipped',
    });
    expect(report.checks.find((check) => check.id === 'round-trip')?.detail).toContain('alias/app/secure-key');
    expect(report.aliases).toMatchObject({ verified: ['alias/app/secure-key'], drift: [] });

    const [notification, ...others] = await inbox.drain();
    expect(others).toEqual([]);
    expect(notification?.attributes).toEqual({ type: 'RotationValidated', severity: 'INFO' });
    expect(notification?.body).toMatchObject({
      type: 'RotationValidated',
      severity: 'INFO',
      keyId,
      keyArn,
      aliases: ['alias/app/secure-key'],
      account: '123456789012',
      region,
    });

    const [metrics] = metricsOf(outcome.emf);
    expect(metrics?._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: 'KmsRotation', Dimensions: [['service']] });
    expect(metrics).toMatchObject({ service: 'kms-rotation', keyId, RotationValidated: 1, AliasDrift: 0 });

    const { Parameter } = await clients.ssm.send(
      new GetParameterCommand({ Name: `/kms-rotation/itrot/keys/${keyId}` }),
    );
    const state = JSON.parse(Parameter?.Value ?? '{}');
    expect(state.canary.plaintextSha256).toMatch(/^[a-f0-9]{64}$/);
    expect(state.canary.ciphertext.length).toBeGreaterThan(40);
  });

  it('proves on the next rotation that data encrypted before it still decrypts', async () => {
    const event = await rotateOnDemand(keyId, keyArn);

    const outcome = await runOnRotation(event);

    expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
    const report = (outcome as { result: { checks: { id: string; status: string }[] } }).result;
    expect(report.checks.find((check) => check.id === 'canary')?.status).toBe('passed');
    expect((await inbox.drain()).map((n) => n.attributes.severity)).toEqual(['INFO']);
  });

  it('reports alias drift with a WARNING when the declared alias points at another key', async () => {
    // Prepare
    const { KeyMetadata: other } = await clients.kms.send(new CreateKeyCommand({ Description: 'not the managed key' }));
    await clients.kms.send(new UpdateAliasCommand({ AliasName: 'alias/app/secure-key', TargetKeyId: other?.KeyId }));
    const event = await rotateOnDemand(keyId, keyArn);

    try {
      // Act
      const outcome = await runOnRotation(event);

      // Assess
      expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
      const report = (outcome as { result: { outcome: string; aliases: { drift: unknown[] } } }).result;
      expect(report.outcome).toBe('validated');
      expect(report.aliases.drift).toEqual([
        { aliasName: 'alias/app/secure-key', expectedKeyId: keyId, actualTarget: other?.KeyId },
      ]);
      const [notification] = await inbox.drain();
      expect(notification?.attributes.severity).toBe('WARNING');
      expect(notification?.body.summary).toContain(`alias/app/secure-key points at ${other?.KeyId}`);
      expect(metricsOf(outcome.emf)[0]).toMatchObject({ AliasDrift: 1 });
    } finally {
      await clients.kms.send(new UpdateAliasCommand({ AliasName: 'alias/app/secure-key', TargetKeyId: keyId }));
    }
  });

  it('fails loudly, once per event, when data encrypted before the rotation no longer decrypts', async () => {
    // Prepare: a canary whose digest cannot match what the ciphertext holds.
    const name = `/kms-rotation/itrot/keys/${keyId}`;
    const { Parameter } = await clients.ssm.send(new GetParameterCommand({ Name: name }));
    const state = JSON.parse(Parameter?.Value ?? '{}');
    state.canary.plaintextSha256 = '0'.repeat(64);
    await clients.ssm.send(
      new PutParameterCommand({ Name: name, Value: JSON.stringify(state), Type: 'String', Overwrite: true }),
    );
    const event = await rotateOnDemand(keyId, keyArn);

    // Act: the first attempt and Lambda's retry of the same event.
    const first = await runOnRotation(event);
    const retry = await runOnRotation(event);

    // Assess
    expect(first).toMatchObject({ ok: false, error: { name: 'VerificationFailedError' } });
    expect(retry).toMatchObject({ ok: false, error: { name: 'VerificationFailedError' } });
    const notifications = await inbox.drain();
    expect(notifications.map((n) => [n.attributes.type, n.attributes.severity])).toEqual([
      ['RotationValidationFailed', 'CRITICAL'],
    ]);
    expect(metricsOf(first.emf)[0]).toMatchObject({ RotationValidationFailed: 1 });
    expect(metricsOf(retry.emf)[0]).not.toHaveProperty('RotationValidationFailed');
    const after = JSON.parse(
      (await clients.ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value ?? '{}',
    );
    expect(after.canary).toEqual(state.canary);
  });

  it('refuses a disabled managed key with a CRITICAL notification and changes nothing', async () => {
    const event = await rotateOnDemand(keyId, keyArn);
    await clients.kms.send(new DisableKeyCommand({ KeyId: keyId }));
    const { keys: keysBefore, aliases: aliasesBefore } = await inventory();
    try {
      const outcome = await runOnRotation(event);

      expect(outcome).toMatchObject({ ok: false, error: { name: 'PreconditionFailedError' } });
      expect((outcome as { error: { message: string } }).error.message).toContain('Disabled');
      const [notification] = await inbox.drain();
      expect(notification?.attributes).toEqual({ type: 'RotationValidationFailed', severity: 'CRITICAL' });
      expect(await inventory()).toMatchObject({ keys: keysBefore, aliases: aliasesBefore });
    } finally {
      await clients.kms.send(new EnableKeyCommand({ KeyId: keyId }));
    }
  });

  it('skips a key it does not manage, without notifying', async () => {
    const { KeyMetadata: unmanaged } = await clients.kms.send(
      new CreateKeyCommand({ Description: "someone else's key" }),
    );
    await clients.kms.send(new CreateAliasCommand({ AliasName: 'alias/someone/else', TargetKeyId: unmanaged?.KeyId }));
    const event = await rotateOnDemand(unmanaged?.KeyId as string, unmanaged?.Arn as string);

    const outcome = await runOnRotation(event);

    expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
    expect((outcome as { result: { outcome: string; summary: string } }).result).toMatchObject({
      outcome: 'skipped',
      summary: expect.stringContaining('not managed by kms-rotation'),
    });
    expect(await inbox.drain()).toEqual([]);
  });

  it('rejects malformed and foreign events with a clear error, changing nothing', async () => {
    const before = await inventory();
    const foreign = rotationEvent({
      keyId,
      keyArn: keyArn.replace('123456789012', '999988887777'),
      account: '999988887777',
      time: new Date(),
    });

    const outcomes = await Promise.all(
      [{ source: 'aws.kms' }, { ...foreign, source: 'aws.s3' }, foreign].map((event) => runOnRotation(event)),
    );

    expect(outcomes.map((outcome) => !outcome.ok && outcome.error.name)).toEqual([
      'InvalidInputError',
      'InvalidInputError',
      'InvalidInputError',
    ]);
    expect((outcomes[1] as { error: { message: string } }).error.message).toContain('source');
    expect((outcomes[2] as { error: { message: string } }).error.message).toContain('999988887777');
    expect(await inbox.drain()).toEqual([]);
    expect(await inventory()).toEqual(before);
  });
});
