// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub strings, as the template holds them
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { lintTemplate, type PackagedService, packageService } from '../../scripts/lib/stack';
import { ALL_SETTINGS, type FunctionName, ORGANIZATION_ONLY, SETTINGS_OF } from '../../src/config';
import { CRYPTOGRAPHIC_OPERATIONS } from '../../src/domain/kms-operations';

/**
 * The CloudFormation template that `serverless package` generates, asserted resource by
 * resource, so that a change that widens IAM, drops an alarm or loosens the key policy fails.
 */

type Resource = { Type: string; Properties: Record<string, unknown> };
type Statement = {
  Sid?: string;
  Effect: string;
  Principal?: unknown;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
};

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const actionsOf = (statement: Statement): string[] =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];

const CRYPTO_ACTIONS =
  /^kms:(Encrypt|Decrypt|ReEncrypt|GenerateDataKey|GenerateMac|VerifyMac|Sign|Verify|GenerateRandom)/;

/** What each function's role may do: nothing else, and no wildcards. */
const ALLOWED_ACTIONS: Record<string, string[]> = {
  OnRotationRole: [
    'logs:CreateLogStream',
    'logs:PutLogEvents',
    'dynamodb:PutItem',
    'dynamodb:GetItem',
    'dynamodb:DeleteItem',
    'kms:DescribeKey',
    'kms:ListResourceTags',
    'kms:GetKeyRotationStatus',
    'kms:ListKeyRotations',
    'kms:Encrypt',
    'kms:Decrypt',
    'kms:ListAliases',
    'kms:GenerateDataKey*',
    'sns:Publish',
    'ssm:GetParameter',
    'ssm:PutParameter',
    'sqs:SendMessage',
  ],
  RotateRole: [
    'logs:CreateLogStream',
    'logs:PutLogEvents',
    'dynamodb:PutItem',
    'dynamodb:GetItem',
    'dynamodb:DeleteItem',
    'kms:DescribeKey',
    'kms:ListResourceTags',
    'kms:ListAliases',
    'tag:GetResources',
    'kms:GetKeyRotationStatus',
    'kms:ListKeyRotations',
    'kms:RotateKeyOnDemand',
    'kms:GetKeyPolicy',
    'kms:TagResource',
    'kms:UpdateAlias',
    'kms:CreateAlias',
    'kms:CreateKey',
    'kms:Encrypt',
    'kms:Decrypt',
    'kms:Sign',
    'kms:Verify',
    'kms:GenerateMac',
    'kms:VerifyMac',
    'kms:GetPublicKey',
    'kms:GenerateDataKey*',
    'sns:Publish',
    'ssm:GetParameter',
    'ssm:PutParameter',
  ],
  OnKeyActivityRole: [
    'logs:CreateLogStream',
    'logs:PutLogEvents',
    'dynamodb:PutItem',
    'dynamodb:GetItem',
    'dynamodb:DeleteItem',
    'kms:DescribeKey',
    'kms:ListResourceTags',
    'kms:ListAliases',
    'tag:GetResources',
    'kms:GetKeyRotationStatus',
    'kms:GetKeyPolicy',
    'kms:GenerateDataKey*',
    'kms:Decrypt',
    'sns:Publish',
    'ssm:GetParameter',
    'ssm:PutParameter',
    'sqs:SendMessage',
  ],
  AuditRole: [
    'logs:CreateLogStream',
    'logs:PutLogEvents',
    'dynamodb:PutItem',
    'dynamodb:GetItem',
    'dynamodb:DeleteItem',
    'kms:ListKeys',
    'kms:ListAliases',
    'kms:DescribeKey',
    'kms:ListResourceTags',
    'kms:GetKeyRotationStatus',
    'kms:ListKeyRotations',
    'kms:GetKeyPolicy',
    'kms:EnableKeyRotation',
    'kms:Encrypt',
    'ssm:GetParameter',
    'ssm:PutParameter',
    'ssm:GetParametersByPath',
    'lambda:InvokeFunction',
    'kms:GenerateDataKey*',
    'kms:Decrypt',
    'sns:Publish',
    'sqs:SendMessage',
    'cloudwatch:GetMetricData',
    'servicequotas:ListServiceQuotas',
  ],
  SelfTestRole: [
    'logs:CreateLogStream',
    'logs:PutLogEvents',
    'dynamodb:PutItem',
    'dynamodb:GetItem',
    'dynamodb:DeleteItem',
    'kms:ListAliases',
    'tag:GetResources',
    'kms:CreateKey',
    'kms:TagResource',
    'kms:CreateAlias',
    'kms:UpdateAlias',
    'kms:DeleteAlias',
    'kms:GenerateDataKey*',
    'kms:Decrypt',
    'sns:Publish',
  ],
  RetireRole: [
    'logs:CreateLogStream',
    'logs:PutLogEvents',
    'dynamodb:PutItem',
    'dynamodb:GetItem',
    'dynamodb:DeleteItem',
    'kms:DescribeKey',
    'kms:ListResourceTags',
    'kms:ListAliases',
    'tag:GetResources',
    'kms:GetKeyLastUsage',
    'kms:GenerateDataKey*',
    'kms:Decrypt',
    'sns:Publish',
    'sqs:SendMessage',
  ],
};

/** Actions AWS cannot scope to a resource; anything else on "*" must be conditioned. */
// Actions with no resource type for what the service asks (docs/authorization.md): the listings, and the
// audit's reads of its headroom (GetMetricData of classic metrics, ListServiceQuotas).
const UNSCOPABLE = [
  'kms:ListAliases',
  'kms:ListKeys',
  'tag:GetResources',
  'cloudwatch:GetMetricData',
  'servicequotas:ListServiceQuotas',
];

