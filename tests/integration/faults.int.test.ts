import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyRotationCommand,
  GetKeyRotationStatusCommand,
  ListAliasesCommand,
  ListKeyRotationsCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  RotateKeyOnDemandCommand,
} from '@aws-sdk/client-kms';
import { GetResourcesCommand, ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsProxy, type FaultKind, startAwsProxy } from '../../scripts/lib/aws-proxy';
import type { Emulator } from '../../scripts/lib/emulator';
import { type InvokeResult, invokeBundled } from '../../scripts/lib/invoke';
import {
  type EmulatorClients,
  type ReceivedNotification,
  rotationEvent,
  type subscribeQueueToTopic,
} from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import { keyIdOf } from '../../src/domain/key-ref';
import { deployTestStack } from './support/deployed-stack';

const FAULTS: FaultKind[] = ['http-500', 'http-503', 'connection-reset', 'slow'];
/**
 * Client timeout in the functions under test (the SDK fails the attempt past it, and retries),
 * and how long a `slow` fault holds its answer, AWS having acted. The timeout stays above the
 * slowest answer moto gives unprovoked (creating an RSA key, a tagging-API search).
 */
const CLIENT_TIMEOUT_MS = 1_500;
const SLOW_MS = 1_800;

/** Every (API, n-th call) a run made, in order: the places to inject a fault at. */
/**
 * The calls of a clean run, each as the nth call of its API. A request the function gave up on (its
 * client timed out: no status) is not a call of its own but the first attempt of the retry that
 * follows it: counting it would plan a fault at a call that runs without the machine's load never
 * make.
 */
const callPoints = (proxy: AwsProxy): { api: string; nth: number }[] => {
  const seen: Record<string, number> = {};
  return proxy
    .calls()
    .filter((call) => !(call.outcome === 'forwarded' && call.status === undefined))
    .map(({ api }) => {
      seen[api] = (seen[api] ?? 0) + 1;
      return { api, nth: seen[api] as number };
    });
};

