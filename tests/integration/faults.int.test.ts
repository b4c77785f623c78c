import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  ListKeyRotationsCommand,
  ListResourceTagsCommand,
  RotateKeyOnDemandCommand,
} from '@aws-sdk/client-kms';
import { GetResourcesCommand, ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsProxy, type FaultKind, startAwsProxy } from '../../scripts/lib/aws-proxy';
import type { Emulator } from '../../scripts/lib/emulator';
import { type InvokeResult, invokeBundled } from '../../scripts/lib/invoke';
import { type EmulatorClients, rotationEvent, type subscribeQueueToTopic } from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import { deployTestStack } from './support/deployed-stack';

const FAULTS: FaultKind[] = ['http-500', 'http-503', 'connection-reset', 'slow'];
/** Client timeout in the functions under test, and how long a `slow` fault holds its answer. */
const CLIENT_TIMEOUT_MS = 400;
const SLOW_MS = 1_200;

/** Every (API, n-th call) a run made, in order: the places to inject a fault at. */
const callPoints = (proxy: AwsProxy): { api: string; nth: number }[] => {
  const seen: Record<string, number> = {};
  return proxy.calls().map(({ api }) => {
    seen[api] = (seen[api] ?? 0) + 1;
    return { api, nth: seen[api] as number };
  });
};

/**
 * For each flow, for each AWS call it makes, each fault kind injected at that call (through a
 * loopback proxy in front of moto server), then the invariants: no alias points at a key that
 * did not pass verification; no predecessor is disabled or deleted; the run either finished
 * with its notification or failed loudly; a re-run converges to the end state of a clean run.
 */
