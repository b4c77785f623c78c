import { describe, expect, it } from 'vitest';
import { AwsServiceError } from '../../../../src/domain/errors';
import { LINEAGE } from '../../../../src/domain/lineage';
import { type RotateReport, rotateKey } from '../../../../src/domain/rotate-key';
import type { FakeKms } from './support/fake-kms';
import { addManagedKey, createWorld, request, stepStatuses, type World } from './support/world';

const ALIAS = 'alias/orders/data';
const SECOND_ALIAS = 'alias/orders/data-archive';

/** The key every test rotates: symmetric, forced to alias-swap, so that `finish` also enables rotation. */
const addOrdersKey = (world: World): string =>
  addManagedKey(world, [ALIAS, SECOND_ALIAS], { tags: { 'kms-rotation:period-days': '180' } });

const rotation = (key: string) => request({ key, strategy: 'alias-swap', reason: 'suspected exposure' });

/** The end state with rotation ids replaced: a run that crashed before anything changed draws a new one. */
const endState = (kms: FakeKms) =>
  JSON.parse(JSON.stringify(kms.snapshot()).replace(/rotation-\d{4}/g, '<rotation-id>')) as ReturnType<
    FakeKms['snapshot']
  >;

/** The state an uninterrupted rotation ends in. */
const uninterrupted = async () => {
  const world = createWorld();
  addOrdersKey(world);
  const report = await rotateKey(rotation(ALIAS), world.deps);
  return { state: endState(world.kms), report };
};

const STEPS = ['createSuccessor', 'verifySuccessor', 'promoteAliases', 'finish'];
const statuses = (...status: string[]): string[][] => STEPS.map((step, index) => [step, status[index] as string]);
/** Everything again (a successor an earlier run created is adopted, which is also "done"). */
const DONE = statuses('done', 'done', 'done', 'done');
/** The successor exists and must prove itself again. */
const REVERIFIED = statuses('skipped', 'done', 'done', 'done');
/** The successor took the aliases, but `finish` found its active tag missing: it proves itself again first. */
const REVERIFIED_FINISH = statuses('skipped', 'done', 'skipped', 'done');
const FINISH_ONLY = statuses('skipped', 'skipped', 'skipped', 'done');
const ALIASES_ONLY = statuses('skipped', 'skipped', 'done', 'skipped');

interface CrashPoint {
  point: string;
  method: string;
  nth: number;
  when: 'before' | 'after';
  /** Steps of the re-run; none when the crashed run had done everything. */
  rerun: string[][];
}

/**
 * Every call of a run can fail or die; calls in one round trip still land when a sibling
 * fails. The calls of an uninterrupted run, by round trip: describeKey (alias) | listTags,
 * keysTagged (orphans) | getKeyPolicy, describeKey (alias targets) | createKey#1 | encrypt,
 * tagKey#1 (predecessor: rotation, successor), tagKey#2 (successor: the predecessor's own tags)
 * | decrypt | tagKey#3 (successor active with the declared state), enableKeyRotation#1,
 * tagKey#4 (predecessor retired), updateAlias#1, updateAlias#2.
 */
const CRASH_POINTS: CrashPoint[] = [
  { point: 'before the key policy is read', method: 'getKeyPolicy', nth: 1, when: 'before', rerun: DONE },
  { point: 'before orphans are looked for', method: 'keysTagged', nth: 1, when: 'before', rerun: DONE },
  { point: 'before CreateKey', method: 'createKey', nth: 1, when: 'before', rerun: DONE },
  { point: 'in CreateKey: key made, answer lost', method: 'createKey', nth: 1, when: 'after', rerun: DONE },
  { point: 'verification, at encrypt', method: 'encrypt', nth: 1, when: 'before', rerun: REVERIFIED },
  {
    point: 'the predecessor not marked, while the successor passed',
    method: 'tagKey',
    nth: 1,
    when: 'before',
    rerun: DONE,
  },
  {
    point: "the successor not given the predecessor's own tags, while it passed",
    method: 'tagKey',
    nth: 2,
    when: 'before',
    rerun: REVERIFIED,
  },
  { point: 'verification, at decrypt', method: 'decrypt', nth: 1, when: 'before', rerun: REVERIFIED },
  {
    point: 'finish, the successor not tagged active (the rest landed)',
    method: 'tagKey',
    nth: 3,
    when: 'before',
    rerun: REVERIFIED_FINISH,
  },
  {
    point: "finish, the successor's rotation not enabled (the rest landed)",
    method: 'enableKeyRotation',
    nth: 1,
    when: 'before',
    rerun: FINISH_ONLY,
  },
  {
    point: 'finish, the predecessor not retired (the rest landed)',
    method: 'tagKey',
    nth: 4,
    when: 'before',
    rerun: FINISH_ONLY,
  },
  {
    point: 'promoteAliases, the first alias not moved (the rest landed)',
    method: 'updateAlias',
    nth: 1,
    when: 'before',
    rerun: ALIASES_ONLY,
  },
  {
    point: 'promoteAliases, the second alias not moved (the rest landed)',
    method: 'updateAlias',
    nth: 2,
    when: 'before',
    rerun: ALIASES_ONLY,
  },
  {
    point: 'after the last call, before the run could answer',
    method: 'updateAlias',
    nth: 2,
    when: 'after',
    rerun: [],
  },
];

