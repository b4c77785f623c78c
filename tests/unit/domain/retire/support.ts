import { PreconditionFailedError } from '../../../../src/domain/errors';
import type { KeyDescription, Notification, Tags } from '../../../../src/domain/model';
import type { KeyReader, Notifier, TaggedKeyFinder } from '../../../../src/domain/ports';
import type {
  KeyLastUsage,
  KeyRetirement,
  RetireDeps,
  RetireSettings,
} from '../../../../src/domain/retire-predecessors';
import { MemoryKeyLeases } from '../../support/memory-leases';

export const DAY = 86_400_000;
export const T0 = new Date('2026-01-01T00:00:00Z');

interface FakeKey {
  state: string;
  tags: Record<string, string>;
  usage: KeyLastUsage;
  deletionDate?: Date;
}

/**
 * KMS as the retirement sees it, in memory: keys with state, tags, aliases and last use, with
 * KMS's state rules for the calls it makes (DisableKey on a pending-deletion key, EnableKey on
 * one, are refused as KMS refuses them). Every change is recorded in `changes`.
 */
export class RetireWorld implements KeyReader, KeyRetirement, TaggedKeyFinder, Notifier {
  readonly keys = new Map<string, FakeKey>();
  readonly aliases = new Map<string, string>();
  readonly changes: string[] = [];
  readonly published: Notification[] = [];
  now = new Date(T0);
  /** Fails the next notification once: a crash after the KMS call. */
  failNextPublish = false;

  key(keyId: string): FakeKey {
    const key = this.keys.get(keyId);
    if (!key) throw new PreconditionFailedError('key-not-found', `${keyId} not found`);
    return key;
  }

  /** An alias-swap finished `daysAgo` ago: predecessor retired, successor active, lineage both ways. */
  swapped(predecessor: string, successor: string, daysAgo: number, rotationId = `rot-${predecessor}`): void {
    const at = new Date(this.now.getTime() - daysAgo * DAY).toISOString();
    this.keys.set(predecessor, {
      state: 'Enabled',
      tags: {
        'kms-rotation:state': 'retired',
        'kms-rotation:managed': 'false',
        'kms-rotation:successor': successor,
        'kms-rotation:rotation-id': rotationId,
      },
      usage: { trackingStartDate: new Date('2025-01-01T00:00:00Z') },
    });
    this.keys.set(successor, {
      state: 'Enabled',
      tags: {
        'kms-rotation:state': 'active',
        'kms-rotation:managed': 'true',
        'kms-rotation:predecessor': predecessor,
        'kms-rotation:rotation-id': rotationId,
        'kms-rotation:rotated-at': at,
      },
      usage: {},
    });
  }

  advance(days: number): void {
    this.now = new Date(this.now.getTime() + days * DAY);
  }

  usedAt(keyId: string, at: Date): void {
    this.key(keyId).usage = { ...this.key(keyId).usage, lastUsedAt: at, operation: 'Decrypt' };
  }

  // KeyReader
  async describeKey(keyRef: string): Promise<KeyDescription> {
    const key = this.key(keyRef);
    return {
      keyId: keyRef,
      arn: `arn:aws:kms:eu-west-1:111122223333:key/${keyRef}`,
      keyState: key.state,
      deletionDate: key.deletionDate,
    };
  }
  async listTags(keyId: string): Promise<Tags> {
    return { ...this.key(keyId).tags };
  }
  async listAliasesOf(keyId: string) {
    return [...this.aliases]
      .filter(([, target]) => target === keyId)
      .map(([aliasName, targetKeyId]) => ({ aliasName, targetKeyId }));
  }
  async getRotationStatus(): Promise<never> {
    throw new Error('not used by retire');
  }
  async listRotations(): Promise<never> {
    throw new Error('not used by retire');
  }

  // KeyRetirement
  async getKeyLastUsage(keyId: string): Promise<KeyLastUsage> {
    return { ...this.key(keyId).usage };
  }
  async disableKey(keyId: string): Promise<void> {
    const key = this.key(keyId);
    if (key.state === 'PendingDeletion')
      throw new PreconditionFailedError('key-pending-deletion', 'KMSInvalidStateException');
    key.state = 'Disabled';
    this.changes.push(`DisableKey ${keyId}`);
  }
  async enableKey(keyId: string): Promise<void> {
    const key = this.key(keyId);
    if (key.state === 'PendingDeletion')
      throw new PreconditionFailedError('key-pending-deletion', 'KMSInvalidStateException');
    key.state = 'Enabled';
    this.changes.push(`EnableKey ${keyId}`);
  }
  async scheduleKeyDeletion(keyId: string, days: number): Promise<Date | undefined> {
    const key = this.key(keyId);
    key.state = 'PendingDeletion';
    key.deletionDate = new Date(this.now.getTime() + days * DAY);
    this.changes.push(`ScheduleKeyDeletion ${keyId} ${days}`);
    return key.deletionDate;
  }
  async cancelKeyDeletion(keyId: string): Promise<void> {
    const key = this.key(keyId);
    key.state = 'Disabled';
    key.deletionDate = undefined;
    this.changes.push(`CancelKeyDeletion ${keyId}`);
  }
  async tagKey(keyId: string, tags: Readonly<Record<string, string>>): Promise<void> {
    Object.assign(this.key(keyId).tags, tags);
    this.changes.push(
      `TagResource ${keyId} ${Object.entries(tags)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  }

  // TaggedKeyFinder
  async keysTagged(tagKey: string, tagValue: string) {
    return [...this.keys]
      .filter(([, key]) => key.tags[tagKey] === tagValue)
      .map(([keyId, key]) => ({ keyId, tags: { ...key.tags } }));
  }

  // Notifier
  async publish(notification: Notification): Promise<void> {
    if (this.failNextPublish) {
      this.failNextPublish = false;
      throw new Error('SNS unavailable');
    }
    this.published.push(notification);
  }

  deps(settings: Partial<RetireSettings> = {}): RetireDeps {
    const clock = { now: () => new Date(this.now) };
    return {
      keys: this,
      retirement: this,
      directory: this,
      notifier: this,
      clock,
      log: { info: () => {}, warn: () => {}, error: () => {} },
      location: { partition: 'aws', account: '111122223333', region: 'eu-west-1' },
      settings: { mode: 'enforce', disableAfterDays: 30, deleteAfterDays: 60, ...settings },
      leases: new MemoryKeyLeases(clock),
      holder: 'retire test-request',
      remainingMs: () => 60_000,
    };
  }
}
