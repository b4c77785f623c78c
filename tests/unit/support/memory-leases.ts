import type { Clock, KeyLease, KeyLeases } from '../../../src/domain/ports';

/** Key leases in memory, with the conditional write's rule: taken unless another holder's lease still runs. */
export class MemoryKeyLeases implements KeyLeases {
  readonly held = new Map<string, KeyLease>();
  /** Every call, in order: `acquire <keyId>` or `release <keyId>`. */
  readonly calls: string[] = [];
  /** Every lease granted, as granted. */
  readonly taken: KeyLease[] = [];

  /** Runs once, just before the next acquire is decided: another run's work in between. */
  meanwhile?: () => Promise<void>;

  constructor(private readonly clock: Clock) {}

  async acquire(lease: KeyLease): Promise<KeyLease | undefined> {
    const meanwhile = this.meanwhile;
    this.meanwhile = undefined;
    await meanwhile?.();
    this.calls.push(`acquire ${lease.keyId}`);
    const other = this.held.get(lease.keyId);
    if (other && other.holder !== lease.holder && other.until > this.clock.now()) return { ...other };
    this.held.set(lease.keyId, { ...lease });
    this.taken.push({ ...lease });
    return undefined;
  }

  async release(keyId: string, holder: string): Promise<void> {
    this.calls.push(`release ${keyId}`);
    if (this.held.get(keyId)?.holder === holder) this.held.delete(keyId);
  }
}
