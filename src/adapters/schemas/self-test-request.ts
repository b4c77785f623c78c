import * as z from 'zod/mini';
import { InvalidInputError } from '../../domain/errors';
import { describeIssues, noOptions } from './zod';

/** `selfTest` takes no payload: nothing, or `{}`. Anything else is refused rather than silently ignored. */
const SelfTestRequestSchema = z.strictObject({});

export const parseSelfTestRequest = (payload: unknown): void => {
  const parsed = SelfTestRequestSchema.safeParse(noOptions(payload) ? {} : payload);
  if (!parsed.success) {
    throw new InvalidInputError(
      `Invalid selfTest request: ${describeIssues(parsed.error.issues)}. selfTest takes no payload (or {})`,
    );
  }
};
