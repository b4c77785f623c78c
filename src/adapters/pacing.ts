import { setTimeout as delay } from 'node:timers/promises';
import type { KMSClient } from '@aws-sdk/client-kms';
import { invocationSignal } from './invocation';

/**
 * KMS request quotas per API, requests per second per account and Region
 * (the AWS defaults: docs/kms-facts.md#request-quotas). Cryptographic calls share a larger pool.
 */
export const KMS_DEFAULT_QUOTAS: Readonly<Record<string, number>> = {
  CancelKeyDeletion: 5,
  CreateAlias: 5,
  CreateKey: 5,
  DeleteAlias: 15,
  DescribeKey: 2000,
  DisableKey: 5,
  DisableKeyRotation: 5,
  EnableKey: 5,
  EnableKeyRotation: 15,
  GetKeyPolicy: 1000,
  GetKeyRotationStatus: 1000,
  GetPublicKey: 2000,
  ListAliases: 500,
  ListKeyRotations: 100,
  ListKeys: 500,
  ListResourceTags: 2000,
  PutKeyPolicy: 15,
  RotateKeyOnDemand: 5,
  TagResource: 10,
  UntagResource: 5,
  UpdateAlias: 5,
};

/**
 * A token bucket: `rate` tokens a second, holding at most a tenth of a second's worth, so
 * that no one-second window (how KMS counts) ever sees much more than `rate` calls. A wait
 * for a token ends, with an `AbortError`, as soon as the caller's signal aborts.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly now: () => number = () => performance.now(),
    private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void> = (ms, signal) =>
      delay(ms, undefined, { signal }),
  ) {
    this.tokens = this.capacity();
    this.last = now();
  }

  private capacity(): number {
    return Math.max(1, this.rate / 10);
  }

  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = this.now();
      this.tokens = Math.min(this.capacity(), this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await this.sleep(Math.ceil(((1 - this.tokens) / this.rate) * 1000), signal);
    }
  }
}

/** The documented quotas with the stack's overrides (validated by `loadConfig`), scaled by the share the audit may use. */
export const quotasFrom = (overrides: Readonly<Record<string, number>>, share: number): Record<string, number> =>
  Object.fromEntries(Object.entries({ ...KMS_DEFAULT_QUOTAS, ...overrides }).map(([api, rate]) => [api, rate * share]));

/**
 * Paces every KMS call of `client` to its API's rate, before the SDK sends it; the SDK's
 * adaptive retry absorbs the throttling that other callers of the account may still cause.
 * A call still waiting for its token when its invocation ends is cancelled there.
 */
export const paceKmsCalls = (client: KMSClient, ratesPerSecond: Readonly<Record<string, number>>): void => {
  const buckets = new Map(Object.entries(ratesPerSecond).map(([api, rate]) => [api, new TokenBucket(rate)]));
  client.middlewareStack.add(
    (next, context) => async (args) => {
      await buckets.get(String(context.commandName ?? '').replace(/Command$/, ''))?.take(invocationSignal());
      return next(args);
    },
    { step: 'initialize', name: 'kmsRotationPacing' },
  );
};
