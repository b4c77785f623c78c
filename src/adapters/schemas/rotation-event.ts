import * as z from 'zod/mini';
import { InvalidInputError } from '../../domain/errors';
import type { RotationEvent } from '../../domain/model';
import { describeIssues, matching, text } from './zod';

export const KEY_ID_PATTERN = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const KEY_ARN_PATTERN =
  /^arn:aws(?:-cn|-us-gov|-iso|-iso-[a-z])?:kms:([a-z0-9-]{1,32}):(\d{12}):key\/([a-z0-9-]{1,64})$/;
const MATERIAL_ID = matching(/^[a-f0-9]{64}$/, 'must be 64 lowercase hex characters');

/** The EventBridge envelope fields every KMS event carries, each bounded. */
export const KMS_EVENT_ENVELOPE = {
  version: text(16),
  id: z.string().check(z.minLength(1), z.maxLength(128)),
  source: z.literal('aws.kms', { error: 'must be "aws.kms"' }),
  account: matching(/^\d{12}$/, 'must be a 12-digit account id'),
  time: z.iso.datetime({ offset: true, error: 'must be an ISO-8601 date-time' }),
  region: matching(/^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/, 'must be a Region name'),
};

/**
 * `KMS CMK Rotation` as EventBridge delivers it: the minimal shape (`key-id` only) and the
 * 2025 shape (`rotation-type`, `key-origin`, material ids) (docs/kms-facts.md#kms-cmk-rotation).
 * Unknown detail fields are tolerated; every field we read is bounded.
 */
export const KmsRotationEventSchema = z
  .object({
    ...KMS_EVENT_ENVELOPE,
    'detail-type': z.literal('KMS CMK Rotation', { error: 'must be "KMS CMK Rotation"' }),
    resources: z.array(text(2048)).check(z.length(1, 'must hold exactly the rotated key ARN')),
    detail: z.looseObject({
      'key-id': matching(KEY_ID_PATTERN, 'must be a KMS key id'),
      'rotation-type': z.optional(z.enum(['AUTOMATIC', 'ON_DEMAND'])),
      'key-origin': z.optional(text(32)),
      'previous-key-material-id': z.optional(MATERIAL_ID),
      'current-key-material-id': z.optional(MATERIAL_ID),
    }),
  })
  .check(
    z.superRefine((event, context) => {
      const arn = KEY_ARN_PATTERN.exec(event.resources[0] ?? '');
      if (!arn) {
        context.addIssue({
          code: 'custom',
          path: ['resources', 0],
          message: 'must be a KMS key ARN',
          input: event.resources[0],
        });
        return;
      }
      const [, region, account, keyId] = arn;
      if (region !== event.region || account !== event.account || keyId !== event.detail['key-id']) {
        context.addIssue({
          code: 'custom',
          path: ['resources', 0],
          message: 'must name the same key, account and Region as the event',
          input: event.resources[0],
        });
      }
    }),
  );

/** Parses an untrusted event into a `RotationEvent`, or throws `InvalidInputError` saying what is wrong. */
export const parseRotationEvent = (event: unknown): RotationEvent => {
  const parsed = KmsRotationEventSchema.safeParse(event);
  if (!parsed.success) {
    throw new InvalidInputError(`Not a valid KMS CMK Rotation event: ${describeIssues(parsed.error.issues)}`);
  }
  const { data } = parsed;
  return {
    eventId: data.id,
    time: new Date(data.time),
    account: data.account,
    region: data.region,
    keyId: data.detail['key-id'],
    keyArn: data.resources[0] as string,
    rotationType: data.detail['rotation-type'],
    keyOrigin: data.detail['key-origin'],
    previousKeyMaterialId: data.detail['previous-key-material-id'],
    currentKeyMaterialId: data.detail['current-key-material-id'],
  };
};
