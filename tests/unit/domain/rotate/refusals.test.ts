import { describe, expect, it } from 'vitest';
import { PreconditionFailedError } from '../../../../src/domain/errors';
import { type RotateRequest, rotateKey } from '../../../../src/domain/rotate-key';
import type { FakeKeyInit } from './support/fake-kms';
import { addManagedKey, createWorld, LOCATION, request, START, type World } from './support/world';

const ALIAS = 'alias/billing/key';

/** Rotations long enough ago not to count as "moments ago". */
const onDemandHistory = (count: number) =>
  Array.from({ length: count }, (_, index) => ({
    rotationType: 'ON_DEMAND' as const,
    rotationDate: new Date(START.getTime() - (count - index) * 86_400_000),
  }));

interface Refusal {
  refusal: string;
  /** Adds the key to refuse; returns the reference the request names. */
  key: (world: World) => string;
  request?: Partial<RotateRequest>;
  reason: PreconditionFailedError['reason'];
  message: RegExp;
  /** Faults or state set up after the key. */
  arrange?: (world: World) => void;
  /** Whether RotateKeyOnDemand was called (and refused by KMS). */
  askedKms?: boolean;
}

const managed = (init: FakeKeyInit) => (world: World) => {
  addManagedKey(world, [ALIAS], init);
  return ALIAS;
};

