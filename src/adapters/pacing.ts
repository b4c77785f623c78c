import { setTimeout as delay } from 'node:timers/promises';
import { KMSClient, type KMSClientConfig, type ServiceInputTypes, type ServiceOutputTypes } from '@aws-sdk/client-kms';
import { MAXIMUM_RETRY_DELAY, Retry, StandardRetryStrategy } from '@smithy/core/retry';
import type { FinalizeRequestMiddleware, RetryErrorInfo, RetryStrategyV2, StandardRetryToken } from '@smithy/types';
import type { Log } from '../domain/ports';
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

/** How a bucket slows on a throttle of its API and speeds up again (AIMD). */
export interface Backoff {
  /** The rate never falls below this (requests per second). */
  floor: number;
  /** A throttle multiplies the rate by this (at most once per `holdMs`, so that one burst counts once). */
  decrease: number;
  /** Requests per second regained per second without a throttle, up to the bucket's ceiling. */
  recoverPerSecond: number;
  holdMs: number;
}

/** A bucket's backoff: ×0.85 per throttle, at most once a second; a twentieth of its ceiling regained per second. */
export const backoffFor = (ceiling: number, floor: number): Backoff => ({
  floor: Math.min(floor, ceiling),
  decrease: 0.85,
  recoverPerSecond: ceiling / 20,
  holdMs: 1_000,
});

/**
 * A token bucket: `rate` tokens a second, letting a tenth of a second's worth through at once.
 * Tokens that a stall of the process left unspent (a busy host, a long garbage collection) are
 * kept, up to one second's worth, and spent to catch up, but never so that the last second
 * (sliding, so any one-second window, how KMS counts) sees more than `rate` calls. A wait for a
 * token ends, with an `AbortError`, as soon as the caller's signal aborts. With a `backoff`,
 * `throttled()` lowers the rate multiplicatively (never below the floor) and it climbs back
 * additively, up to the rate it started with, while no throttle comes.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private current: number;
  private lastDecrease = Number.NEGATIVE_INFINITY;
  /** When the calls of the last second were let through, oldest first from `oldest`. */
  private readonly granted: number[] = [];
  private oldest = 0;

  constructor(
    private readonly ceiling: number,
    private readonly now: () => number = () => performance.now(),
    private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void> = (ms, signal) =>
      delay(ms, undefined, { signal }),
    private readonly backoff?: Backoff,
  ) {
    this.current = ceiling;
    this.tokens = this.capacity();
    this.last = now();
  }

  /** The rate the bucket paces to now. */
  rate(): number {
    return this.current;
  }

  private capacity(): number {
    return Math.max(1, this.current / 10);
  }

  /** Calls the last (sliding) second may hold. */
  private perSecond(): number {
    return Math.max(1, Math.floor(this.current));
  }

  /** Refills the tokens for the time passed (one second's worth at most), and regains rate for it (additive increase). */
  private advance(now: number): void {
    const seconds = (now - this.last) / 1000;
    this.tokens = Math.min(Math.max(this.capacity(), this.current), this.tokens + seconds * this.current);
    if (this.backoff && this.current < this.ceiling) {
      this.current = Math.min(this.ceiling, this.current + seconds * this.backoff.recoverPerSecond);
    }
    this.last = now;
  }

  /** A call of this bucket's API was throttled: slow down (multiplicative decrease), once per hold. */
  throttled(): void {
    if (!this.backoff) return;
    const now = this.now();
    this.advance(now);
    if (now - this.lastDecrease < this.backoff.holdMs) return;
    this.lastDecrease = now;
    this.current = Math.max(this.backoff.floor, this.current * this.backoff.decrease);
    this.tokens = Math.min(this.tokens, this.capacity());
  }

  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = this.now();
      this.advance(now);
      while (this.oldest < this.granted.length && (this.granted[this.oldest] as number) <= now - 1000) this.oldest += 1;
      if (this.oldest > 1024) {
        this.granted.splice(0, this.oldest);
        this.oldest = 0;
      }
      const lastSecondFull = this.granted.length - this.oldest >= this.perSecond();
      if (this.tokens >= 1 && !lastSecondFull) {
        this.tokens -= 1;
        this.granted.push(now);
        return;
      }
      const untilToken = this.tokens >= 1 ? 0 : ((1 - this.tokens) / this.current) * 1000;
      const untilRoom = lastSecondFull ? (this.granted[this.oldest] as number) + 1000 - now : 0;
      await this.sleep(Math.max(1, Math.ceil(Math.max(untilToken, untilRoom))), signal);
    }
  }
}

/** The documented quotas with the stack's overrides (validated by `loadConfig`), scaled by the share the audit may use. */
export const quotasFrom = (overrides: Readonly<Record<string, number>>, share: number): Record<string, number> =>
  Object.fromEntries(Object.entries({ ...KMS_DEFAULT_QUOTAS, ...overrides }).map(([api, rate]) => [api, rate * share]));

/** However busy the account, an API is paced to at least this share of the audit's part of its quota. */
export const FLOOR_SHARE = 0.1;