describe('Fault injection: every AWS call of each flow, every fault kind', () => {
  const region = 'us-east-1';
  let emulator: Emulator;
  let proxy: AwsProxy;
  let stack: DeployedStack;
  let clients: EmulatorClients;
  let tagging: ResourceGroupsTaggingAPIClient;
  let inbox: Awaited<ReturnType<typeof subscribeQueueToTopic>>;

  beforeAll(async () => {
    ({ emulator, stack, clients, inbox } = await deployTestStack('itfault'));
    proxy = await startAwsProxy({ target: emulator.endpoint, slowMs: SLOW_MS });
    tagging = new ResourceGroupsTaggingAPIClient({
      endpoint: emulator.endpoint,
      region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await emulator?.stop();
  });

  /** The bundled function, its AWS calls going through the proxy. */
  const invoke = (name: string, event: unknown): Promise<InvokeResult> =>
    invokeBundled({
      endpoint: proxy.endpoint,
      region,
      fn: stack.functions[name] as DeployedStack['functions'][string],
      event,
      env: { AWS_CLIENT_TIMEOUT_MS: String(CLIENT_TIMEOUT_MS) },
    });

  const tagsOf = async (keyId: string) => {
    const { Tags = [] } = await clients.kms.send(new ListResourceTagsCommand({ KeyId: keyId }));
    return Object.fromEntries(Tags.map((tag) => [tag.TagKey, tag.TagValue]));
  };
  const describe_ = async (keyRef: string) =>
    (await clients.kms.send(new DescribeKeyCommand({ KeyId: keyRef }))).KeyMetadata;

  it('onRotation: every fault ends processed-and-notified or failed loudly, and a re-run validates', async () => {
    const keyId = stack.outputs.KeyId as string;
    const keyArn = stack.outputs.KeyArn as string;
    const freshEvent = async () => {
      await clients.kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
      const { Rotations = [] } = await clients.kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
      return rotationEvent({
        keyId,
        keyArn,
        time: Rotations.at(-1)?.RotationDate ?? new Date(),
        rotationType: 'ON_DEMAND',
      });
    };
    proxy.reset();
    expect((await invoke('onRotation', await freshEvent())).ok).toBe(true);
    const points = callPoints(proxy);
    expect(points.map((point) => point.api)).toEqual(
      expect.arrayContaining(['DescribeKey', 'ListKeyRotations', 'Encrypt', 'Decrypt', 'PutParameter', 'Publish']),
    );
    await inbox.drain();

    const violations: string[] = [];
    for (const point of points) {
      for (const fault of FAULTS) {
        const where = `${fault} at ${point.api} #${point.nth}`;
        const event = await freshEvent();
        proxy.reset();
        proxy.injectFault(point.api, point.nth, fault);

        const first = await invoke('onRotation', event);
        const notified = (await inbox.drain()).map((n) => n.attributes.type);
        if (!proxy.calls().some((call) => call.outcome === fault))
          violations.push(`${where}: the fault was never injected`);

        if (first.ok && !notified.includes('RotationValidated'))
          violations.push(`${where}: finished without its notification`);
        if (!first.ok && !first.error.message) violations.push(`${where}: failed without saying why`);
        if ((await describe_('alias/app/secure-key'))?.KeyId !== keyId) violations.push(`${where}: the alias moved`);
        if ((await describe_(keyId))?.KeyState !== 'Enabled') violations.push(`${where}: the key is no longer enabled`);
        if (!first.ok) {
          proxy.reset();
          const rerun = await invoke('onRotation', event);
          const report = rerun.ok ? (rerun.result as { outcome: string }) : undefined;
          if (report?.outcome !== 'validated')
            violations.push(
              `${where}: the re-run did not validate (${JSON.stringify(rerun.ok ? report : rerun.error)})`,
            );
          await inbox.drain();
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it('rotate (alias-swap): no alias ever on an unverified key, the predecessor stays enabled, re-runs converge to one successor', async () => {
    let serial = 0;
    const managedKey = async () => {
      serial += 1;
      const alias = `alias/fault/rsa-${serial}`;
      const { KeyMetadata } = await clients.kms.send(
        new CreateKeyCommand({
          KeySpec: 'RSA_2048',
          KeyUsage: 'SIGN_VERIFY',
          Tags: [
            { TagKey: 'kms-rotation:managed', TagValue: 'true' },
            { TagKey: 'kms-rotation:aliases', TagValue: alias },
          ],
        }),
      );
      await clients.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: KeyMetadata?.KeyId }));
      return { alias, keyId: KeyMetadata?.KeyId as string };
    };
    const successorsOf = async (keyId: string) => {
      const { ResourceTagMappingList = [] } = await tagging.send(
        new GetResourcesCommand({
          ResourceTypeFilters: ['kms:key'],
          TagFilters: [{ Key: 'kms-rotation:predecessor', Values: [keyId] }],
        }),
      );
      return ResourceTagMappingList.map((resource) => resource.ResourceARN?.split('key/').pop() as string);
    };
    /** The end state of a clean run: one successor, active, behind the alias; the predecessor retired and enabled. */
    const endStateProblems = async (alias: string, predecessor: string): Promise<string[]> => {
      const problems: string[] = [];
      const successors = await successorsOf(predecessor);
      if (successors.length !== 1) problems.push(`${successors.length} successors`);
      if ((await describe_(alias))?.KeyId !== successors[0]) problems.push('the alias is not on the successor');
      if ((await tagsOf(successors[0] as string))['kms-rotation:state'] !== 'active')
        problems.push('the successor is not active');
      if ((await tagsOf(predecessor))['kms-rotation:state'] !== 'retired')
        problems.push('the predecessor is not retired');
      if ((await describe_(predecessor))?.KeyState !== 'Enabled') problems.push('the predecessor is not enabled');
      return problems;
    };

    const clean = await managedKey();
    proxy.reset();
    expect((await invoke('rotate', { key: clean.alias })).ok).toBe(true);
    const points = callPoints(proxy);
    expect(points.length).toBeGreaterThanOrEqual(15);
    expect(await endStateProblems(clean.alias, clean.keyId)).toEqual([]);
    await inbox.drain();

    const violations: string[] = [];
    for (const point of points) {
      for (const fault of FAULTS) {
        const where = `${fault} at ${point.api} #${point.nth}`;
        const { alias, keyId } = await managedKey();
        proxy.reset();
        proxy.injectFault(point.api, point.nth, fault);

        const first = await invoke('rotate', { key: alias });
        const notified = (await inbox.drain()).map((n) => n.attributes.type);
        if (!proxy.calls().some((call) => call.outcome === fault))
          violations.push(`${where}: the fault was never injected`);

        const target = (await describe_(alias))?.KeyId as string;
        const targetState = (await tagsOf(target))['kms-rotation:state'];
        if (target !== keyId && targetState !== 'verified' && targetState !== 'active') {
          violations.push(`${where}: the alias points at ${target}, which is ${targetState ?? 'not verified'}`);
        }
        if ((await describe_(keyId))?.KeyState !== 'Enabled')
          violations.push(`${where}: the predecessor is not enabled`);
        if (first.ok && !notified.includes('RotationCompleted'))
          violations.push(`${where}: finished without its notification`);
        if (!first.ok) {
          const rerun = await invoke('rotate', { key: alias });
          if (!rerun.ok) violations.push(`${where}: the re-run failed too: ${rerun.error.message}`);
          await inbox.drain();
        }
        violations.push(...(await endStateProblems(alias, keyId)).map((problem) => `${where}: ${problem}`));
      }
    }
    expect(violations).toEqual([]);
  });
});
