// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub strings, as templates hold them
import { describe, expect, it } from 'vitest';
import {
  type Caller,
  emptyEvaluation,
  evaluateCalls,
  evaluateRequest,
  requestsForCall,
} from '../../../scripts/lib/authorization/evaluate';
import {
  type AuthzRequest,
  aliasAuthorization,
  createKeyTagging,
  encryptedTopicPublish,
  lockoutSafetyCheck,
  settledTags,
  topicKeyUsable,
} from '../../../scripts/lib/authorization/kms-rules';
import {
  actionOf,
  assumedCredentialsOf,
  type CallDetail,
  type KeySnapshot,
} from '../../../scripts/lib/authorization/recorder';
import {
  type CfnTemplate,
  defaultKeyPolicy,
  intrinsicResolver,
  type PolicyDocument,
  type ResolvedStack,
  resolveStack,
} from '../../../scripts/lib/authorization/template';

const ACCOUNT = '123456789012';
const CTX = {
  accountId: ACCOUNT,
  region: 'us-east-1',
  partition: 'aws',
  physicalIds: {
    AppRole: 'stack-AppRole-ABC',
    AppKey: '1234abcd-12ab-34cd-56ef-1234567890ab',
    AppLogGroup: '/aws/lambda/app',
    AppLambdaFunction: 'stack-app',
    Topic: `arn:aws:sns:us-east-1:${ACCOUNT}:topic`,
    Queue: `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/dlq`,
    Rule: 'stack-rule',
  },
};
const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/stack-AppRole-ABC`;

const policy = (...Statement: Record<string, unknown>[]): PolicyDocument => ({ Version: '2012-10-17', Statement });

const TEMPLATE: CfnTemplate = {
  Parameters: { DriftMode: { Type: 'String', Default: 'detect' } },
  Conditions: { Remediates: { 'Fn::Equals': [{ Ref: 'DriftMode' }, 'remediate'] } },
  Resources: {
    AppLogGroup: { Type: 'AWS::Logs::LogGroup', Properties: {} },
    AppKey: {
      Type: 'AWS::KMS::Key',
      Properties: {
        KeyPolicy: policy({
          Effect: 'Allow',
          Principal: { AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${AWS::AccountId}:root' } },
          Action: 'kms:*',
          Resource: '*',
        }),
        Tags: [{ Key: 'kms-rotation:managed', Value: 'true' }],
      },
    },
    AppRole: {
      Type: 'AWS::IAM::Role',
      Properties: {
        Policies: [
          {
            PolicyName: 'app',
            PolicyDocument: policy(
              {
                Sid: 'Logs',
                Effect: 'Allow',
                Action: 'logs:PutLogEvents',
                Resource: { 'Fn::Sub': '${AppLogGroup.Arn}' },
              },
              {
                Sid: 'Use',
                Effect: 'Allow',
                Action: ['kms:Decrypt'],
                Resource: { 'Fn::GetAtt': ['AppKey', 'Arn'] },
              },
              {
                Sid: 'Joined',
                Effect: 'Allow',
                Action: 'sns:Publish',
                Resource: { 'Fn::Join': ['', [{ Ref: 'Topic' }]] },
              },
              {
                Sid: 'OwnProduct',
                Effect: 'Allow',
                Action: 'securityhub:BatchImportFindings',
                Resource: {
                  'Fn::Sub':
                    'arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:product/${AWS::AccountId}/default',
                },
              },
            ),
          },
        ],
      },
    },
    Remediation: {
      Type: 'AWS::IAM::Policy',
      Condition: 'Remediates',
      Properties: {
        PolicyName: 'remediation',
        Roles: [{ Ref: 'AppRole' }],
        PolicyDocument: policy({
          Sid: 'Fix',
          Effect: 'Allow',
          Action: 'kms:EnableKeyRotation',
          Resource: { 'Fn::If': ['Remediates', { 'Fn::GetAtt': 'AppKey.Arn' }, { Ref: 'AWS::NoValue' }] },
        }),
      },
    },
    AppLambdaFunction: {
      Type: 'AWS::Lambda::Function',
      Properties: { Role: { 'Fn::GetAtt': ['AppRole', 'Arn'] } },
    },
    Topic: { Type: 'AWS::SNS::Topic', Properties: { KmsMasterKeyId: { Ref: 'AppKey' } } },
    Queue: { Type: 'AWS::SQS::Queue', Properties: {} },
    QueuePolicy: {
      Type: 'AWS::SQS::QueuePolicy',
      Properties: {
        Queues: [{ Ref: 'Queue' }],
        PolicyDocument: policy({
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Resource: { 'Fn::GetAtt': ['Queue', 'Arn'] },
        }),
      },
    },
    Rule: {
      Type: 'AWS::Events::Rule',
      Properties: {
        Targets: [
          {
            Arn: { 'Fn::GetAtt': ['AppLambdaFunction', 'Arn'] },
            DeadLetterConfig: { Arn: { 'Fn::GetAtt': ['Queue', 'Arn'] } },
          },
        ],
      },
    },
    Permission: {
      Type: 'AWS::Lambda::Permission',
      Properties: {
        FunctionName: { 'Fn::GetAtt': ['AppLambdaFunction', 'Arn'] },
        Action: 'lambda:InvokeFunction',
        Principal: 'events.amazonaws.com',
        SourceArn: { 'Fn::GetAtt': ['Rule', 'Arn'] },
      },
    },
    Alarm: {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: { AlarmName: 'stack-alarm', AlarmActions: [{ Ref: 'Topic' }] },
    },
  },
};

describe('Function: intrinsicResolver', () => {
  const { resolve } = intrinsicResolver(TEMPLATE, CTX);

  it('resolves Ref, GetAtt (both forms), Sub (both forms), Join, If, Equals, Not and pseudo parameters', () => {
    expect(resolve({ Ref: 'AppRole' })).toBe('stack-AppRole-ABC');
    expect(resolve({ 'Fn::GetAtt': ['AppRole', 'Arn'] })).toBe(ROLE_ARN);
    expect(resolve({ 'Fn::GetAtt': 'AppKey.Arn' })).toBe(KEY_ARN);
    expect(resolve({ 'Fn::Sub': '${AppLogGroup.Arn}' })).toBe(
      `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/lambda/app:*`,
    );
    expect(resolve({ 'Fn::Sub': ['${A}-${AWS::Region}', { A: { Ref: 'AWS::AccountId' } }] })).toBe(
      `${ACCOUNT}-us-east-1`,
    );
    expect(resolve({ 'Fn::Join': [',', ['a', { Ref: 'AWS::Partition' }]] })).toBe('a,aws');
    expect(resolve({ 'Fn::If': ['Remediates', 'yes', 'no'] })).toBe('no');
    expect(resolve({ 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'DriftMode' }, 'detect'] }] })).toBe(false);
    expect(resolve({ 'Fn::GetAtt': ['Queue', 'Arn'] })).toBe(`arn:aws:sqs:us-east-1:${ACCOUNT}:dlq`);
    expect(resolve({ Ref: 'Alarm' })).toBe('stack-alarm');
  });

  it('takes parameter values given for the stack over the defaults', () => {
    const { resolve: withRemediate } = intrinsicResolver(TEMPLATE, { ...CTX, parameters: { DriftMode: 'remediate' } });
    expect(withRemediate({ 'Fn::If': ['Remediates', 'yes', 'no'] })).toBe('yes');
  });

  it('refuses an intrinsic it does not know and a resource the template lacks', () => {
    expect(() => resolve({ 'Fn::Transform': {} })).toThrow(/Unsupported intrinsic/);
    expect(() => resolve({ Ref: 'Nothing' })).toThrow(/No resource Nothing/);
  });
});

describe('Function: resolveStack', () => {
  it('attaches an AWS::IAM::Policy only when its Condition holds', () => {
    const detect = resolveStack(TEMPLATE, CTX);
    const remediate = resolveStack(TEMPLATE, { ...CTX, parameters: { DriftMode: 'remediate' } });
    expect(detect.roles.AppRole?.policies.map((entry) => entry.name)).toEqual(['AppRole/app']);
    expect(remediate.roles.AppRole?.policies.map((entry) => entry.name)).toEqual([
      'AppRole/app',
      'Remediation/remediation',
    ]);
    expect(JSON.stringify(remediate.roles.AppRole?.policies[1]?.policy)).toContain(KEY_ARN);
  });

  it('resolves key policies, the topic key, queue policy, Lambda permissions, rules and alarms', () => {
    const resolved = resolveStack(TEMPLATE, CTX);
    expect(resolved.keys['1234abcd-12ab-34cd-56ef-1234567890ab']).toMatchObject({
      arn: KEY_ARN,
      tags: { 'kms-rotation:managed': 'true' },
      policy: { Statement: [{ Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` } }] },
    });
    expect(resolved.functions.AppLambdaFunction).toMatchObject({ roleLogicalId: 'AppRole', name: 'stack-app' });
    expect(resolved.topics[CTX.physicalIds.Topic]?.kmsMasterKeyId).toBe('1234abcd-12ab-34cd-56ef-1234567890ab');
    expect(resolved.queues[`arn:aws:sqs:us-east-1:${ACCOUNT}:dlq`]?.policy).toBeDefined();
    const functionArn = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:stack-app`;
    expect(resolved.lambdaPolicies[functionArn]?.Statement).toEqual([
      expect.objectContaining({
        Principal: { Service: 'events.amazonaws.com' },
        Condition: { ArnLike: { 'aws:SourceArn': `arn:aws:events:us-east-1:${ACCOUNT}:rule/stack-rule` } },
      }),
    ]);
    expect(resolved.rules[0]).toMatchObject({
      targets: [functionArn],
      deadLetterQueues: [`arn:aws:sqs:us-east-1:${ACCOUNT}:dlq`],
    });
    expect(resolved.alarms).toEqual([
      {
        logicalId: 'Alarm',
        name: 'stack-alarm',
        arn: `arn:aws:cloudwatch:us-east-1:${ACCOUNT}:alarm:stack-alarm`,
        actions: [CTX.physicalIds.Topic],
      },
    ]);
  });
});

describe('Function: resolveStack, rules on an event bus of the stack', () => {
  it('gives a rule on a custom bus the ARN rule/<bus>/<rule>, and the bus its name and ARN', () => {
    const template = {
      Resources: {
        Bus: { Type: 'AWS::Events::EventBus', Properties: { Name: 'stack-organization' } },
        Rule: {
          Type: 'AWS::Events::Rule',
          Properties: { EventBusName: { 'Fn::GetAtt': ['Bus', 'Name'] }, Targets: [] },
        },
        DefaultRule: { Type: 'AWS::Events::Rule', Properties: { Targets: [] } },
      },
    };
    const ctx = {
      accountId: ACCOUNT,
      region: 'us-east-1',
      partition: 'aws',
      physicalIds: { Rule: 'stack-org-rule', DefaultRule: 'stack-rule' },
    };
    const { resolve } = intrinsicResolver(template, ctx);
    expect(resolve({ 'Fn::GetAtt': ['Rule', 'Arn'] })).toBe(
      `arn:aws:events:us-east-1:${ACCOUNT}:rule/stack-organization/stack-org-rule`,
    );
    expect(resolve({ 'Fn::GetAtt': ['DefaultRule', 'Arn'] })).toBe(
      `arn:aws:events:us-east-1:${ACCOUNT}:rule/stack-rule`,
    );
    expect(resolve({ 'Fn::GetAtt': ['Bus', 'Arn'] })).toBe(
      `arn:aws:events:us-east-1:${ACCOUNT}:event-bus/stack-organization`,
    );
  });
});

describe('Function: settledTags (ABAC delay)', () => {
  const now = 1_000_000_000;
  it('takes tags the service wrote less than five minutes ago back to what they were', () => {
    const tags = { managed: 'false', 'rotation-id': 'r1', team: 'a' };
    const writes = [
      { tagKey: 'managed', previous: 'true', value: 'false', at: now - 10_000 },
      { tagKey: 'rotation-id', value: 'r1', at: now - 10_000 },
      { tagKey: 'team', previous: 'old', value: 'a', at: now - 301_000 },
    ];
    expect(settledTags(tags, writes, now)).toEqual({ managed: 'true', team: 'a' });
  });

  it('keeps tags set up before the flow and ignores writes after the call', () => {
    expect(settledTags({ managed: 'true' }, [{ tagKey: 'x', value: 'y', at: now + 1 }], now)).toEqual({
      managed: 'true',
    });
  });
});

const ROOT_POLICY = defaultKeyPolicy({ partition: 'aws', accountId: ACCOUNT });
const ROLE_ONLY_POLICY = policy({
  Effect: 'Allow',
  Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/other` },
  Action: 'kms:*',
  Resource: '*',
});
const identity = (...statements: Record<string, unknown>[]) => [{ name: 'AppRole/app', policy: policy(...statements) }];

