import fc from 'fast-check';
import { describe, it } from 'vitest';
import { ACCOUNT, REGION } from '../support/handler-loader';
import {
  applyMutation,
  assertProperty,
  attack,
  expectRefused,
  type Field,
  failsNamingTheRead,
  fieldMutations,
  mutation,
  sample,
  TIMEOUT_MS,
  targetOf,
  wrongPayloads,
} from './hostile';

const SAMPLES = ['rotation-on-demand.json', 'rotation-automatic.json', 'rotation-legacy-minimal.json'].map(sample);
const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${KEY_ID}`;
const MATERIAL = '96083e4fb6dbc41d77578a213a6b6669c044dd4c143e96755396d2bf11fd6068';

const FIELDS: Field[] = [
  { path: ['version'], kind: 'string', required: true, max: 16 },
  { path: ['id'], kind: 'string', required: true, max: 128 },
  { path: ['source'], kind: 'enum', required: true, valid: 'aws.kms' },
  { path: ['account'], kind: 'pattern', required: true, valid: ACCOUNT },
  { path: ['time'], kind: 'pattern', required: true, valid: '2026-11-20T03:11:54Z' },
  { path: ['region'], kind: 'pattern', required: true, valid: REGION },
  { path: ['detail-type'], kind: 'enum', required: true, valid: 'KMS CMK Rotation' },
  { path: ['resources'], kind: 'array', required: true },
  { path: ['resources', 0], kind: 'pattern', required: true, valid: KEY_ARN },
  { path: ['detail'], kind: 'object', required: true },
  { path: ['detail', 'key-id'], kind: 'pattern', required: true, valid: KEY_ID },
  { path: ['detail', 'rotation-type'], kind: 'enum', valid: 'ON_DEMAND' },
  { path: ['detail', 'key-origin'], kind: 'string', max: 32 },
  { path: ['detail', 'previous-key-material-id'], kind: 'pattern', valid: MATERIAL },
  { path: ['detail', 'current-key-material-id'], kind: 'pattern', valid: MATERIAL },
];

const OTHER_ACCOUNT = '210987654321';
const keyArn = ({ partition = 'aws', region = REGION, account = ACCOUNT, keyId = KEY_ID } = {}) =>
  `arn:${partition}:kms:${region}:${account}:key/${keyId}`;

/** A key ARN of another partition than the function's (`arn:aws:lambda:...`): contract item 2. */
const OTHER_PARTITION = fc.constantFrom(
  mutation(['resources', 0], 'key ARN in aws-cn', { set: keyArn({ partition: 'aws-cn' }) }),
  mutation(['resources', 0], 'key ARN in aws-us-gov', { set: keyArn({ partition: 'aws-us-gov' }) }),
  mutation(['resources', 0], 'key ARN in aws-iso-b', { set: keyArn({ partition: 'aws-iso-b' }) }),
);

/** `resources` that do not name the event's key in this account and Region, or an event for another. */
const MISMATCHED = fc.constantFrom(
  mutation(['resources', 0], 'key ARN of another account', { set: keyArn({ account: OTHER_ACCOUNT }) }),
  mutation(['resources', 0], 'key ARN in another Region', { set: keyArn({ region: 'eu-west-1' }) }),
  mutation(['resources', 0], 'ARN of another key', { set: keyArn({ keyId: '0987dcba-09fe-87dc-65ba-ab0987654321' }) }),
  mutation(['resources', 0], 'alias ARN', { set: `arn:aws:kms:${REGION}:${ACCOUNT}:alias/app/secure-key` }),
  mutation(['resources', 0], 'key ARN with a suffix', { set: `${KEY_ARN}/extra` }),
  mutation(['resources', 0], 'key id instead of ARN', { set: KEY_ID }),
  mutation(['resources'], 'no resources', { set: [] }),
  mutation(['resources'], 'the key ARN twice', { set: [KEY_ARN, KEY_ARN] }),
  mutation(['resources'], 'the key ARN and another', { set: [KEY_ARN, keyArn({ account: OTHER_ACCOUNT })] }),
  mutation(['account'], 'event account changed', { set: OTHER_ACCOUNT }, ['account', 'resources.0']),
  mutation(['region'], 'event Region changed', { set: 'eu-west-1' }, ['region', 'resources.0']),
  mutation(
    ['account'],
    'whole event in another account',
    {
      edit: (event) => {
        event.account = OTHER_ACCOUNT;
        event.resources = [keyArn({ account: OTHER_ACCOUNT })];
      },
    },
    ['account'],
  ),
  mutation(
    ['region'],
    'whole event in another Region',
    {
      edit: (event) => {
        event.region = 'eu-west-1';
        event.resources = [keyArn({ region: 'eu-west-1' })];
      },
    },
    ['region', 'eu-west-1'],
  ),
);

const KEY_IDS = fc.oneof(fc.uuid({ version: 4 }), fc.stringMatching(/^mrk-[0-9a-f]{32}$/));

describe('onRotation: generated hostile input', () => {
  const target = targetOf('onRotation');

  it(
    'refuses every structurally invalid event with a bounded InvalidInputError naming the field, asking AWS nothing',
    async () => {
      target.aws.answers = 'fail';
      await assertProperty(
        fc.asyncProperty(
          fc.tuple(fc.constantFrom(...SAMPLES.keys()), fc.oneof(fieldMutations(FIELDS), wrongPayloads())),
          async ([base, change]) => {
            const event = applyMutation(SAMPLES[base], change);
            await expectRefused(target, event, change);
          },
        ),
      );
    },
    TIMEOUT_MS,
  );

  it.each([
    ['another account, Region or key than the event and the function', MISMATCHED],
    ['another partition than the function', OTHER_PARTITION],
  ])(
    'refuses resources naming a key ARN of %s, naming the field, asking AWS nothing',
    async (_name, mutations) => {
      target.aws.answers = 'fail';
      await assertProperty(
        fc.asyncProperty(fc.tuple(fc.constantFrom(...SAMPLES.keys()), mutations), async ([base, change]) => {
          const event = applyMutation(SAMPLES[base], change);
          await expectRefused(target, event, change);
        }),
        50,
      );
    },
    TIMEOUT_MS,
  );

  it(
    'fails loudly naming the AWS read that found nothing, never as success, when a valid event names a key that does not exist',
    async () => {
      target.aws.answers = 'unknown-key';
      await assertProperty(
        fc.asyncProperty(fc.tuple(fc.constantFrom(...SAMPLES.keys()), KEY_IDS), async ([base, keyId]) => {
          const event = structuredClone(SAMPLES[base]) as Record<string, unknown>;
          event.detail = { ...(event.detail as object), 'key-id': keyId };
          event.resources = [keyArn({ keyId })];
          const invocation = await attack(target, event);
          failsNamingTheRead(invocation);
        }),
        50,
      );
    },
    TIMEOUT_MS,
  );
});
