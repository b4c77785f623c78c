import { describe, expect, it } from 'vitest';
import { ConfigurationError, loadConfig } from '../../../src/config';
import { REMEDIABLE_RULES } from '../../../src/domain/drift-rules';
import { MINIMAL_ENV } from '../support/minimal-env';

const ENV = MINIMAL_ENV;

/** The rules the drift watch (`onKeyActivity`) may put back in remediate mode. */
describe('Function: loadConfig, DRIFT_REMEDIATE_RULES', () => {
  it('is every remediable rule unless set', () => {
    expect([...loadConfig(ENV).driftRemediateRules]).toEqual([...REMEDIABLE_RULES]);
  });

  it('reads the rule ids, separated by commas or spaces', () => {
    expect([
      ...loadConfig({ ...ENV, DRIFT_REMEDIATE_RULES: 'rotation-enabled, declared-alias-elsewhere' })
        .driftRemediateRules,
    ]).toEqual(['rotation-enabled', 'declared-alias-elsewhere']);
  });

  it('reads the ids renamed in this release as the new ones, until the next release', () => {
    expect([
      ...loadConfig({
        ...ENV,
        DRIFT_REMEDIATE_RULES: 'rotation-disabled,rotation-period-changed,declared-alias-missing',
      }).driftRemediateRules,
    ]).toEqual(['rotation-enabled', 'rotation-period', 'declared-alias-missing']);
  });

  it.each([
    ['a rule that is never put back', 'key-disabled'],
    ['an unknown rule', 'rotation-disable'],
    ['an inherited property name', 'constructor'],
  ])('refuses %s, naming the variable', (_name, value) => {
    const load = () => loadConfig({ ...ENV, DRIFT_REMEDIATE_RULES: value });
    expect(load).toThrow(ConfigurationError);
    expect(load).toThrow(/DRIFT_REMEDIATE_RULES may only list rotation-enabled, rotation-period/);
  });
});
