import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  type KeySpec,
  type KeyUsageType,
  KMSClient,
  ListKeyRotationsCommand,
  ListResourceTagsCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { GetResourcesCommand, ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsProxy, startAwsProxy } from '../../scripts/lib/aws-proxy';
import type { Emulator } from '../../scripts/lib/emulator';
import { type InvokeResult, invokeBundled } from '../../scripts/lib/invoke';
import type { EmulatorClients, subscribeQueueToTopic } from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import { deployTestStack } from './support/deployed-stack';

/**
 * How long a KMS or tagging-API read may answer with the state from before a write (the proxy's
 * stale-reads mode): longer than one run of a function, so that a re-run, or the next step of
 * the same run, reads what the run before it read.
 */
const STALE_MS = 5_000;
/** A flow must reach its end state within this many runs of the same request. */
const MAX_RUNS = 3;
const ACCOUNT = '123456789012';

/**
 * KMS is eventually consistent (a read just after a write may answer as before it); moto never
 * is. Through a loopback proxy in front of moto that answers reads as they were up to STALE_MS
 * earlier, each flow that writes then reads runs until it reaches its end state, at most
 * MAX_RUNS times. Then: every run either finished with the work done or failed loudly with a
 * retryable, named error; one successor per rotation; no alias ever moved onto a key that had
 * not passed verification (read from the proxy's call log); no key disabled.
 */
