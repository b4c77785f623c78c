import * as z from 'zod/mini';
import STAGE_DEFAULTS from '../config/defaults.json';
import { KMS_DEFAULT_QUOTAS } from './adapters/pacing';
import { matching } from './adapters/schemas/zod';
import { currentRuleId, type DriftMode, type DriftRuleId, REMEDIABLE_RULES } from './domain/drift-rules';
import { RETIRE_DAYS, type RetireMode } from './domain/retire-predecessors';

/** A whole number from an environment variable, within bounds, defaulted when unset. */
const wholeNumber = (min: number, max: number, fallback: number) =>
  z._default(
    z
      .pipe(z.string(), z.transform(Number))
      .check(
        z.refine(
          (value) => Number.isInteger(value) && value >= min && value <= max,
          `must be a whole number from ${min} to ${max}`,
        ),
      ),
    fallback,
  );

/** A comma- or space-separated list. */
const list = (fallback: string) =>
  z.pipe(
    z._default(z.string(), fallback),
    z.transform((value) => value.split(/[\s,]+/).filter(Boolean)),
  );

/**
 * The stack's role names (`!Ref` of each role: what `serverless invoke local` can resolve, where it
 * cannot resolve `!GetAtt` or `!Join`). Their ARNs follow once the account and partition are known.
 */
const roleName = matching(/^[\w+=,.@-]{1,64}$/, 'must be an IAM role name');

/** `ListKeyRotations=50`: a KMS API the audit paces, and a rate above 0. */
const RATE_LIMIT = /^([A-Za-z]+)=(\d+(?:\.\d+)?)$/;
const isRateLimit = (entry: string): boolean => {
  const match = RATE_LIMIT.exec(entry);
  return match !== null && Object.hasOwn(KMS_DEFAULT_QUOTAS, match[1] as string) && Number(match[2]) > 0;
};
const rateLimitsOf = (entries: readonly string[]): Record<string, number> =>
  Object.fromEntries(
    entries.map((entry) => {
      const [, api, rate] = RATE_LIMIT.exec(entry) as RegExpExecArray;
      return [api as string, Number(rate)];
    }),
  );

