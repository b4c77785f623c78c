import { describe, expect, it } from 'vitest';
import { promoteAliases } from '../../../../src/domain/alias-swap';
import { declaredTagsOfSwap, keyAndTags, locateSwap } from '../../../../src/domain/alias-swap-state';
import { AwsServiceError, VerificationFailedError } from '../../../../src/domain/errors';
import { LINEAGE } from '../../../../src/domain/lineage';
import { rotateKey } from '../../../../src/domain/rotate-key';
import { addManagedKey, createWorld, request, type World } from './support/world';

const ALIAS = 'alias/orders/data';
const swapOf = (key: string) => request({ key, strategy: 'alias-swap' });

/** A swap whose run died right after CreateKey: the successor exists and has proved nothing. */
const createdNotVerified = async (world: World): Promise<{ predecessor: string; successor: string }> => {
  const predecessor = addManagedKey(world, [ALIAS]);
  world.kms.failAt('encrypt', 1, { when: 'before' });
  await rotateKey(swapOf(ALIAS), world.deps).catch(() => undefined);
  const successor = world.kms.keyIds().find((keyId) => keyId !== predecessor) as string;
  expect(world.kms.tagsOf(successor)[LINEAGE.state]).toBe('created');
  return { predecessor, successor };
};

/**
 * The alias-swap's safety decisions, each on its own (mutation testing found that the end-to-end
 * tests did not notice any of them missing): what is read, what is resumed, and that no alias
 * moves onto a successor that has not proved itself.
 */
