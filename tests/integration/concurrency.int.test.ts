import {
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisableKeyRotationCommand,
  GetKeyRotationStatusCommand,
  type KeySpec,
  type KeyUsageType,
  ListKeyRotationsCommand,
  ListKeysCommand,
  RotateKeyOnDemandCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsProxy, startAwsProxy } from '../../scripts/lib/aws-proxy';
import type { Emulator } from '../../scripts/lib/emulator';
import { emulatorKeys } from '../../scripts/lib/emulator-keys';
import { type InvokeResult, invokeBundled } from '../../scripts/lib/invoke';
import {
  type EmulatorClients,
  kmsCallRecord,
  rotationEvent,
  type subscribeQueueToTopic,
} from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import { deployTestStack } from './support/deployed-stack';
import { calledTogether, invokeEachTogether, invokeTogether } from './support/together';

interface Report {
  outcome: string;
  strategy?: string;
  keyId: string;
  predecessor?: string;
  successor?: string;
  steps: { step: string; status: string; detail: string }[];
}

const PREDECESSOR_TAG = 'kms-rotation:predecessor';
const SUCCESSOR_TAG = 'kms-rotation:successor';
/** How a refusal because another invocation holds the key's lease reads: who holds it, and until when. */
const LEASE_HELD = 'holds it until';
const TOGETHER = 3;
const ACCOUNT = '123456789012';
/**
 * Each call answered 20-50 ms late, as AWS answers within a Region: moto on this machine answers in
 * a few, so that one invocation could read, change and write a record before another has started.
 */
const AWS_LATENCY = { ms: 20, jitterMs: 30 };

/**
 * Issue 12, "One rotation at a time": `rotate` invocations for one key, started together as
 * Lambda runs them (each bundled handler in its own process, against the deployed stack in
 * moto), must make one rotation between them. One invocation does the work; every other is
 * refused because the key is taken, or finds the work done and names what was done. None makes
 * a second successor or spends a second on-demand rotation, and none reports a success for work
 * that is not there.
 */
