import { describe, expect, it } from 'vitest';
import { parseAuditRequest } from '../../../src/adapters/schemas/audit-request';
import { parseOrgAuditItemMessage, parseOrgAuditRequest, parseSqsEvent } from '../../../src/adapters/schemas/org-audit';
import { InvalidInputError } from '../../../src/domain/errors';

describe('Function: parseAuditRequest, a member account-Region', () => {
  it('takes account and region together in organization mode', () => {
    expect(parseAuditRequest({ account: '111111111111', region: 'eu-west-1' }, false, true)).toEqual({
      remediate: false,
      keyIds: undefined,
      checkpoint: undefined,
      account: '111111111111',
      region: 'eu-west-1',
    });
  });

  it.each([
    [{ account: '111111111111' }, /region is missing/],
    [{ region: 'eu-west-1' }, /account is missing/],
    [{ account: '1111', region: 'eu-west-1' }, /account must be a 12-digit AWS account id/],
    [{ account: '111111111111', region: 'EU' }, /region must be a Region name/],
  ])('refuses %o, naming the field', (payload, message) => {
    expect(() => parseAuditRequest(payload, false, true)).toThrow(InvalidInputError);
    expect(() => parseAuditRequest(payload, false, true)).toThrow(message);
  });

  it('refuses account and region outside organization mode', () => {
    expect(() => parseAuditRequest({ account: '111111111111', region: 'eu-west-1' }, false, false)).toThrow(
      /accepted only in organization mode/,
    );
  });
});

describe('Function: parseOrgAuditRequest', () => {
  it.each([
    [undefined, false],
    [{}, false],
    [{ scheduled: true }, false],
    [{ dryRun: true }, true],
    [{ dryRun: false }, false],
  ])('takes %o (dry run: %s)', (payload, dryRun) => {
    expect(parseOrgAuditRequest(payload)).toEqual({ dryRun });
  });

  it.each([
    ['an unknown field', { account: '111111111111' }, /Unrecognized key: "account"/],
    ['scheduled: false', { scheduled: false }, /scheduled/],
    ['a string', 'go', /Expected \{\} or \{"dryRun": true\}/],
  ])('refuses %s before any AWS call', (_, payload, message) => {
    expect(() => parseOrgAuditRequest(payload)).toThrow(InvalidInputError);
    expect(() => parseOrgAuditRequest(payload)).toThrow(message);
  });
});

describe('Function: parseOrgAuditItemMessage', () => {
  it('reads an item orgAudit wrote', () => {
    const item = { runId: 'a1b2-c3', account: '111111111111', region: 'us-east-1', ouPath: 'r-ab12/ou-ab12-cdefgh12' };
    expect(parseOrgAuditItemMessage(JSON.stringify(item))).toEqual(item);
  });

  it.each([
    ['not JSON', '{runId', /not JSON/],
    ['a bad account', JSON.stringify({ runId: 'r', account: 'x', region: 'us-east-1' }), /account must be a 12-digit/],
    ['no run', JSON.stringify({ account: '111111111111', region: 'us-east-1' }), /runId/],
    [
      'an extra field',
      JSON.stringify({ runId: 'r', account: '111111111111', region: 'us-east-1', keyIds: [] }),
      /Unrecognized key/,
    ],
    ['a huge body', 'x'.repeat(100_000), /at most 4096 characters/],
  ])('refuses %s, bounded', (_, body, message) => {
    expect(() => parseOrgAuditItemMessage(body)).toThrow(message);
    try {
      parseOrgAuditItemMessage(body);
    } catch (error) {
      expect((error as Error).message.length).toBeLessThan(600);
    }
  });
});

describe('Function: parseSqsEvent', () => {
  it('reads each record with its receive count', () => {
    expect(
      parseSqsEvent({
        Records: [{ messageId: 'm1', body: '{}', attributes: { ApproximateReceiveCount: '3' }, extra: 1 }],
      }),
    ).toEqual([{ messageId: 'm1', body: '{}', receiveCount: 3 }]);
  });

  it.each([{}, { Records: [] }, { Records: [{ messageId: 'm', body: '{}', attributes: {} }] }, 'event'])(
    'refuses %o: not an SQS event of the queue',
    (event) => {
      expect(() => parseSqsEvent(event)).toThrow(/Invalid orgAuditItem event/);
    },
  );
});
