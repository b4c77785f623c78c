import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { contextOf, type Handler, invoke, loadHandler } from '../support/handler-loader';
import { type RecordingAws, startRecordingAws } from '../support/recording-aws';
import {
  applyMutation,
  assertProperty,
  expectNoProblems,
  extraKeyMutations,
  type Mutation,
  refusalProblems,
  TIMEOUT_MS,
  wrongPayloads,
} from './hostile';

/** selfTest takes no payload: nothing, null, "" or {}. */
const NO_PAYLOAD = (value: unknown) => value === null || value === '';

describe('selfTest: generated hostile input', () => {
  let aws: RecordingAws;
  let handler: Handler;
  const context = contextOf('selfTest');
  const refused = (mutations: fc.Arbitrary<Mutation>) =>
    fc.asyncProperty(mutations, async (change) => {
      const payload = applyMutation({}, change);
      expectNoProblems(refusalProblems(await invoke(handler, payload, context, aws), change));
    });

  beforeAll(async () => {
    aws = await startRecordingAws();
    handler = await loadHandler('selfTest', aws);
  });

  afterAll(async () => {
    await aws.close();
  });

  it(
    'refuses every payload other than none or {} with a bounded InvalidInputError, asking AWS nothing',
    async () => {
      aws.answers = 'fail';
      await assertProperty(refused(wrongPayloads(NO_PAYLOAD)), 100);
    },
    TIMEOUT_MS,
  );

  it(
    'refuses {} with any field added, listing at most 64 characters of its name, asking AWS nothing',
    async () => {
      aws.answers = 'fail';
      await assertProperty(refused(extraKeyMutations([[]])), 100);
    },
    TIMEOUT_MS,
  );
});
