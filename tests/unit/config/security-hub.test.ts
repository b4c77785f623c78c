import { describe, expect, it } from 'vitest';
import { ConfigurationError, loadConfig } from '../../../src/config';

const ENV = {
  AWS_REGION: 'us-east-1',
  TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:kms-rotation-dev-notifications',
  STATE_PARAMETER_PREFIX: '/kms-rotation/dev/keys',
};

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
