import { z } from 'zod';
import { InvalidInputError } from '../../domain/errors';
import type { KeyActivity } from '../../domain/watch-key-activity';
import { describeIssues } from './issues';
import { KEY_ID_PATTERN } from './rotation-event';

/** The KMS management calls the drift watch listens to (serverless.yml lists the same). */
export const WATCHED_CALLS = [
  'DisableKeyRotation',
  'EnableKeyRotation',
  'CreateAlias',
  'UpdateAlias',
  'DeleteAlias',
  'ScheduleKeyDeletion',
  'CancelKeyDeletion',
  'DisableKey',
  'EnableKey',
  'PutKeyPolicy',
  'RotateKeyOnDemand',
  'ImportKeyMaterial',
  'DeleteImportedKeyMaterial',
] as const;

const KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[a-z0-9-]{1,64}$/;
const ALIAS_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(alias\/[a-zA-Z0-9/_-]{1,250})$/;
const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;
const text = (max: number) => z.string().max(max);

const Envelope = {
  version: text(16),
  id: z.string().min(1).max(128),
  source: z.literal('aws.kms', { error: 'must be "aws.kms"' }),
  account: z.string().regex(/^\d{12}$/, 'must be a 12-digit account id'),
  time: z.iso.datetime({ offset: true, error: 'must be an ISO-8601 date-time' }),
  region: z.string().regex(/^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/, 'must be a Region name'),
  resources: z.array(text(2048)).max(20),
};

/** `AWS API Call via CloudTrail` for kms.amazonaws.com (kms-reference.md §2). Unknown fields tolerated, read ones bounded. */
const CloudTrailCall = z.object({
  ...Envelope,
  'detail-type': z.literal('AWS API Call via CloudTrail'),
  detail: z.looseObject({
    eventSource: z.literal('kms.amazonaws.com', { error: 'must be "kms.amazonaws.com"' }),
    eventName: z.enum(WATCHED_CALLS, { error: `must be one of ${WATCHED_CALLS.join(', ')}` }),
    eventTime: z.iso.datetime({ offset: true }),
    eventID: text(128).optional(),
    userIdentity: z
      .looseObject({
        type: text(64).optional(),
        arn: text(2048).optional(),
        invokedBy: text(256).optional(),
        sessionContext: z
          .looseObject({ sessionIssuer: z.looseObject({ arn: text(2048).optional() }).optional() })
          .optional(),
      })
      .optional(),
    sourceIPAddress: text(256).optional(),
    userAgent: text(1024).optional(),
    errorCode: text(256).optional(),
    errorMessage: text(4096).optional(),
    requestParameters: z
      .looseObject({
        keyId: text(2048).optional(),
        aliasName: text(256).optional(),
        targetKeyId: text(2048).optional(),
      })
      .nullish(),
    responseElements: z.looseObject({ keyId: text(2048).optional() }).nullish(),
    resources: z
      .array(z.looseObject({ ARN: text(2048).optional() }))
      .max(20)
      .optional(),
  }),
});

/** `KMS CMK Deletion` and `KMS Imported Key Material Expiration` (kms-reference.md §1.2, §1.3). */
const ServiceEvent = z.object({
  ...Envelope,
  'detail-type': z.enum(['KMS CMK Deletion', 'KMS Imported Key Material Expiration']),
  detail: z.looseObject({ 'key-id': z.string().regex(KEY_ID_PATTERN, 'must be a KMS key id') }),
});

const KeyActivityEvent = z.discriminatedUnion('detail-type', [CloudTrailCall, ServiceEvent], {
  error: 'must be "AWS API Call via CloudTrail", "KMS CMK Deletion" or "KMS Imported Key Material Expiration"',
});

const isKeyRef = (value: string | undefined): value is string =>
  value !== undefined && (KEY_ID_PATTERN.test(value) || KEY_ARN.test(value));

/** Parses an untrusted event into a `KeyActivity`, or throws `InvalidInputError` saying what is wrong. */
export const parseKeyActivityEvent = (event: unknown): KeyActivity => {
  const parsed = KeyActivityEvent.safeParse(event);
  if (!parsed.success) throw new InvalidInputError(`Not a watched KMS event: ${describeIssues(parsed.error.issues)}`);
  const data = parsed.data;
  const base = { eventId: data.id, account: data.account, region: data.region };
  if (data['detail-type'] !== 'AWS API Call via CloudTrail') {
    return {
      ...base,
      name: data['detail-type'],
      time: new Date(data.time),
      keyRefs: [data.detail['key-id']],
      aliasNames: [],
    };
  }
  const detail = data.detail;
  const request = detail.requestParameters ?? {};
  const arns = (detail.resources ?? [])
    .map((resource) => resource.ARN)
    .filter((arn): arn is string => arn !== undefined);
  const keyRefs = [request.keyId, request.targetKeyId, detail.responseElements?.keyId, ...arns].filter(isKeyRef);
  const aliasNames = [request.aliasName, ...arns.map((arn) => ALIAS_ARN.exec(arn)?.[1])].filter(
    (name): name is string => name !== undefined && ALIAS_NAME.test(name),
  );
  const identity = detail.userIdentity;
  return {
    ...base,
    callId: detail.eventID,
    name: detail.eventName,
    time: new Date(detail.eventTime),
    keyRefs: [...new Set(keyRefs)],
    aliasNames: [...new Set(aliasNames)],
    actor: {
      type: identity?.type,
      arn: identity?.arn ?? identity?.invokedBy,
      roleArn: identity?.sessionContext?.sessionIssuer?.arn,
      sourceIp: detail.sourceIPAddress,
      userAgent: detail.userAgent,
    },
    errorCode: detail.errorCode,
    errorMessage: detail.errorMessage,
  };
};
