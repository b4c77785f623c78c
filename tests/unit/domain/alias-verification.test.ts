import { describe, expect, it } from 'vitest';
import { describeAliasDrift, verifyDeclaredAliases } from '../../../src/domain/alias-verification';
import type { AliasEntry } from '../../../src/domain/model';
import { KEY_ID, OTHER_KEY_ID } from '../support/key-metadata';

const pointingHere = (...names: string[]): AliasEntry[] =>
  names.map((aliasName) => ({ aliasName, targetKeyId: KEY_ID }));

/** Where each alias points, as KMS would say; an alias it does not know resolves to nothing. Records each lookup. */
const aliasDirectory = (targets: Record<string, string> = {}) => {
  const lookups: string[] = [];
  const resolve = async (aliasName: string): Promise<string | undefined> => {
    lookups.push(aliasName);
    return targets[aliasName];
  };
  return { resolve, lookups };
};

describe('Function: verifyDeclaredAliases', () => {
  it('verifies every declared alias without a lookup when all of them point at the key', async () => {
    // Prepare
    const directory = aliasDirectory();

    // Act
    const result = await verifyDeclaredAliases(
      KEY_ID,
      ['alias/a', 'alias/b'],
      pointingHere('alias/a', 'alias/b'),
      directory.resolve,
    );

    // Assess
    expect(result).toEqual({
      declared: ['alias/a', 'alias/b'],
      verified: ['alias/a', 'alias/b'],
      undeclared: [],
      drift: [],
    });
    expect(directory.lookups).toEqual([]);
  });

  it('reports drift to the key the alias points at instead, looking up only that alias', async () => {
    // Prepare
    const directory = aliasDirectory({ 'alias/b': OTHER_KEY_ID });

    // Act
    const result = await verifyDeclaredAliases(
      KEY_ID,
      ['alias/a', 'alias/b'],
      pointingHere('alias/a'),
      directory.resolve,
    );

    // Assess
    expect(result.verified).toEqual(['alias/a']);
    expect(result.drift).toEqual([{ aliasName: 'alias/b', expectedKeyId: KEY_ID, actualTarget: OTHER_KEY_ID }]);
    expect(directory.lookups).toEqual(['alias/b']);
  });

  it('reports a declared alias that does not exist as missing', async () => {
    const result = await verifyDeclaredAliases(KEY_ID, ['alias/gone'], [], aliasDirectory().resolve);
    expect(result.drift).toEqual([{ aliasName: 'alias/gone', expectedKeyId: KEY_ID, actualTarget: 'missing' }]);
    expect(result.verified).toEqual([]);
  });

  it('reports every drifted alias, in declared order', async () => {
    const directory = aliasDirectory({ 'alias/c': OTHER_KEY_ID });
    const result = await verifyDeclaredAliases(KEY_ID, ['alias/b', 'alias/c'], [], directory.resolve);
    expect(result.drift.map((drift) => [drift.aliasName, drift.actualTarget])).toEqual([
      ['alias/b', 'missing'],
      ['alias/c', OTHER_KEY_ID],
    ]);
  });

  it('lists aliases that point at the key without being declared, sorted, without counting them as drift', async () => {
    const result = await verifyDeclaredAliases(
      KEY_ID,
      ['alias/a'],
      pointingHere('alias/z', 'alias/a', 'alias/m'),
      aliasDirectory().resolve,
    );
    expect(result.undeclared).toEqual(['alias/m', 'alias/z']);
    expect(result.drift).toEqual([]);
  });

  it('declares nothing and calls every alias undeclared when no alias is declared', async () => {
    const result = await verifyDeclaredAliases(KEY_ID, [], pointingHere('alias/a'), aliasDirectory().resolve);
    expect(result).toEqual({ declared: [], verified: [], undeclared: ['alias/a'], drift: [] });
  });

  it('returns a copy of the declared list, not the caller array', async () => {
    const declared = ['alias/a'];
    const result = await verifyDeclaredAliases(KEY_ID, declared, pointingHere('alias/a'), aliasDirectory().resolve);
    expect(result.declared).toEqual(declared);
    expect(result.declared).not.toBe(declared);
  });

  it('throws what the lookup throws when an alias cannot be resolved', async () => {
    const failing = async (): Promise<string | undefined> => {
      throw new Error('throttled');
    };
    await expect(verifyDeclaredAliases(KEY_ID, ['alias/a'], [], failing)).rejects.toThrow('throttled');
  });
});

describe('Function: describeAliasDrift', () => {
  it('says the alias does not exist when it is missing', () => {
    expect(describeAliasDrift({ aliasName: 'alias/a', expectedKeyId: KEY_ID, actualTarget: 'missing' })).toBe(
      `alias/a does not exist (declared on ${KEY_ID})`,
    );
  });

  it('names the key the alias points at instead', () => {
    expect(describeAliasDrift({ aliasName: 'alias/a', expectedKeyId: KEY_ID, actualTarget: OTHER_KEY_ID })).toBe(
      `alias/a points at ${OTHER_KEY_ID}, declared on ${KEY_ID}`,
    );
  });
});
