import type { KMSClient } from '@aws-sdk/client-kms';
import { describe, expect, it, vi } from 'vitest';
import {
  bareKeyId,
  type KindCalls,
  kmsTrafficCalls,
  recheck,
  startTraffic,
  type TrafficCalls,
  totalsByWorkload,
  type Workload,
} from '../../../scripts/lib/traffic';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (value: string) => new TextEncoder().encode(value);
const tick = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A stand-in for KMS: keys named by id or ARN, aliases that can be moved, data whose proof is
 * `<key>|<message>` (good only under the key that made it), keys that can be disabled, and
 * failures injected by call number.
 */
const fakeKms = () => {
  const aliases: Record<string, string> = { 'alias/a': 'key-1', 'alias/b': 'key-9' };
  const disabled = new Set<string>();
  let callNumber = 0;
  const failOn = new Map<number, string>();
  const falseOn = new Set<number>();
  const resolveKey = (keyId: string) => {
    const key = keyId.startsWith('alias/') ? aliases[keyId] : bareKeyId(keyId);
    if (!key) throw Object.assign(new Error(`${keyId} not found`), { name: 'NotFoundException' });
    if (disabled.has(key)) throw Object.assign(new Error(`${key} is disabled`), { name: 'DisabledException' });
    return key;
  };
  const next = async () => {
    await tick();
    callNumber += 1;
    const failure = failOn.get(callNumber);
    if (failure) throw Object.assign(new Error(failure), { name: failure });
    return callNumber;
  };
  const kind: KindCalls = {
    make: async (keyId, message) => {
      await next();
      const key = resolveKey(keyId);
      return { keyId: `arn:aws:kms:us-east-1:111122223333:key/${key}`, proof: bytes(`${key}|${text(message)}`) };
    },
    check: async (keyId, message, proof) => {
      const number = await next();
      if (falseOn.has(number)) return false;
      return text(proof) === `${resolveKey(keyId)}|${text(message)}`;
    },
  };
  // A ciphertext names its key: it can be checked naming none.
  const ciphertexts: KindCalls = {
    ...kind,
    checkUnnamed: async (message, proof) => {
      await next();
      const [key = '', ...rest] = text(proof).split('|');
      resolveKey(key);
      return rest.join('|') === text(message);
    },
  };
  const calls: TrafficCalls = { 'encrypt-decrypt': ciphertexts, 'sign-verify': kind, mac: kind };
  return { calls, aliases, disabled, failOn, falseOn };
};

const workloads: Workload[] = [
  { name: 'symmetric', kind: 'encrypt-decrypt', alias: 'alias/a' },
  { name: 'signing', kind: 'sign-verify', alias: 'alias/b' },
];