/** Runs the rotation until the crash point, then the same request again with `rerunKey`. */
const crashThenRerun = async (crash: CrashPoint, rerunKey: (predecessor: string) => string) => {
  const world = createWorld();
  const predecessor = addOrdersKey(world);
  world.kms.failAt(crash.method, crash.nth, { when: crash.when });
  const crashed = await rotateKey(rotation(ALIAS), world.deps).then(
    () => undefined,
    (error: unknown) => error,
  );
  const report = await rotateKey(rotation(rerunKey(predecessor)), world.deps);
  return { world, predecessor, crashed, report };
};

const expectConverged = async (
  world: World,
  predecessor: string,
  report: RotateReport,
  expected: Awaited<ReturnType<typeof uninterrupted>>,
) => {
  const successor = expected.report.successor as string;
  expect(world.kms.mutationsSince(0).filter((call) => call.method === 'createKey')).toHaveLength(1);
  expect(world.kms.keyIds()).toEqual([predecessor, successor]);
  expect(report.keyId).toBe(successor);
  expect(endState(world.kms)).toEqual(expected.state);
  const rotationId = world.kms.tagsOf(predecessor)[LINEAGE.rotationId];
  expect(world.kms.tagsOf(successor)[LINEAGE.rotationId]).toBe(rotationId);
  expect(world.kms.aliasTarget(ALIAS)).toBe(successor);
  expect(world.kms.aliasTarget(SECOND_ALIAS)).toBe(successor);
};

