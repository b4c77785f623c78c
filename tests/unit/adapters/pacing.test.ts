import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import type { StandardRetryToken } from '@smithy/types';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runInInvocation } from '../../../src/adapters/invocation';
import {
  type AccountUsage,
  backoffFor,
  FLOOR_SHARE,
  KMS_DEFAULT_QUOTAS,
  PacedRetryStrategy,
  paceKmsCalls,
  quotasFrom,
  ratesFromUsage,
  TokenBucket,
} from '../../../src/adapters/pacing';

describe('Class: TokenBucket', () => {
  it("lets a tenth of a second's worth through at once, then one call per 1/rate seconds", async () => {
    // Prepare: a clock that only moves when the bucket sleeps.
    let now = 0;
    const sleeps: number[] = [];
    const bucket = new TokenBucket(
      40,
      () => now,
      async (ms) => {
        sleeps.push(ms);
        now += ms;
      },
    );

    // Act
    for (let call = 0; call < 8; call += 1) await bucket.take();

    // Assess: 4 (a tenth of 40) immediately, then 4 more at 25 ms intervals.
    expect(sleeps).toEqual([25, 25, 25, 25]);
    expect(now).toBe(100);
  });

  it('paces fractional rates', async () => {
    let now = 0;
    const bucket = new TokenBucket(
      0.5,
      () => now,
      async (ms) => {
        now += ms;
      },
    );
    await bucket.take();
    await bucket.take();
    expect(now).toBe(2000);
  });

  it('stops waiting for a token, with an AbortError, when the signal aborts', async () => {
    // Prepare: the real clock and sleep; the next token is 100 s away.
    const bucket = new TokenBucket(0.01);
    const invocation = new AbortController();
    await bucket.take(invocation.signal);

    // Act
    const waiting = bucket.take(invocation.signal);
    invocation.abort(new Error('the invocation ended'));
    const settled = await Promise.race([
      waiting.then(
        () => 'took a token',
        (error: unknown) => error,
      ),
      delay(5_000, 'still waiting'),
    ]);

    // Assess
    expect(settled).toMatchObject({ name: 'AbortError', cause: invocation.signal.reason });
  });
});

describe('Class: TokenBucket, after a stall', () => {
  it('spends the tokens a stall left, up to one second of them, to catch up', async () => {
    let now = 0;
    const bucket = new TokenBucket(
      10,
      () => now,
      async (ms) => {
        now += ms;
      },
    );
    await bucket.take();

    // The process was not scheduled for 5 s: 10 calls go at once (not 50); the 11th waits until
    // those 10 are a second old, the last second holding 10 already.
    now = 5_000;
    for (let call = 0; call < 10; call += 1) await bucket.take();
    expect(now).toBe(5_000);
    await bucket.take();
    expect(now).toBe(6_000);
  });

  it('never lets the last second hold more than the rate, whatever the tokens', async () => {
    let now = 0;
    const granted: number[] = [];
    const bucket = new TokenBucket(
      10,
      () => now,
      async (ms) => {
        now += ms;
      },
    );
    const take = async () => {
      await bucket.take();
      granted.push(now);
    };
    await take();

    // A stall, then a catch-up burst of 10 at 2 s. At 2.5 s five tokens more are due, but the
    // last second holds 10 calls already: the next call waits until the burst is a second old.
    now = 2_000;
    for (let call = 0; call < 10; call += 1) await take();
    now = 2_500;
    await take();

    expect(granted.at(-1)).toBe(3_000);
    for (const at of granted) {
      expect(granted.filter((other) => other > at - 1000 && other <= at).length).toBeLessThanOrEqual(10);
    }
  });
});

