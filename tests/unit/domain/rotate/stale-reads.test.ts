import { describe, expect, it } from 'vitest';
import { AwsServiceError } from '../../../../src/domain/errors';
import { LINEAGE } from '../../../../src/domain/lineage';
import { RotationFailedError, rotateKey } from '../../../../src/domain/rotate-key';
import { withStaleReads } from './support/stale-view';
import { addManagedKey, createWorld, request } from './support/world';

const ALIAS = 'alias/orders/signing';
/** How long a read may answer as before a write: KMS says seconds, sometimes minutes. */
const WINDOW_MS = 5_000;

/**
 * KMS is eventually consistent: a read just after a write may answer with the state from before
 * it (https://docs.aws.amazon.com/kms/latest/developerguide/programming-eventual-consistency.html).
 * The same request made again right after a rotation must not take the rotation for one not begun.
 */
describe('rotateKey under stale reads', () => {
  const signingKey = () => {
    const world = createWorld();
    const predecessor = addManagedKey(world, [ALIAS], { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' });
    const view = withStaleReads(world, WINDOW_MS);
    return { world, predecessor, view };
  };

  it('a re-run right after a finished alias-swap makes no second successor and moves no alias', async () => {
    const { world, predecessor, view } = signingKey();

    const first = await rotateKey(request({ key: ALIAS }), world.deps);
    const from = world.kms.calls.length;
    const rerun = await rotateKey(request({ key: ALIAS }), world.deps);

    expect(first.outcome).toBe('completed');
    expect(world.kms.callsSince(0, 'createKey')).toHaveLength(1);
    expect(world.kms.mutationsSince(from)).toEqual([]);
    expect(rerun.outcome).toBe('nothing-to-do');
    const successors = (await world.kms.keysTagged(LINEAGE.predecessor, predecessor)).map(({ keyId }) => keyId);
    expect(successors).toEqual([first.successor]);
    // The reads were stale: the run read its writes back only after waiting.
    expect(view.staleAnswers()).toBeGreaterThan(0);
    expect(world.sleeper.total).toBeGreaterThan(0);
  });

  it('a rollback right after the alias-swap rolls that rotation back, and its re-run changes nothing', async () => {
    const { world, predecessor } = signingKey();
    const swapped = await rotateKey(request({ key: ALIAS }), world.deps);

    const rolledBack = await rotateKey(request({ key: ALIAS, action: 'rollback' }), world.deps);
    const from = world.kms.calls.length;
    const rerun = await rotateKey(request({ key: ALIAS, action: 'rollback' }), world.deps);

    expect(rolledBack).toMatchObject({ outcome: 'completed', keyId: predecessor, successor: swapped.successor });
    expect(world.kms.snapshot().aliases).toEqual([`${ALIAS}->${predecessor}`]);
    expect(world.kms.mutationsSince(from)).toEqual([]);
    expect(rerun.outcome).toBe('nothing-to-do');
  });

  it('fails, retryable and saying why, when its writes do not read back within the wait; never reports them done', async () => {
    const world = createWorld();
    addManagedKey(world, [ALIAS], { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' });
    // Reads made before the writes answer as before them for as long as anyone waits.
    withStaleReads(world, Number.POSITIVE_INFINITY);

    const failure = await rotateKey(request({ key: ALIAS }), world.deps).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(RotationFailedError);
    const cause = (failure as RotationFailedError).cause;
    expect(cause).toBeInstanceOf(AwsServiceError);
    expect(cause).toMatchObject({ retryable: true });
    expect((failure as Error).message).toMatch(/written, but KMS does not show it after 30 s.*retryable/);
    expect(world.notifier.kinds()).toEqual(['RotationFailed/CRITICAL']);
    // It waited about as long as it may, no longer.
    expect(world.sleeper.total).toBeLessThanOrEqual(30_000);
    expect(world.sleeper.total).toBeGreaterThan(15_000);
  });
});
