import { PreconditionFailedError } from './errors';
import type { Clock, KeyLease, KeyLeases } from './ports';

/** What a run needs to hold keys: the lease store, who it is, and how long it may still run. */
export interface LeaseDeps {
  leases: KeyLeases;
  clock: Clock;
  /** The function and request that runs: `rotate 6f1c...`. */
  holder: string;
  /** Time left before Lambda stops the invocation. */
  remainingMs: () => number;
}

/** Past the invocation's own deadline, so that a lease never ends while its holder still runs. */
const LEASE_MARGIN_MS = 30_000;

const busy = (held: KeyLease): PreconditionFailedError =>
  new PreconditionFailedError(
    'key-busy',
    `${held.keyId} is being changed by another run: ${held.holder} holds it until ${held.until.toISOString()} (${held.purpose}); nothing was changed, try again after that`,
  );

/**
 * Runs `work` holding the lease of every key in `keyIds` (taken in id order, all or none), and
 * gives them back however it ends. A key another run holds refuses the whole run before any
 * change, naming that run and when its lease ends. A crashed run's lease ends with its
 * invocation's deadline.
 */
export const holdingKeys = async <T>(
  keyIds: readonly string[],
  purpose: string,
  deps: LeaseDeps,
  work: () => Promise<T>,
): Promise<T> => {
  const until = new Date(deps.clock.now().getTime() + deps.remainingMs() + LEASE_MARGIN_MS);
  const held: string[] = [];
  try {
    for (const keyId of [...new Set(keyIds)].sort()) {
      const other = await deps.leases.acquire({ keyId, holder: deps.holder, purpose, until });
      if (other) throw busy(other);
      held.push(keyId);
    }
    return await work();
  } finally {
    await Promise.allSettled(held.map((keyId) => deps.leases.release(keyId, deps.holder)));
  }
};
