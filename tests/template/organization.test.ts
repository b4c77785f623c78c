// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub strings, as the template holds them
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  lintTemplate,
  type PackagedService,
  packageService,
  readCloudFormationYaml,
  type Template,
} from '../../scripts/lib/stack';
import { MEMBER_TEMPLATE_PATH } from '../integration/support/organization';

/**
 * Organization mode (docs/organization.md): the central stack with `organizationUnitIds` set, and
 * the member stack (member/member-stack.yml), asserted against each other and against the
 * default stage, so that a widened grant, a lost condition or a dropped forward fails.
 */

type Resource = { Type: string; Condition?: string; Properties: Record<string, unknown> };
type Statement = {
  Sid?: string;
  Effect: string;
  Principal?: unknown;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
};

const ORGANIZATION_ID = 'o-abcdef1234';
const ORG_PARAMS = { organizationUnitIds: 'ou-ab12-cdefgh12', organizationId: ORGANIZATION_ID };
/** The central roles of the functions that act in member accounts (the contract's four). */
const ACTING_ROLES = ['OnRotationRole', 'RotateRole', 'OnKeyActivityRole', 'AuditRole'];
const ACTING_FUNCTIONS = [
  'OnRotationLambdaFunction',
  'RotateLambdaFunction',
  'OnKeyActivityLambdaFunction',
  'AuditLambdaFunction',
];
const FORWARDED_EVENT_TYPES = [
  'KMS CMK Rotation',
  'KMS CMK Deletion',
  'KMS Imported Key Material Expiration',
  'AWS API Call via CloudTrail',
];

const actionsOf = (statement: Statement): string[] =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];
const resourcesOf = (statement: Statement): unknown[] =>
  Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
const resourcesOfTemplate = (template: Template): Record<string, Resource> =>
  template.Resources as Record<string, Resource>;

/** Every statement a role holds: its inline policies and the AWS::IAM::Policy resources attached to it. */
const statementsOfRole = (template: Template, roleId: string): Statement[] => {
  const resources = resourcesOfTemplate(template);
  const inline = (
    (resources[roleId]?.Properties.Policies ?? []) as { PolicyDocument: { Statement: Statement[] } }[]
  ).flatMap((policy) => policy.PolicyDocument.Statement);
  const attached = Object.values(resources)
    .filter(
      (resource) =>
        resource.Type === 'AWS::IAM::Policy' &&
        (resource.Properties.Roles as unknown[]).some(
          (role) => JSON.stringify(role) === JSON.stringify({ Ref: roleId }),
        ),
    )
    .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  return [...inline, ...attached];
};

/** The template's functions' environment variable `name`, by function logical id (absent: undefined). */
const envOf = (template: Template, name: string): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries(resourcesOfTemplate(template))
      .filter(([, resource]) => resource.Type === 'AWS::Lambda::Function')
      .map(([id, fn]) => [id, (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables[name]]),
  );

/**
 * What the organization audit's files add (resources/org-audit.yml, resources/org-audit-functions.yml):
 * included in organization mode only, so they carry no condition (docs/org-audit.md).
 */
const ORG_AUDIT_ONLY = (id: string): boolean =>
  id.startsWith('OrgAudit') || /orgAuditrule\d+EventBridgeRule$/.test(id) || id === 'CentralRoleArns';

/** The template with what organization mode may change taken out: MEMBER_ROLE_NAME, and the function versions and their outputs (hashes of the function configuration). */
const withoutOrganizationChanges = (template: Template): Record<string, unknown> => {
  const copy = JSON.parse(JSON.stringify(template)) as Template & {
    Outputs: Record<string, { Condition?: string }>;
    Parameters: Record<string, unknown>;
  };
  for (const [id, resource] of Object.entries(copy.Resources)) {
    if (resource.Type === 'AWS::Lambda::Version' || resource.Condition === 'OrganizationMode' || ORG_AUDIT_ONLY(id))
      delete copy.Resources[id];
    const variables = (resource.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)
      ?.Variables;
    if (variables) delete variables.MEMBER_ROLE_NAME;
    const code = resource.Properties?.Code as { S3Key?: unknown } | undefined;
    if (code) delete code.S3Key;
  }
  for (const [id, output] of Object.entries(copy.Outputs)) {
    if (id.endsWith('LambdaFunctionQualifiedArn') || output.Condition === 'OrganizationMode' || ORG_AUDIT_ONLY(id))
      delete copy.Outputs[id];
  }
  delete copy.Parameters.OrganizationMode;
  return copy;
};

