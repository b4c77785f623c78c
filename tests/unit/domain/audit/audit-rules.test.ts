import { describe, expect, it } from 'vitest';
import {
  type AuditedKey,
  aliasToUnusableKey,
  auditKey,
  CONTROLS,
  currentMaterialDate,
  declaredAliases,
  declaredKeyMissing,
  keyUnreadable,
  materialAge,
  policyWildcard,
  rotationEnabled,
  rotationPeriod,
} from '../../../../src/domain/audit-rules';
import { readDeclaredState } from '../../../../src/domain/declared-state';
import { classifyKey } from '../../../../src/domain/key-classification';
import type { KeyDescription } from '../../../../src/domain/model';

const NOW = new Date('2026-11-22T00:00:00Z');
const daysAgo = (days: number) => new Date(NOW.getTime() - days * 86_400_000);
const LIMITS = { maxRotationPeriodDays: 365, maxMaterialAgeDays: 400 };

const audited = (keyOverrides: Partial<KeyDescription> = {}, overrides: Partial<AuditedKey> = {}): AuditedKey => {
  const key: KeyDescription = {
    keyId: 'k1',
    arn: 'arn:aws:kms:us-east-1:111122223333:key/k1',
    keyState: 'Enabled',
    keySpec: 'SYMMETRIC_DEFAULT',
    keyUsage: 'ENCRYPT_DECRYPT',
    origin: 'AWS_KMS',
    keyManager: 'CUSTOMER',
    creationDate: daysAgo(100),
    ...keyOverrides,
  };
  return {
    key,
    keyClass: classifyKey(key).keyClass,
    aliases: [],
    declared: readDeclaredState({}),
    rotation: { enabled: true, periodDays: 365 },
    history: [],
    ...overrides,
  };
};

