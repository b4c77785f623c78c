import { DescribeKeyCommand, KMSClient, ListKeyRotationsCommand, TagResourceCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsProxy, startAwsProxy } from '../../scripts/lib/aws-proxy';
import { emulatorKeys } from '../../scripts/lib/emulator-keys';
import { invokeBundled } from '../../scripts/lib/invoke';
import { keyStateGap } from '../../scripts/lib/kms-gaps/key-state';
import { type LastUsageGap, lastUsageGap } from '../../scripts/lib/kms-gaps/last-usage';
import type { DeployedStack } from '../../scripts/lib/stack';
import {
  bareKeyId,
  type KeptData,
  kmsTrafficCalls,
  type LiveCounts,
  type RecheckCounts,
  recheck,
  startTraffic,
  type Traffic,
  type TrafficCalls,
  totalsByWorkload,
  type Workload,
} from '../../scripts/lib/traffic';
import { deployTestStack, type TestStack } from './support/deployed-stack';

/**
 * Zero downtime, proven (docs/rotate.md#zero-downtime-proven). Client traffic runs without
 * pause through every phase below, in order, against the deployed stack in moto server: encrypt
 * and decrypt, sign and verify, generate and verify MACs, each through its alias, each piece of
 * data kept with the key id KMS said made it. After each phase every piece kept so far is checked
 * again, by that key id and through the alias (and each ciphertext naming no key, as it names
 * its own).
 *
 * What moto can show: RotateKeyOnDemand in moto records a rotation but does not change the key
 * material (docs/kms-facts.md#moto), so the on-demand phase proves that traffic through the alias
 * goes on without a failed call while `rotate` rotates and validates, and that the key id clients
 * keep stays the same; that data encrypted under the old material decrypts under the new is
 * KMS's own guarantee, shown in a real account by `selfTest`'s canary (docs/self-test.md).
 *
 * The retirement phases run the deployed `retire` function (retireMode=enforce, 7-day waits).
 * Every client call goes through the loopback proxy with the two gaps moto lacks: key-state
 * checks (a disabled key refuses crypto, as in KMS) and GetKeyLastUsage (every successful call
 * recorded as a use of the key that answered it). Time is moved as in retire.int.test.ts: the
 * successor's `rotated-at`, the retirement's `retirement-at` and KMS's tracking start and last
 * use are written as if long ago; a use the traffic makes is recorded now and is never backdated.
 */

const WORKLOADS: readonly Workload[] = [
  { name: 'stack-symmetric', kind: 'encrypt-decrypt', alias: 'alias/app/secure-key' },
  { name: 'symmetric', kind: 'encrypt-decrypt', alias: 'alias/it/zd-symmetric' },
  { name: 'rsa', kind: 'sign-verify', alias: 'alias/it/zd-rsa' },
  { name: 'hmac', kind: 'mac', alias: 'alias/it/zd-hmac' },
];

interface Report {
  outcome: string;
  strategy: string;
  keyId: string;
  predecessor?: string;
  successor?: string;
}

interface RetireReport {
  mode: string;
  dryRun: boolean;
  examined: number;
  keys: { keyId: string; outcome: string }[];
}

interface Fixture {
  rotate(payload: Record<string, unknown>): Promise<Report>;
  retire(payload: Record<string, unknown>): Promise<RetireReport>;
  /** The clients' SDK client, through the proxy. */
  kms: KMSClient;
  /** The emulator's own client (not through the proxy): the test's time moves, which are no use of a key. */
  admin: KMSClient;
  calls: TrafficCalls;
  traffic: Traffic;
  usage: LastUsageGap;
  /** The key each workload's alias named when the test began. */
  original: Record<string, string>;
  /** The successor of each workload's first alias-swap (rolled back). */
  successors: Record<string, string>;
  /** The successor of each workload's second alias-swap, whose predecessor (the original) is retired. */
  retiring: Record<string, string>;
}

/**
 * One phase: how to drive it (the real functions, while traffic runs), and what is expected.
 * Always expected, for every workload: no failed call and nothing rejected right after it was
 * made; through the alias, exactly the data made by a key other than the one the alias names now
 * fails.
 */
