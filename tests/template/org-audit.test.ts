// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub strings, as the template holds them
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { lintTemplate, type PackagedService, packageService } from '../../scripts/lib/stack';
import { ALL_SETTINGS, SETTINGS_OF } from '../../src/config';

/**
 * An organization stage's template (docs/org-audit.md): the organization audit's functions, their
 * event source mapping, queue, dead-letter queue, run table and roles, asserted one by one.
 */

type Resource = { Type: string; Properties: Record<string, unknown> };
type Statement = { Sid?: string; Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

const ORGANIZATION = { organizationUnitIds: 'ou-ab12-cdefgh12', organizationId: 'o-abcdef1234' };

const actionsOf = (statement: Statement): string[] =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];

/** Every action each organization audit role may take: a new grant must be added here, with its reason in the role. */
const ALLOWED: Record<string, string[]> = {
  OrgAuditRole: [
    'logs:CreateLogStream',
    'logs:PutLogEvents',
    'organizations:ListAccountsForParent',
    'organizations:ListOrganizationalUnitsForParent',
    'sqs:SendMessage',
    'dynamodb:PutItem',
    'dynamodb:GetItem',
    'dynamodb:UpdateItem',
    'dynamodb:Query',
    'kms:GenerateDataKey*',
    'kms:Decrypt',
    'sns:Publish',
  ],
  OrgAuditItemRole: [
    'logs:CreateLogStream',
    'logs:PutLogEvents',
    'sqs:ReceiveMessage',
    'sqs:DeleteMessage',
    'sqs:GetQueueAttributes',
    'sts:AssumeRole',
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'dynamodb:Query',
    'dynamodb:DeleteItem',
    'kms:ListKeys',
    'kms:ListAliases',
    'kms:DescribeKey',
    'kms:ListResourceTags',
    'kms:GetKeyRotationStatus',
    'kms:ListKeyRotations',
    'kms:GetKeyPolicy',
    'kms:Encrypt',
    'kms:Decrypt',
    'ssm:GetParameter',
    'ssm:PutParameter',
    'ssm:GetParametersByPath',
    'kms:GenerateDataKey*',
    'sns:Publish',
  ],
};