describe('Rule: rotation-enabled (CIS 3.6/3.8, Security Hub KMS.4)', () => {
  it('fires on a symmetric KMS key with rotation off', () => {
    expect(rotationEnabled(audited({}, { rotation: { enabled: false } }))).toEqual([
      expect.objectContaining({ rule: 'rotation-enabled', keyId: 'k1' }),
    ]);
  });

  it('does not fire when rotation is on', () => {
    expect(rotationEnabled(audited())).toEqual([]);
  });

  it.each([
    ['an asymmetric signing key', { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' }],
    ['an asymmetric encryption key', { keySpec: 'RSA_4096', keyUsage: 'ENCRYPT_DECRYPT' }],
    ['an HMAC key', { keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' }],
    ['an imported-material key', { origin: 'EXTERNAL' }],
    ['a CloudHSM key', { origin: 'AWS_CLOUDHSM' }],
    ['an AWS managed key', { keyManager: 'AWS' }],
    ['a multi-Region replica', { multiRegion: true, multiRegionKeyType: 'REPLICA' }],
  ])("does not fire on %s, which KMS cannot rotate (the scanners' false positive)", (_name, overrides) => {
    expect(rotationEnabled(audited(overrides, { rotation: { enabled: false } }))).toEqual([]);
  });
});

describe('Rule: rotation-period', () => {
  it('fires when the period exceeds the maximum', () => {
    expect(rotationPeriod(audited({}, { rotation: { enabled: true, periodDays: 730 } }), LIMITS)).toEqual([
      expect.objectContaining({ rule: 'rotation-period', evidence: { periodDays: 730, maxPeriodDays: 365 } }),
    ]);
  });

  it('fires when a managed key runs another period than its declared one', () => {
    const declared = readDeclaredState({ 'kms-rotation:managed': 'true', 'kms-rotation:period-days': '180' });
    expect(rotationPeriod(audited({}, { declared, rotation: { enabled: true, periodDays: 365 } }), LIMITS)).toEqual([
      expect.objectContaining({ evidence: { periodDays: 365, declaredPeriodDays: 180 } }),
    ]);
  });

  it('does not fire within the maximum, when rotation is off (another rule), or when KMS does not report it', () => {
    expect(rotationPeriod(audited({}, { rotation: { enabled: true, periodDays: 90 } }), LIMITS)).toEqual([]);
    expect(rotationPeriod(audited({}, { rotation: { enabled: false, periodDays: 900 } }), LIMITS)).toEqual([]);
    expect(rotationPeriod(audited({}, { rotation: { enabled: true } }), LIMITS)).toEqual([]);
  });

  it('does not fire on a managed key that runs its declared period, nor when KMS reports no period for it', () => {
    const declared = readDeclaredState({ 'kms-rotation:managed': 'true', 'kms-rotation:period-days': '180' });
    expect(rotationPeriod(audited({}, { declared, rotation: { enabled: true, periodDays: 180 } }), LIMITS)).toEqual([]);
    expect(rotationPeriod(audited({}, { declared, rotation: { enabled: true } }), LIMITS)).toEqual([]);
  });

  it('judges only keys KMS rotates by itself, and reads no rotation status or declared state it lacks', () => {
    const declared = readDeclaredState({ 'kms-rotation:managed': 'true', 'kms-rotation:period-days': '180' });
    const rsa = { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' } as const;
    expect(rotationPeriod(audited(rsa, { declared, rotation: { enabled: true, periodDays: 730 } }), LIMITS)).toEqual(
      [],
    );
    expect(rotationPeriod(audited({}, { rotation: undefined }), LIMITS)).toEqual([]);
    expect(
      rotationPeriod(audited({}, { declared: undefined, rotation: { enabled: true, periodDays: 200 } }), LIMITS),
    ).toEqual([]);
  });
});

describe('Rule: material-age', () => {
  it('fires on a key whose rotation is "on" but whose material was last rotated too long ago', () => {
    const stale = audited(
      { creationDate: daysAgo(1000) },
      { history: [{ rotationDate: daysAgo(500), rotationType: 'AUTOMATIC' }] },
    );
    expect(materialAge(stale, LIMITS, NOW)).toEqual([
      expect.objectContaining({
        rule: 'material-age',
        evidence: expect.objectContaining({ ageDays: 500, maxAgeDays: 400 }),
      }),
    ]);
  });

  it('takes the newest rotation, automatic or on demand', () => {
    const history = [
      { rotationDate: daysAgo(700), rotationType: 'AUTOMATIC' as const },
      { rotationDate: daysAgo(20), rotationType: 'ON_DEMAND' as const },
    ];
    expect(currentMaterialDate(audited({ creationDate: daysAgo(900) }, { history }))).toEqual(daysAgo(20));
    expect(materialAge(audited({ creationDate: daysAgo(900) }, { history }), LIMITS, NOW)).toEqual([]);
  });

  it('takes the newest rotation whatever the order KMS lists them in, and skips records without a date', () => {
    const history = [
      { rotationDate: daysAgo(20), rotationType: 'ON_DEMAND' as const },
      { rotationDate: daysAgo(700), rotationType: 'AUTOMATIC' as const },
      { rotationType: 'AUTOMATIC' as const },
    ];
    expect(currentMaterialDate(audited({ creationDate: daysAgo(900) }, { history }))).toEqual(daysAgo(20));
  });

  it('fires only past the maximum age: a key exactly at it is compliant', () => {
    expect(materialAge(audited({ creationDate: daysAgo(400) }), LIMITS, NOW)).toEqual([]);
    expect(materialAge(audited({ creationDate: daysAgo(401) }), LIMITS, NOW)[0]?.evidence).toMatchObject({
      ageDays: 401,
    });
  });

  it('does not judge a key whose material cannot be dated', () => {
    expect(materialAge(audited({ creationDate: undefined }, { history: [] }), LIMITS, NOW)).toEqual([]);
  });

  it('names the remedy of each class: on demand for KMS keys, new material for imported ones', () => {
    const [kmsKey] = materialAge(audited({ creationDate: daysAgo(500) }), LIMITS, NOW);
    expect(kmsKey?.summary).toMatch(/: rotate it on demand, or check why automatic rotation has not happened$/);
    const [imported] = materialAge(audited({ origin: 'EXTERNAL', creationDate: daysAgo(500) }), LIMITS, NOW);
    expect(audited({ origin: 'EXTERNAL' }).keyClass).toBe('on-demand-only');
    expect(imported?.summary).toMatch(/: import new key material and rotate on demand$/);
  });

  it('dates a never-rotated key by its creation', () => {
    expect(materialAge(audited({ creationDate: daysAgo(401) }), LIMITS, NOW)).toHaveLength(1);
    expect(materialAge(audited({ creationDate: daysAgo(399) }), LIMITS, NOW)).toEqual([]);
  });

  it('dates an alias-swap key by when it took over, and says to rotate it by alias-swap', () => {
    const rsa = { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY', creationDate: daysAgo(900) };
    const [finding] = materialAge(audited(rsa, { rotatedAt: daysAgo(450), history: undefined }), LIMITS, NOW);
    expect(finding?.summary).toContain('alias-swap');
    expect(materialAge(audited(rsa, { rotatedAt: daysAgo(30), history: undefined }), LIMITS, NOW)).toEqual([]);
  });

  it('does not judge AWS managed, inactive or replica keys', () => {
    for (const overrides of [
      { keyManager: 'AWS' },
      { keyState: 'Disabled' },
      { multiRegion: true, multiRegionKeyType: 'REPLICA' },
    ]) {
      expect(materialAge(audited({ ...overrides, creationDate: daysAgo(2000) }), LIMITS, NOW)).toEqual([]);
    }
  });
});

describe('Rule: declared-alias', () => {
  const managed = readDeclaredState({ 'kms-rotation:managed': 'true', 'kms-rotation:aliases': 'alias/a alias/b' });

  it('fires for each declared alias that is missing or points elsewhere', () => {
    const findings = declaredAliases(
      audited({}, { declared: managed, declaredAliasTargets: { 'alias/a': 'missing', 'alias/b': 'k9' } }),
    );
    expect(findings.map((finding) => finding.evidence)).toEqual([
      { aliasName: 'alias/a', pointsAt: 'missing' },
      { aliasName: 'alias/b', pointsAt: 'k9' },
    ]);
  });

  it('does not fire when they point at the key, nor on unmanaged keys', () => {
    expect(
      declaredAliases(audited({}, { declared: managed, declaredAliasTargets: { 'alias/a': 'k1', 'alias/b': 'k1' } })),
    ).toEqual([]);
    expect(declaredAliases(audited({}, { declaredAliasTargets: { 'alias/a': 'missing' } }))).toEqual([]);
  });

  it('says whether a declared alias is missing or points elsewhere, and reads no declared state the key lacks', () => {
    const findings = declaredAliases(
      audited({}, { declared: managed, declaredAliasTargets: { 'alias/a': 'missing', 'alias/b': 'k9' } }),
    );
    expect(findings.map((finding) => finding.summary)).toEqual([
      'declared alias alias/a of k1 does not exist',
      'declared alias alias/b points at k9, not k1',
    ]);
    expect(
      declaredAliases(audited({}, { declared: undefined, declaredAliasTargets: { 'alias/a': 'missing' } })),
    ).toEqual([]);
  });
});

describe('Rule: alias-to-unusable-key', () => {
  it('is CRITICAL for an alias on a key pending deletion, WARNING on a disabled one', () => {
    expect(aliasToUnusableKey(audited({ keyState: 'PendingDeletion' }, { aliases: ['alias/x'] }))[0]?.severity).toBe(
      'CRITICAL',
    );
    expect(aliasToUnusableKey(audited({ keyState: 'Disabled' }, { aliases: ['alias/x'] }))[0]?.severity).toBe(
      'WARNING',
    );
  });

  it('does not fire without an alias, or on an enabled key', () => {
    expect(aliasToUnusableKey(audited({ keyState: 'Disabled' }))).toEqual([]);
    expect(aliasToUnusableKey(audited({}, { aliases: ['alias/x'] }))).toEqual([]);
  });

  it('names every alias, in a sentence that reads right for one or several', () => {
    expect(aliasToUnusableKey(audited({ keyState: 'Disabled' }, { aliases: ['alias/x'] }))[0]?.summary).toBe(
      'alias/x points at k1, which is Disabled',
    );
    expect(
      aliasToUnusableKey(audited({ keyState: 'PendingDeletion' }, { aliases: ['alias/x', 'alias/y'] }))[0]?.summary,
    ).toBe('alias/x, alias/y point at k1, which is PendingDeletion');
  });
});

describe('Rule: policy-wildcard-principal (Security Hub KMS.5)', () => {
  const managed = readDeclaredState({ 'kms-rotation:managed': 'true' });
  const policy = (statement: object) => JSON.stringify({ Statement: [statement] });

  it('fires on a managed key whose policy allows "*" unconditionally', () => {
    const open = policy({ Effect: 'Allow', Principal: { AWS: ['*'] }, Action: 'kms:*', Resource: '*' });
    expect(policyWildcard(audited({}, { declared: managed, policy: open }))).toEqual([
      expect.objectContaining({ rule: 'policy-wildcard-principal', severity: 'CRITICAL' }),
    ]);
  });

  it('does not fire on a conditioned wildcard, a Deny, an unreadable policy or an unmanaged key', () => {
    const conditioned = policy({
      Effect: 'Allow',
      Principal: '*',
      Action: 'kms:*',
      Resource: '*',
      Condition: { Bool: { 'aws:SecureTransport': 'true' } },
    });
    const deny = policy({ Effect: 'Deny', Principal: '*', Action: 'kms:*', Resource: '*' });
    for (const text of [conditioned, deny, 'not json']) {
      expect(policyWildcard(audited({}, { declared: managed, policy: text }))).toEqual([]);
    }
    expect(
      policyWildcard(audited({}, { policy: policy({ Effect: 'Allow', Principal: '*', Action: 'kms:*' }) })),
    ).toEqual([]);
    expect(
      policyWildcard(
        audited({}, { declared: undefined, policy: policy({ Effect: 'Allow', Principal: '*', Action: 'kms:*' }) }),
      ),
    ).toEqual([]);
    expect(policyWildcard(audited({}, { declared: managed, policy: undefined }))).toEqual([]);
  });
});

describe('Every finding, whole: rule, severity, summary and evidence, as an auditor reads them', () => {
  const managed = (tags: Record<string, string> = {}) => readDeclaredState({ 'kms-rotation:managed': 'true', ...tags });
  const wildcard = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' }] });
  const CASES: { name: string; found: () => unknown[]; expected: object }[] = [
    {
      name: 'rotation-enabled',
      found: () => rotationEnabled(audited({}, { rotation: { enabled: false } })),
      expected: {
        rule: 'rotation-enabled',
        severity: 'WARNING',
        summary: 'automatic rotation is off on k1',
        evidence: { rotationEnabled: false },
      },
    },
    {
      name: 'rotation-period above the maximum',
      found: () => rotationPeriod(audited({}, { rotation: { enabled: true, periodDays: 730 } }), LIMITS),
      expected: {
        rule: 'rotation-period',
        severity: 'WARNING',
        summary: 'rotation period of k1 is 730 days, above the 365-day maximum',
        evidence: { periodDays: 730, maxPeriodDays: 365 },
      },
    },
    {
      name: 'rotation-period other than declared',
      found: () =>
        rotationPeriod(
          audited(
            {},
            { declared: managed({ 'kms-rotation:period-days': '180' }), rotation: { enabled: true, periodDays: 90 } },
          ),
          LIMITS,
        ),
      expected: {
        rule: 'rotation-period',
        severity: 'WARNING',
        summary: 'rotation period of k1 is 90 days, declared 180',
        evidence: { periodDays: 90, declaredPeriodDays: 180 },
      },
    },
    {
      name: 'material-age',
      found: () => materialAge(audited({ creationDate: daysAgo(500) }), LIMITS, NOW),
      expected: {
        rule: 'material-age',
        severity: 'WARNING',
        evidence: { materialDate: daysAgo(500).toISOString(), ageDays: 500, maxAgeDays: 400 },
      },
    },
    {
      name: 'declared-alias',
      found: () =>
        declaredAliases(
          audited(
            {},
            {
              declared: managed({ 'kms-rotation:aliases': 'alias/a' }),
              declaredAliasTargets: { 'alias/a': 'missing' },
            },
          ),
        ),
      expected: {
        rule: 'declared-alias',
        severity: 'WARNING',
        summary: 'declared alias alias/a of k1 does not exist',
        evidence: { aliasName: 'alias/a', pointsAt: 'missing' },
      },
    },
    {
      name: 'alias-to-unusable-key',
      found: () => aliasToUnusableKey(audited({ keyState: 'Disabled' }, { aliases: ['alias/x'] })),
      expected: {
        rule: 'alias-to-unusable-key',
        severity: 'WARNING',
        aliases: ['alias/x'],
        evidence: { keyState: 'Disabled', aliases: ['alias/x'] },
      },
    },
    {
      name: 'policy-wildcard-principal',
      found: () => policyWildcard(audited({}, { declared: managed(), policy: wildcard })),
      expected: {
        rule: 'policy-wildcard-principal',
        severity: 'CRITICAL',
        summary: 'key policy of k1 grants to any principal without a condition',
        evidence: { statements: [expect.anything()] },
      },
    },
    {
      name: 'key-unreadable (managed)',
      found: () => [keyUnreadable('k1', ['alias/x'], 'GetKeyPolicy', true, 'AccessDeniedException')],
      expected: {
        rule: 'key-unreadable',
        severity: 'CRITICAL',
        keyId: 'k1',
        aliases: ['alias/x'],
        summary:
          'the audit may not read k1 (GetKeyPolicy was denied): it could not be judged; grant the audit role read access in the key policy',
        evidence: { operation: 'GetKeyPolicy', error: 'AccessDeniedException' },
      },
    },
    {
      name: 'key-unreadable (unmanaged)',
      found: () => [keyUnreadable('k2', [], 'DescribeKey', false, 'denied')],
      expected: { rule: 'key-unreadable', severity: 'WARNING', keyId: 'k2' },
    },
    {
      name: 'declared-key-missing',
      found: () => [declaredKeyMissing('k3', 'is pending deletion')],
      expected: {
        rule: 'declared-key-missing',
        severity: 'CRITICAL',
        keyId: 'k3',
        aliases: [],
        summary: 'managed key k3 is pending deletion',
        evidence: { reason: 'is pending deletion' },
      },
    },
  ];

  it.each(CASES)('$name', ({ found, expected }) => {
    expect(found()).toEqual([expect.objectContaining(expected)]);
  });
});

describe('Function: auditKey', () => {
  it('maps every rule to the controls auditors cite', () => {
    for (const controls of Object.values(CONTROLS)) expect(controls.length).toBeGreaterThan(0);
    expect(CONTROLS['rotation-enabled'].join(' ')).toMatch(/CIS.*Security Hub KMS\.4/s);
  });

  it('has controls for every rule id, the malformed exception tag included', () => {
    expect(Object.keys(CONTROLS)).toEqual([
      'rotation-enabled',
      'rotation-period',
      'material-age',
      'declared-alias',
      'alias-to-unusable-key',
      'policy-wildcard-principal',
      'declared-key-missing',
      'key-unreadable',
      'exception-malformed',
      'replica-material',
    ]);
    expect(CONTROLS['exception-malformed'].join(' ')).toMatch(/CA-5.*owner and an end date/s);
  });

  it('finds nothing on a compliant key', () => {
    expect(auditKey(audited(), LIMITS, NOW)).toEqual([]);
  });
});
