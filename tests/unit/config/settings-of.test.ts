import { describe, expect, it } from 'vitest';
import { ALL_SETTINGS, ConfigurationError, loadConfig, SETTINGS_OF } from '../../../src/config';
import { MINIMAL_ENV } from '../support/minimal-env';

/** Issue 14, "each function reads only its own settings". */
describe('Function: loadConfig, per function', () => {
  it('lets no function fail its cold start on a setting of another: a bad AUDIT_RATE_LIMITS fails the audit only', () => {
    const env = { ...MINIMAL_ENV, AUDIT_RATE_LIMITS: 'ListKeyRotation=50' };
    for (const fn of ['onRotation', 'rotate', 'onKeyActivity', 'selfTest'] as const) {
      expect(() => loadConfig(env, fn), fn).not.toThrow();
    }
    expect(() => loadConfig(env, 'audit')).toThrow(ConfigurationError);
    expect(() => loadConfig(env, 'audit')).toThrow(/AUDIT_RATE_LIMITS/);
  });

  it('takes the default of a setting the function does not read, whatever the environment says', () => {
    const env = { ...MINIMAL_ENV, DRIFT_MODE: 'remediate', AUDIT_CONCURRENCY: '4', ROTATION_WAIT_SECONDS: '5' };
    expect(loadConfig(env, 'onKeyActivity').driftMode).toBe('remediate');
    expect(loadConfig(env, 'audit').driftMode).toBe('detect');
    expect(loadConfig(env, 'audit').audit.concurrency).toBe(4);
    expect(loadConfig(env, 'rotate').audit.concurrency).toBe(16);
    expect(loadConfig(env, 'rotate').rotationWaitMs).toBe(5_000);
    expect(loadConfig(env, 'onRotation').rotationWaitMs).toBe(60_000);
  });

  it('still validates what each function reads', () => {
    expect(() => loadConfig({ ...MINIMAL_ENV, DRIFT_MODE: 'fix' }, 'onKeyActivity')).toThrow(/DRIFT_MODE/);
    expect(() => loadConfig({ ...MINIMAL_ENV, ROTATION_WAIT_SECONDS: 'soon' }, 'rotate')).toThrow(
      /ROTATION_WAIT_SECONDS/,
    );
    expect(() => loadConfig({ MINIMAL_ENV, TOPIC_ARN: 'nope' } as never, 'audit')).toThrow(/TOPIC_ARN/);
  });

  it('names only settings that exist, and every setting is read by some function', () => {
    const read = new Set(Object.values(SETTINGS_OF).flat());
    for (const setting of read) expect(ALL_SETTINGS).toContain(setting);
    expect([...read].sort()).toEqual([...ALL_SETTINGS].sort());
  });
});