describe('Functions invoked several times at once for one key', () => {
  const region = 'us-east-1';
  let emulator: Emulator;
  let stack: DeployedStack;
  let clients: EmulatorClients;
  let inbox: Awaited<ReturnType<typeof subscribeQueueToTopic>>;
  /** The functions call AWS through it; the test's own reads and setup go to moto directly. */
  let proxy: AwsProxy;

  beforeAll(async () => {
    ({ emulator, stack, clients, inbox } = await deployTestStack('itconc', {
      // rotationWaitSeconds: a run that cannot read back its own writes (another run moved the alias
      // after it) fails in 5 s rather than 60; moto shows every write at once.
      params: { aliasScope: 'alias/app/*,alias/conc/*', rotationWaitSeconds: '5' },
    }));
    proxy = await startAwsProxy({
      target: emulator.endpoint,
      latencyMs: AWS_LATENCY.ms,
      jitterMs: AWS_LATENCY.jitterMs,
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await emulator?.stop();
  });

  const rotateFn = () => stack.functions.rotate as DeployedStack['functions'][string];

  const rotateTogether = (event: unknown): Promise<InvokeResult[]> =>
    invokeTogether({ endpoint: proxy.endpoint, region, fn: rotateFn(), events: Array(TOGETHER).fill(event) });
  const rotateAlone = (event: unknown): Promise<InvokeResult> =>
    invokeBundled({ endpoint: proxy.endpoint, region, fn: rotateFn(), event });

  const keys = () => emulatorKeys(clients.kms);
  const createManagedKey = (keySpec: KeySpec, keyUsage: KeyUsageType, alias: string) =>
    keys().createManagedKey(keySpec, keyUsage, alias);
  const tagsOf = (keyId: string) => keys().tagsOf(keyId);
  const targetOf = (alias: string) => keys().targetOf(alias);

  /** Every key in the account whose predecessor tag names `keyId`: the successors rotations made of it. */
  const successorsOf = async (keyId: string): Promise<string[]> => {
    const all: string[] = [];
    let marker: string | undefined;
    do {
      const page = await clients.kms.send(new ListKeysCommand({ Marker: marker }));
      all.push(...(page.Keys ?? []).map((key) => key.KeyId as string));
      marker = page.Truncated ? page.NextMarker : undefined;
    } while (marker);
    const tagged = await Promise.all(all.map(async (id) => ((await tagsOf(id))[PREDECESSOR_TAG] === keyId ? id : '')));
    return tagged.filter(Boolean).sort();
  };

  const onDemandRotationsOf = async (keyId: string) =>
    ((await clients.kms.send(new ListKeyRotationsCommand({ KeyId: keyId }))).Rotations ?? []).filter(
      (rotation) => rotation.RotationType === 'ON_DEMAND',
    );

  /**
   * What one alias-swap invocation did, in words that name keys by their part: `successor` is the
   * one key the rotation should have made. Anything outside the contract is spelled out whole.
   */
  const swapOutcome = (result: InvokeResult, predecessor: string, successor: string | undefined): string => {
    if (!result.ok) {
      const { name, message } = result.error;
      if (name === 'PreconditionFailedError' && message.includes(LEASE_HELD)) return 'refused: key held';
      // Resolved the alias before the rotation moved it, and read the predecessor once it was over.
      if (name === 'PreconditionFailedError' && successor && message.includes(`its successor ${successor} carries`)) {
        return 'refused: retired, names the successor';
      }
      return `unexpected failure: ${name}: ${message}`;
    }
    const report = result.result as Report;
    const names = (keyId: string | undefined) => (keyId === successor ? 'the successor' : `another key (${keyId})`);
    if (report.outcome === 'completed' && report.predecessor === predecessor) {
      const create = report.steps.find((step) => step.step === 'createSuccessor');
      return create?.status === 'done' && create.detail.startsWith('created')
        ? `created ${names(report.successor)}`
        : `finished ${names(report.successor)} without creating it`;
    }
    if (report.outcome === 'nothing-to-do') return `nothing to do, names ${names(report.keyId)}`;
    return `unexpected report: ${JSON.stringify(report)}`;
  };

  /** Notifications since the last drain, by type and the key they name. */
  const notified = async (named: string | undefined) =>
    (await inbox.drain()).map(
      (notification) =>
        `${notification.attributes.type} for ${notification.body.keyId === named ? 'the successor' : notification.body.keyId}`,
    );

  it.each([
    { kind: 'an RSA signing key', keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY', alias: 'alias/conc/rsa-signing' },
    { kind: 'an HMAC key', keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC', alias: 'alias/conc/hmac' },
    {
      kind: 'a symmetric key',
      keySpec: 'SYMMETRIC_DEFAULT',
      keyUsage: 'ENCRYPT_DECRYPT',
      alias: 'alias/conc/sym-swap',
    },
  ] as const)(
    '$kind: three alias-swaps at once make one successor; a re-run afterwards makes none',
    async ({ keySpec, keyUsage, alias }) => {
      const predecessor = await createManagedKey(keySpec, keyUsage, alias);
      await inbox.drain();

      const runs = await rotateTogether({ key: alias, strategy: 'alias-swap' });

      const successors = await successorsOf(predecessor);
      const target = await targetOf(alias);
      // The one successor, if there is one; else whichever the alias ended on, to name the rest against.
      const successor = successors.length === 1 ? successors[0] : target;
      const outcomes = runs.map((run) => swapOutcome(run, predecessor, successor));
      const notifications = await notified(successor);

      // Converges: asked again once all are done, nothing is rotated and nothing more made.
      const rerun = await rotateAlone({ key: alias, strategy: 'alias-swap' });
      const observed = {
        calledTogether: calledTogether(runs),
        successors: successors.length,
        aliasOnTheSuccessor: target === successor,
        predecessorNamesTheSuccessor: (await tagsOf(predecessor))[SUCCESSOR_TAG] === successor,
        created: outcomes.filter((outcome) => outcome.startsWith('created')),
        others: outcomes.filter((outcome) => !outcome.startsWith('created')),
        notifications,
        rerunOutcome: swapOutcome(rerun, predecessor, successor),
        successorsAfterRerun: (await successorsOf(predecessor)).length,
        successorsOfTheSuccessor: successor ? (await successorsOf(successor)).length : 'no successor',
        aliasAfterRerun: (await targetOf(alias)) === successor ? 'the successor' : 'another key',
      };
      await inbox.drain();

      // The lease is taken on the key the alias resolves to. The alias moves alongside `finish`, so a
      // run that resolves it in between leases the successor, not the predecessor, and finishes the
      // same rotation (or finds it done); one that resolved it before, and leases the predecessor
      // once the rotation is over, is refused as retired. Neither makes a second successor.
      const allowed = [
        'refused: key held',
        'refused: retired, names the successor',
        'nothing to do, names the successor',
        'finished the successor without creating it',
      ];
      expect(observed).toEqual({
        calledTogether: true,
        successors: 1,
        aliasOnTheSuccessor: true,
        predecessorNamesTheSuccessor: true,
        created: ['created the successor'],
        others: observed.others.map((outcome) =>
          allowed.includes(outcome) ? outcome : `one of: ${allowed.join(' | ')}`,
        ),
        // One notification per success, each for the successor; a refusal notifies nothing.
        notifications: outcomes
          .filter((outcome) => outcome.startsWith('created') || outcome.startsWith('finished'))
          .map(() => 'RotationCompleted for the successor'),
        rerunOutcome: 'nothing to do, names the successor',
        successorsAfterRerun: 1,
        successorsOfTheSuccessor: 0,
        aliasAfterRerun: 'the successor',
      });
    },
  );

  /**
   * Without `force` a run that finds the key rotated moments ago validates that rotation instead of
   * spending another, so on a key without a lease the race is lost only when the runs' reads come
   * before the first RotateKeyOnDemand. With `force` every run that is let through rotates: only the
   * lease keeps it to one, and the forced re-run afterwards must be let through (the lease released).
   */
  it.each([
    {
      force: false,
      alias: 'alias/conc/sym-on-demand',
      allowed: ['refused: key held', 'validated the one rotation'],
      rerunOutcome: 'validated the one rotation',
      spentAfterRerun: 1,
    },
    {
      force: true,
      alias: 'alias/conc/sym-on-demand-forced',
      allowed: ['refused: key held'],
      rerunOutcome: 'rotated',
      spentAfterRerun: 2,
    },
  ])(
    'a symmetric key: three on-demand rotations at once (force: $force) spend one; a re-run spends another only if forced',
    async ({ force, alias, allowed, rerunOutcome, spentAfterRerun }) => {
      const keyId = await createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', alias);
      const before = (await onDemandRotationsOf(keyId)).length;
      await inbox.drain();

      const runs = await rotateTogether({ key: alias, strategy: 'on-demand', force });

      const spent = (await onDemandRotationsOf(keyId)).slice(before);
      const rotatedAt = spent.length === 1 ? spent[0]?.RotationDate?.toISOString() : undefined;
      /** What one on-demand invocation did; a success without a rotation of its own must be for the one rotation spent. */
      const onDemandOutcome = (result: InvokeResult): string => {
        if (!result.ok) {
          const { name, message } = result.error;
          return name === 'PreconditionFailedError' && message.includes(LEASE_HELD)
            ? 'refused: key held'
            : `unexpected failure: ${name}: ${message}`;
        }
        const report = result.result as Report;
        if (report.outcome !== 'completed' || report.keyId !== keyId) {
          return `unexpected report: ${JSON.stringify(report)}`;
        }
        const rotateStep = report.steps.find((step) => step.step === 'rotateKeyOnDemand');
        if (rotateStep?.status === 'done') return 'rotated';
        return rotateStep?.status === 'skipped' && rotatedAt && rotateStep.detail.includes(rotatedAt)
          ? 'validated the one rotation'
          : `unexpected report: ${JSON.stringify(report)}`;
      };
      const outcomes = runs.map(onDemandOutcome);
      const notifications = (await inbox.drain()).map(
        (notification) =>
          `${notification.attributes.type} for ${notification.body.keyId === keyId ? 'the key' : notification.body.keyId}`,
      );

      const rerun = await rotateAlone({ key: alias, strategy: 'on-demand', force });
      const observed = {
        calledTogether: calledTogether(runs),
        onDemandRotationsSpent: spent.length,
        rotated: outcomes.filter((outcome) => outcome === 'rotated'),
        others: outcomes.filter((outcome) => outcome !== 'rotated'),
        notifications,
        rerunOutcome: onDemandOutcome(rerun),
        spentAfterRerun: (await onDemandRotationsOf(keyId)).length - before,
        aliasOnTheKey: (await targetOf(alias)) === keyId,
      };
      await inbox.drain();

      expect(observed).toEqual({
        calledTogether: true,
        onDemandRotationsSpent: 1,
        rotated: ['rotated'],
        others: observed.others.map((outcome) =>
          allowed.includes(outcome) ? outcome : `one of: ${allowed.join(' | ')}`,
        ),
        // One notification per success, each for the key; a refusal notifies nothing.
        notifications: outcomes
          .filter((outcome) => outcome === 'rotated' || outcome === 'validated the one rotation')
          .map(() => 'RotationCompleted for the key'),
        rerunOutcome,
        spentAfterRerun,
        aliasOnTheKey: true,
      });
    },
  );

  /** The key's record in SSM, as the functions keep it: canary, failures told, drift told. */
  const recordOf = async (
    keyId: string,
  ): Promise<{ canary?: { createdAt: string }; notifiedFailures?: string[]; openDrift?: Record<string, string> }> => {
    const { Parameter } = await clients.ssm.send(
      new GetParameterCommand({ Name: `/kms-rotation/itconc/keys/${keyId}` }),
    );
    return JSON.parse(Parameter?.Value ?? '{}');
  };

  const fn = (name: string) => stack.functions[name] as DeployedStack['functions'][string];

  /** Rotates `keyId` on demand in the emulator; the event KMS sends for that rotation. */
  const rotatedOnDemand = async (keyId: string) => {
    await clients.kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    const [latest] = (await onDemandRotationsOf(keyId)).slice(-1);
    const { KeyMetadata } = await clients.kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    return rotationEvent({
      keyId,
      keyArn: KeyMetadata?.Arn as string,
      time: latest?.RotationDate ?? new Date(),
      rotationType: 'ON_DEMAND',
    });
  };

  /** What an invocation ended in: its report's outcome, a refusal because the key was held, or its error's name. */
  const outcomeOf = (run: InvokeResult): string => {
    if (run.ok) return (run.result as { outcome: string }).outcome;
    return run.error.message.includes(LEASE_HELD) ? 'refused: key held' : run.error.name;
  };

  /** A CloudTrail record of a successful KMS call by a person, as EventBridge delivers it. */
  const callBy = (eventName: string, requestParameters: Record<string, string>, resourceArns: string[]) =>
    kmsCallRecord({ eventName, requestParameters, resourceArns, account: ACCOUNT, region });
  const keyArnOf = (keyId: string) => `arn:aws:kms:${region}:${ACCOUNT}:key/${keyId}`;
  const rotationDisabledBy = (keyId: string) => callBy('DisableKeyRotation', { keyId }, [keyArnOf(keyId)]);

  it('onKeyActivity: one record delivered three times at once tells its drift once, and remembers it', async () => {
    const keyId = await createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', 'alias/conc/watched');
    await clients.kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));
    await inbox.drain();
    const record = rotationDisabledBy(keyId);

    const runs = await invokeTogether({
      endpoint: proxy.endpoint,
      region,
      fn: stack.functions.onKeyActivity as DeployedStack['functions'][string],
      events: Array(TOGETHER).fill(record),
    });
    const { openDrift } = await recordOf(keyId);

    expect({
      calledTogether: calledTogether(runs),
      outcomes: runs.map((run) => (run.ok ? (run.result as { outcome: string }).outcome : run.error.message)),
      notifications: (await inbox.drain()).map((notification) => notification.attributes.type),
      remembered: Object.keys(openDrift ?? {}),
    }).toEqual({
      calledTogether: true,
      outcomes: ['drift', 'drift', 'drift'],
      notifications: ['DriftDetected'],
      remembered: [expect.stringContaining('rotation-enabled')],
    });
  });

  it('onKeyActivity: a burst of different records for one key tells each drift once, and remembers all of them', async () => {
    // Prepare: someone switches rotation off and moves the declared alias to a key of their own
    const alias = 'alias/conc/burst';
    const keyId = await createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', alias);
    const { KeyMetadata } = await clients.kms.send(new CreateKeyCommand({ Description: 'not managed' }));
    const elsewhere = KeyMetadata?.KeyId as string;
    await clients.kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));
    await clients.kms.send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: elsewhere }));
    await inbox.drain();
    const aliasArn = `arn:aws:kms:${region}:${ACCOUNT}:${alias}`;
    const records = [
      rotationDisabledBy(keyId),
      callBy('UpdateAlias', { aliasName: alias, targetKeyId: elsewhere }, [aliasArn, keyArnOf(elsewhere)]),
      rotationDisabledBy(keyId),
      callBy('UpdateAlias', { aliasName: alias, targetKeyId: elsewhere }, [aliasArn, keyArnOf(elsewhere)]),
    ];

    // Act
    const runs = await invokeEachTogether({
      endpoint: proxy.endpoint,
      region,
      calls: records.map((event) => ({ fn: fn('onKeyActivity'), event })),
    });

    // Assess: whichever runs first tells both drifts; the others find them on record
    const notifications = await inbox.drain();
    expect({
      calledTogether: calledTogether(runs),
      outcomes: runs.map(outcomeOf),
      notifications: notifications.map((notification) => notification.attributes.type),
      told: notifications
        .flatMap((notification) =>
          ((notification.body.details as { findings?: { rule: string }[] }).findings ?? []).map((item) => item.rule),
        )
        .sort(),
      remembered: Object.keys((await recordOf(keyId)).openDrift ?? {})
        .map((fingerprint) => fingerprint.split(':')[0])
        .sort(),
    }).toEqual({
      calledTogether: true,
      outcomes: ['drift', 'drift', 'drift', 'drift'],
      notifications: ['DriftDetected'],
      told: ['declared-alias-elsewhere', 'rotation-enabled'],
      remembered: ['declared-alias-elsewhere', 'rotation-enabled'],
    });
  });

  it('onRotation: one rotation event delivered three times at once tells a failed validation once, and remembers it', async () => {
    // Prepare: KMS rotated the key, and someone disabled it before the event was handled
    const keyId = await createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', 'alias/conc/rotated-then-disabled');
    const event = await rotatedOnDemand(keyId);
    await clients.kms.send(new DisableKeyCommand({ KeyId: keyId }));
    await inbox.drain();

    // Act
    const runs = await invokeTogether({
      endpoint: proxy.endpoint,
      region,
      fn: fn('onRotation'),
      events: Array(TOGETHER).fill(event),
    });

    // Assess: every delivery fails (Lambda retries, then the DLQ keeps it); only the first tells
    expect({
      calledTogether: calledTogether(runs),
      outcomes: runs.map(outcomeOf),
      notifications: (await inbox.drain()).map((notification) => notification.attributes.type),
      remembered: (await recordOf(keyId)).notifiedFailures,
    }).toEqual({
      calledTogether: true,
      outcomes: ['PreconditionFailedError', 'PreconditionFailedError', 'PreconditionFailedError'],
      notifications: ['RotationValidationFailed'],
      remembered: [`${keyId}:${event.id}`],
    });
  });

  it("onRotation and onKeyActivity on one key at once: the key's record keeps what each of them wrote", async () => {
    // Prepare: a rotation to validate (its new canary is written) and a drift to tell (remembered)
    const keyId = await createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', 'alias/conc/rotated-and-drifted');
    const rotation = await rotatedOnDemand(keyId);
    await clients.kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));
    const drift = rotationDisabledBy(keyId);
    await inbox.drain();

    // Act
    const runs = await invokeEachTogether({
      endpoint: proxy.endpoint,
      region,
      calls: [
        { fn: fn('onRotation'), event: rotation },
        { fn: fn('onKeyActivity'), event: drift },
        { fn: fn('onRotation'), event: rotation },
        { fn: fn('onKeyActivity'), event: drift },
      ],
    });

    // Assess
    const record = await recordOf(keyId);
    expect({
      calledTogether: calledTogether(runs),
      outcomes: runs.map(outcomeOf),
      notifications: (await inbox.drain()).map((notification) => notification.attributes.type).sort(),
      canaryKept: record.canary !== undefined,
      driftRemembered: Object.keys(record.openDrift ?? {}),
    }).toEqual({
      calledTogether: true,
      outcomes: ['validated', 'drift', 'validated', 'drift'],
      notifications: ['DriftDetected', 'RotationValidated', 'RotationValidated'],
      canaryKept: true,
      driftRemembered: [expect.stringContaining('rotation-enabled')],
    });
  });

  it('audit and onKeyActivity remediating one key at once: rotation is put back once, by one of them', async () => {
    // Prepare: someone switched rotation off; the drift watch runs in remediate mode
    const keyId = await createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', 'alias/conc/remediated-twice');
    await clients.kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));
    await inbox.drain();
    const watch = fn('onKeyActivity');
    const remediatingWatch = { ...watch, environment: { ...watch.environment, DRIFT_MODE: 'remediate' } };

    // Act
    const runs = await invokeEachTogether({
      endpoint: proxy.endpoint,
      region,
      calls: [
        { fn: fn('audit'), event: { remediate: true, keyIds: [keyId] } },
        { fn: remediatingWatch, event: rotationDisabledBy(keyId) },
      ],
    });

    // Assess
    const [audit, drift] = runs.map((run) => (run.ok ? run.result : run.error)) as [
      { remediations: { keyId: string }[]; totals: { nonCompliantKeys: number } },
      { outcome: string; remediations: { status: string }[] },
    ];
    const putBackBy = [
      ...(audit.remediations ?? []).filter((made) => made.keyId === keyId).map(() => 'audit'),
      ...(drift.remediations ?? []).filter((made) => made.status === 'remediated').map(() => 'onKeyActivity'),
    ];
    const notifications = (await inbox.drain()).map((notification) => notification.attributes.type).sort();
    const { KeyRotationEnabled } = await clients.kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }));
    // Whichever holds the key first puts rotation back. The other reads it again under the lease and
    // finds it on: the audit counts the key compliant, the drift watch finds no drift to tell.
    const told = {
      audit: { drift: 'no-drift', notifications: ['AuditCompleted'] },
      onKeyActivity: { drift: 'drift', notifications: ['AuditCompleted', 'DriftDetected', 'DriftRemediated'] },
    }[putBackBy[0] as 'audit' | 'onKeyActivity'];
    expect({
      calledTogether: calledTogether(runs),
      outcomes: runs.map((run) => (run.ok ? 'succeeded' : `${run.error.name}: ${run.error.message}`)),
      putBackBy: putBackBy.length,
      rotationEnabled: KeyRotationEnabled,
      auditNonCompliant: audit.totals?.nonCompliantKeys,
      driftOutcome: drift.outcome,
      notifications,
    }).toEqual({
      calledTogether: true,
      outcomes: ['succeeded', 'succeeded'],
      putBackBy: 1,
      rotationEnabled: true,
      auditNonCompliant: 0,
      driftOutcome: told?.drift,
      notifications: told?.notifications,
    });
  });
});
