import {
  ASFF_LIMITS,
  type AsffFinding,
  asffOf,
  bounded,
  findingIdOf,
  isAuditRule,
  isOwnFinding,
  keyArnOf,
  PRODUCT_FIELD,
  resolvedOf,
} from './asff';
import type { AuditException } from './audit-exceptions';
import { type AuditRuleId, CONTROLS } from './audit-rules';
import { type DriftRuleId, type Finding, highestSeverity } from './drift-rules';
import type { ServiceLocation } from './model';

/**
 * Drift findings as ASFF findings (docs/security-hub.md, "Drift findings"). A drift rule that
 * judges the same condition as an audit rule is imported under that audit rule's finding, so that
 * the next audit updates or resolves the same finding: most such rules have the audit rule's id
 * (the entry is the identity), the declared-alias ones share one. Any other drift rule has a
 * finding of its own, which only the drift watch resolves. Every drift rule is listed: a new one
 * needs a decision.
 */
export const SECURITY_HUB_RULE: Record<DriftRuleId, { auditRule: AuditRuleId } | { controls: readonly string[] }> = {
  'rotation-enabled': { auditRule: 'rotation-enabled' },
  'rotation-period': { auditRule: 'rotation-period' },
  'policy-wildcard-principal': { auditRule: 'policy-wildcard-principal' },
  'declared-alias-missing': { auditRule: 'declared-alias' },
  'declared-alias-elsewhere': { auditRule: 'declared-alias' },
  'undeclared-alias': { controls: ['kms-rotation declared state: only the declared aliases point at a managed key'] },
  'key-disabled': { controls: ['kms-rotation declared state: every managed key exists and is usable'] },
  'key-pending-deletion': {
    controls: [
      'AWS Security Hub KMS.3: AWS KMS keys should not be deleted unintentionally',
      'kms-rotation declared state: every managed key exists and is usable',
    ],
  },
  'imported-material-expired': { controls: ['kms-rotation declared state: every managed key exists and is usable'] },
  'policy-missing-service-access': {
    controls: ["kms-rotation declared state: the key policy lets the account's IAM grant what kms-rotation needs"],
  },
  'key-deleted': {
    controls: [
      'AWS Security Hub KMS.3: AWS KMS keys should not be deleted unintentionally',
      'kms-rotation declared state: every managed key exists and is usable',
    ],
  },
};

/** The rule whose finding a drift rule's finding is: the audit rule judging the same condition, else itself. */
export const securityHubRuleOf = (rule: DriftRuleId): AuditRuleId | DriftRuleId => {
  const target = SECURITY_HUB_RULE[rule];
  return 'auditRule' in target ? target.auditRule : rule;
};

/** One key the drift watch judged, with what it found and what it put back. */
export interface JudgedKey {
  keyId: string;
  /** Aliases that point at the key now. */
  aliases: readonly string[];
  findings: readonly Finding[];
  /** The key's audit exceptions in force (its exception tags): they suppress the audit rule's finding. */
  exceptions: readonly AuditException[];
}

export interface DriftAsffContext {
  location: ServiceLocation;
  now: Date;
  eventId: string;
  /** The call and who made it, as the notifications say it (`DisableKeyRotation by <arn> ... at <time>`). */
  cause: string;
  /** The principal (or service) that made the call. */
  actor: string;
  /** Fingerprints of the findings put back in remediate mode, with what was done. */
  remediated: ReadonlyMap<string, string>;
}

/**
 * What the drift watch sends for the keys it judged: each finding open (NEW, or SUPPRESSED by the
 * key's exception in force for the audit rule), keeping the CreatedAt and the audit id of the
 * finding already open under its Id; a finding whose every drift was put back (remediate mode),
 * resolved, saying so; and every open finding of these keys that the drift watch last imported and
 * no longer finds, resolved. A finding the audit last imported is left to the audit.
 */
export const driftSecurityHubBatch = (
  keys: readonly JudgedKey[],
  active: readonly AsffFinding[],
  context: DriftAsffContext,
): { imports: AsffFinding[]; resolved: AsffFinding[] } => {
  const keyArns = new Set(keys.map((key) => keyArnOf(context.location, key.keyId)));
  const openById = new Map(
    active
      .filter(
        (finding) =>
          isOwnFinding(finding, context.location) &&
          (finding.Resources ?? []).some((resource) => keyArns.has(resource.Id)),
      )
      .map((finding) => [finding.Id, finding]),
  );
  const groups = new Map<string, { key: JudgedKey; rule: AuditRuleId | DriftRuleId; items: Finding[] }>();
  for (const key of keys) {
    for (const item of key.findings) {
      const rule = securityHubRuleOf(item.rule);
      const id = findingIdOf(context.location, key.keyId, rule);
      const group = groups.get(id) ?? { key, rule, items: [] };
      group.items.push(item);
      groups.set(id, group);
    }
  }
  const imports: AsffFinding[] = [];
  const resolved: AsffFinding[] = [];
  for (const [id, { key, rule, items }] of groups) {
    const earlier = openById.get(id);
    const target = SECURITY_HUB_RULE[(items[0] as Finding).rule];
    const auditId = earlier?.ProductFields?.[PRODUCT_FIELD.auditId];
    const open = asffOf(
      {
        rule,
        severity: highestSeverity(items),
        keyId: key.keyId,
        aliases: key.aliases,
        summary: `Drift after ${context.cause}: ${items.map((item) => item.summary).join('; ')}`,
        controls: 'auditRule' in target ? CONTROLS[target.auditRule] : target.controls,
        exception: isAuditRule(rule) ? key.exceptions.find((exception) => exception.rule === rule) : undefined,
      },
      { location: context.location, now: context.now, createdAt: earlier?.CreatedAt },
      {
        // Kept, so that the audit that imported it still tells it from one no slice found.
        ...(auditId !== undefined ? { [PRODUCT_FIELD.auditId]: auditId } : {}),
        [PRODUCT_FIELD.driftRule]: [...new Set(items.map((item) => item.rule))].join(','),
        [PRODUCT_FIELD.eventId]: context.eventId,
        [PRODUCT_FIELD.actor]: context.actor,
      },
    );
    const putBack = items.map((item) => context.remediated.get(item.fingerprint));
    if (putBack.every((detail) => detail !== undefined)) {
      const remediation = putBack.join('; ');
      resolved.push(
        withNote(
          resolvedOf(open, { now: context.now }),
          `Remediated by the kms-rotation drift watch: ${remediation}.`,
          {
            [PRODUCT_FIELD.remediation]: remediation,
          },
        ),
      );
    } else {
      imports.push(open);
    }
  }
  for (const finding of openById.values()) {
    if (groups.has(finding.Id) || finding.ProductFields?.[PRODUCT_FIELD.driftRule] === undefined) continue;
    resolved.push(
      withNote(
        resolvedOf(finding, { now: context.now }),
        `No longer found by the kms-rotation drift watch after ${context.cause}.`,
        { [PRODUCT_FIELD.eventId]: context.eventId, [PRODUCT_FIELD.actor]: context.actor },
      ),
    );
  }
  return { imports, resolved };
};

/** A resolved finding whose description starts with why it was resolved. */
const withNote = (finding: AsffFinding, note: string, productFields: Record<string, string>): AsffFinding => ({
  ...finding,
  Description: bounded(`${note} ${finding.Description}`, ASFF_LIMITS.description),
  ProductFields: {
    ...finding.ProductFields,
    ...Object.fromEntries(
      Object.entries(productFields).map(([key, value]) => [key, bounded(value, ASFF_LIMITS.productFieldValue)]),
    ),
  },
});
