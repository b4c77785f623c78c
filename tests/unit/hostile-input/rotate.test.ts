import fc from 'fast-check';
import { describe, it } from 'vitest';
import { ACCOUNT, REGION } from '../support/handler-loader';
import {
  applyMutation,
  assertProperty,
  attack,
  expectRefused,
  extraKeyMutations,
  type Field,
  failsNamingTheRead,
  fieldMutations,
  mutation,
  sample,
  TIMEOUT_MS,
  targetOf,
  UNKNOWN_FIELD_NAMES,
  wrongPayloads,
} from './hostile';

const SAMPLES = ['rotate-alias-swap.json', 'rotate-dry-run.json', 'rotate-on-demand.json', 'rotate-rollback.json'].map(
  sample,
);
const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const OTHER_ACCOUNT = '210987654321';
const arn = (resource: string, { partition = 'aws', region = REGION, account = ACCOUNT } = {}) =>
  `arn:${partition}:kms:${region}:${account}:${resource}`;

const FIELDS: Field[] = [
  { path: ['key'], kind: 'pattern', required: true, valid: 'alias/app/secure-key' },
  { path: ['key'], kind: 'pattern', required: true, valid: KEY_ID },
  { path: ['key'], kind: 'pattern', required: true, valid: 'mrk-1234abcd12ab34cd56ef1234567890ab' },
  { path: ['key'], kind: 'pattern', required: true, valid: arn(`key/${KEY_ID}`) },
  { path: ['key'], kind: 'pattern', required: true, valid: arn('alias/app/secure-key') },
  { path: ['strategy'], kind: 'enum', valid: 'alias-swap' },
  { path: ['dryRun'], kind: 'boolean' },
  { path: ['reason'], kind: 'string', max: 256 },
  { path: ['action'], kind: 'enum', valid: 'rollback' },
  { path: ['force'], kind: 'boolean' },
];

/** Contract item 3: AWS managed aliases are never the service's to rotate. */
const AWS_MANAGED = fc
  .constantFrom('alias/aws/ebs', 'alias/aws/s3', 'alias/aws/', arn('alias/aws/lambda'), arn('alias/aws/rds'))
  .map((key) => mutation(['key'], key, { set: key }));

/** Contract item 3: a key or alias ARN of another account, Region or partition than the function's. */
const FOREIGN = fc
  .constantFrom(
    arn(`key/${KEY_ID}`, { account: OTHER_ACCOUNT }),
    arn(`key/${KEY_ID}`, { region: 'eu-west-1' }),
    arn(`key/${KEY_ID}`, { partition: 'aws-cn' }),
    arn(`key/${KEY_ID}`, { partition: 'aws-us-gov', region: 'us-gov-west-1' }),
    arn('alias/app/secure-key', { account: OTHER_ACCOUNT }),
    arn('alias/app/secure-key', { region: 'ap-southeast-2' }),
    arn('alias/app/secure-key', { partition: 'aws-iso-b' }),
  )
  .map((key) => mutation(['key'], key, { set: key }));

const UNKNOWN_KEYS = fc.oneof(
  fc.uuid({ version: 4 }),
  fc.uuid({ version: 4 }).map((keyId) => arn(`key/${keyId}`)),
  fc.stringMatching(/^[a-z0-9_-]{1,40}$/).map((name) => `alias/app/${name}`),
  fc.stringMatching(/^[a-z0-9_-]{1,40}$/).map((name) => arn(`alias/app/${name}`)),
);

describe('rotate: generated hostile input', () => {
  const target = targetOf('rotate');
  const refused = (mutations: fc.Arbitrary<ReturnType<typeof mutation>>) =>
    fc.asyncProperty(fc.tuple(fc.constantFrom(...SAMPLES.keys()), mutations), async ([base, change]) => {
      const event = applyMutation(SAMPLES[base], change);
      await expectRefused(target, event, change);
    });

  it(
    'refuses every structurally invalid request with a bounded InvalidInputError naming the field, asking AWS nothing',
    async () => {
      target.aws.answers = 'fail';
      // No payload at all (null, "") is refused naming the missing key: tests/unit/adapters/rotate-request.test.ts.
      await assertProperty(
        refused(
          fc.oneof(
            fieldMutations(FIELDS),
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
      await assertProperty(refused(extraKeyMutations([[]], keys)), 100);
    },
    TIMEOUT_MS,
  );

  it.each([
    ['an AWS managed alias', AWS_MANAGED],
    ['a key or alias ARN of another account, Region or partition', FOREIGN],
  ])(
    'refuses a key that is %s with InvalidInputError naming key, asking AWS nothing',
    async (_name, mutations) => {
      target.aws.answers = 'fail';
      await assertProperty(refused(mutations), 50);
    },
    TIMEOUT_MS,
  );

  it(
    'fails loudly naming the AWS read that found nothing, never as success, when a valid request names a key or alias in scope that does not exist',
    async () => {
      target.aws.answers = 'unknown-key';
      await assertProperty(
        fc.asyncProperty(fc.tuple(fc.constantFrom(...SAMPLES.keys()), UNKNOWN_KEYS), async ([base, key]) => {
          const invocation = await attack(target, { ...SAMPLES[base], key });
          failsNamingTheRead(invocation);
        }),
        50,
      );
    },
    TIMEOUT_MS,
  );
});
