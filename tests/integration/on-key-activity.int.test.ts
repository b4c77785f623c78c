import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  EventBridgeClient,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  PutEventsCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyRotationCommand,
  GetKeyRotationStatusCommand,
  ScheduleKeyDeletionCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../../scripts/lib/emulator';
import { invokeBundled } from '../../scripts/lib/invoke';
import type { EmulatorClients, subscribeQueueToTopic } from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import { deployTestStack, type TestStack } from './support/deployed-stack';
import { emulatorSecurityHub, stateOf } from './support/security-hub';

interface DriftReport {
  outcome: string;
  keys: string[];
  summary: string;
  findings: { rule: string; severity: string; keyId: string }[];
  newFindings: { rule: string }[];
  remediations: { rule: string; status: string; detail: string }[];
  securityHub?: { imported: number; resolved: number };
}

const ACCOUNT = '123456789012';
const ALICE = 'arn:aws:iam::123456789012:user/Alice';

/** A CloudTrail record of a KMS call, as EventBridge delivers it (docs/kms-facts.md#cloudtrail-records). */
const cloudTrailEvent = (
  eventName: string,
  requestParameters: Record<string, unknown>,
  resources: string[],
  extra: Record<string, unknown> = {},
) => ({
  version: '0',
  id: crypto.randomUUID(),
  'detail-type': 'AWS API Call via CloudTrail',
  source: 'aws.kms',
  account: ACCOUNT,
  time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  region: 'us-east-1',
  resources: [],
  detail: {
    eventVersion: '1.11',
    userIdentity: { type: 'IAMUser', arn: ALICE, accountId: ACCOUNT, userName: 'Alice' },
    eventTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    eventSource: 'kms.amazonaws.com',
    eventName,
    awsRegion: 'us-east-1',
    sourceIPAddress: '198.51.100.24',
    userAgent: 'aws-cli/2.31.0',
    requestParameters,
    responseElements: null,
    eventID: crypto.randomUUID(),
    readOnly: false,
    resources: resources.map((arn) => ({ accountId: ACCOUNT, type: 'AWS::KMS::Key', ARN: arn })),
    eventType: 'AwsApiCall',
    managementEvent: true,
    recipientAccountId: ACCOUNT,
    ...extra,
  },
});

/**
 * The drift watch on real parts: the deployed stack in moto server, the real change made in
 * the emulator, the matching CloudTrail record fed to the bundled `onKeyActivity`.
 */
