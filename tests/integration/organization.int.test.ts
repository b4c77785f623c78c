import {
  EventBridgeClient,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  PutEventsCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DisableKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyRotationCommand,
  KMSClient,
  ListKeyRotationsCommand,
  RotateKeyOnDemandCommand,
} from '@aws-sdk/client-kms';
import { LambdaClient, ListEventSourceMappingsCommand, UpdateEventSourceMappingCommand } from '@aws-sdk/client-lambda';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsProxy, startAwsProxy } from '../../scripts/lib/aws-proxy';
import { emulatorKeys } from '../../scripts/lib/emulator-keys';
import { invokeBundled } from '../../scripts/lib/invoke';
import { kmsCallRecord, rotationEvent } from '../../scripts/lib/local-aws';
import { drainQueue } from '../../scripts/lib/sqs-event-source';
import type { DeployedStack } from '../../scripts/lib/stack';
import { denyMemberAccounts } from './support/deny-member-account';
import { deployTestStack, type TestStack } from './support/deployed-stack';
import { credentialsIn, type Organization, rollOutToOrganization } from './support/organization';

const REGIONS = ['us-east-1', 'eu-west-1'] as const;
const ATTEMPTS = 2;
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

/**
 * What is seeded in each member account-Region, written down here, never computed by the audit:
 * compliant keys (rotation on), keys without rotation (`rotation-enabled`), and disabled keys an
 * alias still points at (`alias-to-unusable-key`). A different number in each account-Region.
 */
const SEEDED = (index: number, region: string) => ({
  compliant: 1 + index + (region === 'eu-west-1' ? 1 : 0),
  'rotation-enabled': index + (region === 'eu-west-1' ? 2 : 1),
  'alias-to-unusable-key': region === 'eu-west-1' ? index : 1,
});

type Counts = { keysAudited: number; nonCompliantKeys: number; nonCompliantByRule: Record<string, number> };

const expectedOf = (seed: ReturnType<typeof SEEDED>): Counts => {
  const byRule = Object.fromEntries(
    (['rotation-enabled', 'alias-to-unusable-key'] as const)
      .filter((rule) => seed[rule] > 0)
      .map((rule) => [rule, seed[rule]]),
  );
  const nonCompliant = seed['rotation-enabled'] + seed['alias-to-unusable-key'];
  return { keysAudited: seed.compliant + nonCompliant, nonCompliantKeys: nonCompliant, nonCompliantByRule: byRule };
};

/** Sums per-rule counts. */
const addRules = (into: Record<string, number>, from: Record<string, number>) => {
  for (const [rule, count] of Object.entries(from)) into[rule] = (into[rule] ?? 0) + count;
};

const MEMBER_ROLE_NAME = 'kms-rotation-member';
const ORGANIZATION_BUS = 'kms-rotation-itorg-organization';
const FORWARDED_EVENT_TYPES = [
  'AWS API Call via CloudTrail',
  'KMS CMK Deletion',
  'KMS CMK Rotation',
  'KMS Imported Key Material Expiration',
];

/**
 * Organization mode end to end in moto, rolled out as the README says: the central stack in
 * organization mode, then the member template as a SERVICE_MANAGED StackSet on an OU of three
 * accounts in two Regions (moto creates each stack instance in its own account and Region). Keys
 * are seeded in each member account-Region through the member role. Then:
 * - the member stacks are there: roles trusting exactly the central roles, rules forwarding to the central bus;
 * - `orgAudit` queues the items, an SQS event-source stand-in drives `orgAuditItem` from the real
 *   queue at most the template's MaximumConcurrency at once, and the one AuditCompleted totals
 *   exactly what was seeded, per account, Region and rule; a failing account-Region is retried,
 *   then reported by name;
 * - a member key's rotation event and a member's CloudTrail record of a drift, put on the member
 *   account's default bus, travel through its forwarding rule to the central bus, and the central
 *   functions validate the rotation and detect the drift in that member account.
 */
