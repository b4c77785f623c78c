import { describe, expect, it } from 'vitest';
import { readDeclaredState } from '../../../../src/domain/declared-state';
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
} from '../../../../src/domain/drift-rules';
import type { KeyDescription } from '../../../../src/domain/model';
import { keyDescription } from '../../support/key-description';

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

describe('Rule: rotation-enabled', () => {
  it('fires, remediable with the declared period, when rotation is off on a symmetric key', () => {
    const [finding, ...rest] = rotationDisabled(snapshot({ rotation: { enabled: false } }));
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      rule: 'rotation-enabled',
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

describe('Rule: rotation-period', () => {
  it('fires when the period differs from the declared one, remediable back to it', () => {
    expect(rotationPeriodChanged(snapshot({ rotation: { enabled: true, periodDays: 730 } }))).toEqual([
      expect.objectContaining({
        rule: 'rotation-period',
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

describe('Every drift, whole: rule, severity, summary, evidence, fingerprint and remediation', () => {
  const OTHER = 'ffff0000-0000-4000-8000-000000000000';
  const pendingOn = new Date('2026-12-01T00:00:00Z');
  const wildcard = JSON.stringify({
    Statement: [
      ...JSON.parse(GOOD_POLICY).Statement,
      { Sid: 'Open', Effect: 'Allow', Principal: '*', Action: 'kms:Decrypt', Resource: '*' },
    ],
  });
  const CASES: { name: string; found: () => unknown[]; expected: object[] }[] = [
    {
      name: 'rotation-enabled',
      found: () => rotationDisabled(snapshot({ rotation: { enabled: false } })),
      expected: [
        {
          rule: 'rotation-enabled',
          severity: 'WARNING',
          keyId: KEY_ID,
          summary: `automatic rotation is disabled on managed key ${KEY_ID}`,
          evidence: { rotationEnabled: false, declaredPeriodDays: 365 },
          fingerprint: `rotation-enabled:${KEY_ID}`,
          remediation: { action: 'enable-rotation', keyId: KEY_ID, periodDays: 365 },
        },
      ],
    },
    {
      name: 'rotation-period',
      found: () => rotationPeriodChanged(snapshot({ rotation: { enabled: true, periodDays: 730 } })),
      expected: [
        {
          rule: 'rotation-period',
          severity: 'WARNING',
          summary: `rotation period of ${KEY_ID} is 730 days, declared 365`,
          evidence: { periodDays: 730, declaredPeriodDays: 365 },
          fingerprint: `rotation-period:${KEY_ID}:730`,
          remediation: { action: 'enable-rotation', keyId: KEY_ID, periodDays: 365 },
        },
      ],
    },
    {
      name: 'declared-alias-missing and declared-alias-elsewhere',
      found: () =>
        declaredAliasDrift(
          snapshot({
            declared: readDeclaredState({ 'kms-rotation:managed': 'true', 'kms-rotation:aliases': 'alias/a alias/b' }),
            declaredAliasTargets: { 'alias/a': 'missing', 'alias/b': OTHER },
          }),
        ),
      expected: [
        {
          rule: 'declared-alias-missing',
          severity: 'WARNING',
          summary: `declared alias alias/a of ${KEY_ID} does not exist`,
          evidence: { aliasName: 'alias/a' },
          fingerprint: `declared-alias-missing:${KEY_ID}:alias/a`,
          remediation: { action: 'point-alias', keyId: KEY_ID, aliasName: 'alias/a', aliasExists: false },
        },
        {
          rule: 'declared-alias-elsewhere',
          severity: 'WARNING',
          summary: `declared alias alias/b points at ${OTHER}, not at ${KEY_ID}`,
          evidence: { aliasName: 'alias/b', pointsAt: OTHER },
          fingerprint: `declared-alias-elsewhere:${KEY_ID}:alias/b->${OTHER}`,
          remediation: { action: 'point-alias', keyId: KEY_ID, aliasName: 'alias/b', aliasExists: true },
        },
      ],
    },
    {
      name: 'undeclared-alias',
      found: () => undeclaredAlias(snapshot({ aliasesOfKey: ['alias/app/key', 'alias/extra'] })),
      expected: [
        {
          rule: 'undeclared-alias',
          severity: 'WARNING',
          summary: `alias alias/extra points at managed key ${KEY_ID} without being declared on it`,
          evidence: { aliasName: 'alias/extra' },
          fingerprint: `undeclared-alias:${KEY_ID}:alias/extra`,
          remediation: undefined,
        },
      ],
    },
    {
      name: 'key-disabled',
      found: () => keyUnusable(snapshot({ key: key({ keyState: 'Disabled' }) })),
      expected: [
        {
          rule: 'key-disabled',
          severity: 'CRITICAL',
          summary: `managed key ${KEY_ID} is disabled: nothing can encrypt or decrypt with it`,
          evidence: { keyState: 'Disabled', aliasesPointingAtIt: ['alias/app/key'] },
          fingerprint: `key-disabled:${KEY_ID}`,
        },
      ],
    },
    {
      name: 'key-pending-deletion, an alias on it',
      found: () => keyUnusable(snapshot({ key: key({ keyState: 'PendingDeletion', deletionDate: pendingOn }) })),
      expected: [
        {
          rule: 'key-pending-deletion',
          severity: 'CRITICAL',
          summary: `managed key ${KEY_ID} is scheduled for deletion on 2026-12-01T00:00:00.000Z while alias/app/key still point at it`,
          evidence: {
            keyState: 'PendingDeletion',
            deletionDate: '2026-12-01T00:00:00.000Z',
            aliasesPointingAtIt: ['alias/app/key'],
          },
          fingerprint: `key-pending-deletion:${KEY_ID}`,
        },
      ],
    },
    {
      name: 'key-pending-deletion, no date known, no alias',
      found: () => keyUnusable(snapshot({ key: key({ keyState: 'PendingDeletion' }), aliasesOfKey: [] })),
      expected: [
        {
          rule: 'key-pending-deletion',
          severity: 'WARNING',
          summary: `managed key ${KEY_ID} is scheduled for deletion`,
          evidence: { keyState: 'PendingDeletion', deletionDate: undefined, aliasesPointingAtIt: [] },
        },
      ],
    },
    {
      name: 'imported-material-expired',
      found: () => keyUnusable(snapshot({ key: key({ origin: 'EXTERNAL', keyState: 'PendingImport' }) })),
      expected: [
        {
          rule: 'imported-material-expired',
          severity: 'CRITICAL',
          summary: `imported key material of ${KEY_ID} is gone (expired or deleted)`,
          evidence: { keyState: 'PendingImport', validTo: undefined },
          fingerprint: `imported-material-expired:${KEY_ID}`,
        },
      ],
    },
    {
      name: 'policy-wildcard-principal',
      found: () => policyDrift(snapshot({ policy: wildcard })),
      expected: [
        {
          rule: 'policy-wildcard-principal',
          severity: 'CRITICAL',
          summary: `key policy of ${KEY_ID} grants to any principal ("*") without a condition (Open)`,
          evidence: { statements: ['Open'] },
          fingerprint: `policy-wildcard-principal:${KEY_ID}:Open`,
        },
      ],
    },
    {
      name: 'policy-missing-service-access',
      found: () =>
        policyDrift(
          snapshot({
            policy: JSON.stringify({
              Statement: [
                {
                  Effect: 'Allow',
                  Principal: { AWS: ACCOUNT },
                  Action: ['kms:Describe*', 'kms:List*', 'kms:Get*', 'kms:Encrypt', 'kms:Decrypt', 'kms:TagResource'],
                  Resource: '*',
                },
              ],
            }),
          }),
        ),
      expected: [
        {
          rule: 'policy-missing-service-access',
          severity: 'CRITICAL',
          summary: `key policy of ${KEY_ID} no longer lets the account's IAM grant what kms-rotation needs (kms:EnableKeyRotation, kms:UpdateAlias)`,
          evidence: { missingActions: ['kms:EnableKeyRotation', 'kms:UpdateAlias'] },
          fingerprint: `policy-missing-service-access:${KEY_ID}:kms:EnableKeyRotation,kms:UpdateAlias`,
        },
      ],
    },
    {
      name: 'key-deleted',
      found: () => keyDeleted(snapshot({ key: undefined })),
      expected: [
        {
          rule: 'key-deleted',
          severity: 'CRITICAL',
          summary: `managed key ${KEY_ID} has been deleted: data encrypted with it is unrecoverable`,
          evidence: {},
          fingerprint: `key-deleted:${KEY_ID}`,
        },
      ],
    },
  ];

  it.each(CASES)('$name', ({ found, expected }) => {
    expect(found()).toEqual(expected.map((one) => expect.objectContaining(one)));
  });
});

describe('What the rules leave alone', () => {
  it('judges the period only of keys KMS rotates by itself, with rotation on', () => {
    const rsa = key({ keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' });
    expect(rotationPeriodChanged(snapshot({ key: rsa, rotation: { enabled: true, periodDays: 730 } }))).toEqual([]);
    expect(rotationPeriodChanged(snapshot({ rotation: { enabled: false, periodDays: 730 } }))).toEqual([]);
    expect(rotationPeriodChanged(snapshot({ rotation: undefined }))).toEqual([]);
  });

  it('reads only imported keys waiting for material as expired, never a KMS key pending import', () => {
    expect(keyUnusable(snapshot({ key: key({ origin: 'AWS_KMS', keyState: 'PendingImport' }) }))).toEqual([]);
    expect(keyUnusable(snapshot({ key: key({ origin: 'EXTERNAL', keyState: 'Enabled' }) }))).toEqual([]);
  });

  it('judges no policy of a deleted key, an unread policy or one that is not JSON', () => {
    const open = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' }] });
    expect(policyDrift(snapshot({ key: undefined, policy: open }))).toEqual([]);
    expect(policyDrift(snapshot({ policy: undefined }))).toEqual([]);
    expect(policyDrift(snapshot({ policy: 'not json' }))).toEqual([]);
  });
});

describe('Function: highestSeverity', () => {
  it('orders INFO < WARNING < CRITICAL', () => {
    expect(highestSeverity([{ severity: 'WARNING' }, { severity: 'CRITICAL' }, { severity: 'INFO' }])).toBe('CRITICAL');
    expect(highestSeverity([])).toBe('INFO');
  });
});
