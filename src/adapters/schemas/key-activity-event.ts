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

/** `AWS API Call via CloudTrail` for kms.amazonaws.com (docs/kms-facts.md#cloudtrail-records). Unknown fields tolerated, read ones bounded. */
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

/** `KMS CMK Deletion` and `KMS Imported Key Material Expiration` (docs/kms-facts.md#events). */
const ServiceEvent = z.object({
  ...Envelope,
  'detail-type': z.enum(['KMS CMK Deletion', 'KMS Imported Key Material Expiration']),
  detail: z.looseObject({ 'key-id': matching(KEY_ID_PATTERN, 'must be a KMS key id') }),
});

const KeyActivityEvent = z.discriminatedUnion('detail-type', [CloudTrailCall, ServiceEvent], {
  error: 'must be "AWS API Call via CloudTrail", "KMS CMK Deletion" or "KMS Imported Key Material Expiration"',
});

/** What a field of a CloudTrail record may hold when the call succeeded (KMS accepted it). */
type RefKind = 'key' | 'alias';

/** `key`: a key id or key ARN; `alias`: an alias name or alias ARN; undefined: neither. */
const refKindOf = (value: string): RefKind | undefined => {
  if (KEY_ID_PATTERN.test(value) || KEY_ARN.test(value)) return 'key';
  if (ALIAS_NAME.test(value) || ALIAS_ARN.test(value)) return 'alias';
  return undefined;
};

const refuse = (field: string, message: string): never => {
  throw new InvalidInputError(`Not a watched KMS event: ${field} ${message}`);
};

const KIND_TEXT: Record<RefKind, string> = { key: 'a key id or key ARN', alias: 'an alias name' };

/**
 * The keys and aliases a successful call names, each checked against what KMS accepts in that
 * field: KMS accepted the call, so anything else is a forged or corrupted record, refused
 * rather than skipped (a record whose references cannot be read must never read "no drift").
 */
const referencesOf = (
  fields: ReadonlyArray<readonly [field: string, value: string | undefined, accepts: readonly RefKind[]]>,
  strict: boolean,
): Pick<KeyActivity, 'keyRefs' | 'aliasNames' | 'arns'> => {
  const keyRefs = new Set<string>();
  const aliasNames = new Set<string>();
  const arns: KeyActivity['arns'] = [];
  for (const [field, value, accepts] of fields) {
    if (value === undefined) continue;
    const kind = refKindOf(value);
    if (!kind || !accepts.includes(kind)) {
      if (strict) refuse(field, `must be ${accepts.map((item) => KIND_TEXT[item]).join(' or ')}`);
      continue;
    }
    if (value.startsWith('arn:')) arns.push({ field, arn: value });
    if (kind === 'key') keyRefs.add(value);
    else aliasNames.add(ALIAS_ARN.exec(value)?.[1] ?? value);
  }
  if (strict && keyRefs.size === 0 && aliasNames.size === 0) {
    refuse('detail.requestParameters', 'names no key and no alias: nothing in this record can be checked');
  }
  return { keyRefs: [...keyRefs], aliasNames: [...aliasNames], arns };
};

/** A KMS service event names its key twice, in `detail` and in `resources`: both must be the same key, here. */
const requireSameKey = (event: { account: string; region: string; resources: string[] }, keyId: string): string => {
  const expected = `the ARN of detail.key-id in the event's account and Region (${event.account}, ${event.region})`;
  const [arn] = event.resources;
  if (event.resources.length !== 1 || arn === undefined) refuse('resources', `must hold exactly one ARN: ${expected}`);
  const pattern = new RegExp(`^arn:aws[a-z-]*:kms:${event.region}:${event.account}:key/${keyId}$`);
  if (!pattern.test(arn as string)) refuse('resources.0', `must be ${expected}`);
  return arn as string;
};

/** Parses an untrusted event into a `KeyActivity`, or throws `InvalidInputError` saying what is wrong. */
export const parseKeyActivityEvent = (event: unknown): KeyActivity => {
  const parsed = KeyActivityEvent.safeParse(event);
  if (!parsed.success) throw new InvalidInputError(`Not a watched KMS event: ${describeIssues(parsed.error.issues)}`);
  const data = parsed.data;
  const base = { eventId: data.id, account: data.account, region: data.region };
  if (data['detail-type'] !== 'AWS API Call via CloudTrail') {
    const keyId = data.detail['key-id'];
    const arn = requireSameKey(data, keyId);
    return {
      ...base,
      name: data['detail-type'],
      time: new Date(data.time),
      keyRefs: [keyId],
      aliasNames: [],
      arns: [{ field: 'resources.0', arn }],
    };
  }
  const detail = data.detail;
  const request = detail.requestParameters ?? {};
  const references = referencesOf(
    [
      ['detail.requestParameters.keyId', request.keyId, ['key']],
      ['detail.requestParameters.targetKeyId', request.targetKeyId, ['key']],
      ['detail.requestParameters.aliasName', request.aliasName, ['alias']],
      ['detail.responseElements.keyId', detail.responseElements?.keyId, ['key']],
      ...(detail.resources ?? []).map(
        (resource, index) => [`detail.resources.${index}.ARN`, resource.ARN, ['key', 'alias']] as const,
      ),
    ],
    // A failed call changed nothing and is only logged: KMS refused what it named, as may we.
    detail.errorCode === undefined,
  );
  const identity = detail.userIdentity;
  return {
    ...base,
    callId: detail.eventID,
    name: detail.eventName,
    time: new Date(detail.eventTime),
    ...references,
    actor: {
      type: identity?.type,
      arn: identity?.arn,
      roleArn: identity?.sessionContext?.sessionIssuer?.arn,
      invokedBy: identity?.invokedBy,
      sourceIp: detail.sourceIPAddress,
      userAgent: detail.userAgent,
    },
    errorCode: detail.errorCode,
    errorMessage: detail.errorMessage,
  };
};
