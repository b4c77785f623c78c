import type { AuditException } from './audit-exceptions';
import { type AuditFinding, type AuditRuleId, CONTROLS } from './audit-rules';
import type { DriftRuleId } from './drift-rules';
import type { ServiceLocation, Severity } from './model';
import type { Log } from './ports';

/**
 * Audit findings (and, through `src/domain/drift-asff.ts`, drift findings) as AWS Security Finding
 * Format (ASFF) findings of the account's own "default" product, one per key and rule, updated by
 * each audit and resolved when the key is compliant again. The fields, limits and AWS references are in docs/security-hub.md. No SDK here: the
 * adapter sends these objects as they are.
 */

/** The ASFF fields this service writes: a subset of `AwsSecurityFinding`. */
export interface AsffFinding {
  SchemaVersion: '2018-10-08';
  Id: string;
  ProductArn: string;
  GeneratorId: string;
  AwsAccountId: string;
  Region: string;
  Types: string[];
  CreatedAt: string;
  UpdatedAt: string;
  Severity: { Label: AsffSeverity };
  FindingProviderFields: { Severity: { Label: AsffSeverity }; Types: string[] };
  Title: string;
  Description: string;
  ProductFields: Record<string, string>;
  Resources: { Type: 'AwsKmsKey'; Id: string; Partition: string; Region: string }[];
  Compliance: { Status: 'FAILED' | 'PASSED'; RelatedRequirements: string[] };
  Workflow: { Status: 'NEW' | 'SUPPRESSED' | 'RESOLVED' };
  RecordState: 'ACTIVE' | 'ARCHIVED';
}

export type AsffSeverity = 'INFORMATIONAL' | 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';

/** What the audit and the drift watch need of Security Hub: upsert findings, and read back this product's open ones. */
export interface SecurityFindings {
  /** Imports (creates or updates, by Id and ProductArn) every finding; fails if any is refused. */
  importFindings(findings: AsffFinding[]): Promise<void>;
  /**
   * This service's findings in this account and Region whose record state is ACTIVE: all of them
   * (the audit), or only those of the given key ARNs (the drift watch, which judges a few keys).
   */
  activeFindings(keyArns?: readonly string[]): Promise<AsffFinding[]>;
}

/**
 * Sends one batch (findings imported open or suppressed, and findings resolved) to Security Hub,
 * nothing when it is empty, and logs what went with `context` (the audit's or the event's id).
 */
export const sendFindings = async (
  hub: SecurityFindings,
  batch: { imports: readonly AsffFinding[]; resolved: readonly AsffFinding[] },
  log: Log,
  context: Record<string, unknown>,
): Promise<{ imported: number; resolved: number }> => {
  const { imports, resolved } = batch;
  if (imports.length + resolved.length > 0) await hub.importFindings([...imports, ...resolved]);
  log.info('findings sent to Security Hub', { ...context, imported: imports.length, resolved: resolved.length });
  return { imported: imports.length, resolved: resolved.length };
};

/** ASFF limits of the fields this service bounds (docs/security-hub.md, AWS references). */
export const ASFF_LIMITS = {
  title: 256,
  description: 1024,
  relatedRequirements: 32,
  productFieldValue: 2048,
} as const;

export const ASFF_SCHEMA_VERSION = '2018-10-08';
export const ASFF_TYPE = 'Software and Configuration Checks/Industry and Regulatory Standards';
/** Every GeneratorId of this service starts with this; with the ProductArn it marks our findings. */
export const GENERATOR_PREFIX = 'kms-rotation/';
/** ProductFields keys; the audit id tells which audit last saw a finding. */
export const PRODUCT_FIELD = {
  auditId: 'kms-rotation/auditId',
  rule: 'kms-rotation/rule',
  keyId: 'kms-rotation/keyId',
  exception: 'kms-rotation/exception',
  /** Set only by the drift watch: the drift rule(s) it last imported the finding for. */
  driftRule: 'kms-rotation/driftRule',
  /** The CloudTrail record (or KMS event) the drift watch judged. */
  eventId: 'kms-rotation/eventId',
  /** Who made the call that caused the drift, as CloudTrail recorded it. */
  actor: 'kms-rotation/actor',
  /** What the drift watch did to put the drift back (remediate mode). */
  remediation: 'kms-rotation/remediation',
} as const;

/** INFO is informational, WARNING medium, CRITICAL critical (docs/security-hub.md explains why). */
export const ASFF_SEVERITY: Record<Severity, AsffSeverity> = {
  INFO: 'INFORMATIONAL',
  WARNING: 'MEDIUM',
  CRITICAL: 'CRITICAL',
};

/** The account's default product, which any account may import its own findings to. */
export const productArnOf = (location: ServiceLocation): string =>
  `arn:${location.partition}:securityhub:${location.region}:${location.account}:product/${location.account}/default`;

