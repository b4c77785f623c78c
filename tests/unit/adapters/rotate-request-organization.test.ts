import { describe, expect, it } from 'vitest';
import { parseRotateRequest } from '../../../src/adapters/schemas/rotate-request';
import { InvalidInputError } from '../../../src/domain/errors';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const MEMBER_KEY = `arn:aws:kms:eu-west-1:111111111111:key/${KEY_ID}`;

const refusal = (payload: unknown, organizationMode: boolean): InvalidInputError => {
  try {
    parseRotateRequest(payload, organizationMode);
  } catch (error) {
    return error as InvalidInputError;
  }
  throw new Error(`${JSON.stringify(payload)} was accepted`);
};

describe('Function: parseRotateRequest, account and region (organization mode)', () => {
  it('accepts both, with a key id, an alias name or a key ARN in them', () => {
    for (const key of [KEY_ID, 'alias/app/x', MEMBER_KEY]) {
      const parsed = parseRotateRequest({ key, account: '111111111111', region: 'eu-west-1' }, true);
      expect(parsed).toMatchObject({ key, account: '111111111111', region: 'eu-west-1', strategy: 'auto' });
    }
  });

  it('accepts neither, in organization mode too: the function acts in its own account and Region', () => {
    const parsed = parseRotateRequest({ key: 'alias/app/x' }, true);
    expect(parsed.account).toBeUndefined();
    expect(parsed.region).toBeUndefined();
  });

  it.each([
    [
      'account',
      { key: KEY_ID, account: '111111111111', region: 'eu-west-1' },
      /^Invalid rotate request: account is accepted in organization mode only/,
    ],
    [
      'account',
      { key: KEY_ID, account: '111111111111' },
      /^Invalid rotate request: account is accepted in organization mode only/,
    ],
    [
      'region',
      { key: KEY_ID, region: 'eu-west-1' },
      /^Invalid rotate request: region is accepted in organization mode only/,
    ],
  ])('refuses %s outside organization mode, by name', (_field, payload, expected) => {
    const error = refusal(payload, false);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(expected);
  });

  it.each([
    [
      'region without account',
      { key: KEY_ID, region: 'eu-west-1' },
      /^Invalid rotate request: account is required with region/,
    ],
    [
      'account without region',
      { key: KEY_ID, account: '111111111111' },
      /^Invalid rotate request: region is required with account/,
    ],
    [
      'a key ARN of another account',
      { key: MEMBER_KEY, account: '222222222222', region: 'eu-west-1' },
      /^Invalid rotate request: key must be in the account and Region given \(222222222222, eu-west-1\)/,
    ],
    [
      'a key ARN of another Region',
      { key: MEMBER_KEY, account: '111111111111', region: 'us-east-1' },
      /^Invalid rotate request: key must be in the account and Region given \(111111111111, us-east-1\)/,
    ],
    [
      'an alias ARN of another account',
      { key: 'arn:aws:kms:eu-west-1:333333333333:alias/app/x', account: '111111111111', region: 'eu-west-1' },
      /^Invalid rotate request: key must be in the account and Region given/,
    ],
  ])('refuses %s', (_name, payload, expected) => {
    const error = refusal(payload, true);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(expected);
  });

  it.each([
    ['an account of 11 digits', { account: '11111111111' }, /account must be a 12-digit account id/],
    ['an account of 13 digits', { account: '1111111111111' }, /account must be a 12-digit account id/],
    ['an account with a newline', { account: '111111111111\n' }, /account must be a 12-digit account id/],
    ['an account as a number', { account: 111111111111 }, /account Invalid input: expected string, received number/],
    ['an account of letters', { account: 'o-abcdefghij' }, /account must be a 12-digit account id/],
    ['a Region with a path', { region: 'eu-west-1/../x' }, /region must be a Region name/],
    ['a Region in capitals', { region: 'EU-WEST-1' }, /region must be a Region name/],
    ['a Region of a megabyte', { region: 'a'.repeat(1_000_000) }, /region must be a Region name/],
    [
      'a Region as an object',
      { region: { name: 'eu-west-1' } },
      /region Invalid input: expected string, received object/,
    ],
  ])('refuses %s, by name, bounded', (_name, where, expected) => {
    const payload = { key: KEY_ID, account: '111111111111', region: 'eu-west-1', ...where };
    const error = refusal(payload, true);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(expected);
    expect(error.message.length).toBeLessThan(1_000);
  });
});
