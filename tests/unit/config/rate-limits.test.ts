import { describe, expect, it } from 'vitest';
import { ConfigurationError, loadConfig } from '../../../src/config';
import { MINIMAL_ENV } from '../support/minimal-env';

const ENV = MINIMAL_ENV;

/** A bad AUDIT_RATE_LIMITS fails the cold start naming the variable, before any key is audited. */
describe('Function: loadConfig, AUDIT_RATE_LIMITS', () => {
  it('is no override unless set', () => {
    expect(loadConfig(ENV).audit.rateLimits).toEqual({});
  });

  it('reads <API>=<requests per second>, separated by commas or spaces', () => {
    expect(
      loadConfig({ ...ENV, AUDIT_RATE_LIMITS: 'ListKeyRotations=50, DescribeKey=500 GetKeyPolicy=2.5' }).audit
        .rateLimits,
    ).toEqual({
      ListKeyRotations: 50,
      DescribeKey: 500,
      GetKeyPolicy: 2.5,
    });
  });

  it.each([
    ['a rate that is not a number', 'ListKeyRotations=fast'],
    ['a rate of zero', 'DescribeKey=0'],
    ['a negative rate', 'DescribeKey=-5'],
    ['an API the audit does not pace (a typo would otherwise change nothing, silently)', 'ListKeyRotation=50'],
    ['an entry without a rate', 'ListKeyRotations'],
    ['an inherited property name', 'constructor=5'],
  ])('refuses %s, naming the variable', (_name, value) => {
    const load = () => loadConfig({ ...ENV, AUDIT_RATE_LIMITS: value });
    expect(load).toThrow(ConfigurationError);
    expect(load).toThrow(/AUDIT_RATE_LIMITS may only list <KMS API>=<requests per second above 0>/);
  });
});
