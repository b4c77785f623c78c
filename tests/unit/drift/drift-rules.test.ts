import { describe, expect, it } from 'vitest';
import { readDeclaredState } from '../../../src/domain/declared-state';
import {
  declaredAliasDrift,
  evaluateDrift,
  highestSeverity,
  type KeySnapshot,
  keyDeleted,
  keyUnusable,
  policyDrift,
  rotationDisabled,
  rotationPeriodChanged,
  undeclaredAlias,
} from '../../../src/domain/drift-rules';
import type { KeyDescription } from '../../../src/domain/model';
import { keyDescription } from '../support/key-description';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ACCOUNT = '111122223333';

const key = (overrides: Partial<KeyDescription> = {}): KeyDescription => keyDescription(KEY_ID, overrides, ACCOUNT);

const GOOD_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' }],
});

/** A managed key in its declared state: no rule fires. */
const snapshot = (overrides: Partial<KeySnapshot> = {}): KeySnapshot => ({
  account: ACCOUNT,
  keyId: KEY_ID,
  key: key(),
  declared: readDeclaredState({
    'kms-rotation:managed': 'true',
    'kms-rotation:aliases': 'alias/app/key',
    'kms-rotation:period-days': '365',
  }),
  rotation: { enabled: true, periodDays: 365 },
  aliasesOfKey: ['alias/app/key'],
  declaredAliasTargets: { 'alias/app/key': KEY_ID },
  policy: GOOD_POLICY,
  ...overrides,
});

describe('Function: evaluateDrift', () => {
  it('finds nothing on a key in its declared state', () => {
    expect(evaluateDrift(snapshot())).toEqual([]);
  });
});

describe('Rule: rotation-disabled', () => {
  it('fires, remediable with the declared period, when rotation is off on a symmetric key', () => {
    const [finding, ...rest] = rotationDisabled(snapshot({ rotation: { enabled: false } }));
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      rule: 'rotation-disabled',
      severity: 'WARNING',
      remediation: { action: 'enable-rotation', keyId: KEY_ID, periodDays: 365 },
    });
  });

  it('does not fire for keys KMS cannot rotate (asymmetric, HMAC, imported)', () => {
    for (const overrides of [
      { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' },
      { keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' },
      { origin: 'EXTERNAL' },
    ]) {
      expect(rotationDisabled(snapshot({ key: key(overrides), rotation: { enabled: false } }))).toEqual([]);
    }
  });

  it('does not fire when rotation is on', () => {
    expect(rotationDisabled(snapshot())).toEqual([]);
  });
});

describe('Rule: rotation-period-changed', () => {
  it('fires when the period differs from the declared one, remediable back to it', () => {
    expect(rotationPeriodChanged(snapshot({ rotation: { enabled: true, periodDays: 730 } }))).toEqual([
      expect.objectContaining({
        rule: 'rotation-period-changed',
        evidence: { periodDays: 730, declaredPeriodDays: 365 },
        remediation: { action: 'enable-rotation', keyId: KEY_ID, periodDays: 365 },
      }),
    ]);
  });

  it('does not fire when KMS does not report the period, or none is declared', () => {
    expect(rotationPeriodChanged(snapshot({ rotation: { enabled: true } }))).toEqual([]);
    const undeclared = snapshot({ declared: readDeclaredState({ 'kms-rotation:managed': 'true' }) });
    expect(rotationPeriodChanged({ ...undeclared, rotation: { enabled: true, periodDays: 730 } })).toEqual([]);
  });
});

describe('Rule: declared aliases', () => {
  it('fires declared-alias-elsewhere when a declared alias points at another key', () => {
    const findings = declaredAliasDrift(snapshot({ declaredAliasTargets: { 'alias/app/key': 'other-key' } }));
    expect(findings).toEqual([
      expect.objectContaining({
        rule: 'declared-alias-elsewhere',
        evidence: { aliasName: 'alias/app/key', pointsAt: 'other-key' },
        remediation: { action: 'point-alias', keyId: KEY_ID, aliasName: 'alias/app/key', aliasExists: true },
      }),
    ]);
  });

  it('fires declared-alias-missing when a declared alias was deleted', () => {
    const findings = declaredAliasDrift(snapshot({ declaredAliasTargets: { 'alias/app/key': 'missing' } }));
    expect(findings).toEqual([
      expect.objectContaining({
        rule: 'declared-alias-missing',
        remediation: expect.objectContaining({ aliasExists: false }),
      }),
    ]);
  });

  it('stays quiet while the key is in an alias-swap rotation, whose aliases move on purpose', () => {
    for (const lineageState of ['rotating', 'created'] as const) {
      const moving = snapshot({
        lineageState,
        declaredAliasTargets: { 'alias/app/key': 'successor' },
        aliasesOfKey: ['alias/x'],
      });
      expect(declaredAliasDrift(moving)).toEqual([]);
      expect(undeclaredAlias(moving)).toEqual([]);
    }
  });

  it('fires undeclared-alias for an alias pointed at the managed key without being declared, never remediated', () => {
    const [finding] = undeclaredAlias(snapshot({ aliasesOfKey: ['alias/app/key', 'alias/sneaky'] }));
    expect(finding).toMatchObject({ rule: 'undeclared-alias', evidence: { aliasName: 'alias/sneaky' } });
    expect(finding?.remediation).toBeUndefined();
    expect(undeclaredAlias(snapshot())).toEqual([]);
  });
});

