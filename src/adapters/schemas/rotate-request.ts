import { z } from 'zod';
import { InvalidInputError } from '../../domain/errors';
import type { RotateRequest } from '../../domain/rotate-key';
import { describeIssues } from './issues';

const KEY_REFERENCE =
  /^(?:alias\/[a-zA-Z0-9/_-]{1,250}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key\/[a-z0-9-]{1,64}|alias\/[a-zA-Z0-9/_-]{1,250}))$/;

/** The `rotate` payload of DESIGN.md. Unknown fields are refused: a typo must not silently mean "not a dry run". */
export const RotateRequestSchema = z.strictObject({
  key: z.string().regex(KEY_REFERENCE, 'must be an alias name (alias/...), a key id or a key or alias ARN'),
  strategy: z.enum(['auto', 'on-demand', 'alias-swap']).default('auto'),
  dryRun: z.boolean().default(false),
  reason: z.string().max(256).optional(),
  action: z.enum(['rotate', 'rollback']).default('rotate'),
});

export const parseRotateRequest = (payload: unknown): RotateRequest => {
  const parsed = RotateRequestSchema.safeParse(payload);
  if (!parsed.success) {
    throw new InvalidInputError(
      `Invalid rotate request: ${describeIssues(parsed.error.issues)}. Expected {"key": "alias/...", "strategy"?: "auto"|"on-demand"|"alias-swap", "dryRun"?: true, "reason"?: "...", "action"?: "rotate"|"rollback"}`,
    );
  }
  return parsed.data;
};
