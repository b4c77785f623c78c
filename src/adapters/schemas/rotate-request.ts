import * as z from 'zod/mini';
import { InvalidInputError } from '../../domain/errors';
import type { RotateRequest } from '../../domain/rotate-key';
import { describeIssues, matching, noOptions } from './zod';

const KEY_REFERENCE =
  /^(?:alias\/[a-zA-Z0-9/_-]{1,250}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key\/[a-z0-9-]{1,64}|alias\/[a-zA-Z0-9/_-]{1,250}))$/;

/** The `rotate` payload (docs/architecture.md#payloads). Unknown fields are refused: a typo must not silently mean "not a dry run". */
export const RotateRequestSchema = z.strictObject({
  key: matching(KEY_REFERENCE, 'must be an alias name (alias/...), a key id or a key or alias ARN'),
  strategy: z._default(z.enum(['auto', 'on-demand', 'alias-swap']), 'auto'),
  dryRun: z._default(z.boolean(), false),
  reason: z.optional(z.string().check(z.maxLength(256))),
  action: z._default(z.enum(['rotate', 'rollback']), 'rotate'),
  force: z.optional(z.boolean()),
});

export const parseRotateRequest = (payload: unknown): RotateRequest => {
  // No payload at all: say what is missing rather than "expected object, received string".
  const parsed = RotateRequestSchema.safeParse(noOptions(payload) ? {} : payload);
  if (!parsed.success) {
    throw new InvalidInputError(
      `Invalid rotate request: ${describeIssues(parsed.error.issues)}. Expected {"key": "alias/...", "strategy"?: "auto"|"on-demand"|"alias-swap", "dryRun"?: true, "reason"?: "...", "action"?: "rotate"|"rollback", "force"?: true}`,
    );
  }
  return parsed.data;
};
