import * as z from 'zod/mini';
import { InvalidInputError } from '../../domain/errors';
import type { KeyActivity } from '../../domain/watch-key-activity';
import { KEY_ID_PATTERN, KMS_EVENT_ENVELOPE } from './rotation-event';
import { describeIssues, matching, text } from './zod';

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
const optionalText = (max: number) => z.optional(text(max));

const Envelope = { ...KMS_EVENT_ENVELOPE, resources: z.array(text(2048)).check(z.maxLength(20)) };

/** `AWS API Call via CloudTrail` for kms.amazonaws.com (kms-reference.md §2). Unknown fields tolerated, read ones bounded. */
const CloudTrailCall = z.object({
  ...Envelope,
  'detail-type': z.literal('AWS API Call via CloudTrail'),
  detail: z.looseObject({
    eventSource: z.literal('kms.amazonaws.com', { error: 'must be "kms.amazonaws.com"' }),
    eventName: z.enum(WATCHED_CALLS, { error: `must be one of ${WATCHED_CALLS.join(', ')}` }),
    eventTime: z.iso.datetime({ offset: true }),
    eventID: optionalText(128),
    userIdentity: z.optional(
      z.looseObject({
        type: optionalText(64),
        arn: optionalText(2048),
        invokedBy: optionalText(256),
        sessionContext: z.optional(
          z.looseObject({ sessionIssuer: z.optional(z.looseObject({ arn: optionalText(2048) })) }),
        ),
      }),
    ),
    sourceIPAddress: optionalText(256),
    userAgent: optionalText(1024),
    errorCode: optionalText(256),
    errorMessage: optionalText(4096),
    requestParameters: z.nullish(
      z.looseObject({ keyId: optionalText(2048), aliasName: optionalText(256), targetKeyId: optionalText(2048) }),
    ),
    responseElements: z.nullish(z.looseObject({ keyId: optionalText(2048) })),
    resources: z.optional(z.array(z.looseObject({ ARN: optionalText(2048) })).check(z.maxLength(20))),
  }),
});

/** `KMS CMK Deletion` and `KMS Imported Key Material Expiration` (kms-reference.md §1.2, §1.3). */
const ServiceEvent = z.object({
  ...Envelope,
  'detail-type': z.enum(['KMS CMK Deletion', 'KMS Imported Key Material Expiration']),
  detail: z.looseObject({ 'key-id': matching(KEY_ID_PATTERN, 'must be a KMS key id') }),
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
