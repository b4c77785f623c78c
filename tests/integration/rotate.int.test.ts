import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  GenerateMacCommand,
  GetKeyRotationStatusCommand,
  type KeySpec,
  type KeyUsageType,
  ListAliasesCommand,
  ListKeyRotationsCommand,
  ListKeysCommand,
  SignCommand,
  VerifyCommand,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../../scripts/lib/emulator';
import { emulatorKeys } from '../../scripts/lib/emulator-keys';
import { invokeBundled } from '../../scripts/lib/invoke';
import type { EmulatorClients, subscribeQueueToTopic } from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import { deployTestStack } from './support/deployed-stack';

interface Report {
  outcome: string;
  strategy: string;
  keyId: string;
  predecessor?: string;
  successor?: string;
  rotationId?: string;
  steps: { step: string; status: string; detail: string }[];
  checks?: { id: string; status: string }[];
}

/**
 * `rotate` on real parts: the deployed stack in moto server, keys of each kind made in the
 * emulator, the bundled function run against it. Every rotation is checked from the outside:
 * where the alias points, that data made before still verifies or decrypts, and the tags.
 */
describe('Function: rotate against the local AWS emulator', () => {
  const region = 'us-east-1';
  let emulator: Emulator;
  let stack: DeployedStack;
  let clients: EmulatorClients;
  let inbox: Awaited<ReturnType<typeof subscribeQueueToTopic>>;

  beforeAll(async () => {
    ({ emulator, stack, clients, inbox } = await deployTestStack('itrotate', {
      params: { aliasScope: 'alias/app/*,alias/it/*' },
    }));
  });

  afterAll(async () => {
    await emulator?.stop();
  });

  const runRotate = (payload: unknown) =>
    invokeBundled({
      endpoint: emulator.endpoint,
      region,
      fn: stack.functions.rotate as DeployedStack['functions'][string],
      event: payload,
    });

  const completed = async (payload: unknown): Promise<Report> => {
    const outcome = await runRotate(payload);
    expect(outcome.ok, JSON.stringify(outcome.ok ? outcome.result : outcome.error)).toBe(true);
    return (outcome as { result: Report }).result;
  };

  const keys = () => emulatorKeys(clients.kms);
  const createManagedKey = (keySpec: KeySpec, keyUsage: KeyUsageType, alias: string) =>
    keys().createManagedKey(keySpec, keyUsage, alias, { team: 'payments' });
  const tagsOf = (keyId: string) => keys().tagsOf(keyId);
  const targetOf = (alias: string) => keys().targetOf(alias);
  const stateOf = async (keyId: string) =>
    (await clients.kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.KeyState;

  /** Everything a rotation could change: keys (state and tags) and aliases. */
  const inventory = async () => {
    const { Keys = [] } = await clients.kms.send(new ListKeysCommand({}));
    const keys = await Promise.all(
      Keys.map(
        async ({ KeyId }) =>
          `${KeyId}:${await stateOf(KeyId as string)}:${JSON.stringify(await tagsOf(KeyId as string))}`,
      ),
    );
    const { Aliases = [] } = await clients.kms.send(new ListAliasesCommand({}));
    return { keys: keys.sort(), aliases: Aliases.map((alias) => `${alias.AliasName}->${alias.TargetKeyId}`).sort() };
  };

  const expectSwapped = async (predecessor: string, report: Report, alias: string) => {
    expect(report).toMatchObject({ outcome: 'completed', strategy: 'alias-swap', predecessor });
    expect(report.steps.map((step) => [step.step, step.status])).toEqual([
      ['createSuccessor', 'done'],
      ['verifySuccessor', 'done'],
      ['promoteAliases', 'done'],
      ['finish', 'done'],
    ]);
    const successor = report.successor as string;
    expect(successor).not.toBe(predecessor);
    expect(await targetOf(alias)).toBe(successor);
    expect(await stateOf(predecessor)).toBe('Enabled');
    expect(await tagsOf(successor)).toMatchObject({
      'kms-rotation:managed': 'true',
      'kms-rotation:aliases': alias,
      'kms-rotation:state': 'active',
      'kms-rotation:predecessor': predecessor,
      'kms-rotation:rotation-id': report.rotationId,
      team: 'payments',
    });
    const predecessorTags = await tagsOf(predecessor);
    expect(predecessorTags).toMatchObject({
      'kms-rotation:state': 'retired',
      'kms-rotation:successor': successor,
      'kms-rotation:rotation-id': report.rotationId,
      // No longer managed; the aliases it served stay on it as a record.
      'kms-rotation:managed': 'false',
      'kms-rotation:aliases': alias,
    });
    const [notification] = await inbox.drain();
    expect(notification?.attributes).toEqual({ type: 'RotationCompleted', severity: 'INFO' });
    expect(notification?.body).toMatchObject({ keyId: successor, aliases: [alias] });
    return successor;
  };

  it('rotates an RSA signing key by alias-swap; signatures made before still verify with the predecessor', async () => {
    const alias = 'alias/it/rsa-signing';
    const predecessor = await createManagedKey('RSA_2048', 'SIGN_VERIFY', alias);
    const message = Buffer.from('invoice 2026-0042');
    const { Signature } = await clients.kms.send(
      new SignCommand({ KeyId: alias, Message: message, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }),
    );

    const report = await completed({ key: alias, reason: 'annual rotation' });

    await expectSwapped(predecessor, report, alias);
    const verified = await clients.kms.send(
      new VerifyCommand({ KeyId: predecessor, Message: message, Signature, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }),
    );
    expect(verified.SignatureValid).toBe(true);

    // The audit judges the successor as the managed key; the retired predecessor, no longer managed, draws no finding.
    const audit = await invokeBundled({
      endpoint: emulator.endpoint,
      region,
      fn: stack.functions.audit as DeployedStack['functions'][string],
      event: { keyIds: [predecessor, report.successor] },
    });
    expect(audit.ok, JSON.stringify(audit)).toBe(true);
    const { findings, totals } = (audit as { result: { findings: { keyId: string }[]; totals: unknown } }).result;
    expect(totals).toMatchObject({ keysAudited: 2, nonCompliantKeys: 0 });
    expect(findings).toEqual([]);
    await inbox.drain();
  });

  it('rotates an HMAC key by alias-swap; MACs made before still verify with the predecessor', async () => {
    const alias = 'alias/it/hmac';
    const predecessor = await createManagedKey('HMAC_256', 'GENERATE_VERIFY_MAC', alias);
    const message = Buffer.from('session 81');
    const { Mac } = await clients.kms.send(
      new GenerateMacCommand({ KeyId: predecessor, Message: message, MacAlgorithm: 'HMAC_SHA_256' }),
    );

    const report = await completed({ key: alias });

    await expectSwapped(predecessor, report, alias);
    const verified = await clients.kms.send(
      new VerifyMacCommand({ KeyId: predecessor, Message: message, Mac, MacAlgorithm: 'HMAC_SHA_256' }),
    );
    expect(verified.MacValid).toBe(true);
  });

  it('forces a symmetric key to alias-swap, then rolls it back; old ciphertext decrypts throughout', async () => {
    const alias = 'alias/it/symmetric';
    const predecessor = await createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', alias);
    const { CiphertextBlob } = await clients.kms.send(
      new EncryptCommand({ KeyId: alias, Plaintext: Buffer.from('customer 7'), EncryptionContext: { app: 'crm' } }),
    );

    const report = await completed({ key: alias, strategy: 'alias-swap' });

    const successor = await expectSwapped(predecessor, report, alias);
    const decrypted = await clients.kms.send(
      new DecryptCommand({ KeyId: predecessor, CiphertextBlob, EncryptionContext: { app: 'crm' } }),
    );
    expect(Buffer.from(decrypted.Plaintext ?? []).toString()).toBe('customer 7');
    expect((await clients.kms.send(new GetKeyRotationStatusCommand({ KeyId: successor }))).KeyRotationEnabled).toBe(
      true,
    );

    // Rollback: the aliases go back to the predecessor, with the same care.
    const rolledBack = await completed({ key: alias, action: 'rollback' });

    expect(rolledBack.outcome).toBe('completed');
    expect(rolledBack.steps.map((step) => [step.step, step.status])).toEqual([
      ['verifyPredecessor', 'done'],
      ['restoreAliases', 'done'],
      ['finishRollback', 'done'],
    ]);
    expect(await targetOf(alias)).toBe(predecessor);
    expect(await tagsOf(predecessor)).toMatchObject({ 'kms-rotation:managed': 'true', 'kms-rotation:state': 'active' });
    expect(await tagsOf(successor)).toMatchObject({
      'kms-rotation:state': 'rolled-back',
      'kms-rotation:managed': 'false',
    });
    expect(await stateOf(successor)).toBe('Enabled');
    await inbox.drain();
  });

  it("rotates the stack's own key on demand and validates it with the checks of onRotation", async () => {
    const keyId = stack.outputs.KeyId as string;
    const before = (await clients.kms.send(new ListKeyRotationsCommand({ KeyId: keyId }))).Rotations?.length ?? 0;

    const report = await completed({ key: 'alias/app/secure-key' });

    expect(report).toMatchObject({ outcome: 'completed', strategy: 'on-demand', keyId });
    expect(report.steps.map((step) => [step.step, step.status])).toEqual([
      ['rotateKeyOnDemand', 'done'],
      ['waitForRotation', 'done'],
      ['validate', 'done'],
    ]);
    expect(Object.fromEntries((report.checks ?? []).map((check) => [check.id, check.status]))).toMatchObject({
      'key-state': 'passed',
      'rotation-recorded': 'passed',
      'round-trip': 'passed',
    });
    const after = (await clients.kms.send(new ListKeyRotationsCommand({ KeyId: keyId }))).Rotations?.length ?? 0;
    expect(after).toBe(before + 1);
    expect(await targetOf('alias/app/secure-key')).toBe(keyId);
    const [notification] = await inbox.drain();
    expect(notification?.attributes).toEqual({ type: 'RotationCompleted', severity: 'INFO' });
  });

  it('plans without changing anything on a dry run', async () => {
    const alias = 'alias/it/dry-run';
    await createManagedKey('ECC_NIST_P256', 'SIGN_VERIFY', alias);
    const before = await inventory();

    const swap = await completed({ key: alias, dryRun: true });
    // force: the stack's key was rotated on demand moments ago, which a plain request would take as a re-run.
    const onDemand = await completed({ key: 'alias/app/secure-key', dryRun: true, force: true });

    expect(swap.outcome).toBe('planned');
    expect(swap.steps.map((step) => step.status)).toEqual(['planned', 'planned', 'planned', 'planned']);
    expect(onDemand).toMatchObject({ outcome: 'planned', strategy: 'on-demand' });
    expect(await inventory()).toEqual(before);
    expect(await inbox.drain()).toEqual([]);
  });

  it('logs a refusal with a stack trace that names the functions it passed through, as deployed', async () => {
    // Act: the bundle runs with the environment the template gives it (no source maps at run time)
    const outcome = await runRotate({ key: 'not a key' });

    // Assess: the error log line, as Powertools writes it, with a readable stack
    const logged = outcome.logs
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level?: string; error?: { name: string; stack: string } })
      .find((line) => line.level === 'ERROR');
    expect(outcome.ok).toBe(false);
    expect(logged?.error?.name).toBe('InvalidInputError');
    expect(logged?.error?.stack).toMatch(/at parseRotateRequest \(.*handlers\/rotate\.js:\d+:\d+\)/);
  });

  it('refuses, with a clear error and no change, what it must not rotate', async () => {
    const disabledAlias = 'alias/it/disabled';
    const disabled = await createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', disabledAlias);
    await clients.kms.send(new DisableKeyCommand({ KeyId: disabled }));
    const { KeyMetadata: unmanaged } = await clients.kms.send(new CreateKeyCommand({ Description: 'not managed' }));
    await createManagedKey('RSA_3072', 'SIGN_VERIFY', 'alias/it/rsa-on-demand');
    const before = await inventory();

    const outcomes = await Promise.all([
      runRotate({ key: unmanaged?.KeyId }),
      runRotate({ key: disabledAlias }),
      runRotate({ key: 'alias/it/rsa-on-demand', strategy: 'on-demand' }),
      runRotate({ key: 'alias/app/secure-key', dryrun: true }),
      runRotate({ key: 'alias/does-not/exist' }),
    ]);

    const errors = outcomes.map((outcome) => (outcome.ok ? undefined : outcome.error));
    expect(errors.map((error) => error?.name)).toEqual([
      'PreconditionFailedError',
      'PreconditionFailedError',
      'PreconditionFailedError',
      'InvalidInputError',
      'PreconditionFailedError',
    ]);
    expect(errors[0]?.message).toContain('not managed by kms-rotation');
    expect(errors[1]?.message).toContain('Disabled');
    expect(errors[2]?.message).toContain('cannot be rotated on demand');
    expect(errors[3]?.message).toContain('dryrun');
    expect(errors[4]?.message).toContain('not found');
    expect(await inventory()).toEqual(before);
    expect(await inbox.drain()).toEqual([]);
  });
});
