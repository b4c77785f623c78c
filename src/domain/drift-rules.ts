import type { DeclaredState } from './declared-state';
import { classifyKey } from './key-classification';
import { actionsMissingForAccount, parsePolicy, SERVICE_KEY_ACTIONS, wildcardGrants } from './key-policy';
import type { LineageState } from './lineage';
import type { KeyDescription, RotationStatus, Severity } from './model';

export type DriftRuleId =
  | 'rotation-enabled'
  | 'rotation-period'
  | 'declared-alias-missing'
  | 'declared-alias-elsewhere'
  | 'undeclared-alias'
  | 'key-disabled'
  | 'key-pending-deletion'
  | 'imported-material-expired'
  | 'policy-wildcard-principal'
  | 'policy-missing-service-access'
  | 'key-deleted';

export type DriftMode = 'detect' | 'remediate';

/** Only these drifts can ever be put back automatically: rotation settings and declared aliases. */
export const REMEDIABLE_RULES: readonly DriftRuleId[] = [
  'rotation-enabled',
  'rotation-period',
  'declared-alias-missing',
  'declared-alias-elsewhere',
];

/**
 * Drift rule ids renamed in this release (README.md, "Renamed in this release"), read as the new
 * ones until the next release: in `driftRemediateRules` and in the fingerprints a key's record keeps.
 */
export const RENAMED_DRIFT_RULES: ReadonlyMap<string, DriftRuleId> = new Map([
  ['rotation-disabled', 'rotation-enabled'],
  ['rotation-period-changed', 'rotation-period'],
]);

/** A drift rule id as this release names it: a renamed id's new one, any other as it is. */
export const currentRuleId = (rule: string): string => RENAMED_DRIFT_RULES.get(rule) ?? rule;

/** A fingerprint kept under a renamed rule id (`rotation-disabled:<keyId>`), as that drift's finding makes it now. */
export const currentFingerprint = (fingerprint: string): string => {
  const separator = fingerprint.indexOf(':');
  return separator < 0
    ? fingerprint
    : `${currentRuleId(fingerprint.slice(0, separator))}${fingerprint.slice(separator)}`;
};

/** What a remediation would do; only these two kinds exist, by design. */
export type Remediation =
  | { action: 'enable-rotation'; keyId: string; periodDays?: number }
  | { action: 'point-alias'; keyId: string; aliasName: string; aliasExists: boolean };

export interface Finding {
  rule: DriftRuleId;
  severity: Severity;
  keyId: string;
  summary: string;
  evidence: Record<string, unknown>;
  /** Same drift, same fingerprint: one notification while it lasts. */
  fingerprint: string;
  remediation?: Remediation;
}

/** The real state of a managed key, re-read after an event; what the rules judge. */
export interface KeySnapshot {
  account: string;
  keyId: string;
  /** Absent when the key no longer exists. */
  key?: KeyDescription;
  declared: DeclaredState;
  lineageState?: LineageState;
  rotation?: RotationStatus;
  /** Aliases that point at the key now. */
  aliasesOfKey: string[];
  /** Declared alias -> key it points at now, or `missing`. */
  declaredAliasTargets: Record<string, string>;
  /** The key policy text, when read. */
  policy?: string;
}

type Rule = (snapshot: KeySnapshot) => Finding[];

/** What a rule says of one drift, beyond its rule, severity and key. */
interface Found {
  summary: string;
  evidence: Record<string, unknown>;
  /** What tells this drift from another of the same rule on the key (an alias, a period): part of its fingerprint. */
  detail?: string;
  remediation?: Remediation;
}

const finding = (rule: DriftRuleId, severity: Severity, snapshot: KeySnapshot, found: Found): Finding => ({
  rule,
  severity,
  keyId: snapshot.keyId,
  summary: found.summary,
  evidence: found.evidence,
  fingerprint: `${rule}:${snapshot.keyId}${found.detail ? `:${found.detail}` : ''}`,
  remediation: found.remediation,
});

/** Keys in the middle of an alias-swap rotation: their aliases move on purpose. */
const rotating = (snapshot: KeySnapshot): boolean =>
  snapshot.lineageState === 'rotating' || snapshot.lineageState === 'created';

const autoRotatable = (snapshot: KeySnapshot): boolean =>
  snapshot.key !== undefined && classifyKey(snapshot.key).keyClass === 'auto-rotatable';

export const rotationDisabled: Rule = (snapshot) =>
  autoRotatable(snapshot) && snapshot.rotation && !snapshot.rotation.enabled
    ? [
        finding('rotation-enabled', 'WARNING', snapshot, {
          summary: `automatic rotation is disabled on managed key ${snapshot.keyId}`,
          evidence: { rotationEnabled: false, declaredPeriodDays: snapshot.declared.periodDays },
          remediation: { action: 'enable-rotation', keyId: snapshot.keyId, periodDays: snapshot.declared.periodDays },
        }),
      ]
    : [];

export const rotationPeriodChanged: Rule = (snapshot) => {
  const actual = snapshot.rotation?.periodDays;
  const declared = snapshot.declared.periodDays;
  if (
    !autoRotatable(snapshot) ||
    !snapshot.rotation?.enabled ||
    actual === undefined ||
    declared === undefined ||
    actual === declared
  ) {
    return [];
  }
  return [
    finding('rotation-period', 'WARNING', snapshot, {
      summary: `rotation period of ${snapshot.keyId} is ${actual} days, declared ${declared}`,
      evidence: { periodDays: actual, declaredPeriodDays: declared },
      detail: String(actual),
      remediation: { action: 'enable-rotation', keyId: snapshot.keyId, periodDays: declared },
    }),
  ];
};

