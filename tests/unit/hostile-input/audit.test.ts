import fc from 'fast-check';
import { describe, it } from 'vitest';
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
  short,
  TIMEOUT_MS,
  targetOf,
  UNKNOWN_FIELD_NAMES,
  wrongPayloads,
} from './hostile';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const MRK = 'mrk-1234abcd12ab34cd56ef1234567890ab';
const STARTED_AT = '2026-11-21T00:00:00.000Z';

/** Every field of the payload at once: a manual run resumed from a checkpoint (each field is optional). */
const FULL = {
  remediate: true,
  keyIds: [KEY_ID, MRK, '0987dcba-09fe-87dc-65ba-ab0987654321', 'mrk-0000000000000000000000000000000a'],
  scheduled: true,
  checkpoint: {
    auditId: 'audit-2026-11-21',
    startedAt: STARTED_AT,
    marker: 'eyJtYXJrZXIiOiIxMjM0In0=',
    slice: 2,
    totals: {
      keysAudited: 10,
      byClass: { customer: 9, 'aws-managed': 1 },
      findingsByRule: { 'rotation-enabled': 1 },
      bySeverity: { HIGH: 1 },
      nonCompliantKeys: 1,
      nonCompliantByRule: { 'rotation-enabled': 1 },
      remediated: 0,
      suppressed: 2,
      suppressedByRule: { 'rotation-enabled': 2 },
      expiredExceptions: 1,
      declaredSeen: [KEY_ID, MRK],
    },
  },
};
const SAMPLES: Record<string, object> = {
  full: FULL,
  'by hand': { remediate: false, keyIds: [KEY_ID] },
  scheduled: { scheduled: true },
  empty: {},
};

const totals = (name: string) => ['checkpoint', 'totals', name];
const FIELDS: Field[] = [
  { path: ['remediate'], kind: 'boolean' },
  { path: ['keyIds'], kind: 'array' },
  { path: ['keyIds', 0], kind: 'pattern', valid: KEY_ID },
  { path: ['keyIds', 3], kind: 'pattern', valid: MRK },
  { path: ['scheduled'], kind: 'true' },
  { path: ['checkpoint'], kind: 'object' },
  { path: ['checkpoint', 'auditId'], kind: 'string', required: true, max: 64 },
  { path: ['checkpoint', 'startedAt'], kind: 'pattern', required: true, valid: STARTED_AT },
  { path: ['checkpoint', 'marker'], kind: 'string', required: true, max: 1024 },
  { path: ['checkpoint', 'slice'], kind: 'int', required: true },
  { path: ['checkpoint', 'totals'], kind: 'object', required: true },
  { path: totals('keysAudited'), kind: 'int', required: true },
  { path: totals('byClass'), kind: 'object', required: true },
  { path: [...totals('byClass'), 'customer'], kind: 'int' },
  { path: totals('nonCompliantKeys'), kind: 'int', required: true },
  { path: totals('remediated'), kind: 'int', required: true },
  { path: totals('suppressed'), kind: 'int' },
  { path: totals('suppressedByRule'), kind: 'object' },
  { path: [...totals('suppressedByRule'), 'rotation-enabled'], kind: 'int' },
  { path: totals('expiredExceptions'), kind: 'int' },
  { path: totals('declaredSeen'), kind: 'array', required: true },
  { path: [...totals('declaredSeen'), 1], kind: 'pattern', valid: MRK },
];

const OUT_OF_BOUNDS = fc.constantFrom(
  mutation(['keyIds'], 'no key ids', { set: [] }),
  mutation(['keyIds'], '1001 key ids', { set: Array.from({ length: 1001 }, () => KEY_ID) }),
  mutation(['checkpoint', 'slice'], 'slice 0', { set: 0 }),
  mutation(['checkpoint', 'slice'], 'slice 10001', { set: 10_001 }),
  mutation(['checkpoint', 'slice'], 'slice 2.5', { set: 2.5 }),
  mutation(totals('keysAudited'), 'negative count', { set: -1 }),
  mutation(['checkpoint', 'auditId'], 'empty auditId', { set: '' }),
  mutation(['scheduled'], 'scheduled false', { set: false }),
  mutation([...totals('byClass'), 'x'.repeat(65)], 'class name of 65 characters', { set: 1 }, [
    'checkpoint.totals.byClass',
  ]),
);

describe('audit: generated hostile input', () => {
  const target = targetOf('audit');
  const refused = (mutations: fc.Arbitrary<Mutation>) =>
    fc.asyncProperty(
      fc.tuple(fc.constantFrom('full', 'by hand', 'scheduled', 'empty'), mutations),
      async ([base, change]) => {
        // A change inside keyIds or the checkpoint is made where they are, so that it is the only change.
        const inside = change.path.length > 1 || change.path[0] === 'checkpoint';
        const payload = applyMutation(SAMPLES[inside ? 'full' : base], change);
        await expectRefused(target, payload, change);
      },
    );

  it(
    'refuses every structurally invalid payload with a bounded InvalidInputError naming the field, asking AWS nothing',
    async () => {
      target.aws.answers = 'fail';
      await assertProperty(
        refused(
          fc.oneof(
            fieldMutations(FIELDS),
            OUT_OF_BOUNDS,
            // No payload at all (null, "") is no options: a report.
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
      await assertProperty(refused(extraKeyMutations([[], ['checkpoint'], ['checkpoint', 'totals']], keys)), 100);
    },
    TIMEOUT_MS,
  );

  it(
    'reports the key ids asked for that do not exist as keysNotFound, never as a clean audit',
    async () => {
      target.aws.answers = 'unknown-key';
      const keyIds = fc.uniqueArray(fc.oneof(fc.uuid({ version: 4 }), fc.stringMatching(/^mrk-[0-9a-f]{32}$/)), {
        minLength: 1,
        maxLength: 5,
      });
      await assertProperty(
        fc.asyncProperty(keyIds, async (ids) => {
          const invocation = await attack(target, { keyIds: ids });
          if (invocation.failed) {
            const { message } = invocation.error as Error;
            if (!/DescribeKey/.test(message)) throw new Error(`rejected without naming DescribeKey: ${short(message)}`);
            return;
          }
          const report = invocation.result as { keysNotFound?: string[] };
          const missing = ids.filter((id) => !report.keysNotFound?.includes(id));
          if (missing.length > 0) {
            throw new Error(
              `keysNotFound lacks ${missing.join(', ')}: ${short(JSON.stringify(invocation.result), 600)}`,
            );
          }
        }),
        30,
      );
    },
    TIMEOUT_MS,
  );
});
