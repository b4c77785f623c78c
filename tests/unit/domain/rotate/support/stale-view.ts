import type { AliasSwapDeps } from '../../../../../src/domain/alias-swap-state';
import type { KeyAdmin, KeyReader, TaggedKeyFinder } from '../../../../../src/domain/ports';
import type { World } from './world';

const READS = ['describeKey', 'getRotationStatus', 'listRotations', 'listAliasesOf', 'listTags'] as const;
const WRITES = ['rotateKeyOnDemand', 'createKey', 'tagKey', 'updateAlias', 'createAlias', 'enableKeyRotation'] as const;

/**
 * KMS's eventual consistency over the fake, as the loopback proxy's stale-reads mode does it over
 * moto (scripts/lib/stale-reads.ts): a read whose same request was answered less than `windowMs`
 * ago (on the fake clock), with a write made since, gets that earlier answer again; any other
 * read asks the fake and its answer is remembered. Replaces the world's reader, directory and admin.
 */
export const withStaleReads = (world: World, windowMs: number): { staleAnswers: () => number } => {
  const { kms, clock } = world;
  const remembered = new Map<string, { at: number; seq: number; outcome: PromiseSettledResult<unknown> }>();
  let seq = 0;
  let lastWrite = -1;
  let stale = 0;

  const read =
    <A extends unknown[], T>(name: string, fresh: (...args: A) => Promise<T>) =>
    async (...args: A): Promise<T> => {
      const key = `${name} ${JSON.stringify(args)}`;
      const entry = remembered.get(key);
      const isStale = entry !== undefined && clock.now().getTime() - entry.at <= windowMs && lastWrite > entry.seq;
      if (isStale) stale += 1;
      const outcome: PromiseSettledResult<unknown> = isStale
        ? entry.outcome
        : await fresh(...args).then(
            (value): PromiseSettledResult<unknown> => ({ status: 'fulfilled', value }),
            (reason: unknown): PromiseSettledResult<unknown> => ({ status: 'rejected', reason }),
          );
      seq += 1;
      if (outcome !== entry?.outcome) remembered.set(key, { at: clock.now().getTime(), seq, outcome });
      if (outcome.status === 'rejected') throw outcome.reason;
      return structuredClone(outcome.value) as T;
    };
  const write =
    <A extends unknown[], T>(fresh: (...args: A) => Promise<T>) =>
    async (...args: A): Promise<T> => {
      seq += 1;
      lastWrite = seq;
      try {
        return await fresh(...args);
      } finally {
        seq += 1;
        lastWrite = seq;
      }
    };

  const bound = kms as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const keys = Object.fromEntries(
    READS.map((name) => [name, read(name, bound[name]?.bind(kms) as (...args: unknown[]) => Promise<unknown>)]),
  ) as unknown as KeyReader;
  const admin = {
    ...Object.fromEntries(
      WRITES.map((name) => [name, write(bound[name]?.bind(kms) as (...args: unknown[]) => Promise<unknown>)]),
    ),
    getKeyPolicy: read('getKeyPolicy', kms.getKeyPolicy.bind(kms)),
  } as unknown as KeyAdmin;
  const directory: TaggedKeyFinder = { keysTagged: read('keysTagged', kms.keysTagged.bind(kms)) };
  Object.assign(world.deps, { keys, admin, directory } satisfies Partial<AliasSwapDeps>);
  return { staleAnswers: () => stale };
};
