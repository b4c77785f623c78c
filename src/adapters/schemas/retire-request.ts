import * as z from 'zod/mini';
import { InvalidInputError } from '../../domain/errors';
import { CRYPTOGRAPHIC_OPERATIONS } from '../../domain/kms-operations';
import type { RetireRequest, UseAttempt } from '../../domain/retire-predecessors';
import { KEY_ID_PATTERN, KMS_EVENT_ENVELOPE } from './rotation-event';
import { describeIssues, matching, noOptions, text } from './zod';

/** The `retire` payload by hand, `{ "scheduled": true }` from the schedule (docs/retire.md). Unknown fields refused. */
const RetirePayload = z.strictObject({
  dryRun: z.optional(z.boolean()),
  keyId: z.optional(matching(KEY_ID_PATTERN, 'must be a KMS key id (not an alias: an aliased key is never retired)')),
  scheduled: z.optional(z.literal(true)),
});

/** KMS's answers to a use of a disabled key, or of one pending deletion (docs/kms-facts.md#retiring-a-key). */
export const USE_REFUSED_ERRORS = ['DisabledException', 'KMSInvalidStateException'] as const;

/**
 * A cryptographic call KMS refused on a disabled or pending-deletion key, as CloudTrail records it
 * and EventBridge delivers it (read-only management events: the rule's state
 * `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`). Read fields bounded, others tolerated.
 */
const UseAttemptEvent = z.object({
  ...KMS_EVENT_ENVELOPE,
  'detail-type': z.literal('AWS API Call via CloudTrail'),
  detail: z.looseObject({
    eventSource: z.literal('kms.amazonaws.com', { error: 'must be "kms.amazonaws.com"' }),
    eventName: z.enum(CRYPTOGRAPHIC_OPERATIONS, { error: 'must be a KMS cryptographic operation' }),
    eventTime: z.iso.datetime({ offset: true }),
    eventID: z.optional(text(128)),
    errorCode: z.enum(USE_REFUSED_ERRORS, { error: `must be one of ${USE_REFUSED_ERRORS.join(', ')}` }),
    userIdentity: z.optional(z.looseObject({ arn: z.optional(text(2048)) })),
    resources: z
      .array(z.looseObject({ ARN: z.optional(text(2048)) }))
      .check(z.minLength(1, 'must name the key'), z.maxLength(20)),
  }),
});

const KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):key\/([a-z0-9-]{1,64})$/;

export type RetireInput =
  | { kind: 'request'; request: RetireRequest }
  | { kind: 'use-attempt'; attempt: UseAttempt; account: string; region: string };

const isCloudTrailRecord = (payload: unknown): boolean =>
  typeof payload === 'object' && payload !== null && (payload as Record<string, unknown>).source === 'aws.kms';

/** The key a refused use names: the one key ARN of the record's resources, in the event's account and Region. */
const keyOfRecord = (event: z.infer<typeof UseAttemptEvent>): string => {
  const keys = event.detail.resources.flatMap(({ ARN }) => {
    const match = ARN ? KEY_ARN.exec(ARN) : null;
    return match && match[1] === event.region && match[2] === event.account ? [match[3] as string] : [];
  });
  const [keyId] = keys;
  if (keys.length !== 1 || !keyId || !KEY_ID_PATTERN.test(keyId)) {
    throw new InvalidInputError(
      `Invalid retire event ${event.id}: detail.resources must name exactly one key ARN of the event's account and Region`,
    );
  }
  return keyId;
};

export const parseRetireInput = (payload: unknown): RetireInput => {
  if (isCloudTrailRecord(payload)) {
    const parsed = UseAttemptEvent.safeParse(payload);
    if (!parsed.success) {
      throw new InvalidInputError(`Invalid retire event: ${describeIssues(parsed.error.issues)}`);
    }
    const event = parsed.data;
    return {
      kind: 'use-attempt',
      account: event.account,
      region: event.region,
      attempt: {
        eventId: event.detail.eventID ?? event.id,
        keyId: keyOfRecord(event),
        eventName: event.detail.eventName,
        errorCode: event.detail.errorCode,
        at: new Date(event.detail.eventTime),
        actor: event.detail.userIdentity?.arn,
      },
    };
  }
  const parsed = RetirePayload.safeParse(noOptions(payload) ? {} : payload);
  if (!parsed.success) {
    throw new InvalidInputError(
      `Invalid retire request: ${describeIssues(parsed.error.issues)}. Expected {"dryRun"?: true|false, "keyId"?: "<key id>"}`,
    );
  }
  return { kind: 'request', request: parsed.data };
};