describe('Function: onKeyActivity against the local AWS emulator', () => {
  const region = 'us-east-1';
  let emulator: Emulator;
  let stack: DeployedStack;
  let clients: EmulatorClients;
  let inbox: Awaited<ReturnType<typeof subscribeQueueToTopic>>;
  let keyId: string;
  let keyArn: string;

  beforeAll(async () => {
    ({ emulator, stack, clients, inbox } = await deployTestStack('itdrift'));
    keyId = stack.outputs.KeyId as string;
    keyArn = stack.outputs.KeyArn as string;
  });

  afterAll(async () => {
    await emulator?.stop();
  });

  const watch = async (event: unknown, mode: 'detect' | 'remediate' = 'detect'): Promise<DriftReport> => {
    const outcome = await invokeBundled({
      endpoint: emulator.endpoint,
      region,
      fn: stack.functions.onKeyActivity as DeployedStack['functions'][string],
      event,
      env: { DRIFT_MODE: mode },
    });
    expect(outcome.ok, JSON.stringify(outcome.ok ? outcome.result : outcome.error)).toBe(true);
    lastEmf = outcome.emf;
    return (outcome as { result: DriftReport }).result;
  };
  let lastEmf: object[] = [];

  it('notices rotation being disabled, says who did it, notifies once, and puts it back in remediate mode', async () => {
    // Prepare: the real change, then its CloudTrail record.
    await clients.kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));
    const event = cloudTrailEvent('DisableKeyRotation', { keyId }, [keyArn]);

    // Act
    const detected = await watch(event);
    const duplicate = await watch(event);

    // Assess
    expect(detected.findings.map((finding) => [finding.rule, finding.severity])).toEqual([
      ['rotation-enabled', 'WARNING'],
    ]);
    expect(duplicate.newFindings).toEqual([]);
    const notifications = await inbox.drain();
    expect(notifications).toHaveLength(1);
    expect(notifications[0]?.attributes).toEqual({ type: 'DriftDetected', severity: 'WARNING' });
    expect(notifications[0]?.body.summary).toContain(`DisableKeyRotation by ${ALICE} from 198.51.100.24`);

    const remediated = await watch(event, 'remediate');

    expect(remediated.remediations).toEqual([
      expect.objectContaining({ rule: 'rotation-enabled', status: 'remediated' }),
    ]);
    expect((await clients.kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).KeyRotationEnabled).toBe(true);
    expect((await inbox.drain()).map((n) => n.attributes)).toEqual([{ type: 'DriftRemediated', severity: 'INFO' }]);
    expect(lastEmf).toEqual(expect.arrayContaining([expect.objectContaining({ DriftRemediated: 1 })]));
  });

  it('notices a declared alias re-pointed, re-points it after verifying the key, and then finds nothing in the late duplicate', async () => {
    const { KeyMetadata: other } = await clients.kms.send(new CreateKeyCommand({ Description: 'intruder' }));
    await clients.kms.send(new UpdateAliasCommand({ AliasName: 'alias/app/secure-key', TargetKeyId: other?.KeyId }));
    const event = cloudTrailEvent('UpdateAlias', { aliasName: 'alias/app/secure-key', targetKeyId: other?.KeyId }, [
      `arn:aws:kms:us-east-1:${ACCOUNT}:alias/app/secure-key`,
      other?.Arn as string,
    ]);

    const detected = await watch(event);

    expect(detected.findings).toEqual([
      expect.objectContaining({ rule: 'declared-alias-elsewhere', severity: 'WARNING', keyId }),
    ]);
    const [notification] = await inbox.drain();
    expect(notification?.body.summary).toContain(`alias/app/secure-key points at ${other?.KeyId}`);
    expect(lastEmf).toEqual(
      expect.arrayContaining([expect.objectContaining({ rule: 'declared-alias-elsewhere', DriftDetected: 1 })]),
    );

    const remediated = await watch(event, 'remediate');
    const lateDuplicate = await watch(event, 'remediate');

    expect(remediated.remediations).toEqual([
      expect.objectContaining({ rule: 'declared-alias-elsewhere', status: 'remediated' }),
    ]);
    expect((await clients.kms.send(new DescribeKeyCommand({ KeyId: 'alias/app/secure-key' }))).KeyMetadata?.KeyId).toBe(
      keyId,
    );
    expect(lateDuplicate).toMatchObject({ outcome: 'no-drift', findings: [], remediations: [] });
    expect((await inbox.drain()).map((n) => n.attributes.type)).toEqual(['DriftRemediated']);
  });

  it('raises CRITICAL for a managed key scheduled for deletion while an alias points at it, and never reverts it', async () => {
    const { KeyMetadata: doomed } = await clients.kms.send(
      new CreateKeyCommand({
        Description: 'managed, about to be deleted',
        Tags: [
          { TagKey: 'kms-rotation:managed', TagValue: 'true' },
          { TagKey: 'kms-rotation:aliases', TagValue: 'alias/app/doomed' },
        ],
      }),
    );
    const doomedId = doomed?.KeyId as string;
    await clients.kms.send(new CreateAliasCommand({ AliasName: 'alias/app/doomed', TargetKeyId: doomedId }));
    await clients.kms.send(new ScheduleKeyDeletionCommand({ KeyId: doomedId, PendingWindowInDays: 7 }));

    const report = await watch(
      cloudTrailEvent('ScheduleKeyDeletion', { keyId: doomedId, pendingWindowInDays: 7 }, [doomed?.Arn as string]),
      'remediate',
    );

    expect(report.findings).toEqual([expect.objectContaining({ rule: 'key-pending-deletion', severity: 'CRITICAL' })]);
    expect(report.remediations).toEqual([]);
    expect((await clients.kms.send(new DescribeKeyCommand({ KeyId: doomedId }))).KeyMetadata?.KeyState).toBe(
      'PendingDeletion',
    );
    expect((await inbox.drain()).map((n) => n.attributes)).toEqual([{ type: 'DriftDetected', severity: 'CRITICAL' }]);
    expect(lastEmf).toEqual(expect.arrayContaining([expect.objectContaining({ CriticalDrift: 1 })]));
  });

  it("ignores failed calls and the service's own changes", async () => {
    const failed = JSON.parse(readFileSync('events/cloudtrail-rotate-key-on-demand-failed.json', 'utf8'));
    const own = cloudTrailEvent('UpdateAlias', { aliasName: 'alias/app/secure-key', targetKeyId: keyId }, [keyArn], {
      userIdentity: {
        type: 'AssumedRole',
        arn: `arn:aws:sts::${ACCOUNT}:assumed-role/${stack.resources.RotateRole}/kms-rotation-itdrift-rotate`,
        sessionContext: {
          sessionIssuer: { type: 'Role', arn: `arn:aws:iam::${ACCOUNT}:role/${stack.resources.RotateRole}` },
        },
      },
    });

    const [ignoredFailure, ignoredOwn] = [await watch({ ...failed, account: ACCOUNT }), await watch(own)];

    expect(ignoredFailure).toMatchObject({
      outcome: 'ignored',
      summary: expect.stringContaining('LimitExceededException'),
    });
    expect(ignoredOwn).toMatchObject({ outcome: 'ignored', summary: expect.stringContaining('kms-rotation itself') });
    expect(await inbox.drain()).toEqual([]);
  });

  it("takes no look-alike of its roles for itself: the call is checked like anyone's", async () => {
    const roleArn = `arn:aws:iam::${ACCOUNT}:role/${stack.resources.RotateRole}`;
    const session = `arn:aws:sts::${ACCOUNT}:assumed-role/${stack.resources.RotateRole}/kms-rotation-itdrift-rotate`;
    const stranger = '999988887777';
    const spoofs = [
      {
        type: 'AssumedRole',
        arn: session.replace(ACCOUNT, stranger),
        sessionContext: { sessionIssuer: { arn: roleArn.replace(ACCOUNT, stranger) } },
      },
      { type: 'IAMUser', arn: `arn:aws:iam::${ACCOUNT}:user/role/${stack.resources.RotateRole}` },
      { type: 'AWSService', invokedBy: roleArn },
    ];

    const reports = [];
    for (const userIdentity of spoofs) {
      const call = cloudTrailEvent('UpdateAlias', { aliasName: 'alias/app/secure-key', targetKeyId: keyId }, [keyArn], {
        userIdentity,
      });
      reports.push(await watch(call));
    }

    expect(reports.map((report) => [report.outcome, report.keys])).toEqual(spoofs.map(() => ['no-drift', [keyId]]));
  });

  it('deploys rule patterns that route every sample event where it belongs and nothing else', async () => {
    // Prepare: each deployed rule gets a queue target in place of its function, which moto
    // cannot invoke (no Docker); the rule and its pattern are the deployed ones.
    const events = new EventBridgeClient({
      endpoint: emulator.endpoint,
      region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const rules = {
      rotation: 'kms-rotation-itdrift-kms-cmk-rotation',
      calls: 'kms-rotation-itdrift-kms-management-calls',
      lifecycle: 'kms-rotation-itdrift-kms-key-lifecycle',
    };
    // moto also matches events against schedule-only rules (the daily audit), which real
    // EventBridge never does: their function targets go too, so only queues receive events.
    const { Rules = [] } = await events.send(new ListRulesCommand({ NamePrefix: 'kms-rotation-itdrift-' }));
    for (const rule of Rules.filter((found) => !Object.values(rules).includes(found.Name as string))) {
      const { Targets = [] } = await events.send(new ListTargetsByRuleCommand({ Rule: rule.Name }));
      await events.send(
        new RemoveTargetsCommand({ Rule: rule.Name, Ids: Targets.map((target) => target.Id as string) }),
      );
    }
    const queues: Record<string, string> = {};
    for (const [name, rule] of Object.entries(rules)) {
      const { QueueUrl } = await clients.sqs.send(new CreateQueueCommand({ QueueName: `rule-${name}` }));
      const { Attributes } = await clients.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
      );
      const { Targets = [] } = await events.send(new ListTargetsByRuleCommand({ Rule: rule }));
      expect(Targets.map((target) => target.Arn)).toContain(
        stack.functions[name === 'rotation' ? 'onRotation' : 'onKeyActivity']?.arn,
      );
      await events.send(new RemoveTargetsCommand({ Rule: rule, Ids: Targets.map((target) => target.Id as string) }));
      await events.send(
        new PutTargetsCommand({ Rule: rule, Targets: [{ Id: `queue-${name}`, Arn: Attributes?.QueueArn }] }),
      );
      queues[name] = QueueUrl as string;
    }
    const samples = readdirSync('events')
      .filter((file) => /^(rotation-|cloudtrail-|kms-|unwatched-)/.test(file))
      .map((file) => ({ file, event: JSON.parse(readFileSync(join('events', file), 'utf8')) }));
    const expected: Record<string, string[]> = { rotation: [], calls: [], lifecycle: [] };
    for (const { file } of samples) {
      if (file.startsWith('rotation-')) expected.rotation?.push(file);
      else if (file.startsWith('cloudtrail-')) expected.calls?.push(file);
      else if (file.startsWith('kms-')) expected.lifecycle?.push(file);
    }

    // Act
    for (const { file, event } of samples) {
      const { FailedEntryCount } = await events.send(
        new PutEventsCommand({
          Entries: [
            {
              Source: event.source,
              DetailType: event['detail-type'],
              Detail: JSON.stringify({ ...event.detail, sample: file }),
              Resources: event.resources,
            },
          ],
        }),
      );
      expect(FailedEntryCount).toBe(0);
    }

    // Assess
    for (const [name, queueUrl] of Object.entries(queues)) {
      const received: string[] = [];
      for (;;) {
        const { Messages = [] } = await clients.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
        );
        if (Messages.length === 0) break;
        received.push(...Messages.map((message) => JSON.parse(message.Body ?? '{}').detail.sample as string));
        if (received.length > samples.length) break;
      }
      expect(received.sort(), `rule ${name}`).toEqual((expected[name] ?? []).sort());
    }
  });
});

