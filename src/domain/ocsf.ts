import { findingIdOf, oneFindingPerKeyAndRule } from './asff';
import type { AuditException } from './audit-exceptions';
import { type AuditFinding, type AuditRuleId, CONTROLS } from './audit-rules';
import type { ServiceLocation, Severity } from './model';

/**
 * Audit findings as OCSF Compliance Findings (class 2003 of the Findings category), one per key
 * and rule, under the same stable id as the Security Hub finding. Schema version, fields and
 * sources are in docs/audit-reports.md. No SDK here: the report adapter writes these as they are.
 */

/** The OCSF schema version these findings follow (its first with `resources` on Compliance Finding). */
export const OCSF_SCHEMA_VERSION = '1.3.0';
export const OCSF_CATEGORY = { uid: 2, name: 'Findings' } as const;
export const OCSF_CLASS = { uid: 2003, name: 'Compliance Finding' } as const;
export const OCSF_PRODUCT = { name: 'kms-rotation', vendorName: 'kms-rotation' } as const;
/** The key's resource type, as CloudFormation names it. */
export const OCSF_RESOURCE_TYPE = 'AWS::KMS::Key';
/** `unmapped` holds this service's own details under this name. */
export const UNMAPPED_NAMESPACE = 'kms-rotation';

/** Finding activity (`activity_id`): a finding is reported, or closed by this audit's remediation. */
export const OCSF_ACTIVITY = { create: { id: 1, name: 'Create' }, close: { id: 3, name: 'Close' } } as const;

/** INFO is informational, WARNING medium, CRITICAL critical: as the Security Hub severity labels. */
export const OCSF_SEVERITY: Record<Severity, { id: number; name: string }> = {
  INFO: { id: 1, name: 'Informational' },
  WARNING: { id: 3, name: 'Medium' },
  CRITICAL: { id: 5, name: 'Critical' },
};

/** Finding status (`status_id`): open, excepted, or remediated by this audit. */
export const OCSF_STATUS = {
  new: { id: 1, name: 'New' },
  suppressed: { id: 3, name: 'Suppressed' },
  resolved: { id: 4, name: 'Resolved' },
} as const;

/** Compliance status (`compliance.status_id`). */
export const OCSF_COMPLIANCE_STATUS = { pass: { id: 1, name: 'Pass' }, fail: { id: 3, name: 'Fail' } } as const;

/** `account.type_id` 10: AWS Account. */
const AWS_ACCOUNT = { id: 10, name: 'AWS Account' } as const;

/** The standards each rule's controls belong to (`compliance.standards`, required by the schema). */
export const STANDARDS: Record<AuditRuleId, string[]> = {
  'rotation-enabled': ['CIS AWS Foundations Benchmark', 'AWS Foundational Security Best Practices'],
  'rotation-period': ['CIS AWS Foundations Benchmark', 'NIST SP 800-57'],
  'material-age': ['NIST SP 800-57', 'PCI DSS 4.0'],
  'declared-alias': ['kms-rotation declared state'],
  'alias-to-unusable-key': ['AWS Foundational Security Best Practices'],
  'policy-wildcard-principal': ['AWS Foundational Security Best Practices', 'CIS AWS Foundations Benchmark'],
  'declared-key-missing': ['kms-rotation declared state'],
  'key-unreadable': ['NIST SP 800-53', 'kms-rotation audit coverage'],
  'exception-malformed': ['NIST SP 800-53', 'kms-rotation audit exceptions'],
  'replica-material': ['NIST SP 800-57', 'kms-rotation multi-Region keys'],
};

/** What to do about a finding of each rule (`remediation.desc`). */
export const REMEDIATION: Record<AuditRuleId, string> = {
  'rotation-enabled': 'Enable automatic rotation on the key (EnableKeyRotation), or run the audit with remediate.',
  'rotation-period': "Set the key's rotation period to at most the maximum, and to the period its tags declare.",
  'material-age': "Rotate the key's material: on demand, by alias-swap, or by importing new material.",
  'declared-alias': 'Point the declared alias at the key again (the drift watch can, in remediate mode).',
  'alias-to-unusable-key': 'Point the alias at a usable key, or cancel the deletion or enable the key.',
  'policy-wildcard-principal': 'Remove the statement that grants to any principal, or add a condition to it.',
  'declared-key-missing': "Find out what happened to the key, and remove the service's record of it if it is gone.",
  'key-unreadable': 'Grant the audit role read access to the key in its key policy.',
  'exception-malformed': 'Fix the exception tag: a known rule, an owner and an end date within a year.',
  'replica-material':
    "Find out why the replica has not taken its primary key's current material (its key state, its Region); grant the audit role DescribeKey on it if it could not be read.",
};

