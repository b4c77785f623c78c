import { describe, expect, it } from 'vitest';
import { ConfigurationError, loadConfig } from '../../../src/config';
import { MINIMAL_ENV } from '../support/minimal-env';

const ENV = MINIMAL_ENV;

describe('Function: loadConfig', () => {
  describe('the role names (ON_ROTATION_ROLE_NAME, ROTATE_ROLE_NAME, ON_KEY_ACTIVITY_ROLE_NAME, SELF_TEST_ROLE_NAME)', () => {
    it('reads each role name that is set, and leaves out the others', () => {
      const config = loadConfig({ ...ENV, SELF_TEST_ROLE_NAME: 'kms-rotation-dev-SelfTestRole-ABC123' });
      expect(config.roleNames).toEqual({
        onRotation: undefined,
        rotate: undefined,
        onKeyActivity: undefined,
        selfTest: 'kms-rotation-dev-SelfTestRole-ABC123',
      });
      expect(
        loadConfig({
          ...ENV,
          ON_ROTATION_ROLE_NAME: 'a',
          ROTATE_ROLE_NAME: 'b',
          ON_KEY_ACTIVITY_ROLE_NAME: 'c',
          SELF_TEST_ROLE_NAME: 'd',
        }).roleNames,
      ).toEqual({ onRotation: 'a', rotate: 'b', onKeyActivity: 'c', selfTest: 'd' });
    });

    it.each([
      ['an ARN', 'arn:aws:iam::123456789012:role/kms-rotation-dev-SelfTestRole'],
      ['a wildcard', '*'],
      ['a name longer than IAM allows (64)', 'r'.repeat(65)],
    ])('refuses %s, naming the variable', (_, value) => {
      expect(() => loadConfig({ ...ENV, ROTATE_ROLE_NAME: value })).toThrow(ConfigurationError);
      expect(() => loadConfig({ ...ENV, ROTATE_ROLE_NAME: value })).toThrow(
        /ROTATE_ROLE_NAME must be an IAM role name/,
      );
    });
  });
});
