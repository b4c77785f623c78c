import { describe, expect, it } from 'vitest';
import { LINEAGE } from '../../../src/domain/lineage';
import { type RotateReport, rotateKey } from '../../../src/domain/rotate-key';
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
/** The steps of a re-run whose earlier run had done the steps before `firstStepToDo`. */
const resumedAt = (firstStepToDo: number): string[][] =>
  STEPS.map((step, index) => [step, index < firstStepToDo ? 'skipped' : 'done']);
const DONE = resumedAt(0);

interface CrashPoint {
  point: string;
  method: string;
  nth: number;
  when: 'before' | 'after';
  /** Steps of the re-run; none when the crashed run had done everything. */
  rerun: string[][];
}

/**
 * Every place a run can die: between the calls of each step and between the steps. The calls of
 * an uninterrupted run, in order: tagKey#1 (predecessor rotating), getKeyPolicy, createKey#1,
 * tagKey#2 (predecessor -> successor) | encrypt, decrypt, tagKey#3 (successor verified) |
 * updateAlias#1, updateAlias#2 | tagKey#4 (successor active), enableKeyRotation#1, untagKey#1
 * (declared state off the predecessor), tagKey#5 (predecessor retired).
 */
const CRASH_POINTS: CrashPoint[] = [
  { point: 'createSuccessor, before the predecessor is marked', method: 'tagKey', nth: 1, when: 'before', rerun: DONE },
  {
    point: 'createSuccessor, after the predecessor is marked, before CreateKey',
    method: 'createKey',
    nth: 1,
    when: 'before',
    rerun: DONE,
  },
  {
    point: 'createSuccessor, in CreateKey: key made, answer lost',
    method: 'createKey',
    nth: 1,
    when: 'after',
    rerun: DONE,
  },
  {
    point: 'createSuccessor, after CreateKey, before the predecessor is tagged with its successor',
    method: 'tagKey',
    nth: 2,
    when: 'before',
    rerun: DONE,
  },
  { point: 'after createSuccessor', method: 'encrypt', nth: 1, when: 'before', rerun: resumedAt(1) },
  {
    point: 'verifySuccessor, after the proof, before the successor is tagged verified',
    method: 'tagKey',
    nth: 3,
    when: 'before',
    rerun: resumedAt(1),
  },
  { point: 'after verifySuccessor', method: 'updateAlias', nth: 1, when: 'before', rerun: resumedAt(2) },
  {
    point: 'promoteAliases, after the first alias moved, before the second',
    method: 'updateAlias',
    nth: 2,
    when: 'before',
    rerun: resumedAt(2),
  },
  { point: 'after promoteAliases', method: 'tagKey', nth: 4, when: 'before', rerun: resumedAt(3) },
  {
    point: 'finish, after the successor is tagged active, before its rotation is enabled',
    method: 'enableKeyRotation',
    nth: 1,
    when: 'before',
    rerun: resumedAt(3),
  },
  {
    point: 'finish, after the successor is tagged active, before the predecessor is retired',
    method: 'untagKey',
    nth: 1,
    when: 'before',
    rerun: resumedAt(3),
  },
  {
    point: 'finish, after the declared tags left the predecessor, before it is tagged retired',
    method: 'tagKey',
    nth: 5,
    when: 'before',
    rerun: resumedAt(3),
  },
  { point: 'after finish, before the run could answer', method: 'tagKey', nth: 5, when: 'after', rerun: [] },
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

    it('adopts the orphan successor found by its rotation-id tag instead of creating another', async () => {
      // Prepare
      const world = createWorld();
      const predecessor = addOrdersKey(world);
      world.kms.failAt('tagKey', 2);
      await expect(rotateKey(rotation(ALIAS), world.deps)).rejects.toThrow(/simulated crash/);
      const [orphan] = world.kms.keyIds().filter((id) => id !== predecessor);
      const from = world.kms.calls.length;

      // Act
      const report = await rotateKey(rotation(ALIAS), world.deps);

      // Assess
      expect(world.kms.callsSince(from, 'findKeysByTag').map((call) => call.args)).toEqual([
        [LINEAGE.rotationId, 'rotation-0001'],
      ]);
      expect(world.kms.callsSince(from, 'createKey')).toEqual([]);
      expect(report.successor).toBe(orphan);
      expect(report.steps[0]).toMatchObject({
        step: 'createSuccessor',
        status: 'done',
        detail: expect.stringContaining('adopted'),
      });
      expect(world.kms.tagsOf(predecessor)[LINEAGE.successor]).toBe(orphan);
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
      expect(stepStatuses(report)).toEqual(resumedAt(2));
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
});