const Environment = z.object({
  AWS_REGION: matching(/^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/, 'must be a Region name'),
  TOPIC_ARN: matching(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$/, 'must be an SNS topic ARN'),
  STATE_PARAMETER_PREFIX: matching(/^(\/[\w.-]+)+$/, 'must be an SSM parameter path like /kms-rotation/dev/keys'),
  ROTATION_EVENT_TOLERANCE_MINUTES: wholeNumber(1, 1440, Number(STAGE_DEFAULTS.rotationEventToleranceMinutes)),
  ON_DEMAND_ROTATION_LIMIT: wholeNumber(1, 25, Number(STAGE_DEFAULTS.onDemandRotationLimit)),
  ROTATION_WAIT_SECONDS: wholeNumber(0, 600, Number(STAGE_DEFAULTS.rotationWaitSeconds)),
  RECENT_ROTATION_MINUTES: wholeNumber(0, 1440, Number(STAGE_DEFAULTS.recentRotationMinutes)),
  AWS_CLIENT_TIMEOUT_MS: wholeNumber(100, 60_000, 5_000),
  DRIFT_MODE: z._default(z.enum(['detect', 'remediate']), STAGE_DEFAULTS.driftMode as DriftMode),
  // A renamed rule id (`rotation-disabled`) is read as its new one until the next release.
  DRIFT_REMEDIATE_RULES: z
    .pipe(
      list(STAGE_DEFAULTS.driftRemediateRules),
      z.transform((rules) => rules.map(currentRuleId)),
    )
    .check(
      z.refine(
        (rules) => rules.every((rule) => (REMEDIABLE_RULES as readonly string[]).includes(rule)),
        `may only list ${REMEDIABLE_RULES.join(', ')}`,
      ),
    ),
  AUDIT_MAX_ROTATION_PERIOD_DAYS: wholeNumber(90, 2560, Number(STAGE_DEFAULTS.auditMaxRotationPeriodDays)),
  AUDIT_MAX_MATERIAL_AGE_DAYS: wholeNumber(1, 3650, Number(STAGE_DEFAULTS.auditMaxMaterialAgeDays)),
  AUDIT_IMPORT_EXPIRY_WARNING_DAYS: wholeNumber(1, 365, Number(STAGE_DEFAULTS.importExpiryWarningDays)),
  AUDIT_ROTATION_DUE_WARNING_DAYS: wholeNumber(1, 365, Number(STAGE_DEFAULTS.rotationDueWarningDays)),
  AUDIT_REMEDIATE: z._default(z.enum(['true', 'false']), STAGE_DEFAULTS.auditRemediate as 'true' | 'false'),
  AUDIT_CONCURRENCY: wholeNumber(1, 64, Number(STAGE_DEFAULTS.auditConcurrency)),
  AUDIT_QUOTA_SHARE: z._default(
    z
      .pipe(z.string(), z.transform(Number))
      .check(z.refine((value) => value > 0 && value <= 1, 'must be a number above 0, at most 1')),
    Number(STAGE_DEFAULTS.auditQuotaShare),
  ),
  AUDIT_RATE_LIMITS: list(STAGE_DEFAULTS.auditRateLimits).check(
    z.refine(
      (entries) => entries.every(isRateLimit),
      `may only list <KMS API>=<requests per second above 0>, e.g. ListKeyRotations=50,DescribeKey=500, the APIs among ${Object.keys(KMS_DEFAULT_QUOTAS).join(', ')}`,
    ),
  ),
  SECURITY_HUB_FINDINGS: z._default(z.enum(['true', 'false']), STAGE_DEFAULTS.securityHubFindings as 'true' | 'false'),
  AUDIT_REPORTS_BUCKET: z._default(
    z
      .string()
      .check(
        z.refine(
          (value) => value === '' || /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(value),
          'must be an S3 bucket name, or empty for no reports',
        ),
      ),
    '',
  ),
  ALIAS_SCOPE: list('').check(
    z.refine(
      (patterns) =>
        patterns.every((pattern) => /^alias\/[\w/-]*\*?$/.test(pattern) && !pattern.startsWith('alias/aws/')),
      'may only list alias names or folders like alias/app/* (never alias/aws/)',
    ),
  ),
  RETIRE_MODE: z._default(z.enum(['off', 'dry-run', 'enforce']), STAGE_DEFAULTS.retireMode as RetireMode),
  RETIRE_DISABLE_AFTER_DAYS: wholeNumber(
    RETIRE_DAYS.min,
    RETIRE_DAYS.max,
    Number(STAGE_DEFAULTS.retireDisableAfterDays),
  ),
  RETIRE_DELETE_AFTER_DAYS: wholeNumber(RETIRE_DAYS.min, RETIRE_DAYS.max, Number(STAGE_DEFAULTS.retireDeleteAfterDays)),
  ON_ROTATION_ROLE_NAME: z.optional(roleName),
  ROTATE_ROLE_NAME: z.optional(roleName),
  ON_KEY_ACTIVITY_ROLE_NAME: z.optional(roleName),
  SELF_TEST_ROLE_NAME: z.optional(roleName),
  LEASE_TABLE: z.optional(matching(/^[\w.-]{3,255}$/, 'must be a DynamoDB table name')),
  // The member role's name prefix in organization mode (`<prefix>-<region>`, docs/organization.md);
  // empty outside it. At most 54 characters: a role name is 64 at most, and the shortest Region
  // name (us-east-1) and the dash take 10.
  MEMBER_ROLE_NAME: z._default(
    z
      .string()
      .check(
        z.refine(
          (value) => value === '' || /^[\w+=,.@-]{1,54}$/.test(value),
          'must be an IAM role name prefix (at most 54 characters), or empty outside organization mode',
        ),
      ),
    '',
  ),
  ORGANIZATION_UNIT_IDS: list('').check(
    z.refine(
      (ids) => ids.every((id) => /^(?:r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$/.test(id)),
      'may only list organization unit or root ids (ou-..., r-...)',
    ),
  ),
  ORGANIZATION_REGIONS: list('').check(
    z.refine(
      (regions) => regions.every((region) => /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/.test(region)),
      'may only list Region names',
    ),
  ),
  ORG_AUDIT_QUEUE_URL: z.optional(matching(/^https?:\/\/\S{1,1000}$/, 'must be an SQS queue URL')),
  ORG_AUDIT_TABLE: z.optional(matching(/^[\w.-]{3,255}$/, 'must be a DynamoDB table name')),
  ORG_AUDIT_ATTEMPTS: wholeNumber(1, 10, Number(STAGE_DEFAULTS.orgAuditAttempts)),
});

export interface ServiceConfig {
  region: string;
  topicArn: string;
  stateParameterPrefix: string;
  rotationEventToleranceMs: number;
  onDemandRotationLimit: number;
  rotationWaitMs: number;
  recentRotationMs: number;
  /** Longest an AWS call may take before it is abandoned and retried. */
  clientTimeoutMs: number;
  driftMode: DriftMode;
  driftRemediateRules: ReadonlySet<DriftRuleId>;
  /**
   * The names of the stack's function roles that are set for this function: `onKeyActivity` has
   * all four (its own calls are not drift), `rotate` its own (named in each alias-swap successor's
   * key policy), `selfTest` its own (named in its throwaway keys' policies).
   */
  roleNames: { onRotation?: string; rotate?: string; onKeyActivity?: string; selfTest?: string };
  /** The aliases the service may create and move (the stack's `aliasScope`). */
  aliasScope: string[];
  /** The DynamoDB table of key leases: one run at a time changes a key. */
  leaseTable?: string;
  /**
   * Organization mode (docs/trust-boundaries.md): the prefix of the member stack's role, which the
   * function assumes to act in another account or Region of the organization. Undefined outside
   * organization mode: events and payloads of another account or Region are refused as before.
   */
  memberRoleName: string | undefined;
  /** The organization audit (docs/org-audit.md): its OUs, Regions, queue, run table and attempts per item. */
  orgAudit: {
    organizationUnitIds: string[];
    regions: string[];
    queueUrl?: string;
    table?: string;
    attempts: number;
  };
  audit: {
    maxRotationPeriodDays: number;
    maxMaterialAgeDays: number;
    /** Days before imported material's ValidTo that the audit notifies `ImportedMaterialExpiring`. */
    importExpiryWarningDays: number;
    /** Days before a key that never rotates by itself is due that the audit notifies `RotationDue`. */
    rotationDueWarningDays: number;
    remediateOnSchedule: boolean;
    concurrency: number;
    quotaShare: number;
    /** Per-API overrides of the documented KMS quotas, requests per second (`AUDIT_RATE_LIMITS`). */
    rateLimits: Readonly<Record<string, number>>;
    /** The stack's report bucket, when its `auditReports` is on (docs/audit-reports.md); unset, no reports. */
    reportsBucket?: string;
  };
  /**
   * The audit's and the drift watch's findings also go to Security Hub (the stack's
   * `securityHubFindings`, `SECURITY_HUB_FINDINGS`; docs/security-hub.md).
   */
  securityHubFindings: boolean;
  /** `retire`: the stage's `retireMode`, `retireDisableAfterDays`, `retireDeleteAfterDays` (docs/retire.md). */
  retire: { mode: RetireMode; disableAfterDays: number; deleteAfterDays: number };
}

/** Thrown at cold start when the function's environment is wrong: the message names the variable. */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

/** Every setting the service reads from its environment. */
export type Setting = keyof z.infer<typeof Environment>;

/** What every function reads: where it runs, its topic, its records, its client timeout, the key leases. */
const COMMON: readonly Setting[] = [
  'AWS_REGION',
  'TOPIC_ARN',
  'STATE_PARAMETER_PREFIX',
  'AWS_CLIENT_TIMEOUT_MS',
  'LEASE_TABLE',
];
/** What the audit judges by and how it paces itself: the same for `audit` and the org audit's worker. */
const AUDITING: readonly Setting[] = [
  'AUDIT_REMEDIATE',
  'AUDIT_MAX_ROTATION_PERIOD_DAYS',
  'AUDIT_MAX_MATERIAL_AGE_DAYS',
  'AUDIT_CONCURRENCY',
  'AUDIT_QUOTA_SHARE',
  'AUDIT_RATE_LIMITS',
  'AUDIT_REPORTS_BUCKET',
  'AUDIT_IMPORT_EXPIRY_WARNING_DAYS',
  'AUDIT_ROTATION_DUE_WARNING_DAYS',
];
const ROTATION: readonly Setting[] = [
  'ROTATION_EVENT_TOLERANCE_MINUTES',
  'ON_DEMAND_ROTATION_LIMIT',
  'ROTATION_WAIT_SECONDS',
  'RECENT_ROTATION_MINUTES',
];

/**
 * The settings each function reads, and no others: a setting meant for another function (a bad
 * `AUDIT_RATE_LIMITS`, say) never fails this one's cold start, and this one takes the default of
 * a setting it does not read. `tests/template/template.test.ts` holds serverless.yml to it: each
 * function is given exactly what it reads (the common settings come from the provider and Lambda).
 */
export const SETTINGS_OF = {
  onRotation: [...COMMON, 'ROTATION_EVENT_TOLERANCE_MINUTES', 'MEMBER_ROLE_NAME'],
  rotate: [...COMMON, ...ROTATION, 'ALIAS_SCOPE', 'ROTATE_ROLE_NAME', 'MEMBER_ROLE_NAME'],
  onKeyActivity: [
    ...COMMON,
    'DRIFT_MODE',
    'DRIFT_REMEDIATE_RULES',
    'ALIAS_SCOPE',
    'SECURITY_HUB_FINDINGS',
    'ON_ROTATION_ROLE_NAME',
    'ROTATE_ROLE_NAME',
    'ON_KEY_ACTIVITY_ROLE_NAME',
    'SELF_TEST_ROLE_NAME',
    'MEMBER_ROLE_NAME',
  ],
  audit: [...COMMON, ...AUDITING, 'SECURITY_HUB_FINDINGS', 'MEMBER_ROLE_NAME'],
  selfTest: [...COMMON, ...ROTATION, 'SELF_TEST_ROLE_NAME'],
  retire: [...COMMON, 'RETIRE_MODE', 'RETIRE_DISABLE_AFTER_DAYS', 'RETIRE_DELETE_AFTER_DAYS'],
  // Organization mode only (ORGANIZATION_ONLY): the fan-out and the worker of the organization audit.
  orgAudit: [
    ...COMMON.filter((setting) => setting !== 'LEASE_TABLE'),
    'MEMBER_ROLE_NAME',
    'ORGANIZATION_UNIT_IDS',
    'ORGANIZATION_REGIONS',
    'ORG_AUDIT_QUEUE_URL',
    'ORG_AUDIT_TABLE',
    'AUDIT_REPORTS_BUCKET',
  ],
  orgAuditItem: [...COMMON, ...AUDITING, 'MEMBER_ROLE_NAME', 'ORG_AUDIT_TABLE', 'ORG_AUDIT_ATTEMPTS'],
} as const satisfies Record<string, readonly Setting[]>;

export type FunctionName = keyof typeof SETTINGS_OF;

/** Functions the stack has only in organization mode (the stage's `organizationUnitIds` set). */
export const ORGANIZATION_ONLY: readonly FunctionName[] = ['orgAudit', 'orgAuditItem'];

/**
 * Reads and validates the environment once, at cold start: for `fn`, only the settings it reads
 * (`SETTINGS_OF`); without one (tests, scripts), every setting.
 */
export const loadConfig = (env: NodeJS.ProcessEnv, fn?: FunctionName): ServiceConfig => {
  const read = fn ? Object.fromEntries((SETTINGS_OF[fn] as readonly string[]).map((name) => [name, env[name]])) : env;
  const parsed = Environment.safeParse(read);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`).join('; ');
    throw new ConfigurationError(`Invalid environment: ${problems}`);
  }
  return {
    region: parsed.data.AWS_REGION,
    topicArn: parsed.data.TOPIC_ARN,
    stateParameterPrefix: parsed.data.STATE_PARAMETER_PREFIX,
    rotationEventToleranceMs: parsed.data.ROTATION_EVENT_TOLERANCE_MINUTES * 60_000,
    onDemandRotationLimit: parsed.data.ON_DEMAND_ROTATION_LIMIT,
    rotationWaitMs: parsed.data.ROTATION_WAIT_SECONDS * 1000,
    recentRotationMs: parsed.data.RECENT_ROTATION_MINUTES * 60_000,
    clientTimeoutMs: parsed.data.AWS_CLIENT_TIMEOUT_MS,
    driftMode: parsed.data.DRIFT_MODE,
    driftRemediateRules: new Set(parsed.data.DRIFT_REMEDIATE_RULES as DriftRuleId[]),
    aliasScope: parsed.data.ALIAS_SCOPE,
    roleNames: {
      onRotation: parsed.data.ON_ROTATION_ROLE_NAME,
      rotate: parsed.data.ROTATE_ROLE_NAME,
      onKeyActivity: parsed.data.ON_KEY_ACTIVITY_ROLE_NAME,
      selfTest: parsed.data.SELF_TEST_ROLE_NAME,
    },
    leaseTable: parsed.data.LEASE_TABLE,
    memberRoleName: parsed.data.MEMBER_ROLE_NAME || undefined,
    orgAudit: {
      organizationUnitIds: parsed.data.ORGANIZATION_UNIT_IDS,
      regions: parsed.data.ORGANIZATION_REGIONS,
      queueUrl: parsed.data.ORG_AUDIT_QUEUE_URL,
      table: parsed.data.ORG_AUDIT_TABLE,
      attempts: parsed.data.ORG_AUDIT_ATTEMPTS,
    },
    audit: {
      maxRotationPeriodDays: parsed.data.AUDIT_MAX_ROTATION_PERIOD_DAYS,
      maxMaterialAgeDays: parsed.data.AUDIT_MAX_MATERIAL_AGE_DAYS,
      importExpiryWarningDays: parsed.data.AUDIT_IMPORT_EXPIRY_WARNING_DAYS,
      rotationDueWarningDays: parsed.data.AUDIT_ROTATION_DUE_WARNING_DAYS,
      remediateOnSchedule: parsed.data.AUDIT_REMEDIATE === 'true',
      concurrency: parsed.data.AUDIT_CONCURRENCY,
      quotaShare: parsed.data.AUDIT_QUOTA_SHARE,
      rateLimits: rateLimitsOf(parsed.data.AUDIT_RATE_LIMITS),
      reportsBucket: parsed.data.AUDIT_REPORTS_BUCKET || undefined,
    },
    securityHubFindings: parsed.data.SECURITY_HUB_FINDINGS === 'true',
    retire: {
      mode: parsed.data.RETIRE_MODE,
      disableAfterDays: parsed.data.RETIRE_DISABLE_AFTER_DAYS,
      deleteAfterDays: parsed.data.RETIRE_DELETE_AFTER_DAYS,
    },
  };
};

/** A setting only some functions need, required where it is used: the message names the variable. */
export const required = <T>(value: T | undefined, variable: string): T => {
  if (value === undefined)
    throw new ConfigurationError(`Invalid environment: ${variable} is required by this function`);
  return value;
};

/** Every setting's name. */
export const ALL_SETTINGS = Object.keys(Environment.shape) as Setting[];
