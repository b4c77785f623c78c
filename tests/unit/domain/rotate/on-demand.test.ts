import { describe, expect, it } from 'vitest';
import type { Canary } from '../../../../src/domain/ports';
import { RotationFailedError, rotateKey } from '../../../../src/domain/rotate-key';
import {
  addManagedKey,
  createWorld,
  RECENT_ROTATION_MS,
  ROTATION_WAIT_MS,
  request,
  START,
  seedCanary,
  stepStatuses,
  type World,
} from './support/world';

const ALIAS = 'alias/ledger/key';

const daysAgo = (days: number) => new Date(START.getTime() - days * 86_400_000);
const onDemandHistory = (count: number) =>
  Array.from({ length: count }, (_, index) => ({
    rotationType: 'ON_DEMAND' as const,
    rotationDate: daysAgo(count - index),
  }));

const checkStatuses = (checks: { id: string; status: string }[] | undefined) =>
  Object.fromEntries((checks ?? []).map((check) => [check.id, check.status]));

/** A managed symmetric key with its alias, a canary from before the rotation, and KMS recording a rotation on the third poll. */
const ledgerKey = async (world: World, init: Parameters<typeof addManagedKey>[2] = {}) => {
  const keyId = addManagedKey(world, [ALIAS], { rotationEnabled: true, periodDays: 365, ...init });
  await seedCanary(world, keyId);
  world.kms.recordOnDemandAfterPolls = 3;
  return keyId;
};

