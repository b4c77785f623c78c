import { z } from 'zod';
import { type DriftMode, type DriftRuleId, REMEDIABLE_RULES } from './domain/drift-rules';

const Environment = z.object({
  AWS_REGION: z.string().regex(/^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/, 'must be a Region name'),
  TOPIC_ARN: z.string().regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$/, 'must be an SNS topic ARN'),
  STATE_PARAMETER_PREFIX: z
    .string()
    .regex(/^(\/[\w.-]+)+$/, 'must be an SSM parameter path like /kms-rotation/dev/keys'),
  ROTATION_EVENT_TOLERANCE_MINUTES: z.coerce.number().int().min(1).max(1440).default(60),
  ON_DEMAND_ROTATION_LIMIT: z.coerce.number().int().min(1).max(25).default(25),
  ROTATION_WAIT_SECONDS: z.coerce.number().int().min(0).max(600).default(60),
  AWS_CLIENT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5_000),
  DRIFT_MODE: z.enum(['detect', 'remediate']).default('detect'),
  DRIFT_REMEDIATE_RULES: z
    .string()
    .default(REMEDIABLE_RULES.join(','))
    .transform((value) => value.split(/[\s,]+/).filter(Boolean))
    .refine((rules) => rules.every((rule) => (REMEDIABLE_RULES as readonly string[]).includes(rule)), {
      message: `may only list ${REMEDIABLE_RULES.join(', ')}`,
    }),
  AUDIT_MAX_ROTATION_PERIOD_DAYS: z.coerce.number().int().min(90).max(2560).default(365),
  AUDIT_MAX_MATERIAL_AGE_DAYS: z.coerce.number().int().min(1).max(3650).default(400),
  AUDIT_REMEDIATE: z.enum(['true', 'false']).default('false'),
  AUDIT_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(16),
  AUDIT_QUOTA_SHARE: z.coerce.number().gt(0).max(1).default(0.9),
  AUDIT_RATE_LIMITS: z.string().default(''),
  SERVICE_ROLE_ARNS: z
    .string()
    .default('')
    .transform((value) => value.split(/[\s,]+/).filter(Boolean)),
});

export interface ServiceConfig {
  region: string;
  topicArn: string;
  stateParameterPrefix: string;
  rotationEventToleranceMs: number;
  onDemandRotationLimit: number;
  rotationWaitMs: number;
  /** Longest an AWS call may take before it is abandoned and retried. */
  clientTimeoutMs: number;
  driftMode: DriftMode;
  driftRemediateRules: ReadonlySet<DriftRuleId>;
  serviceRoleArns: string[];
  audit: {
    maxRotationPeriodDays: number;
    maxMaterialAgeDays: number;
    remediateOnSchedule: boolean;
    concurrency: number;
    quotaShare: number;
    rateLimits: string;
  };
}

/** Thrown at cold start when the function's environment is wrong: the message names the variable. */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

/** Reads and validates the environment once, at cold start. */
export const loadConfig = (env: NodeJS.ProcessEnv): ServiceConfig => {
  const parsed = Environment.safeParse(env);
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
    clientTimeoutMs: parsed.data.AWS_CLIENT_TIMEOUT_MS,
    driftMode: parsed.data.DRIFT_MODE,
    driftRemediateRules: new Set(parsed.data.DRIFT_REMEDIATE_RULES as DriftRuleId[]),
    serviceRoleArns: parsed.data.SERVICE_ROLE_ARNS,
    audit: {
      maxRotationPeriodDays: parsed.data.AUDIT_MAX_ROTATION_PERIOD_DAYS,
      maxMaterialAgeDays: parsed.data.AUDIT_MAX_MATERIAL_AGE_DAYS,
      remediateOnSchedule: parsed.data.AUDIT_REMEDIATE === 'true',
      concurrency: parsed.data.AUDIT_CONCURRENCY,
      quotaShare: parsed.data.AUDIT_QUOTA_SHARE,
      rateLimits: parsed.data.AUDIT_RATE_LIMITS,
    },
  };
};
