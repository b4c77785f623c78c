import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import STAGE_DEFAULTS from '../../../config/defaults.json';
import { ConfigurationError, loadConfig } from '../../../src/config';
import { MINIMAL_ENV } from '../support/minimal-env';

type Resolver = { resolveVariable: (variable: string) => Promise<unknown> };
interface StackModule {
  StackParameterError: new (message: string) => Error;
  memberRoleNameSetting(resolver: Resolver): Promise<string>;
  organizationMode(resolver: Resolver): Promise<string>;
  organizationId(resolver: Resolver): Promise<string>;
}

const stack = createRequire(import.meta.url)('../../../config/stack.cjs') as StackModule;

/** The stage's parameters: the defaults, with `params` over them; the stack's Region is us-east-1. */
const resolver = (params: Record<string, string>, region = 'us-east-1'): Resolver => ({
  resolveVariable: async (variable) =>
    variable === 'self:provider.region'
      ? region
      : ({ ...STAGE_DEFAULTS, ...params } as Record<string, string>)[variable.replace(/^param:/, '')],
});

const ORG = { organizationUnitIds: 'ou-ab12-cdefgh12', organizationId: 'o-abcdef1234' };

describe('Organization stage parameters (config/stack.cjs)', () => {
  it('leaves organization mode off by default: MEMBER_ROLE_NAME is empty', async () => {
    await expect(stack.memberRoleNameSetting(resolver({}))).resolves.toBe('');
    await expect(stack.organizationMode(resolver({}))).resolves.toBe('false');
  });

  it.each<[Record<string, string>]>([
    [ORG],
    [{ organizationUnitIds: 'ou-ab12-cdefgh12,r-ab12', organizationId: 'o-abcdef1234' }],
    [{ ...ORG, organizationRegions: 'eu-west-1, ap-southeast-2', memberRoleName: 'x'.repeat(48) }],
  ])('turns organization mode on with valid values: %j', async (params) => {
    await expect(stack.memberRoleNameSetting(resolver(params))).resolves.toBe(
      params.memberRoleName ?? 'kms-rotation-member',
    );
    await expect(stack.organizationMode(resolver(params))).resolves.toBe('true');
    await expect(stack.organizationId(resolver(params))).resolves.toBe('o-abcdef1234');
  });

  it.each([
    [{ organizationUnitIds: 'ou-ab12-cdefgh12' }, 'organizationUnitIds', 'needs "organizationId"'],
    [{ ...ORG, organizationId: 'org-1' }, 'organizationId', 'like "o-abcdef1234"'],
    [{ ...ORG, organizationUnitIds: 'ou-ab12-cdefgh12,123456789012' }, 'organizationUnitIds', '"123456789012"'],
    [{ ...ORG, organizationRegions: 'eu-west-1,Europe' }, 'organizationRegions', '"Europe"'],
    // 50 + "-ap-southeast-2" is 65 characters: over IAM's 64.
    [{ ...ORG, organizationRegions: 'ap-southeast-2', memberRoleName: 'x'.repeat(50) }, 'memberRoleName', 'within 64'],
    [{ ...ORG, memberRoleName: 'kms rotation' }, 'memberRoleName', 'IAM role-name characters'],
    [{ ...ORG, memberRoleName: '' }, 'memberRoleName', 'IAM role-name characters'],
    [{ orgAuditConcurrency: '1' }, 'orgAuditConcurrency', 'from 2 to 1000'],
    [{ orgAuditConcurrency: '1001' }, 'orgAuditConcurrency', 'from 2 to 1000'],
    [{ orgAuditAttempts: '0' }, 'orgAuditAttempts', 'from 1 to 10'],
    [{ orgAuditAttempts: 'three' }, 'orgAuditAttempts', 'from 1 to 10'],
    [{ orgAuditSchedule: 'daily' }, 'orgAuditSchedule', 'schedule expression'],
    [{ ...ORG, aliasScope: 'alias/a/*,alias/b/*,alias/c/*,alias/d/*,alias/e/*,alias/f/*' }, 'aliasScope', 'at most 5'],
  ])('refuses %j at package time, naming %s', async (params, name, why) => {
    const result = stack.memberRoleNameSetting(resolver(params));
    await expect(result).rejects.toBeInstanceOf(stack.StackParameterError);
    await expect(result).rejects.toThrow(`Parameter "${name}"`);
    await expect(result).rejects.toThrow(why);
  });

  it("checks the role name against the stack's own Region when organizationRegions is empty", async () => {
    const params = { ...ORG, memberRoleName: 'x'.repeat(50) };
    await expect(stack.memberRoleNameSetting(resolver(params, 'us-east-1'))).resolves.toBe('x'.repeat(50));
    await expect(stack.memberRoleNameSetting(resolver(params, 'ap-southeast-2'))).rejects.toThrow('within 64');
  });
});

describe('MEMBER_ROLE_NAME (src/config.ts)', () => {
  it.each(['onRotation', 'rotate', 'onKeyActivity', 'audit'] as const)(
    'is read by %s: the prefix in organization mode, undefined when empty or unset',
    (fn) => {
      expect(loadConfig({ ...MINIMAL_ENV, MEMBER_ROLE_NAME: 'kms-rotation-member' }, fn).memberRoleName).toBe(
        'kms-rotation-member',
      );
      expect(loadConfig({ ...MINIMAL_ENV, MEMBER_ROLE_NAME: '' }, fn).memberRoleName).toBeUndefined();
      expect(loadConfig({ ...MINIMAL_ENV }, fn).memberRoleName).toBeUndefined();
    },
  );

  it.each(['kms rotation', 'x'.repeat(55), 'role/name'])(
    'fails the cold start naming the variable when it is %j',
    (value) => {
      expect(() => loadConfig({ ...MINIMAL_ENV, MEMBER_ROLE_NAME: value }, 'audit')).toThrow(ConfigurationError);
      expect(() => loadConfig({ ...MINIMAL_ENV, MEMBER_ROLE_NAME: value }, 'audit')).toThrow('MEMBER_ROLE_NAME');
    },
  );

  it('is not read by the functions that never act in member accounts', () => {
    expect(loadConfig({ ...MINIMAL_ENV, MEMBER_ROLE_NAME: 'bad name' }, 'selfTest').memberRoleName).toBeUndefined();
    expect(loadConfig({ ...MINIMAL_ENV, MEMBER_ROLE_NAME: 'bad name' }, 'retire').memberRoleName).toBeUndefined();
  });
});
