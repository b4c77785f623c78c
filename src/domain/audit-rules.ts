import type { DeclaredState } from './declared-state';
import type { KeyClass } from './key-classification';
import { parsePolicy, wildcardGrants } from './key-policy';
import type { KeyDescription, RotationRecord, RotationStatus, Severity } from './model';

export type AuditRuleId =
  | 'rotation-enabled'
  | 'rotation-period'
  | 'material-age'
  | 'declared-alias'
  | 'alias-to-unusable-key'
  | 'policy-wildcard-principal'
  | 'declared-key-missing'
  | 'key-unreadable'
  | 'exception-malformed'
  | 'replica-material';

/** The controls auditors cite, per rule: the report maps every finding to them. */
export const CONTROLS: Record<AuditRuleId, string[]> = {
  'rotation-enabled': [
    'CIS AWS Foundations 3.6 (v1.5+)/3.8 (v1.4): rotation for customer created symmetric CMKs is enabled',
    'AWS Security Hub KMS.4: AWS KMS key rotation should be enabled',
  ],
  'rotation-period': [
    'CIS AWS Foundations 3.6/3.8 (key material rotated at least yearly)',
    'NIST SP 800-57 cryptoperiod',
  ],
  'material-age': [
    'NIST SP 800-57 Part 1 §5.3 cryptoperiods',
    'PCI DSS 4.0 req. 3.7.4 (keys changed at the end of their cryptoperiod)',
  ],
  'declared-alias': ['kms-rotation declared state: aliases point at their declared key'],
  'alias-to-unusable-key': ['AWS Security Hub KMS.3: AWS KMS keys should not be deleted unintentionally'],
  'policy-wildcard-principal': ['AWS Security Hub KMS.5 / CIS: KMS keys should not be publicly accessible'],
  'declared-key-missing': ['kms-rotation declared state: every managed key exists and is usable'],
  'key-unreadable': [
    'NIST SP 800-53 CA-7 continuous monitoring: every key in scope can be assessed',
    'kms-rotation audit coverage: the audit role may read every key of the account',
  ],
  'exception-malformed': [
    'NIST SP 800-53 CA-5 plan of action and milestones: every accepted deviation has an owner and an end date',
    'kms-rotation audit exceptions: a tag kms-rotation:exception:<rule> names a known rule, an owner and an end date within a year',
  ],
  'replica-material': [
    'NIST SP 800-57 Part 1 §5.3 cryptoperiods: every copy of a key changes material with it',
    "kms-rotation multi-Region keys: each replica carries its primary key's current material",
  ],
};

export interface AuditFinding {
  rule: AuditRuleId;
  severity: Severity;
  keyId: string;
  aliases: string[];
  summary: string;
  evidence: Record<string, unknown>;
}

export interface AuditLimits {
  /** Longest acceptable rotation period, days (default 365). */
  maxRotationPeriodDays: number;
  /** Oldest acceptable current key material, days. */
  maxMaterialAgeDays: number;
}

/** Everything one key's rules need; only the reads its class requires are filled in. */
export interface AuditedKey {
  key: KeyDescription;
  keyClass: KeyClass;
  aliases: string[];
  declared?: DeclaredState;
  rotation?: RotationStatus;
  history?: RotationRecord[];
  policy?: string;
  /** Declared alias -> key id it points at now (`missing` if none). */
  declaredAliasTargets?: Record<string, string>;
  /** For alias-swap keys: when the current key took over (its `rotated-at` tag), if ever. */
  rotatedAt?: Date;
}

const DAY_MS = 86_400_000;

const finding = (
  rule: AuditRuleId,
  severity: Severity,
  audited: AuditedKey,
  summary: string,
  evidence: Record<string, unknown>,
): AuditFinding => ({ rule, severity, keyId: audited.key.keyId, aliases: audited.aliases, summary, evidence });

/** Only keys AWS can rotate are asked to have rotation on: no false positives on asymmetric, HMAC or imported keys. */
export const rotationEnabled = (audited: AuditedKey): AuditFinding[] =>
  audited.keyClass === 'auto-rotatable' && audited.rotation && !audited.rotation.enabled
    ? [
        finding('rotation-enabled', 'WARNING', audited, `automatic rotation is off on ${audited.key.keyId}`, {
          rotationEnabled: false,
        }),
      ]
    : [];

export const rotationPeriod = (audited: AuditedKey, limits: AuditLimits): AuditFinding[] => {
  const period = audited.rotation?.periodDays;
  if (audited.keyClass !== 'auto-rotatable' || !audited.rotation?.enabled || period === undefined) return [];
  const declared = audited.declared?.managed ? audited.declared.periodDays : undefined;
  if (period > limits.maxRotationPeriodDays) {
    return [
      finding(
        'rotation-period',
        'WARNING',
        audited,
        `rotation period of ${audited.key.keyId} is ${period} days, above the ${limits.maxRotationPeriodDays}-day maximum`,
        {
          periodDays: period,
          maxPeriodDays: limits.maxRotationPeriodDays,
        },
      ),
    ];
  }
  if (declared !== undefined && period !== declared) {
    return [
      finding(
        'rotation-period',
        'WARNING',
        audited,
        `rotation period of ${audited.key.keyId} is ${period} days, declared ${declared}`,
        {
          periodDays: period,
          declaredPeriodDays: declared,
        },
      ),
    ];
  }
  return [];
};