describe('Function: rotateKey', () => {
  describe('alias-swap after a crash', () => {
    it.each(CRASH_POINTS)(
      'converges with one successor when re-run by alias after a crash at $point',
      async (crash) => {
        // Prepare
        const expected = await uninterrupted();

        // Act
        const { world, predecessor, crashed, report } = await crashThenRerun(crash, () => ALIAS);

        // Assess
        expect(world.kms.pendingFaults).toBe(0);
        expect(crashed).toBeDefined();
        expect(stepStatuses(report)).toEqual(crash.rerun);
        expect(report.outcome).toBe(crash.rerun.length > 0 ? 'completed' : 'nothing-to-do');
        await expectConverged(world, predecessor, report, expected);
      },
    );

    it.each(CRASH_POINTS.filter((crash) => crash.rerun.length > 0))(
      'converges with one successor when re-run by the predecessor key id after a crash at $point',
      async (crash) => {
        // Prepare
        const expected = await uninterrupted();

        // Act
        const { world, predecessor, report } = await crashThenRerun(crash, (predecessorId) => predecessorId);

        // Assess
        expect(report.outcome).toBe('completed');
        expect(stepStatuses(report)).toEqual(crash.rerun);
        await expectConverged(world, predecessor, report, expected);
      },
    );

    it('adopts the orphan successor found by its predecessor tag instead of creating another', async () => {
      // Prepare
      const world = createWorld();
      const predecessor = addOrdersKey(world);
      world.kms.failAt('createKey', 1, { when: 'after' });
      await expect(rotateKey(rotation(ALIAS), world.deps)).rejects.toThrow(/simulated crash/);
      const [orphan] = world.kms.keyIds().filter((id) => id !== predecessor);
      const from = world.kms.calls.length;

      // Act
      const report = await rotateKey(rotation(ALIAS), world.deps);

      // Assess
      expect(world.kms.callsSince(from, 'keysTagged').map((call) => call.args)).toEqual([
        [LINEAGE.predecessor, predecessor],
      ]);
      expect(world.kms.callsSince(from, 'createKey')).toEqual([]);
      expect(report.successor).toBe(orphan);
      expect(report.steps[0]).toMatchObject({
        step: 'createSuccessor',
        status: 'done',
        detail: expect.stringContaining('adopted'),
      });
      expect(world.kms.tagsOf(predecessor)[LINEAGE.successor]).toBe(orphan);
      expect(world.kms.tagsOf(predecessor)[LINEAGE.rotationId]).toBe(
        world.kms.tagsOf(orphan as string)[LINEAGE.rotationId],
      );
    });

    it('converges with one successor when the re-run crashes too, and a third run finishes', async () => {
      // Prepare
      const expected = await uninterrupted();
      const world = createWorld();
      const predecessor = addOrdersKey(world);
      world.kms.failAt('createKey', 1, { when: 'after' });
      await expect(rotateKey(rotation(ALIAS), world.deps)).rejects.toThrow(/simulated crash/);
      world.kms.failAt('updateAlias', 2);
      await expect(rotateKey(rotation(ALIAS), world.deps)).rejects.toThrow(/simulated crash/);

      // Act
      const report = await rotateKey(rotation(ALIAS), world.deps);

      // Assess
      expect(stepStatuses(report)).toEqual(ALIASES_ONLY);
      await expectConverged(world, predecessor, report, expected);
    });

    it('notifies RotationFailed CRITICAL for a run that failed after the rotation began, and RotationCompleted for the re-run', async () => {
      // Prepare
      const world = createWorld();
      addOrdersKey(world);
      world.kms.failAt('updateAlias', 2);
      await expect(rotateKey(rotation(ALIAS), world.deps)).rejects.toThrow(/simulated crash/);

      // Act
      const report = await rotateKey(rotation(SECOND_ALIAS), world.deps);

      // Assess
      expect(report.outcome).toBe('completed');
      expect(world.notifier.kinds()).toEqual(['RotationFailed/CRITICAL', 'RotationCompleted/INFO']);
      expect(world.notifier.published[1]).toMatchObject({ keyId: report.successor, aliases: [ALIAS, SECOND_ALIAS] });
    });
  });

  describe('when the answer of CreateKey is lost (a timeout, a reset, a 5xx): the key may or may not exist', () => {
    const lost = () =>
      new AwsServiceError('CreateKey', true, 'CreateKey on a successor key failed: TimeoutError: Request timed out');

    it('takes the key it made, found by its rotation id, finishes in the same run, and never sends CreateKey twice', async () => {
      // Prepare
      const expected = await uninterrupted();
      const world = createWorld();
      const predecessor = addOrdersKey(world);
      world.kms.failAt('createKey', 1, { when: 'after', error: lost() });

      // Act
      const report = await rotateKey(rotation(ALIAS), world.deps);

      // Assess
      expect(report.outcome).toBe('completed');
      expect(report.steps[0]).toMatchObject({
        step: 'createSuccessor',
        status: 'done',
        detail: expect.stringContaining('its CreateKey answer was lost'),
      });
      await expectConverged(world, predecessor, report, expected);
    });

    it('fails retryable, without a second CreateKey, when no key of the rotation exists; the re-run creates exactly one', async () => {
      // Prepare
      const expected = await uninterrupted();
      const world = createWorld();
      const predecessor = addOrdersKey(world);
      world.kms.failAt('createKey', 1, { when: 'before', error: lost() });

      // Act
      const failed = await rotateKey(rotation(ALIAS), world.deps).catch((error: unknown) => error);
      const createsOfFailedRun = world.kms.callsSince(0, 'createKey').length;
      const report = await rotateKey(rotation(ALIAS), world.deps);

      // Assess
      expect(failed).toMatchObject({ retryable: true, message: expect.stringContaining('run the rotation again') });
      expect(createsOfFailedRun).toBe(1);
      expect(world.kms.keyIds()).toHaveLength(2);
      await expectConverged(world, predecessor, report, expected);
    });
  });
});
