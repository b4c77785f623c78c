'use strict';
/**
 * Stage parameters that need more than a default: validated here, at `serverless package`
 * time, so that a bad value is refused with a message naming the parameter instead of
 * failing half-way through a CloudFormation deployment.
 *
 * Used from serverless.yml as `${file(./config/stack.cjs):<export>}`.
 */

const SERVICE_TAG_PREFIX = 'kms-rotation:';

class StackParameterError extends Error {
  constructor(message) {
    super(message);
    this.name = 'StackParameterError';
  }
}

const readParam = async (resolveVariable, name) => {
  const value = await resolveVariable(`param:${name}`);
  return value == null ? '' : String(value).trim();
};

const integerInRange = (name, raw, min, max, limits = 'AWS KMS limits') => {
  if (!/^\d+$/.test(raw)) {
    throw new StackParameterError(`Parameter "${name}" must be a whole number of days, got "${raw}".`);
  }
  const value = Number(raw);
  if (value < min || value > max) {
    throw new StackParameterError(
      `Parameter "${name}" must be between ${min} and ${max} days (${limits}), got ${value}.`,
    );
  }
  return value;
};

/** Comma- or space-separated list of IAM principal ARNs; each must be an IAM ARN, never "*". */
const principalList = (name, raw) => {
  const principals = raw.split(/[\s,]+/).filter(Boolean);
  for (const principal of principals) {
    if (!/^arn:aws[a-z-]*:iam::\d{12}:(root|role\/.+|user\/.+)$/.test(principal)) {
      throw new StackParameterError(
        `Parameter "${name}" must list IAM role, user or account-root ARNs; "${principal}" is not one (wildcards are refused).`,
      );
    }
  }
  return principals;
};

const aliasName = (name, raw) => {
  if (!/^alias\/[a-zA-Z0-9/_-]{1,250}$/.test(raw) || raw.startsWith('alias/aws/')) {
    throw new StackParameterError(
      `Parameter "${name}" must be a KMS alias name like "alias/app/secure-key" (not under alias/aws/), got "${raw}".`,
    );
  }
  return raw;
};

const rotationPeriodDays = async ({ resolveVariable }) =>
  integerInRange('rotationPeriodDays', await readParam(resolveVariable, 'rotationPeriodDays'), 90, 2560);

const deletionWindowDays = async ({ resolveVariable }) =>
  integerInRange('deletionWindowDays', await readParam(resolveVariable, 'deletionWindowDays'), 7, 30);

const alias = async ({ resolveVariable }) => aliasName('aliasName', await readParam(resolveVariable, 'aliasName'));

/**
 * The aliases kms-rotation may create and move, as alias names or folders ending in `*`. IAM has
 * no condition key that names the alias of CreateAlias or UpdateAlias, so the alias ARNs in the
 * `Resource` of the alias grants are the only bound: a role scoped to `alias/*` could point any
 * new alias at a managed key. Unset, the scope is the folder of the stack's own alias
 * (`alias/app/secure-key` -> `alias/app/*`), or that alias alone when it has no folder.
 */
const aliasPatterns = async (resolveVariable) => {
  const raw = await readParam(resolveVariable, 'aliasScope');
  if (raw === '') {
    const own = aliasName('aliasName', await readParam(resolveVariable, 'aliasName'));
    const folder = own.lastIndexOf('/');
    return [folder > 'alias'.length ? `${own.slice(0, folder)}/*` : own];
  }
  const patterns = raw.split(/[\s,]+/).filter(Boolean);
  for (const pattern of patterns) {
    if (!/^alias\/[a-zA-Z0-9/_-]*\*?$/.test(pattern) || pattern.startsWith('alias/aws/') || pattern === 'alias/*') {
      throw new StackParameterError(
        `Parameter "aliasScope" lists alias names or folders like "alias/app/*" (never alias/aws/ nor all of alias/*), got "${pattern}".`,
      );
    }
  }
  return patterns;
};

/** `aliasScope` for the functions' environment: `ALIAS_SCOPE`. */
const aliasScope = async ({ resolveVariable }) => (await aliasPatterns(resolveVariable)).join(',');

/** `aliasScope` as the ARNs of the alias grants' `Resource`. */
const aliasScopeArns = async ({ resolveVariable }) =>
  (await aliasPatterns(resolveVariable)).map((pattern) => ({
    'Fn::Sub': `arn:\${AWS::Partition}:kms:\${AWS::Region}:\${AWS::AccountId}:${pattern}`,
  }));

