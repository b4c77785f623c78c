import { PreconditionFailedError } from './errors';
import type { Clock, KeyLease, KeyLeases, Sleeper } from './ports';

/** What a run needs to hold keys: the lease store, who it is, and how long it may still run. */
export interface LeaseDeps {
  leases: KeyLeases;
  clock: Clock;
  /** The function and request that runs: `rotate 6f1c...`. */
  holder: string;
  /** Time left before Lambda stops the invocation. */
  remainingMs: () => number;
  /**
   * For event-driven runs: wait this long for a held key before giving up, and then fail
   * retryable, so that Lambda delivers the event again later. Absent: refuse at once (a person
   * asked, and is told who holds the key).
   */
  leaseWait?: { ms: number; sleeper: Sleeper };
}

/** How long an event-driven run waits for a held key: another run usually gives it back within seconds. */
export const EVENT_LEASE_WAIT_MS = 10_000;

/** Time `onRotation` keeps, of its invocation, for the validation itself once it holds the key. */
const ROTATION_VALIDATION_RESERVE_MS = 20_000;

/**
 * How long `onRotation` waits for a held key: as long as its invocation allows, less the time the
 * validation takes. A `rotate` run that rotated on demand holds the key while it waits for KMS to
 * record the rotation and validates it, and KMS's event for that rotation arrives meanwhile: a
 * short wait would fail the event, and page whoever watches the function's errors, at every
 * on-demand rotation.
 */
export const rotationEventLeaseWaitMs = (remainingMs: number): number =>
  Math.max(0, remainingMs - ROTATION_VALIDATION_RESERVE_MS);

/** How often a waiting run asks for the lease again. */
const LEASE_POLL_MS = 500;

/** Past the invocation's own deadline, so that a lease never ends while its holder still runs. */
const LEASE_MARGIN_MS = 30_000;

const busy = (held: KeyLease, waitedMs?: number): PreconditionFailedError =>
  waitedMs === undefined
    ? new PreconditionFailedError(
        'key-busy',
        `${held.keyId} is being changed by another run: ${held.holder} holds it until ${held.until.toISOString()} (${held.purpose}); nothing was changed, try again after that`,
      )
    : new PreconditionFailedError(
        'key-busy',
        `${held.keyId} is being changed by another run: ${held.holder} holds it until ${held.until.toISOString()} (${held.purpose}); waited ${Math.round(waitedMs / 1000)} s and changed nothing`,
        { retryable: true },
      );

/** Takes one key's lease, waiting for it when the run may wait; the other run's lease if it never came free. */
const acquireOne = async (lease: KeyLease, deps: LeaseDeps): Promise<PreconditionFailedError | undefined> => {
  const started = deps.clock.now().getTime();
  for (;;) {
    const other = await deps.leases.acquire(lease);
    if (!other) return undefined;
    const waited = deps.clock.now().getTime() - started;
    if (!deps.leaseWait) return busy(other);
    if (waited >= deps.leaseWait.ms) return busy(other, waited);
    await deps.leaseWait.sleeper.sleep(LEASE_POLL_MS);
  }
};

/**
 * Runs `work` holding the lease of every key in `keyIds` (taken in id order, all or none), and
 * gives them back however it ends. A key another run holds refuses the whole run before any
 * change, naming that run and when its lease ends (after `leaseWait`, if given: then retryable).
 * A crashed run's lease ends with its invocation's deadline.
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
      const refused = await acquireOne({ keyId, holder: deps.holder, purpose, until }, deps);
      if (refused) throw refused;
      held.push(keyId);
    }
    return await work();
  } finally {
    await Promise.allSettled(held.map((keyId) => deps.leases.release(keyId, deps.holder)));
  }
};