describe('Function: evaluateRequest (iam-simulate with KMS key-policy trust)', () => {
  const decrypt = (resourcePolicy: PolicyDocument) => ({
    principal: ROLE_ARN,
    action: 'kms:Decrypt',
    resource: KEY_ARN,
    resourcePolicy,
    context: {},
    what: 'Decrypt',
  });
  const allowDecrypt = identity({ Effect: 'Allow', Action: 'kms:Decrypt', Resource: '*' });

  it('allows a same-account call the IAM policy allows when the key policy delegates to the account', async () => {
    expect(
      await evaluateRequest(decrypt(ROOT_POLICY), allowDecrypt, ACCOUNT, emptyEvaluation(), 'AppRole'),
    ).toBeUndefined();
  });

  it('denies it when the key policy does not delegate to IAM: an IAM Allow alone is not enough', async () => {
    const reason = await evaluateRequest(
      decrypt(ROLE_ONLY_POLICY),
      allowDecrypt,
      ACCOUNT,
      emptyEvaluation(),
      'AppRole',
    );
    expect(reason).toMatch(/key policy allows it neither to AppRole nor to the account root.*IAM alone would allow it/);
  });

  it('allows a key policy naming the role even without an IAM Allow', async () => {
    const namesRole = policy({ Effect: 'Allow', Principal: { AWS: ROLE_ARN }, Action: 'kms:Decrypt', Resource: '*' });
    expect(await evaluateRequest(decrypt(namesRole), [], ACCOUNT, emptyEvaluation(), 'AppRole')).toBeUndefined();
  });

  it('evaluates an action whose resource types are all optional on `*` (GetMetricData of classic metrics): allowed only by a grant on `*`', async () => {
    const metrics = {
      principal: ROLE_ARN,
      action: 'cloudwatch:GetMetricData',
      resource: '*',
      context: {},
      what: 'GetMetricData',
    };
    const evaluation = emptyEvaluation();

    expect(
      await evaluateRequest(
        metrics,
        identity({ Effect: 'Allow', Action: 'cloudwatch:GetMetricData', Resource: '*' }),
        ACCOUNT,
        evaluation,
        'AppRole',
      ),
    ).toBeUndefined();
    expect(evaluation.grantsUsed.get('AppRole/app#1')).toEqual(new Set(['cloudwatch:getmetricdata']));
    expect(await evaluateRequest(metrics, allowDecrypt, ACCOUNT, emptyEvaluation(), 'AppRole')).toContain(
      "no statement of AppRole's policies allows cloudwatch:GetMetricData",
    );
    // A grant on datasets alone does not reach classic metrics.
    expect(
      await evaluateRequest(
        metrics,
        identity({
          Effect: 'Allow',
          Action: 'cloudwatch:GetMetricData',
          Resource: `arn:aws:cloudwatch:us-east-1:${ACCOUNT}:dataset/*`,
        }),
        ACCOUNT,
        emptyEvaluation(),
        'AppRole',
      ),
    ).toBeDefined();
  });

  it('names what is missing and records which statement granted what', async () => {
    const evaluation = emptyEvaluation();
    const reason = await evaluateRequest(
      { ...decrypt(ROOT_POLICY), action: 'kms:Encrypt' },
      allowDecrypt,
      ACCOUNT,
      evaluation,
      'AppRole',
    );
    expect(reason).toContain("no statement of AppRole's policies allows kms:Encrypt");
    await evaluateRequest(decrypt(ROOT_POLICY), allowDecrypt, ACCOUNT, evaluation, 'AppRole');
    expect(evaluation.grantsUsed.get('AppRole/app#1')).toEqual(new Set(['kms:decrypt']));
  });

  it('matches a condition on an encryption-context key with colons (aws:sns:topicArn) only for its value', async () => {
    const topic = 'arn:aws:sns:us-east-1:123456789012:kms-rotation-prod-notifications';
    const viaTopic = identity({
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: '*',
      Condition: { StringEquals: { 'kms:EncryptionContext:aws:sns:topicArn': topic } },
    });
    const withContext = (value: string) => ({
      ...decrypt(ROOT_POLICY),
      context: { 'kms:EncryptionContext:aws:sns:topicArn': value, 'kms:EncryptionContextKeys': ['aws:sns:topicArn'] },
    });

    expect(await evaluateRequest(withContext(topic), viaTopic, ACCOUNT, emptyEvaluation(), 'AppRole')).toBeUndefined();
    expect(
      await evaluateRequest(withContext(`${topic}-other`), viaTopic, ACCOUNT, emptyEvaluation(), 'AppRole'),
    ).toContain("no statement of AppRole's policies allows kms:Decrypt");
    expect(await evaluateRequest(decrypt(ROOT_POLICY), viaTopic, ACCOUNT, emptyEvaluation(), 'AppRole')).toContain(
      "no statement of AppRole's policies allows kms:Decrypt",
    );
  });
});