/** Key actions an administrator needs to run the key's lifecycle; deliberately no cryptographic use. */
const ADMIN_ACTIONS = [
  'kms:DescribeKey',
  'kms:GetKeyPolicy',
  'kms:PutKeyPolicy',
  'kms:GetKeyRotationStatus',
  'kms:EnableKeyRotation',
  'kms:DisableKeyRotation',
  'kms:RotateKeyOnDemand',
  'kms:ListKeyRotations',
  'kms:ListResourceTags',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:EnableKey',
  'kms:DisableKey',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
  'kms:UpdateKeyDescription',
  'kms:CreateAlias',
  'kms:UpdateAlias',
  'kms:DeleteAlias',
  'kms:ListGrants',
  'kms:RevokeGrant',
];

const USER_ACTIONS = ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey'];

const accountRoot = { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${AWS::AccountId}:root' };

/** The stack's roles (resources/role-*.yml) that use the provisioned key directly (validation, rotation, drift remediation). */
const SERVICE_ROLES_USING_THE_KEY = ['OnRotationRole', 'RotateRole', 'OnKeyActivityRole'];

/**
 * The key policy of the provisioned key. Kept as an object (what CloudFormation expects);
 * the only principal-wide statement is the account root, which delegates to IAM.
 */
const keyPolicy = async ({ resolveVariable }) => {
  const administrators = principalList('keyAdministrators', await readParam(resolveVariable, 'keyAdministrators'));
  const users = principalList('keyUsers', await readParam(resolveVariable, 'keyUsers'));
  const viaServices = (await readParam(resolveVariable, 'keyViaServices')).split(/[\s,]+/).filter(Boolean);
  for (const service of viaServices) {
    if (!/^[a-z0-9-]+$/.test(service)) {
      throw new StackParameterError(
        `Parameter "keyViaServices" lists service names like "sns" or "sqs", got "${service}".`,
      );
    }
  }

  const statements = [
    {
      Sid: 'EnableIamPoliciesOfThisAccount',
      Effect: 'Allow',
      Principal: { AWS: accountRoot },
      Action: 'kms:*',
      Resource: '*',
    },
  ];
  if (administrators.length > 0) {
    statements.push({
      Sid: 'KeyAdministrators',
      Effect: 'Allow',
      Principal: { AWS: administrators },
      Action: ADMIN_ACTIONS,
      Resource: '*',
    });
  }
  if (users.length > 0) {
    statements.push(
      {
        Sid: 'KeyUsers',
        Effect: 'Allow',
        Principal: { AWS: users },
        Action: USER_ACTIONS,
        Resource: '*',
      },
      {
        Sid: 'KeyUsersGrantsOnlyForAwsResources',
        Effect: 'Allow',
        Principal: { AWS: users },
        Action: ['kms:CreateGrant', 'kms:ListGrants', 'kms:RevokeGrant'],
        Resource: '*',
        Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
      },
    );
  }
  if (viaServices.length > 0) {
    // An Allow here would add nothing: the root statement already delegates every action to IAM.
    // Only a Deny keeps the account's principals to use through the named services. Exempt: the
    // key users named above and kms-rotation's own roles, which validate the key directly.
    statements.push({
      Sid: 'AccountPrincipalsUseOnlyThroughNamedServices',
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: USER_ACTIONS.filter((action) => action !== 'kms:DescribeKey'),
      Resource: '*',
      Condition: {
        StringNotEquals: {
          'kms:ViaService': viaServices.map((service) => ({ 'Fn::Sub': `${service}.\${AWS::Region}.amazonaws.com` })),
        },
        ArnNotEquals: {
          'aws:PrincipalArn': [
            ...users,
            ...SERVICE_ROLES_USING_THE_KEY.map((role) => ({ 'Fn::GetAtt': [role, 'Arn'] })),
          ],
        },
      },
    });
  }

  return { Version: '2012-10-17', Statement: statements };
};

/**
 * The key policy of the notification topic's own key. The topic is never encrypted with a key
 * the service watches: a disabled watched key is exactly when its notifications must go out.
 * Publishers (the functions' roles) get GenerateDataKey and Decrypt through IAM, bound to SNS
 * and this topic's encryption context. CloudWatch alarm actions publish as the
 * cloudwatch.amazonaws.com service principal, which needs the same in the key policy (SNS
 * Developer Guide, "Key management", compatibility with AWS services:
 * https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html): only for alarms of this
 * stack (their names start with the service and stage), in this account, for this topic.
 */
const notificationKeyPolicy = async ({ resolveVariable }) => {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const topicArn = {
    'Fn::Sub': `arn:\${AWS::Partition}:sns:\${AWS::Region}:\${AWS::AccountId}:${service}-${stage}-notifications`,
  };
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'EnableIamPoliciesOfThisAccount',
        Effect: 'Allow',
        Principal: { AWS: accountRoot },
        Action: 'kms:*',
        Resource: '*',
      },
      {
        Sid: 'AlarmsOfThisStackPublishToTheTopic',
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: ['kms:GenerateDataKey*', 'kms:Decrypt'],
        Resource: '*',
        Condition: {
          StringEquals: {
            'aws:SourceAccount': { Ref: 'AWS::AccountId' },
            'kms:EncryptionContext:aws:sns:topicArn': topicArn,
          },
          ArnLike: {
            'aws:SourceArn': {
              'Fn::Sub': `arn:\${AWS::Partition}:cloudwatch:\${AWS::Region}:\${AWS::AccountId}:alarm:${service}-${stage}-*`,
            },
          },
        },
      },
    ],
  };
};

