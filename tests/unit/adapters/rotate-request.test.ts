import { describe, expect, it } from 'vitest';
import { parseRotateRequest } from '../../../src/adapters/schemas/rotate-request';
import { InvalidInputError } from '../../../src/domain/errors';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';

const refusal = (payload: unknown): InvalidInputError => {
  try {
    parseRotateRequest(payload);
  } catch (error) {
    return error as InvalidInputError;
  }
  throw new Error(`${JSON.stringify(payload)} was accepted`);
};

describe('Function: parseRotateRequest', () => {
  it.each([undefined, null, ''])('names the missing key when there is no payload at all (%s)', (payload) => {
    const error = refusal(payload);

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(/^Invalid rotate request: key Invalid input: expected string, received undefined/);
    expect(error.message).not.toContain('received string');
  });

  it('applies the defaults when only the key is given', () => {
    // Prepare
    const payload = { key: 'alias/app/secure-key' };

    // Act
    const parsed = parseRotateRequest(payload);

    // Assess
    expect(parsed).toEqual({ key: 'alias/app/secure-key', strategy: 'auto', dryRun: false, action: 'rotate' });
  });

  it('keeps every field when all are given', () => {
    // Prepare
    const payload = {
      key: KEY_ID,
      strategy: 'alias-swap',
      dryRun: true,
      reason: 'suspected exposure, ticket SEC-42',
      action: 'rollback',
      force: true,
    };

    // Act
    const parsed = parseRotateRequest(payload);

    // Assess
    expect(parsed).toEqual(payload);
  });

  it.each([
    'alias/app/secure-key',
    'alias/team_a/key-1',
    KEY_ID,
    'mrk-1234abcd12ab34cd56ef1234567890ab',
    `arn:aws:kms:us-east-1:123456789012:key/${KEY_ID}`,
    'arn:aws:kms:eu-west-1:123456789012:alias/app/secure-key',
    `arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/${KEY_ID}`,
    `arn:aws-cn:kms:cn-north-1:123456789012:key/${KEY_ID}`,
  ])('accepts the key reference %s', (key) => {
    // Prepare
    const payload = { key };

    // Act
    const parsed = parseRotateRequest(payload);

    // Assess
    expect(parsed.key).toBe(key);
  });

  it.each([
    { field: 'dryrun', payload: { key: 'alias/app/x', dryrun: true } },
    { field: 'dry_run', payload: { key: 'alias/app/x', dry_run: true } },
    { field: 'keyId', payload: { key: 'alias/app/x', keyId: KEY_ID } },
  ])('refuses the unknown field $field, so that a typo never means "not a dry run"', ({ field, payload }) => {
    // Prepare
    const expected = new RegExp(`Unrecognized key.*"${field}"`);

    // Act
    const error = refusal(payload);

    // Assess
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(expected);
    expect(error.message).toContain('Expected {"key": "alias/..."');
  });

  it.each([
    ['an empty string', ''],
    ['a bare alias prefix', 'alias/'],
    ['an alias with a space', 'alias/app key'],
    ['a name that is no key reference', 'payments-key'],
    ['an upper-case key id', KEY_ID.toUpperCase()],
    ['a path', '../../etc/passwd'],
    ['an ARN of another service', 'arn:aws:s3:::my-bucket'],
    ['a key ARN with a short account', `arn:aws:kms:us-east-1:1234:key/${KEY_ID}`],
    ['a number', 42],
    ['null', null],
  ])('refuses %s as the key', (_, key) => {
    // Prepare
    const payload = { key };

    // Act
    const error = refusal(payload);

    // Assess
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(/^Invalid rotate request: key /);
  });

  it.each([
    ['no key', {}, 'key'],
    ['an unknown strategy', { key: 'alias/app/x', strategy: 'rotate-now' }, 'strategy'],
    ['an unknown action', { key: 'alias/app/x', action: 'undo' }, 'action'],
    ['dryRun as a string', { key: 'alias/app/x', dryRun: 'true' }, 'dryRun'],
    ['force as a string', { key: 'alias/app/x', force: 'yes' }, 'force'],
    ['a reason over 256 characters', { key: 'alias/app/x', reason: 'r'.repeat(257) }, 'reason'],
  ])('refuses %s, naming the field', (_, payload, field) => {
    // Prepare
    const expected = new RegExp(`^Invalid rotate request: ${field} `);

    // Act
    const error = refusal(payload);

    // Assess
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(expected);
  });

  it.each([
    ['a string', 'alias/app/x'],
    ['an array', [{ key: 'alias/app/x' }]],
  ])('refuses %s as the payload', (_, payload) => {
    // Prepare
    const expected = /^Invalid rotate request: \(payload\) /;

    // Act
    const error = refusal(payload);

    // Assess
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(expected);
  });
});