describe('Function: startTraffic', () => {
  it('counts every call per workload and phase, and keeps each piece of data with the key id that made it', async () => {
    const kms = fakeKms();
    const traffic = startTraffic({ calls: kms.calls, workloads, phase: 'before' });
    await traffic.rounds(3);
    traffic.setPhase('during');
    await traffic.rounds(2);
    await traffic.stop();

    const kept = traffic.kept();
    const live = traffic.live();
    for (const { name } of workloads) {
      const keptOf = kept.filter((data) => data.workload === name);
      const liveOf = live.filter((counts) => counts.workload === name);
      expect(keptOf.length).toBeGreaterThanOrEqual(5);
      // A make and a check per round; nothing failed.
      expect(liveOf.reduce((sum, counts) => sum + counts.calls, 0)).toBe(2 * keptOf.length);
      expect(traffic.callsSoFar()[name]).toBe(2 * keptOf.length);
      expect(liveOf.map((counts) => counts.phase).sort()).toEqual(['before', 'during']);
      for (const phase of ['before', 'during']) {
        expect(keptOf.filter((data) => data.phase === phase).length * 2).toBe(
          liveOf.find((counts) => counts.phase === phase)?.calls,
        );
      }
    }
    expect(live.every((counts) => counts.failedCalls === 0 && counts.rejectedAtOnce === 0)).toBe(true);
    expect(new Set(kept.filter((data) => data.workload === 'symmetric').map((data) => bareKeyId(data.keyId)))).toEqual(
      new Set(['key-1']),
    );
    expect(new Set(kept.filter((data) => data.workload === 'signing').map((data) => bareKeyId(data.keyId)))).toEqual(
      new Set(['key-9']),
    );
  });

  it('counts a make that throws as a failed call that keeps nothing, a check that throws as a failed call, and a check that says no as rejected', async () => {
    const kms = fakeKms();
    // One workload, so call numbers are its own: 1 make, 2 check, 3 make (fails: no check),
    // 4 make, 5 check (fails), 6 make, 7 check (says no), ...
    kms.failOn.set(3, 'ThrottlingException');
    kms.failOn.set(5, 'InternalFailure');
    kms.falseOn.add(7);
    const traffic = startTraffic({ calls: kms.calls, workloads: [workloads[0] as Workload], phase: 'p' });
    await traffic.rounds(6);
    await traffic.stop();

    const [counts] = traffic.live();
    const kept = traffic.kept();
    expect(counts).toMatchObject({
      workload: 'symmetric',
      phase: 'p',
      failedCalls: 2,
      errors: { ThrottlingException: 1, InternalFailure: 1 },
      rejectedAtOnce: 1,
    });
    // Every round made one call, plus one check for each piece kept; the failed make kept nothing.
    expect(counts?.calls).toBe(2 * kept.length + 1);
  });

  it('refuses to wait for rounds once stopped, and refuses a wait that stopping leaves undone', async () => {
    const traffic = startTraffic({ calls: fakeKms().calls, workloads, phase: 'p' });
    const pending = traffic.rounds(1_000_000);
    await traffic.stop();
    await expect(pending).rejects.toThrow('traffic stopped before the rounds were done');
    await expect(traffic.rounds(1)).rejects.toThrow('traffic is stopped');
  });
});