/** `auditReports`: "true" or "false", nothing else (it decides whether the stack has a report bucket). */
const auditReportsOn = async (resolveVariable) => {
  const raw = await readParam(resolveVariable, 'auditReports');
  if (raw !== 'true' && raw !== 'false') {
    throw new StackParameterError(`Parameter "auditReports" must be "true" or "false", got "${raw}".`);
  }
  return raw === 'true';
};

/**
 * The audit's `AUDIT_REPORTS_BUCKET`: a `Ref` of the report bucket when `auditReports` is on,
 * empty text when it is off (the bucket, under its condition, does not exist then). A `Ref`,
 * never `Fn::If`: `serverless invoke local` resolves `Ref` only.
 */
const auditReportsBucket = async ({ resolveVariable }) =>
  (await auditReportsOn(resolveVariable)) ? { Ref: 'AuditReportsBucket' } : '';

/** Days a report object is kept before its lifecycle rule expires it (S3 expiration is in whole days). */
const auditReportExpiryDays = async ({ resolveVariable }) =>
  integerInRange(
    'auditReportExpiryDays',
    await readParam(resolveVariable, 'auditReportExpiryDays'),
    1,
    3650,
    'report retention',
  );

/** `retireMode`: off, dry-run or enforce (docs/retire.md). */
const RETIRE_MODES = ['off', 'dry-run', 'enforce'];
const retireMode = async ({ resolveVariable }) => {
  const raw = await readParam(resolveVariable, 'retireMode');
  if (!RETIRE_MODES.includes(raw)) {
    throw new StackParameterError(`Parameter "retireMode" must be one of ${RETIRE_MODES.join(', ')}, got "${raw}".`);
  }
  return raw;
};

/** Bounds of the retirement's waits (src/domain/retire-predecessors.ts, RETIRE_DAYS, holds the same). */
const RETIRE_DAYS = { min: 7, max: 365 };
const retireDisableAfterDays = async ({ resolveVariable }) =>
  integerInRange(
    'retireDisableAfterDays',
    await readParam(resolveVariable, 'retireDisableAfterDays'),
    RETIRE_DAYS.min,
    RETIRE_DAYS.max,
    'at least a week without use, at most a year',
  );
const retireDeleteAfterDays = async ({ resolveVariable }) =>
  integerInRange(
    'retireDeleteAfterDays',
    await readParam(resolveVariable, 'retireDeleteAfterDays'),
    RETIRE_DAYS.min,
    RETIRE_DAYS.max,
    'at least a week disabled, at most a year',
  );

/** The declared state of the provisioned key, as tags: managed, its aliases, its rotation period. */
const keyTags = async ({ resolveVariable }) => {
  const period = await rotationPeriodDays({ resolveVariable });
  const declaredAlias = await alias({ resolveVariable });
  const stage = await resolveVariable('sls:stage');
  return [
    { Key: `${SERVICE_TAG_PREFIX}managed`, Value: 'true' },
    { Key: `${SERVICE_TAG_PREFIX}aliases`, Value: declaredAlias },
    { Key: `${SERVICE_TAG_PREFIX}period-days`, Value: String(period) },
    { Key: `${SERVICE_TAG_PREFIX}stage`, Value: String(stage) },
  ];
};

