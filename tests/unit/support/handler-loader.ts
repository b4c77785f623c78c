import type { Context } from 'aws-lambda';
import { vi } from 'vitest';
import type { RecordedRequest, RecordingAws } from './recording-aws';

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
const PREFIX = 'kms-rotation-test';
export const roleArn = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;

/** The service's own roles, as the stack passes them to onKeyActivity (one with a path, as IAM allows). */
export const SERVICE_ROLES = {
  onRotation: roleArn(`${PREFIX}-onRotation`),
  rotate: roleArn(`${PREFIX}-rotate`),
  onKeyActivity: roleArn(`${PREFIX}-onKeyActivity`),
  selfTest: roleArn(`${PREFIX}-selfTest`),
} as const;
export const ALIAS_SCOPE = 'alias/app/*';

const HANDLERS = {
  onRotation: () => import('../../../handlers/on-rotation'),
  rotate: () => import('../../../handlers/rotate'),
  onKeyActivity: () => import('../../../handlers/on-key-activity'),
  audit: () => import('../../../handlers/audit'),
  selfTest: () => import('../../../handlers/self-test'),
  retire: () => import('../../../handlers/retire'),
  orgAudit: () => import('../../../handlers/org-audit'),
  orgAuditItem: () => import('../../../handlers/org-audit-item'),
};

/** The organization audit's functions exist in organization mode only: their own settings. */
const ORGANIZATION_ENV: Partial<Record<FunctionName, Record<string, string>>> = {
  orgAudit: {
    MEMBER_ROLE_NAME: 'kms-rotation-member',
    ORGANIZATION_UNIT_IDS: 'ou-ab12-cdefgh12',
    ORGANIZATION_REGIONS: 'us-east-1,eu-west-1',
    ORG_AUDIT_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/kms-rotation-test-org-audit',
    ORG_AUDIT_TABLE: 'kms-rotation-test-org-audit-runs',
  },
  orgAuditItem: {
    MEMBER_ROLE_NAME: 'kms-rotation-member',
    ORG_AUDIT_TABLE: 'kms-rotation-test-org-audit-runs',
    ORG_AUDIT_ATTEMPTS: '3',
  },
};
export type FunctionName = keyof typeof HANDLERS;
export type Handler = (event: unknown, context: Context) => Promise<unknown>;

/** The Lambda context of the function, deployed in ACCOUNT and REGION. */
export const contextOf = (fn: FunctionName): Context =>
  ({
    functionName: `${PREFIX}-${fn}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${PREFIX}-${fn}`,
    memoryLimitInMB: '256',
    awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
    logGroupName: `/aws/lambda/${PREFIX}-${fn}`,
    logStreamName: '2026/12/01/[$LATEST]0123456789abcdef',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 30_000,
  }) as Context;

/**
 * Loads the real handler module of `fn` with every AWS client pointed at `aws`: the
 * environment is set before the module is imported, since each handler reads it at cold start.
 */
export const loadHandler = async (fn: FunctionName, aws: RecordingAws): Promise<Handler> => {
  const env: Record<string, string> = {
    AWS_REGION: REGION,
    AWS_ENDPOINT_URL: aws.url,
    AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    AWS_SESSION_TOKEN: '',
    AWS_PROFILE: '',
    AWS_LAMBDA_FUNCTION_NAME: `${PREFIX}-${fn}`,
    TOPIC_ARN: `arn:aws:sns:${REGION}:${ACCOUNT}:${PREFIX}-notifications`,
    STATE_PARAMETER_PREFIX: `/kms-rotation/test/keys`,
    ON_ROTATION_ROLE_NAME: `${PREFIX}-onRotation`,
    ROTATE_ROLE_NAME: `${PREFIX}-rotate`,
    ON_KEY_ACTIVITY_ROLE_NAME: `${PREFIX}-onKeyActivity`,
    SELF_TEST_ROLE_NAME: `${PREFIX}-selfTest`,
    LEASE_TABLE: 'kms-rotation-test-key-leases',
    ALIAS_SCOPE,
    ROTATION_WAIT_SECONDS: '0',
    POWERTOOLS_SERVICE_NAME: 'kms-rotation',
    POWERTOOLS_METRICS_NAMESPACE: 'KmsRotation',
    POWERTOOLS_LOG_LEVEL: 'INFO',
    POWERTOOLS_DEV: '',
  };
  for (const [name, value] of Object.entries({ ...env, ...ORGANIZATION_ENV[fn] })) vi.stubEnv(name, value);
  const { handler } = await HANDLERS[fn]();
  return handler as Handler;
};

export interface Invocation {
  result?: unknown;
  error?: unknown;
  failed: boolean;
  /** What the handler asked of AWS during this invocation. */
  requests: RecordedRequest[];
  /** Every line written to stdout or stderr (Powertools Logger and Metrics) during the invocation. */
  logLines: string[];
}

/** Runs one invocation, recording the AWS requests it made and the lines it logged (kept off the terminal). */
export const invoke = async (
  handler: Handler,
  event: unknown,
  context: Context,
  aws: RecordingAws,
): Promise<Invocation> => {
  aws.requests.length = 0;
  const written: string[] = [];
  const capture = (chunk: unknown) => {
    written.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
    return true;
  };
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation(capture),
    vi.spyOn(process.stderr, 'write').mockImplementation(capture),
    ...(['log', 'info', 'warn', 'error', 'debug'] as const).map((method) =>
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        capture(`${args.map(String).join(' ')}\n`);
      }),
    ),
  ];
  try {
    const result = await handler(event, context);
    return { result, failed: false, requests: [...aws.requests], logLines: linesOf(written) };
  } catch (error) {
    return { error, failed: true, requests: [...aws.requests], logLines: linesOf(written) };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
};

const linesOf = (written: string[]) => written.join('').split('\n').filter(Boolean);