/**
 * With securityHubFindings on, the drift watch and the audit share one finding per key and rule in
 * the emulator's Security Hub: a drift imported by the watch is updated by the next audit (same Id,
 * same CreatedAt, no second finding) and resolved by the audit once the key is compliant again.
 */
describe("Function: onKeyActivity with securityHubFindings on, then audit, against the emulator's Security Hub", () => {
  const region = 'us-east-1';
  let deployed: TestStack;
  let findingsOf: ReturnType<typeof emulatorSecurityHub>['findingsOf'];

  beforeAll(async () => {
    deployed = await deployTestStack('itdrftsh', { region, params: { securityHubFindings: 'true' } });
    ({ findingsOf } = emulatorSecurityHub(deployed.emulator.endpoint, region));
  });

  afterAll(async () => {
    await deployed?.stop();
  });

  const invoke = async (fn: 'onKeyActivity' | 'audit', event: unknown) => {
    const outcome = await invokeBundled({
      endpoint: deployed.emulator.endpoint,
      region,
      fn: deployed.stack.functions[fn] as DeployedStack['functions'][string],
      event,
    });
    expect(outcome.ok, JSON.stringify(outcome.ok ? '' : outcome.error)).toBe(true);
    return (outcome as { result: unknown }).result;
  };

  it("imports the drift under the audit rule's finding, which the next audit updates in place and resolves once the key is fixed", async () => {
    // Prepare: a managed key with its declared alias and rotation on, then rotation turned off by Alice.
    const alias = 'alias/drift/security-hub/0';
    const { KeyMetadata } = await deployed.clients.kms.send(
      new CreateKeyCommand({
        Tags: [
          { TagKey: 'kms-rotation:managed', TagValue: 'true' },
          { TagKey: 'kms-rotation:aliases', TagValue: alias },
        ],
      }),
    );
    const keyId = KeyMetadata?.KeyId as string;
    const keyArn = KeyMetadata?.Arn as string;
    await deployed.clients.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
    await deployed.clients.kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
    await deployed.clients.kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));

    // Act 1: the drift watch judges the CloudTrail record.
    const report = (await invoke(
      'onKeyActivity',
      cloudTrailEvent('DisableKeyRotation', { keyId }, [keyArn]),
    )) as DriftReport;

    // Assess 1: one open finding, under the audit rule's Id, naming who caused it.
    expect(report.findings.map((finding) => finding.rule)).toEqual(['rotation-enabled']);
    expect(report.securityHub).toEqual({ imported: 1, resolved: 0 });
    const [drift, ...moreDrift] = await findingsOf(keyArn);
    expect(moreDrift).toEqual([]);
    expect(stateOf(drift)).toEqual(['kms-rotation/rotation-enabled', 'ACTIVE', 'NEW', 'FAILED']);
    expect(drift).toMatchObject({
      Id: `kms-rotation/${ACCOUNT}/${region}/${keyId}/rotation-enabled`,
      Severity: { Label: 'MEDIUM' },
      Description: expect.stringContaining(`DisableKeyRotation by ${ALICE}`),
      ProductFields: expect.objectContaining({
        'kms-rotation/driftRule': 'rotation-enabled',
        'kms-rotation/actor': ALICE,
      }),
    });

    // Act 2: the daily audit, the key still drifted.
    await invoke('audit', {});

    // Assess 2: the same finding, updated by the audit rather than duplicated.
    const [audited, ...moreAudited] = await findingsOf(keyArn);
    expect(moreAudited).toEqual([]);
    expect(audited?.Id).toBe(drift?.Id);
    expect(audited?.CreatedAt).toBe(drift?.CreatedAt);
    expect(stateOf(audited)).toEqual(['kms-rotation/rotation-enabled', 'ACTIVE', 'NEW', 'FAILED']);
    expect(audited?.ProductFields?.['kms-rotation/auditId']).toEqual(expect.any(String));

    // Act 3: the key is fixed, and audited again.
    await deployed.clients.kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
    await invoke('audit', {});

    // Assess 3: the same finding, resolved and archived by the audit.
    const [resolved, ...moreResolved] = await findingsOf(keyArn);
    expect(moreResolved).toEqual([]);
    expect(resolved?.Id).toBe(drift?.Id);
    expect(stateOf(resolved)).toEqual(['kms-rotation/rotation-enabled', 'ARCHIVED', 'RESOLVED', 'PASSED']);
  });
});
