import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { KMS_DEFAULT_QUOTAS, quotasFrom, TokenBucket } from '../../../src/adapters/pacing';

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