describe('Function: startTraffic, reading old data and migrating it', () => {
  it('with rereadKept, checks one earlier piece again by its kept key id each round, in turn, counting a no as rejected on reread', async () => {
    const kms = fakeKms();
    const traffic = startTraffic({
      calls: kms.calls,
      workloads: [workloads[0] as Workload],
      phase: 'p',
      rereadKept: true,
    });
    await traffic.rounds(2);
    // The key moves: what key-1 made is still read by its kept key id, and key-1 answers.
    kms.aliases['alias/a'] = 'key-2';
    await traffic.rounds(4);
    kms.falseOn.clear();
    await traffic.stop();
    const [counts] = traffic.live();
    const kept = traffic.kept();
    // A make, its check and a reread each round.
    expect(counts).toMatchObject({ failedCalls: 0, rejectedAtOnce: 0, rereadRejected: 0 });
    expect(counts?.rereads).toBe(kept.length);
    expect(counts?.calls).toBe(3 * kept.length);
    expect(new Set(kept.map((data) => bareKeyId(data.keyId)))).toEqual(new Set(['key-1', 'key-2']));
  });

  it('counts a reread of data whose key was disabled as a failed call, and one that says no as rejected on reread', async () => {
    const kms = fakeKms();
    const traffic = startTraffic({
      calls: kms.calls,
      workloads: [workloads[0] as Workload],
      phase: 'p',
      rereadKept: true,
    });
    await traffic.rounds(2);
    kms.aliases['alias/a'] = 'key-2';
    kms.disabled.add('key-1');
    await traffic.rounds(4);
    await traffic.stop();
    const [counts] = traffic.live();
    expect(counts?.rereads).toBeGreaterThanOrEqual(6);
    expect(counts?.errors.DisabledException).toBeGreaterThan(0);
    expect(counts?.failedCalls).toBe(counts?.errors.DisabledException);
    expect(counts?.rejectedAtOnce).toBe(0);

    const saying = fakeKms();
    // One workload: 1 make, 2 check, 3 reread (says no), ...
    saying.falseOn.add(3);
    const again = startTraffic({
      calls: saying.calls,
      workloads: [workloads[0] as Workload],
      phase: 'p',
      rereadKept: true,
    });
    await again.rounds(2);
    await again.stop();
    expect(again.live()[0]).toMatchObject({ rejectedAtOnce: 0, rereadRejected: 1, failedCalls: 0 });
  });

  it('migrate: re-makes through the alias every piece the old key made, replaces it with a new piece, and leaves the rest', async () => {
    const kms = fakeKms();
    const traffic = startTraffic({ calls: kms.calls, workloads, phase: 'before' });
    await traffic.rounds(3);
    kms.aliases['alias/a'] = 'key-2';
    await traffic.rounds(2);
    const before = [...traffic.kept()];
    const byKey1 = before.filter((data) => data.workload === 'symmetric' && bareKeyId(data.keyId) === 'key-1');
    expect(byKey1.length).toBeGreaterThanOrEqual(3);
    traffic.setPhase('migration');
    const result = await traffic.migrate('symmetric', 'arn:aws:kms:us-east-1:111122223333:key/key-1');
    await traffic.stop();

    expect(result).toEqual({ migrated: byKey1.length, notMigrated: 0 });
    const after = traffic.kept().slice(0, before.length);
    // Nothing the symmetric workload keeps was made by key-1 any more; each migrated piece keeps its message and phase.
    expect(after.filter((data) => data.workload === 'symmetric' && bareKeyId(data.keyId) === 'key-1')).toEqual([]);
    for (const [at, old] of before.entries()) {
      const now = after[at];
      if (old.workload === 'symmetric' && bareKeyId(old.keyId) === 'key-1') {
        expect(now).not.toBe(old);
        expect(now).toMatchObject({ workload: 'symmetric', phase: old.phase, message: old.message });
        expect(bareKeyId(now?.keyId ?? '')).toBe('key-2');
        expect(text(now?.proof ?? bytes(''))).toBe(`key-2|${text(old.message)}`);
      } else {
        // Data of other keys and workloads is untouched (the very same object).
        expect(now).toBe(old);
      }
    }
    // The copy taken before still holds the old pieces; a check and a make per migrated piece, counted under the phase.
    expect(before.filter((data) => bareKeyId(data.keyId) === 'key-1')).toHaveLength(byKey1.length);
    const migration = traffic.live().find((counts) => counts.workload === 'symmetric' && counts.phase === 'migration');
    expect(migration?.calls).toBeGreaterThanOrEqual(2 * byKey1.length);
    expect(migration?.failedCalls).toBe(0);
  });

  it('migrate: leaves a piece that no longer checks as it was, and counts it', async () => {
    const kms = fakeKms();
    const traffic = startTraffic({ calls: kms.calls, workloads: [workloads[0] as Workload], phase: 'p' });
    await traffic.rounds(3);
    await traffic.stop();
    const before = [...traffic.kept()];
    kms.aliases['alias/a'] = 'key-2';
    kms.disabled.add('key-1');
    expect(await traffic.migrate('symmetric', 'key-1')).toEqual({ migrated: 0, notMigrated: before.length });
    expect(traffic.kept()).toEqual(before);
    await expect(traffic.migrate('nobody', 'key-1')).rejects.toThrow('No workload nobody to migrate');
  });
});

