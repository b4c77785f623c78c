import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyRotationCommand,
  GetKeyRotationStatusCommand,
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

  /** One flow under fault injection: how to make a fresh input, run it, and what must hold. */
  interface FaultFlow<Input> {
    /** A fresh input for one run (a new rotation, a new key, a new drift). */
    prepare: () => Promise<Input>;
    run: (input: Input) => Promise<InvokeResult>;
    /** The notification a run that finished must have sent. */
    notification: string;
    /** Invariants right after the faulted run, whatever its outcome. */
    invariants: (input: Input) => Promise<string[]>;
    /** The end state a clean run reaches; checked after the faulted run and, if it failed, a re-run. */
    endState: (input: Input) => Promise<string[]>;
  }

  /**
   * A clean run names the calls; then, for each call and each fault kind, a fresh run with that
   * fault injected at that call, the invariants, a re-run when it failed, and the end state.
   */
  const violationsUnderFaults = async <Input>(flow: FaultFlow<Input>, expectedApis: string[]): Promise<string[]> => {
    const cleanInput = await flow.prepare();
    proxy.reset();
    const clean = await flow.run(cleanInput);
    expect(clean.ok, clean.ok ? '' : `${clean.error.name}: ${clean.error.message}`).toBe(true);
    const points = callPoints(proxy);
    expect(points.map((point) => point.api)).toEqual(expect.arrayContaining(expectedApis));
    expect(await flow.endState(cleanInput)).toEqual([]);
    await inbox.drain();

    const violations: string[] = [];
    for (const point of points) {
      for (const fault of FAULTS) {
        const where = `${fault} at ${point.api} #${point.nth}`;
        const input = await flow.prepare();
        proxy.reset();
        proxy.injectFault(point.api, point.nth, fault);

        const first = await flow.run(input);
        const notified = (await inbox.drain()).map((n) => n.attributes.type);
        const problems: string[] = [];
        if (!proxy.calls().some((call) => call.outcome === fault)) problems.push('the fault was never injected');
        if (first.ok && !notified.includes(flow.notification)) problems.push('finished without its notification');
        if (!first.ok && !first.error.message) problems.push('failed without saying why');
        problems.push(...(await flow.invariants(input)));
        if (!first.ok) {
          proxy.reset();
          const rerun = await flow.run(input);
          if (!rerun.ok) problems.push(`the re-run failed too: ${rerun.error.message}`);
          await inbox.drain();
        }
        problems.push(...(await flow.endState(input)));
        violations.push(...problems.map((problem) => `${where}: ${problem}`));
      }
    }
    return violations;
  };

  const aliasStaysOnKey = async (alias: string, keyId: string): Promise<string[]> => [
    ...((await describe_(alias))?.KeyId === keyId ? [] : [`${alias} moved off ${keyId}`]),
    ...((await describe_(keyId))?.KeyState === 'Enabled' ? [] : [`${keyId} is no longer enabled`]),
  ];

  it('onRotation: every fault ends processed-and-notified or failed loudly, and a re-run validates', async () => {
    const keyId = stack.outputs.KeyId as string;
    const keyArn = stack.outputs.KeyArn as string;
    const validated = new WeakSet<object>();
    const violations = await violationsUnderFaults(
      {
        prepare: async () => {
          await clients.kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
          const { Rotations = [] } = await clients.kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
          return rotationEvent({
            keyId,
            keyArn,
            time: Rotations.at(-1)?.RotationDate ?? new Date(),
            rotationType: 'ON_DEMAND',
          });
        },
        run: async (event) => {
          const outcome = await invoke('onRotation', event);
          if (outcome.ok && (outcome.result as { outcome: string }).outcome === 'validated') validated.add(event);
          return outcome;
        },
        notification: 'RotationValidated',
        invariants: () => aliasStaysOnKey('alias/app/secure-key', keyId),
        endState: async (event) => (validated.has(event) ? [] : ['the rotation was never validated']),
      },
      ['DescribeKey', 'ListKeyRotations', 'Encrypt', 'Decrypt', 'PutParameter', 'Publish'],
    );
    expect(violations).toEqual([]);
  });

  it('rotate (on-demand): every fault ends rotated-validated-notified or failed loudly; the alias never moves', async () => {
    let serial = 0;
    const completed = new Set<string>();
    const violations = await violationsUnderFaults(
      {
        // A fresh managed key per run: each key has only 25 on-demand rotations.
        prepare: async () => {
          serial += 1;
          const alias = `alias/fault/on-demand-${serial}`;
          const { KeyMetadata } = await clients.kms.send(
            new CreateKeyCommand({
              Tags: [
                { TagKey: 'kms-rotation:managed', TagValue: 'true' },
                { TagKey: 'kms-rotation:aliases', TagValue: alias },
              ],
            }),
          );
          await clients.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: KeyMetadata?.KeyId }));
          return { alias, keyId: KeyMetadata?.KeyId as string };
        },
        // A re-run after a failure validates the rotation just made instead of making another.
        run: async ({ alias }) => {
          const outcome = await invoke('rotate', { key: alias });
          if (outcome.ok && (outcome.result as { outcome: string }).outcome === 'completed') completed.add(alias);
          return outcome;
        },
        notification: 'RotationCompleted',
        invariants: ({ alias, keyId }) => aliasStaysOnKey(alias, keyId),
        endState: async ({ alias }) => (completed.has(alias) ? [] : ['no run completed the rotation']),
      },
      ['RotateKeyOnDemand', 'ListKeyRotations', 'Encrypt', 'Decrypt', 'Publish'],
    );
    expect(violations).toEqual([]);
  });

  it('onKeyActivity (remediate): every fault ends detected-and-notified or failed loudly; rotation ends back on', async () => {
    let serial = 0;
    const violations = await violationsUnderFaults(
      {
        prepare: async () => {
          serial += 1;
          const { KeyMetadata } = await clients.kms.send(
            new CreateKeyCommand({ Tags: [{ TagKey: 'kms-rotation:managed', TagValue: 'true' }] }),
          );
          const keyId = KeyMetadata?.KeyId as string;
          await clients.kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
          await clients.kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));
          return {
            keyId,
            event: {
              version: '0',
              id: `fault-${serial}`,
              'detail-type': 'AWS API Call via CloudTrail',
              source: 'aws.kms',
              account: '123456789012',
              time: new Date().toISOString(),
              region,
              resources: [],
              detail: {
                eventSource: 'kms.amazonaws.com',
                eventName: 'DisableKeyRotation',
                eventTime: new Date().toISOString(),
                eventID: `call-${serial}`,
                userIdentity: { type: 'IAMUser', arn: 'arn:aws:iam::123456789012:user/Alice' },
                requestParameters: { keyId },
              },
            },
          };
        },
        run: (input) =>
          invokeBundled({
            endpoint: proxy.endpoint,
            region,
            fn: stack.functions.onKeyActivity as DeployedStack['functions'][string],
            event: input.event,
            env: { AWS_CLIENT_TIMEOUT_MS: String(CLIENT_TIMEOUT_MS), DRIFT_MODE: 'remediate' },
          }),
        notification: 'DriftDetected',
        invariants: async () => [],
        endState: async ({ keyId }) =>
          (await clients.kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).KeyRotationEnabled
            ? []
            : ['rotation is still off'],
      },
      ['DescribeKey', 'ListResourceTags', 'GetKeyRotationStatus', 'EnableKeyRotation', 'Publish'],
    );
    expect(violations).toEqual([]);
  });

  it('rotate (alias-swap): no alias ever on an unverified key, the predecessor stays enabled, re-runs converge to one successor', async () => {
    let serial = 0;
    const successorsOf = async (keyId: string) => {
      const { ResourceTagMappingList = [] } = await tagging.send(
        new GetResourcesCommand({
          ResourceTypeFilters: ['kms:key'],
          TagFilters: [{ Key: 'kms-rotation:predecessor', Values: [keyId] }],
        }),
      );
      return ResourceTagMappingList.map((resource) => resource.ResourceARN?.split('key/').pop() as string);
    };
    const violations = await violationsUnderFaults(
      {
        prepare: async () => {
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
        },
        run: ({ alias }) => invoke('rotate', { key: alias }),
        notification: 'RotationCompleted',
        invariants: async ({ alias, keyId }) => {
          const target = (await describe_(alias))?.KeyId as string;
          const state = (await tagsOf(target))['kms-rotation:state'];
          return [
            ...(target === keyId || state === 'verified' || state === 'active'
              ? []
              : [`the alias points at ${target}, which is ${state ?? 'not verified'}`]),
            ...((await describe_(keyId))?.KeyState === 'Enabled' ? [] : ['the predecessor is not enabled']),
          ];
        },
        // The end state of a clean run: one successor, active, behind the alias; the predecessor retired and enabled.
        endState: async ({ alias, keyId }) => {
          const problems: string[] = [];
          const successors = await successorsOf(keyId);
          if (successors.length !== 1) problems.push(`${successors.length} successors`);
          if ((await describe_(alias))?.KeyId !== successors[0]) problems.push('the alias is not on the successor');
          if ((await tagsOf(successors[0] as string))['kms-rotation:state'] !== 'active')
            problems.push('the successor is not active');
          if ((await tagsOf(keyId))['kms-rotation:state'] !== 'retired')
            problems.push('the predecessor is not retired');
          if ((await describe_(keyId))?.KeyState !== 'Enabled') problems.push('the predecessor is not enabled');
          return problems;
        },
      },
      ['CreateKey', 'Sign', 'Verify', 'UpdateAlias', 'TagResource', 'UntagResource', 'Publish'],
    );
    expect(violations).toEqual([]);
  });
});
