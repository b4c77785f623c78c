import { isCryptographicOperation } from '../../../src/domain/kms-operations';
import type { ApiGap } from '../aws-proxy';
import { keyIdFrom, motoKms } from './moto-kms';

/** What GetKeyLastUsage answers for one key (KMS API Reference, GetKeyLastUsage). */
export interface RecordedUsage {
  lastUsedAt?: Date;
  operation?: string;
  /** Seeded: when "KMS began tracking" this key; otherwise the later of the gap's start and the key's creation. */
  trackingStartDate?: Date;
}

export interface LastUsageGap extends ApiGap {
  /** Sets what GetKeyLastUsage says of a key, as if KMS had recorded it (a use long ago, tracking that began late). */
  seed(keyId: string, usage: RecordedUsage): void;
  /** What is recorded for a key now. */
  usageOf(keyId: string): RecordedUsage | undefined;
}

const seconds = (date: Date): number => date.getTime() / 1000;

/**
 * GetKeyLastUsage, which moto 5 does not implement (docs/kms-facts.md#moto). Every successful
 * cryptographic call answered through the proxy is recorded for its key (the key id KMS's answer
 * names: `KeyId` of Encrypt, Decrypt, Sign, ...), with the operation and the time; GetKeyLastUsage
 * answers from that record, with `TrackingStartDate` the later of when the gap started (as KMS's
 * tracking began at some date) and the key's creation, or what a test seeded. A failed call is
 * not a use (KMS records successful operations only). Put it after `keyStateGap`, whose refusals
 * are then never taken for uses.
 */
export const lastUsageGap = (opts: { now?: () => Date; trackingStartedAt?: Date } = {}): LastUsageGap => {
  const now = opts.now ?? (() => new Date());
  const trackingStartedAt = opts.trackingStartedAt ?? now();
  const usage = new Map<string, RecordedUsage>();
  return {
    seed(keyId, recorded) {
      usage.set(keyId, { ...usage.get(keyId), ...recorded });
    },
    usageOf(keyId) {
      const recorded = usage.get(keyId);
      return recorded ? { ...recorded } : undefined;
    },
    async answer({ api, body, region, target }) {
      if (api !== 'GetKeyLastUsage') return undefined;
      const { KeyId } = JSON.parse(body) as { KeyId?: string };
      const described = await motoKms(target, region ?? 'us-east-1', 'DescribeKey', { KeyId });
      const metadata = described.body.KeyMetadata as { KeyId?: string; CreationDate?: number } | undefined;
      if (described.status !== 200 || !metadata?.KeyId) {
        return { status: described.status || 400, body: described.body };
      }
      const recorded = usage.get(metadata.KeyId) ?? {};
      const created = new Date((metadata.CreationDate ?? 0) * 1000);
      const tracking = recorded.trackingStartDate ?? new Date(Math.max(trackingStartedAt.getTime(), created.getTime()));
      return {
        body: {
          KeyId: metadata.KeyId,
          KeyLastUsage: recorded.lastUsedAt
            ? {
                Operation: recorded.operation,
                Timestamp: seconds(recorded.lastUsedAt),
                CloudTrailEventId: `proxy-${metadata.KeyId}-${recorded.lastUsedAt.getTime()}`,
              }
            : {},
          TrackingStartDate: seconds(tracking),
          KeyCreationDate: metadata.CreationDate,
        },
      };
    },
    amend({ api }, answer) {
      if (!isCryptographicOperation(api) || answer.status !== 200) return undefined;
      try {
        const keyId = keyIdFrom((JSON.parse(answer.body) as { KeyId?: unknown }).KeyId);
        if (keyId) usage.set(keyId, { ...usage.get(keyId), lastUsedAt: now(), operation: api });
      } catch {
        // Not JSON: nothing to record.
      }
      return undefined;
    },
  };
};