export interface OcsfComplianceFinding {
  activity_id: number;
  activity_name: string;
  category_uid: number;
  category_name: string;
  class_uid: number;
  class_name: string;
  type_uid: number;
  type_name: string;
  severity_id: number;
  severity: string;
  status_id: number;
  status: string;
  /** Milliseconds since the epoch (OCSF `timestamp_t`): when this audit judged the key. */
  time: number;
  message: string;
  metadata: {
    version: string;
    product: { name: string; vendor_name: string; version: string };
    /** The audit id: every finding of one audit, all slices, shares it. */
    correlation_uid: string;
  };
  finding_info: {
    uid: string;
    title: string;
    desc: string;
    types: string[];
    created_time: number;
    last_seen_time: number;
  };
  compliance: {
    control: string;
    standards: string[];
    requirements: string[];
    status_id: number;
    status: string;
    status_detail?: string;
  };
  remediation: { desc: string };
  resources: {
    uid: string;
    name: string;
    type: string;
    region: string;
    cloud_partition: string;
    data: { aliases: string[] };
  }[];
  cloud: { provider: 'AWS'; region: string; account: { uid: string; type_id: number; type: string } };
  unmapped: {
    [UNMAPPED_NAMESPACE]: {
      auditId: string;
      rule: AuditRuleId;
      evidence: Record<string, unknown>;
      exception?: AuditException;
      remediation?: string;
    };
  };
}

/** A finding of the audit as the reports list it: open, suppressed (with its exception) or remediated. */
export type ReportedFinding = AuditFinding & { exception?: AuditException; remediation?: string };

export interface OcsfContext {
  location: ServiceLocation;
  auditId: string;
  /** When this audit judged the key. */
  now: Date;
  /** This service's version (`metadata.product.version`). */
  productVersion: string;
}

export const keyArnOf = (location: ServiceLocation, keyId: string): string =>
  `arn:${location.partition}:kms:${location.region}:${location.account}:key/${keyId}`;

const statusOf = (item: ReportedFinding) =>
  item.remediation !== undefined ? OCSF_STATUS.resolved : item.exception ? OCSF_STATUS.suppressed : OCSF_STATUS.new;

const exceptionText = (exception: AuditException): string =>
  `suppressed by exception until ${exception.until}, owner ${exception.owner}${exception.ticket ? `, ticket ${exception.ticket}` : ''}${exception.reason ? `, reason ${exception.reason}` : ''}`;

/** One audit finding as an OCSF Compliance Finding. */
export const toOcsf = (item: ReportedFinding, context: OcsfContext): OcsfComplianceFinding => {
  const { location } = context;
  const time = context.now.getTime();
  const remediated = item.remediation !== undefined;
  const activity = remediated ? OCSF_ACTIVITY.close : OCSF_ACTIVITY.create;
  const status = statusOf(item);
  const compliance = remediated ? OCSF_COMPLIANCE_STATUS.pass : OCSF_COMPLIANCE_STATUS.fail;
  const severity = OCSF_SEVERITY[item.severity];
  const detail = remediated
    ? `remediated by this audit: ${item.remediation}`
    : item.exception
      ? exceptionText(item.exception)
      : undefined;
  return {
    activity_id: activity.id,
    activity_name: activity.name,
    category_uid: OCSF_CATEGORY.uid,
    category_name: OCSF_CATEGORY.name,
    class_uid: OCSF_CLASS.uid,
    class_name: OCSF_CLASS.name,
    type_uid: OCSF_CLASS.uid * 100 + activity.id,
    type_name: `${OCSF_CLASS.name}: ${activity.name}`,
    severity_id: severity.id,
    severity: severity.name,
    status_id: status.id,
    status: status.name,
    time,
    message: item.summary,
    metadata: {
      version: OCSF_SCHEMA_VERSION,
      product: { name: OCSF_PRODUCT.name, vendor_name: OCSF_PRODUCT.vendorName, version: context.productVersion },
      correlation_uid: context.auditId,
    },
    finding_info: {
      uid: findingIdOf(location, item.keyId, item.rule),
      title: `KMS key ${item.keyId}: ${item.rule}`,
      desc: item.summary,
      types: [`${OCSF_PRODUCT.name}/${item.rule}`],
      created_time: time,
      last_seen_time: time,
    },
    compliance: {
      control: item.rule,
      standards: STANDARDS[item.rule],
      requirements: CONTROLS[item.rule],
      status_id: compliance.id,
      status: compliance.name,
      ...(detail ? { status_detail: detail } : {}),
    },
    remediation: { desc: REMEDIATION[item.rule] },
    resources: [
      {
        uid: keyArnOf(location, item.keyId),
        name: item.keyId,
        type: OCSF_RESOURCE_TYPE,
        region: location.region,
        cloud_partition: location.partition,
        data: { aliases: item.aliases },
      },
    ],
    cloud: {
      provider: 'AWS',
      region: location.region,
      account: { uid: location.account, type_id: AWS_ACCOUNT.id, type: AWS_ACCOUNT.name },
    },
    unmapped: {
      [UNMAPPED_NAMESPACE]: {
        auditId: context.auditId,
        rule: item.rule,
        evidence: item.evidence,
        ...(item.exception ? { exception: item.exception } : {}),
        ...(remediated ? { remediation: item.remediation } : {}),
      },
    },
  };
};

/** Every finding of a slice, one per key and rule (as Security Hub has them), sorted by id. */
export const ocsfFindingsOf = (found: readonly ReportedFinding[], context: OcsfContext): OcsfComplianceFinding[] =>
  [...oneFindingPerKeyAndRule(found, context.location).entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, item]) => toOcsf(item, context));