/** When the key's current material was made: the latest rotation, else the key's (or alias-swap successor's) creation. */
export const currentMaterialDate = (audited: AuditedKey): Date | undefined => {
  const rotations = (audited.history ?? [])
    .map((record) => record.rotationDate)
    .filter((date): date is Date => date !== undefined);
  const latest = rotations.reduce<Date | undefined>((max, date) => (!max || date > max ? date : max), undefined);
  return latest ?? audited.rotatedAt ?? audited.key.creationDate;
};

/** "Rotation on" is not compliance: the current material must be young enough, whatever the key's class. */
export const materialAge = (audited: AuditedKey, limits: AuditLimits, now: Date): AuditFinding[] => {
  if (!['auto-rotatable', 'on-demand-only', 'alias-swap'].includes(audited.keyClass)) return [];
  const since = currentMaterialDate(audited);
  if (!since) return [];
  const ageDays = Math.floor((now.getTime() - since.getTime()) / DAY_MS);
  if (ageDays <= limits.maxMaterialAgeDays) return [];
  const remedy =
    audited.keyClass === 'alias-swap'
      ? 'rotate it by alias-swap'
      : audited.keyClass === 'on-demand-only'
        ? 'import new key material and rotate on demand'
        : 'rotate it on demand, or check why automatic rotation has not happened';
  return [
    finding(
      'material-age',
      'WARNING',
      audited,
      `current key material of ${audited.key.keyId} is ${ageDays} days old (maximum ${limits.maxMaterialAgeDays}): ${remedy}`,
      {
        materialDate: since.toISOString(),
        ageDays,
        maxAgeDays: limits.maxMaterialAgeDays,
      },
    ),
  ];
};

export const declaredAliases = (audited: AuditedKey): AuditFinding[] => {
  if (!audited.declared?.managed || !audited.declaredAliasTargets) return [];
  return Object.entries(audited.declaredAliasTargets)
    .filter(([, target]) => target !== audited.key.keyId)
    .map(([alias, target]) =>
      finding(
        'declared-alias',
        'WARNING',
        audited,
        target === 'missing'
          ? `declared alias ${alias} of ${audited.key.keyId} does not exist`
          : `declared alias ${alias} points at ${target}, not ${audited.key.keyId}`,
        { aliasName: alias, pointsAt: target },
      ),
    );
};

/** An alias that still names a disabled or pending-deletion key breaks every caller that uses it. */
export const aliasToUnusableKey = (audited: AuditedKey): AuditFinding[] => {
  const state = audited.key.keyState;
  if (audited.aliases.length === 0 || (state !== 'Disabled' && state !== 'PendingDeletion')) return [];
  return [
    finding(
      'alias-to-unusable-key',
      state === 'PendingDeletion' ? 'CRITICAL' : 'WARNING',
      audited,
      `${audited.aliases.join(', ')} point${audited.aliases.length === 1 ? 's' : ''} at ${audited.key.keyId}, which is ${state}`,
      { keyState: state, aliases: audited.aliases },
    ),
  ];
};

export const policyWildcard = (audited: AuditedKey): AuditFinding[] => {
  if (!audited.declared?.managed || audited.policy === undefined) return [];
  const statements = parsePolicy(audited.policy);
  const wildcards = statements ? wildcardGrants(statements) : [];
  return wildcards.length === 0
    ? []
    : [
        finding(
          'policy-wildcard-principal',
          'CRITICAL',
          audited,
          `key policy of ${audited.key.keyId} grants to any principal without a condition`,
          {
            statements: wildcards,
          },
        ),
      ];
};

export const auditKey = (audited: AuditedKey, limits: AuditLimits, now: Date): AuditFinding[] => [
  ...rotationEnabled(audited),
  ...rotationPeriod(audited, limits),
  ...materialAge(audited, limits, now),
  ...declaredAliases(audited),
  ...aliasToUnusableKey(audited),
  ...policyWildcard(audited),
];

/**
 * A key the audit may not read (IAM or its key policy denies the audit role): it cannot be
 * judged, and an auditor must hear so rather than find it missing from the report. CRITICAL
 * for a key the service manages: it can no longer rotate or verify it either.
 */
export const keyUnreadable = (
  keyId: string,
  aliases: string[],
  operation: string,
  managed: boolean,
  error: string,
): AuditFinding => ({
  rule: 'key-unreadable',
  severity: managed ? 'CRITICAL' : 'WARNING',
  keyId,
  aliases,
  summary: `the audit may not read ${keyId} (${operation} was denied): it could not be judged; grant the audit role read access in the key policy`,
  evidence: { operation, error },
});

/** A key the service manages (per its records) that the fleet no longer has as a managed, usable key. */
export const declaredKeyMissing = (keyId: string, why: string): AuditFinding => ({
  rule: 'declared-key-missing',
  severity: 'CRITICAL',
  keyId,
  aliases: [],
  summary: `managed key ${keyId} ${why}`,
  evidence: { reason: why },
});