describe('Function: quotasFrom', () => {
  it('takes the documented quotas, scaled by the share the audit may use', () => {
    const quotas = quotasFrom({}, 0.5);
    expect(quotas.ListKeyRotations).toBe(50);
    expect(quotas.DescribeKey).toBe(1000);
    expect(Object.keys(quotas)).toEqual(Object.keys(KMS_DEFAULT_QUOTAS));
  });

  it('applies the overrides loadConfig read, scaled too', () => {
    expect(quotasFrom({ ListKeyRotations: 10, DescribeKey: 200 }, 0.5)).toMatchObject({
      ListKeyRotations: 5,
      DescribeKey: 100,
      ListKeys: 250,
    });
  });
});

describe('Class: TokenBucket, with a backoff (AIMD)', () => {
  /** A bucket at `rate` with the service's backoff, on a clock that moves only when told or when it sleeps. */
  const bucketAt = (rate: number, floor = rate * FLOOR_SHARE) => {
    const clock = { now: 0 };
    const bucket = new TokenBucket(
      rate,
      () => clock.now,
      async (ms) => {
        clock.now += ms;
      },
      backoffFor(rate, floor),
    );
    return { bucket, clock };
  };

  it('slows by 15% on a throttle, once per second however many throttles the burst brings', () => {
    const { bucket, clock } = bucketAt(100);

    bucket.throttled();
    bucket.throttled();
    bucket.throttled();
    expect(bucket.rate()).toBeCloseTo(85);

    clock.now = 1_000;
    bucket.throttled();
    // 85 regained 5 (a twentieth of 100 per second) before this throttle: (85 + 5) x 0.85.
    expect(bucket.rate()).toBeCloseTo(76.5);
  });

  it('never falls below its floor', () => {
    // Prepare: no recovery between throttles, so that only the floor stops the decrease.
    let now = 0;
    const bucket = new TokenBucket(
      100,
      () => now,
      async () => {},
      {
        floor: 10,
        decrease: 0.85,
        recoverPerSecond: 0,
        holdMs: 1_000,
      },
    );
    for (let second = 0; second < 40; second += 1) {
      now = second * 1_000;
      bucket.throttled();
    }
    expect(bucket.rate()).toBe(10);
  });

  it('climbs back additively while no throttle comes, up to the rate it started with, and paces to the rate of the moment', async () => {
    const { bucket, clock } = bucketAt(100);
    bucket.throttled();
    expect(bucket.rate()).toBeCloseTo(85);

    clock.now = 1_000;
    await bucket.take();
    expect(bucket.rate()).toBeCloseTo(90);

    clock.now = 2_000;
    await bucket.take();
    expect(bucket.rate()).toBeCloseTo(95);

    clock.now = 60_000;
    await bucket.take();
    expect(bucket.rate()).toBe(100);

    // Throttled again: once the burst is spent, the next token is 1/85 s away, not 1/100.
    bucket.throttled();
    const sleeps: number[] = [];
    const paced = new TokenBucket(
      100,
      () => clock.now,
      async (ms) => {
        sleeps.push(ms);
        clock.now += ms;
      },
      backoffFor(100, 10),
    );
    paced.throttled();
    for (let call = 0; call < 12; call += 1) await paced.take();
    // The first sleep finishes the last part-token of the burst; the next ones are whole tokens.
    expect(sleeps.slice(1, 3)).toEqual([Math.ceil(1000 / 85), Math.ceil(1000 / 85)]);
  });

  it('keeps its rate on a throttle without a backoff', () => {
    const bucket = new TokenBucket(100, () => 0);
    bucket.throttled();
    expect(bucket.rate()).toBe(100);
  });
});

