import { describe, expect, it } from 'vitest';
import { PreconditionFailedError, VerificationFailedError } from '../../../../src/domain/errors';
import { LINEAGE } from '../../../../src/domain/lineage';
import { rotateKey } from '../../../../src/domain/rotate-key';
import {
  addManagedKey,
  createWorld,
  RECENT_ROTATION_MS,
  request,
  START,
  stepStatuses,
  type World,
} from './support/world';

const ALIAS = 'alias/sessions/mac';
const SECOND_ALIAS = 'alias/sessions/mac-legacy';
const HMAC = { keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC', macAlgorithms: ['HMAC_SHA_256'] };

/** An HMAC key rotated by alias-swap: its declared aliases now point at the successor. */
const rotated = async (world: World) => {
  const predecessor = addManagedKey(world, [ALIAS, SECOND_ALIAS], HMAC);
  const report = await rotateKey(request({ key: ALIAS }), world.deps);
  world.clock.advance(60_000);
  return { predecessor, successor: report.successor as string };
};

const rollback = (key: string, dryRun = false) => request({ key, action: 'rollback', dryRun });

describe('Function: rotateKey', () => {
  describe('rollback', () => {
    it.each([
      { by: 'the alias', key: () => ALIAS },
      { by: 'the successor key id', key: (keys: { successor: string }) => keys.successor },
      { by: 'the retired predecessor key id', key: (keys: { predecessor: string }) => keys.predecessor },
    ])(
      'points every declared alias back at the predecessor after it verifies, and leaves the successor enabled, when named by $by',
      async ({ key }) => {
        // Prepare
        const world = createWorld();
        const { predecessor, successor } = await rotated(world);
        const from = world.kms.calls.length;

        // Act
        const report = await rotateKey(rollback(key({ predecessor, successor })), world.deps);

        // Assess
        expect(report).toMatchObject({
          action: 'rollback',
          outcome: 'completed',
          keyId: predecessor,
          predecessor,
          successor,
          notification: { type: 'RotationCompleted', severity: 'INFO' },
        });
        expect(stepStatuses(report)).toEqual([
          ['verifyPredecessor', 'done'],
          ['restoreAliases', 'done'],
          ['finishRollback', 'done'],
        ]);
        const calls = world.kms.callsSince(from);
        const proof = calls.findIndex(
          (call) => call.method === 'verifyMac' && String(call.args[0]).endsWith(predecessor),
        );
        const firstMove = calls.findIndex((call) => call.method === 'updateAlias');
        expect(proof).toBeGreaterThanOrEqual(0);
        expect(proof).toBeLessThan(firstMove);
        expect(world.kms.aliasTarget(ALIAS)).toBe(predecessor);
        expect(world.kms.aliasTarget(SECOND_ALIAS)).toBe(predecessor);
        expect(world.kms.tagsOf(predecessor)).toMatchObject({
          'kms-rotation:managed': 'true',
          'kms-rotation:aliases': `${ALIAS} ${SECOND_ALIAS}`,
          [LINEAGE.state]: 'active',
          [LINEAGE.rotatedAt]: new Date(START.getTime() + 60_000).toISOString(),
        });
        expect(world.kms.tagsOf(successor)).toMatchObject({
          [LINEAGE.state]: 'rolled-back',
          'kms-rotation:managed': 'false',
        });
        expect((await world.kms.describeKey(successor)).keyState).toBe('Enabled');
        expect(world.notifier.kinds()).toEqual(['RotationCompleted/INFO', 'RotationCompleted/INFO']);
        expect(world.notifier.published[1]).toMatchObject({ keyId: predecessor, details: { action: 'rollback' } });
      },
    );

    it('moves no alias when the predecessor fails verification', async () => {
      // Prepare
      const world = createWorld();
      const { predecessor, successor } = await rotated(world);
      world.kms.setDefect(predecessor, 'accepts-tampering');
      const before = world.kms.snapshot();
      const from = world.kms.calls.length;

      // Act
      const error = await rotateKey(rollback(ALIAS), world.deps).catch((caught: unknown) => caught);

      // Assess
      expect(error).toBeInstanceOf(VerificationFailedError);
      expect((error as Error).message).toContain(`predecessor ${predecessor} failed verification`);
      expect(world.kms.callsSince(from, 'updateAlias')).toEqual([]);
      expect(world.kms.callsSince(from, 'createAlias')).toEqual([]);
      expect(world.kms.mutatingCallsSince(from)).toEqual([]);
      expect(world.kms.aliasTarget(ALIAS)).toBe(successor);
      expect(world.kms.snapshot()).toEqual(before);
    });

    it.each([
      { keyState: 'Disabled', reason: 'key-disabled' },
      { keyState: 'PendingDeletion', reason: 'key-pending-deletion' },
    ])('refuses a $keyState predecessor before any change or notification', async ({ keyState, reason }) => {
      // Prepare
      const world = createWorld();
      const { predecessor, successor } = await rotated(world);
      world.kms.setKeyState(predecessor, keyState);
      const before = world.kms.snapshot();
      const from = world.kms.calls.length;
      const published = world.notifier.published.length;

      // Act
      const error = await rotateKey(rollback(ALIAS), world.deps).catch((caught: unknown) => caught);

      // Assess
      expect(error).toBeInstanceOf(PreconditionFailedError);
      expect(error).toMatchObject({ reason });
      expect((error as Error).message).toContain(`is ${keyState}: aliases cannot go back to it`);
      expect(world.kms.mutatingCallsSince(from)).toEqual([]);
      expect(world.kms.callsSince(from, 'verifyMac')).toEqual([]);
      expect(world.kms.aliasTarget(ALIAS)).toBe(successor);
      expect(world.kms.snapshot()).toEqual(before);
      expect(world.notifier.published).toHaveLength(published);
    });

    it('refuses a key without lineage: nothing to roll back', async () => {
      // Prepare
      const world = createWorld();
      addManagedKey(world, [ALIAS], HMAC);
      const before = world.kms.snapshot();

      // Act
      const error = await rotateKey(rollback(ALIAS), world.deps).catch((caught: unknown) => caught);

      // Assess
      expect(error).toBeInstanceOf(PreconditionFailedError);
      expect(error).toMatchObject({ reason: 'nothing-to-roll-back' });
      expect(world.kms.mutatingCallsSince(0)).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
      expect(world.notifier.published).toEqual([]);
    });

    it.each([
      { by: 'the rolled-back key id', key: (keys: { successor: string }) => keys.successor },
      { by: 'the alias', key: () => ALIAS },
    ])('changes nothing and reports nothing to do when a finished rollback is re-run by $by', async ({ key }) => {
      // Prepare
      const world = createWorld();
      const keys = await rotated(world);
      await rotateKey(rollback(ALIAS), world.deps);
      const before = world.kms.snapshot();
      const from = world.kms.calls.length;
      const published = world.notifier.published.length;

      // Act
      const report = await rotateKey(rollback(key(keys)), world.deps);

      // Assess
      expect(report).toMatchObject({ outcome: 'nothing-to-do', keyId: keys.predecessor });
      expect(stepStatuses(report)).toEqual([
        ['verifyPredecessor', 'done'],
        ['restoreAliases', 'skipped'],
        ['finishRollback', 'skipped'],
      ]);
      expect(world.kms.mutatingCallsSince(from)).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
      expect(world.notifier.published).toHaveLength(published);
    });

    it('does not roll back a second generation when a finished rollback is re-run by alias and the predecessor has a predecessor of its own', async () => {
      // Prepare
      const world = createWorld();
      const { successor: middle } = await rotated(world);
      world.clock.advance(RECENT_ROTATION_MS);
      const latest = (await rotateKey(request({ key: ALIAS }), world.deps)).successor as string;
      await rotateKey(rollback(ALIAS), world.deps);
      const before = world.kms.snapshot();
      const from = world.kms.calls.length;

      // Act
      const report = await rotateKey(rollback(ALIAS), world.deps);

      // Assess
      expect(report).toMatchObject({ outcome: 'nothing-to-do', predecessor: middle, successor: latest });
      expect(world.kms.aliasTarget(ALIAS)).toBe(middle);
      expect(world.kms.mutatingCallsSince(from)).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
    });

    it.each([
      { point: 'after the aliases moved back, before any tag', method: 'tagKey', nth: 1 },
      {
        point: 'after the predecessor is active again, before the successor gives up the declared state',
        method: 'tagKey',
        nth: 2,
      },
    ])('converges when re-run by alias after a crash $point', async ({ method, nth }) => {
      // Prepare
      const world = createWorld();
      const uninterrupted = createWorld();
      await rotated(uninterrupted);
      await rotateKey(rollback(ALIAS), uninterrupted.deps);
      const { predecessor } = await rotated(world);
      world.kms.failAt(method, nth);
      await expect(rotateKey(rollback(ALIAS), world.deps)).rejects.toThrow(/simulated crash/);

      // Act
      const report = await rotateKey(rollback(ALIAS), world.deps);

      // Assess
      expect(report).toMatchObject({ outcome: 'completed', keyId: predecessor });
      expect(stepStatuses(report)).toEqual([
        ['verifyPredecessor', 'done'],
        ['restoreAliases', 'skipped'],
        ['finishRollback', 'done'],
      ]);
      expect(world.kms.snapshot()).toEqual(uninterrupted.kms.snapshot());
    });

    it('plans the rollback without any mutating call, when it is a dry run', async () => {
      // Prepare
      const world = createWorld();
      const { predecessor, successor } = await rotated(world);
      const before = world.kms.snapshot();
      const from = world.kms.calls.length;
      const published = world.notifier.published.length;

      // Act
      const report = await rotateKey(rollback(ALIAS, true), world.deps);

      // Assess
      expect(report).toMatchObject({ outcome: 'planned', dryRun: true, keyId: successor, predecessor, successor });
      expect(report.steps.map((step) => step.status)).toEqual(['planned', 'planned', 'planned']);
      expect(world.kms.mutatingCallsSince(from)).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
      expect(world.notifier.published).toHaveLength(published);
    });

    it('rotates again to a new key, never back to the rolled-back one, when a rotation after a rollback crashes after CreateKey and is re-run', async () => {
      // Prepare
      const world = createWorld();
      const { predecessor, successor: rolledBack } = await rotated(world);
      await rotateKey(rollback(ALIAS), world.deps);
      world.clock.advance(RECENT_ROTATION_MS);
      world.kms.failAt('tagKey', 2);
      await expect(rotateKey(request({ key: ALIAS }), world.deps)).rejects.toThrow(/simulated crash/);
      const [orphan] = world.kms.keyIds().filter((id) => id !== predecessor && id !== rolledBack);

      // Act
      const report = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      expect(report).toMatchObject({ outcome: 'completed', predecessor, successor: orphan });
      expect(world.kms.keyIds()).toHaveLength(3);
      expect(world.kms.aliasTarget(ALIAS)).toBe(orphan);
      expect(world.kms.tagsOf(rolledBack)[LINEAGE.state]).toBe('rolled-back');
    });
  });
});
