// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub strings, as the policy holds them
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

type Resolver = { resolveVariable: (variable: string) => Promise<unknown> };
type CfnValue = string | Record<string, unknown>;

interface Statement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Principal: '*' | { AWS?: CfnValue | CfnValue[]; Service?: string | string[] };
  Action: string | string[];
  Resource: string;
  Condition?: Record<string, Record<string, unknown>>;
}

interface StackModule {
  StackParameterError: new (message: string) => Error;
  rotationPeriodDays(resolver: Resolver): Promise<number>;
  deletionWindowDays(resolver: Resolver): Promise<number>;
  alias(resolver: Resolver): Promise<string>;
  keyPolicy(resolver: Resolver): Promise<{ Version: string; Statement: Statement[] }>;
  notificationKeyPolicy(resolver: Resolver): Promise<{ Version: string; Statement: Statement[] }>;
  aliasScope(resolver: Resolver): Promise<string>;
  aliasScopeArns(resolver: Resolver): Promise<unknown[]>;
  keyTags(resolver: Resolver): Promise<{ Key: string; Value: string }[]>;
  auditReportsBucket(resolver: Resolver): Promise<string | { Ref: string }>;
  auditReportExpiryDays(resolver: Resolver): Promise<number>;
  USER_ACTIONS: string[];
}

const stack = createRequire(import.meta.url)('../../../config/stack.cjs') as StackModule;

const ADMIN = 'arn:aws:iam::123456789012:role/KeyAdmins';
const USER = 'arn:aws:iam::123456789012:role/app';
const OTHER_USER = 'arn:aws:iam::123456789012:user/alice';

/** What the Serverless Framework hands a `${file(...)}` export: `param:<name>` and `sls:stage` resolved. */
const resolver = (params: Record<string, unknown>, stage = 'test'): Resolver => ({
  resolveVariable: async (variable) =>
    variable === 'sls:stage'
      ? stage
      : variable === 'self:service'
        ? 'kms-rotation'
        : params[variable.replace(/^param:/, '')],
});

const actionsOf = (statement: Statement | undefined): string[] =>
  statement === undefined ? [] : ([] as string[]).concat(statement.Action);

/** Every principal value a statement names, flattened (CloudFormation intrinsics as JSON). */
const principalsOf = (statement: Statement): string[] => {
  if (statement.Principal === '*') return ['*'];
  return Object.values(statement.Principal)
    .flatMap((value) => ([] as unknown[]).concat(value))
    .map((value) => (typeof value === 'string' ? value : JSON.stringify(value)));
};