describe('Function: ratesFromUsage', () => {
  const at = (minute: number) => new Date(Date.parse('2026-12-02T06:00:00Z') + minute * 60_000);

  it('takes its share of what the others leave of the applied quota, by the busiest recent minute', () => {
    const usage: AccountUsage = {
      applied: { ListKeyRotations: 200, DescribeKey: 2000 },
      callsPerMinute: {
        ListKeyRotations: [
          { at: at(0), calls: 1_200 },
          { at: at(1), calls: 6_000 },
        ],
      },
    };

    const rates = ratesFromUsage(usage, {}, 0.9);

    // (200 - 6000/60) x 0.9
    expect(rates.ListKeyRotations).toBeCloseTo(90);
    // Nobody else called DescribeKey: 2000 x 0.9.
    expect(rates.DescribeKey).toBeCloseTo(1800);
    // An API Service Quotas did not list keeps its documented quota.
    expect(rates.ListKeys).toBeCloseTo((KMS_DEFAULT_QUOTAS.ListKeys as number) * 0.9);
    expect(Object.keys(rates)).toEqual(Object.keys(KMS_DEFAULT_QUOTAS));
  });

  it("does not count the audit's own calls as others'", () => {
    const usage: AccountUsage = {
      applied: { ListKeyRotations: 100 },
      callsPerMinute: { ListKeyRotations: [{ at: at(3), calls: 4_800 }] },
    };
    const own = (api: string, minute: number) => (api === 'ListKeyRotations' && minute === at(3).getTime() ? 3_000 : 0);

    // Others: (4800 - 3000) / 60 = 30 a second.
    expect(ratesFromUsage(usage, {}, 1, own).ListKeyRotations).toBeCloseTo(70);
  });

  it('never goes below the floor, however busy the account, and an override caps the quota', () => {
    const busy: AccountUsage = {
      applied: { ListKeyRotations: 100, DescribeKey: 2000 },
      callsPerMinute: { ListKeyRotations: [{ at: at(0), calls: 9_000 }] },
    };

    const rates = ratesFromUsage(busy, { DescribeKey: 500 }, 0.5);

    expect(rates.ListKeyRotations).toBeCloseTo(100 * 0.5 * FLOOR_SHARE);
    expect(rates.DescribeKey).toBeCloseTo(250);
  });
});

describe('Class: PacedRetryStrategy', () => {
  const throttle = { errorType: 'THROTTLING' as const };

  it("retries a throttle after standard mode's throttling backoff, and no burst of throttles empties its retry quota", async () => {
    const strategy = new PacedRetryStrategy(8, () => 0.5);
    const capacity = strategy.getCapacity();

    // A thousand calls throttled at once, each retried: none is refused a retry.
    const first = await Promise.all(
      Array.from({ length: 1_000 }, async () =>
        strategy.refreshRetryTokenForRetry(await strategy.acquireInitialRetryToken(''), throttle),
      ),
    );

    expect(first.every((token) => token.getRetryCount() === 1)).toBe(true);
    expect(strategy.getCapacity()).toBe(capacity);
    // Random 0.5 of min(20 s, 1 s x 2^retries).
    let token: StandardRetryToken = first[0] as StandardRetryToken;
    const delays = [token.getRetryDelay()];
    for (let retry = 1; retry < 7; retry += 1) {
      token = await strategy.refreshRetryTokenForRetry(token, throttle);
      delays.push(token.getRetryDelay());
    }
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    // The eighth attempt was the last.
    await expect(strategy.refreshRetryTokenForRetry(token, throttle)).rejects.toThrow('No retry token available');
  });

  it('leaves every other error to standard mode, which takes from its retry quota', async () => {
    const strategy = new PacedRetryStrategy(3, () => 0);
    const capacity = strategy.getCapacity();

    const token = await strategy.refreshRetryTokenForRetry(await strategy.acquireInitialRetryToken(''), {
      errorType: 'TRANSIENT',
    });

    expect(token.getRetryCount()).toBe(1);
    expect(strategy.getCapacity()).toBeLessThan(capacity);
    await expect(
      strategy.refreshRetryTokenForRetry(await strategy.acquireInitialRetryToken(''), { errorType: 'CLIENT_ERROR' }),
    ).rejects.toThrow();
  });
});

