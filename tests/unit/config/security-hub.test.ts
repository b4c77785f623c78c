import { describe, expect, it } from 'vitest';
import { ConfigurationError, loadConfig } from '../../../src/config';
import { MINIMAL_ENV } from '../support/minimal-env';

const ENV = MINIMAL_ENV;

describe('Function: loadConfig, SECURITY_HUB_FINDINGS', () => {
  it('is off unless set', () => {
    expect(loadConfig(ENV).securityHubFindings).toBe(false);
  });

  it.each([
    ['true', true],
    ['false', false],
  ])('reads %s', (value, expected) => {
    expect(loadConfig({ ...ENV, SECURITY_HUB_FINDINGS: value }).securityHubFindings).toBe(expected);
  });

  it.each(['yes', 'TRUE', '1'])('refuses %s, naming the variable', (value) => {
    expect(() => loadConfig({ ...ENV, SECURITY_HUB_FINDINGS: value })).toThrow(ConfigurationError);
    expect(() => loadConfig({ ...ENV, SECURITY_HUB_FINDINGS: value })).toThrow(/SECURITY_HUB_FINDINGS/);
  });
});