interface Phase {
  name: string;
  drive(fixture: Fixture): Promise<void>;
  expected: {
    /** Workloads whose alias has moved, in this phase or before: data made by another key exists and fails through the alias. */
    aliasMovesFor: readonly string[];
    /** Keys whose data no longer decrypts or verifies even by the kept key id (none, for every phase here). */
    unusableKeys(fixture: Fixture): readonly string[];
  };
}

const SWAPPED = ['symmetric', 'rsa', 'hmac'] as const;
const aliasOf = (workload: string) => WORKLOADS.find((each) => each.name === workload)?.alias as string;

const DAY = 86_400_000;
/** When KMS began tracking the keys' use, as if they were made long ago (a key made now is tracked from now). */
const LONG_AGO = new Date(Date.now() - 400 * DAY);

/** An alias-swap of the three swapped keys by `rotate`, the successors recorded `into` the fixture. */
const aliasSwap = (name: string, into: 'successors' | 'retiring'): Phase => ({
  name,
  drive: async (fixture) => {
    const { rotate, original } = fixture;
    for (const workload of SWAPPED) {
      const report = await rotate({
        key: aliasOf(workload),
        // A symmetric key is rotated on demand unless told otherwise.
        ...(workload === 'symmetric' ? { strategy: 'alias-swap' } : {}),
        // A swap within recentRotationMinutes of the last is taken as its re-run unless forced.
        ...(into === 'retiring' ? { force: true } : {}),
        reason: 'zero-downtime test',
      });
      expect(report).toMatchObject({ outcome: 'completed', strategy: 'alias-swap', predecessor: original[workload] });
      fixture[into][workload] = report.successor as string;
    }
  },
  expected: { aliasMovesFor: SWAPPED, unusableKeys: () => [] },
});

