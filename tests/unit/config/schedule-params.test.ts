import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { ConfigurationError, loadConfig } from '../../../src/config';
import { MINIMAL_ENV } from '../support/minimal-env';

type Resolver = { resolveVariable: (variable: string) => Promise<unknown> };
interface StackModule {
  StackParameterError: new (message: string) => Error;
  importExpiryWarningDays(resolver: Resolver): Promise<number>;
  rotationDueWarningDays(resolver: Resolver): Promise<number>;
}

const stack = createRequire(import.meta.url)('../../../config/stack.cjs') as StackModule;
const resolver = (params: Record<string, unknown>): Resolver => ({
  resolveVariable: async (variable) => params[variable.replace(/^param:/, '')],
});

describe.each([
  { name: 'importExpiryWarningDays', variable: 'AUDIT_IMPORT_EXPIRY_WARNING_DAYS', setting: 'importExpiryWarningDays' },
  { name: 'rotationDueWarningDays', variable: 'AUDIT_ROTATION_DUE_WARNING_DAYS', setting: 'rotationDueWarningDays' },
] as const)('Stage parameter $name', ({ name, variable, setting }) => {
  it.each([
    ['1', 1],
    ['30', 30],
    ['365', 365],
  ])('is accepted at package time as %s -> %i days', async (value, days) => {
    await expect(stack[name](resolver({ [name]: value }))).resolves.toBe(days);
  });

  it.each([
    ['0', 'between 1 and 365 days'],
    ['366', 'between 1 and 365 days'],
    ['a month', 'whole number of days'],
    ['', 'whole number of days'],
  ])('is refused at package time, naming the parameter, when it is %j', async (value, why) => {
    const result = stack[name](resolver({ [name]: value }));
    await expect(result).rejects.toBeInstanceOf(stack.StackParameterError);
    await expect(result).rejects.toThrow(`Parameter "${name}"`);
    await expect(result).rejects.toThrow(why);
  });

  it('reaches the audit as its setting, and a bad value fails its cold start naming the variable', () => {
    expect(loadConfig({ ...MINIMAL_ENV, [variable]: '45' }, 'audit').audit[setting]).toBe(45);
    expect(() => loadConfig({ ...MINIMAL_ENV, [variable]: '0' }, 'audit')).toThrow(ConfigurationError);
    expect(() => loadConfig({ ...MINIMAL_ENV, [variable]: '0' }, 'audit')).toThrow(variable);
    // Another function does not read it: a bad value there fails nothing.
    expect(() => loadConfig({ ...MINIMAL_ENV, [variable]: '0' }, 'rotate')).not.toThrow();
  });
});