/**
 * `importExpiryWarningDays`: how many days before imported key material's ValidTo the audit
 * notifies it. 1..365: ImportKeyMaterial's ValidTo is at most 365 days after the import.
 */
const importExpiryWarningDays = async ({ resolveVariable }) =>
  integerInRange(
    'importExpiryWarningDays',
    await readParam(resolveVariable, 'importExpiryWarningDays'),
    1,
    365,
    'imported key material is valid at most 365 days',
  );

/** `rotationDueWarningDays`: how many days before a key's material reaches the maximum age the audit notifies it (1..365). */
const rotationDueWarningDays = async ({ resolveVariable }) =>
  integerInRange(
    'rotationDueWarningDays',
    await readParam(resolveVariable, 'rotationDueWarningDays'),
    1,
    365,
    'at most a year of notice',
  );

/** IAM's limit on a role name (IAM User Guide, "IAM and AWS STS quotas"). */
const ROLE_NAME_MAX = 64;
const ROLE_NAME_CHARACTERS = /^[\w+=,.@-]+$/;
const REGION_NAME = /^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$/;
const ORGANIZATION_ID = /^o-[a-z0-9]{10,32}$/;
/** Organizations' patterns of an OU id and a root id (Organizations API Reference, OrganizationalUnit and Root). */
const TARGET_ID = /^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$/;

/** The member stack's AliasScope holds at most this many patterns (member/member-stack.yml, MoveAliasesInScope). */
const MEMBER_ALIAS_SCOPE_MAX = 5;

const listOf = (raw) => raw.split(/[\s,]+/).filter(Boolean);

const wholeNumberInRange = (name, raw, min, max, why) => {
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new StackParameterError(
      `Parameter "${name}" must be a whole number from ${min} to ${max} (${why}), got "${raw}".`,
    );
  }
  return Number(raw);
};

/**
 * The organization's stage parameters, validated together (docs/organization.md). Organization
 * mode is on when `organizationUnitIds` is set; it then needs a valid `organizationId`, which
 * the central bus's policy and the AssumeRole grant are scoped to. The member role is named
 * `<memberRoleName>-<region>` in each member Region: the prefix must leave room for the longest
 * of those Regions within IAM's 64 characters. Checked on every package, in any mode, so that
 * a bad value is refused before it is ever used.
 */
const organization = async (resolveVariable) => {
  const organizationId = await readParam(resolveVariable, 'organizationId');
  const unitIds = listOf(await readParam(resolveVariable, 'organizationUnitIds'));
  const regions = listOf(await readParam(resolveVariable, 'organizationRegions'));
  const memberRoleName = await readParam(resolveVariable, 'memberRoleName');
  if (organizationId !== '' && !ORGANIZATION_ID.test(organizationId)) {
    throw new StackParameterError(
      `Parameter "organizationId" must be an organization id like "o-abcdef1234", got "${organizationId}".`,
    );
  }
  for (const id of unitIds) {
    if (!TARGET_ID.test(id)) {
      throw new StackParameterError(
        `Parameter "organizationUnitIds" lists OU ids like "ou-ab12-cdefgh12" or root ids like "r-ab12", got "${id}".`,
      );
    }
  }
  if (unitIds.length > 0 && organizationId === '') {
    throw new StackParameterError(
      'Parameter "organizationUnitIds" turns organization mode on, which needs "organizationId" (o-...): the central event bus admits events from that organization only, and the functions assume member roles of that organization only.',
    );
  }
  for (const region of regions) {
    if (!REGION_NAME.test(region)) {
      throw new StackParameterError(
        `Parameter "organizationRegions" lists Region names like "eu-west-1", got "${region}".`,
      );
    }
  }
  const memberRegions = regions.length > 0 ? regions : [String(await resolveVariable('self:provider.region'))];
  const longest = memberRegions.reduce((a, b) => (b.length > a.length ? b : a));
  if (!ROLE_NAME_CHARACTERS.test(memberRoleName) || memberRoleName.length + 1 + longest.length > ROLE_NAME_MAX) {
    throw new StackParameterError(
      `Parameter "memberRoleName" must be IAM role-name characters short enough that "${memberRoleName}-${longest}" stays within ${ROLE_NAME_MAX} characters, got "${memberRoleName}".`,
    );
  }
  wholeNumberInRange(
    'orgAuditConcurrency',
    await readParam(resolveVariable, 'orgAuditConcurrency'),
    2,
    1000,
    "the SQS event source mapping's maximum concurrency",
  );
  wholeNumberInRange(
    'orgAuditAttempts',
    await readParam(resolveVariable, 'orgAuditAttempts'),
    1,
    10,
    'attempts per account-Region item',
  );
  const schedule = await readParam(resolveVariable, 'orgAuditSchedule');
  if (!/^(cron|rate)\(.+\)$/.test(schedule)) {
    throw new StackParameterError(
      `Parameter "orgAuditSchedule" must be an EventBridge schedule expression like "cron(0 4 * * ? *)", got "${schedule}".`,
    );
  }
  if (unitIds.length > 0 && (await aliasPatterns(resolveVariable)).length > MEMBER_ALIAS_SCOPE_MAX) {
    throw new StackParameterError(
      `Parameter "aliasScope" lists at most ${MEMBER_ALIAS_SCOPE_MAX} alias names or folders in organization mode: the member stack's role grants them one by one (member/member-stack.yml).`,
    );
  }
  return { on: unitIds.length > 0, organizationId, unitIds, regions, memberRoleName };
};