describe('Stale reads: the flows that write then read converge, and never move an alias onto an unverified key', () => {
  const region = 'us-east-1';
  let emulator: Emulator;
  let proxy: AwsProxy;
  let stack: DeployedStack;
  let clients: EmulatorClients;
  let tagging: ResourceGroupsTaggingAPIClient;
  /** KMS through the proxy: a change someone else makes, that the functions may not see yet. */
  let staleKms: KMSClient;
  let inbox: Awaited<ReturnType<typeof subscribeQueueToTopic>>;

  beforeAll(async () => {
    ({ emulator, stack, clients, inbox } = await deployTestStack('itstale', {
      region,
      params: { driftMode: 'remediate', aliasScope: 'alias/app/*,alias/stale/*' },
    }));
    proxy = await startAwsProxy({ target: emulator.endpoint, staleReadsMs: STALE_MS });
    const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
    tagging = new ResourceGroupsTaggingAPIClient({ endpoint: emulator.endpoint, region, credentials });
    staleKms = new KMSClient({ endpoint: proxy.endpoint, region, credentials });
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
    });

  // What is true, read from moto directly: never stale.
  const describe_ = async (keyRef: string) =>
    (await clients.kms.send(new DescribeKeyCommand({ KeyId: keyRef }))).KeyMetadata;
  const targetOf = async (alias: string) => (await describe_(alias))?.KeyId as string;
  const tagsOf = async (keyId: string) => {
    const { Tags = [] } = await clients.kms.send(new ListResourceTagsCommand({ KeyId: keyId }));
    return Object.fromEntries(Tags.map((tag) => [tag.TagKey, tag.TagValue]));
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
  const keysStayEnabled = async (keyIds: string[]): Promise<string[]> => {
    const states = await Promise.all(keyIds.map(async (keyId) => [keyId, (await describe_(keyId))?.KeyState] as const));
    return states.filter(([, state]) => state !== 'Enabled').map(([keyId, state]) => `${keyId} is ${state}`);
  };

  /** What a run reported it did: anything but "nothing to do" or "no drift" claims work. */
  type Claim = (outcome: InvokeResult & { ok: true }) => string;
  const rotateOutcome: Claim = (run) => (run.result as { outcome: string }).outcome;

  interface Converged {
    runs: string[];
    problems: string[];
  }

  /**
   * Runs the same request until `endState` holds, at most MAX_RUNS times. A run that finished
   * must not claim work that is not done (`endState` must hold after it, unless it says it is
   * still in progress); a run that failed must say why with a named, retryable error.
   */
  const converge = async (
    run: () => Promise<InvokeResult>,
    claim: Claim,
    endState: () => Promise<string[]>,
  ): Promise<Converged> => {
    const runs: string[] = [];
    const problems: string[] = [];
    for (let attempt = 1; attempt <= MAX_RUNS; attempt += 1) {
      const outcome = await run();
      await proxy.idle();
      const left = await endState();
      if (outcome.ok) {
        const said = claim(outcome);
        runs.push(`run ${attempt}: ${said}`);
        if (left.length > 0 && said !== 'in-progress')
          problems.push(`run ${attempt} reported ${said}, yet ${left.join('; ')}`);
      } else {
        runs.push(`run ${attempt}: ${outcome.error.name}: ${outcome.error.message}`);
        if (!outcome.error.message || ['Error', 'TypeError', 'SyntaxError'].includes(outcome.error.name))
          problems.push(`run ${attempt} failed without a named error: ${outcome.error.name}: ${outcome.error.message}`);
        if (!retryable(outcome))
          problems.push(`run ${attempt} failed with an error not marked retryable: ${outcome.error.message}`);
      }
      if (left.length === 0) return { runs, problems };
    }
    problems.push(`no end state after ${MAX_RUNS} runs: ${(await endState()).join('; ')}`);
    return { runs, problems };
  };

  /** A failure the caller may retry: an AWS error the service marks retryable. */
  const retryable = (outcome: InvokeResult & { ok: false }): boolean =>
    /retryable|run (the rotation |it )?again/i.test(outcome.error.message);

  /**
   * Every key an alias was moved onto (UpdateAlias or CreateAlias that reached AWS) proved it
   * works before the first move onto it: a Sign and a Verify, or a GenerateMac and a VerifyMac,
   * or an Encrypt and a Decrypt, answered HTTP 200 with that key before the move was sent.
   */
  const movesOntoUnverifiedKeys = (): string[] => {
    const calls = proxy.calls();
    const moves = calls.filter(
      (call) => (call.api === 'UpdateAlias' || call.api === 'CreateAlias') && call.outcome === 'forwarded',
    );
    const movedOnto = [...new Set(moves.map((call) => call.keyId as string))];
    return movedOnto.flatMap((keyId) => {
      const firstMove = Math.min(...moves.filter((call) => call.keyId === keyId).map((call) => call.startedAt));
      const answered = (api: string) =>
        calls.some(
          (call) => call.keyId === keyId && call.api === api && call.status === 200 && call.endedAt <= firstMove,
        );
      const proved =
        (answered('Sign') && answered('Verify')) ||
        (answered('GenerateMac') && answered('VerifyMac')) ||
        (answered('Encrypt') && answered('Decrypt'));
      return proved ? [] : [`an alias was moved onto ${keyId} before it proved it works`];
    });
  };

  const nothingDisabled = (): string[] =>
    proxy
      .calls()
      .filter((call) => ['DisableKey', 'ScheduleKeyDeletion'].includes(call.api))
      .map((call) => `${call.api} on ${call.keyId}`);

  /** The flow met eventual consistency: some read was answered with the state from before a write. */
  const staleAnswered = (): string[] =>
    proxy.calls().some((call) => call.outcome === 'stale')
      ? []
      : ['no read was answered stale: the flow was not put to the test'];

  /** Which reads were answered stale, for the test's output. */
  const staleReads = (): string => {
    const count: Record<string, number> = {};
    for (const call of proxy.calls()) if (call.outcome === 'stale') count[call.api] = (count[call.api] ?? 0) + 1;
    const listed = Object.entries(count).map(([api, times]) => `${api} x${times}`);
    return `stale answers: ${listed.join(', ') || 'none'}`;
  };

  let serial = 0;
  const managedKey = async (keySpec: KeySpec, keyUsage: KeyUsageType): Promise<{ alias: string; keyId: string }> => {
    serial += 1;
    const alias = `alias/stale/${keySpec.toLowerCase()}-${serial}`;
    const { KeyMetadata } = await clients.kms.send(
      new CreateKeyCommand({
        KeySpec: keySpec,
        KeyUsage: keyUsage,
        Tags: [
          { TagKey: 'kms-rotation:managed', TagValue: 'true' },
          { TagKey: 'kms-rotation:aliases', TagValue: alias },
        ],
      }),
    );
    await clients.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: KeyMetadata?.KeyId }));
    return { alias, keyId: KeyMetadata?.KeyId as string };
  };

  /** The end state of a finished alias-swap: one successor, active, behind the alias; the predecessor retired and enabled. */
  const swapped = async (alias: string, predecessor: string): Promise<string[]> => {
    const problems: string[] = [];
    const successors = await successorsOf(predecessor);
    if (successors.length !== 1)
      problems.push(`${predecessor} has ${successors.length} successors: ${successors.join(', ')}`);
    const successor = successors[0] as string;
    if ((await targetOf(alias)) !== successor) problems.push(`${alias} is not on the successor`);
    if (successor && (await tagsOf(successor))['kms-rotation:state'] !== 'active')
      problems.push('the successor is not active');
    if ((await tagsOf(predecessor))['kms-rotation:state'] !== 'retired')
      problems.push('the predecessor is not retired');
    problems.push(...(await keysStayEnabled([predecessor, ...successors])));
    return problems;
  };

  /** An alias-swap, then the same request again: both converge to the one rotation. */
  const aliasSwapFlow = async (keySpec: KeySpec, keyUsage: KeyUsageType) => {
    const { alias, keyId } = await managedKey(keySpec, keyUsage);
    proxy.reset();
    const rotate = () => invoke('rotate', { key: alias });
    const first = await converge(rotate, rotateOutcome, () => swapped(alias, keyId));
    const rerun = await converge(rotate, rotateOutcome, () => swapped(alias, keyId));
    await inbox.drain();
    return {
      alias,
      predecessor: keyId,
      runs: [...first.runs, '(re-run)', ...rerun.runs, staleReads()],
      violations: [
        ...first.problems,
        ...rerun.problems,
        ...(await swapped(alias, keyId)),
        ...movesOntoUnverifiedKeys(),
        ...nothingDisabled(),
        ...staleAnswered(),
        ...staleAnswered(),
      ],
    };
  };

  let rsaSwap: { alias: string; predecessor: string } | undefined;

  it('rotate (alias-swap, RSA signing key), then its re-run: one successor, verified before the alias moved', async () => {
    const { runs, violations, alias, predecessor } = await aliasSwapFlow('RSA_2048', 'SIGN_VERIFY');
    rsaSwap = { alias, predecessor };
    expect({ runs, violations }).toEqual({ runs, violations: [] });
  });

  it('rotate (alias-swap, HMAC key), then its re-run: one successor, verified before the alias moved', async () => {
    const { runs, violations } = await aliasSwapFlow('HMAC_256', 'GENERATE_VERIFY_MAC');
    expect({ runs, violations }).toEqual({ runs, violations: [] });
  });

  it('rotate (rollback) right after the alias-swap, then its re-run: the alias back on the proved predecessor', async () => {
    const { alias, predecessor } = rsaSwap ?? (await aliasSwapFlow('RSA_2048', 'SIGN_VERIFY'));
    const successor = await targetOf(alias);
    proxy.reset();
    const rolledBack = async (): Promise<string[]> => {
      const problems: string[] = [];
      if ((await targetOf(alias)) !== predecessor) problems.push(`${alias} is not back on ${predecessor}`);
      const predecessorTags = await tagsOf(predecessor);
      if (predecessorTags['kms-rotation:state'] !== 'active' || predecessorTags['kms-rotation:managed'] !== 'true')
        problems.push(`the predecessor is ${JSON.stringify(predecessorTags)}`);
      const successorTags = await tagsOf(successor);
      if (successorTags['kms-rotation:state'] !== 'rolled-back' || successorTags['kms-rotation:managed'] !== 'false')
        problems.push(`the successor is ${JSON.stringify(successorTags)}`);
      problems.push(...(await keysStayEnabled([predecessor, successor])));
      return problems;
    };
    const rollback = () => invoke('rotate', { key: alias, action: 'rollback' });
    const first = await converge(rollback, rotateOutcome, rolledBack);
    const rerun = await converge(rollback, rotateOutcome, rolledBack);
    await inbox.drain();
    const runs = [...first.runs, '(re-run)', ...rerun.runs, staleReads()];
    const violations = [
      ...first.problems,
      ...rerun.problems,
      ...(await rolledBack()),
      ...movesOntoUnverifiedKeys(),
      ...nothingDisabled(),
      ...staleAnswered(),
    ];
    expect({ runs, violations }).toEqual({ runs, violations: [] });
  });

  it('rotate (on-demand, symmetric key), then its re-run: one rotation, validated, the alias never moved', async () => {
    const { alias, keyId } = await managedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    proxy.reset();
    const onDemandRotations = async () =>
      ((await clients.kms.send(new ListKeyRotationsCommand({ KeyId: keyId }))).Rotations ?? []).filter(
        (rotation) => rotation.RotationType === 'ON_DEMAND',
      ).length;
    const rotatedOnce = async (): Promise<string[]> => {
      const count = await onDemandRotations();
      return [
        ...(count === 1 ? [] : [`${keyId} was rotated on demand ${count} times`]),
        ...((await targetOf(alias)) === keyId ? [] : [`${alias} moved off ${keyId}`]),
        ...(await keysStayEnabled([keyId])),
      ];
    };
    let completed = 0;
    const rotate = async () => {
      const outcome = await invoke('rotate', { key: alias });
      if (outcome.ok && rotateOutcome(outcome) === 'completed') completed += 1;
      return outcome;
    };
    const first = await converge(rotate, rotateOutcome, rotatedOnce);
    const rerun = await converge(rotate, rotateOutcome, rotatedOnce);
    await inbox.drain();
    const runs = [...first.runs, '(re-run)', ...rerun.runs, staleReads()];
    const violations = [
      ...first.problems,
      ...rerun.problems,
      ...(await rotatedOnce()),
      ...(completed > 0 ? [] : ['no run validated the rotation']),
      ...proxy
        .calls()
        .filter((call) => call.api === 'UpdateAlias' || call.api === 'CreateAlias')
        .map((call) => `${call.api} onto ${call.keyId}`),
      ...nothingDisabled(),
      ...staleAnswered(),
    ];
    expect({ runs, violations }).toEqual({ runs, violations: [] });
  });

  /** The CloudTrail record of an alias call, as EventBridge delivers it to onKeyActivity. */
  const aliasEvent = (eventName: 'CreateAlias' | 'UpdateAlias', alias: string, targetKeyId: string) => {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    return {
      version: '0',
      id: crypto.randomUUID(),
      'detail-type': 'AWS API Call via CloudTrail',
      source: 'aws.kms',
      account: ACCOUNT,
      time: now,
      region,
      resources: [],
      detail: {
        eventVersion: '1.11',
        userIdentity: { type: 'IAMUser', arn: `arn:aws:iam::${ACCOUNT}:user/Alice`, accountId: ACCOUNT },
        eventTime: now,
        eventSource: 'kms.amazonaws.com',
        eventName,
        awsRegion: region,
        requestParameters: { aliasName: alias, targetKeyId },
        eventID: crypto.randomUUID(),
        eventType: 'AwsApiCall',
        recipientAccountId: ACCOUNT,
      },
    };
  };
  const driftOutcome: Claim = (run) => (run.result as { outcome: string }).outcome;

  /**
   * A declared alias moved elsewhere by someone (through the proxy: the functions may read the
   * move late), its event run until the alias is back, then the duplicate event.
   */
  const movedAliasFlow = async () => {
    const { alias, keyId } = await managedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const { KeyMetadata: other } = await clients.kms.send(new CreateKeyCommand({}));
    const elsewhere = other?.KeyId as string;
    proxy.reset();
    await staleKms.send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: elsewhere }));
    const event = aliasEvent('UpdateAlias', alias, elsewhere);
    const back = async (): Promise<string[]> => [
      ...((await targetOf(alias)) === keyId ? [] : [`${alias} is not back on ${keyId}`]),
      ...(await keysStayEnabled([keyId])),
    ];
    const watch = () => invoke('onKeyActivity', event);
    const first = await converge(watch, driftOutcome, back);
    const duplicate = await converge(watch, driftOutcome, back);
    await inbox.drain();
    const runs = [...first.runs, '(duplicate event)', ...duplicate.runs, staleReads()];
    const violations = [
      ...first.problems,
      ...duplicate.problems,
      ...(await back()),
      ...movesOntoUnverifiedKeys().filter((problem) => !problem.includes(elsewhere)),
      ...nothingDisabled(),
      ...staleAnswered(),
    ];
    return { runs, violations };
  };

  it('onKeyActivity (stack deployed in remediate mode) on a moved alias, and the duplicate event: the alias back on its verified key', async () => {
    const { runs, violations } = await movedAliasFlow();
    expect({ runs, violations }).toEqual({ runs, violations: [] });
  });
});
