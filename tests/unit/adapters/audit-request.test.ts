import { describe, expect, it } from 'vitest';
import { parseAuditRequest } from '../../../src/adapters/schemas/audit-request';
import { InvalidInputError } from '../../../src/domain/errors';

describe('Function: parseAuditRequest', () => {
  it.each([undefined, null, '', {}])('reads no payload (%s) as no options: a report, not a remediation', (payload) => {
    expect(parseAuditRequest(payload, true)).toEqual({ remediate: false, keyIds: undefined, checkpoint: undefined });
  });

  it('remediates on schedule only when the stack says so', () => {
    expect(parseAuditRequest({ scheduled: true }, true).remediate).toBe(true);
    expect(parseAuditRequest({ scheduled: true }, false).remediate).toBe(false);
  });

  it.each([
    ['a string with content', 'remediate'],
    ['an unknown field', { remediat: true }],
  ])('refuses %s, naming what it expects', (_, payload) => {
    expect(() => parseAuditRequest(payload, false)).toThrow(InvalidInputError);
    expect(() => parseAuditRequest(payload, false)).toThrow(/Expected \{"remediate"\?: true/);
  });
});