describe('Function: paceKmsCalls', () => {
  let server: Server | undefined;

  afterEach(async () => {
    server?.closeAllConnections();
    if (server) await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  /** A KMS endpoint that throttles the first `throttles` DescribeKey calls, then answers. */
  const kmsThrottling = async (throttles: number) => {
    let received = 0;
    server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        received += 1;
        if (received <= throttles) {
          response.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
          response.end(JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }));
          return;
        }
        response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        response.end(JSON.stringify({ KeyMetadata: { KeyId: 'k', Arn: 'arn:aws:kms:us-east-1:111122223333:key/k' } }));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = new KMSClient({
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 8,
      retryStrategy: new PacedRetryStrategy(8, () => 0),
    });
    return { client, received: () => received };
  };

  const usageOf = (usage: AccountUsage) => async () => ({ read: vi.fn(async () => usage) });

  it("paces each API to its share of the account's headroom, read once per invocation", async () => {
    const { client } = await kmsThrottling(0);
    const usage: AccountUsage = {
      applied: { DescribeKey: 1000 },
      callsPerMinute: { DescribeKey: [{ at: new Date('2026-12-02T06:00:00Z'), calls: 30_000 }] },
    };
    const source = { read: vi.fn(async (_apis: readonly string[], _now: Date) => usage) };
    const paced = paceKmsCalls(client, { overrides: {}, share: 0.9, usage: async () => source });

    const invocation = new AbortController();
    await runInInvocation(invocation.signal, async () => {
      await client.send(new DescribeKeyCommand({ KeyId: 'k' }));
      await client.send(new DescribeKeyCommand({ KeyId: 'k' }));
    });

    // (1000 - 30000/60) x 0.9
    expect((await paced.ratesIn(invocation.signal)).DescribeKey).toBeCloseTo(450);
    expect(source.read).toHaveBeenCalledTimes(1);
    expect(source.read.mock.calls[0]?.[0]).toEqual(Object.keys(KMS_DEFAULT_QUOTAS));

    // The next invocation reads again.
    const next = new AbortController();
    await runInInvocation(next.signal, () => client.send(new DescribeKeyCommand({ KeyId: 'k' })));
    expect(source.read).toHaveBeenCalledTimes(2);
  });

  it('falls back to the fixed share of the documented quotas when the usage cannot be read, and says why once', async () => {
    const { client } = await kmsThrottling(0);
    const log = { info: vi.fn(), warn: vi.fn(), error: vi.fn() };
    const refused = Object.assign(new Error('not authorized to perform: cloudwatch:GetMetricData'), {
      name: 'AccessDenied',
    });
    const paced = paceKmsCalls(client, {
      overrides: { ListKeyRotations: 50 },
      share: 0.9,
      usage: async () => ({
        read: async () => {
          throw refused;
        },
      }),
      log,
    });

    for (const _ of [1, 2]) {
      const invocation = new AbortController();
      await runInInvocation(invocation.signal, () => client.send(new DescribeKeyCommand({ KeyId: 'k' })));
      expect(await paced.ratesIn(invocation.signal)).toEqual(quotasFrom({ ListKeyRotations: 50 }, 0.9));
    }
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(log.warn.mock.calls[0]?.[1]).toMatchObject({ reason: expect.stringContaining('AccessDenied') });
  });

  it('slows only the throttled API, and paces every retry too', async () => {
    const { client, received } = await kmsThrottling(3);
    const paced = paceKmsCalls(client, {
      overrides: {},
      share: 1,
      usage: usageOf({ applied: { DescribeKey: 1000, ListKeys: 500 }, callsPerMinute: {} }),
    });

    const invocation = new AbortController();
    await runInInvocation(invocation.signal, () => client.send(new DescribeKeyCommand({ KeyId: 'k' })));

    // Three throttles in one burst: one decrease. ListKeys keeps its rate.
    expect(received()).toBe(4);
    const rates = await paced.ratesIn(invocation.signal);
    expect(rates.DescribeKey).toBeLessThan(1000 * 0.86);
    expect(rates.DescribeKey).toBeGreaterThan(1000 * 0.84);
    expect(rates.ListKeys).toBe(500);
    expect(paced.attemptsIn(invocation.signal).DescribeKey).toBe(4);
  });
});