const stateOf = async ({ admin }: Fixture, keyId: string) =>
  (await admin.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata;

const backdate = ({ admin }: Fixture, keyId: string, tag: string, days: number) =>
  admin.send(
    new TagResourceCommand({
      KeyId: keyId,
      Tags: [{ TagKey: tag, TagValue: new Date(Date.now() - days * DAY).toISOString() }],
    }),
  );

/** `retire` as the schedule runs it; the outcome for each original (the retired predecessors). */
const retireScheduled = async (fixture: Fixture): Promise<Record<string, string | undefined>> => {
  const report = await fixture.retire({ scheduled: true });
  expect(report).toMatchObject({ mode: 'enforce', dryRun: false });
  return Object.fromEntries(
    SWAPPED.map((workload) => [workload, report.keys.find((key) => key.keyId === fixture.original[workload])?.outcome]),
  );
};

const keptBy = (fixture: Fixture, workload: string, keyId: string) =>
  fixture.traffic.kept().filter((data) => data.workload === workload && bareKeyId(data.keyId) === keyId);

const PHASES: readonly Phase[] = [
  {
    name: 'on-demand rotation',
    drive: async ({ rotate, kms, original }) => {
      const keyId = original['stack-symmetric'] as string;
      const before = (await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }))).Rotations?.length ?? 0;
      const report = await rotate({ key: aliasOf('stack-symmetric') });
      expect(report).toMatchObject({ outcome: 'completed', strategy: 'on-demand', keyId });
      expect((await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }))).Rotations?.length).toBe(before + 1);
    },
    expected: { aliasMovesFor: [], unusableKeys: () => [] },
  },
  aliasSwap('alias-swap', 'successors'),
  {
    name: 'rollback',
    drive: async ({ rotate }) => {
      for (const workload of SWAPPED) {
        const report = await rotate({ key: aliasOf(workload), action: 'rollback' });
        expect(report.outcome).toBe('completed');
      }
    },
    expected: { aliasMovesFor: SWAPPED, unusableKeys: () => [] },
  },
  // The retirement rows need a swap that stays: the originals are the predecessors retired.
  aliasSwap('alias-swap again', 'retiring'),
  {
    name: 'retire while the predecessor is still used',
    drive: async (fixture) => {
      const since = new Date();
      for (const workload of SWAPPED) {
        // Twenty days on: the swap was that long ago, and KMS has tracked the key for longer.
        await backdate(fixture, fixture.retiring[workload] as string, 'kms-rotation:rotated-at', 20);
        fixture.usage.seed(fixture.original[workload] as string, { trackingStartDate: LONG_AGO });
      }
      // The clients still read the predecessor's data by its kept key id: that is use, recorded now.
      // Each round reads one older piece again, so within a pass over what is kept each predecessor is used.
      const usedSince = (workload: string) =>
        (fixture.usage.usageOf(fixture.original[workload] as string)?.lastUsedAt?.getTime() ?? 0) >= since.getTime();
      const pass = Math.max(
        ...SWAPPED.map((workload) => fixture.traffic.kept().filter((data) => data.workload === workload).length),
      );
      for (let round = 0; round <= pass && !SWAPPED.every(usedSince); round += 1) await fixture.traffic.rounds(1);
      for (const workload of SWAPPED) {
        expect(keptBy(fixture, workload, fixture.original[workload] as string).length).toBeGreaterThan(0);
        const used = fixture.usage.usageOf(fixture.original[workload] as string)?.lastUsedAt;
        expect(used?.getTime(), `${workload}: the predecessor used while this row ran`).toBeGreaterThanOrEqual(
          since.getTime(),
        );
      }
      expect(await retireScheduled(fixture)).toEqual({ symmetric: 'waiting', rsa: 'waiting', hmac: 'waiting' });
      for (const workload of SWAPPED) {
        expect((await stateOf(fixture, fixture.original[workload] as string))?.KeyState).toBe('Enabled');
      }
    },
    expected: { aliasMovesFor: SWAPPED, unusableKeys: () => [] },
  },
  {
    name: 'clients migrated, retire disables',
    drive: async (fixture) => {
      const predecessor = fixture.original.symmetric as string;
      const old = keptBy(fixture, 'symmetric', predecessor);
      expect(old.length, 'ciphertexts the predecessor made').toBeGreaterThan(0);
      // The clients re-encrypt every ciphertext the predecessor made under the alias (the successor).
      const migration = await fixture.traffic.migrate('symmetric', predecessor);
      console.log(`zero-downtime migration of ${predecessor}: ${JSON.stringify(migration)}`);
      expect(migration).toEqual({ migrated: old.length, notMigrated: 0 });
      expect(keptBy(fixture, 'symmetric', predecessor)).toEqual([]);
      // Reads under way when the migration ended are done; from now on nothing uses the predecessor.
      await fixture.traffic.rounds(2);
      fixture.usage.seed(predecessor, { lastUsedAt: new Date(Date.now() - 20 * DAY), operation: 'Decrypt' });

      expect(await retireScheduled(fixture)).toEqual({ symmetric: 'disabled', rsa: 'waiting', hmac: 'waiting' });
      expect((await stateOf(fixture, predecessor))?.KeyState).toBe('Disabled');
      // The signing and MAC predecessors still verify what they made, by kept key id: in use, kept enabled.
      for (const workload of ['rsa', 'hmac']) {
        expect((await stateOf(fixture, fixture.original[workload] as string))?.KeyState).toBe('Enabled');
      }
      // A client that had not migrated would now fail: KMS (the gap) refuses the predecessor.
      const [first] = old;
      await expect(
        fixture.calls['encrypt-decrypt'].check(
          first?.keyId as string,
          first?.message as Uint8Array,
          first?.proof as Uint8Array,
        ),
      ).rejects.toMatchObject({ name: 'DisabledException' });
    },
    expected: { aliasMovesFor: SWAPPED, unusableKeys: () => [] },
  },
  {
    name: 'deletion scheduled',
    drive: async (fixture) => {
      const predecessor = fixture.original.symmetric as string;
      // Eight more days on: disabled, and unused, for longer than retireDeleteAfterDays.
      await backdate(fixture, predecessor, 'kms-rotation:retirement-at', 8);
      expect(await retireScheduled(fixture)).toEqual({
        symmetric: 'deletion-scheduled',
        rsa: 'waiting',
        hmac: 'waiting',
      });
      const metadata = await stateOf(fixture, predecessor);
      expect(metadata?.KeyState).toBe('PendingDeletion');
      expect(Math.round(((metadata?.DeletionDate?.getTime() ?? 0) - Date.now()) / DAY)).toBe(30);
      for (const workload of ['rsa', 'hmac']) {
        expect((await stateOf(fixture, fixture.original[workload] as string))?.KeyState).toBe('Enabled');
      }
      expect(keptBy(fixture, 'symmetric', predecessor)).toEqual([]);
    },
    expected: { aliasMovesFor: SWAPPED, unusableKeys: () => [] },
  },
];