/** Whether `action` (possibly a wildcard like `kms:*`) allows `wanted`. */
const allows = (action: string, wanted: string): boolean =>
  new RegExp(`^${action.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i').test(wanted);

const CRYPTOGRAPHIC_ACTIONS = [
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:GenerateDataKeyPair',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
  'kms:Sign',
  'kms:Verify',
  'kms:GenerateMac',
  'kms:VerifyMac',
  'kms:DeriveSharedSecret',
];

const fullPolicy = () =>
  stack.keyPolicy(
    resolver({ keyAdministrators: ADMIN, keyUsers: `${USER}, ${OTHER_USER}`, keyViaServices: 'sns sqs' }),
  );

const isAccountRootDelegation = (statement: Statement) => statement.Sid === 'EnableIamPoliciesOfThisAccount';

describe('Module: config/stack.cjs', () => {
  describe('Method: rotationPeriodDays', () => {
    it.each([
      ['90', 90],
      ['365', 365],
      ['2560', 2560],
      [365, 365],
      [' 730 ', 730],
    ])('returns %j as %i days', async (value, days) => {
      await expect(stack.rotationPeriodDays(resolver({ rotationPeriodDays: value }))).resolves.toBe(days);
    });

    it.each([
      ['89', 'between 90 and 2560 days'],
      ['2561', 'between 90 and 2560 days'],
      ['abc', 'whole number of days, got "abc"'],
      ['365.5', 'whole number of days'],
      ['-90', 'whole number of days'],
      ['1e3', 'whole number of days'],
      [undefined, 'whole number of days, got ""'],
    ])('throws StackParameterError naming the parameter when it is %j', async (value, why) => {
      // Act
      const result = stack.rotationPeriodDays(resolver({ rotationPeriodDays: value }));

      // Assess
      await expect(result).rejects.toBeInstanceOf(stack.StackParameterError);
      await expect(result).rejects.toThrow('Parameter "rotationPeriodDays"');
      await expect(result).rejects.toThrow(why);
    });
  });

  describe('Method: deletionWindowDays', () => {
    it.each(['7', '30'])('returns %s days', async (value) => {
      await expect(stack.deletionWindowDays(resolver({ deletionWindowDays: value }))).resolves.toBe(Number(value));
    });

    it.each(['6', '31', 'thirty'])('throws StackParameterError naming the parameter when it is %s', async (value) => {
      const result = stack.deletionWindowDays(resolver({ deletionWindowDays: value }));
      await expect(result).rejects.toBeInstanceOf(stack.StackParameterError);
      await expect(result).rejects.toThrow('Parameter "deletionWindowDays"');
    });
  });

  describe('Method: alias', () => {
    it('returns a customer alias name', async () => {
      await expect(stack.alias(resolver({ aliasName: 'alias/app/secure-key' }))).resolves.toBe('alias/app/secure-key');
    });

    it.each(['alias/aws/s3', 'app/secure-key', 'alias/app key', ''])(
      'throws StackParameterError when it is "%s"',
      async (value) => {
        const result = stack.alias(resolver({ aliasName: value }));
        await expect(result).rejects.toBeInstanceOf(stack.StackParameterError);
        await expect(result).rejects.toThrow('Parameter "aliasName"');
      },
    );
  });

  describe('Method: keyPolicy', () => {
    it.each([
      ['keyAdministrators', '*'],
      ['keyUsers', '*'],
      ['keyUsers', `${USER} *`],
      ['keyAdministrators', 'arn:aws:iam::*:root'],
      ['keyUsers', 'alice'],
      ['keyUsers', 'arn:aws:s3:::bucket'],
      ['keyAdministrators', 'arn:aws:iam::123456789012:group/admins'],
    ])('throws StackParameterError naming %s when it lists "%s"', async (parameter, value) => {
      // Act
      const result = stack.keyPolicy(resolver({ [parameter]: value }));

      // Assess
      await expect(result).rejects.toBeInstanceOf(stack.StackParameterError);
      await expect(result).rejects.toThrow(`Parameter "${parameter}" must list IAM role, user or account-root ARNs`);
    });

    it.each(['sns.amazonaws.com', '*', 'S3'])(
      'throws StackParameterError when keyViaServices lists "%s"',
      async (value) => {
        const result = stack.keyPolicy(resolver({ keyViaServices: value }));
        await expect(result).rejects.toBeInstanceOf(stack.StackParameterError);
        await expect(result).rejects.toThrow('Parameter "keyViaServices"');
      },
    );

    it('allows no principal "*": the only wildcard principal is in the Deny that keeps use to the listed services', async () => {
      // Act
      const policy = await fullPolicy();

      // Assess
      expect(policy.Version).toBe('2012-10-17');
      expect(policy.Statement.length).toBeGreaterThan(3);
      for (const statement of policy.Statement) {
        expect(principalsOf(statement).length).toBeGreaterThan(0);
        if (statement.Effect === 'Allow') expect(principalsOf(statement)).not.toContain('*');
      }
      const wildcard = policy.Statement.filter((statement) => principalsOf(statement).includes('*'));
      expect(wildcard.map((statement) => [statement.Sid, statement.Effect])).toEqual([
        ['AccountPrincipalsUseOnlyThroughNamedServices', 'Deny'],
      ]);
    });

    it('delegates to IAM through the account root only', async () => {
      const [root] = (await fullPolicy()).Statement;
      expect(root).toEqual({
        Sid: 'EnableIamPoliciesOfThisAccount',
        Effect: 'Allow',
        Principal: { AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${AWS::AccountId}:root' } },
        Action: 'kms:*',
        Resource: '*',
      });
    });

    it('gives key administrators the lifecycle without any cryptographic action or grant', async () => {
      // Act
      const administrators = (await fullPolicy()).Statement.find((statement) => statement.Sid === 'KeyAdministrators');

      // Assess
      expect(administrators?.Principal).toEqual({ AWS: [ADMIN] });
      const actions = actionsOf(administrators);
      expect(actions).toEqual(
        expect.arrayContaining([
          'kms:DescribeKey',
          'kms:EnableKeyRotation',
          'kms:RotateKeyOnDemand',
          'kms:ScheduleKeyDeletion',
        ]),
      );
      for (const wanted of [...CRYPTOGRAPHIC_ACTIONS, 'kms:CreateGrant']) {
        expect(actions.filter((action) => allows(action, wanted))).toEqual([]);
      }
    });

    it('gives key users exactly Encrypt, Decrypt, ReEncrypt*, GenerateDataKey* and DescribeKey', async () => {
      const users = (await fullPolicy()).Statement.find((statement) => statement.Sid === 'KeyUsers');
      expect(users?.Principal).toEqual({ AWS: [USER, OTHER_USER] });
      expect(actionsOf(users).sort()).toEqual([
        'kms:Decrypt',
        'kms:DescribeKey',
        'kms:Encrypt',
        'kms:GenerateDataKey*',
        'kms:ReEncrypt*',
      ]);
      expect(users?.Condition).toBeUndefined();
    });

    it('allows grants only for AWS resources', async () => {
      // Act
      const statements = (await fullPolicy()).Statement.filter((statement) => !isAccountRootDelegation(statement));

      // Assess
      const granting = statements.filter((statement) =>
        actionsOf(statement).some((action) => allows(action, 'kms:CreateGrant')),
      );
      expect(granting.map((statement) => statement.Sid)).toEqual(['KeyUsersGrantsOnlyForAwsResources']);
      for (const statement of granting) {
        expect(statement.Condition).toEqual({ Bool: { 'kms:GrantIsForAWSResource': 'true' } });
      }
    });

    it('denies cryptographic use outside the listed services to every principal but the key users and the service roles', async () => {
      // Act
      const deny = (await fullPolicy()).Statement.find((statement) => statement.Effect === 'Deny');

      // Assess
      expect(deny?.Sid).toBe('AccountPrincipalsUseOnlyThroughNamedServices');
      expect(actionsOf(deny).sort()).toEqual(['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*']);
      expect(deny?.Condition).toEqual({
        StringNotEquals: {
          'kms:ViaService': [
            { 'Fn::Sub': 'sns.${AWS::Region}.amazonaws.com' },
            { 'Fn::Sub': 'sqs.${AWS::Region}.amazonaws.com' },
          ],
        },
        ArnNotEquals: {
          'aws:PrincipalArn': [
            USER,
            OTHER_USER,
            { 'Fn::GetAtt': ['OnRotationRole', 'Arn'] },
            { 'Fn::GetAtt': ['RotateRole', 'Arn'] },
            { 'Fn::GetAtt': ['OnKeyActivityRole', 'Arn'] },
          ],
        },
      });
    });

    it('adds no Allow beside the root delegation for account principals, which would add nothing', async () => {
      const statements = (await fullPolicy()).Statement.filter((statement) => !isAccountRootDelegation(statement));
      const accountWideAllows = statements.filter(
        (statement) =>
          statement.Effect === 'Allow' && principalsOf(statement).some((principal) => principal.includes(':root')),
      );
      expect(accountWideAllows).toEqual([]);
    });

    it('lets no AWS service principal in: the watched key does not encrypt the topic', async () => {
      const services = (await fullPolicy()).Statement.filter(
        (statement) => statement.Principal !== '*' && statement.Principal.Service !== undefined,
      );
      expect(services).toEqual([]);
    });

    it('returns only the IAM delegation when no administrator, user or service is listed', async () => {
      const policy = await stack.keyPolicy(resolver({}));
      expect(policy.Statement.map((statement) => statement.Sid)).toEqual(['EnableIamPoliciesOfThisAccount']);
    });
  });

  describe('Method: notificationKeyPolicy', () => {
    it("lets CloudWatch use the topic's key only for this stack's alarms, in this account, for this topic", async () => {
      // Act
      const policy = await stack.notificationKeyPolicy(resolver({}, 'prod'));

      // Assess
      expect(policy.Statement.map((statement) => statement.Sid)).toEqual([
        'EnableIamPoliciesOfThisAccount',
        'AlarmsOfThisStackPublishToTheTopic',
      ]);
      const alarms = policy.Statement[1] as Statement;
      expect(alarms.Principal).toEqual({ Service: 'cloudwatch.amazonaws.com' });
      expect(actionsOf(alarms).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey*']);
      expect(alarms.Condition).toEqual({
        StringEquals: {
          'aws:SourceAccount': { Ref: 'AWS::AccountId' },
          'kms:EncryptionContext:aws:sns:topicArn': {
            'Fn::Sub': 'arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:kms-rotation-prod-notifications',
          },
        },
        ArnLike: {
          'aws:SourceArn': {
            'Fn::Sub': 'arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:kms-rotation-prod-*',
          },
        },
      });
    });
  });

  describe('Method: aliasScope', () => {
    it.each([
      ['alias/app/secure-key', '', 'alias/app/*'],
      ['alias/team/app/key', '', 'alias/team/app/*'],
      ['alias/solo', '', 'alias/solo'],
      ['alias/app/secure-key', 'alias/payments/*, alias/app/one', 'alias/payments/*,alias/app/one'],
    ])('with aliasName %s and aliasScope "%s" is %s', async (aliasName, aliasScope, expected) => {
      await expect(stack.aliasScope(resolver({ aliasName, aliasScope }))).resolves.toBe(expected);
    });

    it('gives the alias grants the ARNs of the scope', async () => {
      await expect(stack.aliasScopeArns(resolver({ aliasName: 'alias/app/k', aliasScope: '' }))).resolves.toEqual([
        { 'Fn::Sub': 'arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:alias/app/*' },
      ]);
    });

    it.each(['alias/*', 'alias/aws/*', 'app/*', 'alias/a*b'])(
      'throws StackParameterError naming aliasScope when it lists "%s"',
      async (value) => {
        const result = stack.aliasScope(resolver({ aliasName: 'alias/app/k', aliasScope: value }));
        await expect(result).rejects.toBeInstanceOf(stack.StackParameterError);
        await expect(result).rejects.toThrow('Parameter "aliasScope"');
      },
    );
  });

  describe('Method: keyTags', () => {
    it('returns the declared state of the key, with the stage', async () => {
      const tags = await stack.keyTags(
        resolver({ rotationPeriodDays: '180', aliasName: 'alias/app/secure-key' }, 'prod'),
      );
      expect(tags).toEqual([
        { Key: 'kms-rotation:managed', Value: 'true' },
        { Key: 'kms-rotation:aliases', Value: 'alias/app/secure-key' },
        { Key: 'kms-rotation:period-days', Value: '180' },
        { Key: 'kms-rotation:stage', Value: 'prod' },
      ]);
    });

    it('throws StackParameterError when the period is out of range', async () => {
      const result = stack.keyTags(resolver({ rotationPeriodDays: '89', aliasName: 'alias/app/secure-key' }));
      await expect(result).rejects.toBeInstanceOf(stack.StackParameterError);
    });
  });
  describe('Method: auditReportsBucket', () => {
    it('is a Ref of the report bucket when auditReports is "true", empty text when "false"', async () => {
      await expect(stack.auditReportsBucket(resolver({ auditReports: 'true' }))).resolves.toEqual({
        Ref: 'AuditReportsBucket',
      });
      await expect(stack.auditReportsBucket(resolver({ auditReports: 'false' }))).resolves.toBe('');
    });

    it.each(['yes', 'TRUE', '1', undefined])(
      'throws StackParameterError naming the parameter when it is %j',
      async (value) => {
        const result = stack.auditReportsBucket(resolver({ auditReports: value }));
        await expect(result).rejects.toBeInstanceOf(stack.StackParameterError);
        await expect(result).rejects.toThrow('Parameter "auditReports" must be "true" or "false"');
      },
    );
  });

  describe('Method: auditReportExpiryDays', () => {
    it.each([
      ['1', 1],
      ['365', 365],
      ['3650', 3650],
    ])('returns %s as %i days', async (value, days) => {
      await expect(stack.auditReportExpiryDays(resolver({ auditReportExpiryDays: value }))).resolves.toBe(days);
    });

    it.each([
      ['0', 'between 1 and 3650 days (report retention)'],
      ['3651', 'between 1 and 3650 days (report retention)'],
      ['a year', 'whole number of days'],
    ])('throws StackParameterError naming the parameter when it is %j', async (value, why) => {
      const result = stack.auditReportExpiryDays(resolver({ auditReportExpiryDays: value }));
      await expect(result).rejects.toBeInstanceOf(stack.StackParameterError);
      await expect(result).rejects.toThrow('Parameter "auditReportExpiryDays"');
      await expect(result).rejects.toThrow(why);
    });
  });
});