describe('Function: recheck', () => {
  it('after an alias moved: data made before fails through the alias only, as many as were made by another key', async () => {
    const kms = fakeKms();
    const traffic = startTraffic({ calls: kms.calls, workloads, phase: 'before-swap' });
    await traffic.rounds(3);
    kms.aliases['alias/b'] = 'key-10';
    traffic.setPhase('after-swap');
    await traffic.rounds(3);
    await traffic.stop();

    const counts = await recheck({
      calls: kms.calls,
      workloads,
      kept: traffic.kept(),
      targets: { 'alias/a': 'key-1', 'alias/b': 'arn:aws:kms:us-east-1:111122223333:key/key-10' },
      parallel: 3,
    });

    const kept = traffic.kept();
    const signingBefore = counts.find((row) => row.workload === 'signing' && row.phase === 'before-swap');
    // Three rounds of data were made by key-9 before the alias moved; the round under way when it
    // moved may have been made by either key, so per phase the count is what the key ids say.
    expect(signingBefore?.failedByKeptKeyId).toBe(0);
    expect(signingBefore?.failedThroughAlias).toBe(signingBefore?.madeByAnotherKey);
    expect(signingBefore?.failedThroughAlias).toBeGreaterThanOrEqual(3);
    expect(signingBefore?.reasons).toEqual({ 'does-not-verify': signingBefore?.failedThroughAlias });
    const byOldKey = kept.filter((data) => data.workload === 'signing' && bareKeyId(data.keyId) === 'key-9').length;
    const totals = totalsByWorkload(counts, [
      'checked',
      'failedByKeptKeyId',
      'failedThroughAlias',
      'madeByAnotherKey',
      'checkedUnnamed',
      'failedUnnamed',
    ]);
    expect(totals.signing).toEqual({
      checked: kept.filter((data) => data.workload === 'signing').length,
      failedByKeptKeyId: 0,
      failedThroughAlias: byOldKey,
      madeByAnotherKey: byOldKey,
      // A signature does not name its key: nothing is checked naming none.
      checkedUnnamed: 0,
      failedUnnamed: 0,
    });
    expect(totals.symmetric).toEqual({
      checked: kept.filter((data) => data.workload === 'symmetric').length,
      failedByKeptKeyId: 0,
      failedThroughAlias: 0,
      madeByAnotherKey: 0,
      checkedUnnamed: kept.filter((data) => data.workload === 'symmetric').length,
      failedUnnamed: 0,
    });
  });

  it('counts data whose key was disabled as failing by the kept key id, with the error as its reason', async () => {
    const kms = fakeKms();
    const traffic = startTraffic({ calls: kms.calls, workloads: [workloads[0] as Workload], phase: 'p' });
    await traffic.rounds(2);
    await traffic.stop();
    kms.aliases['alias/a'] = 'key-2';
    kms.disabled.add('key-1');

    const [row] = await recheck({ calls: kms.calls, workloads, kept: traffic.kept(), targets: { 'alias/a': 'key-2' } });

    const kept = traffic.kept().length;
    expect(row).toEqual({
      workload: 'symmetric',
      phase: 'p',
      checked: kept,
      failedByKeptKeyId: kept,
      failedThroughAlias: kept,
      madeByAnotherKey: kept,
      checkedUnnamed: kept,
      failedUnnamed: kept,
      reasons: { DisabledException: 2 * kept, 'does-not-verify': kept },
    });
  });

  it('refuses data of a workload it does not know, and an alias with no target given', async () => {
    const kms = fakeKms();
    const data = { workload: 'symmetric', phase: 'p', keyId: 'key-1', message: bytes('m'), proof: bytes('key-1|m') };
    await expect(recheck({ calls: kms.calls, workloads: [], kept: [data], targets: {} })).rejects.toThrow(
      'unknown workload symmetric',
    );
    await expect(recheck({ calls: kms.calls, workloads, kept: [data], targets: {} })).rejects.toThrow(
      'No target given for alias/a',
    );
  });
});

