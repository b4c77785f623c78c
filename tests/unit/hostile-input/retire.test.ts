import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyMutation,
  assertProperty,
  attack,
  expectRefused,
  extraKeyMutations,
  type Field,
  fieldMutations,
  type Mutation,
  mutation,
  TIMEOUT_MS,
  targetOf,
  UNKNOWN_FIELD_NAMES,
  wrongPayloads,
} from './hostile';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = `arn:aws:kms:us-east-1:123456789012:key/${KEY_ID}`;

const SAMPLES: Record<string, object> = {
  'by hand': { dryRun: true, keyId: KEY_ID },
  scheduled: { scheduled: true },
  empty: {},
};
const FIELDS: Field[] = [
  { path: ['dryRun'], kind: 'boolean' },
  { path: ['keyId'], kind: 'pattern', valid: KEY_ID },
  { path: ['scheduled'], kind: 'true' },
];

/** The CloudTrail record of a use KMS refused, as EventBridge delivers it to `retire`. */
const RECORD = {
  version: '0',
  id: 'evt-1',
  'detail-type': 'AWS API Call via CloudTrail',
  source: 'aws.kms',
  account: '123456789012',
  time: '2026-02-01T10:00:00Z',
  region: 'us-east-1',
  resources: [],
  detail: {
    eventSource: 'kms.amazonaws.com',
    eventName: 'Decrypt',
    eventTime: '2026-02-01T09:59:58Z',
    eventID: 'ct-1',
    errorCode: 'DisabledException',
    resources: [{ ARN }],
  },
};
const RECORD_FIELDS: Field[] = [
  { path: ['id'], kind: 'string', required: true, max: 128 },
  { path: ['account'], kind: 'pattern', required: true, valid: '123456789012' },
  { path: ['region'], kind: 'pattern', required: true, valid: 'us-east-1' },
  { path: ['detail'], kind: 'object', required: true },
  { path: ['detail', 'eventName'], kind: 'enum', required: true, valid: 'Decrypt' },
  { path: ['detail', 'eventTime'], kind: 'pattern', required: true, valid: '2026-02-01T09:59:58Z' },
  { path: ['detail', 'errorCode'], kind: 'enum', required: true, valid: 'DisabledException' },
  { path: ['detail', 'resources'], kind: 'array', required: true },
];

describe('retire: generated hostile input', () => {
  const target = targetOf('retire');
  const refused = (bases: string[], mutations: fc.Arbitrary<Mutation>) =>
    fc.asyncProperty(fc.tuple(fc.constantFrom(...bases), mutations), async ([base, change]) => {
      await expectRefused(target, applyMutation(SAMPLES[base], change), change);
    });

  it(
    'refuses every structurally invalid payload with a bounded InvalidInputError naming the field, asking AWS nothing',
    async () => {
      target.aws.answers = 'fail';
      await assertProperty(
        refused(
          ['by hand', 'scheduled', 'empty'],
          fc.oneof(
            fieldMutations(FIELDS),
            fc.constantFrom(
              mutation(['keyId'], 'an alias', { set: 'alias/app/secure-key' }),
              mutation(['keyId'], 'a key ARN', { set: ARN }),
              mutation(['scheduled'], 'scheduled false', { set: false }),
            ),
            wrongPayloads((value) => value === null || value === ''),
          ),
        ),
      );
    },
    TIMEOUT_MS,
  );

  it.each(UNKNOWN_FIELD_NAMES)(
    'refuses an unknown field with %s, asking AWS nothing',
    async (_name, keys) => {
      target.aws.answers = 'fail';
      await assertProperty(refused(['by hand', 'empty'], extraKeyMutations([[]], keys)), 100);
    },
    TIMEOUT_MS,
  );

  it(
    'refuses every structurally invalid record of a refused use, asking AWS nothing',
    async () => {
      target.aws.answers = 'fail';
      await assertProperty(
        fc.asyncProperty(fieldMutations(RECORD_FIELDS), async (change) => {
          await expectRefused(target, applyMutation(RECORD, change), change);
        }),
      );
    },
    TIMEOUT_MS,
  );

  it('refuses a record of another account or Region, and "dryRun": false outside enforce mode, asking AWS nothing', async () => {
    target.aws.answers = 'fail';
    for (const [event, field] of [
      [
        {
          ...RECORD,
          account: '999999999999',
          detail: { ...RECORD.detail, resources: [{ ARN: ARN.replace('123456789012', '999999999999') }] },
        },
        /999999999999/,
      ],
      [{ dryRun: false }, /retireMode=enforce/],
    ] as const) {
      const invocation = await attack(target, event);
      expect(invocation.failed).toBe(true);
      expect((invocation.error as Error).name).toBe('InvalidInputError');
      expect((invocation.error as Error).message).toMatch(field);
      expect(invocation.requests).toEqual([]);
    }
  });
});
