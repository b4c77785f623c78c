import { z } from 'zod';
import { InvalidInputError } from '../../domain/errors';
import type { RotationEvent } from '../../domain/model';
import { describeIssues } from './issues';

export const KEY_ID_PATTERN = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const KEY_ARN_PATTERN =
  /^arn:aws(?:-cn|-us-gov|-iso|-iso-[a-z])?:kms:([a-z0-9-]{1,32}):(\d{12}):key\/([a-z0-9-]{1,64})$/;
const MATERIAL_ID = z.string().regex(/^[a-f0-9]{64}$/, 'must be 64 lowercase hex characters');

/**
 * `KMS CMK Rotation` as EventBridge delivers it: the minimal shape (`key-id` only) and the
 * 2025 shape (`rotation-type`, `key-origin`, material ids) (kms-reference.md §1.1).
 * Unknown detail fields are tolerated; every field we read is bounded.
 */
export const KmsRotationEventSchema = z
  .object({
    version: z.string().max(16),
    id: z.string().min(1).max(128),
    'detail-type': z.literal('KMS CMK Rotation', { error: 'must be "KMS CMK Rotation"' }),
    source: z.literal('aws.kms', { error: 'must be "aws.kms"' }),
    account: z.string().regex(/^\d{12}$/, 'must be a 12-digit account id'),
    time: z.iso.datetime({ offset: true, error: 'must be an ISO-8601 date-time' }),
    region: z.string().regex(/^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/, 'must be a Region name'),
    resources: z.array(z.string().max(2048)).length(1, 'must hold exactly the rotated key ARN'),
    detail: z.looseObject({
      'key-id': z.string().regex(KEY_ID_PATTERN, 'must be a KMS key id'),
      'rotation-type': z.enum(['AUTOMATIC', 'ON_DEMAND']).optional(),
      'key-origin': z.string().max(32).optional(),
      'previous-key-material-id': MATERIAL_ID.optional(),
      'current-key-material-id': MATERIAL_ID.optional(),
    }),
  })
  .superRefine((event, context) => {
    const arn = KEY_ARN_PATTERN.exec(event.resources[0] ?? '');
    if (!arn) {
      context.addIssue({ code: 'custom', path: ['resources', 0], message: 'must be a KMS key ARN' });
      return;
    }
    const [, region, account, keyId] = arn;
    if (region !== event.region || account !== event.account || keyId !== event.detail['key-id']) {
      context.addIssue({
        code: 'custom',
        path: ['resources', 0],
        message: 'must name the same key, account and Region as the event',
      });
    }
  });

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
