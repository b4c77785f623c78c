import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DeleteAliasCommand,
  DisableKeyRotationCommand,
  EnableKeyRotationCommand,
  KMSClient,
  ListKeyRotationsCommand,
  RotateKeyOnDemandCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { LambdaClient, ListEventSourceMappingsCommand, UpdateEventSourceMappingCommand } from '@aws-sdk/client-lambda';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Caller,
  type Evaluation,
  emptyEvaluation,
  evaluateCalls,
  evaluateRequest,
  type FlowCall,
  formatDenials,
  type OrganizationView,
} from '../../scripts/lib/authorization/evaluate';
import type { AuthzRequest } from '../../scripts/lib/authorization/kms-rules';
import { type CallDetail, type CallRecorder, createCallRecorder } from '../../scripts/lib/authorization/recorder';
import {
  type CfnTemplate,
  intrinsicResolver,
  type PolicyDocument,
  type PolicyStatement,
  type ResolvedRole,
  type ResolvedStack,
  resolveStack,
} from '../../scripts/lib/authorization/template';
import { type AwsProxy, kmsQuotaLimits, startAwsProxy } from '../../scripts/lib/aws-proxy';
import { emulatorKeys } from '../../scripts/lib/emulator-keys';
import { type InvokeResult, invokeBundled } from '../../scripts/lib/invoke';
import { serviceQuotasGap } from '../../scripts/lib/kms-gaps/service-quotas';
import { kmsUsage, usageMetricsGap } from '../../scripts/lib/kms-gaps/usage-metrics';
import { kmsCallRecord, rotationEvent } from '../../scripts/lib/local-aws';
import { sqsEventOf } from '../../scripts/lib/sqs-event-source';
import { type DeployedStack, readCloudFormationYaml } from '../../scripts/lib/stack';
import { functionCallers, leastPrivilege, mergeEvaluation } from './support/authorization';
import { deployTestStack, type TestStack } from './support/deployed-stack';
import { EXPLAINED_ORGANIZATION_GRANTS } from './support/explained-grants';
import { credentialsIn, MEMBER_TEMPLATE_PATH, type Organization, rollOutToOrganization } from './support/organization';

const REGION = 'us-east-1';
const OTHER_REGION = 'eu-west-1';
const CENTRAL = '123456789012';
const STAGE = 'itorgauthz';
/**
 * The organization's id as the stage is packaged with it. moto gives the organization it creates a
 * random id; the evaluation takes the accounts of that organization (the central one and the OU's)
 * to be of this one, which is what `aws:ResourceOrgID` and `aws:PrincipalOrgID` carry in AWS.
 */
const ORGANIZATION_ID = 'o-abcdef1234';
const MEMBER_ROLE_NAME = 'kms-rotation-member';
/** An account outside the organization, for the probes. */
const OUTSIDER = '999999999999';
const FLOW_SPACING_MS = 10 * 60_000;

interface MemberStack {
  account: string;
  region: string;
  remediate: ResolvedStack;
  detect: ResolvedStack;
}

/**
 * Authorization in organization mode (docs/authorization.md, "Organization mode"): the central stack
 * packaged in organization mode, the member stack rolled out by a SERVICE_MANAGED StackSet to an OU
 * (one account, two Regions), keys in the member account, and every AWS call of the member flows
 * recorded and evaluated: the central roles' calls against the central stack's policies, the
 * AssumeRole against the caller's `AssumeMemberRolesOfTheOrganization` AND the member role's trust
 * policy, and every call signed with the member role's session against that role's policies as
 * deployed in that account and Region and the key policy of the member key it touches.
 */