describe('Template: serverless package output', () => {
  let pkg: PackagedService;
  let resources: Record<string, Resource>;
  const ofType = (type: string): [string, Resource][] =>
    Object.entries(resources).filter(([, resource]) => resource.Type === type);
  const statementsOfRole = (role: Resource): Statement[] =>
    (role.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[]).flatMap(
      (policy) => policy.PolicyDocument.Statement,
    );
  const only = (type: string): Resource => {
    const found = ofType(type);
    expect(found).toHaveLength(1);
    return (found[0] as [string, Resource])[1];
  };

  beforeAll(async () => {
    pkg = await packageService({ stage: 'tpl', region: 'us-east-1', outDir: join('.tmp', 'template-tpl') });
    resources = pkg.template.Resources as Record<string, Resource>;
  });

  it('passes cfn-lint', async () => {
    await expect(lintTemplate(pkg.updateTemplatePath)).resolves.toBeUndefined();
  });

  it('has nothing of the organization audit outside organization mode, and no member role for the audit', () => {
    expect(Object.keys(resources).filter((id) => id.startsWith('OrgAudit'))).toEqual([]);
    expect(ofType('AWS::SQS::Queue').map(([id]) => id)).toEqual(['DeadLetterQueue']);
    expect(ofType('AWS::Lambda::EventSourceMapping')).toEqual([]);
    const audit = ofType('AWS::Lambda::Function').find(
      ([, fn]) => fn.Properties.Handler === 'handlers/audit.handler',
    ) as [string, Resource];
    expect((audit[1].Properties.Environment as { Variables: Record<string, unknown> }).Variables.MEMBER_ROLE_NAME).toBe(
      '',
    );
  });

  describe('Resource: the managed key', () => {
    it('is a symmetric key with rotation on, the default period and deletion window, retained on stack deletion', () => {
      const key = resources.RotationKey as Resource & { DeletionPolicy?: string };
      expect(key.Properties).toMatchObject({
        KeySpec: 'SYMMETRIC_DEFAULT',
        KeyUsage: 'ENCRYPT_DECRYPT',
        EnableKeyRotation: true,
        RotationPeriodInDays: 365,
        PendingWindowInDays: 30,
      });
      expect(key.DeletionPolicy).toBe('Retain');
    });

    it('carries its declared state as tags', () => {
      const key = resources.RotationKey as Resource;
      expect(key.Properties.Tags).toEqual(
        expect.arrayContaining([
          { Key: 'kms-rotation:managed', Value: 'true' },
          { Key: 'kms-rotation:aliases', Value: 'alias/app/secure-key' },
          { Key: 'kms-rotation:period-days', Value: '365' },
        ]),
      );
    });

    it('has the default alias pointing at it', () => {
      const alias = only('AWS::KMS::Alias');
      expect(alias.Properties).toEqual({ AliasName: 'alias/app/secure-key', TargetKeyId: { Ref: 'RotationKey' } });
    });

    it('has a key policy that delegates to IAM and lets no service principal in, by default', () => {
      const policy = (resources.RotationKey as Resource).Properties.KeyPolicy as { Statement: Statement[] };
      const text = JSON.stringify(policy);
      expect(text).not.toMatch(/"Principal":"\*"/);
      expect(text).not.toMatch(/"AWS":"\*"/);
      expect(policy.Statement.map((statement) => statement.Sid)).toEqual(['EnableIamPoliciesOfThisAccount']);
    });
  });

  describe('Resource: notifications and dead letters', () => {
    it('encrypts the topic with a key of its own, not a watched key, so that a disabled watched key is still notified', () => {
      expect(only('AWS::SNS::Topic').Properties.KmsMasterKeyId).toEqual({ Ref: 'NotificationKey' });
      const key = resources.NotificationKey as Resource & { DeletionPolicy?: string };
      expect(key.Properties).toMatchObject({ KeySpec: 'SYMMETRIC_DEFAULT', EnableKeyRotation: true });
      expect(JSON.stringify(key.Properties.Tags ?? [])).not.toContain('kms-rotation:managed');
      expect(key.DeletionPolicy).toBe('Retain');
      const statements = (key.Properties.KeyPolicy as { Statement: Statement[] }).Statement;
      const alarms = statements.find((statement) => statement.Sid === 'AlarmsOfThisStackPublishToTheTopic');
      expect(JSON.stringify(alarms?.Condition)).toContain(':alarm:kms-rotation-tpl-*');
      expect(JSON.stringify(alarms?.Condition)).toContain(':kms-rotation-tpl-notifications');
    });

    it('lets each function use the topic key only through SNS, for this topic', () => {
      for (const [logicalId, role] of ofType('AWS::IAM::Role')) {
        const publish = (role.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[])
          .flatMap((policy) => policy.PolicyDocument.Statement)
          .find((statement) => statement.Sid === 'PublishToEncryptedTopic');
        expect(publish?.Resource, logicalId).toEqual({ 'Fn::GetAtt': ['NotificationKey', 'Arn'] });
        expect(publish?.Condition, logicalId).toEqual({
          StringEquals: {
            'kms:ViaService': { 'Fn::Sub': 'sns.${AWS::Region}.amazonaws.com' },
            'kms:EncryptionContext:aws:sns:topicArn': { Ref: 'NotificationTopic' },
          },
        });
      }
    });

    it('encrypts the dead-letter queue with SQS-managed keys and keeps messages 14 days', () => {
      expect(only('AWS::SQS::Queue').Properties).toMatchObject({
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 1209600,
      });
    });

    it("lets only this stack's EventBridge rules send to the dead-letter queue", () => {
      const policy = only('AWS::SQS::QueuePolicy').Properties.PolicyDocument as { Statement: Statement[] };
      const allow = policy.Statement.find((statement) => statement.Effect === 'Allow') as Statement;
      expect(allow.Principal).toEqual({ Service: 'events.amazonaws.com' });
      expect(actionsOf(allow)).toEqual(['sqs:SendMessage']);
      expect(JSON.stringify(allow.Condition)).toContain(':rule/kms-rotation-tpl-');
    });
  });

  it('sets every function environment variable to text or a !Ref, which serverless invoke local can resolve', () => {
    // invoke local resolves Ref (ListStackResources) and Fn::ImportValue only: a !GetAtt or !Join
    // in any variable fails every local invoke of that function before it starts.
    const unresolvable = ofType('AWS::Lambda::Function').flatMap(([logicalId, fn]) =>
      Object.entries((fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables)
        .filter(([, value]) => typeof value !== 'string' && !(isObject(value) && Object.keys(value).join() === 'Ref'))
        .map(([name, value]) => `${logicalId} ${name}: ${JSON.stringify(value)}`),
    );
    expect(unresolvable).toEqual([]);
  });

  it('gives each function exactly the settings it reads (src/config.ts SETTINGS_OF), the common ones from the provider and Lambda', () => {
    const byHandler: Record<string, FunctionName> = {
      'handlers/on-rotation.handler': 'onRotation',
      'handlers/rotate.handler': 'rotate',
      'handlers/on-key-activity.handler': 'onKeyActivity',
      'handlers/audit.handler': 'audit',
      'handlers/self-test.handler': 'selfTest',
      'handlers/retire.handler': 'retire',
    };
    const functions = ofType('AWS::Lambda::Function');
    // The organization audit's functions are in an organization stage's template only (tests/template/org-audit.test.ts).
    expect(functions.map(([, fn]) => byHandler[String(fn.Properties.Handler)]).sort()).toEqual(
      Object.keys(SETTINGS_OF)
        .filter((name) => !ORGANIZATION_ONLY.includes(name as FunctionName))
        .sort(),
    );
    for (const [logicalId, fn] of functions) {
      const name = byHandler[String(fn.Properties.Handler)] as FunctionName;
      const given = Object.keys((fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables)
        .filter((variable) => (ALL_SETTINGS as string[]).includes(variable))
        .sort();
      // AWS_REGION is Lambda's own; AWS_CLIENT_TIMEOUT_MS keeps its default unless a stack sets it.
      const expected = (SETTINGS_OF[name] as readonly string[])
        .filter((setting) => setting !== 'AWS_REGION' && setting !== 'AWS_CLIENT_TIMEOUT_MS')
        .sort();
      expect(given, logicalId).toEqual(expected);
    }
  });

  describe('Function: selfTest', () => {
    it("is invoked by hand only, with its own role, 900 s, no retries, and its role's name in its environment", () => {
      const fn = resources.SelfTestLambdaFunction as Resource;
      expect(fn.Properties).toMatchObject({
        Handler: 'handlers/self-test.handler',
        Runtime: 'nodejs22.x',
        Timeout: 900,
        Role: { 'Fn::GetAtt': ['SelfTestRole', 'Arn'] },
      });
      const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(env.SELF_TEST_ROLE_NAME).toEqual({ Ref: 'SelfTestRole' });
      const triggers = Object.values(resources).filter(
        (resource) =>
          (resource.Type === 'AWS::Events::Rule' &&
            JSON.stringify(resource.Properties.Targets ?? []).includes('SelfTestLambdaFunction')) ||
          (resource.Type === 'AWS::Lambda::Permission' &&
            JSON.stringify(resource.Properties.FunctionName).includes('SelfTestLambdaFunction')),
      );
      expect(triggers).toEqual([]);
      const retries = ofType('AWS::Lambda::EventInvokeConfig').find(
        ([, config]) => (config.Properties.FunctionName as { Ref: string }).Ref === 'SelfTestLambdaFunction',
      );
      expect(retries?.[1].Properties.MaximumRetryAttempts).toBe(0);
    });
  });

  describe('Function: retire', () => {
    const retireRule = () => resources.RetireUseAttemptRule as Resource & { Condition?: string };

    it('runs daily with {"scheduled": true} and the retireMode, its waits and the lease table, with its own role', () => {
      const fn = resources.RetireLambdaFunction as Resource;
      expect(fn.Properties).toMatchObject({
        Handler: 'handlers/retire.handler',
        Runtime: 'nodejs22.x',
        Role: { 'Fn::GetAtt': ['RetireRole', 'Arn'] },
      });
      const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(env).toMatchObject({
        RETIRE_MODE: 'dry-run',
        RETIRE_DISABLE_AFTER_DAYS: '30',
        RETIRE_DELETE_AFTER_DAYS: '60',
        LEASE_TABLE: { Ref: 'KeyLeaseTable' },
      });
      const schedule = ofType('AWS::Events::Rule').find(
        ([, rule]) =>
          rule.Properties.ScheduleExpression === 'cron(30 3 * * ? *)' &&
          JSON.stringify(rule.Properties.Targets).includes('RetireLambdaFunction'),
      );
      expect(schedule, 'the daily retire schedule').toBeDefined();
      const targets = schedule?.[1].Properties.Targets as { Input: string }[];
      expect(JSON.parse(targets[0]?.Input as string)).toEqual({ scheduled: true });
    });

    it('may change retired keys only in enforce mode (a conditional policy): disable, enable, cancel and schedule deletion with 30 days, tag its own progress', () => {
      expect((pkg.template.Conditions as Record<string, unknown>).RetireEnforces).toEqual({
        'Fn::Equals': [{ Ref: 'RetireMode' }, 'enforce'],
      });
      const parameter = (pkg.template.Parameters as Record<string, { Default: string; AllowedValues: string[] }>)
        .RetireMode;
      expect(parameter).toMatchObject({ Default: 'dry-run', AllowedValues: ['off', 'dry-run', 'enforce'] });
      const role = resources.RetireRole as Resource;
      const readOnly = statementsOfRole(role);
      for (const action of [
        'kms:DisableKey',
        'kms:EnableKey',
        'kms:ScheduleKeyDeletion',
        'kms:CancelKeyDeletion',
        'kms:TagResource',
      ]) {
        expect(readOnly.flatMap(actionsOf), action).not.toContain(action);
      }
      const lastUsage = readOnly.find((statement) => actionsOf(statement).includes('kms:GetKeyLastUsage'));
      expect(lastUsage?.Condition).toEqual({ StringEquals: { 'aws:ResourceTag/kms-rotation:state': 'retired' } });

      const policy = resources.RetireActsPolicy as Resource & { Condition?: string };
      expect(policy.Condition).toBe('RetireEnforces');
      expect(policy.Properties.Roles).toEqual([{ Ref: 'RetireRole' }]);
      const statements = (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
      expect(new Set(statements.flatMap(actionsOf))).toEqual(
        new Set([
          'kms:DisableKey',
          'kms:EnableKey',
          'kms:CancelKeyDeletion',
          'kms:ScheduleKeyDeletion',
          'kms:TagResource',
        ]),
      );
      for (const statement of statements) {
        expect(
          (statement.Condition as { StringEquals: Record<string, unknown> }).StringEquals[
            'aws:ResourceTag/kms-rotation:state'
          ],
          statement.Sid,
        ).toBe('retired');
      }
      const deletion = statements.find((statement) => actionsOf(statement).includes('kms:ScheduleKeyDeletion'));
      expect(deletion?.Condition?.NumericEquals).toEqual({ 'kms:ScheduleKeyDeletionPendingWindowInDays': '30' });
      const tagging = statements.find((statement) => actionsOf(statement).includes('kms:TagResource'));
      expect(tagging?.Condition).toMatchObject({
        StringEquals: { 'aws:RequestTag/kms-rotation:retirement': ['disabled', 'deletion-scheduled', 'stopped'] },
        'ForAllValues:StringEquals': {
          'aws:TagKeys': [
            'kms-rotation:retirement',
            'kms-rotation:retirement-at',
            'kms-rotation:retirement-stopped-by',
          ],
        },
      });
    });

    it('hears refused uses of disabled or pending-deletion keys (read-only CloudTrail records) in enforce mode only', () => {
      const rule = retireRule();
      expect(rule.Condition).toBe('RetireEnforces');
      expect(rule.Properties).toMatchObject({
        State: 'ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS',
        EventPattern: {
          source: ['aws.kms'],
          'detail-type': ['AWS API Call via CloudTrail'],
          detail: {
            eventSource: ['kms.amazonaws.com'],
            // A management call refused on a disabled key (ScheduleKeyDeletion again, say) is no use: it must not wake retire.
            eventName: [...CRYPTOGRAPHIC_OPERATIONS],
            errorCode: ['DisabledException', 'KMSInvalidStateException'],
          },
        },
      });
      expect(JSON.stringify(rule.Properties.Targets)).toContain('RetireLambdaFunction');
      expect((rule.Properties.Targets as { DeadLetterConfig: unknown }[])[0]?.DeadLetterConfig).toEqual({
        Arn: { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] },
      });
      const permission = resources.RetireUseAttemptPermission as Resource & { Condition?: string };
      expect(permission.Condition).toBe('RetireEnforces');
      expect(permission.Properties.SourceArn).toEqual({ 'Fn::GetAtt': ['RetireUseAttemptRule', 'Arn'] });
    });
  });

  describe('Function: onRotation', () => {
    it('runs on nodejs22.x with its own role and its bundle packaged', () => {
      const fn = resources.OnRotationLambdaFunction as Resource;
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Handler: 'handlers/on-rotation.handler',
        Role: { 'Fn::GetAtt': ['OnRotationRole', 'Arn'] },
      });
      expect(pkg.functionZips.onRotation).toMatch(/onRotation\.zip$/);
    });

    it('is triggered by KMS CMK Rotation events with retries and the dead-letter queue', () => {
      const rule = ofType('AWS::Events::Rule')
        .map(([, found]) => found)
        .find((found) => found.Properties.Name === 'kms-rotation-tpl-kms-cmk-rotation') as Resource;
      expect(rule.Properties.EventPattern).toEqual({ source: ['aws.kms'], 'detail-type': ['KMS CMK Rotation'] });
      expect(rule.Properties.Targets).toEqual([
        expect.objectContaining({
          Arn: { 'Fn::GetAtt': ['OnRotationLambdaFunction', 'Arn'] },
          RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 10 },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] } },
        }),
      ]);
    });

    it('retries failed asynchronous invocations a bounded number of times, then sends them to the dead-letter queue', () => {
      // selfTest is run by hand and never retried (see its own test).
      const configs = ofType('AWS::Lambda::EventInvokeConfig')
        .map(([, config]) => config)
        .filter((config) => (config.Properties.FunctionName as { Ref: string }).Ref !== 'SelfTestLambdaFunction');
      expect(configs.map((config) => (config.Properties.FunctionName as { Ref: string }).Ref).sort()).toEqual([
        'AuditLambdaFunction',
        'OnKeyActivityLambdaFunction',
        'OnRotationLambdaFunction',
        'RetireLambdaFunction',
      ]);
      for (const config of configs) {
        expect(config.Properties.MaximumRetryAttempts).toBeLessThanOrEqual(2);
        expect(config.Properties).toMatchObject({
          MaximumEventAgeInSeconds: 3600,
          DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] } } },
        });
      }
    });

    it('keeps its logs for the configured retention', () => {
      expect((resources.OnRotationLogGroup as Resource).Properties.RetentionInDays).toBe(90);
    });
  });

  describe('Resource: function roles', () => {
    const statementsOf = (role: Resource): Statement[] =>
      (role.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[]).flatMap(
        (policy) => policy.PolicyDocument.Statement,
      );

    it('gives each function only the actions it calls, never kms:* or *', () => {
      for (const [logicalId, role] of ofType('AWS::IAM::Role')) {
        const allowed = ALLOWED_ACTIONS[logicalId];
        expect(allowed, `${logicalId} has no entry in ALLOWED_ACTIONS`).toBeDefined();
        const actions = statementsOf(role).flatMap(actionsOf);
        expect(new Set(actions)).toEqual(new Set(allowed));
        expect(actions).not.toContain('kms:*');
        expect(actions).not.toContain('*');
        expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      }
    });

    it('reads replicas in other Regions with DescribeKey alone, on multi-Region keys of this account only, and only where a rotation is validated', () => {
      const replicaStatements = ofType('AWS::IAM::Role').flatMap(([logicalId, role]) =>
        statementsOf(role)
          .filter((statement) => JSON.stringify(statement.Resource).includes(':kms:*:'))
          .map((statement) => ({ logicalId, statement })),
      );
      expect(replicaStatements.map(({ logicalId }) => logicalId).sort()).toEqual([
        'AuditRole',
        'OnRotationRole',
        'RotateRole',
      ]);
      for (const { statement } of replicaStatements) {
        expect(statement).toEqual({
          Sid: 'ReadReplicasInTheirRegions',
          Effect: 'Allow',
          Action: 'kms:DescribeKey',
          Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:kms:*:${AWS::AccountId}:key/mrk-*' },
        });
      }
    });

    it('keeps key leases in one table keyed by key id, ended leases expiring by TTL, reached only by the functions that hold them', () => {
      const table = resources.KeyLeaseTable as Resource;
      expect(table.Type).toBe('AWS::DynamoDB::Table');
      expect(table.Properties).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'keyId', KeyType: 'HASH' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      });
      for (const [logicalId, role] of ofType('AWS::IAM::Role')) {
        const leaseStatements = statementsOf(role).filter((statement) =>
          actionsOf(statement).some((action) => action.startsWith('dynamodb:')),
        );
        expect(leaseStatements.map((statement) => statement.Resource)).toEqual(
          ['RotateRole', 'SelfTestRole', 'OnKeyActivityRole', 'OnRotationRole', 'AuditRole', 'RetireRole'].includes(
            logicalId,
          )
            ? [{ 'Fn::GetAtt': ['KeyLeaseTable', 'Arn'] }]
            : [],
        );
      }
    });

    it('scopes every statement to resources, except listings AWS cannot scope and tag-conditioned key creation', () => {
      for (const [, role] of ofType('AWS::IAM::Role')) {
        for (const statement of statementsOf(role)) {
          if (statement.Resource !== '*') continue;
          const unscopable = actionsOf(statement).every((action) => UNSCOPABLE.includes(action));
          const conditionedCreate =
            JSON.stringify(actionsOf(statement)) === JSON.stringify(['kms:CreateKey', 'kms:TagResource']) &&
            (JSON.stringify(statement.Condition) ===
              JSON.stringify({
                Null: {
                  'aws:RequestTag/kms-rotation:rotation-id': 'false',
                  'aws:RequestTag/kms-rotation:predecessor': 'false',
                },
                StringEquals: { 'aws:RequestTag/kms-rotation:state': 'created' },
                'ForAllValues:StringEquals': {
                  'aws:TagKeys': [
                    'kms-rotation:rotation-id',
                    'kms-rotation:predecessor',
                    'kms-rotation:state',
                    'kms-rotation:reason',
                  ],
                },
              }) ||
              JSON.stringify(statement.Condition).startsWith(
                JSON.stringify({ Null: { 'aws:RequestTag/kms-rotation:self-test': 'false' } }).slice(0, -1),
              ));
          expect(unscopable || conditionedCreate, JSON.stringify(statement)).toBe(true);
        }
      }
    });

    it('lets rotate change only managed keys or retired predecessors, move only aliases in scope, and create only keys that carry lineage and nothing else', () => {
      const statements = statementsOf(resources.RotateRole as Resource);
      const mutating = /^kms:(RotateKeyOnDemand|TagResource|EnableKeyRotation|UpdateAlias|CreateAlias|CreateKey)$/;
      for (const statement of statements.filter((s) => actionsOf(s).some((action) => mutating.test(action)))) {
        const onAliasesInScope =
          JSON.stringify(statement.Resource) ===
          JSON.stringify([{ 'Fn::Sub': 'arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:alias/app/*' }]);
        const condition = JSON.stringify(statement.Condition ?? {});
        expect(
          onAliasesInScope ||
            /"aws:ResourceTag\/kms-rotation:managed":"true"|"aws:ResourceTag\/kms-rotation:state":"retired"|"aws:RequestTag\/kms-rotation:state":"created"/.test(
              condition,
            ),
          JSON.stringify(statement),
        ).toBe(true);
        // No grant rests on the rotation-id tag, which the rotate role may put on any key with CreateKey's tags.
        expect(condition).not.toContain('aws:ResourceTag/kms-rotation:rotation-id');
      }
      expect(statements.flatMap(actionsOf)).not.toContain('kms:PutKeyPolicy');
      expect(statements.flatMap(actionsOf)).not.toContain('kms:DisableKey');
      expect(statements.flatMap(actionsOf)).not.toContain('kms:ScheduleKeyDeletion');
    });

    it('lets selfTest create only keys tagged as self-test (with creation lineage at most), move only self-test aliases, and nothing else through IAM: its keys authorize it in their own policy', () => {
      const statements = statementsOf(resources.SelfTestRole as Resource);
      for (const statement of statements.filter(
        (s) => s.Effect === 'Allow' && actionsOf(s).some((a) => a.startsWith('kms:')),
      )) {
        const scope = JSON.stringify(statement.Resource);
        const condition = JSON.stringify(statement.Condition ?? {});
        const topicKey = scope.includes('NotificationKey') && condition.includes('kms:ViaService');
        const listings = actionsOf(statement).every((action) => UNSCOPABLE.includes(action));
        const selfTestAliases = scope.includes(':alias/kms-rotation-self-test/*');
        const selfTestCreate =
          condition ===
          JSON.stringify({
            Null: { 'aws:RequestTag/kms-rotation:self-test': 'false' },
            StringEqualsIfExists: { 'aws:RequestTag/kms-rotation:state': 'created' },
            'ForAllValues:StringEquals': {
              'aws:TagKeys': [
                'kms-rotation:self-test',
                'kms-rotation:rotation-id',
                'kms-rotation:predecessor',
                'kms-rotation:state',
                'kms-rotation:reason',
              ],
            },
          });
        expect(topicKey || listings || selfTestAliases || selfTestCreate, JSON.stringify(statement)).toBe(true);
      }
      expect(statements.flatMap(actionsOf)).not.toContain('kms:ScheduleKeyDeletion');
      const deny = statements.find((s) => s.Effect === 'Deny') as Statement;
      expect(actionsOf(deny)).toEqual(['kms:TagResource']);
      expect(deny.Condition).toEqual({
        Null: {
          'aws:RequestTag/kms-rotation:self-test': 'false',
          'aws:ResourceTag/kms-rotation:self-test': 'true',
          'aws:ResourceTag/kms-rotation:managed': 'false',
        },
      });
      expect(statements.flatMap(actionsOf)).not.toContain('kms:PutKeyPolicy');
      expect(statements.flatMap(actionsOf)).not.toContain('kms:DisableKey');
    });

    it('lets onRotation use keys for cryptography only when they are tagged as managed, or through SNS for the topic', () => {
      const statements = statementsOf(resources.OnRotationRole as Resource);
      for (const statement of statements.filter((s) => actionsOf(s).some((action) => CRYPTO_ACTIONS.test(action)))) {
        const condition = JSON.stringify(statement.Condition ?? {});
        expect(condition).toMatch(/aws:ResourceTag\/kms-rotation:managed|kms:ViaService/);
      }
    });
  });

  describe('Resource: alarms', () => {
    const alarms = (): Resource[] => ofType('AWS::CloudWatch::Alarm').map(([, alarm]) => alarm);

    it('alarms on function errors, a non-empty dead-letter queue, failed validations and failed rotations, to the topic', () => {
      const metrics = alarms().map((alarm) => `${alarm.Properties.Namespace}/${alarm.Properties.MetricName}`);
      expect(metrics.sort()).toEqual(
        [
          'AWS/Lambda/Errors',
          'AWS/SQS/ApproximateNumberOfMessagesVisible',
          'KmsRotation/RotationValidationFailed',
          'KmsRotation/RotationFailed',
          'AWS/Lambda/Errors',
          'KmsRotation/CriticalDrift',
          'KmsRotation/NonCompliantKeys',
        ].sort(),
      );
      for (const alarm of alarms()) {
        expect(alarm.Properties).toMatchObject({
          Threshold: 0,
          ComparisonOperator: 'GreaterThanThreshold',
          AlarmActions: [{ Ref: 'NotificationTopic' }],
        });
      }
    });

    it('has a dashboard of rotations, validation failures, drift by rule and non-compliant keys', () => {
      const body = JSON.stringify(only('AWS::CloudWatch::Dashboard').Properties.DashboardBody);
      for (const metric of ['RotationValidated', 'RotationValidationFailed', 'DriftDetected', 'NonCompliantKeys']) {
        expect(body).toContain(metric);
      }
    });

    it('lets the drift watch change keys only in remediate mode, through a separate conditional policy, and move only aliases in scope', () => {
      const policy = resources.OnKeyActivityRemediationPolicy as Resource & { Condition?: string };
      expect(policy.Type).toBe('AWS::IAM::Policy');
      expect(policy.Condition).toBe('DriftRemediates');
      expect(policy.Properties.Roles).toEqual([{ Ref: 'OnKeyActivityRole' }]);
      const statements = (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
      expect(statements.flatMap(actionsOf)).not.toContain('kms:DisableKey');
      expect(statements.flatMap(actionsOf)).not.toContain('kms:PutKeyPolicy');
      expect(statements.flatMap(actionsOf)).not.toContain('kms:CancelKeyDeletion');
      const onAliases = statements.filter((statement) => JSON.stringify(statement.Resource).includes(':alias/'));
      expect(onAliases.map((statement) => statement.Resource)).toEqual([
        [{ 'Fn::Sub': 'arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:alias/app/*' }],
      ]);
    });

    it('has the Security Hub policies of the audit and the drift watch, and only those, conditional on securityHubFindings', () => {
      expect(
        ofType('AWS::IAM::Policy')
          .map(([logicalId]) => logicalId)
          .sort(),
      ).toEqual([
        'AuditReportsPolicy',
        'AuditSecurityHubPolicy',
        'MemberAccessPolicy',
        'OnKeyActivityRemediationPolicy',
        'OnKeyActivitySecurityHubPolicy',
        'RetireActsPolicy',
      ]);
      expect((pkg.template.Conditions as Record<string, unknown>).SendsSecurityHubFindings).toEqual({
        'Fn::Equals': [{ Ref: 'SecurityHubFindings' }, 'true'],
      });
      expect((pkg.template.Parameters as Record<string, { Default?: string }>).SecurityHubFindings?.Default).toBe(
        'false',
      );
    });

    it.each([
      ['AuditSecurityHubPolicy', 'AuditRole', 'handlers/audit.handler'],
      ['OnKeyActivitySecurityHubPolicy', 'OnKeyActivityRole', 'handlers/on-key-activity.handler'],
    ])(
      'lets %s import and read back Security Hub findings for %s only with securityHubFindings on, on its own product and hub only',
      (logicalId, role, handler) => {
        const policy = resources[logicalId] as Resource & { Condition?: string };
        expect(policy.Condition).toBe('SendsSecurityHubFindings');
        expect(policy.Properties.Roles).toEqual([{ Ref: role }]);
        const statements = (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
        expect(statements.map((statement) => [actionsOf(statement), statement.Resource])).toEqual([
          [
            ['securityhub:BatchImportFindings'],
            {
              'Fn::Sub':
                'arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:product/${AWS::AccountId}/default',
            },
          ],
          [
            ['securityhub:GetFindings'],
            { 'Fn::Sub': 'arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:hub/default' },
          ],
        ]);
        const fn = Object.values(resources).find(
          (resource) => resource.Type === 'AWS::Lambda::Function' && resource.Properties.Handler === handler,
        );
        expect(
          (fn?.Properties.Environment as { Variables: Record<string, unknown> } | undefined)?.Variables
            .SECURITY_HUB_FINDINGS,
        ).toBe('false');
      },
    );

    it('lets the audit write report objects only with auditReports on, only under audit-reports/ of its own bucket, and nothing else', () => {
      const policy = resources.AuditReportsPolicy as Resource & { Condition?: string };
      expect(policy.Type).toBe('AWS::IAM::Policy');
      expect(policy.Condition).toBe('WritesAuditReports');
      expect(policy.Properties.Roles).toEqual([{ Ref: 'AuditRole' }]);
      const statements = (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
      expect(statements.map((statement) => [statement.Effect, actionsOf(statement), statement.Resource])).toEqual([
        ['Allow', ['s3:PutObject'], { 'Fn::Sub': '${AuditReportsBucket.Arn}/audit-reports/*' }],
      ]);
      expect(statements[0]?.Condition).toBeUndefined();
    });

    it('matches the validation-failure metric on the service dimension the functions emit', () => {
      const validation = alarms().find((alarm) => alarm.Properties.MetricName === 'RotationValidationFailed');
      expect(validation?.Properties.Dimensions).toEqual([{ Name: 'service', Value: 'kms-rotation' }]);
    });
  });

  describe('Resource: the audit report bucket (auditReports, off by default)', () => {
    const conditional = (logicalId: string) => resources[logicalId] as Resource & Record<string, unknown>;

    it('exists only under the WritesAuditReports condition, whose parameter defaults to "false"', () => {
      expect((pkg.template.Conditions as Record<string, unknown>).WritesAuditReports).toEqual({
        'Fn::Equals': [{ Ref: 'AuditReports' }, 'true'],
      });
      expect((pkg.template.Parameters as Record<string, { Default?: string }>).AuditReports?.Default).toBe('false');
      for (const logicalId of ['AuditReportsBucket', 'AuditReportsBucketPolicy', 'AuditReportsPolicy']) {
        expect(conditional(logicalId).Condition, logicalId).toBe('WritesAuditReports');
      }
      expect((pkg.template.Outputs as Record<string, { Condition?: string }>).AuditReportsBucketName?.Condition).toBe(
        'WritesAuditReports',
      );
    });

    it('encrypts at rest with SSE-S3, blocks all public access, enforces bucket ownership and is kept on stack deletion', () => {
      const bucket = conditional('AuditReportsBucket');
      expect(bucket.Type).toBe('AWS::S3::Bucket');
      expect(bucket.Properties.BucketEncryption).toEqual({
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      });
      expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(bucket.Properties.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
      expect(bucket.Properties.VersioningConfiguration).toBeUndefined();
      expect([bucket.DeletionPolicy, bucket.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
    });

    it('expires report objects after auditReportExpiryDays (365 by default) and aborts incomplete uploads after a day', () => {
      expect(conditional('AuditReportsBucket').Properties.LifecycleConfiguration).toEqual({
        Rules: [
          { Id: 'ExpireAuditReports', Status: 'Enabled', Prefix: 'audit-reports/', ExpirationInDays: 365 },
          {
            Id: 'AbortIncompleteUploads',
            Status: 'Enabled',
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
          },
        ],
      });
    });

    it('denies every request that does not use TLS, on the bucket and its objects', () => {
      const policy = conditional('AuditReportsBucketPolicy');
      expect(policy.Type).toBe('AWS::S3::BucketPolicy');
      expect(policy.Properties.Bucket).toEqual({ Ref: 'AuditReportsBucket' });
      expect((policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement).toEqual([
        {
          Sid: 'DenyInsecureTransport',
          Effect: 'Deny',
          Principal: '*',
          Action: 's3:*',
          Resource: [{ 'Fn::GetAtt': ['AuditReportsBucket', 'Arn'] }, { 'Fn::Sub': '${AuditReportsBucket.Arn}/*' }],
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        },
      ]);
    });

    it("leaves the audit's AUDIT_REPORTS_BUCKET empty when off", () => {
      const audit = ofType('AWS::Lambda::Function').find(
        ([, fn]) => fn.Properties.Handler === 'handlers/audit.handler',
      )?.[1] as Resource;
      expect(
        (audit.Properties.Environment as { Variables: Record<string, unknown> }).Variables.AUDIT_REPORTS_BUCKET,
      ).toBe('');
    });
  });

  it('outputs the key id, key ARN, alias, topic ARN and the topic key ARN', () => {
    expect(Object.keys(pkg.template.Outputs as object)).toEqual(
      expect.arrayContaining(['KeyId', 'KeyArn', 'AliasName', 'TopicArn', 'NotificationKeyArn']),
    );
  });
});

describe('Template: auditReports on', () => {
  let pkg: PackagedService;
  let resources: Record<string, Resource>;

  beforeAll(async () => {
    pkg = await packageService({
      stage: 'tplreports',
      region: 'us-east-1',
      outDir: join('.tmp', 'template-reports'),
      params: { auditReports: 'true', auditReportExpiryDays: '30' },
    });
    resources = pkg.template.Resources as Record<string, Resource>;
  });

  it('passes cfn-lint', async () => {
    await expect(lintTemplate(pkg.updateTemplatePath)).resolves.toBeUndefined();
  });

  it("names the bucket to the audit (a Ref) and defaults the condition's parameter to on", () => {
    const audit = Object.values(resources).find(
      (resource) =>
        resource.Type === 'AWS::Lambda::Function' && resource.Properties.Handler === 'handlers/audit.handler',
    ) as Resource;
    expect(
      (audit.Properties.Environment as { Variables: Record<string, unknown> }).Variables.AUDIT_REPORTS_BUCKET,
    ).toEqual({ Ref: 'AuditReportsBucket' });
    expect((pkg.template.Parameters as Record<string, { Default?: string }>).AuditReports?.Default).toBe('true');
  });

  it('expires report objects after the auditReportExpiryDays given', () => {
    const rules = (
      (resources.AuditReportsBucket as Resource).Properties.LifecycleConfiguration as {
        Rules: { Id: string; ExpirationInDays?: number }[];
      }
    ).Rules;
    expect(rules.find((rule) => rule.Id === 'ExpireAuditReports')?.ExpirationInDays).toBe(30);
  });
});

describe('Template: stage parameters', () => {
  it.each([
    ['auditReportExpiryDays', '0', /auditReportExpiryDays.*between 1 and 3650/],
    ['auditReportExpiryDays', 'soon', /auditReportExpiryDays.*whole number of days/],
    ['auditReports', 'yes', /auditReports.*"true" or "false"/],
    ['rotationPeriodDays', '30', /rotationPeriodDays.*between 90 and 2560/],
    ['rotationPeriodDays', '2561', /rotationPeriodDays.*between 90 and 2560/],
    ['deletionWindowDays', '60', /deletionWindowDays.*between 7 and 30/],
    ['keyUsers', '*', /keyUsers.*wildcards are refused/],
    ['retireMode', 'yes', /retireMode.*off, dry-run, enforce/],
    ['retireDisableAfterDays', '6', /retireDisableAfterDays.*between 7 and 365/],
    ['retireDeleteAfterDays', '366', /retireDeleteAfterDays.*between 7 and 365/],
    ['retireDeleteAfterDays', 'later', /retireDeleteAfterDays.*whole number of days/],
  ])('refuses %s=%s at package time, naming the parameter', async (name, value, message) => {
    await expect(
      packageService({
        stage: 'tplbad',
        region: 'us-east-1',
        outDir: join('.tmp', 'template-bad'),
        params: { [name]: value },
      }),
    ).rejects.toThrow(message);
  });

  it('takes key administrators and users into the key policy', async () => {
    const admin = 'arn:aws:iam::123456789012:role/KeyAdmin';
    const user = 'arn:aws:iam::123456789012:role/App';
    const pkg = await packageService({
      stage: 'tplroles',
      region: 'us-east-1',
      outDir: join('.tmp', 'template-roles'),
      params: { keyAdministrators: admin, keyUsers: user, rotationPeriodDays: '180' },
    });
    const key = (pkg.template.Resources as Record<string, Resource>).RotationKey as Resource;
    const statements = (key.Properties.KeyPolicy as { Statement: Statement[] }).Statement;
    const admins = statements.find((statement) => statement.Sid === 'KeyAdministrators') as Statement;
    expect(admins.Principal).toEqual({ AWS: [admin] });
    expect(actionsOf(admins)).toContain('kms:RotateKeyOnDemand');
    expect(actionsOf(admins).filter((action) => CRYPTO_ACTIONS.test(action))).toEqual([]);
    const users = statements.find((statement) => statement.Sid === 'KeyUsers') as Statement;
    expect(actionsOf(users)).toEqual([
      'kms:Encrypt',
      'kms:Decrypt',
      'kms:ReEncrypt*',
      'kms:GenerateDataKey*',
      'kms:DescribeKey',
    ]);
    const grants = statements.find((statement) => statement.Sid === 'KeyUsersGrantsOnlyForAwsResources') as Statement;
    expect(grants.Condition).toEqual({ Bool: { 'kms:GrantIsForAWSResource': 'true' } });
    expect(key.Properties.RotationPeriodInDays).toBe(180);
  });
});
