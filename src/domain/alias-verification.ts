import type { AliasEntry } from './model';

/** A declared alias that does not point at its key. */
export interface AliasDrift {
  aliasName: string;
  expectedKeyId: string;
  /** `missing`: the alias does not exist; otherwise the id of the key it points at instead. */
  actualTarget: 'missing' | string;
}

export interface AliasVerification {
  declared: string[];
  /** Declared aliases that point at the key. */
  verified: string[];
  /** Aliases that point at the key without being declared (reported, not a fault). */
  undeclared: string[];
  drift: AliasDrift[];
}

/**
 * Compares the declared aliases with those that point at the key. Only for declared aliases
 * that do not, `resolveTarget` is asked where they point (one lookup per drifted alias).
 */
export const verifyDeclaredAliases = async (
  keyId: string,
  declared: readonly string[],
  aliasesOfKey: readonly AliasEntry[],
  resolveTarget: (aliasName: string) => Promise<string | undefined>,
): Promise<AliasVerification> => {
  const pointingHere = new Set(aliasesOfKey.map((alias) => alias.aliasName));
  const verified = declared.filter((name) => pointingHere.has(name));
  const undeclared = [...pointingHere].filter((name) => !declared.includes(name)).sort();
  const drift = await Promise.all(
    declared
      .filter((name) => !pointingHere.has(name))
      .map(async (aliasName) => ({
        aliasName,
        expectedKeyId: keyId,
        actualTarget: (await resolveTarget(aliasName)) ?? 'missing',
      })),
  );
  return { declared: [...declared], verified, undeclared, drift };
};

export const describeAliasDrift = (drift: AliasDrift): string =>
  drift.actualTarget === 'missing'
    ? `${drift.aliasName} does not exist (declared on ${drift.expectedKeyId})`
    : `${drift.aliasName} points at ${drift.actualTarget}, declared on ${drift.expectedKeyId}`;