/** `MEMBER_ROLE_NAME` of the functions that act in member accounts: the prefix in organization mode, empty otherwise. */
const memberRoleNameSetting = async ({ resolveVariable }) => {
  const org = await organization(resolveVariable);
  return org.on ? org.memberRoleName : '';
};

/** The `OrganizationMode` template parameter's value: "true" in organization mode. */
const organizationMode = async ({ resolveVariable }) => String((await organization(resolveVariable)).on);

/** `organizationId`, validated (what the bus policy and the AssumeRole grant are scoped to); empty outside organization mode. */
const organizationId = async ({ resolveVariable }) => (await organization(resolveVariable)).organizationId;

/** `memberRoleName`, validated (what the AssumeRole grant names in organization mode). */
const memberRoleName = async ({ resolveVariable }) => (await organization(resolveVariable)).memberRoleName;

/** The organization audit's functions (a map merged into `functions:`), or none outside organization mode. */
const orgAuditFunctionsFile = async ({ resolveVariable }) =>
  (await organization(resolveVariable)).on ? './resources/org-audit-functions.yml' : './resources/none.yml';

/** The organization audit's resources, or none outside organization mode. */
const orgAuditResourcesFile = async ({ resolveVariable }) =>
  (await organization(resolveVariable)).on ? './resources/org-audit.yml' : './resources/none.yml';

/** The org audit's event source mapping `ScalingConfig.MaximumConcurrency`: Lambda allows 2..1000. */
const orgAuditConcurrency = async ({ resolveVariable }) =>
  wholeNumberInRange(
    'orgAuditConcurrency',
    await readParam(resolveVariable, 'orgAuditConcurrency'),
    2,
    1000,
    "the SQS event source mapping's maximum concurrency",
  );

/** Attempts per account-Region before it is reported failed. */
const orgAuditAttempts = async ({ resolveVariable }) =>
  wholeNumberInRange(
    'orgAuditAttempts',
    await readParam(resolveVariable, 'orgAuditAttempts'),
    1,
    10,
    'attempts per account-Region item',
  );

/** The org audit queue's redrive `maxReceiveCount`: the attempts, and the receive that records the item failed. */
const orgAuditMaxReceiveCount = async (context) => (await orgAuditAttempts(context)) + 1;

module.exports = {
  StackParameterError,
  orgAuditFunctionsFile,
  orgAuditResourcesFile,
  orgAuditConcurrency,
  orgAuditAttempts,
  orgAuditMaxReceiveCount,
  rotationPeriodDays,
  deletionWindowDays,
  alias,
  aliasScope,
  aliasScopeArns,
  keyPolicy,
  notificationKeyPolicy,
  keyTags,
  auditReportsBucket,
  auditReportExpiryDays,
  importExpiryWarningDays,
  rotationDueWarningDays,
  retireMode,
  retireDisableAfterDays,
  retireDeleteAfterDays,
  RETIRE_DAYS,
  memberRoleNameSetting,
  organizationMode,
  organizationId,
  memberRoleName,
  ADMIN_ACTIONS,
  USER_ACTIONS,
};