/** What the account's own figures say: its applied quotas, and what its callers used of them lately. */
export interface AccountUsage {
  /** Applied quota per API, requests per second (Service Quotas, `<API> request rate`). */
  applied: Readonly<Record<string, number>>;
  /** Calls per API in each of the last minutes (CloudWatch `AWS/Usage` `CallCount`, Sum per minute). */
  callsPerMinute: Readonly<Record<string, readonly { at: Date; calls: number }[]>>;
}

/** Reads an account-Region's usage; throws when a read is refused or fails. */
export interface AccountUsageSource {
  read(apis: readonly string[], now: Date): Promise<AccountUsage>;
}

/**
 * The rate per API the audit may take: (applied quota − what others called per second in the
 * busiest recent minute) × `share`, never below `FLOOR_SHARE` of quota × share. Others' calls are
 * the minute's count less the audit's own calls in that minute (`ownCalls`). An override
 * (auditRateLimits) caps the quota; an API Service Quotas did not name keeps its documented quota.
 */
export const ratesFromUsage = (
  usage: AccountUsage,
  overrides: Readonly<Record<string, number>>,
  share: number,
  ownCalls: (api: string, minuteStart: number) => number = () => 0,
): Record<string, number> =>
  Object.fromEntries(
    Object.entries(KMS_DEFAULT_QUOTAS).map(([api, documented]) => {
      const applied = usage.applied[api] ?? documented;
      const quota = overrides[api] === undefined ? applied : Math.min(applied, overrides[api] as number);
      const othersPerMinute = Math.max(
        0,
        ...(usage.callsPerMinute[api] ?? []).map(({ at, calls }) => calls - ownCalls(api, at.getTime())),
      );
      const floor = quota * share * FLOOR_SHARE;
      return [api, Math.max(floor, (quota - othersPerMinute / 60) * share)];
    }),
  );

/** How the audit's KMS client is paced: the fixed share of the documented quotas, or the account's own headroom where it can be read. */
export interface PacingPlan {
  /** auditRateLimits: per-API quotas the stack states (loadConfig validated them). */
  overrides: Readonly<Record<string, number>>;
  /** auditQuotaShare. */
  share: number;
  /** The account's usage; its client made on first use. Without it, or when a read fails, the fixed share applies. */
  usage?: () => Promise<AccountUsageSource>;
  log?: Log;
  now?: () => number;
}

const MINUTE_MS = 60_000;

/** Counts a client's own successful calls per API and minute, for the last few minutes. */
class OwnCalls {
  private readonly perMinute = new Map<string, Map<number, number>>();

  record(api: string, at: number): void {
    const minute = Math.floor(at / MINUTE_MS) * MINUTE_MS;
    const counts = this.perMinute.get(api) ?? new Map<number, number>();
    counts.set(minute, (counts.get(minute) ?? 0) + 1);
    for (const old of counts.keys()) if (old < minute - 10 * MINUTE_MS) counts.delete(old);
    this.perMinute.set(api, counts);
  }

  in(api: string, minuteStart: number): number {
    return this.perMinute.get(api)?.get(minuteStart) ?? 0;
  }
}

const apiOf = (commandName: unknown): string => String(commandName ?? '').replace(/Command$/, '');