/**
 * For each flow, for each AWS call it makes, each fault kind injected at that call (through a
 * loopback proxy in front of moto server), then the invariants: no alias points at a key that
 * did not pass verification; no predecessor is disabled or deleted; the audit counts every key
 * once and changes nothing it may not; the run either finished with its notification or failed
 * loudly; a re-run converges to the end state of a clean run.
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
    ({ emulator, stack, clients, inbox } = await deployTestStack('itfault', {
      params: { aliasScope: 'alias/app/*,alias/fault/*' },
    }));
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
    /** Invariants right after the faulted run, whatever its outcome (given with what it sent). */
    invariants: (input: Input, run: { outcome: InvokeResult; notified: ReceivedNotification[] }) => Promise<string[]>;
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
        // A `slow` fault's answer is still held after the function gave up on it: wait for it.
        await proxy.idle();
        const notifications = await inbox.drain();
        const notified = notifications.map((n) => n.attributes.type);
        const problems: string[] = [];
        if (!proxy.calls().some((call) => call.outcome === fault)) problems.push('the fault was never injected');
        if (first.ok && !notified.includes(flow.notification)) problems.push('finished without its notification');
        if (!first.ok && !first.error.message) problems.push('failed without saying why');
        problems.push(...(await flow.invariants(input, { outcome: first, notified: notifications })));
        if (!first.ok) {
          proxy.reset();
          const rerun = await flow.run(input);
          await proxy.idle();
          if (!rerun.ok) problems.push(`the re-run failed too: ${rerun.error.message}`);
          await inbox.drain();
        }
        problems.push(...(await flow.endState(input)));
        violations.push(...problems.map((problem) => `${where}: ${problem}`));
      }
    }
    return violations;
  };

  /** Keys no fault may leave disabled or deleted, each named with the state it is in instead. */
  const keysStayEnabled = async (keyIds: string[]): Promise<string[]> => {
    const states = await Promise.all(keyIds.map(async (keyId) => [keyId, (await describe_(keyId))?.KeyState] as const));
    return states.filter(([, state]) => state !== 'Enabled').map(([keyId, state]) => `${keyId} is ${state}`);
  };

  const aliasStaysOnKey = async (alias: string, keyId: string): Promise<string[]> => [
    ...((await describe_(alias))?.KeyId === keyId ? [] : [`${alias} moved off ${keyId}`]),
    ...(await keysStayEnabled([keyId])),
  ];

  // --- audit -----------------------------------------------------------------------------------
  // The audit reads the whole account, so its flows run first, while the account holds only the
  // stack's key and the few keys seeded here (the other flows add a key per run).

  /** Seeded keys and the findings an auditor expects of them, written down here, not computed by the audit. */
  const AUDIT_SEEDS = [
    { name: 'managed-off', managed: true, rotation: false, expected: ['rotation-enabled'] },
    { name: 'managed-ok', managed: true, rotation: true, expected: [] },
    { name: 'unmanaged-off', managed: false, rotation: false, expected: ['rotation-enabled'] },
  ] as const;
  /** The period declared on the managed keys: what remediation must enable rotation with. */
  const DECLARED_PERIOD_DAYS = 180;

  interface AuditReport {
    auditId: string;
    complete: boolean;
    totals: {
      keysAudited: number;
      byClass: Record<string, number>;
      nonCompliantKeys: number;
      remediated: number;
    };
    findings: { keyId: string; rule: string; remediated?: boolean }[];
    findingsOmitted: number;
    remediations: { keyId: string; detail: string }[];
  }

  interface AuditFleet {
    /** Every key of the account -> the rules it breaks (the stack's own key: none). */
    expected: Map<string, readonly string[]>;
    managedOff: string;
  }

  let auditFleetSeeded: Promise<AuditFleet> | undefined;
  const seedAuditFleet = (): Promise<AuditFleet> => {
    auditFleetSeeded ??= (async () => {
      // The stack's own keys: the managed one and the topic's, both compliant.
      const expected = new Map<string, readonly string[]>([
        [stack.outputs.KeyId as string, []],
        [keyIdOf(stack.outputs.NotificationKeyArn as string), []],
      ]);
      let managedOff = '';
      for (const seed of AUDIT_SEEDS) {
        const alias = `alias/fault/audit-${seed.name}`;
        const { KeyMetadata } = await clients.kms.send(
          new CreateKeyCommand({
            Tags: seed.managed
              ? [
                  { TagKey: 'kms-rotation:managed', TagValue: 'true' },
                  { TagKey: 'kms-rotation:aliases', TagValue: alias },
                  { TagKey: 'kms-rotation:period-days', TagValue: String(DECLARED_PERIOD_DAYS) },
                ]
              : [{ TagKey: 'team', TagValue: 'fault-audit' }],
          }),
        );
        const keyId = KeyMetadata?.KeyId as string;
        await clients.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
        if (seed.rotation) {
          await clients.kms.send(
            new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: DECLARED_PERIOD_DAYS }),
          );
        }
        if (seed.name === 'managed-off') managedOff = keyId;
        expected.set(keyId, seed.expected);
      }
      const { Keys = [] } = await clients.kms.send(new ListKeysCommand({}));
      const listed = Keys.map((key) => key.KeyId as string).sort();
      if (JSON.stringify(listed) !== JSON.stringify([...expected.keys()].sort())) {
        throw new Error(
          `The audit flows expect the account to hold only the stack's two keys and the ${AUDIT_SEEDS.length} seeded keys, ` +
            `and it holds ${listed.length}: run them before the flows that create keys`,
        );
      }
      return { expected, managedOff };
    })();
    return auditFleetSeeded;
  };

  /** What the audit could change: each key's state, rotation and tags, and every alias. */
  const auditInventory = async () => {
    const { Keys = [] } = await clients.kms.send(new ListKeysCommand({}));
    const keys: Record<string, string> = {};
    for (const { KeyId } of Keys) {
      const [{ KeyMetadata }, rotation, tags] = await Promise.all([
        clients.kms.send(new DescribeKeyCommand({ KeyId })),
        clients.kms.send(new GetKeyRotationStatusCommand({ KeyId })),
        tagsOf(KeyId as string),
      ]);
      // moto keeps no rotation period; AWS does, and then it is compared too.
      const period = rotation.RotationPeriodInDays ? ` every ${rotation.RotationPeriodInDays} days` : '';
      keys[KeyId as string] =
        `${KeyMetadata?.KeyState}, rotation ${rotation.KeyRotationEnabled ? `on${period}` : 'off'}, tags ${JSON.stringify(tags)}`;
    }
    const { Aliases = [] } = await clients.kms.send(new ListAliasesCommand({}));
    return { keys, aliases: Aliases.map((alias) => `${alias.AliasName}->${alias.TargetKeyId}`).sort() };
  };
  type AuditInventory = Awaited<ReturnType<typeof auditInventory>>;

  /** Keys changed beyond what the mode allows: remediation may only turn rotation on, with the declared period, on managed keys. */
  const unexpectedChanges = (
    before: AuditInventory,
    after: AuditInventory,
    allowed: (keyId: string, before: string) => string[],
  ): string[] => [
    ...Object.entries(before.keys).flatMap(([keyId, state]) =>
      allowed(keyId, state).includes(after.keys[keyId] as string)
        ? []
        : [`${keyId} changed: ${state} -> ${after.keys[keyId] ?? 'gone'}`],
    ),
    ...Object.keys(after.keys)
      .filter((keyId) => !(keyId in before.keys))
      .map((keyId) => `a key appeared: ${keyId}`),
    ...(JSON.stringify(after.aliases) === JSON.stringify(before.aliases)
      ? []
      : [`aliases changed: ${before.aliases.join(' ')} -> ${after.aliases.join(' ')}`]),
  ];

  /**
   * What a finished audit must say of this fleet: complete, every key counted once (none lost,
   * none twice), each key's findings those the seeds predict (a key whose read failed is never
   * reported compliant), and in remediate mode only the managed key remediated.
   */
  const reportProblems = (
    report: AuditReport,
    fleet: AuditFleet,
    remediate: boolean,
    /** After a failed run, a re-run may find the managed key already remediated: no finding then. */
    managedOffMayBeFixed = false,
  ): string[] => {
    const problems: string[] = [];
    const size = fleet.expected.size;
    if (!report.complete) problems.push('the report is not complete');
    if (report.totals.keysAudited !== size) problems.push(`${report.totals.keysAudited} keys audited, not ${size}`);
    const byClass = Object.values(report.totals.byClass).reduce((sum, count) => sum + count, 0);
    if (byClass !== report.totals.keysAudited) problems.push(`classes add up to ${byClass}`);
    if (report.findingsOmitted !== 0) problems.push(`${report.findingsOmitted} findings omitted`);
    const mark = (keyId: string, rule: string, remediated: boolean) =>
      `${keyId}:${rule}${remediated ? ' (remediated)' : ''}`;
    const actual = report.findings.map((item) => mark(item.keyId, item.rule, item.remediated === true)).sort();
    const predicted = [...fleet.expected.entries()]
      .flatMap(([keyId, rules]) =>
        rules.map((rule) => mark(keyId, rule, remediate && keyId === fleet.managedOff && rule === 'rotation-enabled')),
      )
      .sort();
    const fixed = predicted.filter((item) => !item.startsWith(`${fleet.managedOff}:`));
    const matches = (candidate: string[]) => JSON.stringify(actual) === JSON.stringify(candidate);
    if (!matches(predicted) && !(managedOffMayBeFixed && matches(fixed)))
      problems.push(`findings ${actual.join(', ')}; expected ${predicted.join(', ')}`);
    const open = [...fleet.expected.entries()].filter(
      ([keyId, rules]) => rules.length > 0 && !(remediate && keyId === fleet.managedOff),
    ).length;
    if (report.totals.nonCompliantKeys !== open) problems.push(`${report.totals.nonCompliantKeys} non-compliant keys`);
    const remediated = report.remediations.map((item) => item.keyId);
    const expectedRemediated = remediate ? [fleet.managedOff] : [];
    if (
      JSON.stringify(remediated) !== JSON.stringify(expectedRemediated) &&
      !(managedOffMayBeFixed && remediated.length === 0)
    )
      problems.push(`remediated ${remediated.join(', ') || 'nothing'}`);
    for (const { keyId, detail } of report.remediations) {
      if (!detail.endsWith(`every ${DECLARED_PERIOD_DAYS} days`)) problems.push(`${keyId} remediated as: ${detail}`);
    }
    return problems;
  };

  /** The audit under every fault, in one mode. */
  const auditFlow = (remediate: boolean): FaultFlow<{ before: AuditInventory; fleet: AuditFleet }> => {
    const reports = new WeakMap<object, { first: boolean; report?: AuditReport }[]>();
    const remediatedState = (fleet: AuditFleet, keyId: string, state: string): string =>
      remediate && keyId === fleet.managedOff ? state.replace('rotation off', 'rotation on') : state;
    return {
      prepare: async () => {
        const fleet = await seedAuditFleet();
        // The one change remediation may make, undone: each run starts from the seeded fleet.
        const { KeyRotationEnabled } = await clients.kms.send(
          new GetKeyRotationStatusCommand({ KeyId: fleet.managedOff }),
        );
        if (KeyRotationEnabled) await clients.kms.send(new DisableKeyRotationCommand({ KeyId: fleet.managedOff }));
        return { before: await auditInventory(), fleet };
      },
      run: async (input) => {
        const outcome = await invoke('audit', remediate ? { remediate: true } : {});
        const runs = reports.get(input) ?? [];
        runs.push({ first: runs.length === 0, report: outcome.ok ? (outcome.result as AuditReport) : undefined });
        reports.set(input, runs);
        return outcome;
      },
      notification: 'AuditCompleted',
      invariants: async ({ before, fleet }, { outcome, notified }) => {
        const problems = unexpectedChanges(before, await auditInventory(), (keyId, state) => [
          state,
          remediatedState(fleet, keyId, state),
        ]);
        if (!outcome.ok) return problems;
        const report = outcome.result as AuditReport;
        problems.push(...reportProblems(report, fleet, remediate));
        const own = notified.find(
          (item) =>
            item.attributes.type === 'AuditCompleted' &&
            (item.body.details as { auditId?: string } | undefined)?.auditId === report.auditId,
        );
        if (!own) problems.push(`no AuditCompleted notification of audit ${report.auditId}`);
        else if (!String(own.body.summary).startsWith(`Audited ${fleet.expected.size} keys`))
          problems.push(`the notification says: ${own.body.summary}`);
        return problems;
      },
      // The end state of a clean run: the same findings, and rotation on exactly where remediation may turn it on.
      endState: async (input) => {
        const { before, fleet } = input;
        const runs = reports.get(input) ?? [];
        const last = runs.filter((run) => run.report !== undefined).at(-1);
        const problems = unexpectedChanges(before, await auditInventory(), (keyId, state) => [
          remediatedState(fleet, keyId, state),
        ]);
        if (!last?.report) return [...problems, 'no run finished'];
        return [...problems, ...reportProblems(last.report, fleet, remediate, !last.first)];
      },
    };
  };

  it('audit (report): every fault ends with every key counted once and its notification, or failed loudly; nothing changes', async () => {
    const violations = await violationsUnderFaults(auditFlow(false), [
      'ListAliases',
      'GetParametersByPath',
      'ListKeys',
      'DescribeKey',
      'ListResourceTags',
      'GetKeyRotationStatus',
      'ListKeyRotations',
      'GetKeyPolicy',
      'Publish',
    ]);
    expect(violations).toEqual([]);
  }, 300_000);

  it('audit (remediate): every fault ends counted-and-notified or failed loudly; rotation ends on for the managed key only', async () => {
    const violations = await violationsUnderFaults(auditFlow(true), [
      'ListKeys',
      'DescribeKey',
      'GetKeyRotationStatus',
      'EnableKeyRotation',
      'Publish',
    ]);
    expect(violations).toEqual([]);
  }, 300_000);

  it('audit: a read that keeps failing fails the run loudly, without a report that leaves keys out', async () => {
    const flow = auditFlow(false);
    const input = await flow.prepare();
    await inbox.drain();
    proxy.reset();
    // Every attempt of every ListKeyRotations fails: the SDK's retries cannot get past it.
    for (let attempt = 1; attempt <= 64; attempt += 1) proxy.injectFault('ListKeyRotations', attempt, 'http-500');
    const outcome = await flow.run(input);
    await proxy.idle();
    const notified = await inbox.drain();

    expect(outcome.ok).toBe(false);
    expect(outcome.ok ? '' : outcome.error.message).toContain('ListKeyRotations');
    expect(notified.filter((item) => item.attributes.type === 'AuditCompleted')).toEqual([]);
    expect(await flow.invariants(input, { outcome, notified })).toEqual([]);

    proxy.reset();
    expect((await flow.run(input)).ok).toBe(true);
    await inbox.drain();
    expect(await flow.endState(input)).toEqual([]);
  });

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
  }, 300_000);

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
  }, 300_000);

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
  }, 300_000);

  /**
   * Whether the run proved `keyId` before it moved an alias onto it, read from what it asked AWS
   * and when: a Sign and a Verify with that key answered (HTTP 200, received by the function)
   * before the first UpdateAlias onto it was sent. The key's tags are no evidence here: the run writes them itself, alongside the alias.
   */
  const verifiedBeforeAliased = (keyId: string): string[] => {
    const calls = proxy.calls().filter((call) => call.keyId === keyId);
    // Every UpdateAlias onto the key that reached AWS, whether its answer reached the function or not.
    const moves = calls.filter(
      (call) => call.api === 'UpdateAlias' && (call.outcome === 'forwarded' || call.outcome === 'slow'),
    );
    if (moves.length === 0) return [`the alias is on ${keyId}, and this run never moved it there`];
    const firstMove = Math.min(...moves.map((call) => call.startedAt));
    const answeredBefore = (api: string) =>
      calls.some((call) => call.api === api && call.status === 200 && call.endedAt <= firstMove);
    return answeredBefore('Sign') && answeredBefore('Verify')
      ? []
      : [`the alias was moved onto ${keyId} before a Sign and a Verify with it were answered`];
  };

  let signingKeys = 0;
  /** A managed RSA signing key behind an alias of its own, as alias-swap rotates it. */
  const managedSigningKey = async (): Promise<{ alias: string; keyId: string }> => {
    signingKeys += 1;
    const alias = `alias/fault/rsa-${signingKeys}`;
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

  it('rotate (alias-swap): no alias ever on an unverified key, the predecessor stays enabled, re-runs converge to one successor', async () => {
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
        prepare: managedSigningKey,
        run: ({ alias }) => invoke('rotate', { key: alias }),
        notification: 'RotationCompleted',
        invariants: async ({ alias, keyId }) => {
          const target = (await describe_(alias))?.KeyId as string;
          return [...(target === keyId ? [] : verifiedBeforeAliased(target)), ...(await keysStayEnabled([keyId]))];
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
          problems.push(...(await keysStayEnabled([keyId])));
          return problems;
        },
      },
      ['CreateKey', 'Sign', 'Verify', 'UpdateAlias', 'TagResource', 'Publish'],
    );
    expect(violations).toEqual([]);
  }, 300_000);

  it('rotate (rollback): the aliases go back only to a predecessor proved to work, no key is disabled, re-runs converge', async () => {
    const violations = await violationsUnderFaults(
      {
        // A finished alias-swap to roll back, made without faults.
        prepare: async () => {
          const { alias, keyId } = await managedSigningKey();
          const rotated = await invoke('rotate', { key: alias });
          if (!rotated.ok) throw new Error(`the rotation to roll back failed: ${rotated.error.message}`);
          await inbox.drain();
          return { alias, predecessor: keyId, successor: (await describe_(alias))?.KeyId as string };
        },
        run: ({ alias }) => invoke('rotate', { key: alias, action: 'rollback' }),
        notification: 'RotationCompleted',
        invariants: async ({ alias, predecessor, successor }) => {
          const target = (await describe_(alias))?.KeyId as string;
          return [
            ...(target === successor ? [] : verifiedBeforeAliased(target)),
            ...(target === successor || target === predecessor ? [] : [`the alias points at a third key, ${target}`]),
            ...(await keysStayEnabled([predecessor, successor])),
          ];
        },
        // The end state of a clean rollback: the alias and the declared state back on the predecessor.
        endState: async ({ alias, predecessor, successor }) => {
          const problems: string[] = [];
          if ((await describe_(alias))?.KeyId !== predecessor)
            problems.push('the alias is not back on the predecessor');
          const predecessorTags = await tagsOf(predecessor);
          if (predecessorTags['kms-rotation:state'] !== 'active' || predecessorTags['kms-rotation:managed'] !== 'true')
            problems.push(`the predecessor is ${JSON.stringify(predecessorTags)}`);
          const successorTags = await tagsOf(successor);
          if (
            successorTags['kms-rotation:state'] !== 'rolled-back' ||
            successorTags['kms-rotation:managed'] !== 'false'
          )
            problems.push(`the successor is ${JSON.stringify(successorTags)}`);
          problems.push(...(await keysStayEnabled([predecessor, successor])));
          return problems;
        },
      },
      ['DescribeKey', 'ListResourceTags', 'Sign', 'Verify', 'UpdateAlias', 'TagResource', 'Publish'],
    );
    expect(violations).toEqual([]);
  }, 300_000);
});
