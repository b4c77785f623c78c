import { describe, expect, it } from 'vitest';
import { ConfigurationError, loadConfig } from '../../../src/config';

const ENV = {
  AWS_REGION: 'us-east-1',
  TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:kms-rotation-dev-notifications',
  STATE_PARAMETER_PREFIX: '/kms-rotation/dev/keys',
};

describe('Function: loadConfig', () => {
  describe('SELF_TEST_ROLE_ARN', () => {
    it('reads the selfTest role ARN when it is set, and leaves it out for the other functions', () => {
      const role = 'arn:aws:iam::123456789012:role/kms-rotation-dev-SelfTestRole-ABC123';
      expect(loadConfig({ ...ENV, SELF_TEST_ROLE_ARN: role }).selfTestRoleArn).toBe(role);
      expect(loadConfig(ENV).selfTestRoleArn).toBeUndefined();
    });

    it('refuses a value that is not an IAM role ARN, naming the variable', () => {
      expect(() => loadConfig({ ...ENV, SELF_TEST_ROLE_ARN: 'arn:aws:iam::123456789012:user/alice' })).toThrow(
        ConfigurationError,
      );
      expect(() => loadConfig({ ...ENV, SELF_TEST_ROLE_ARN: '*' })).toThrow(
        /SELF_TEST_ROLE_ARN must be an IAM role ARN/,
      );
    });
  });
});
