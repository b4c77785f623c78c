import { describe, expect, it } from 'vitest';
import { inAliasScope, outsideAliasScope } from '../../../src/domain/alias-scope';

describe('Function: inAliasScope', () => {
  it.each([
    ['alias/app/secure-key', ['alias/app/*'], true],
    ['alias/app/team/key', ['alias/app/*'], true],
    ['alias/application', ['alias/app/*'], false],
    ['alias/app/secure-key', ['alias/app/secure-key'], true],
    ['alias/app/secure-key-2', ['alias/app/secure-key'], false],
    ['alias/other/key', ['alias/app/*', 'alias/other/*'], true],
    ['alias/app/key', [], false],
  ])('%s in %j is %s', (alias, scope, expected) => {
    expect(inAliasScope(alias, scope)).toBe(expected);
  });
});

describe('Function: outsideAliasScope', () => {
  it('lists the aliases outside the scope, in declared order', () => {
    expect(outsideAliasScope(['alias/z/1', 'alias/app/a', 'alias/y/2'], ['alias/app/*'])).toEqual([
      'alias/z/1',
      'alias/y/2',
    ]);
  });
});
