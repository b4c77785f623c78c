import { EventBridgeClient, ListRulesCommand, ListTargetsByRuleCommand } from '@aws-sdk/client-eventbridge';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestStack, type TestStack } from './support/deployed-stack';
import { credentialsIn, type Organization, rollOutToOrganization } from './support/organization';

/**
 * The roll-out of docs/organization.md into moto: the central stack in organization mode, then
 * the member template as a SERVICE_MANAGED StackSet on an OU of three accounts in two Regions.
 * moto creates every stack instance in its own account and Region; this reads each back with
 * credentials of that account.
 */
const REGIONS = ['us-east-1', 'eu-west-1'];
const MEMBER_ROLE_NAME = 'kms-rotation-member';
const FORWARDED_EVENT_TYPES = [
  'AWS API Call via CloudTrail',
  'KMS CMK Deletion',
  'KMS CMK Rotation',
  'KMS Imported Key Material Expiration',
];

describe('Member stack: rolled out to an OU with a service-managed StackSet', () => {
  let central: TestStack;
  let centralAccount: string;
  let organization: Organization;

  beforeAll(async () => {
    central = await deployTestStack('itorg', {
      params: {
        organizationId: 'o-abcdef1234',
        organizationUnitIds: 'ou-ab12-cdefgh12',
        organizationRegions: REGIONS.join(','),
      },
    });
    const sts = new STSClient({
      endpoint: central.emulator.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    centralAccount = (await sts.send(new GetCallerIdentityCommand({}))).Account as string;
    sts.destroy();
    organization = await rollOutToOrganization({
      endpoint: central.emulator.endpoint,
      region: 'us-east-1',
      centralAccountId: centralAccount,
      centralOutputs: central.stack.outputs,
      memberRoleName: MEMBER_ROLE_NAME,
      accountCount: 3,
      regions: REGIONS,
    });
  }, 600_000);

  afterAll(async () => {
    await central?.stop();
  });

  it('deploys the central organization resources, and outputs what the member stacks take', async () => {
    // moto lists no physical id for an AWS::Events::EventBus: the bus is read from EventBridge.
    const events = new EventBridgeClient({
      endpoint: central.emulator.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    try {
      const { Rules = [] } = await events.send(
        new ListRulesCommand({ EventBusName: 'kms-rotation-itorg-organization' }),
      );
      const targets: Record<string, (string | undefined)[]> = {};
      for (const rule of Rules) {
        const { Targets = [] } = await events.send(
          new ListTargetsByRuleCommand({ Rule: rule.Name, EventBusName: 'kms-rotation-itorg-organization' }),
        );
        targets[rule.Name as string] = Targets.map((target) => target.Arn);
      }
      expect(targets).toEqual({
        'kms-rotation-itorg-org-kms-cmk-rotation': [central.stack.functions.onRotation?.arn],
        'kms-rotation-itorg-org-kms-management-calls': [central.stack.functions.onKeyActivity?.arn],
        'kms-rotation-itorg-org-kms-key-lifecycle': [central.stack.functions.onKeyActivity?.arn],
      });
    } finally {
      events.destroy();
    }
    expect(central.stack.resources).toEqual(
      expect.objectContaining({
        OrganizationKeyRotationRule: expect.any(String),
        OrganizationManagementCallsRule: expect.any(String),
        OrganizationKeyLifecycleRule: expect.any(String),
        MemberAccessPolicy: expect.any(String),
      }),
    );
    expect(central.stack.outputs.OrganizationEventBusArn).toBe(
      `arn:aws:events:us-east-1:${centralAccount}:event-bus/kms-rotation-itorg-organization`,
    );
    const roleArn = (logicalId: string) => `arn:aws:iam::${centralAccount}:role/${central.stack.resources[logicalId]}`;
    expect(central.stack.outputs.CentralRoleArns?.split(',')).toEqual(
      ['OnRotationRole', 'RotateRole', 'OnKeyActivityRole', 'AuditRole', 'OrgAuditItemRole'].map(roleArn),
    );
    // The functions that act in member accounts are told the member role's prefix.
    for (const fn of ['onRotation', 'rotate', 'onKeyActivity', 'audit']) {
      expect(central.stack.functions[fn]?.environment.MEMBER_ROLE_NAME, fn).toBe(MEMBER_ROLE_NAME);
    }
  });

  it('has a stack instance in each of the three accounts of the OU, in both Regions', () => {
    expect(organization.accounts).toHaveLength(3);
    expect(new Set(organization.accounts).size).toBe(3);
    expect(organization.accounts).not.toContain(centralAccount);
    expect(organization.locations).toHaveLength(6);
  });

  it('gives each member account and Region its role <memberRoleName>-<region>, trusting exactly the central roles', async () => {
    const centralRoleArns = (central.stack.outputs.CentralRoleArns as string).split(',');
    for (const { account, region } of organization.locations) {
      const iam = new IAMClient({
        endpoint: central.emulator.endpoint,
        region,
        credentials: await credentialsIn(central.emulator.endpoint, account),
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
    const centralBus = central.stack.outputs.OrganizationEventBusArn as string;
    for (const { account, region } of organization.locations) {
      const events = new EventBridgeClient({
        endpoint: central.emulator.endpoint,
        region,
        credentials: await credentialsIn(central.emulator.endpoint, account),
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
});
