import { DescribeKeyCommand, ListAliasesCommand, ListKeysCommand, ListResourceTagsCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../../scripts/lib/emulator';
import { type InvokeResult, invokeBundled } from '../../scripts/lib/invoke';
import type { EmulatorClients, ReceivedNotification, subscribeQueueToTopic } from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import { deployTestStack } from './support/deployed-stack';

interface Report {
  passed: boolean;
  runId: string;
  summary: string;
  steps: { name: string; status: string; detail: string }[];
  keys: string[];
  aliases: string[];
}

/**
 * `selfTest` on real parts: the packaged template deployed into moto server, the bundled
 * function run once as ops would after a deploy. Checked from the outside: its report, the
 * notifications in a queue subscribed to the topic, and what it left behind (keys pending
 * deletion, no alias). moto authorizes every call, so the role is proven by the template test.
 */
describe('Function: selfTest against the local AWS emulator', () => {
  const region = 'us-east-1';
  let emulator: Emulator;
  let stack: DeployedStack;
  let clients: EmulatorClients;
  let inbox: Awaited<ReturnType<typeof subscribeQueueToTopic>>;
  let outcome: InvokeResult;
  let report: Report;
  let notifications: ReceivedNotification[];

  beforeAll(async () => {
    ({ emulator, stack, clients, inbox } = await deployTestStack('itselftest'));
    await inbox.drain();
    outcome = await invokeBundled({
      endpoint: emulator.endpoint,
      region,
      fn: stack.functions.selfTest as DeployedStack['functions'][string],
      event: {},
      // Lambda's own limit for the function: the self-test stops early only when under 120 s remain.
      timeoutMs: 900_000,
    });
    report = (outcome as { result: Report }).result;
    notifications = await inbox.drain();
  });

  afterAll(async () => {
    await emulator?.stop();
  });

  const tagsOf = async (keyId: string): Promise<Record<string, string>> => {
    const { Tags = [] } = await clients.kms.send(new ListResourceTagsCommand({ KeyId: keyId }));
    return Object.fromEntries(Tags.map((tag) => [tag.TagKey, tag.TagValue]));
  };

  it('passes every step, in order', () => {
    expect(outcome.ok, JSON.stringify(outcome.ok ? outcome.result : outcome.error)).toBe(true);
    expect(
      report.steps.map((step) => [step.name, step.status]),
      JSON.stringify(report.steps, null, 2),
    ).toEqual([
      ['createSymmetricKey', 'passed'],
      ['createRsaKey', 'passed'],
      ['createHmacKey', 'passed'],
      ['rotateOnDemand', 'passed'],
      ['aliasSwapRsa', 'passed'],
      ['rollbackRsa', 'passed'],
      ['aliasSwapHmac', 'passed'],
      ['rollbackHmac', 'passed'],
      ['disableRotation', 'passed'],
      ['detectDrift', 'passed'],
      ['deleteAliases', 'passed'],
      ['scheduleKeyDeletion', 'passed'],
    ]);
    expect(report.passed).toBe(true);
    // Three throwaway keys and the successors of the RSA and HMAC alias-swaps.
    expect(report.keys).toHaveLength(5);
  });

  it('validates the on-demand rotation with the canary made before it', () => {
    const detail = report.steps.find((step) => step.name === 'rotateOnDemand')?.detail ?? '';
    expect(detail).toMatch(/canary passed/);
    expect(detail).toMatch(/round-trip passed/);
  });

  it('publishes the drift to the topic, marked as a self-test in the body and as a message attribute', () => {
    const drift = notifications.filter((notification) => notification.attributes.type === 'DriftDetected');
    expect(drift).toHaveLength(1);
    expect(drift[0]?.attributes).toEqual({ type: 'DriftDetected', severity: 'WARNING', selfTest: 'true' });
    expect(drift[0]?.subject).toMatch(/^\[self-test\] \[WARNING\] DriftDetected: alias\/kms-rotation-self-test\//);
    expect(drift[0]?.body).toMatchObject({
      type: 'DriftDetected',
      selfTest: true,
      details: { call: 'DisableKeyRotation', selfTestRunId: report.runId, findings: [{ rule: 'rotation-enabled' }] },
    });
  });

  it('marks every notification of the run as a self-test', () => {
    // The on-demand rotation, two alias-swaps and two rollbacks, and the drift.
    expect(notifications.map((notification) => notification.attributes.type).sort()).toEqual([
      'DriftDetected',
      'RotationCompleted',
      'RotationCompleted',
      'RotationCompleted',
      'RotationCompleted',
      'RotationCompleted',
    ]);
    for (const notification of notifications) {
      expect(notification.attributes.selfTest).toBe('true');
      expect(notification.body.selfTest).toBe(true);
    }
  });

  it('leaves every self-test key pending deletion, successors included, and no self-test alias', async () => {
    const { Keys = [] } = await clients.kms.send(new ListKeysCommand({}));
    const selfTestKeys: string[] = [];
    for (const { KeyId } of Keys) {
      if ((await tagsOf(KeyId as string))['kms-rotation:self-test'] === report.runId)
        selfTestKeys.push(KeyId as string);
    }
    expect(selfTestKeys.sort()).toEqual([...report.keys].sort());
    for (const keyId of selfTestKeys) {
      const { KeyMetadata } = await clients.kms.send(new DescribeKeyCommand({ KeyId: keyId }));
      expect(KeyMetadata?.KeyState, keyId).toBe('PendingDeletion');
    }
    const { Aliases = [] } = await clients.kms.send(new ListAliasesCommand({}));
    expect(Aliases.filter((alias) => alias.AliasName?.startsWith('alias/kms-rotation-self-test/'))).toEqual([]);
  });

  it("leaves the stack's own key alone", async () => {
    const { KeyMetadata } = await clients.kms.send(new DescribeKeyCommand({ KeyId: stack.outputs.KeyId }));
    expect(KeyMetadata?.KeyState).toBe('Enabled');
    expect((await tagsOf(stack.outputs.KeyId as string))['kms-rotation:self-test']).toBeUndefined();
  });
});