describe('Function: rotateKey', () => {
  describe('on-demand', () => {
    it('rotates, waits until KMS records the rotation, then validates it with the checks of onRotation, when the key is symmetric', async () => {
      // Prepare
      const world = createWorld();
      const keyId = await ledgerKey(world);

      // Act
      const report = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      expect(report).toMatchObject({
        outcome: 'completed',
        strategy: 'on-demand',
        keyId,
        notification: { type: 'RotationCompleted', severity: 'INFO' },
      });
      expect(stepStatuses(report)).toEqual([
        ['rotateKeyOnDemand', 'done'],
        ['waitForRotation', 'done'],
        ['validate', 'done'],
      ]);
      expect(report.steps[0]?.detail).toBe('rotation 1 of 25 started');
      expect(checkStatuses(report.checks)).toEqual({
        'key-state': 'passed',
        'key-type': 'passed',
        'rotation-schedule': 'skipped',
        'rotation-recorded': 'passed',
        'current-material': 'passed',
        'round-trip': 'passed',
        canary: 'passed',
      });
      expect(world.kms.callsSince(0, 'rotateKeyOnDemand')).toHaveLength(1);
      expect(world.kms.mutationsSince(0).map((call) => call.method)).toEqual(['rotateKeyOnDemand']);
      expect(world.kms.rotationOf(keyId).onDemandRotations).toBe(1);
      expect(world.sleeper.sleeps).toEqual([500, 1_000]);
      expect(world.kms.aliasTarget(ALIAS)).toBe(keyId);
      expect(world.notifier.kinds()).toEqual(['RotationCompleted/INFO']);
    });

    it('keeps fresh data encrypted through the alias as the next canary, when the rotation validated', async () => {
      // Prepare
      const world = createWorld();
      const keyId = await ledgerKey(world);
      const before = world.records.byKey.get(keyId)?.canary;

      // Act
      await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      const after = world.records.byKey.get(keyId);
      expect(after?.managed).toBe(true);
      expect(after?.canary?.ciphertext).not.toBe(before?.ciphertext);
      expect(after?.canary?.createdAt).toBe(new Date(START.getTime() + 1_500).toISOString());
      const canary = after?.canary as Canary;
      const decrypted = await world.kms.decrypt(keyId, Buffer.from(canary.ciphertext, 'base64'), {
        'kms-rotation:purpose': 'rotation-canary',
        'kms-rotation:key-id': keyId,
      });
      expect(world.deps.digest.sha256Hex(decrypted.plaintext)).toBe(canary.plaintextSha256);
    });

    it('keeps the state on record untouched, and says the canary was not checked, when the state cannot be read', async () => {
      // Prepare
      const world = createWorld();
      const keyId = await ledgerKey(world);
      const before = structuredClone(world.records.byKey.get(keyId));
      world.records.load = async () => {
        throw new Error('ssm down');
      };

      // Act
      const report = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      expect(report.outcome).toBe('completed');
      expect(report.checks?.find((check) => check.id === 'canary')).toMatchObject({
        status: 'skipped',
        detail: expect.stringContaining('could not be read (Error: ssm down)'),
      });
      expect(world.records.saves).toEqual([]);
      expect(world.records.byKey.get(keyId)).toEqual(before);
    });

    it('stops waiting within rotationWaitMs and reports in-progress with a WARNING, when KMS does not record the rotation', async () => {
      // Prepare
      const world = createWorld();
      const keyId = await ledgerKey(world);
      world.kms.recordOnDemandAfterPolls = 'never';
      const savesBefore = world.records.saves.length;

      // Act
      const report = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      expect(report).toMatchObject({
        outcome: 'in-progress',
        keyId,
        notification: { type: 'RotationCompleted', severity: 'WARNING' },
      });
      expect(stepStatuses(report)).toEqual([
        ['rotateKeyOnDemand', 'done'],
        ['waitForRotation', 'failed'],
      ]);
      expect(world.sleeper.sleeps.length).toBeGreaterThan(1);
      expect(world.sleeper.total).toBeLessThanOrEqual(ROTATION_WAIT_MS);
      expect(world.clock.now().getTime() - START.getTime()).toBeLessThanOrEqual(ROTATION_WAIT_MS);
      expect(world.kms.callsSince(0, 'rotateKeyOnDemand')).toHaveLength(1);
      expect(world.records.saves).toHaveLength(savesBefore);
      expect(world.notifier.kinds()).toEqual(['RotationCompleted/WARNING']);
    });

    it('waits no longer than a shorter rotationWaitMs', async () => {
      // Prepare
      const world = createWorld({ rotationWaitMs: 2_000 });
      await ledgerKey(world);
      world.kms.recordOnDemandAfterPolls = 'never';

      // Act
      const report = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      expect(report.outcome).toBe('in-progress');
      expect(world.sleeper.sleeps).toEqual([500, 1_000]);
      expect(world.sleeper.total).toBeLessThanOrEqual(2_000);
    });

    it.each([
      {
        failure: 'data encrypted before the rotation no longer decrypts (the canary)',
        fault: 'drops-earlier-material' as const,
        failedCheck: 'canary',
      },
      {
        failure: 'the new key material does not round-trip',
        fault: 'corrupt-new-material' as const,
        failedCheck: 'round-trip',
      },
    ])('fails with RotationFailed CRITICAL and keeps the old canary, when $failure', async ({ fault, failedCheck }) => {
      // Prepare
      const world = createWorld();
      const keyId = await ledgerKey(world);
      world.kms.rotationFault = fault;
      const canaryBefore = world.records.byKey.get(keyId)?.canary;

      // Act
      const error = await rotateKey(request({ key: ALIAS }), world.deps).catch((caught: unknown) => caught);

      // Assess
      expect(error).toBeInstanceOf(RotationFailedError);
      const report = (error as RotationFailedError).report;
      expect(report.notification).toEqual({ type: 'RotationFailed', severity: 'CRITICAL' });
      expect(stepStatuses(report)).toEqual([
        ['rotateKeyOnDemand', 'done'],
        ['waitForRotation', 'done'],
        ['validate', 'failed'],
      ]);
      expect(checkStatuses(report.checks)[failedCheck]).toBe('failed');
      expect((error as Error).message).toContain(`${failedCheck}:`);
      expect(world.notifier.kinds()).toEqual(['RotationFailed/CRITICAL']);
      expect(world.notifier.published[0]).toMatchObject({ keyId, details: { strategy: 'on-demand' } });
      expect(world.records.byKey.get(keyId)?.canary).toEqual(canaryBefore);
    });

    it('rotates for the 25th time, when 24 on-demand rotations are in the history', async () => {
      // Prepare
      const world = createWorld();
      const keyId = await ledgerKey(world, { history: onDemandHistory(24) });

      // Act
      const report = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      expect(report.outcome).toBe('completed');
      expect(report.summary).toContain('rotation 25 of 25');
      expect(world.kms.rotationOf(keyId).onDemandRotations).toBe(25);
    });

    it('validates its own 25th rotation again when asked moments later (the answer was lost), instead of refusing for the limit', async () => {
      // Prepare: the 25th rotation, done by a run whose caller never heard back.
      const world = createWorld();
      const keyId = await ledgerKey(world, { history: onDemandHistory(24) });
      await rotateKey(request({ key: ALIAS }), world.deps);
      world.clock.advance(60_000);

      // Act
      const rerun = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess: that rotation validated again; nothing waited for, no rotation spent.
      expect(rerun.outcome).toBe('completed');
      expect(stepStatuses(rerun)).toEqual([
        ['rotateKeyOnDemand', 'skipped'],
        ['validate', 'done'],
      ]);
      expect(world.kms.rotationOf(keyId).onDemandRotations).toBe(25);
    });

    it('rotates imported key material on demand into the material waiting as PENDING_ROTATION', async () => {
      // Prepare
      const world = createWorld();
      const keyId = await ledgerKey(world, {
        origin: 'EXTERNAL',
        pendingImportedMaterial: true,
        rotationEnabled: false,
      });
      const pending = (await world.kms.listRotations(keyId, { includeKeyMaterial: true })).find(
        (record) => record.keyMaterialState === 'PENDING_ROTATION',
      );

      // Act
      const report = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      expect(report).toMatchObject({ outcome: 'completed', strategy: 'on-demand' });
      expect((await world.kms.describeKey(keyId)).currentKeyMaterialId).toBe(pending?.keyMaterialId);
      expect(checkStatuses(report.checks)).toMatchObject({ canary: 'passed', 'current-material': 'passed' });
    });

    it('reports the imported key material current after the rotation (the one that was PENDING_ROTATION, IMPORTED) and none left pending, in the report and its notification', async () => {
      // Prepare
      const world = createWorld();
      const keyId = await ledgerKey(world, {
        origin: 'EXTERNAL',
        pendingImportedMaterial: true,
        rotationEnabled: false,
      });
      const before = await world.kms.listRotations(keyId, { includeKeyMaterial: true });
      const pending = before.find((record) => record.keyMaterialState === 'PENDING_ROTATION')?.keyMaterialId as string;
      const previous = before.find((record) => record.keyMaterialState === 'CURRENT')?.keyMaterialId as string;

      // Act
      const report = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      const keyMaterial = {
        current: { keyMaterialId: pending, keyMaterialState: 'CURRENT', importState: 'IMPORTED' },
        pendingRotation: [],
      };
      expect(pending).not.toBe(previous);
      expect(report.keyMaterial).toEqual(keyMaterial);
      expect(report.summary).toBe(
        `Rotated ${keyId} on demand and validated the new key material (rotation 1 of 25): current material ${pending}, IMPORTED`,
      );
      expect(world.notifier.published.at(-1)?.details.keyMaterial).toEqual(keyMaterial);
    });

    it('reports, in a dry run, the imported material current now and the one waiting as PENDING_ROTATION, and changes nothing', async () => {
      // Prepare
      const world = createWorld();
      const keyId = await ledgerKey(world, {
        origin: 'EXTERNAL',
        pendingImportedMaterial: true,
        rotationEnabled: false,
      });
      const before = await world.kms.listRotations(keyId, { includeKeyMaterial: true });
      const pending = before.find((record) => record.keyMaterialState === 'PENDING_ROTATION')?.keyMaterialId;
      const current = before.find((record) => record.keyMaterialState === 'CURRENT')?.keyMaterialId;

      // Act
      const report = await rotateKey(request({ key: ALIAS, dryRun: true }), world.deps);

      // Assess
      expect(report.outcome).toBe('planned');
      expect(report.keyMaterial).toEqual({
        current: { keyMaterialId: current, keyMaterialState: 'CURRENT', importState: 'IMPORTED' },
        pendingRotation: [{ keyMaterialId: pending, keyMaterialState: 'PENDING_ROTATION', importState: 'IMPORTED' }],
      });
      expect(world.kms.rotationOf(keyId).onDemandRotations).toBe(0);
    });

    it('reports no key material for a key with KMS material (the report stays as it was)', async () => {
      const world = createWorld();
      await ledgerKey(world);
      const report = await rotateKey(request({ key: ALIAS }), world.deps);
      expect(report.outcome).toBe('completed');
      expect(report.keyMaterial).toBeUndefined();
    });

    it('spends no other on-demand rotation when the key was rotated on demand moments ago, and rotates when forced', async () => {
      // Prepare
      const world = createWorld();
      const keyId = await ledgerKey(world, {
        history: [{ rotationType: 'ON_DEMAND', rotationDate: new Date(START.getTime() - RECENT_ROTATION_MS / 2) }],
      });

      // Act
      const rerun = await rotateKey(request({ key: ALIAS }), world.deps);
      const afterRerun = world.kms.callsSince(0, 'rotateKeyOnDemand').length;
      const forced = await rotateKey(request({ key: ALIAS, force: true }), world.deps);

      // Assess
      expect(afterRerun).toBe(0);
      expect(rerun.steps.filter((step) => step.status === 'done').map((step) => step.step)).not.toContain(
        'rotateKeyOnDemand',
      );
      expect(forced.outcome).toBe('completed');
      expect(forced.steps[0]).toMatchObject({ step: 'rotateKeyOnDemand', status: 'done' });
      expect(world.kms.callsSince(0, 'rotateKeyOnDemand')).toHaveLength(1);
      expect(world.kms.rotationOf(keyId).onDemandRotations).toBe(2);
    });

    it('plans the rotation without any mutating call or notification, when it is a dry run', async () => {
      // Prepare
      const world = createWorld();
      const keyId = await ledgerKey(world, { history: onDemandHistory(7) });
      const before = world.kms.snapshot();

      // Act
      const report = await rotateKey(request({ key: ALIAS, dryRun: true }), world.deps);

      // Assess
      expect(report).toMatchObject({ outcome: 'planned', dryRun: true, strategy: 'on-demand', keyId });
      expect(stepStatuses(report)).toEqual([
        ['rotateKeyOnDemand', 'planned'],
        ['waitForRotation', 'planned'],
        ['validate', 'planned'],
      ]);
      expect(report.summary).toContain('rotation 8 of 25');
      expect(world.kms.mutatingCallsSince(0)).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
      expect(world.records.saves).toEqual([]);
      expect(world.sleeper.sleeps).toEqual([]);
      expect(world.notifier.published).toEqual([]);
    });
  });
});
