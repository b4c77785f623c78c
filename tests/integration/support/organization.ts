/**
 * An organization in moto with the member stack rolled out to it, the way the README rolls it out
 * (docs/organization.md): an OU with member accounts, the member template as a SERVICE_MANAGED
 * StackSet with automatic deployment, stack instances for the OU in the given Regions, parameters
 * taken from the central stack's outputs. moto creates each stack instance for real, in its own
 * account and Region; credentials from AssumeRole act in the assumed account.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CloudFormationClient,
  CreateStackInstancesCommand,
  CreateStackSetCommand,
  ListStackInstancesCommand,
  type Parameter,
} from '@aws-sdk/client-cloudformation';
import {
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  DescribeCreateAccountStatusCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity } from '@smithy/types';
import { PROJECT_ROOT } from '../../../scripts/lib/stack';

export const MEMBER_TEMPLATE_PATH = join(PROJECT_ROOT, 'member', 'member-stack.yml');

const FAKE_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
const CAPABILITIES = ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM'] as const;

export interface MemberLocation {
  account: string;
  region: string;
}

export interface Organization {
  organizationId: string;
  rootId: string;
  ouId: string;
  /** The member accounts created in the OU, in creation order. */
  accounts: string[];
  /** The Regions the StackSet deployed to. */
  regions: string[];
  /** Every account and Region that has a member stack: accounts × regions. */
  locations: MemberLocation[];
  stackSetName: string;
  /** The parameters the StackSet was created with (from the central stack's outputs). */
  parameters: Record<string, string>;
}

