import fc from 'fast-check';
import { describe, it } from 'vitest';
import {
  applyMutation,
  assertProperty,
  expectRefused,
  extraKeyMutations,
  type Mutation,
  TIMEOUT_MS,
  targetOf,
  UNKNOWN_FIELD_NAMES,
  wrongPayloads,
} from './hostile';

/** selfTest takes no payload: nothing, null, "" or {}. */
const NO_PAYLOAD = (value: unknown) => value === null || value === '';

describe('selfTest: generated hostile input', () => {
  const target = targetOf('selfTest');
  const refused = (mutations: fc.Arbitrary<Mutation>) =>
    fc.asyncProperty(mutations, async (change) => {
      const payload = applyMutation({}, change);
      await expectRefused(target, payload, change);
    });

  it(
    'refuses every payload other than none or {} with a bounded InvalidInputError, asking AWS nothing',
    async () => {
      target.aws.answers = 'fail';
      await assertProperty(refused(wrongPayloads(NO_PAYLOAD)), 100);
    },
    TIMEOUT_MS,
  );

  it.each(UNKNOWN_FIELD_NAMES)(
    'refuses an unknown field with %s, asking AWS nothing',
    async (_name, keys) => {
      target.aws.answers = 'fail';
      await assertProperty(refused(extraKeyMutations([[]], keys)), 100);
    },
    TIMEOUT_MS,
  );
});
