import { describe, expect, it } from 'vitest';
import { parseAuditRequest } from '../../../src/adapters/schemas/audit-request';
import { parseKeyActivityEvent } from '../../../src/adapters/schemas/key-activity-event';
import { parseRotateRequest } from '../../../src/adapters/schemas/rotate-request';
import { describeError, excerpt, InvalidInputError } from '../../../src/domain/errors';

const MiB = 1024 * 1024;

const refusalOf = (parse: () => unknown): InvalidInputError => {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return error as InvalidInputError;
  }
  throw new Error('accepted');
};

/** Payloads whose field names or values are huge: the refusal names them, in a few hundred characters. */
const HUGE = [
  {
    input: 'rotate: a 1 MiB unknown field name',
    parse: () => parseRotateRequest({ key: 'alias/app/key', ['n'.repeat(MiB)]: true }),
    names: `Unrecognized key: "${'n'.repeat(64)}…(${MiB - 64} more characters)"`,
  },
  {
    input: 'rotate: 5000 unknown field names',
    parse: () =>
      parseRotateRequest({
        key: 'alias/app/key',
        ...Object.fromEntries(Array.from({ length: 5000 }, (_, index) => [`field${index}`, 1])),
      }),
    names: 'Unrecognized keys: "field0", "field1", "field2", "field3", "field4" and 4995 more',
  },
  {
    input: 'audit: a 1 MiB unknown field name',
    parse: () => parseAuditRequest({ ['a'.repeat(MiB)]: 1 }, false),
    names: `Unrecognized key: "${'a'.repeat(64)}…`,
  },
  {
    input: 'audit: a 1 MiB key inside the checkpoint counts',
    parse: () =>
      parseAuditRequest(
        {
          checkpoint: {
            auditId: 'a',
            startedAt: '2026-12-01T00:00:00Z',
            marker: 'm',
            slice: 1,
            totals: {
              keysAudited: 0,
              byClass: { ['c'.repeat(MiB)]: 1 },
              findingsByRule: {},
              bySeverity: {},
              nonCompliantKeys: 0,
              nonCompliantByRule: {},
              remediated: 0,
              declaredSeen: [],
            },
          },
        },
        false,
      ),
    names: `checkpoint.totals.byClass.${'c'.repeat(64)}…(${MiB - 64} more characters)`,
  },
  {
    input: 'onKeyActivity: a 1 MiB unknown detail-type',
    parse: () => parseKeyActivityEvent({ 'detail-type': 'd'.repeat(MiB) }),
    names: 'detail-type must be',
  },
];

describe('Refusals of huge input', () => {
  it.each(HUGE)('$input: at most 2 KB, naming the field', ({ parse, names }) => {
    const refusal = refusalOf(parse);

    expect(refusal.message.length).toBeLessThanOrEqual(2048);
    expect(refusal.message).toContain(names);
  });

  it('bounds any InvalidInputError message, whoever built it', () => {
    const error = new InvalidInputError(`key ${'k'.repeat(MiB)}`);

    expect(error.message.length).toBeLessThanOrEqual(2048);
    expect(error.message.startsWith(`key ${'k'.repeat(1996)}…(`)).toBe(true);
  });

  it('bounds the text of any error for reports and logs', () => {
    expect(describeError(new Error('e'.repeat(MiB))).length).toBeLessThanOrEqual(1_100);
    expect(excerpt('short')).toBe('short');
  });
});