const REFUSALS: Refusal[] = [
  {
    refusal: 'a key kms-rotation does not manage',
    key: (world) => world.kms.addKey({ aliases: [ALIAS], tags: { team: 'billing' } }),
    reason: 'not-managed',
    message: /not managed by kms-rotation/,
  },
  {
    refusal: 'an AWS managed key named by its id',
    key: (world) => world.kms.addKey({ keyManager: 'AWS', aliases: ['alias/aws/s3'] }),
    reason: 'aws-managed',
    message: /AWS managed/,
  },
  {
    refusal: 'a disabled key',
    key: managed({ keyState: 'Disabled' }),
    reason: 'key-disabled',
    message: /Disabled/,
  },
  {
    refusal: 'a key pending deletion',
    key: managed({ keyState: 'PendingDeletion' }),
    reason: 'key-pending-deletion',
    message: /PendingDeletion/,
  },
  {
    refusal: 'a multi-Region replica',
    key: managed({ multiRegion: true, multiRegionKeyType: 'REPLICA' }),
    reason: 'replica',
    message: /replica/,
  },
  {
    refusal: 'a key agreement key',
    key: managed({ keySpec: 'ECC_NIST_P256', keyUsage: 'KEY_AGREEMENT' }),
    reason: 'wrong-key-type',
    message: /key agreement/,
  },
  {
    refusal: 'strategy on-demand for an asymmetric key',
    key: managed({ keySpec: 'RSA_4096', keyUsage: 'SIGN_VERIFY' }),
    request: { strategy: 'on-demand' },
    reason: 'strategy-mismatch',
    message: /cannot be rotated on demand/,
  },
  {
    refusal: 'strategy on-demand for an HMAC key',
    key: managed({ keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' }),
    request: { strategy: 'on-demand' },
    reason: 'strategy-mismatch',
    message: /cannot be rotated on demand/,
  },
  {
    refusal: 'strategy alias-swap for imported key material',
    key: managed({ origin: 'EXTERNAL', pendingImportedMaterial: true }),
    request: { strategy: 'alias-swap' },
    reason: 'strategy-mismatch',
    message: /imported key material/,
  },
  {
    refusal: 'imported key material with no new material PENDING_ROTATION',
    key: managed({ origin: 'EXTERNAL' }),
    reason: 'no-pending-material',
    message: /PENDING_ROTATION/,
  },
  {
    refusal: 'a key that has used its 25 on-demand rotations',
    key: managed({ history: onDemandHistory(25) }),
    reason: 'on-demand-limit',
    message: /used 25 of its 25 on-demand rotations/,
  },
  {
    refusal: 'a key with an on-demand rotation in progress',
    key: managed({ onDemandRotationStartDate: new Date(START.getTime() - 60_000) }),
    reason: 'rotation-conflict',
    message: /in progress since/,
  },
  {
    refusal: 'a rotation KMS refuses with ConflictException',
    key: managed({}),
    arrange: (world) =>
      world.kms.failAt('rotateKeyOnDemand', 1, {
        error: new PreconditionFailedError(
          'rotation-conflict',
          'automatic rotation in progress (KMS: ConflictException)',
        ),
      }),
    reason: 'rotation-conflict',
    message: /ConflictException/,
    askedKms: true,
  },
  {
    refusal: 'a rotation KMS refuses with LimitExceededException',
    key: managed({ history: onDemandHistory(3) }),
    arrange: (world) =>
      world.kms.failAt('rotateKeyOnDemand', 1, {
        error: new PreconditionFailedError(
          'on-demand-limit',
          'all on-demand rotations used (KMS: LimitExceededException)',
        ),
      }),
    reason: 'on-demand-limit',
    message: /LimitExceededException/,
    askedKms: true,
  },
  {
    refusal: 'a key in an external key store',
    key: managed({ origin: 'EXTERNAL_KEY_STORE', customKeyStoreId: 'cks-xks0000000000001' }),
    reason: 'wrong-key-type',
    message: /external key store/,
  },
  {
    refusal: 'a key that does not exist',
    key: () => 'alias/billing/missing',
    reason: 'key-not-found',
    message: /not found/,
  },
];

const HERE = `${LOCATION.region}:${LOCATION.account}`;

/** References rotate can judge alone: refused before any AWS call (describing `alias/aws/*` creates that key). */
const FOREIGN_OR_AWS_MANAGED = [
  { refusal: 'an AWS managed alias', key: 'alias/aws/s3', message: /AWS managed key/ },
  { refusal: 'the ARN of an AWS managed alias', key: `arn:aws:kms:${HERE}:alias/aws/ebs`, message: /AWS managed key/ },
  {
    refusal: 'a key ARN of another account',
    key: `arn:aws:kms:${LOCATION.region}:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
    message: /partition, account and Region/,
  },
  {
    refusal: 'a key ARN of another Region',
    key: `arn:aws:kms:eu-west-1:${LOCATION.account}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
    message: /partition, account and Region/,
  },
  {
    refusal: 'an alias ARN of another partition',
    key: `arn:aws-cn:kms:${HERE}:alias/billing/key`,
    message: /partition, account and Region/,
  },
];

describe('Function: rotateKey', () => {
  describe('refusals', () => {
    it.each(FOREIGN_OR_AWS_MANAGED)('refuses $refusal before any AWS call, even as a dry run', async (refusal) => {
      for (const dryRun of [false, true]) {
        // Prepare
        const world = createWorld();
        world.kms.addKey({ keyManager: 'AWS', aliases: ['alias/aws/s3'] });
        addManagedKey(world, [ALIAS]);
        const from = world.kms.calls.length;

        // Act
        const error = await rotateKey(request({ key: refusal.key, dryRun }), world.deps).catch(
          (caught: unknown) => caught,
        );

        // Assess
        expect(error).toMatchObject({ name: 'InvalidInputError', retryable: false });
        expect((error as Error).message).toMatch(new RegExp(`^key .*${refusal.message.source}`));
        expect(world.kms.callsSince(from)).toEqual([]);
        expect(world.notifier.published).toEqual([]);
      }
    });

    it.each(REFUSALS)('refuses $refusal with no change and no notification', async (refusal) => {
      // Prepare
      const world = createWorld();
      const key = refusal.key(world);
      refusal.arrange?.(world);
      const before = world.kms.snapshot();

      // Act
      const error = await rotateKey(request({ key, ...refusal.request }), world.deps).catch(
        (caught: unknown) => caught,
      );

      // Assess
      expect(error).toBeInstanceOf(PreconditionFailedError);
      expect(error).toMatchObject({ reason: refusal.reason, retryable: false });
      expect((error as Error).message).toMatch(refusal.message);
      expect(world.kms.callsSince(0, 'rotateKeyOnDemand')).toHaveLength(refusal.askedKms ? 1 : 0);
      expect(world.kms.mutationsSince(0)).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
      expect(world.notifier.published).toEqual([]);
    });

    it('refuses strategy on-demand for an unfinished alias-swap of a symmetric key, leaving it as it was', async () => {
      // Prepare
      const world = createWorld();
      addManagedKey(world, [ALIAS]);
      world.kms.failAt('updateAlias', 1);
      await rotateKey(request({ key: ALIAS, strategy: 'alias-swap' }), world.deps).catch(() => undefined);
      const before = world.kms.snapshot();
      const from = world.kms.calls.length;
      const published = world.notifier.published.length;

      // Act
      const error = await rotateKey(request({ key: ALIAS, strategy: 'on-demand' }), world.deps).catch(
        (caught: unknown) => caught,
      );

      // Assess
      expect(error).toMatchObject({ name: 'PreconditionFailedError', reason: 'strategy-mismatch' });
      expect((error as Error).message).toContain('unfinished alias-swap rotation rotation-0001');
      expect(world.kms.mutatingCallsSince(from)).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
      expect(world.notifier.published).toHaveLength(published);
    });

    it('refuses an alias-swap whose declared alias lies outside aliasScope, before any call that changes something', async () => {
      // Prepare
      const world = createWorld({ aliasScope: ['alias/app/*'] });
      addManagedKey(world, [ALIAS], { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' });
      const before = world.kms.snapshot();

      // Act
      const error = await rotateKey(request({ key: ALIAS }), world.deps).catch((caught: unknown) => caught);

      // Assess
      expect(error).toMatchObject({ name: 'PreconditionFailedError', reason: 'alias-not-movable', retryable: false });
      expect((error as Error).message).toContain(
        `${ALIAS} is outside the aliases kms-rotation may move (aliasScope: alias/app/*)`,
      );
      expect(world.kms.mutationsSince(0)).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
    });

    it('moves no alias while a declared alias points at a key outside the rotation, and finishes with the same successor once it is pointed back', async () => {
      // Prepare
      const world = createWorld();
      const predecessor = addManagedKey(world, [ALIAS, 'alias/billing/second'], {
        keySpec: 'RSA_2048',
        keyUsage: 'SIGN_VERIFY',
      });
      const stranger = world.kms.addKey({ keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY', tags: { team: 'other' } });
      await world.kms.updateAlias('alias/billing/second', stranger);

      // Act
      const error = await rotateKey(request({ key: predecessor }), world.deps).catch((caught: unknown) => caught);

      // Assess
      expect(error).toMatchObject({ name: 'RotationFailedError', cause: { reason: 'alias-not-movable' } });
      expect(world.notifier.published.map((notification) => notification.type)).toEqual(['RotationFailed']);
      expect((error as Error).message).toContain(
        `alias/billing/second points at ${stranger}, a key outside this rotation`,
      );
      expect(world.kms.callsSince(0, 'updateAlias').map((call) => call.args)).toEqual([
        ['alias/billing/second', stranger],
      ]);
      expect(world.kms.callsSince(0, 'createAlias')).toEqual([]);
      expect(world.kms.aliasTarget(ALIAS)).toBe(predecessor);

      // Act: the operator points it back, then runs the rotation again
      await world.kms.updateAlias('alias/billing/second', predecessor);
      const report = await rotateKey(request({ key: predecessor }), world.deps);

      // Assess
      expect(report.outcome).toBe('completed');
      expect(world.kms.callsSince(0, 'createKey')).toHaveLength(1);
      expect(world.kms.aliasTarget(ALIAS)).toBe(report.successor);
      expect(world.kms.aliasTarget('alias/billing/second')).toBe(report.successor);
    });

    it("refuses to alias-swap a self-test run's throwaway key, before any change: only that run may", async () => {
      // Prepare
      const world = createWorld();
      addManagedKey(world, [ALIAS], {
        keySpec: 'RSA_2048',
        keyUsage: 'SIGN_VERIFY',
        tags: { 'kms-rotation:self-test': 'run-7' },
      });
      const before = world.kms.snapshot();

      // Act
      const error = await rotateKey(request({ key: ALIAS }), world.deps).catch((caught: unknown) => caught);

      // Assess
      expect(error).toMatchObject({ name: 'PreconditionFailedError', reason: 'not-managed' });
      expect((error as Error).message).toContain('throwaway key of self-test run run-7');
      expect(world.kms.mutationsSince(0)).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
    });

    it('calls RotateKeyOnDemand exactly once and does not try again, when KMS answers ConflictException', async () => {
      // Prepare
      const world = createWorld();
      addManagedKey(world, [ALIAS]);
      world.kms.failAt('rotateKeyOnDemand', 1, {
        error: new PreconditionFailedError('rotation-conflict', 'KMS: ConflictException'),
      });

      // Act
      const attempt = rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      await expect(attempt).rejects.toMatchObject({ reason: 'rotation-conflict' });
      expect(world.kms.callsSince(0, 'rotateKeyOnDemand')).toHaveLength(1);
      expect(world.sleeper.sleeps).toEqual([]);
    });
  });
});