describe('Template: organization mode (the central stack)', () => {
  let org: PackagedService;
  let single: PackagedService;
  let resources: Record<string, Resource>;

  beforeAll(async () => {
    org = await packageService({
      stage: 'tplorg',
      region: 'us-east-1',
      outDir: join('.tmp', 'template-tplorg'),
      params: ORG_PARAMS,
    });
    single = await packageService({
      stage: 'tplorg',
      region: 'us-east-1',
      outDir: join('.tmp', 'template-tplorg-off'),
    });
    resources = resourcesOfTemplate(org.template);
  });

  it('passes cfn-lint', async () => {
    await expect(lintTemplate(org.updateTemplatePath)).resolves.toBeUndefined();
  });

  it('turns OrganizationMode on, and the default stage leaves it off', () => {
    const mode = (template: Template) =>
      (template.Parameters as Record<string, { Default: string; AllowedValues: string[] }>).OrganizationMode;
    expect(mode(org.template)).toEqual(expect.objectContaining({ Default: 'true', AllowedValues: ['true', 'false'] }));
    expect(mode(single.template)?.Default).toBe('false');
    expect((org.template.Conditions as Record<string, unknown>).OrganizationMode).toEqual({
      'Fn::Equals': [{ Ref: 'OrganizationMode' }, 'true'],
    });
  });

  it('changes nothing of the default stage but MEMBER_ROLE_NAME and resources and outputs under OrganizationMode', () => {
    expect(withoutOrganizationChanges(org.template)).toEqual(withoutOrganizationChanges(single.template));
    const added = Object.entries(resources).filter(([id]) => !(id in resourcesOfTemplate(single.template)));
    expect(
      added.filter(
        ([id, resource]) =>
          resource.Condition !== 'OrganizationMode' && !id.includes('LambdaVersion') && !ORG_AUDIT_ONLY(id),
      ),
    ).toEqual([]);
  });

  it('sets MEMBER_ROLE_NAME on onRotation, rotate, onKeyActivity, audit and the org audit only: the prefix here, empty by default', () => {
    // The org audit's two functions exist in organization mode only, and are told the prefix too.
    const acting = [...ACTING_FUNCTIONS, 'OrgAuditLambdaFunction', 'OrgAuditItemLambdaFunction'];
    const expected = (template: Template, value: string) =>
      Object.fromEntries(
        Object.keys(envOf(template, 'MEMBER_ROLE_NAME')).map((id) => [id, acting.includes(id) ? value : undefined]),
      );
    expect(envOf(org.template, 'MEMBER_ROLE_NAME')).toEqual(expected(org.template, 'kms-rotation-member'));
    expect(envOf(single.template, 'MEMBER_ROLE_NAME')).toEqual(expected(single.template, ''));
    expect(Object.keys(envOf(single.template, 'MEMBER_ROLE_NAME'))).not.toContain('OrgAuditItemLambdaFunction');
  });

  it('has a bus of its own that admits PutEvents from the organization only', () => {
    expect(resources.OrganizationEventBus?.Properties).toEqual({ Name: 'kms-rotation-tplorg-organization' });
    expect(resources.OrganizationEventBusPolicy?.Properties).toEqual({
      EventBusName: { 'Fn::GetAtt': ['OrganizationEventBus', 'Name'] },
      StatementId: 'PutEventsFromTheOrganizationOnly',
      Statement: {
        Sid: 'PutEventsFromTheOrganizationOnly',
        Effect: 'Allow',
        Principal: '*',
        Action: 'events:PutEvents',
        Resource: { 'Fn::GetAtt': ['OrganizationEventBus', 'Arn'] },
        Condition: { StringEquals: { 'aws:PrincipalOrgID': ORGANIZATION_ID } },
      },
    });
  });

  it("hands the bus's events to onRotation and onKeyActivity exactly as the default bus's rules do", () => {
    const rules = Object.entries(resources).filter(([, resource]) => resource.Type === 'AWS::Events::Rule');
    const onDefaultBus = rules.filter(
      ([, rule]) =>
        rule.Properties.EventPattern !== undefined &&
        rule.Properties.EventBusName === undefined &&
        ((rule.Properties.Targets as { Arn: unknown }[]).some((target) =>
          ['OnRotationLambdaFunction', 'OnKeyActivityLambdaFunction'].includes(
            ((target.Arn as { 'Fn::GetAtt'?: string[] })['Fn::GetAtt'] ?? [])[0] ?? '',
          ),
        ) as boolean),
    );
    const onOrgBus = rules.filter(
      ([, rule]) =>
        JSON.stringify(rule.Properties.EventBusName) ===
        JSON.stringify({ 'Fn::GetAtt': ['OrganizationEventBus', 'Name'] }),
    );
    expect(onDefaultBus).toHaveLength(3);
    expect(onOrgBus).toHaveLength(3);
    const shape = (rule: Resource) => {
      const [target] = rule.Properties.Targets as {
        Arn: unknown;
        RetryPolicy: { MaximumEventAgeInSeconds: unknown; MaximumRetryAttempts: unknown };
        DeadLetterConfig: unknown;
      }[];
      return {
        pattern: rule.Properties.EventPattern,
        target: target?.Arn,
        retry: {
          age: Number(target?.RetryPolicy.MaximumEventAgeInSeconds),
          attempts: Number(target?.RetryPolicy.MaximumRetryAttempts),
        },
        deadLetters: target?.DeadLetterConfig,
        targets: (rule.Properties.Targets as unknown[]).length,
      };
    };
    expect(onOrgBus.map(([, rule]) => shape(rule))).toEqual(
      expect.arrayContaining(onDefaultBus.map(([, rule]) => shape(rule))),
    );
    for (const [id, rule] of onOrgBus) {
      expect(rule.Condition, id).toBe('OrganizationMode');
      const permissions = Object.values(resources).filter(
        (resource) =>
          resource.Type === 'AWS::Lambda::Permission' &&
          JSON.stringify(resource.Properties.SourceArn) === JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] }),
      );
      expect(
        permissions.map((permission) => permission.Properties),
        id,
      ).toEqual([
        {
          Action: 'lambda:InvokeFunction',
          FunctionName: (rule.Properties.Targets as { Arn: unknown }[])[0]?.Arn,
          Principal: 'events.amazonaws.com',
          SourceArn: { 'Fn::GetAtt': [id, 'Arn'] },
        },
      ]);
    }
  });

  it('lets only the four acting roles and the org audit worker assume member roles, by name prefix, of the organization only', () => {
    const documentsOf = (resource: Resource): { Statement: Statement[] }[] =>
      resource.Type === 'AWS::IAM::Role'
        ? ((resource.Properties.Policies ?? []) as { PolicyDocument: { Statement: Statement[] } }[]).map(
            (policy) => policy.PolicyDocument,
          )
        : resource.Type === 'AWS::IAM::Policy'
          ? [resource.Properties.PolicyDocument as { Statement: Statement[] }]
          : [];
    const grants = Object.entries(resources).flatMap(([id, resource]) =>
      documentsOf(resource)
        .flatMap((document) => document.Statement)
        .filter((statement) => actionsOf(statement).some((action) => action.startsWith('sts:')))
        .map((statement) => ({ id, statement })),
    );
    // The org audit's worker holds the same grant in its own role (resources/org-audit.yml).
    expect(grants.map((grant) => grant.id)).toEqual(['MemberAccessPolicy', 'OrgAuditItemRole']);
    expect(grants[1]?.statement).toEqual(expect.objectContaining({ Action: 'sts:AssumeRole' }));
    expect(grants[1]?.statement.Condition).toEqual({ StringEquals: { 'aws:ResourceOrgID': ORGANIZATION_ID } });
    expect(grants[0]?.statement).toEqual({
      Sid: 'AssumeMemberRolesOfTheOrganization',
      Effect: 'Allow',
      Action: 'sts:AssumeRole',
      Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::*:role/kms-rotation-member-*' },
      Condition: { StringEquals: { 'aws:ResourceOrgID': ORGANIZATION_ID } },
    });
    expect(resources.MemberAccessPolicy?.Condition).toBe('OrganizationMode');
    expect(resources.MemberAccessPolicy?.Properties.Roles).toEqual(ACTING_ROLES.map((role) => ({ Ref: role })));
  });

  it('outputs the bus and the exact central role ARNs the member stacks take, under OrganizationMode', () => {
    const outputs = org.template.Outputs as Record<string, { Condition?: string; Value: unknown }>;
    expect(outputs.OrganizationEventBusArn).toEqual(
      expect.objectContaining({
        Condition: 'OrganizationMode',
        Value: { 'Fn::GetAtt': ['OrganizationEventBus', 'Arn'] },
      }),
    );
    // The member role trusts every central role that acts in member accounts: the org audit's worker too.
    expect(outputs.CentralRoleArns?.Value).toEqual({
      'Fn::Join': [',', [...ACTING_ROLES, 'OrgAuditItemRole'].map((role) => ({ 'Fn::GetAtt': [role, 'Arn'] }))],
    });
    expect(outputs.MemberAliasScope?.Value).toBe('alias/app/*');
    expect(outputs.MemberDriftMode?.Value).toBe('detect');
  });

  it('is refused at package time when organizationUnitIds is set without organizationId', async () => {
    await expect(
      packageService({
        stage: 'tplorg',
        region: 'us-east-1',
        outDir: join('.tmp', 'template-tplorg-refused'),
        params: { organizationUnitIds: 'ou-ab12-cdefgh12' },
      }),
    ).rejects.toThrow(/Parameter "organizationUnitIds" turns organization mode on, which needs "organizationId"/);
  });
});

