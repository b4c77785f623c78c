import { describe, expect, it } from 'vitest';
import { PreconditionFailedError } from '../../../../src/domain/errors';
import { LINEAGE } from '../../../../src/domain/lineage';
import { rotateKey } from '../../../../src/domain/rotate-key';
import { addManagedKey, createWorld, request, START } from './support/world';

const ALIAS = 'alias/orders/signing';
const OTHER_RUN = 'kms-rotation-test-rotate request-0';
const RSA = { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' } as const;

/** Keys that name `predecessor` as theirs: one per alias-swap. */
const successorsOf = (world: ReturnType<typeof createWorld>, predecessor: string) =>
  world.kms.keyIds().filter((keyId) => world.kms.tagsOf(keyId)[LINEAGE.predecessor] === predecessor);

describe('Function: rotateKey', () => {
  describe('one run at a time per key', () => {
    it.each([
      ['an alias-swap', { key: ALIAS }, RSA, false],
      ['an on-demand rotation', { key: ALIAS, strategy: 'on-demand' as const }, {}, false],
      ['a rollback (the other run holds the successor)', { key: ALIAS, action: 'rollback' as const }, RSA, true],
    ])(
      'refuses %s while another run holds the key, naming it and until when, changing nothing',
      async (_name, asked, init, rotated) => {
        // Prepare
        const world = createWorld();
        const predecessor = addManagedKey(world, [ALIAS], init);
        const keyId = rotated
          ? ((await rotateKey(request({ key: ALIAS }), world.deps)).successor as string)
          : predecessor;
        const until = new Date(START.getTime() + 120_000);
        world.leases.held.set(keyId, { keyId, holder: OTHER_RUN, purpose: 'rotate', until });
        const before = world.kms.snapshot();
        const from = world.kms.calls.length;
        const published = world.notifier.published.length;

        // Act
        const error = await rotateKey(request(asked), world.deps).catch((caught: unknown) => caught);

        // Assess
        expect(error).toBeInstanceOf(PreconditionFailedError);
        expect(error).toMatchObject({ reason: 'key-busy', retryable: false });
        expect((error as Error).message).toBe(
          `${keyId} is being changed by another run: ${OTHER_RUN} holds it until ${until.toISOString()} (rotate); nothing was changed, try again after that`,
        );
        expect(world.kms.mutatingCallsSince(from)).toEqual([]);
        expect(world.kms.snapshot()).toEqual(before);
        expect(world.notifier.published).toHaveLength(published);
        expect([...world.leases.held.values()].map((lease) => lease.holder)).toEqual([OTHER_RUN]);
      },
    );

    it('takes over a lease whose run has ended (its deadline passed), and gives it back when done', async () => {
      // Prepare
      const world = createWorld();
      const predecessor = addManagedKey(world, [ALIAS], RSA);
      world.leases.held.set(predecessor, {
        keyId: predecessor,
        holder: OTHER_RUN,
        purpose: 'rotate',
        until: new Date(START.getTime() - 1),
      });

      // Act
      const report = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      expect(report.outcome).toBe('completed');
      expect(successorsOf(world, predecessor)).toEqual([report.successor]);
      expect(world.leases.calls).toEqual([`acquire ${predecessor}`, `release ${predecessor}`]);
      expect(world.leases.held.size).toBe(0);
    });

    it('holds the key for as long as the invocation may still run, and a margin', async () => {
      // Prepare
      const world = createWorld();
      const predecessor = addManagedKey(world, [ALIAS], RSA);

      // Act
      await rotateKey(request({ key: ALIAS }), { ...world.deps, remainingMs: () => 90_000 });

      // Assess
      expect(world.leases.taken).toEqual([
        {
          keyId: predecessor,
          holder: world.deps.holder,
          purpose: 'rotate',
          until: new Date(START.getTime() + 90_000 + 30_000),
        },
      ]);
    });

    it('gives the lease back when the run fails', async () => {
      // Prepare
      const world = createWorld();
      const predecessor = addManagedKey(world, [ALIAS], RSA);
      world.kms.failAt('updateAlias', 1);

      // Act
      await expect(rotateKey(request({ key: ALIAS }), world.deps)).rejects.toThrow(/simulated crash/);

      // Assess
      expect(world.leases.calls).toEqual([`acquire ${predecessor}`, `release ${predecessor}`]);
      expect(world.leases.held.size).toBe(0);
    });

    it('reads the key again under the lease: a rotation another run finished meanwhile is not made twice', async () => {
      // Prepare: another run rotates the key between this run's first look and its lease
      const world = createWorld();
      const predecessor = addManagedKey(world, [ALIAS], RSA);
      let first: string | undefined;
      world.leases.meanwhile = async () => {
        first = (await rotateKey(request({ key: ALIAS }), { ...world.deps, holder: OTHER_RUN })).successor;
      };

      // Act
      const report = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      expect(successorsOf(world, predecessor)).toEqual([first]);
      expect(report).toMatchObject({ outcome: 'nothing-to-do', keyId: first });
      expect(world.kms.aliasTarget(ALIAS)).toBe(first);
    });

    it('holds both keys of a rollback, and nothing for a dry run', async () => {
      // Prepare
      const world = createWorld();
      const predecessor = addManagedKey(world, [ALIAS], RSA);
      const { successor } = await rotateKey(request({ key: ALIAS }), world.deps);
      world.leases.calls.length = 0;

      // Act
      await rotateKey(request({ key: ALIAS, action: 'rollback', dryRun: true }), world.deps);
      await rotateKey(request({ key: ALIAS, dryRun: true }), world.deps);
      const dryRunCalls = [...world.leases.calls];
      await rotateKey(request({ key: ALIAS, action: 'rollback' }), world.deps);

      // Assess
      expect(dryRunCalls).toEqual([]);
      expect(world.leases.calls).toEqual(
        [`acquire ${predecessor}`, `acquire ${successor}`]
          .sort()
          .concat([`release ${predecessor}`, `release ${successor}`].sort()),
      );
    });
  });
});