describe('Template: organization mode, the organization audit', () => {
  let pkg: PackagedService;
  let resources: Record<string, Resource>;
  const fn = (handler: string): Resource =>
    Object.values(resources).find(
      (resource) => resource.Type === 'AWS::Lambda::Function' && resource.Properties.Handler === handler,
    ) as Resource;
  const statementsOf = (roleId: string): Statement[] =>
    ((resources[roleId] as Resource).Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[]).flatMap(
      (policy) => policy.PolicyDocument.Statement,
    );

  beforeAll(async () => {
    pkg = await packageService({
      stage: 'tplorg',
      region: 'us-east-1',
      outDir: join('.tmp', 'template-org'),
      params: { ...ORGANIZATION, orgAuditConcurrency: '25', orgAuditAttempts: '4' },
    });
    resources = pkg.template.Resources as Record<string, Resource>;
  });

  it('passes cfn-lint', async () => {
    await expect(lintTemplate(pkg.updateTemplatePath)).resolves.toBeUndefined();
  });

  it('gives orgAudit and orgAuditItem exactly the settings they read (SETTINGS_OF)', () => {
    for (const [name, handler] of [
      ['orgAudit', 'handlers/org-audit.handler'],
      ['orgAuditItem', 'handlers/org-audit-item.handler'],
    ] as const) {
      const variables = (fn(handler).Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      const given = Object.keys(variables)
        .filter((variable) => (ALL_SETTINGS as string[]).includes(variable))
        .sort();
      const expected = (SETTINGS_OF[name] as readonly string[])
        .filter((setting) => setting !== 'AWS_REGION' && setting !== 'AWS_CLIENT_TIMEOUT_MS')
        .sort();
      expect(given, name).toEqual(expected);
      expect(variables.MEMBER_ROLE_NAME, name).toBe('kms-rotation-member');
    }
    const item = (
      fn('handlers/org-audit-item.handler').Properties.Environment as { Variables: Record<string, unknown> }
    ).Variables;
    expect(item.ORG_AUDIT_ATTEMPTS).toBe('4');
    expect(item.ORG_AUDIT_TABLE).toEqual({ Ref: 'OrgAuditRunTable' });
    const fanOut = (fn('handlers/org-audit.handler').Properties.Environment as { Variables: Record<string, unknown> })
      .Variables;
    expect(fanOut.ORG_AUDIT_QUEUE_URL).toEqual({ Ref: 'OrgAuditQueue' });
    expect(fanOut.ORGANIZATION_UNIT_IDS).toBe('ou-ab12-cdefgh12');
  });

  it('reads the queue one account-Region at a time, reporting batch item failures, at most orgAuditConcurrency at once', () => {
    const mappings = Object.values(resources).filter((resource) => resource.Type === 'AWS::Lambda::EventSourceMapping');
    expect(mappings).toHaveLength(1);
    const mapping = (mappings[0] as Resource).Properties;
    expect(mapping.EventSourceArn).toEqual({ 'Fn::GetAtt': ['OrgAuditQueue', 'Arn'] });
    expect(mapping.BatchSize).toBe(1);
    expect(mapping.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    expect(mapping.ScalingConfig).toEqual({ MaximumConcurrency: 25 });
  });

  it("keeps a message invisible six times the worker's timeout, and redrives it after orgAuditAttempts + 1 receives", () => {
    const queue = (resources.OrgAuditQueue as Resource).Properties;
    const workerTimeout = fn('handlers/org-audit-item.handler').Properties.Timeout as number;
    expect(queue.VisibilityTimeout as number).toBeGreaterThanOrEqual(6 * workerTimeout);
    expect(queue.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': ['OrgAuditDeadLetterQueue', 'Arn'] },
      maxReceiveCount: 5,
    });
    const alarm = (resources.OrgAuditDeadLetterQueueAlarm as Resource).Properties;
    expect(alarm.Dimensions).toEqual([
      { Name: 'QueueName', Value: { 'Fn::GetAtt': ['OrgAuditDeadLetterQueue', 'QueueName'] } },
    ]);
  });

  it('keeps runs in an on-demand table keyed by run and item, expiring by TTL', () => {
    const table = (resources.OrgAuditRunTable as Resource).Properties;
    expect(table.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.KeySchema).toEqual([
      { AttributeName: 'runId', KeyType: 'HASH' },
      { AttributeName: 'item', KeyType: 'RANGE' },
    ]);
    expect(table.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
  });

  it('runs the fan-out once per schedule (no retry of a run) on orgAuditSchedule', () => {
    const fanOut = fn('handlers/org-audit.handler');
    const rules = Object.values(resources).filter(
      (resource) =>
        resource.Type === 'AWS::Events::Rule' && resource.Properties.ScheduleExpression === 'cron(0 4 * * ? *)',
    );
    expect(rules).toHaveLength(1);
    expect(JSON.parse(((rules[0] as Resource).Properties.Targets as { Input: string }[])[0]?.Input ?? '')).toEqual({
      scheduled: true,
    });
    expect(fanOut.Properties.Role).toEqual({ 'Fn::GetAtt': ['OrgAuditRole', 'Arn'] });
  });

  it.each(Object.keys(ALLOWED))('grants %s only its listed actions', (roleId) => {
    const actions = new Set(statementsOf(roleId).flatMap(actionsOf));
    expect([...actions].sort()).toEqual([...new Set(ALLOWED[roleId])].sort());
  });

  it('lets orgAuditItem assume only the member roles, of this organization only', () => {
    const assume = statementsOf('OrgAuditItemRole').filter((statement) =>
      actionsOf(statement).includes('sts:AssumeRole'),
    );
    expect(assume).toEqual([
      {
        Sid: 'AssumeMemberRolesOfTheOrganization',
        Effect: 'Allow',
        Action: 'sts:AssumeRole',
        Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::*:role/kms-rotation-member-*' },
        Condition: { StringEquals: { 'aws:ResourceOrgID': 'o-abcdef1234' } },
      },
    ]);
  });

  it('grants "*" only where AWS has no resource to scope to (Organizations listings, KMS listings)', () => {
    for (const roleId of Object.keys(ALLOWED)) {
      const onEverything = statementsOf(roleId)
        .filter((statement) => statement.Resource === '*')
        .flatMap(actionsOf);
      expect(
        onEverything.filter(
          (action) =>
            ![
              'organizations:ListAccountsForParent',
              'organizations:ListOrganizationalUnitsForParent',
              'kms:ListKeys',
              'kms:ListAliases',
            ].includes(action),
        ),
        roleId,
      ).toEqual([]);
    }
  });
});