describe('Alias-swap guards', () => {
  it('fails with the error of the orphan search (retryable), creating no key, when the tagging API cannot answer', async () => {
    const world = createWorld();
    const predecessor = addManagedKey(world, [ALIAS]);
    const throttled = new AwsServiceError('GetResources', true, 'GetResources failed: ThrottlingException');
    world.kms.failAt('keysTagged', 1, { error: throttled });

    const outcome = await rotateKey(swapOf(predecessor), world.deps).catch((error: unknown) => error);

    expect(outcome).toMatchObject({ retryable: true });
    expect(JSON.stringify(outcome)).not.toContain('TypeError');
    expect(world.kms.callsSince(0, 'createKey')).toEqual([]);
    expect(world.kms.keyIds()).toEqual([predecessor]);
  });

  it('never moves an alias onto a successor that has not passed verification, and a dry run only plans it', async () => {
    const world = createWorld();
    const { predecessor, successor } = await createdNotVerified(world);
    const swap = await locateSwap(predecessor, world.deps, { prepareSuccessor: () => false });
    expect(swap.successor?.keyId).toBe(successor);
    const before = world.kms.calls.length;

    await expect(promoteAliases(swap, world.deps, false)).rejects.toBeInstanceOf(VerificationFailedError);
    const planned = await promoteAliases(swap, world.deps, true);

    expect(planned.status).toBe('planned');
    expect(world.kms.mutatingCallsSince(before)).toEqual([]);
    expect(world.kms.aliasTarget(ALIAS)).toBe(predecessor);
  });

  it('reads the tags of a key named by alias by its key id (ListResourceTags takes no alias)', async () => {
    const world = createWorld();
    const keyId = addManagedKey(world, [ALIAS]);
    const before = world.kms.calls.length;

    const [key, tags] = await keyAndTags(world.deps.keys, ALIAS);

    expect(key.keyId).toBe(keyId);
    expect(tags[LINEAGE.state]).toBeUndefined();
    expect(world.kms.callsSince(before, 'listTags').map((call) => call.args[0])).toEqual([keyId]);
  });

  it("takes the declared state from the successor once it carries it (ops may have changed it there), else the predecessor's", () => {
    const predecessor = {
      'kms-rotation:managed': 'false',
      'kms-rotation:aliases': 'alias/a',
      'kms-rotation:period-days': '365',
    };
    const successor = {
      'kms-rotation:managed': 'true',
      'kms-rotation:aliases': 'alias/b',
      'kms-rotation:period-days': '180',
    };

    expect(declaredTagsOfSwap(predecessor, successor)).toMatchObject({
      'kms-rotation:aliases': 'alias/b',
      'kms-rotation:period-days': '180',
    });
    expect(declaredTagsOfSwap(predecessor, { ...successor, 'kms-rotation:managed': 'false' })).toMatchObject({
      'kms-rotation:managed': 'true',
      'kms-rotation:aliases': 'alias/a',
      'kms-rotation:period-days': '365',
    });
  });

  it('resumes no rotation from a key whose lineage its predecessor does not confirm (another rotation id)', async () => {
    const world = createWorld();
    const { predecessor, successor } = await createdNotVerified(world);
    // The predecessor now belongs to another rotation: the successor's claim is not confirmed.
    await world.kms.tagKey(predecessor, { [LINEAGE.rotationId]: 'rotation-other' });
    const before = world.kms.calls.length;

    const outcome = await rotateKey(swapOf(successor), world.deps).catch((error: unknown) => error);

    expect(outcome).toMatchObject({ name: 'PreconditionFailedError', reason: 'not-managed' });
    expect(world.kms.mutatingCallsSince(before)).toEqual([]);
    expect(world.kms.aliasTarget(ALIAS)).toBe(predecessor);
  });

  it('resumes a rotation its predecessor names without a successor yet (tags edited by hand), creating the successor under that rotation', async () => {
    const world = createWorld();
    const predecessor = addManagedKey(world, [ALIAS]);
    await world.kms.tagKey(predecessor, { [LINEAGE.rotationId]: 'rotation-by-hand', [LINEAGE.state]: 'rotating' });

    const report = await rotateKey(swapOf(predecessor), world.deps);

    const successor = world.kms.keyIds().find((keyId) => keyId !== predecessor) as string;
    expect(report).toMatchObject({ outcome: 'completed', rotationId: 'rotation-by-hand' });
    expect(world.kms.tagsOf(successor)[LINEAGE.rotationId]).toBe('rotation-by-hand');
    expect(world.kms.aliasTarget(ALIAS)).toBe(successor);
  });

  it('never resumes an old rotation from a retired key whose successor has since been rotated again', async () => {
    const world = createWorld();
    const first = addManagedKey(world, [ALIAS]);
    await rotateKey(swapOf(ALIAS), world.deps);
    await rotateKey(swapOf(ALIAS), world.deps);
    const latest = world.kms.aliasTarget(ALIAS);
    const before = world.kms.calls.length;

    const outcome = await rotateKey(swapOf(first), world.deps).catch((error: unknown) => error);

    expect(outcome).toMatchObject({ name: 'PreconditionFailedError', reason: 'not-managed' });
    expect(world.kms.mutatingCallsSince(before)).toEqual([]);
    expect(world.kms.aliasTarget(ALIAS)).toBe(latest);
    expect(latest).not.toBe(first);
  });

  it('rolls back a key that declares no aliases: the aliases step says there is nothing to restore', async () => {
    const world = createWorld();
    const predecessor = addManagedKey(world, [], {
      keySpec: 'HMAC_256',
      keyUsage: 'GENERATE_VERIFY_MAC',
      macAlgorithms: ['HMAC_SHA_256'],
    });
    const rotated = await rotateKey(request({ key: predecessor }), world.deps);
    world.clock.advance(60_000);

    const report = await rotateKey(request({ key: rotated.successor as string, action: 'rollback' }), world.deps);

    expect(report.steps.find((step) => step.step === 'restoreAliases')).toEqual({
      step: 'restoreAliases',
      status: 'skipped',
      detail: 'no aliases are declared',
    });
  });

  it('reads imported material (ListKeyRotations with IncludeKeyMaterial) only for a key with imported material', async () => {
    const world = createWorld();
    const keyId = addManagedKey(world, [ALIAS]);

    await rotateKey(request({ key: keyId }), world.deps);

    const withMaterial = world.kms
      .callsSince(0, 'listRotations')
      .filter((call) => (call.args[1] as { includeKeyMaterial?: boolean } | undefined)?.includeKeyMaterial);
    expect(world.kms.callsSince(0, 'rotateKeyOnDemand')).toHaveLength(1);
    expect(withMaterial).toEqual([]);
  });
});