describe('Authorization in organization mode: the member flows, against the central and member policies', () => {
  let deployed: TestStack;
  let stack: DeployedStack;
  let organization: Organization;
  let member: string;
  let proxy: AwsProxy;
  let recorder: CallRecorder;
  let central: { remediate: ResolvedStack; detect: ResolvedStack };
  const memberStacks: MemberStack[] = [];
  let virtualOffsetMs = 0;
  const total: Evaluation = emptyEvaluation();
  const memberKms = new Map<string, KMSClient>();

  const organizationView = (mode: 'remediate' | 'detect'): OrganizationView => ({
    roleOf: (roleArn) => memberStacks.flatMap((m) => Object.values(m[mode].roles)).find((role) => role.arn === roleArn),
    organizationOf: (account) =>
      account === CENTRAL || organization.accounts.includes(account) ? ORGANIZATION_ID : undefined,
  });

  beforeAll(async () => {
    deployed = await deployTestStack(STAGE, {
      region: REGION,
      params: {
        driftMode: 'remediate',
        aliasScope: 'alias/app/*,alias/org/*',
        organizationId: ORGANIZATION_ID,
        organizationUnitIds: 'ou-ab12-cdefgh12',
        organizationRegions: `${REGION},${OTHER_REGION}`,
        memberRoleName: MEMBER_ROLE_NAME,
      },
    });
    stack = deployed.stack;
    organization = await rollOutToOrganization({
      endpoint: deployed.emulator.endpoint,
      region: REGION,
      centralAccountId: CENTRAL,
      centralOutputs: stack.outputs,
      memberRoleName: MEMBER_ROLE_NAME,
      accountCount: 1,
      regions: [REGION, OTHER_REGION],
    });
    member = organization.accounts[0] as string;

    const resolveCentral = (driftMode: string) =>
      resolveStack(deployed.pkg.template as CfnTemplate, {
        accountId: CENTRAL,
        region: REGION,
        partition: 'aws',
        physicalIds: stack.resources,
        parameters: { DriftMode: driftMode },
      });
    central = { remediate: resolveCentral('remediate'), detect: resolveCentral('detect') };

    // Each member stack as deployed: the member template, resolved in its account and Region with the
    // StackSet's parameters. moto keeps a service-managed stack instance hidden (no
    // DescribeStackResources), so the member role is named as the template names it and checked to
    // exist there with IAM; the other resources' names enter no evaluated policy but as the
    // forwarding role's own ARN (the principal of the forwarding check below).
    const memberTemplate = (await readCloudFormationYaml(MEMBER_TEMPLATE_PATH)) as unknown as CfnTemplate;
    for (const { account, region } of organization.locations) {
      const iam = new IAMClient({
        endpoint: deployed.emulator.endpoint,
        region,
        credentials: await credentialsIn(deployed.emulator.endpoint, account),
      });
      const { Role } = await iam.send(new GetRoleCommand({ RoleName: `${MEMBER_ROLE_NAME}-${region}` }));
      iam.destroy();
      const physicalIds = {
        MemberRole: Role?.RoleName as string,
        MemberRemediationPolicy: `${MEMBER_ROLE_NAME}-remediation`,
        ForwardToCentralBusRole: `StackSet-kms-rotation-member-ForwardToCentralBusRole-${region}`,
        ForwardKeyEventsRule: `StackSet-kms-rotation-member-ForwardKeyEventsRule-${region}`,
        ForwardManagementCallsRule: `StackSet-kms-rotation-member-ForwardManagementCallsRule-${region}`,
      };
      const resolveMember = (driftMode: string) =>
        resolveStack(memberTemplate, {
          accountId: account,
          region,
          partition: 'aws',
          physicalIds,
          parameters: { ...organization.parameters, DriftMode: driftMode },
        });
      memberStacks.push({ account, region, remediate: resolveMember('remediate'), detect: resolveMember('detect') });
    }

    recorder = createCallRecorder({
      target: deployed.emulator.endpoint,
      region: REGION,
      clock: () => Date.now() + virtualOffsetMs,
    });
    // The audit's pacing reads (AWS/Usage CallCount, Service Quotas), which moto does not serve.
    const usage = kmsUsage();
    proxy = await startAwsProxy({
      target: deployed.emulator.endpoint,
      inspector: recorder,
      usage,
      gaps: [usageMetricsGap(usage), serviceQuotasGap(kmsQuotaLimits())],
    });
    // moto runs an SQS event source mapping by invoking the function in Docker, which this machine
    // lacks: its failed attempts would take the org audit's items out of sight. The test hands them over.
    const lambda = new LambdaClient({
      endpoint: deployed.emulator.endpoint,
      region: REGION,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const { EventSourceMappings = [] } = await lambda.send(new ListEventSourceMappingsCommand({}));
    for (const mapping of EventSourceMappings) {
      await lambda.send(new UpdateEventSourceMappingCommand({ UUID: mapping.UUID, Enabled: false }));
    }
    lambda.destroy();
  }, 600_000);

  afterAll(async () => {
    for (const kms of memberKms.values()) kms.destroy();
    await proxy?.stop();
    await deployed?.stop();
  });

  const memberStackIn = (account: string, region: string): MemberStack => {
    const found = memberStacks.find((m) => m.account === account && m.region === region);
    if (!found) throw new Error(`No member stack in ${account}/${region}`);
    return found;
  };
  const memberRoleArn = (account: string, region: string) =>
    `arn:aws:iam::${account}:role/${MEMBER_ROLE_NAME}-${region}`;

  /** KMS in the member account, as its own operators use it (not through the proxy: not a call of a flow). */
  const kmsIn = async (account: string, region: string): Promise<KMSClient> => {
    const key = `${account} ${region}`;
    let client = memberKms.get(key);
    if (!client) {
      client = new KMSClient({
        endpoint: deployed.emulator.endpoint,
        region,
        credentials: await credentialsIn(deployed.emulator.endpoint, account),
      });
      memberKms.set(key, client);
    }
    return client;
  };

  /**
   * Who signed each call: the central functions with their own keys; a member role's session with
   * the access key id its AssumeRole answer gave (the recorder saw it), judged in its member stack.
   */
  const callersOf = (mode: 'remediate' | 'detect'): Record<string, Caller> => {
    const functions = functionCallers(deployed.pkg, stack, central[mode]);
    const sessions: Record<string, Caller> = {};
    for (const [accessKeyId, session] of Object.entries(recorder.sessions())) {
      const memberStack = memberStacks.find((m) =>
        Object.values(m[mode].roles).some((role) => role.arn === session.roleArn),
      );
      const role = memberStack
        ? (Object.values(memberStack[mode].roles).find((r) => r.arn === session.roleArn) as ResolvedRole)
        : undefined;
      if (!memberStack || !role) continue;
      const by = session.assumedBy ? functions[session.assumedBy]?.functionName : undefined;
      sessions[accessKeyId] = { functionName: `${by ?? '?'} as ${role.name}`, role, stack: memberStack[mode] };
    }
    return { ...functions, ...sessions };
  };

  const runFlow = async (flow: string, functionName: string, event: unknown, env?: Record<string, string>) => {
    virtualOffsetMs += FLOW_SPACING_MS;
    proxy.reset();
    const fn = stack.functions[functionName];
    if (!fn) throw new Error(`The stack has no function ${functionName}`);
    const outcome = await invokeBundled({
      endpoint: proxy.endpoint,
      region: REGION,
      fn,
      event,
      ...(env ? { env } : {}),
    });
    await proxy.idle();
    return { outcome, calls: proxy.calls().map((record) => ({ flow, record }) as FlowCall) };
  };

  /**
   * Runs the flow, checks it acted in the member through the member role, evaluates every call; no
   * denial may remain.
   */
  const authorizeFlow = async (
    flow: string,
    functionName: string,
    event: unknown,
    opts: { mode?: 'detect' | 'remediate'; env?: Record<string, string>; mustCall?: string[] } = {},
  ): Promise<InvokeResult> => {
    const { outcome, calls } = await runFlow(flow, functionName, event, opts.env);
    expect(outcome.ok, `${flow} did not finish: ${JSON.stringify(outcome.ok ? outcome.result : outcome.error)}`).toBe(
      true,
    );
    const report = JSON.stringify(outcome.ok ? outcome.result : outcome.error).slice(0, 1500);
    const apis = calls.map((call) => call.record.api);
    for (const api of ['AssumeRole', ...(opts.mustCall ?? [])])
      expect(apis, `${flow} made no ${api} call; it reported ${report}`).toContain(api);
    const mode = opts.mode ?? 'remediate';
    const callers = callersOf(mode);
    const asMember = calls.filter((call) => callers[call.record.caller ?? '']?.stack !== undefined);
    expect(asMember.length, `${flow}: no call was signed by a member role's session`).toBeGreaterThan(0);
    const evaluation = await evaluateCalls(
      central[mode],
      callers,
      calls,
      recorder.tagHistory(),
      emptyEvaluation(),
      organizationView(mode),
    );
    mergeEvaluation(total, evaluation);
    expect(evaluation.evaluated, `${flow}: nothing was evaluated`).toBeGreaterThan(0);
    expect(evaluation.denials, `${flow}: denied calls\n${formatDenials(evaluation.denials)}`).toEqual([]);
    // A call on a key the recorder did not find is left out as "not authorized at all"; that is right
    // only when moto answered it NotFoundException too, not when the recorder looked in the wrong account.
    const unreadKeys = calls
      .map(({ record }) => ({ api: record.api, detail: record.detail as CallDetail | undefined }))
      .filter(({ detail }) => detail?.keyNotFound !== undefined && detail.errorType !== 'NotFoundException');
    expect(unreadKeys, `${flow}: calls on keys the recorder could not read`).toEqual([]);
    return outcome;
  };

  /** A managed key in the member, rotated on demand, and the `KMS CMK Rotation` event its account forwards. */
  const rotatedMemberKey = async (region: string, keyId: string) => {
    const kms = await kmsIn(member, region);
    const keyArn = `arn:aws:kms:${region}:${member}:key/${keyId}`;
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    const { Rotations = [] } = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
    return rotationEvent({
      keyId,
      keyArn,
      time: Rotations.at(-1)?.RotationDate ?? new Date(),
      rotationType: 'ON_DEMAND',
      account: member,
      region,
    });
  };

  /** A managed key with the default key policy (the account root: IAM policies apply), docs/organization.md. */
  const managedMemberKey = async (region: string, alias: string) =>
    emulatorKeys(await kmsIn(member, region)).createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', alias);

  /**
   * A managed key whose key policy does not delegate to IAM: it names the member role with the
   * actions the service uses, and the account's administrators (docs/organization.md, the second way).
   */
  const managedMemberKeyNamingTheRole = async (region: string, alias: string) => {
    const kms = await kmsIn(member, region);
    const policy = {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'KeyAdministrators',
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${member}:role/OrganizationAccountAccessRole` },
          Action: 'kms:*',
          Resource: '*',
        },
        {
          Sid: 'KmsRotationMemberRole',
          Effect: 'Allow',
          Principal: { AWS: memberRoleArn(member, region) },
          Action: [
            'kms:DescribeKey',
            'kms:ListResourceTags',
            'kms:GetKeyRotationStatus',
            'kms:ListKeyRotations',
            'kms:GetKeyPolicy',
            'kms:EnableKeyRotation',
            'kms:RotateKeyOnDemand',
            'kms:TagResource',
            'kms:CreateAlias',
            'kms:UpdateAlias',
            'kms:Encrypt',
            'kms:Decrypt',
          ],
          Resource: '*',
        },
      ],
    };
    const { KeyMetadata } = await kms.send(
      new CreateKeyCommand({
        Description: `key for ${alias}, its policy naming the member role`,
        Policy: JSON.stringify(policy),
        Tags: [
          { TagKey: 'kms-rotation:managed', TagValue: 'true' },
          { TagKey: 'kms-rotation:aliases', TagValue: alias },
        ],
      }),
    );
    const keyId = KeyMetadata?.KeyId as string;
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
    return keyId;
  };

  // --- onRotation: a member's rotation event, forwarded to the central bus ------------------------
  it('onRotation, a member key rotated (default key policy): every call is authorized', async () => {
    const keyId = await managedMemberKey(REGION, 'alias/org/rotated');
    await authorizeFlow('onRotation member', 'onRotation', await rotatedMemberKey(REGION, keyId), {
      mustCall: ['Encrypt', 'Decrypt', 'Publish'],
    });
  });

  it('onRotation, a member key in the other Region whose key policy names the member role: every call is authorized', async () => {
    const keyId = await managedMemberKeyNamingTheRole(OTHER_REGION, 'alias/org/named');
    await authorizeFlow(
      'onRotation member, key policy naming the role',
      'onRotation',
      await rotatedMemberKey(OTHER_REGION, keyId),
      { mustCall: ['Encrypt', 'Decrypt', 'Publish'] },
    );
  });

  // --- onKeyActivity: a member's drift ------------------------------------------------------------
  let driftKey: { keyId: string; keyArn: string } | undefined;
  const disabledRotationRecord = async () => {
    if (!driftKey) {
      const keyId = await managedMemberKey(REGION, 'alias/org/drift');
      driftKey = { keyId, keyArn: `arn:aws:kms:${REGION}:${member}:key/${keyId}` };
    }
    const kms = await kmsIn(member, REGION);
    await kms.send(new EnableKeyRotationCommand({ KeyId: driftKey.keyId }));
    await kms.send(new DisableKeyRotationCommand({ KeyId: driftKey.keyId }));
    return kmsCallRecord({
      eventName: 'DisableKeyRotation',
      requestParameters: { keyId: driftKey.keyId },
      resourceArns: [driftKey.keyArn],
      account: member,
      region: REGION,
    });
  };

  it('onKeyActivity, detect mode, a member key with rotation disabled: every call is authorized', async () => {
    await authorizeFlow('onKeyActivity member detect', 'onKeyActivity', await disabledRotationRecord(), {
      mode: 'detect',
      env: { DRIFT_MODE: 'detect' },
      mustCall: ['GetKeyRotationStatus', 'Publish'],
    });
  });

  it('onKeyActivity, remediate mode, the same drift put back in the member: every call is authorized', async () => {
    await authorizeFlow('onKeyActivity member remediate', 'onKeyActivity', await disabledRotationRecord(), {
      mustCall: ['EnableKeyRotation', 'Publish'],
    });
  });

  it('onKeyActivity, remediate mode, a declared alias deleted in the member: every call is authorized', async () => {
    const alias = 'alias/org/deleted';
    const managed = await managedMemberKey(REGION, alias);
    const kms = await kmsIn(member, REGION);
    await kms.send(new DeleteAliasCommand({ AliasName: alias }));
    await authorizeFlow(
      'onKeyActivity member remediate declared-alias-missing',
      'onKeyActivity',
      kmsCallRecord({
        eventName: 'DeleteAlias',
        requestParameters: { aliasName: alias },
        resourceArns: [`arn:aws:kms:${REGION}:${member}:${alias}`, `arn:aws:kms:${REGION}:${member}:key/${managed}`],
        account: member,
        region: REGION,
      }),
      { mustCall: ['CreateAlias'] },
    );
    expect(await emulatorKeys(kms).targetOf(alias)).toBe(managed);
  });

  it('onKeyActivity, remediate mode, a declared alias moved onto an unmanaged member key: every call is authorized', async () => {
    const alias = 'alias/org/moved';
    const managed = await managedMemberKey(REGION, alias);
    const kms = await kmsIn(member, REGION);
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Description: 'intruder' }));
    const intruder = KeyMetadata?.KeyId as string;
    await kms.send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: intruder }));
    await authorizeFlow(
      'onKeyActivity member remediate declared-alias-elsewhere',
      'onKeyActivity',
      kmsCallRecord({
        eventName: 'UpdateAlias',
        requestParameters: { aliasName: alias, targetKeyId: intruder },
        resourceArns: [`arn:aws:kms:${REGION}:${member}:${alias}`, `arn:aws:kms:${REGION}:${member}:key/${intruder}`],
        account: member,
        region: REGION,
      }),
      { mustCall: ['UpdateAlias'] },
    );
    expect(await emulatorKeys(kms).targetOf(alias)).toBe(managed);
  });

  // --- rotate {key, account, region} ------------------------------------------------------------
  it('rotate {key, account, region}, on demand: every call is authorized', async () => {
    await managedMemberKey(REGION, 'alias/org/on-demand');
    await authorizeFlow(
      'rotate member on-demand',
      'rotate',
      { key: 'alias/org/on-demand', account: member, region: REGION, strategy: 'on-demand' },
      { mustCall: ['RotateKeyOnDemand'] },
    );
  });

  it('rotate {key, account, region}, alias-swap in the other Region: every call is authorized', async () => {
    await managedMemberKey(OTHER_REGION, 'alias/org/swap');
    await authorizeFlow(
      'rotate member alias-swap',
      'rotate',
      { key: 'alias/org/swap', account: member, region: OTHER_REGION, strategy: 'alias-swap' },
      { mustCall: ['CreateKey', 'UpdateAlias', 'TagResource'] },
    );
  });

  it('rotate {key, account, region}, rollback of that alias-swap: every call is authorized', async () => {
    await authorizeFlow(
      'rotate member rollback',
      'rotate',
      { key: 'alias/org/swap', account: member, region: OTHER_REGION, action: 'rollback' },
      { mustCall: ['UpdateAlias'] },
    );
  });

  it('rotate {key, account, region}, alias-swap of an RSA signing key and its rollback, twice: every call is authorized', async () => {
    await emulatorKeys(await kmsIn(member, REGION)).createManagedKey('RSA_2048', 'SIGN_VERIFY', 'alias/org/rsa');
    const payload = { key: 'alias/org/rsa', account: member, region: REGION };
    await authorizeFlow('rotate member alias-swap RSA', 'rotate', payload, { mustCall: ['CreateKey', 'UpdateAlias'] });
    await authorizeFlow(
      'rotate member rollback RSA',
      'rotate',
      { ...payload, action: 'rollback' },
      { mustCall: ['Sign', 'Verify', 'UpdateAlias'] },
    );
    // Run again: the predecessor is managed again by then.
    await authorizeFlow(
      'rotate member rollback RSA re-run',
      'rotate',
      { ...payload, action: 'rollback' },
      { mustCall: ['Sign', 'Verify'] },
    );
  });

  it('rotate {key, account, region}, alias-swap of an HMAC key and its rollback: every call is authorized', async () => {
    await emulatorKeys(await kmsIn(member, REGION)).createManagedKey(
      'HMAC_256',
      'GENERATE_VERIFY_MAC',
      'alias/org/hmac',
    );
    const payload = { key: 'alias/org/hmac', account: member, region: REGION };
    await authorizeFlow('rotate member alias-swap HMAC', 'rotate', payload, {
      mustCall: ['CreateKey', 'UpdateAlias'],
    });
    await authorizeFlow(
      'rotate member rollback HMAC',
      'rotate',
      { ...payload, action: 'rollback' },
      { mustCall: ['GenerateMac', 'VerifyMac', 'UpdateAlias'] },
    );
  });

  // --- the audit of a member account-Region, and the organization audit ----------------------------
  it('audit {account, region} of the member: every call is authorized, the pacing reads included', async () => {
    await managedMemberKey(REGION, 'alias/org/audited');
    await authorizeFlow(
      'audit member',
      'audit',
      { account: member, region: REGION },
      { mustCall: ['ListKeys', 'DescribeKey', 'GetMetricData', 'ListServiceQuotas', 'Publish'] },
    );
  });

  it('orgAudit fans out, and orgAuditItem audits a member account-Region and combines the run: every call is authorized', async () => {
    // orgAudit acts centrally only (Organizations, its table and queue): evaluated against the central stack.
    const fanOut = await runFlow('orgAudit', 'orgAudit', {}, { ORGANIZATION_UNIT_IDS: organization.ouId });
    expect(fanOut.outcome.ok, JSON.stringify(fanOut.outcome.ok ? fanOut.outcome.result : fanOut.outcome.error)).toBe(
      true,
    );
    const evaluation = await evaluateCalls(
      central.remediate,
      callersOf('remediate'),
      fanOut.calls,
      recorder.tagHistory(),
      emptyEvaluation(),
      organizationView('remediate'),
    );
    mergeEvaluation(total, evaluation);
    expect(fanOut.calls.map((call) => call.record.api)).toEqual(
      expect.arrayContaining(['ListAccountsForParent', 'PutItem', 'SendMessageBatch']),
    );
    expect(evaluation.denials, `orgAudit: denied calls\n${formatDenials(evaluation.denials)}`).toEqual([]);
    // Each item the way Lambda's event source mapping hands it over (moto's own mapping is off: beforeAll).
    const { Messages = [] } = await deployed.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: stack.resources.OrgAuditQueue as string,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        WaitTimeSeconds: 1,
      }),
    );
    expect(Messages.map((message) => JSON.parse(message.Body ?? '{}').region).sort()).toEqual(
      [REGION, OTHER_REGION].sort(),
    );
    for (const message of Messages) {
      await authorizeFlow(
        `orgAuditItem ${JSON.parse(message.Body ?? '{}').region}`,
        'orgAuditItem',
        sqsEventOf(message),
        { mustCall: ['ListKeys', 'GetMetricData', 'UpdateItem'] },
      );
    }
  });

  // --- trust and forwarding, evaluated without a call ----------------------------------------------
  it('denies every AssumeRole the member trust and the central grant must refuse, and lets each member forward to the central bus', async () => {
    const evaluation = emptyEvaluation();
    const outcomes: string[] = [];
    const view = organizationView('remediate');
    const memberStack = memberStackIn(member, REGION);
    const memberRole = Object.values(memberStack.remediate.roles).find(
      (role) => role.arn === memberRoleArn(member, REGION),
    ) as ResolvedRole;
    /** One AssumeRole request, as evaluateCalls makes it, judged with the given identity policies. */
    const assume = async (
      what: string,
      principal: string,
      identity: ResolvedRole['policies'],
      opts: { sessionName?: string; roleArn?: string; trust?: PolicyDocument; principalAccount?: string } = {},
    ) => {
      const roleArn = opts.roleArn ?? memberRole.arn;
      const roleAccount = roleArn.split(':')[4] as string;
      const principalAccount = opts.principalAccount ?? CENTRAL;
      const request: AuthzRequest = {
        principal,
        action: 'sts:AssumeRole',
        resource: roleArn,
        resourcePolicy: opts.trust ?? (view.roleOf(roleArn)?.trustPolicy as PolicyDocument),
        context: {
          'aws:PrincipalArn': principal,
          'aws:PrincipalAccount': principalAccount,
          'aws:SecureTransport': 'true',
          'sts:RoleSessionName': opts.sessionName ?? 'kms-rotation-rotate',
          ...(view.organizationOf(roleAccount)
            ? { 'aws:ResourceOrgID': view.organizationOf(roleAccount) as string, 'aws:ResourceAccount': roleAccount }
            : {}),
        },
        what,
      };
      const denied = await evaluateRequest(request, identity, roleAccount, evaluation, what);
      outcomes.push(`${denied ? 'denied' : 'allowed'}: ${what}`);
    };
    const roleOf = (logicalId: string) => central.remediate.roles[logicalId] as ResolvedRole;
    for (const logicalId of ['OnRotationRole', 'RotateRole', 'OnKeyActivityRole', 'AuditRole']) {
      const role = roleOf(logicalId);
      await assume(`${logicalId} assumes the member role`, role.arn, role.policies);
      await assume(`${logicalId} assumes it with a session not named kms-rotation-*`, role.arn, role.policies, {
        sessionName: 'someone',
      });
    }
    const retire = roleOf('RetireRole');
    await assume('RetireRole (acts in its own account only) assumes the member role', retire.arn, [
      ...retire.policies,
      ...roleOf('RotateRole').policies.filter((policy) => policy.name.startsWith('MemberAccessPolicy/')),
    ]);
    const rotate = roleOf('RotateRole');
    await assume(
      'a role of the same name in another account assumes the member role',
      `arn:aws:iam::${OUTSIDER}:role/${rotate.name}`,
      rotate.policies,
      { principalAccount: OUTSIDER },
    );
    await assume(
      'RotateRole assumes a role of the member name in an account outside the organization',
      rotate.arn,
      rotate.policies,
      { roleArn: memberRoleArn(OUTSIDER, REGION), trust: memberRole.trustPolicy as PolicyDocument },
    );
    await assume('RotateRole assumes a role that is not a member role', rotate.arn, rotate.policies, {
      roleArn: `arn:aws:iam::${member}:role/OrganizationAccountAccessRole`,
      trust: memberRole.trustPolicy as PolicyDocument,
    });

    // The forwarding role of each member stack puts events on the central bus: its own policy and the bus's.
    const busPolicyResource = (deployed.pkg.template as CfnTemplate).Resources.OrganizationEventBusPolicy;
    const { resolve } = intrinsicResolver(deployed.pkg.template as CfnTemplate, {
      accountId: CENTRAL,
      region: REGION,
      partition: 'aws',
      physicalIds: stack.resources,
    });
    const busPolicy: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [resolve(busPolicyResource?.Properties?.Statement) as PolicyStatement],
    };
    const busArn = stack.outputs.OrganizationEventBusArn as string;
    const forwardFrom = async (what: string, forwarder: ResolvedRole, account: string) => {
      const request: AuthzRequest = {
        principal: forwarder.arn,
        action: 'events:PutEvents',
        resource: busArn,
        resourcePolicy: busPolicy,
        context: {
          'aws:PrincipalArn': forwarder.arn,
          'aws:PrincipalAccount': account,
          'aws:SecureTransport': 'true',
          ...(view.organizationOf(account) ? { 'aws:PrincipalOrgID': view.organizationOf(account) as string } : {}),
        },
        what,
      };
      const denied = await evaluateRequest(request, forwarder.policies, CENTRAL, evaluation, forwarder.logicalId);
      outcomes.push(`${denied ? 'denied' : 'allowed'}: ${what}`);
    };
    for (const m of memberStacks) {
      const forwarder = m.remediate.roles.ForwardToCentralBusRole as ResolvedRole;
      await forwardFrom(
        `the forwarding role of ${m.account}/${m.region} puts events on the central bus`,
        forwarder,
        m.account,
      );
    }
    const someForwarder = memberStacks[0]?.remediate.roles.ForwardToCentralBusRole as ResolvedRole;
    await forwardFrom(
      'a forwarding role of an account outside the organization puts events on the central bus',
      { ...someForwarder, arn: someForwarder.arn.replace(member, OUTSIDER) },
      OUTSIDER,
    );
    // Counted for the least-privilege check: the forwarding role's only grant is used here.
    mergeEvaluation(total, evaluation);

    expect(outcomes).toEqual([
      ...['OnRotationRole', 'RotateRole', 'OnKeyActivityRole', 'AuditRole'].flatMap((logicalId) => [
        `allowed: ${logicalId} assumes the member role`,
        `denied: ${logicalId} assumes it with a session not named kms-rotation-*`,
      ]),
      'denied: RetireRole (acts in its own account only) assumes the member role',
      'denied: a role of the same name in another account assumes the member role',
      'denied: RotateRole assumes a role of the member name in an account outside the organization',
      'denied: RotateRole assumes a role that is not a member role',
      ...memberStacks.map(
        (m) => `allowed: the forwarding role of ${m.account}/${m.region} puts events on the central bus`,
      ),
      'denied: a forwarding role of an account outside the organization puts events on the central bus',
    ]);
  });

  // --- least privilege, measured ----------------------------------------------------------------
  it('uses every action the member role, the central organization grants and the org audit roles give, or explains it (EXPLAINED_ORGANIZATION_GRANTS)', () => {
    const memberStack = memberStackIn(member, REGION).remediate;
    const memberPolicies = Object.values(memberStack.roles).flatMap((role) => role.policies);
    const centralPolicies = [
      ...new Map(
        Object.values(central.remediate.roles)
          .flatMap((role) => role.policies)
          .filter((policy) => /^(MemberAccessPolicy|OrgAuditRole|OrgAuditItemRole)\//.test(policy.name))
          .map((policy) => [policy.name, policy]),
      ).values(),
    ];
    // The org audit's two roles exist in organization mode only: held to least privilege here.
    expect(centralPolicies.map((policy) => policy.name.split('/')[0]).sort()).toEqual([
      'MemberAccessPolicy',
      'OrgAuditItemRole',
      'OrgAuditRole',
    ]);
    expect(memberPolicies.map((policy) => policy.name).sort()).toEqual([
      'ForwardToCentralBusRole/put-events-on-the-central-bus',
      'MemberRemediationPolicy/kms-rotation-member-remediation',
      'MemberRole/kms-rotation-member',
    ]);
    const { unused, stale } = leastPrivilege(
      [...memberPolicies, ...centralPolicies],
      total,
      EXPLAINED_ORGANIZATION_GRANTS,
    );
    expect(total.evaluated, 'the flows above evaluated nothing').toBeGreaterThan(0);
    expect(stale, 'explained grants that no policy grants any more').toEqual([]);
    expect(
      unused,
      `unused grants (use them, drop them, or explain them in explained-grants.ts):\n${unused.join('\n')}`,
    ).toEqual([]);
  });
});
