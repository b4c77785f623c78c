import fc from 'fast-check';
import { afterAll, beforeAll, describe, it, vi } from 'vitest';
import { contextOf, type Handler, invoke, loadHandler } from '../support/handler-loader';
import { type RecordingAws, startRecordingAws } from '../support/recording-aws';
import {
  applyMutation,
  assertProperty,
  expectNoProblems,
  extraKeyMutations,
  LONG_EXTRA_KEYS,
  type Mutation,
  refusalProblems,
  SHORT_EXTRA_KEYS,
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
    vi.unstubAllEnvs();
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

  it.each([
    ['a name of at most 64 characters, named whole', SHORT_EXTRA_KEYS],
    ['a name of 65 characters to 1 MiB, of which at most 64 are listed', LONG_EXTRA_KEYS],
  ])(
    'refuses an unknown field with %s, asking AWS nothing',
    async (_name, keys) => {
      aws.answers = 'fail';
      await assertProperty(refused(extraKeyMutations([[]], keys)), 100);
    },
    TIMEOUT_MS,
  );
});
