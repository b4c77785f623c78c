import { PreconditionFailedError } from './errors';
import type { KeyReader } from './ports';

/** The key an alias points at now, or `undefined` when the alias does not exist. */
export const aliasTargetOf = async (keys: KeyReader, aliasName: string): Promise<string | undefined> => {
  try {
    return (await keys.describeKey(aliasName)).keyId;
  } catch (error) {
    if (error instanceof PreconditionFailedError && error.reason === 'key-not-found') return undefined;
    throw error;
  }
};