/**
 * One finding per key and rule: the same Id on every audit, so that an import updates it. The rule
 * is an audit rule, or a drift rule that no audit rule judges (`src/domain/drift-asff.ts`).
 */
export const findingIdOf = (location: ServiceLocation, keyId: string, rule: AuditRuleId | DriftRuleId): string =>
  `kms-rotation/${location.account}/${location.region}/${keyId}/${rule}`;

export const keyArnOf = (location: ServiceLocation, keyId: string): string =>
  `arn:${location.partition}:kms:${location.region}:${location.account}:key/${keyId}`;

/** Whether a rule is one the audit judges: only the audit's findings does its end-of-run resolution touch. */
export const isAuditRule = (rule: string | undefined): rule is AuditRuleId =>
  rule !== undefined && Object.hasOwn(CONTROLS, rule);

const SEVERITY_ORDER: readonly Severity[] = ['INFO', 'WARNING', 'CRITICAL'];

export const bounded = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max - 1)}…`;

export interface AsffContext {
  location: ServiceLocation;
  auditId: string;
  /** When this audit judged the key: the finding's UpdatedAt. */
  now: Date;
  /** CreatedAt of the finding already open in Security Hub under the same Id, kept as it was. */
  createdAt?: string;
}

/** What one ASFF finding of this service says, whoever found it (the audit or the drift watch). */
export interface FindingContent {
  /** The rule the finding's Id, GeneratorId and Title name. */
  rule: AuditRuleId | DriftRuleId;
  severity: Severity;
  keyId: string;
  aliases: readonly string[];
  summary: string;
  /** Compliance.RelatedRequirements. */
  controls: readonly string[];
  /** The exception in force that suppresses it. */
  exception?: AuditException;
}

/**
 * One finding of this service as ASFF: open (FAILED, ACTIVE), NEW or SUPPRESSED by its exception.
 * `productFields` are the producer's own (the audit id; the drift's event, actor, rules).
 */
export const asffOf = (
  item: FindingContent,
  context: { location: ServiceLocation; now: Date; createdAt?: string },
  productFields: Record<string, string>,
): AsffFinding => {
  const { location } = context;
  const now = context.now.toISOString();
  const label = ASFF_SEVERITY[item.severity];
  const exception = item.exception;
  const aliases = item.aliases.length > 0 ? ` (aliases: ${item.aliases.join(', ')})` : '';
  return {
    SchemaVersion: ASFF_SCHEMA_VERSION,
    Id: findingIdOf(location, item.keyId, item.rule),
    ProductArn: productArnOf(location),
    GeneratorId: `${GENERATOR_PREFIX}${item.rule}`,
    AwsAccountId: location.account,
    Region: location.region,
    Types: [ASFF_TYPE],
    CreatedAt: context.createdAt ?? now,
    UpdatedAt: now,
    Severity: { Label: label },
    FindingProviderFields: { Severity: { Label: label }, Types: [ASFF_TYPE] },
    Title: bounded(`KMS key ${item.keyId}: ${item.rule}`, ASFF_LIMITS.title),
    Description: bounded(
      `${item.summary}${aliases}${
        exception
          ? `. Suppressed by exception until ${exception.until}, owner ${exception.owner}${exception.ticket ? `, ticket ${exception.ticket}` : ''}`
          : ''
      }`,
      ASFF_LIMITS.description,
    ),
    ProductFields: {
      ...Object.fromEntries(
        Object.entries(productFields).map(([key, value]) => [key, bounded(value, ASFF_LIMITS.productFieldValue)]),
      ),
      [PRODUCT_FIELD.rule]: item.rule,
      [PRODUCT_FIELD.keyId]: item.keyId,
      ...(exception
        ? { [PRODUCT_FIELD.exception]: bounded(JSON.stringify(exception), ASFF_LIMITS.productFieldValue) }
        : {}),
    },
    Resources: [
      {
        Type: 'AwsKmsKey',
        Id: keyArnOf(location, item.keyId),
        Partition: location.partition,
        Region: location.region,
      },
    ],
    Compliance: {
      Status: 'FAILED',
      RelatedRequirements: item.controls.slice(0, ASFF_LIMITS.relatedRequirements),
    },
    Workflow: { Status: exception ? 'SUPPRESSED' : 'NEW' },
    RecordState: 'ACTIVE',
  };
};

/** An audit finding (suppressed if it carries the exception in force) as an ASFF finding. */
export const toAsff = (item: AuditFinding & { exception?: AuditException }, context: AsffContext): AsffFinding =>
  asffOf({ ...item, controls: CONTROLS[item.rule] }, context, { [PRODUCT_FIELD.auditId]: context.auditId });

/** The fields this service writes, as `toAsff` makes them: what it sends again of a finding read back. */
const OWN_FIELDS = [
  'SchemaVersion',
  'Id',
  'ProductArn',
  'GeneratorId',
  'AwsAccountId',
  'Region',
  'Types',
  'CreatedAt',
  'UpdatedAt',
  'Severity',
  'FindingProviderFields',
  'Title',
  'Description',
  'ProductFields',
  'Resources',
  'Compliance',
  'Workflow',
  'RecordState',
] as const satisfies readonly (keyof AsffFinding)[];

/**
 * A finding the latest complete audit no longer found (or the drift watch put back, or no longer
 * finds): compliant again, so resolved and archived. Only this service's own fields are sent again:
 * not those Security Hub adds to what it returns (ProcessedAt, ProductName, `aws/securityhub/`
 * product fields, ...), nor anything its users set. Stamped with the audit's id when an audit
 * resolves it; the drift watch keeps the audit id the finding has.
 */
export const resolvedOf = (finding: AsffFinding, context: { auditId?: string; now: Date }): AsffFinding => ({
  ...(Object.fromEntries(
    OWN_FIELDS.filter((field) => finding[field] !== undefined).map((field) => [field, finding[field]]),
  ) as unknown as AsffFinding),
  UpdatedAt: context.now.toISOString(),
  ProductFields: {
    ...Object.fromEntries(
      Object.entries(finding.ProductFields ?? {}).filter(([key]) => key.startsWith(GENERATOR_PREFIX)),
    ),
    ...(context.auditId !== undefined ? { [PRODUCT_FIELD.auditId]: context.auditId } : {}),
  },
  Compliance: { ...finding.Compliance, Status: 'PASSED' },
  Workflow: { Status: 'RESOLVED' },
  RecordState: 'ARCHIVED',
});

/** Whether a finding read back from Security Hub is one of this service's, in this account and Region. */
export const isOwnFinding = (finding: Pick<AsffFinding, 'ProductArn' | 'GeneratorId'>, location: ServiceLocation) =>
  finding.ProductArn === productArnOf(location) && (finding.GeneratorId ?? '').startsWith(GENERATOR_PREFIX);

/**
 * One finding per key and rule, by its stable id (`findingIdOf`): a rule found twice on one key
 * (two declared aliases, two malformed exception tags) is one finding, at the higher severity,
 * saying both. Security Hub and the audit's OCSF reports both name findings this way.
 */
export const oneFindingPerKeyAndRule = <T extends AuditFinding>(
  found: readonly T[],
  location: ServiceLocation,
): Map<string, T> => {
  const byId = new Map<string, T>();
  for (const item of found) {
    const id = findingIdOf(location, item.keyId, item.rule);
    const earlier = byId.get(id);
    byId.set(
      id,
      earlier
        ? {
            ...earlier,
            severity:
              SEVERITY_ORDER.indexOf(item.severity) > SEVERITY_ORDER.indexOf(earlier.severity)
                ? item.severity
                : earlier.severity,
            aliases: [...new Set([...earlier.aliases, ...item.aliases])],
            summary: `${earlier.summary}; ${item.summary}`,
          }
        : item,
    );
  }
  return byId;
};

/**
 * What one audit slice sends: its findings (open ones and suppressed ones), each keeping the
 * CreatedAt of the finding already open under its Id; and, at the end of a complete audit of the
 * whole fleet (`resolveUnseen`), every open finding of an audit rule that no slice of this audit
 * found again (another audit id, and not in this batch), resolved. Not resolved there: findings
 * of drift rules no audit rule judges (the audit cannot tell they are gone; the drift watch
 * resolves them), and findings updated since this audit started (the drift watch found them
 * after the audit may have read the key).
 */
export const securityHubBatch = (
  found: readonly (AuditFinding & { exception?: AuditException })[],
  active: readonly AsffFinding[],
  context: { location: ServiceLocation; auditId: string; startedAt: string; now: Date; resolveUnseen: boolean },
): { imports: AsffFinding[]; resolved: AsffFinding[] } => {
  const openById = new Map(
    active.filter((finding) => isOwnFinding(finding, context.location)).map((finding) => [finding.Id, finding]),
  );
  const byId = oneFindingPerKeyAndRule(found, context.location);
  const imports = new Map<string, AsffFinding>();
  for (const [id, item] of byId) imports.set(id, toAsff(item, { ...context, createdAt: openById.get(id)?.CreatedAt }));
  const resolved = context.resolveUnseen
    ? [...openById.values()]
        .filter(
          (finding) =>
            !imports.has(finding.Id) &&
            finding.ProductFields?.[PRODUCT_FIELD.auditId] !== context.auditId &&
            isAuditRule(finding.ProductFields?.[PRODUCT_FIELD.rule]) &&
            !(Date.parse(finding.UpdatedAt) > Date.parse(context.startedAt)),
        )
        .map((finding) => resolvedOf(finding, context))
    : [];
  return { imports: [...imports.values()], resolved };
};