describe('Function: kmsTrafficCalls', () => {
  const clientAnswering = (answer: (command: { constructor: { name: string } }) => unknown) =>
    ({ send: vi.fn(async (command) => answer(command)) }) as unknown as KMSClient;
  const failure = (name: string) => Object.assign(new Error(name), { name });

  it('reads a signature KMS rejects (KMSInvalidSignatureException) and one moto calls invalid (SignatureValid false) alike: does not verify', async () => {
    const rejected = kmsTrafficCalls(
      clientAnswering(() => {
        throw failure('KMSInvalidSignatureException');
      }),
    );
    const invalid = kmsTrafficCalls(clientAnswering(() => ({ SignatureValid: false })));
    const valid = kmsTrafficCalls(clientAnswering(() => ({ SignatureValid: true })));

    expect(await rejected['sign-verify'].check('key-1', bytes('m'), bytes('s'))).toBe(false);
    expect(await invalid['sign-verify'].check('key-1', bytes('m'), bytes('s'))).toBe(false);
    expect(await valid['sign-verify'].check('key-1', bytes('m'), bytes('s'))).toBe(true);
  });

  it('reads a MAC KMS rejects (KMSInvalidMacException) as does not verify', async () => {
    const rejected = kmsTrafficCalls(
      clientAnswering(() => {
        throw failure('KMSInvalidMacException');
      }),
    );
    expect(await rejected.mac.check('key-1', bytes('m'), bytes('s'))).toBe(false);
    expect(
      await kmsTrafficCalls(clientAnswering(() => ({ MacValid: true }))).mac.check('k', bytes('m'), bytes('s')),
    ).toBe(true);
  });

  it('lets every other error through as a failed call', async () => {
    const throttled = kmsTrafficCalls(
      clientAnswering(() => {
        throw failure('ThrottlingException');
      }),
    );
    await expect(throttled['sign-verify'].check('k', bytes('m'), bytes('s'))).rejects.toThrow('ThrottlingException');
    await expect(throttled.mac.check('k', bytes('m'), bytes('s'))).rejects.toThrow('ThrottlingException');
    await expect(throttled['encrypt-decrypt'].check('k', bytes('m'), bytes('c'))).rejects.toThrow(
      'ThrottlingException',
    );
  });

  it('decrypts to the very message, or says no; by the key named, or naming none', async () => {
    const client = clientAnswering(() => ({ Plaintext: bytes('record 1') }));
    const calls = kmsTrafficCalls(client);
    expect(await calls['encrypt-decrypt'].check('k', bytes('record 1'), bytes('c'))).toBe(true);
    expect(await calls['encrypt-decrypt'].check('k', bytes('record 2'), bytes('c'))).toBe(false);
    expect(await calls['encrypt-decrypt'].checkUnnamed?.(bytes('record 1'), bytes('c'))).toBe(true);
    expect(await calls['encrypt-decrypt'].checkUnnamed?.(bytes('record 2'), bytes('c'))).toBe(false);
    const inputs = vi
      .mocked(client.send)
      .mock.calls.map(([command]) => (command as { input: { KeyId?: string } }).input);
    expect(inputs.map((input) => input.KeyId)).toEqual(['k', 'k', undefined, undefined]);
    expect(calls['sign-verify'].checkUnnamed).toBeUndefined();
    expect(calls.mac.checkUnnamed).toBeUndefined();
  });

  it('keeps the key id KMS answered with, and fails a make whose answer has none', async () => {
    const made = await kmsTrafficCalls(
      clientAnswering(() => ({ KeyId: 'arn:aws:kms:us-east-1:111122223333:key/k-2', CiphertextBlob: bytes('c') })),
    )['encrypt-decrypt'].make('alias/a', bytes('m'));
    expect(made.keyId).toBe('arn:aws:kms:us-east-1:111122223333:key/k-2');
    await expect(
      kmsTrafficCalls(clientAnswering(() => ({ Signature: bytes('s') })))['sign-verify'].make('alias/b', bytes('m')),
    ).rejects.toMatchObject({ name: 'IncompleteAnswer' });
  });
});