describe('Rule: key state', () => {
  it('is CRITICAL when a managed key is disabled', () => {
    expect(keyUnusable(snapshot({ key: key({ keyState: 'Disabled' }) }))).toEqual([
      expect.objectContaining({ rule: 'key-disabled', severity: 'CRITICAL' }),
    ]);
  });

  it('is CRITICAL when a key is scheduled for deletion while an alias points at it, WARNING otherwise', () => {
    const pending = key({ keyState: 'PendingDeletion', deletionDate: new Date('2026-12-01T00:00:00Z') });
    expect(keyUnusable(snapshot({ key: pending }))).toEqual([
      expect.objectContaining({
        rule: 'key-pending-deletion',
        severity: 'CRITICAL',
        summary: expect.stringContaining('2026-12-01'),
      }),
    ]);
    expect(keyUnusable(snapshot({ key: pending, aliasesOfKey: [] }))).toEqual([
      expect.objectContaining({ rule: 'key-pending-deletion', severity: 'WARNING' }),
    ]);
  });

  it('is CRITICAL when imported key material is gone', () => {
    expect(keyUnusable(snapshot({ key: key({ origin: 'EXTERNAL', keyState: 'PendingImport' }) }))).toEqual([
      expect.objectContaining({ rule: 'imported-material-expired', severity: 'CRITICAL' }),
    ]);
  });

  it('does not fire on an enabled key', () => {
    expect(keyUnusable(snapshot())).toEqual([]);
  });

  it('is CRITICAL when a managed key was deleted, and nothing else is judged of it', () => {
    const deleted = snapshot({ key: undefined, rotation: undefined, policy: undefined, declaredAliasTargets: {} });
    expect(evaluateDrift(deleted)).toEqual([expect.objectContaining({ rule: 'key-deleted', severity: 'CRITICAL' })]);
    expect(keyDeleted(snapshot())).toEqual([]);
  });
});

describe('Rule: key policy', () => {
  const policyWith = (...statements: object[]) =>
    JSON.stringify({ Version: '2012-10-17', Statement: [...JSON.parse(GOOD_POLICY).Statement, ...statements] });

  it('is CRITICAL when the policy grants to "*" without a condition', () => {
    const open = policyWith({ Sid: 'Open', Effect: 'Allow', Principal: '*', Action: 'kms:Decrypt', Resource: '*' });
    expect(policyDrift(snapshot({ policy: open }))).toEqual([
      expect.objectContaining({
        rule: 'policy-wildcard-principal',
        severity: 'CRITICAL',
        evidence: { statements: ['Open'] },
      }),
    ]);
  });

  it('accepts a wildcard principal narrowed by a condition', () => {
    const narrowed = policyWith({
      Effect: 'Allow',
      Principal: { AWS: '*' },
      Action: 'kms:Decrypt',
      Resource: '*',
      Condition: { StringEquals: { 'kms:CallerAccount': ACCOUNT } },
    });
    expect(policyDrift(snapshot({ policy: narrowed }))).toEqual([]);
  });

  it('is CRITICAL when the account root statement the service relies on is gone', () => {
    const locked = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/Admin` }, Action: 'kms:*', Resource: '*' },
      ],
    });
    const [finding] = policyDrift(snapshot({ policy: locked }));
    expect(finding).toMatchObject({ rule: 'policy-missing-service-access', severity: 'CRITICAL' });
    expect(finding?.evidence.missingActions).toContain('kms:DescribeKey');
  });

  it('accepts a root statement that lists the needed actions with wildcards', () => {
    const listed = JSON.stringify({
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: ACCOUNT },
          Action: [
            'kms:Describe*',
            'kms:List*',
            'kms:Get*',
            'kms:EnableKeyRotation',
            'kms:Encrypt',
            'kms:Decrypt',
            'kms:TagResource',
            'kms:UpdateAlias',
          ],
          Resource: '*',
        },
      ],
    });
    expect(policyDrift(snapshot({ policy: listed }))).toEqual([]);
  });
});

describe('Function: highestSeverity', () => {
  it('orders INFO < WARNING < CRITICAL', () => {
    expect(highestSeverity([{ severity: 'WARNING' }, { severity: 'CRITICAL' }, { severity: 'INFO' }])).toBe('CRITICAL');
    expect(highestSeverity([])).toBe('INFO');
  });
});