describe('KMS rules', () => {
  const base = { 'aws:PrincipalArn': ROLE_ARN };
  const key = { arn: KEY_ARN, policy: ROOT_POLICY, tags: { 'kms-rotation:managed': 'true' } };

  it('lockout safety check: CreateKey with a Policy and no bypass needs PutKeyPolicy under that policy', async () => {
    const [check] = lockoutSafetyCheck({
      principal: ROLE_ARN,
      newKeyArn: KEY_ARN,
      policy: ROOT_POLICY,
      bypass: false,
      base,
    });
    expect(check).toMatchObject({ action: 'kms:PutKeyPolicy', rule: 'lockout-safety-check' });
    const createOnly = identity({ Effect: 'Allow', Action: 'kms:CreateKey', Resource: '*' });
    expect(await evaluateRequest(check as never, createOnly, ACCOUNT, emptyEvaluation(), 'AppRole')).toMatch(
      /lockout-safety-check/,
    );
    expect(
      lockoutSafetyCheck({ principal: ROLE_ARN, newKeyArn: KEY_ARN, policy: ROOT_POLICY, bypass: true, base }),
    ).toEqual([]);
    expect(
      lockoutSafetyCheck({ principal: ROLE_ARN, newKeyArn: KEY_ARN, policy: undefined, bypass: false, base }),
    ).toEqual([]);
  });

  it('CreateKey with Tags needs kms:TagResource with the request tags', () => {
    const [check] = createKeyTagging({
      principal: ROLE_ARN,
      tags: { a: 'b' },
      newKeyArn: KEY_ARN,
      policy: ROOT_POLICY,
      base,
    });
    expect(check?.context).toMatchObject({ 'aws:RequestTag/a': 'b', 'aws:TagKeys': ['a'] });
    expect(createKeyTagging({ principal: ROLE_ARN, tags: {}, newKeyArn: KEY_ARN, policy: ROOT_POLICY, base })).toEqual(
      [],
    );
  });

  it('UpdateAlias is authorized on the alias, the key it points at now and the new key', () => {
    const requests = aliasAuthorization({
      principal: ROLE_ARN,
      api: 'UpdateAlias',
      aliasArn: `arn:aws:kms:us-east-1:${ACCOUNT}:alias/app`,
      newKey: key,
      currentKey: { ...key, arn: `${KEY_ARN}-current`, tags: {} },
      base,
    });
    expect(requests.map((request) => request.resource)).toEqual([
      `arn:aws:kms:us-east-1:${ACCOUNT}:alias/app`,
      `${KEY_ARN}-current`,
      KEY_ARN,
    ]);
    expect(requests[2]?.context).toMatchObject({ 'aws:ResourceTag/kms-rotation:managed': 'true' });
  });

  it('publishing to an encrypted topic: GenerateDataKey and Decrypt via SNS; a service principal with its source', () => {
    const viaSns = encryptedTopicPublish({ principal: ROLE_ARN, topicArn: 't', key, region: 'us-east-1', base });
    expect(viaSns.map((request) => [request.action, request.context['kms:ViaService']])).toEqual([
      ['kms:GenerateDataKey', 'sns.us-east-1.amazonaws.com'],
      ['kms:Decrypt', 'sns.us-east-1.amazonaws.com'],
    ]);
    const alarm = encryptedTopicPublish({
      principal: 'cloudwatch.amazonaws.com',
      topicArn: 't',
      key,
      region: 'us-east-1',
      base: {},
      source: { arn: 'arn:alarm', account: ACCOUNT },
    });
    expect(alarm[0]?.context).toMatchObject({ 'aws:SourceArn': 'arn:alarm', 'aws:SourceAccount': ACCOUNT });
    expect(alarm[0]?.context['kms:ViaService']).toBeUndefined();
    expect(topicKeyUsable('Enabled')).toBeUndefined();
    expect(topicKeyUsable('Disabled')).toMatch(/KMSDisabledException/);
  });
});