/** A phase runs `rotate` up to three times in a row and rechecks everything kept (about 30 s here; more under load). */
const PHASE_TIMEOUT_MS = 300_000;

/** Rounds each workload completes before a phase's action, and after it, before the recheck. */
const ROUNDS_AROUND_ACTION = 3;

interface PhaseResult {
  phase: Phase;
  callsDuringAction: Record<string, number>;
  live: LiveCounts[];
  rechecked: RecheckCounts[];
  kept: readonly KeptData[];
  targets: Record<string, string>;
}

describe('Zero downtime: client traffic through every rotation phase', () => {
  const region = 'us-east-1';
  let testStack: TestStack;
  let fixture: Fixture;
  let calls: TrafficCalls;
  let traffic: Traffic;
  let proxy: AwsProxy;
  const results: PhaseResult[] = [];

  const targetsNow = async (): Promise<Record<string, string>> =>
    Object.fromEntries(
      await Promise.all(
        WORKLOADS.map(async ({ alias }) => [
          alias,
          (await fixture.kms.send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata?.KeyId as string,
        ]),
      ),
    );

  beforeAll(async () => {
    testStack = await deployTestStack('itzerodt', {
      params: {
        aliasScope: 'alias/app/*,alias/it/*',
        retireMode: 'enforce',
        retireDisableAfterDays: '7',
        retireDeleteAfterDays: '7',
      },
    });
    const { emulator, stack, clients } = testStack;
    const keys = emulatorKeys(clients.kms);
    await keys.createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', aliasOf('symmetric'));
    await keys.createManagedKey('RSA_2048', 'SIGN_VERIFY', aliasOf('rsa'));
    await keys.createManagedKey('HMAC_256', 'GENERATE_VERIFY_MAC', aliasOf('hmac'));
    // Key-state checks first, so a refused call is never recorded as a use.
    const usage = lastUsageGap();
    proxy = await startAwsProxy({ target: emulator.endpoint, gaps: [keyStateGap(), usage] });
    // The clients' own SDK client, through the proxy, with no retries: a failed call is counted, never retried away.
    const kms = new KMSClient({
      endpoint: proxy.endpoint,
      region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    const invoke = async <T>(fn: 'rotate' | 'retire', endpoint: string, payload: Record<string, unknown>) => {
      const outcome = await invokeBundled({
        endpoint,
        region,
        fn: stack.functions[fn] as DeployedStack['functions'][string],
        event: payload,
      });
      expect(outcome.ok, JSON.stringify(outcome.ok ? outcome.result : outcome.error)).toBe(true);
      return (outcome as { result: T }).result;
    };
    const original: Record<string, string> = {};
    for (const { name, alias } of WORKLOADS) {
      original[name] = (await kms.send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata?.KeyId as string;
    }
    calls = kmsTrafficCalls(kms);
    // Pacing only bounds how much data each recheck reads again; the loops never stop between phases.
    // Each round also reads one piece kept earlier again by its kept key id, as clients reading old data do.
    traffic = startTraffic({ calls, workloads: WORKLOADS, phase: 'before any phase', pacingMs: 100, rereadKept: true });
    fixture = {
      kms,
      admin: clients.kms,
      calls,
      traffic,
      usage,
      original,
      successors: {},
      retiring: {},
      rotate: (payload) => invoke<Report>('rotate', emulator.endpoint, payload),
      // `retire` reads GetKeyLastUsage, which only the proxy answers.
      retire: (payload) => invoke<RetireReport>('retire', proxy.endpoint, payload),
    };
    await traffic.rounds(ROUNDS_AROUND_ACTION);
  });

  afterAll(async () => {
    await traffic?.stop();
    await proxy?.stop();
    await testStack?.stop();
  });

  const sumsOf = (rows: readonly RecheckCounts[]) =>
    totalsByWorkload(rows, [
      'checked',
      'failedByKeptKeyId',
      'failedThroughAlias',
      'madeByAnotherKey',
      'checkedUnnamed',
      'failedUnnamed',
    ]);

  for (const [index, phase] of PHASES.entries()) {
    it(
      `${phase.name}: no failed call, nothing that no longer decrypts or verifies by its kept key id`,
      async () => {
        expect(results.length, 'the phases run in order, each after the one before').toBe(index);
        traffic.setPhase(phase.name);
        const before = traffic.callsSoFar();
        await phase.drive(fixture);
        const after = traffic.callsSoFar();
        const callsDuringAction = Object.fromEntries(
          WORKLOADS.map(({ name }) => [name, (after[name] ?? 0) - (before[name] ?? 0)]),
        );
        await traffic.rounds(ROUNDS_AROUND_ACTION);
        const kept = [...traffic.kept()];
        const targets = await targetsNow();
        const rechecked = await recheck({ calls, workloads: WORKLOADS, kept, targets });
        const live = traffic.live().filter((counts) => counts.phase === phase.name);
        results.push({ phase, callsDuringAction, live, rechecked, kept, targets });

        const sums = sumsOf(rechecked);
        console.log(
          `zero-downtime phase "${phase.name}": ${JSON.stringify(
            Object.fromEntries(
              WORKLOADS.map(({ name }) => {
                const counts = live.find((row) => row.workload === name);
                return [
                  name,
                  {
                    calls: counts?.calls,
                    callsDuringAction: callsDuringAction[name],
                    failedCalls: counts?.failedCalls,
                    rejectedAtOnce: counts?.rejectedAtOnce,
                    rereads: counts?.rereads,
                    rereadRejected: counts?.rereadRejected,
                    ...sums[name],
                  },
                ];
              }),
            ),
          )}`,
        );

        const unusable = new Set(phase.expected.unusableKeys(fixture));
        // moto lets a disabled key decrypt and verify (docs/kms-facts.md#moto): the recheck alone would
        // not see a key taken out of use, so every key that made kept data must still read Enabled.
        const makers = [...new Set(kept.map((data) => bareKeyId(data.keyId)))].sort();
        const states = await Promise.all(
          makers.map(
            async (keyId) => (await fixture.kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.KeyState,
          ),
        );
        expect(
          makers.filter((_, at) => states[at] === 'Enabled'),
          'keys that made kept data and are still enabled',
        ).toEqual(makers.filter((keyId) => !unusable.has(keyId)));
        for (const { name, alias, kind } of WORKLOADS) {
          // Traffic ran while the phase's action did.
          expect(callsDuringAction[name], `${name}: calls while ${phase.name} ran`).toBeGreaterThan(0);
          const counts = live.find((row) => row.workload === name);
          expect(counts?.calls, `${name}: calls in ${phase.name}`).toBeGreaterThan(0);
          expect(counts?.errors, `${name}: errors in ${phase.name}`).toEqual({});
          expect(counts, `${name}: failed calls in ${phase.name}`).toMatchObject({
            failedCalls: 0,
            rejectedAtOnce: 0,
            rereadRejected: 0,
          });
          // Old data was read again while the phase ran.
          expect(counts?.rereads, `${name}: rereads in ${phase.name}`).toBeGreaterThan(0);
          const keptOf = kept.filter((data) => data.workload === name);
          const madeByOther = keptOf.filter((data) => bareKeyId(data.keyId) !== targets[alias]).length;
          const madeByUnusable = keptOf.filter((data) => unusable.has(bareKeyId(data.keyId))).length;
          // A ciphertext names its key, so it is also decrypted naming none; signatures and MACs are not.
          const namesItsKey = kind === 'encrypt-decrypt';
          expect(sums[name], `${name}: rechecked after ${phase.name}`).toEqual({
            checked: keptOf.length,
            failedByKeptKeyId: madeByUnusable,
            failedThroughAlias: madeByOther,
            madeByAnotherKey: madeByOther,
            checkedUnnamed: namesItsKey ? keptOf.length : 0,
            failedUnnamed: namesItsKey ? madeByUnusable : 0,
          });
          if (phase.expected.aliasMovesFor.includes(name)) {
            expect(madeByOther, `${name}: data made by the key the alias no longer names`).toBeGreaterThan(0);
          } else {
            expect(targets[alias], `${name}: the alias still names the key it named`).toBe(fixture.original[name]);
            expect(madeByOther).toBe(0);
          }
        }
      },
      PHASE_TIMEOUT_MS,
    );
  }

  it('alias-swap: every signature, MAC and ciphertext made before it fails through the alias, and works by its kept key id', () => {
    const swap = results.find((result) => result.phase.name === 'alias-swap');
    expect(swap, 'the alias-swap phase ran').toBeDefined();
    const earlier = new Set(['before any phase', 'on-demand rotation']);
    for (const workload of SWAPPED) {
      const madeBefore = (swap as PhaseResult).rechecked.filter(
        (row) => row.workload === workload && earlier.has(row.phase),
      );
      const sums = sumsOf(madeBefore)[workload];
      expect(sums?.checked, `${workload}: data made before the swap`).toBeGreaterThan(0);
      expect(sums).toMatchObject({
        checked: sums?.checked,
        failedByKeptKeyId: 0,
        failedThroughAlias: sums?.checked,
        madeByAnotherKey: sums?.checked,
      });
    }
  });

  it('rollback: data made before the swap works through the alias again; data the successor made fails through it, and works by its kept key id', () => {
    const rollback = results.find((result) => result.phase.name === 'rollback') as PhaseResult;
    expect(rollback, 'the rollback phase ran').toBeDefined();
    for (const workload of SWAPPED) {
      expect(rollback.targets[aliasOf(workload)]).toBe(fixture.original[workload]);
      const kept = rollback.kept.filter((data) => data.workload === workload);
      const bySuccessor = kept.filter((data) => bareKeyId(data.keyId) === fixture.successors[workload]).length;
      expect(bySuccessor, `${workload}: data made by the successor`).toBeGreaterThan(0);
      expect(sumsOf(rollback.rechecked)[workload]).toMatchObject({
        checked: kept.length,
        failedByKeptKeyId: 0,
        failedThroughAlias: bySuccessor,
        madeByAnotherKey: bySuccessor,
      });
    }
    // Every call of every phase, the tail of each phase after its recheck and the warm-up included.
    const live = totalsByWorkload(traffic.live(), [
      'calls',
      'failedCalls',
      'rejectedAtOnce',
      'rereads',
      'rereadRejected',
    ]);
    // The summary: the recheck after the last phase.
    expect(results.map((result) => result.phase.name)).toEqual(PHASES.map((phase) => phase.name));
    const last = results.at(-1) as PhaseResult;
    const reasonsOf = (workload: string) => {
      const reasons: Record<string, number> = {};
      for (const row of last.rechecked.filter((each) => each.workload === workload)) {
        for (const [reason, count] of Object.entries(row.reasons)) reasons[reason] = (reasons[reason] ?? 0) + count;
      }
      return reasons;
    };
    const totals = Object.fromEntries(
      WORKLOADS.map(({ name }) => [name, { ...live[name], ...sumsOf(last.rechecked)[name], reasons: reasonsOf(name) }]),
    );
    for (const { name } of WORKLOADS) {
      expect(live[name]?.calls).toBeGreaterThan(0);
      expect(live[name], `${name}: every phase`).toMatchObject({
        failedCalls: 0,
        rejectedAtOnce: 0,
        rereadRejected: 0,
      });
    }
    console.log(`zero-downtime summary after all phases: ${JSON.stringify(totals)}`);
  });
});