describe('Organization mode: the member StackSet on an OU of three accounts in two Regions, the org audit, forwarded events', () => {
  const central = 'us-east-1';
  let test: TestStack;
  let proxy: AwsProxy;
  const denial = denyMemberAccounts();
  let ouId: string;
  let members: string[] = [];
  let organization: Organization;
  let centralAccount: string;
  /** A queue in the central account on the central bus's rules, beside the functions: what the bus delivered. */
  let captureUrl: string;
  const expected = new Map<string, Counts>();
  let queueUrl: string;
  let maxConcurrency: number;

  beforeAll(async () => {
    test = await deployTestStack('itorg', {
      region: central,
      params: {
        // Packaged for an OU id moto has not made yet: the real one is given at invoke time.
        organizationUnitIds: 'ou-ab12-cdefgh12',
        organizationId: 'o-abcdef1234',
        organizationRegions: REGIONS.join(','),
        orgAuditAttempts: String(ATTEMPTS),
        orgAuditConcurrency: '3',
      },
    });
    proxy = await startAwsProxy({ target: test.emulator.endpoint, gaps: [denial.gap] });
    const config = { endpoint: test.emulator.endpoint, region: central, credentials };
    const stsOfCentral = new STSClient(config);
    centralAccount = (await stsOfCentral.send(new GetCallerIdentityCommand({}))).Account as string;
    stsOfCentral.destroy();
    organization = await rollOutToOrganization({
      endpoint: test.emulator.endpoint,
      region: central,
      centralAccountId: centralAccount,
      centralOutputs: test.stack.outputs,
      memberRoleName: MEMBER_ROLE_NAME,
      accountCount: 3,
      regions: [...REGIONS],
    });
    ouId = organization.ouId;
    members = organization.accounts;
    // Keys in each member account-Region, created with the member role's credentials (moto acts in the assumed account).
    const sts = new STSClient(config);
    for (const [index, account] of members.entries()) {
      for (const region of REGIONS) {
        const { Credentials } = await sts.send(
          new AssumeRoleCommand({
            RoleArn: `arn:aws:iam::${account}:role/kms-rotation-member-${region}`,
            RoleSessionName: 'seed',
          }),
        );
        const kms = new KMSClient({
          endpoint: test.emulator.endpoint,
          region,
          credentials: {
            accessKeyId: Credentials?.AccessKeyId as string,
            secretAccessKey: Credentials?.SecretAccessKey as string,
            sessionToken: Credentials?.SessionToken,
          },
        });
        const seed = SEEDED(index, region);
        const create = async () => {
          const { KeyMetadata } = await kms.send(
            new CreateKeyCommand({ Tags: [{ TagKey: 'team', TagValue: 'seed' }] }),
          );
          expect(KeyMetadata?.Arn).toContain(`:${account}:key/`);
          return KeyMetadata?.KeyId as string;
        };
        for (let n = 0; n < seed.compliant; n += 1) {
          await kms.send(new EnableKeyRotationCommand({ KeyId: await create() }));
        }
        for (let n = 0; n < seed['rotation-enabled']; n += 1) await create();
        for (let n = 0; n < seed['alias-to-unusable-key']; n += 1) {
          const keyId = await create();
          await kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
          await kms.send(new CreateAliasCommand({ AliasName: `alias/seed/unusable-${n}`, TargetKeyId: keyId }));
          await kms.send(new DisableKeyCommand({ KeyId: keyId }));
        }
        expected.set(`${account}/${region}`, expectedOf(seed));
        kms.destroy();
      }
    }
    queueUrl = test.stack.resources.OrgAuditQueue as string;
    const mapping = Object.values(
      test.pkg.template.Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>,
    ).find((resource) => resource.Type === 'AWS::Lambda::EventSourceMapping');
    if (!mapping) throw new Error('The organization stage has no event source mapping for orgAuditItem');
    maxConcurrency = (mapping.Properties.ScalingConfig as { MaximumConcurrency: number }).MaximumConcurrency;
    // moto runs a mapping by invoking the function in Docker, which this machine lacks: its failed
    // attempt would take messages out of sight for the visibility timeout. The emulator stands in.
    const lambda = new LambdaClient(config);
    const { EventSourceMappings = [] } = await lambda.send(new ListEventSourceMappingsCommand({}));
    const deployed = EventSourceMappings.filter((candidate) =>
      candidate.EventSourceArn?.endsWith(':kms-rotation-itorg-org-audit'),
    );
    expect(deployed).toHaveLength(1);
    await lambda.send(new UpdateEventSourceMappingCommand({ UUID: deployed[0]?.UUID, Enabled: false }));
    lambda.destroy();
    // What the central bus delivers, caught beside its function targets (moto cannot run the
    // functions it targets): a queue of the test's own, added as a second target of each rule.
    const { QueueUrl } = await test.clients.sqs.send(
      new CreateQueueCommand({ QueueName: 'itorg-central-bus-capture' }),
    );
    captureUrl = QueueUrl as string;
    const { Attributes } = await test.clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: captureUrl, AttributeNames: ['QueueArn'] }),
    );
    const events = new EventBridgeClient(config);
    const { Rules = [] } = await events.send(new ListRulesCommand({ EventBusName: ORGANIZATION_BUS }));
    expect(Rules).toHaveLength(3);
    for (const rule of Rules) {
      await events.send(
        new PutTargetsCommand({
          Rule: rule.Name,
          EventBusName: ORGANIZATION_BUS,
          Targets: [{ Id: 'test-capture', Arn: Attributes?.QueueArn }],
        }),
      );
    }
    events.destroy();
  }, 900_000);

  afterAll(async () => {
    await proxy?.stop();
    await test?.stop();
  });

  const fn = (name: string) => test.stack.functions[name] as DeployedStack['functions'][string];

  it('deploys the central organization resources, and outputs what the member stacks take', async () => {
    // moto lists no physical id for an AWS::Events::EventBus: the bus is read from EventBridge.
    const events = new EventBridgeClient({ endpoint: test.emulator.endpoint, region: central, credentials });
    try {
      const { Rules = [] } = await events.send(new ListRulesCommand({ EventBusName: ORGANIZATION_BUS }));
      const targets: Record<string, (string | undefined)[]> = {};
      for (const rule of Rules) {
        const { Targets = [] } = await events.send(
          new ListTargetsByRuleCommand({ Rule: rule.Name, EventBusName: ORGANIZATION_BUS }),
        );
        targets[rule.Name as string] = Targets.filter((target) => target.Id !== 'test-capture').map(
          (target) => target.Arn,
        );
      }
      expect(targets).toEqual({
        'kms-rotation-itorg-org-kms-cmk-rotation': [fn('onRotation').arn],
        'kms-rotation-itorg-org-kms-management-calls': [fn('onKeyActivity').arn],
        'kms-rotation-itorg-org-kms-key-lifecycle': [fn('onKeyActivity').arn],
      });
    } finally {
      events.destroy();
    }
    expect(test.stack.outputs.OrganizationEventBusArn).toBe(
      `arn:aws:events:${central}:${centralAccount}:event-bus/${ORGANIZATION_BUS}`,
    );
    const roleArn = (logicalId: string) => `arn:aws:iam::${centralAccount}:role/${test.stack.resources[logicalId]}`;
    expect(test.stack.outputs.CentralRoleArns?.split(',')).toEqual(
      ['OnRotationRole', 'RotateRole', 'OnKeyActivityRole', 'AuditRole', 'OrgAuditItemRole'].map(roleArn),
    );
    for (const name of ['onRotation', 'rotate', 'onKeyActivity', 'audit', 'orgAuditItem']) {
      expect(fn(name).environment.MEMBER_ROLE_NAME, name).toBe(MEMBER_ROLE_NAME);
    }
  });

  it('has a stack instance in each of the three accounts of the OU, in both Regions', () => {
    expect(members).toHaveLength(3);
    expect(new Set(members).size).toBe(3);
    expect(members).not.toContain(centralAccount);
    expect(organization.locations).toHaveLength(6);
  });

  it('gives each member account and Region its role <memberRoleName>-<region>, trusting exactly the central roles', async () => {
    const centralRoleArns = (test.stack.outputs.CentralRoleArns as string).split(',');
    for (const { account, region } of organization.locations) {
      const iam = new IAMClient({
        endpoint: test.emulator.endpoint,
        region,
        credentials: await credentialsIn(test.emulator.endpoint, account),
      });
      try {
        const { Role } = await iam.send(new GetRoleCommand({ RoleName: `${MEMBER_ROLE_NAME}-${region}` }));
        expect(Role?.Arn).toBe(`arn:aws:iam::${account}:role/${MEMBER_ROLE_NAME}-${region}`);
        const trust = JSON.parse(decodeURIComponent(Role?.AssumeRolePolicyDocument ?? '')) as {
          Statement: { Principal: { AWS: string[] }; Action: string; Condition: unknown }[];
        };
        expect(trust.Statement).toHaveLength(1);
        expect(trust.Statement[0]?.Principal.AWS).toEqual(centralRoleArns);
        expect(trust.Statement[0]?.Action).toBe('sts:AssumeRole');
        expect(trust.Statement[0]?.Condition).toEqual({
          StringEquals: { 'aws:PrincipalAccount': centralAccount },
          StringLike: { 'sts:RoleSessionName': 'kms-rotation-*' },
        });
      } finally {
        iam.destroy();
      }
    }
  });

  it('gives each member account and Region rules on its default bus forwarding the KMS events to the central bus, through a role of that account', async () => {
    const centralBus = test.stack.outputs.OrganizationEventBusArn as string;
    for (const { account, region } of organization.locations) {
      const events = new EventBridgeClient({
        endpoint: test.emulator.endpoint,
        region,
        credentials: await credentialsIn(test.emulator.endpoint, account),
      });
      try {
        const { Rules = [] } = await events.send(new ListRulesCommand({ EventBusName: 'default' }));
        expect(Rules, `${account}/${region}`).toHaveLength(2);
        const forwarded: string[] = [];
        for (const rule of Rules) {
          expect(rule.Arn).toMatch(new RegExp(`^arn:aws:events:${region}:${account}:rule/`));
          forwarded.push(...(JSON.parse(rule.EventPattern ?? '{}') as { 'detail-type': string[] })['detail-type']);
          const { Targets = [] } = await events.send(new ListTargetsByRuleCommand({ Rule: rule.Name }));
          expect(Targets.map((target) => target.Arn)).toEqual([centralBus]);
          expect(Targets[0]?.RoleArn).toMatch(new RegExp(`^arn:aws:iam::${account}:role/`));
        }
        expect(forwarded.sort()).toEqual(FORWARDED_EVENT_TYPES);
      } finally {
        events.destroy();
      }
    }
  });

  /** One organization run: orgAudit, then the queue drained into orgAuditItem. */
  const runOrganizationAudit = async () => {
    await test.inbox.drain();
    const fanOut = await invokeBundled({
      endpoint: proxy.endpoint,
      region: central,
      fn: fn('orgAudit'),
      event: {},
      env: { ORGANIZATION_UNIT_IDS: ouId },
      timeoutMs: 120_000,
    });
    expect(fanOut.ok, JSON.stringify(fanOut.ok ? '' : fanOut.error)).toBe(true);
    const unsent = (fanOut as { result: { unsent: string[] } }).result.unsent;
    expect(unsent, fanOut.logs.filter((line) => line.includes('not sent')).join('\n')).toEqual([]);
    const run = await drainQueue({
      sqs: test.clients.sqs,
      queueUrl,
      maxConcurrency,
      invoke: (event) =>
        invokeBundled({ endpoint: proxy.endpoint, region: central, fn: fn('orgAuditItem'), event, timeoutMs: 300_000 }),
    });
    const completed = (await test.inbox.drain()).filter((notification) => notification.body.type === 'AuditCompleted');
    return { fanOut: (fanOut as { result: { runId: string; expected: number; sent: number } }).result, run, completed };
  };

  it('queues every member account × Region and totals exactly what was seeded, per account, Region and rule, in one AuditCompleted', async () => {
    const { fanOut, run, completed } = await runOrganizationAudit();
    expect(fanOut).toMatchObject({ expected: 6, sent: 6, unsent: [] });
    expect(run.invocations).toHaveLength(6);
    expect(run.invocations.every((invocation) => invocation.outcome === 'deleted')).toBe(true);
    expect(run.peakConcurrency).toBeLessThanOrEqual(maxConcurrency);
    expect(completed).toHaveLength(1);
    const [notification] = completed as [(typeof completed)[number]];
    const details = notification.body.details as {
      organization: boolean;
      runId: string;
      totals: Counts & { items: number; failedItems: number };
      byAccount: Record<string, Counts & { items: number; ouPath?: string }>;
      byRegion: Record<string, Counts & { items: number }>;
      byRule: Record<string, number>;
      failedItems: unknown[];
    };
    expect(details.organization).toBe(true);
    expect(details.runId).toBe(fanOut.runId);
    expect(details.failedItems).toEqual([]);

    const total = { keysAudited: 0, nonCompliantKeys: 0, nonCompliantByRule: {} as Record<string, number> };
    for (const counts of expected.values()) {
      total.keysAudited += counts.keysAudited;
      total.nonCompliantKeys += counts.nonCompliantKeys;
      addRules(total.nonCompliantByRule, counts.nonCompliantByRule);
    }
    expect(details.totals).toMatchObject({ items: 6, failedItems: 0, ...total });
    expect(details.byRule).toEqual(total.nonCompliantByRule);
    for (const account of members) {
      const sum = { keysAudited: 0, nonCompliantKeys: 0, nonCompliantByRule: {} as Record<string, number> };
      for (const region of REGIONS) {
        const counts = expected.get(`${account}/${region}`) as Counts;
        sum.keysAudited += counts.keysAudited;
        sum.nonCompliantKeys += counts.nonCompliantKeys;
        addRules(sum.nonCompliantByRule, counts.nonCompliantByRule);
      }
      expect(details.byAccount[account], account).toMatchObject({ items: 2, ...sum });
      expect(details.byAccount[account]?.ouPath).toBe(ouId);
    }
    for (const region of REGIONS) {
      const sum = { keysAudited: 0, nonCompliantKeys: 0, nonCompliantByRule: {} as Record<string, number> };
      for (const account of members) {
        const counts = expected.get(`${account}/${region}`) as Counts;
        sum.keysAudited += counts.keysAudited;
        sum.nonCompliantKeys += counts.nonCompliantKeys;
        addRules(sum.nonCompliantByRule, counts.nonCompliantByRule);
      }
      expect(details.byRegion[region], region).toMatchObject({ items: 3, ...sum });
    }
    expect(notification.body).toMatchObject({ account: '123456789012', region: central, keyId: '*' });
    expect(notification.attributes.type).toBe('AuditCompleted');
  }, 900_000);

  it('audits one member account-Region by hand: `audit` with its account and region, through the member role', async () => {
    const account = members[2] as string;
    await test.inbox.drain();
    const outcome = await invokeBundled({
      endpoint: proxy.endpoint,
      region: central,
      fn: fn('audit'),
      event: { account, region: 'eu-west-1' },
      timeoutMs: 120_000,
    });
    expect(outcome.ok, JSON.stringify(outcome.ok ? '' : outcome.error)).toBe(true);
    const report = (outcome as { result: { totals: Counts } }).result;
    expect(report.totals).toMatchObject(expected.get(`${account}/eu-west-1`) as Counts);
    const completed = (await test.inbox.drain()).filter((notification) => notification.body.type === 'AuditCompleted');
    expect(completed.map((notification) => [notification.body.account, notification.body.region])).toEqual([
      [account, 'eu-west-1'],
    ]);
  }, 300_000);

  it('retries an account-Region that fails every attempt orgAuditAttempts times, then reports it failed by name, still in the totals', async () => {
    const failing = members[1] as string;
    denial.deny(failing);
    const { run, completed } = await runOrganizationAudit();
    const failingMessages = run.invocations.filter((invocation) => invocation.outcome === 'returned');
    // Each of the failing account's two Regions: ATTEMPTS failed receives, returned to the queue, then one that records it failed.
    expect(failingMessages).toHaveLength(2 * ATTEMPTS);
    expect(run.invocations).toHaveLength(6 + 2 * ATTEMPTS);
    expect(completed).toHaveLength(1);
    const details = (completed[0] as (typeof completed)[number]).body.details as {
      totals: { items: number; failedItems: number; keysAudited: number };
      failedItems: { item: string; account: string; region: string; attempts: number; error: string }[];
      byAccount: Record<string, { items: number; failedItems: number; keysAudited: number }>;
    };
    expect(details.totals.items).toBe(6);
    expect(details.totals.failedItems).toBe(2);
    expect(details.failedItems.map((item) => item.item).sort()).toEqual(
      REGIONS.map((region) => `${failing}/${region}`).sort(),
    );
    for (const item of details.failedItems) {
      expect(item.attempts).toBe(ATTEMPTS);
      expect(item.error).toMatch(/AccessDenied/);
    }
    expect(details.byAccount[failing]).toMatchObject({ items: 2, failedItems: 2, keysAudited: 0 });
    const audited = [...expected.entries()].filter(([item]) => !item.startsWith(failing));
    expect(details.totals.keysAudited).toBe(audited.reduce((sum, [, counts]) => sum + counts.keysAudited, 0));
    expect((completed[0] as (typeof completed)[number]).body.severity).toBe('WARNING');
    // Nothing ended in the dead-letter queue: every failure was recorded.
    const dlq = await test.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: test.stack.resources.OrgAuditDeadLetterQueue as string,
        AttributeNames: ['ApproximateNumberOfMessages'],
      }),
    );
    expect(dlq.Attributes?.ApproximateNumberOfMessages).toBe('0');
  }, 900_000);

  /** Credentials of a person in a member account, as its own operators act there. */
  const operatorIn = async (account: string, region: string) => ({
    endpoint: test.emulator.endpoint,
    region,
    credentials: await credentialsIn(test.emulator.endpoint, account),
  });

  /**
   * Puts `event` on the member account's default bus, as the AWS service would, and returns what
   * the central bus delivered: the member's forwarding rule sent it there. moto re-creates an event
   * it forwards to another account's bus without the source's `account` and `resources`, and with
   * the target bus's `region`; EventBridge delivers the event as it was put (docs/organization.md),
   * so those three are put back from the event put. Everything else is what the bus delivered.
   */
  const forwardedFrom = async (account: string, event: ReturnType<typeof rotationEvent> | Record<string, unknown>) => {
    const { region } = event as { region: string };
    const events = new EventBridgeClient(await operatorIn(account, region));
    try {
      const put = event as { source: string; 'detail-type': string; detail: unknown; resources: string[] };
      const { FailedEntryCount } = await events.send(
        new PutEventsCommand({
          Entries: [
            {
              Source: put.source,
              DetailType: put['detail-type'],
              Detail: JSON.stringify(put.detail),
              Resources: put.resources,
            },
          ],
        }),
      );
      expect(FailedEntryCount).toBe(0);
    } finally {
      events.destroy();
    }
    const { Messages = [] } = await test.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: captureUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2 }),
    );
    expect(Messages, 'the central bus delivered the forwarded event').toHaveLength(1);
    const delivered = JSON.parse(Messages[0]?.Body ?? '{}') as Record<string, unknown>;
    expect(delivered).toMatchObject({
      source: 'aws.kms',
      'detail-type': (event as { 'detail-type': string })['detail-type'],
      detail: (event as { detail: unknown }).detail,
    });
    return { ...delivered, account, region, resources: (event as { resources: string[] }).resources };
  };

  /**
   * moto answers PutEvents with an error page when a rule it delivers to targets a Lambda function
   * (it would run the function in Docker, which this machine lacks): the central rules keep only
   * the test's queue from here on, which stands in for the functions the test then invokes itself.
   */
  const deliverToCaptureOnly = async () => {
    const events = new EventBridgeClient({ endpoint: test.emulator.endpoint, region: central, credentials });
    try {
      const { Rules = [] } = await events.send(new ListRulesCommand({ EventBusName: ORGANIZATION_BUS }));
      for (const rule of Rules) {
        const { Targets = [] } = await events.send(
          new ListTargetsByRuleCommand({ Rule: rule.Name, EventBusName: ORGANIZATION_BUS }),
        );
        const functions = Targets.filter((target) => target.Id !== 'test-capture').map((target) => target.Id as string);
        if (functions.length > 0) {
          await events.send(
            new RemoveTargetsCommand({ Rule: rule.Name, EventBusName: ORGANIZATION_BUS, Ids: functions }),
          );
        }
      }
    } finally {
      events.destroy();
    }
  };

  it("validates centrally the rotation of a member key, its event forwarded by the member's rule through the central bus", async () => {
    await deliverToCaptureOnly();
    const account = members[0] as string;
    const region = 'us-east-1';
    const kms = new KMSClient(await operatorIn(account, region));
    const keyId = await emulatorKeys(kms).createManagedKey(
      'SYMMETRIC_DEFAULT',
      'ENCRYPT_DECRYPT',
      'alias/app/org-payments',
    );
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    const { Rotations = [] } = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
    kms.destroy();
    const keyArn = `arn:aws:kms:${region}:${account}:key/${keyId}`;
    const event = rotationEvent({
      keyId,
      keyArn,
      time: Rotations.at(-1)?.RotationDate ?? new Date(),
      rotationType: 'ON_DEMAND',
      account,
      region,
    });
    await test.inbox.drain();

    const delivered = await forwardedFrom(account, event);
    const outcome = await invokeBundled({
      endpoint: proxy.endpoint,
      region: central,
      fn: fn('onRotation'),
      event: delivered,
    });

    expect(outcome.ok, JSON.stringify(outcome.ok ? outcome.result : outcome.error)).toBe(true);
    expect((outcome as { result: { outcome: string } }).result.outcome).toBe('validated');
    const notifications = (await test.inbox.drain()).map((notification) => notification.body);
    expect(notifications).toEqual([expect.objectContaining({ type: 'RotationValidated', account, region, keyArn })]);
    expect(
      (notifications[0]?.details as { organizationalUnitPath?: string } | undefined)?.organizationalUnitPath,
    ).toContain('kms-rotation-members');
  }, 300_000);

  it("detects centrally a drift in a member account, the CloudTrail record forwarded by the member's rule through the central bus", async () => {
    const account = members[2] as string;
    const region = 'eu-west-1';
    const kms = new KMSClient(await operatorIn(account, region));
    const keyId = await emulatorKeys(kms).createManagedKey(
      'SYMMETRIC_DEFAULT',
      'ENCRYPT_DECRYPT',
      'alias/app/org-ledger',
    );
    await kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
    await kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));
    kms.destroy();
    const keyArn = `arn:aws:kms:${region}:${account}:key/${keyId}`;
    const record = kmsCallRecord({
      eventName: 'DisableKeyRotation',
      requestParameters: { keyId },
      resourceArns: [keyArn],
      account,
      region,
    });
    await test.inbox.drain();

    const delivered = await forwardedFrom(account, record);
    const outcome = await invokeBundled({
      endpoint: proxy.endpoint,
      region: central,
      fn: fn('onKeyActivity'),
      event: delivered,
    });

    expect(outcome.ok, JSON.stringify(outcome.ok ? outcome.result : outcome.error)).toBe(true);
    const report = (outcome as { result: { outcome: string; findings: { rule: string }[] } }).result;
    expect(report.outcome).toBe('drift');
    expect(report.findings.map((finding) => finding.rule)).toEqual(['rotation-enabled']);
    expect((await test.inbox.drain()).map((notification) => notification.body)).toEqual([
      expect.objectContaining({ type: 'DriftDetected', account, region, keyArn }),
    ]);
  }, 300_000);
});