const isThrottle = (error: unknown): boolean =>
  (error as { name?: string } | undefined)?.name === 'ThrottlingException' ||
  (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode === 429;

/** What the pacing of one client looks like in an invocation (`undefined`: outside any). */
export interface PacedCalls {
  /** Each API's rate now. */
  ratesIn(invocation?: AbortSignal): Promise<Record<string, number>>;
  /** Tokens taken per API: every attempt, retries included. */
  attemptsIn(invocation?: AbortSignal): Record<string, number>;
}

/**
 * Paces every attempt of every KMS call of `client` (retries included: the pacing sits after the
 * SDK's retry step) to its API's bucket. The buckets' rates are set once per invocation, at its
 * first call: from the account's headroom when `plan.usage` reads it, otherwise (or when a read
 * fails, logged once with why) from the fixed share of the documented quotas. A throttle of an
 * API slows that API's bucket alone (`TokenBucket.throttled`). A call still waiting for its token
 * when its invocation ends is cancelled there.
 */
export const paceKmsCalls = (client: KMSClient, plan: PacingPlan): PacedCalls => {
  const now = plan.now ?? (() => Date.now());
  const own = new OwnCalls();
  const fixed = quotasFrom(plan.overrides, plan.share);
  let source: Promise<AccountUsageSource> | undefined;
  let warned = false;
  const perInvocation = new WeakMap<object, Promise<Map<string, TokenBucket>>>();
  const attempts = new WeakMap<object, Record<string, number>>();
  const outside = {};

  const ratesNow = async (): Promise<Record<string, number>> => {
    if (!plan.usage) return fixed;
    try {
      source ??= plan.usage();
      const usage = await (await source).read(Object.keys(KMS_DEFAULT_QUOTAS), new Date(now()));
      return ratesFromUsage(usage, plan.overrides, plan.share, (api, minute) => own.in(api, minute));
    } catch (error) {
      if (!warned) {
        warned = true;
        plan.log?.warn(
          "Audit pacing: the account's KMS usage or quotas could not be read; pacing to the fixed share of the documented quotas",
          {
            reason: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
            share: plan.share,
          },
        );
      }
      return fixed;
    }
  };

  const bucketsFor = (invocation: object): Promise<Map<string, TokenBucket>> => {
    let buckets = perInvocation.get(invocation);
    if (!buckets) {
      buckets = ratesNow().then(
        (rates) =>
          new Map(
            Object.entries(rates).map(([api, rate]) => [
              api,
              new TokenBucket(rate, undefined, undefined, backoffFor(rate, (fixed[api] ?? rate) * FLOOR_SHARE)),
            ]),
          ),
      );
      perInvocation.set(invocation, buckets);
    }
    return buckets;
  };

  const pacing: FinalizeRequestMiddleware<ServiceInputTypes, ServiceOutputTypes> = (next, context) => async (args) => {
    const api = apiOf(context.commandName);
    const signal = invocationSignal();
    const bucket = (await bucketsFor(signal ?? outside)).get(api);
    await bucket?.take(signal);
    const taken = attempts.get(signal ?? outside) ?? {};
    taken[api] = (taken[api] ?? 0) + 1;
    attempts.set(signal ?? outside, taken);
    try {
      const output = await next(args);
      own.record(api, now());
      return output;
    } catch (error) {
      if (isThrottle(error)) bucket?.throttled();
      else own.record(api, now());
      throw error;
    }
  };
  client.middlewareStack.addRelativeTo(pacing, {
    relation: 'after',
    toMiddleware: 'retryMiddleware',
    name: 'kmsRotationPacing',
  });
  return {
    ratesIn: async (invocation) =>
      Object.fromEntries([...(await bucketsFor(invocation ?? outside))].map(([api, bucket]) => [api, bucket.rate()])),
    attemptsIn: (invocation) => ({ ...attempts.get(invocation ?? outside) }),
  };
};

/**
 * The SDK's standard retry mode, except that a throttle costs nothing from its retry quota. The
 * standard mode takes 5 of its 500 tokens per throttled retry (14 per other retry) and gives them
 * back only when that retry succeeds: a burst of about a hundred throttles in flight at once would
 * empty it, and every call after that would fail at its first error, for the rest of the client's
 * life. Here a throttled call is retried after standard mode's throttling backoff (random up to
 * min(20 s, 1 s × 2^retries)), up to `maxAttempts` attempts, without touching the quota; the
 * buckets (`paceKmsCalls`) are what slows the audit. Every other error goes to standard mode as is.
 */
export class PacedRetryStrategy implements RetryStrategyV2 {
  readonly mode = 'standard';
  private readonly standard: StandardRetryStrategy;

  constructor(
    private readonly attempts: number,
    private readonly random: () => number = Math.random,
  ) {
    this.standard = new StandardRetryStrategy(attempts);
  }

  acquireInitialRetryToken(scope: string): Promise<StandardRetryToken> {
    return this.standard.acquireInitialRetryToken(scope);
  }

  async refreshRetryTokenForRetry(token: StandardRetryToken, errorInfo: RetryErrorInfo): Promise<StandardRetryToken> {
    if (errorInfo.errorType !== 'THROTTLING') return this.standard.refreshRetryTokenForRetry(token, errorInfo);
    const retries = token.getRetryCount();
    if (retries + 1 >= this.attempts) throw new Error('No retry token available');
    const wait = Math.floor(this.random() * Math.min(Retry.throttlingDelay() * 2 ** retries, MAXIMUM_RETRY_DELAY));
    return { getRetryCount: () => retries + 1, getRetryDelay: () => wait, getRetryCost: () => 0 };
  }

  recordSuccess(token: StandardRetryToken): void {
    this.standard.recordSuccess(token);
  }

  /** What is left of standard mode's retry quota. */
  getCapacity(): number {
    return this.standard.getCapacity();
  }
}

/** The audit's KMS client: standard retries that throttles do not exhaust, and every attempt paced by `plan`. */
export const pacedKmsClient = (options: KMSClientConfig, plan: PacingPlan, maxAttempts = 8): KMSClient => {
  const client = new KMSClient({ ...options, maxAttempts, retryStrategy: new PacedRetryStrategy(maxAttempts) });
  paceKmsCalls(client, plan);
  return client;
};

/**
 * The account-Region's KMS usage, read through the CloudWatch and Service Quotas clients made
 * with `options()` (the function's own, or a member role's credentials). Neither client nor its
 * adapter is loaded before the first read: they cost the audit's cold start nothing.
 */
export const accountUsageVia =
  (options: () => object): (() => Promise<AccountUsageSource>) =>
  () =>
    Promise.all([
      import('@aws-sdk/client-cloudwatch'),
      import('@aws-sdk/client-service-quotas'),
      import('./kms-usage'),
    ]).then(
      ([{ CloudWatchClient }, { ServiceQuotasClient }, { CloudWatchKmsUsage }]) =>
        new CloudWatchKmsUsage(new CloudWatchClient(options()), new ServiceQuotasClient(options())),
    );