/** Credentials acting in `account` (moto: AssumeRole into any account works; the role need not exist). */
export const credentialsIn = async (
  endpoint: string,
  account: string,
  roleName = 'OrganizationAccountAccessRole',
): Promise<AwsCredentialIdentity> => {
  const sts = new STSClient({ endpoint, region: 'us-east-1', credentials: FAKE_CREDENTIALS });
  try {
    const { Credentials } = await sts.send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${account}:role/${roleName}`,
        RoleSessionName: 'kms-rotation-test',
      }),
    );
    if (!Credentials?.AccessKeyId || !Credentials.SecretAccessKey) {
      throw new Error(`AssumeRole into ${account} returned no credentials`);
    }
    return {
      accessKeyId: Credentials.AccessKeyId,
      secretAccessKey: Credentials.SecretAccessKey,
      sessionToken: Credentials.SessionToken,
    };
  } finally {
    sts.destroy();
  }
};

/** The organization, its root, one OU and `accountCount` accounts moved into it. */
const createOrganization = async (
  org: OrganizationsClient,
  accountCount: number,
): Promise<Pick<Organization, 'organizationId' | 'rootId' | 'ouId' | 'accounts'>> => {
  const { Organization: created } = await org.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }));
  const organizationId = created?.Id;
  if (!organizationId) throw new Error('CreateOrganization returned no organization id');
  const rootId = (await org.send(new ListRootsCommand({}))).Roots?.[0]?.Id;
  if (!rootId) throw new Error('The organization has no root');
  const ouId = (await org.send(new CreateOrganizationalUnitCommand({ ParentId: rootId, Name: 'kms-rotation-members' })))
    .OrganizationalUnit?.Id;
  if (!ouId) throw new Error('CreateOrganizationalUnit returned no id');
  const accounts: string[] = [];
  for (let index = 0; index < accountCount; index += 1) {
    const { CreateAccountStatus } = await org.send(
      new CreateAccountCommand({ AccountName: `member-${index + 1}`, Email: `member-${index + 1}@example.com` }),
    );
    const status = CreateAccountStatus?.Id
      ? (await org.send(new DescribeCreateAccountStatusCommand({ CreateAccountRequestId: CreateAccountStatus.Id })))
          .CreateAccountStatus
      : CreateAccountStatus;
    const account = status?.AccountId;
    if (!account) throw new Error(`CreateAccount member-${index + 1} returned no account id`);
    await org.send(new MoveAccountCommand({ AccountId: account, SourceParentId: rootId, DestinationParentId: ouId }));
    accounts.push(account);
  }
  return { organizationId, rootId, ouId, accounts };
};

/** The member stack's parameters, from the central stack's outputs (the README's roll-out). */
export const memberStackParameters = (
  centralAccountId: string,
  outputs: Record<string, string>,
  memberRoleName: string,
): Record<string, string> => {
  const required = ['OrganizationEventBusArn', 'CentralRoleArns', 'MemberAliasScope', 'MemberDriftMode'];
  const missing = required.filter((name) => !outputs[name]);
  if (missing.length > 0) {
    throw new Error(`The central stack has no ${missing.join(', ')} output: is it deployed in organization mode?`);
  }
  return {
    CentralAccountId: centralAccountId,
    CentralEventBusArn: outputs.OrganizationEventBusArn as string,
    CentralRoleArns: outputs.CentralRoleArns as string,
    MemberRoleName: memberRoleName,
    AliasScope: outputs.MemberAliasScope as string,
    DriftMode: outputs.MemberDriftMode as string,
  };
};

/**
 * Creates the organization (in the central account: moto's default account is its management
 * account), an OU with `accountCount` accounts, and rolls the member stack out to the OU in
 * `regions` as a SERVICE_MANAGED StackSet. Resolves once every stack instance exists.
 */
export const rollOutToOrganization = async (opts: {
  endpoint: string;
  /** The central stack's Region: where the StackSet is created. */
  region: string;
  centralAccountId: string;
  /** The central stack's outputs (OrganizationEventBusArn, CentralRoleArns, MemberAliasScope, MemberDriftMode). */
  centralOutputs: Record<string, string>;
  memberRoleName?: string;
  accountCount?: number;
  regions: string[];
  stackSetName?: string;
}): Promise<Organization> => {
  const config = { endpoint: opts.endpoint, region: opts.region, credentials: FAKE_CREDENTIALS };
  const org = new OrganizationsClient(config);
  const cfn = new CloudFormationClient({ ...config, maxAttempts: 1 });
  const stackSetName = opts.stackSetName ?? 'kms-rotation-member';
  try {
    const created = await createOrganization(org, opts.accountCount ?? 3);
    const parameters = memberStackParameters(
      opts.centralAccountId,
      opts.centralOutputs,
      opts.memberRoleName ?? 'kms-rotation-member',
    );
    const Parameters: Parameter[] = Object.entries(parameters).map(([ParameterKey, ParameterValue]) => ({
      ParameterKey,
      ParameterValue,
    }));
    await cfn.send(
      new CreateStackSetCommand({
        StackSetName: stackSetName,
        TemplateBody: await readFile(MEMBER_TEMPLATE_PATH, 'utf8'),
        PermissionModel: 'SERVICE_MANAGED',
        AutoDeployment: { Enabled: true, RetainStacksOnAccountRemoval: false },
        Capabilities: [...CAPABILITIES],
        Parameters,
      }),
    );
    await cfn.send(
      new CreateStackInstancesCommand({
        StackSetName: stackSetName,
        DeploymentTargets: { OrganizationalUnitIds: [created.ouId] },
        Regions: opts.regions,
      }),
    );
    const { Summaries = [] } = await cfn.send(new ListStackInstancesCommand({ StackSetName: stackSetName }));
    const locations = created.accounts.flatMap((account) => opts.regions.map((region) => ({ account, region })));
    const missing = locations.filter(
      ({ account, region }) => !Summaries.some((summary) => summary.Account === account && summary.Region === region),
    );
    if (missing.length > 0) {
      throw new Error(
        `StackSet ${stackSetName} has no stack instance in ${missing.map((l) => `${l.account}/${l.region}`).join(', ')}`,
      );
    }
    return { ...created, regions: opts.regions, locations, stackSetName, parameters };
  } finally {
    org.destroy();
    cfn.destroy();
  }
};