export const declaredAliasDrift: Rule = (snapshot) => {
  if (!snapshot.key || rotating(snapshot)) return [];
  return Object.entries(snapshot.declaredAliasTargets).flatMap(([aliasName, target]) => {
    if (target === snapshot.keyId) return [];
    if (target === 'missing') {
      return [
        finding('declared-alias-missing', 'WARNING', snapshot, {
          summary: `declared alias ${aliasName} of ${snapshot.keyId} does not exist`,
          evidence: { aliasName },
          detail: aliasName,
          remediation: { action: 'point-alias', keyId: snapshot.keyId, aliasName, aliasExists: false },
        }),
      ];
    }
    return [
      finding('declared-alias-elsewhere', 'WARNING', snapshot, {
        summary: `declared alias ${aliasName} points at ${target}, not at ${snapshot.keyId}`,
        evidence: { aliasName, pointsAt: target },
        detail: `${aliasName}->${target}`,
        remediation: { action: 'point-alias', keyId: snapshot.keyId, aliasName, aliasExists: true },
      }),
    ];
  });
};

export const undeclaredAlias: Rule = (snapshot) => {
  if (!snapshot.key || rotating(snapshot)) return [];
  return snapshot.aliasesOfKey
    .filter((alias) => !snapshot.declared.aliases.includes(alias))
    .map((aliasName) =>
      finding('undeclared-alias', 'WARNING', snapshot, {
        summary: `alias ${aliasName} points at managed key ${snapshot.keyId} without being declared on it`,
        evidence: { aliasName },
        detail: aliasName,
      }),
    );
};

export const keyUnusable: Rule = (snapshot) => {
  const key = snapshot.key;
  if (!key) return [];
  if (key.keyState === 'Disabled') {
    return [
      finding('key-disabled', 'CRITICAL', snapshot, {
        summary: `managed key ${snapshot.keyId} is disabled: nothing can encrypt or decrypt with it`,
        evidence: { keyState: key.keyState, aliasesPointingAtIt: snapshot.aliasesOfKey },
      }),
    ];
  }
  if (key.keyState === 'PendingDeletion') {
    const inUse = snapshot.aliasesOfKey.length > 0;
    return [
      finding('key-pending-deletion', inUse ? 'CRITICAL' : 'WARNING', snapshot, {
        summary: `managed key ${snapshot.keyId} is scheduled for deletion${key.deletionDate ? ` on ${key.deletionDate.toISOString()}` : ''}${inUse ? ` while ${snapshot.aliasesOfKey.join(', ')} still point at it` : ''}`,
        evidence: {
          keyState: key.keyState,
          deletionDate: key.deletionDate?.toISOString(),
          aliasesPointingAtIt: snapshot.aliasesOfKey,
        },
      }),
    ];
  }
  if (key.keyState === 'PendingImport' && key.origin === 'EXTERNAL') {
    return [
      finding('imported-material-expired', 'CRITICAL', snapshot, {
        summary: `imported key material of ${snapshot.keyId} is gone (expired or deleted)`,
        evidence: { keyState: key.keyState, validTo: undefined },
      }),
    ];
  }
  return [];
};

export const policyDrift: Rule = (snapshot) => {
  if (!snapshot.key || snapshot.policy === undefined) return [];
  const statements = parsePolicy(snapshot.policy);
  if (!statements) return [];
  const findings: Finding[] = [];
  const wildcards = wildcardGrants(statements);
  if (wildcards.length > 0) {
    findings.push(
      finding('policy-wildcard-principal', 'CRITICAL', snapshot, {
        summary: `key policy of ${snapshot.keyId} grants to any principal ("*") without a condition (${wildcards.join(', ')})`,
        evidence: { statements: wildcards },
        detail: wildcards.join(','),
      }),
    );
  }
  const missing = actionsMissingForAccount(statements, snapshot.account, SERVICE_KEY_ACTIONS);
  if (missing.length > 0) {
    findings.push(
      finding('policy-missing-service-access', 'CRITICAL', snapshot, {
        summary: `key policy of ${snapshot.keyId} no longer lets the account's IAM grant what kms-rotation needs (${missing.join(', ')})`,
        evidence: { missingActions: missing },
        detail: missing.join(','),
      }),
    );
  }
  return findings;
};

export const keyDeleted: Rule = (snapshot) =>
  snapshot.key
    ? []
    : [
        finding('key-deleted', 'CRITICAL', snapshot, {
          summary: `managed key ${snapshot.keyId} has been deleted: data encrypted with it is unrecoverable`,
          evidence: {},
        }),
      ];

export const DRIFT_RULES: readonly Rule[] = [
  keyDeleted,
  keyUnusable,
  rotationDisabled,
  rotationPeriodChanged,
  declaredAliasDrift,
  undeclaredAlias,
  policyDrift,
];

export const evaluateDrift = (snapshot: KeySnapshot): Finding[] => DRIFT_RULES.flatMap((rule) => rule(snapshot));

const SEVERITY_ORDER: Record<Severity, number> = { INFO: 0, WARNING: 1, CRITICAL: 2 };
export const highestSeverity = (findings: readonly { severity: Severity }[]): Severity =>
  findings.reduce<Severity>(
    (max, item) => (SEVERITY_ORDER[item.severity] > SEVERITY_ORDER[max] ? item.severity : max),
    'INFO',
  );
