import { DescribeKeyCommand, KMSClient, ListKeyRotationsCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emulatorKeys } from '../../scripts/lib/emulator-keys';
import { invokeBundled } from '../../scripts/lib/invoke';
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

interface Fixture {
  rotate(payload: Record<string, unknown>): Promise<Report>;
  kms: KMSClient;
  /** The key each workload's alias named when the test began. */
  original: Record<string, string>;
  /** The successor of each workload's last alias-swap. */
  successors: Record<string, string>;
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
    /** Workloads whose alias this phase moves: data made by the other key exists and fails through the alias. */
    aliasMovesFor: readonly string[];
    /** Keys whose data no longer decrypts or verifies even by the kept key id (none, for every phase here). */
    unusableKeys(fixture: Fixture): readonly string[];
  };
}

const SWAPPED = ['symmetric', 'rsa', 'hmac'] as const;
const aliasOf = (workload: string) => WORKLOADS.find((each) => each.name === workload)?.alias as string;

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
  {
    name: 'alias-swap',
    drive: async ({ rotate, original, successors }) => {
      for (const workload of SWAPPED) {
        const report = await rotate({
          key: aliasOf(workload),
          // A symmetric key is rotated on demand unless told otherwise.
          ...(workload === 'symmetric' ? { strategy: 'alias-swap' } : {}),
          reason: 'zero-downtime test',
        });
        expect(report).toMatchObject({ outcome: 'completed', strategy: 'alias-swap', predecessor: original[workload] });
        successors[workload] = report.successor as string;
      }
    },
    expected: { aliasMovesFor: SWAPPED, unusableKeys: () => [] },
  },
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
  // Retirement phases (disable the predecessor, schedule its deletion) join here as rows; see docs/rotate.md#zero-downtime-proven.
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
    testStack = await deployTestStack('itzerodt', { params: { aliasScope: 'alias/app/*,alias/it/*' } });
    const { emulator, stack, clients } = testStack;
    const keys = emulatorKeys(clients.kms);
    await keys.createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', aliasOf('symmetric'));
    await keys.createManagedKey('RSA_2048', 'SIGN_VERIFY', aliasOf('rsa'));
    await keys.createManagedKey('HMAC_256', 'GENERATE_VERIFY_MAC', aliasOf('hmac'));
    // The clients' own SDK client, with no retries: a failed call is counted, never retried away.
    const kms = new KMSClient({
      endpoint: emulator.endpoint,
      region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    fixture = {
      kms,
      original: {},
      successors: {},
      rotate: async (payload) => {
        const outcome = await invokeBundled({
          endpoint: emulator.endpoint,
          region,
          fn: stack.functions.rotate as DeployedStack['functions'][string],
          event: payload,
        });
        expect(outcome.ok, JSON.stringify(outcome.ok ? outcome.result : outcome.error)).toBe(true);
        return (outcome as { result: Report }).result;
      },
    };
    const targets = await targetsNow();
    for (const { name, alias } of WORKLOADS) fixture.original[name] = targets[alias] as string;
    calls = kmsTrafficCalls(kms);
    // Pacing only bounds how much data each recheck reads again; the loops never stop between phases.
    traffic = startTraffic({ calls, workloads: WORKLOADS, phase: 'before any phase', pacingMs: 100 });
    await traffic.rounds(ROUNDS_AROUND_ACTION);
  });

  afterAll(async () => {
    await traffic?.stop();
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
          expect(counts, `${name}: failed calls in ${phase.name}`).toMatchObject({ failedCalls: 0, rejectedAtOnce: 0 });
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
    const live = totalsByWorkload(traffic.live(), ['calls', 'failedCalls', 'rejectedAtOnce']);
    const reasonsOf = (workload: string) => {
      const reasons: Record<string, number> = {};
      for (const row of rollback.rechecked.filter((each) => each.workload === workload)) {
        for (const [reason, count] of Object.entries(row.reasons)) reasons[reason] = (reasons[reason] ?? 0) + count;
      }
      return reasons;
    };
    const totals = Object.fromEntries(
      WORKLOADS.map(({ name }) => [
        name,
        { ...live[name], ...sumsOf(rollback.rechecked)[name], reasons: reasonsOf(name) },
      ]),
    );
    for (const { name } of WORKLOADS) {
      expect(live[name]?.calls).toBeGreaterThan(0);
      expect(live[name], `${name}: every phase`).toMatchObject({ failedCalls: 0, rejectedAtOnce: 0 });
    }
    console.log(`zero-downtime summary after all phases: ${JSON.stringify(totals)}`);
  });
});