describe('Function: requestsForCall and evaluateCalls', () => {
  const resolved: ResolvedStack = resolveStack(TEMPLATE, CTX);
  const caller: Caller = { functionName: 'app', role: resolved.roles.AppRole as Caller['role'] };
  const snapshot = (tags: Record<string, string>): KeySnapshot => ({
    keyId: 'aaaa0000-0000-4000-8000-000000000001',
    arn: `arn:aws:kms:us-east-1:${ACCOUNT}:key/aaaa0000-0000-4000-8000-000000000001`,
    state: 'Enabled',
    spec: 'SYMMETRIC_DEFAULT',
    usage: 'ENCRYPT_DECRYPT',
    origin: 'AWS_KMS',
    manager: 'CUSTOMER',
    tags,
    policy: ROOT_POLICY,
  });

  it('CreateKey with Tags and a Policy adds the tagging and lockout requests', () => {
    const detail: CallDetail = {
      at: 0,
      action: 'kms:CreateKey',
      params: { Tags: [{ TagKey: 'a', TagValue: 'b' }], Policy: JSON.stringify(ROOT_POLICY) },
      created: { keyId: 'k', arn: KEY_ARN },
    };
    const { requests } = requestsForCall(resolved, caller, detail, {});
    expect(requests.map((request) => `${request.action}:${request.rule ?? ''}`)).toEqual([
      'kms:CreateKey:',
      'kms:TagResource:create-key-tags',
      'kms:PutKeyPolicy:lockout-safety-check',
    ]);
  });

  it('authorizes an SQS batch call as its single-message action, on the queue its URL names', () => {
    const { requests } = requestsForCall(
      resolved,
      caller,
      {
        at: 0,
        action: 'sqs:SendMessageBatch',
        params: { QueueUrl: `http://127.0.0.1:5000/${ACCOUNT}/kms-rotation-dev-org-audit` },
      },
      {},
    );
    expect(requests.map((request) => [request.action, request.resource, request.what])).toEqual([
      ['sqs:SendMessage', `arn:aws:sqs:us-east-1:${ACCOUNT}:kms-rotation-dev-org-audit`, 'SendMessageBatch'],
    ]);
  });

  it('authorizes each item of a DynamoDB TransactWriteItems as its own action on its own table', () => {
    const { requests } = requestsForCall(
      resolved,
      caller,
      {
        at: 0,
        action: 'dynamodb:TransactWriteItems',
        params: {
          TransactItems: [
            { Put: { TableName: 'runs' } },
            { Update: { TableName: 'runs' } },
            { ConditionCheck: { TableName: 'other' } },
          ],
        },
      },
      {},
    );
    expect(requests.map((request) => [request.action, request.resource])).toEqual([
      ['dynamodb:PutItem', `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/runs`],
      ['dynamodb:UpdateItem', `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/runs`],
      ['dynamodb:ConditionCheckItem', `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/other`],
    ]);
  });

  it('ScheduleKeyDeletion carries its window as kms:ScheduleKeyDeletionPendingWindowInDays, and none when the request names none', () => {
    const key = snapshot({});
    const [withWindow] = requestsForCall(
      resolved,
      caller,
      { at: 0, action: 'kms:ScheduleKeyDeletion', params: { KeyId: key.keyId, PendingWindowInDays: 30 }, key },
      {},
    ).requests;
    expect(withWindow?.context['kms:ScheduleKeyDeletionPendingWindowInDays']).toBe('30');
    const [withoutWindow] = requestsForCall(
      resolved,
      caller,
      { at: 0, action: 'kms:ScheduleKeyDeletion', params: { KeyId: key.keyId }, key },
      {},
    ).requests;
    expect(withoutWindow?.context).not.toHaveProperty('kms:ScheduleKeyDeletionPendingWindowInDays');
  });

  it('a call on a key uses its settled tags and the key policy; the stack key uses the template policy', () => {
    const key = snapshot({ m: 'x' });
    const { requests } = requestsForCall(
      resolved,
      caller,
      { at: 100_000, action: 'kms:Decrypt', params: { KeyId: key.keyId }, key },
      { [key.keyId]: [{ tagKey: 'm', value: 'x', at: 90_000 }] },
    );
    expect(requests[0]?.context['aws:ResourceTag/m']).toBeUndefined();
    const stackKey = {
      ...snapshot({}),
      keyId: '1234abcd-12ab-34cd-56ef-1234567890ab',
      arn: KEY_ARN,
      policy: ROLE_ONLY_POLICY,
    };
    const [onStackKey] = requestsForCall(
      resolved,
      caller,
      { at: 0, action: 'kms:Decrypt', params: {}, key: stackKey },
      {},
    ).requests;
    expect(onStackKey?.resourcePolicy).toEqual(resolved.keys['1234abcd-12ab-34cd-56ef-1234567890ab']?.policy);
  });

  it('says when only tags written less than five minutes before would allow a call (ABAC delay)', async () => {
    const key = snapshot({ managed: 'true' });
    const abacCaller: Caller = {
      functionName: 'app',
      role: {
        ...caller.role,
        policies: identity({
          Effect: 'Allow',
          Action: 'kms:Sign',
          Resource: '*',
          Condition: { StringEquals: { 'aws:ResourceTag/managed': 'true' } },
        }),
      },
    };
    const call = () => ({
      flow: 'abac',
      record: {
        api: 'Sign',
        startedAt: 0,
        endedAt: 0,
        outcome: 'forwarded' as const,
        caller: 'AKIAAPP',
        detail: { at: 1_000_000, action: 'kms:Sign', params: {}, key } satisfies CallDetail,
      },
    });
    const fresh = await evaluateCalls(resolved, { AKIAAPP: abacCaller }, [call()], {
      [key.keyId]: [{ tagKey: 'managed', value: 'true', at: 1_000_000 - 5_000 }],
    });
    expect(fresh.denials.map((denial) => denial.reason)).toEqual([
      expect.stringMatching(/^\[abac-delay\] allowed only through tags the service wrote .*\(managed\)/),
    ]);
    const settled = await evaluateCalls(resolved, { AKIAAPP: abacCaller }, [call()], {
      [key.keyId]: [{ tagKey: 'managed', value: 'true', at: 1_000_000 - 301_000 }],
    });
    expect(settled.denials).toEqual([]);
  });

  it('a call on a key that does not exist is not authorized at all (NotFoundException comes first)', () => {
    const result = requestsForCall(
      resolved,
      caller,
      { at: 0, action: 'kms:DescribeKey', params: {}, keyNotFound: 'alias/x' },
      {},
    );
    expect(result.skip).toContain('alias/x');
    expect(result.requests).toEqual([]);
  });

  it('lists each denied call with its flow, function, call and reason; an unknown caller is a denial', async () => {
    const call = (detail: CallDetail, callerKey = 'AKIAAPP') => ({
      flow: 'flow-1',
      record: {
        api: detail.action.split(':')[1] as string,
        startedAt: 0,
        endedAt: 0,
        outcome: 'forwarded' as const,
        caller: callerKey,
        detail,
      },
    });
    const evaluation = await evaluateCalls(
      resolved,
      { AKIAAPP: caller },
      [
        call({
          at: 0,
          action: 'kms:Decrypt',
          params: {},
          key: { ...snapshot({}), arn: KEY_ARN, keyId: '1234abcd-12ab-34cd-56ef-1234567890ab' },
        }),
        call({ at: 0, action: 'kms:Encrypt', params: {}, key: snapshot({}) }),
        call({
          at: 0,
          action: 'sns:Publish',
          params: { TopicArn: CTX.physicalIds.Topic },
          topicKey: { ...snapshot({}), state: 'Disabled' },
        }),
        call({ at: 0, action: 'kms:ListKeys', params: {} }, 'AKIASOMEONE'),
      ],
      {},
    );
    const lines = evaluation.denials.map(
      (denial) => `${denial.flow}|${denial.functionName}|${denial.action}|${denial.reason}`,
    );
    expect(lines).toEqual([
      expect.stringMatching(/^flow-1\|app\|kms:Encrypt\|no statement of AppRole's policies allows kms:Encrypt/),
      expect.stringMatching(/^flow-1\|app\|sns:Publish\|\[encrypted-topic-publish\] the topic's key is Disabled/),
      expect.stringMatching(/^flow-1\|app\|kms:GenerateDataKey\|\[encrypted-topic-publish\]/),
      expect.stringMatching(/^flow-1\|app\|kms:Decrypt\|\[encrypted-topic-publish\]/),
      expect.stringMatching(/^flow-1\|\?\|kms:ListKeys\|signed by AKIASOMEONE, which is no function of the stack/),
    ]);
  });
});

describe('Security Hub calls', () => {
  const resolved: ResolvedStack = resolveStack(TEMPLATE, CTX);
  const caller: Caller = { functionName: 'app', role: resolved.roles.AppRole as Caller['role'] };
  const ownProduct = `arn:aws:securityhub:us-east-1:${ACCOUNT}:product/${ACCOUNT}/default`;
  const importOf = (...findings: { ProductArn: string; AwsAccountId: string }[]): CallDetail => ({
    at: 0,
    action: 'securityhub:BatchImportFindings',
    params: { Findings: findings.map((finding, index) => ({ Id: `f-${index}`, ...finding })) },
  });

  it('BatchImportFindings is one request per product and account; GetFindings is on the Region hub', () => {
    const { requests, refusals } = requestsForCall(
      resolved,
      caller,
      importOf({ ProductArn: ownProduct, AwsAccountId: ACCOUNT }, { ProductArn: ownProduct, AwsAccountId: ACCOUNT }),
      {},
    );
    expect(refusals).toEqual([]);
    expect(
      requests.map((request) => [request.action, request.resource, request.context['securityhub:TargetAccount']]),
    ).toEqual([['securityhub:BatchImportFindings', ownProduct, ACCOUNT]]);
    const [read] = requestsForCall(
      resolved,
      caller,
      { at: 0, action: 'securityhub:GetFindings', params: {} },
      {},
    ).requests;
    expect(read?.resource).toBe(`arn:aws:securityhub:us-east-1:${ACCOUNT}:hub/default`);
  });

  it('refuses a finding of another account sent to a default product, whatever the policies', () => {
    const other = '210987654321';
    const { refusals } = requestsForCall(
      resolved,
      caller,
      importOf(
        { ProductArn: ownProduct, AwsAccountId: other },
        { ProductArn: `arn:aws:securityhub:us-east-1:${other}:product/${other}/default`, AwsAccountId: other },
      ),
      {},
    );
    expect(refusals.map((refusal) => refusal.reason)).toEqual([
      expect.stringMatching(
        /^\[default-product\] finding f-0 of account 210987654321 to the default product of 123456789012/,
      ),
      expect.stringMatching(
        /^\[default-product\] finding f-1 of account 210987654321 to the default product of 210987654321/,
      ),
    ]);
  });

  it('evaluates imports against the role policy: its own product allowed, another product or GetFindings without a grant denied', async () => {
    const call = (detail: CallDetail) => ({
      flow: 'hub',
      record: { api: 'X', startedAt: 0, endedAt: 0, outcome: 'forwarded' as const, caller: 'AKIAAPP', detail },
    });
    const evaluation = await evaluateCalls(
      resolved,
      { AKIAAPP: caller },
      [
        call(importOf({ ProductArn: ownProduct, AwsAccountId: ACCOUNT })),
        call(importOf({ ProductArn: `arn:aws:securityhub:us-east-1::product/aws/guardduty`, AwsAccountId: ACCOUNT })),
        call({ at: 0, action: 'securityhub:GetFindings', params: {} }),
      ],
      {},
    );
    expect(evaluation.evaluated).toBe(3);
    expect(evaluation.denials.map((denial) => `${denial.action} ${denial.resource}`)).toEqual([
      'securityhub:BatchImportFindings arn:aws:securityhub:us-east-1::product/aws/guardduty',
      `securityhub:GetFindings arn:aws:securityhub:us-east-1:${ACCOUNT}:hub/default`,
    ]);
  });
});

describe('S3 calls', () => {
  const BUCKET = 'stack-reports-abc';
  const template: CfnTemplate = {
    ...TEMPLATE,
    Resources: {
      ...TEMPLATE.Resources,
      Reports: { Type: 'AWS::S3::Bucket', Properties: {} },
      ReportsPolicy: {
        Type: 'AWS::S3::BucketPolicy',
        Properties: {
          Bucket: { Ref: 'Reports' },
          PolicyDocument: policy({
            Sid: 'TlsOnly',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:*',
            Resource: [{ 'Fn::GetAtt': ['Reports', 'Arn'] }, { 'Fn::Sub': '${Reports.Arn}/*' }],
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        },
      },
      Writes: {
        Type: 'AWS::IAM::Policy',
        Properties: {
          PolicyName: 'writes',
          Roles: [{ Ref: 'AppRole' }],
          PolicyDocument: policy({
            Effect: 'Allow',
            Action: 's3:PutObject',
            Resource: { 'Fn::Sub': '${Reports.Arn}/reports/*' },
          }),
        },
      },
    },
  };
  const resolved = resolveStack(template, { ...CTX, physicalIds: { ...CTX.physicalIds, Reports: BUCKET } });
  const caller: Caller = { functionName: 'app', role: resolved.roles.AppRole as Caller['role'] };
  const put = (key: string): CallDetail => ({ at: 0, action: 's3:PutObject', params: { Bucket: BUCKET, Key: key } });

  it('resolves a bucket and its policy', () => {
    expect(resolved.buckets[BUCKET]).toMatchObject({ logicalId: 'Reports', arn: `arn:aws:s3:::${BUCKET}` });
    expect(JSON.stringify(resolved.buckets[BUCKET]?.policy)).toContain(`arn:aws:s3:::${BUCKET}/*`);
  });

  it('PutObject is authorized on the object, under the bucket policy: its prefix allowed, another denied, and never without TLS', async () => {
    const [request] = requestsForCall(resolved, caller, put('reports/a.csv'), {}).requests;
    expect(request).toMatchObject({ action: 's3:PutObject', resource: `arn:aws:s3:::${BUCKET}/reports/a.csv` });
    expect(request?.resourcePolicy).toEqual(resolved.buckets[BUCKET]?.policy);
    const call = (detail: CallDetail) => ({
      flow: 's3',
      record: { api: 'PutObject', startedAt: 0, endedAt: 0, outcome: 'forwarded' as const, caller: 'AKIAAPP', detail },
    });
    const evaluation = await evaluateCalls(
      resolved,
      { AKIAAPP: caller },
      [call(put('reports/a.csv')), call(put('elsewhere/a.csv'))],
      {},
    );
    expect(evaluation.denials.map((denial) => denial.resource)).toEqual([`arn:aws:s3:::${BUCKET}/elsewhere/a.csv`]);
    const plain = await evaluateRequest(
      {
        ...(request as AuthzRequest),
        context: { ...(request as AuthzRequest).context, 'aws:SecureTransport': 'false' },
      },
      resolved.roles.AppRole?.policies ?? [],
      ACCOUNT,
      emptyEvaluation(),
      'AppRole',
    );
    expect(plain).toMatch(/denied by resource|explicit/i);
  });
});

describe('Function: actionOf', () => {
  it('reads the IAM action and the parameters that matter from JSON, query and REST requests', () => {
    const json = actionOf({
      method: 'POST',
      url: '/',
      headers: { 'x-amz-target': 'TrentService.CreateKey' },
      body: JSON.stringify({
        Tags: [{ TagKey: 'a', TagValue: 'b' }],
        Description: 'x',
        BypassPolicyLockoutSafetyCheck: false,
      }),
      api: 'CreateKey',
      signingService: 'kms',
    });
    expect(json).toEqual({
      action: 'kms:CreateKey',
      params: { Tags: [{ TagKey: 'a', TagValue: 'b' }], BypassPolicyLockoutSafetyCheck: false },
    });
    // The window of ScheduleKeyDeletion is kept: a policy may bound it (kms:ScheduleKeyDeletionPendingWindowInDays).
    expect(
      actionOf({
        method: 'POST',
        url: '/',
        headers: { 'x-amz-target': 'TrentService.ScheduleKeyDeletion' },
        body: JSON.stringify({ KeyId: 'k', PendingWindowInDays: 30 }),
        api: 'ScheduleKeyDeletion',
        signingService: 'kms',
      }),
    ).toEqual({ action: 'kms:ScheduleKeyDeletion', params: { KeyId: 'k', PendingWindowInDays: 30 } });
    const query = actionOf({
      method: 'POST',
      url: '/',
      headers: {},
      body: 'Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3At&Message=hi',
      api: 'Publish',
      signingService: 'sns',
    });
    expect(query).toEqual({ action: 'sns:Publish', params: { TopicArn: 'arn:aws:sns:us-east-1:1:t' } });
    const rest = actionOf({
      method: 'POST',
      url: '/2015-03-31/functions/stack-audit/invocations',
      headers: {},
      body: '{}',
      api: 'Other',
      signingService: 'lambda',
    });
    expect(rest).toEqual({ action: 'lambda:InvokeFunction', params: { FunctionName: 'stack-audit' } });
    const finding = { Id: 'kms-rotation/x', ProductArn: 'arn:p', AwsAccountId: '1', Title: 'not kept' };
    expect(
      actionOf({
        method: 'POST',
        url: '/findings/import',
        headers: {},
        body: JSON.stringify({ Findings: [finding] }),
        api: 'BatchImportFindings',
        signingService: 'securityhub',
      }),
    ).toEqual({
      action: 'securityhub:BatchImportFindings',
      params: { Findings: [{ Id: 'kms-rotation/x', ProductArn: 'arn:p', AwsAccountId: '1' }] },
    });
    expect(
      actionOf({
        method: 'POST',
        url: '/findings',
        headers: {},
        body: '{"Filters":{}}',
        api: 'GetFindings',
        signingService: 'securityhub',
      }),
    ).toEqual({ action: 'securityhub:GetFindings', params: {} });
    expect(
      actionOf({
        method: 'PUT',
        url: '/stack-reports/audit-reports/2026/12/02/a%20b/slice-1.csv?x-id=PutObject',
        headers: { 'x-amz-server-side-encryption': 'AES256' },
        body: 'a,b',
        api: 'PutObject',
        signingService: 's3',
      }),
    ).toEqual({
      action: 's3:PutObject',
      params: {
        Bucket: 'stack-reports',
        Key: 'audit-reports/2026/12/02/a b/slice-1.csv',
        ServerSideEncryption: 'AES256',
      },
    });
    expect(
      actionOf({
        method: 'POST',
        url: '/',
        headers: { 'x-amz-target': 'X.GetResources' },
        body: '{}',
        api: 'GetResources',
        signingService: 'tagging',
      }).action,
    ).toBe('tag:GetResources');
  });
});

describe('Organization mode: AssumeRole, member sessions, Organizations reads', () => {
  const MEMBER = '111111111111';
  const MEMBER_ROLE = `arn:aws:iam::${MEMBER}:role/member-us-east-1`;
  const MEMBER_TEMPLATE: CfnTemplate = {
    Parameters: { CentralRoleArns: { Type: 'CommaDelimitedList' }, CentralAccountId: { Type: 'String' } },
    Resources: {
      MemberRole: {
        Type: 'AWS::IAM::Role',
        Properties: {
          AssumeRolePolicyDocument: policy({
            Effect: 'Allow',
            Principal: { AWS: { Ref: 'CentralRoleArns' } },
            Action: 'sts:AssumeRole',
            Condition: {
              StringEquals: { 'aws:PrincipalAccount': { Ref: 'CentralAccountId' } },
              StringLike: { 'sts:RoleSessionName': 'kms-rotation-*' },
            },
          }),
          Policies: [
            {
              PolicyName: 'member',
              PolicyDocument: policy({
                Effect: 'Allow',
                Action: 'kms:CreateKey',
                Resource: '*',
                Condition: { StringEquals: { 'aws:RequestedRegion': { Ref: 'AWS::Region' } } },
              }),
            },
          ],
        },
      },
    },
  };
  const member = resolveStack(MEMBER_TEMPLATE, {
    accountId: MEMBER,
    region: 'us-east-1',
    partition: 'aws',
    physicalIds: { MemberRole: 'member-us-east-1' },
    parameters: { CentralRoleArns: `${ROLE_ARN},arn:aws:iam::${ACCOUNT}:role/other`, CentralAccountId: ACCOUNT },
  });
  const central = resolveStack(
    {
      ...TEMPLATE,
      Resources: {
        ...TEMPLATE.Resources,
        Assume: {
          Type: 'AWS::IAM::Policy',
          Properties: {
            PolicyName: 'assume',
            Roles: [{ Ref: 'AppRole' }],
            PolicyDocument: policy({
              Effect: 'Allow',
              Action: 'sts:AssumeRole',
              Resource: 'arn:aws:iam::*:role/member-*',
              Condition: { StringEquals: { 'aws:ResourceOrgID': 'o-test' } },
            }),
          },
        },
      },
    },
    CTX,
  );
  const appCaller: Caller = { functionName: 'app', role: central.roles.AppRole as Caller['role'] };
  const view = {
    roleOf: (arn: string) => Object.values(member.roles).find((role) => role.arn === arn),
    organizationOf: (account: string) => ([ACCOUNT, MEMBER].includes(account) ? 'o-test' : undefined),
  };
  const assumeCall = (sessionName: string, roleArn = MEMBER_ROLE) => ({
    flow: 'f',
    record: {
      api: 'AssumeRole',
      startedAt: 0,
      endedAt: 0,
      outcome: 'forwarded' as const,
      caller: 'AKIAAPP',
      detail: { at: 0, action: 'sts:AssumeRole', params: { RoleArn: roleArn, RoleSessionName: sessionName } },
    },
  });

  it('resolves a CommaDelimitedList parameter to a list, and keeps the role trust policy', () => {
    expect(member.roles.MemberRole?.trustPolicy?.Statement).toEqual([
      expect.objectContaining({ Principal: { AWS: [ROLE_ARN, `arn:aws:iam::${ACCOUNT}:role/other`] } }),
    ]);
  });

  it('judges AssumeRole against the identity grant and the trust policy, with the session name and org ids', async () => {
    const allowed = await evaluateCalls(
      central,
      { AKIAAPP: appCaller },
      [assumeCall('kms-rotation-app')],
      {},
      emptyEvaluation(),
      view,
    );
    expect(allowed.denials).toEqual([]);
    expect(allowed.evaluated).toBe(1);
    const badSession = await evaluateCalls(
      central,
      { AKIAAPP: appCaller },
      [assumeCall('someone')],
      {},
      emptyEvaluation(),
      view,
    );
    expect(badSession.denials.map((denial) => denial.reason)).toEqual([
      expect.stringContaining(`the resource policy of ${MEMBER_ROLE} does not allow it`),
    ]);
    const outside = await evaluateCalls(
      central,
      { AKIAAPP: appCaller },
      [assumeCall('kms-rotation-app', 'arn:aws:iam::999999999999:role/member-us-east-1')],
      {},
      emptyEvaluation(),
      view,
    );
    expect(outside.denials.map((denial) => denial.reason)).toEqual([
      expect.stringContaining('no stack deploys the role arn:aws:iam::999999999999:role/member-us-east-1'),
    ]);
  });

  it("judges a member session's call in its member stack, with aws:RequestedRegion the signed Region", async () => {
    const session: Caller = {
      functionName: 'app as member-us-east-1',
      role: member.roles.MemberRole as Caller['role'],
      stack: member,
    };
    const createIn = (region: string) => ({
      flow: 'f',
      record: {
        api: 'CreateKey',
        startedAt: 0,
        endedAt: 0,
        outcome: 'forwarded' as const,
        caller: 'ASIAMEMBER',
        detail: { at: 0, action: 'kms:CreateKey', params: {}, region },
      },
    });
    const here = await evaluateCalls(central, { ASIAMEMBER: session }, [createIn('us-east-1')], {});
    expect(here.denials).toEqual([]);
    expect(here.grantsUsed.has('MemberRole/member#1')).toBe(true);
    const elsewhere = await evaluateCalls(central, { ASIAMEMBER: session }, [createIn('eu-west-1')], {});
    expect(elsewhere.denials.map((denial) => `${denial.functionName}|${denial.reason}`)).toEqual([
      expect.stringMatching(/^app as member-us-east-1\|no statement of MemberRole's policies allows kms:CreateKey/),
    ]);
  });

  it('names the account or OU an Organizations read is authorized on', () => {
    const [listParents] = requestsForCall(
      central,
      appCaller,
      { at: 0, action: 'organizations:ListParents', params: { ChildId: MEMBER } },
      {},
      view,
    ).requests;
    expect(listParents?.resource).toBe(`arn:aws:organizations::${ACCOUNT}:account/o-test/${MEMBER}`);
    const [describe] = requestsForCall(
      central,
      appCaller,
      { at: 0, action: 'organizations:DescribeOrganizationalUnit', params: { OrganizationalUnitId: 'ou-ab12-x' } },
      {},
      view,
    ).requests;
    expect(describe?.resource).toBe(`arn:aws:organizations::${ACCOUNT}:ou/o-test/ou-ab12-x`);
  });

  it('reads the credentials of an AssumeRole answer (query XML or JSON), and its request parameters', () => {
    expect(
      assumedCredentialsOf(
        '<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken></Credentials></AssumeRoleResult></AssumeRoleResponse>',
      ),
    ).toEqual({ accessKeyId: 'ASIA1', secretAccessKey: 's', sessionToken: 't' });
    expect(assumedCredentialsOf('{"Credentials":{"AccessKeyId":"ASIA2","SecretAccessKey":"s"}}')).toEqual({
      accessKeyId: 'ASIA2',
      secretAccessKey: 's',
    });
    expect(assumedCredentialsOf('<Error><Code>AccessDenied</Code></Error>')).toBeUndefined();
    expect(
      actionOf({
        method: 'POST',
        url: '/',
        headers: {},
        body: `Action=AssumeRole&RoleArn=${encodeURIComponent(MEMBER_ROLE)}&RoleSessionName=kms-rotation-app`,
        api: 'AssumeRole',
        signingService: 'sts',
      }),
    ).toEqual({ action: 'sts:AssumeRole', params: { RoleArn: MEMBER_ROLE, RoleSessionName: 'kms-rotation-app' } });
  });
});
