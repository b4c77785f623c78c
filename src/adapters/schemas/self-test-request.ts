import * as z from 'zod/mini';
import { InvalidInputError } from '../../domain/errors';
import { describeIssues } from './zod';

/** `selfTest` takes no payload: nothing, or `{}`. Anything else is refused rather than silently ignored. */
const SelfTestRequestSchema = z.union([z.undefined(), z.null(), z.literal(''), z.strictObject({})]);

export const parseSelfTestRequest = (payload: unknown): void => {
  const parsed = SelfTestRequestSchema.safeParse(payload);
  if (!parsed.success) {
    throw new InvalidInputError(
      `Invalid selfTest request: ${describeIssues(parsed.error.issues)}. selfTest takes no payload (or {})`,
    );
  }
};