describe('Template: the member stack (member/member-stack.yml)', () => {
  let member: Template;
  let central: PackagedService;
  let memberResources: Record<string, Resource>;
  let memberStatements: Statement[];

  beforeAll(async () => {
    member = await readCloudFormationYaml(MEMBER_TEMPLATE_PATH);
    memberResources = resourcesOfTemplate(member);
    memberStatements = statementsOfRole(member, 'MemberRole');
    central = await packageService({
      stage: 'tplmember',
      region: 'us-east-1',
      outDir: join('.tmp', 'template-tplmember'),
      params: { ...ORG_PARAMS, driftMode: 'remediate' },
    });
  });

  it('passes cfn-lint', async () => {
    await expect(lintTemplate(MEMBER_TEMPLATE_PATH)).resolves.toBeUndefined();
  });

  it('takes the parameters of the contract', () => {
    expect(Object.keys(member.Parameters as object)).toEqual(
      expect.arrayContaining(['CentralAccountId', 'CentralEventBusArn', 'CentralRoleArns', 'MemberRoleName']),
    );
    expect((member.Parameters as Record<string, { Type: string; Default?: string }>).CentralRoleArns?.Type).toBe(
      'CommaDelimitedList',
    );
    expect((member.Parameters as Record<string, { Default?: string }>).MemberRoleName?.Default).toBe(
      'kms-rotation-member',
    );
  });

  it('names its role <MemberRoleName>-<region> and lets exactly the central role ARNs assume it, with sts:AssumeRole only', () => {
    const role = memberResources.MemberRole as Resource;
    expect(role.Properties.RoleName).toEqual({ 'Fn::Sub': '${MemberRoleName}-${AWS::Region}' });
    expect(role.Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'CentralFunctionRolesOnly',
          Effect: 'Allow',
          Principal: { AWS: { Ref: 'CentralRoleArns' } },
          Action: 'sts:AssumeRole',
          Condition: {
            StringEquals: { 'aws:PrincipalAccount': { Ref: 'CentralAccountId' } },
            StringLike: { 'sts:RoleSessionName': 'kms-rotation-*' },
          },
        },
      ],
    });
  });

  it('allows the KMS and tag actions of the four central roles on their keys, and nothing else but audit pacing reads', () => {
    const onKeys = (statement: Statement) =>
      statement.Sid !== 'PublishToEncryptedTopic' && statement.Sid !== 'ReadReplicasInTheirRegions';
    const centralActions = new Set(
      ACTING_ROLES.flatMap((role) => statementsOfRole(central.template, role))
        .filter(onKeys)
        .flatMap(actionsOf)
        .filter((action) => action.startsWith('kms:') || action.startsWith('tag:')),
    );
    const memberActions = new Set(memberStatements.flatMap(actionsOf));
    expect([...memberActions].sort()).toEqual(
      [...centralActions, 'cloudwatch:GetMetricData', 'servicequotas:ListServiceQuotas'].sort(),
    );
  });

  it("keeps every condition of the central roles' statements: each member statement matches a central one with the same actions allowed, resource kind and condition", () => {
    const centralStatements = ACTING_ROLES.flatMap((role) => statementsOfRole(central.template, role));
    const kindOf = (resource: unknown): string => {
      const text = JSON.stringify(resource);
      if (text === '"*"') return '*';
      if (text.includes(':key/*')) return 'key';
      if (text.includes(':alias/') || text.includes('${Pattern}')) return 'alias';
      return text;
    };
    /** The member's own addition: CreateKey in this role's Region only. */
    const conditionOf = (statement: Statement) => {
      const condition = JSON.parse(JSON.stringify(statement.Condition ?? {})) as Record<
        string,
        Record<string, unknown>
      >;
      if (condition.StringEquals) delete condition.StringEquals['aws:RequestedRegion'];
      return condition;
    };
    // The pacing reads too: they match the audit role's ReadKmsHeadroom.
    for (const statement of memberStatements) {
      const kinds = new Set(resourcesOf(statement).map(kindOf));
      for (const action of actionsOf(statement)) {
        const matching = centralStatements.filter(
          (candidate) =>
            actionsOf(candidate).includes(action) &&
            resourcesOf(candidate).some((resource) => kinds.has(kindOf(resource))) &&
            JSON.stringify(candidate.Condition ?? {}) === JSON.stringify(conditionOf(statement)),
        );
        expect(matching.length, `${statement.Sid} ${action}`).toBeGreaterThan(0);
      }
    }
  });

  it('keeps the managed-key tag condition on every action beyond reading and listing', () => {
    const READS = ['kms:DescribeKey', 'kms:ListResourceTags', 'kms:GetKeyRotationStatus', 'kms:ListKeyRotations'];
    const LISTINGS = ['kms:ListKeys', 'kms:ListAliases', 'tag:GetResources'];
    for (const statement of memberStatements) {
      const onAnyKey = resourcesOf(statement).some((resource) => JSON.stringify(resource).includes(':key/*'));
      if (!onAnyKey || statement.Sid === 'MoveDeclaredAliasesAwayFromAnyKey') continue;
      const unconditioned = actionsOf(statement).filter(
        (action) => !READS.includes(action) && !LISTINGS.includes(action),
      );
      if (unconditioned.length === 0) continue;
      expect(Object.keys(statement.Condition?.StringEquals ?? {}), statement.Sid).toEqual(
        expect.arrayContaining([expect.stringMatching(/^aws:ResourceTag\/kms-rotation:(managed|state)$/)]),
      );
    }
    expect(memberResources.MemberRemediationPolicy?.Condition).toBe('DriftRemediates');
  });

  it("scopes every grant on a resource to the member's own account and Region", () => {
    for (const statement of memberStatements) {
      for (const resource of resourcesOf(statement)) {
        if (resource === '*') {
          expect(
            actionsOf(statement).every((action) =>
              [
                'kms:ListKeys',
                'kms:ListAliases',
                'tag:GetResources',
                'cloudwatch:GetMetricData',
                'servicequotas:ListServiceQuotas',
              ].includes(action),
            ) || statement.Sid === 'CreateSuccessorKeysWithLineageOnly',
            statement.Sid,
          ).toBe(true);
          continue;
        }
        expect(JSON.stringify(resource), statement.Sid).toMatch(/:\$\{AWS::Region\}:\$\{AWS::AccountId\}:/);
      }
    }
    const create = memberStatements.find((statement) => statement.Sid === 'CreateSuccessorKeysWithLineageOnly');
    expect(create?.Condition?.StringEquals?.['aws:RequestedRegion']).toEqual({ Ref: 'AWS::Region' });
  });

  it('forwards exactly the KMS events and CloudTrail records the central rules take, to the central bus, through a PutEvents-only role', () => {
    const rules = Object.values(memberResources).filter((resource) => resource.Type === 'AWS::Events::Rule');
    for (const rule of rules) {
      expect(rule.Properties.EventBusName).toBeUndefined();
      expect(rule.Properties.Targets).toEqual([
        {
          Id: 'central-event-bus',
          Arn: { Ref: 'CentralEventBusArn' },
          RoleArn: { 'Fn::GetAtt': ['ForwardToCentralBusRole', 'Arn'] },
        },
      ]);
    }
    const types = rules.flatMap((rule) => (rule.Properties.EventPattern as { 'detail-type': string[] })['detail-type']);
    expect(types.sort()).toEqual([...FORWARDED_EVENT_TYPES].sort());
    const centralCloudTrail = Object.values(resourcesOfTemplate(central.template)).find(
      (resource) =>
        resource.Type === 'AWS::Events::Rule' &&
        resource.Properties.EventBusName === undefined &&
        JSON.stringify(resource.Properties.EventPattern).includes('AWS API Call via CloudTrail'),
    );
    const memberCloudTrail = rules.find((rule) =>
      JSON.stringify(rule.Properties.EventPattern).includes('AWS API Call via CloudTrail'),
    );
    expect(memberCloudTrail?.Properties.EventPattern).toEqual(centralCloudTrail?.Properties.EventPattern);

    const forward = memberResources.ForwardToCentralBusRole as Resource;
    expect(statementsOfRole(member, 'ForwardToCentralBusRole')).toEqual([
      {
        Sid: 'PutEventsOnTheCentralBusOnly',
        Effect: 'Allow',
        Action: 'events:PutEvents',
        Resource: { Ref: 'CentralEventBusArn' },
      },
    ]);
    expect(forward.Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
        },
      ],
    });
  });
});
