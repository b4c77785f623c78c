import { describe, expect, it } from 'vitest';
import type { RotationRecord } from '../../../src/domain/model';
import { reconcileRotations, reconciliationEvent, rotationsToReconcile } from '../../../src/domain/reconcile-rotations';
import { validateRotation } from '../../../src/domain/validate-rotation';
import { addManagedKey, createWorld, LOCATION, seedCanary, type World } from './rotate/support/world';

const day = (n: number) => new Date(Date.UTC(2026, 1, n, 9, 0, 0));
const ALIAS = 'alias/app/orders';

/** A managed key with these automatic rotations in its history (newest last), and a canary on record. */
const keyWithHistory = async (world: World, days: number[]) => {
  const keyId = addManagedKey(world, [ALIAS], {
    rotationEnabled: true,
    history: days.map((n) => ({ rotationType: 'AUTOMATIC' as const, rotationDate: day(n) })),
  });
  await seedCanary(world, keyId);
  const key = await world.kms.describeKey(keyId);
  const history = await world.kms.listRotations(keyId);
  return { keyId, key, history };
};

/** The record says this history entry was the last one validated. */
const validatedUpTo = (world: World, keyId: string, entry: RotationRecord) => {
  const record = world.records.byKey.get(keyId) ?? {};
  world.records.byKey.set(keyId, {
    ...record,
    lastValidatedRotation: {
      keyMaterialId: entry.keyMaterialId,
      rotationDate: entry.rotationDate?.toISOString() as string,
    },
  });
};

describe('Function: rotationsToReconcile', () => {
  const history: RotationRecord[] = [
    { keyMaterialId: 'm3', rotationDate: day(3), rotationType: 'AUTOMATIC' },
    { keyMaterialId: 'm1', rotationDate: day(1), rotationType: 'AUTOMATIC' },
    { keyMaterialId: 'm2', rotationDate: day(2), rotationType: 'ON_DEMAND' },
    { keyMaterialId: 'm4', keyMaterialState: 'PENDING_ROTATION' },
    // Imported material waiting for its rotation is no rotation, whatever date it carries.
    { keyMaterialId: 'm5', rotationDate: day(4), keyMaterialState: 'PENDING_ROTATION' },
  ];

  it('lists the completed rotations after the last validated one, by material id, oldest first', () => {
    const pending = rotationsToReconcile(history, {
      lastValidatedRotation: { keyMaterialId: 'm1', rotationDate: day(1).toISOString() },
    });
    expect(pending.map((entry) => entry.keyMaterialId)).toEqual(['m2', 'm3']);
  });

  it('goes by date when the record names no material id, or one the history does not hold', () => {
    expect(rotationsToReconcile(history, { lastValidatedRotation: { rotationDate: day(2).toISOString() } })).toEqual([
      history[0],
    ]);
    expect(
      rotationsToReconcile(history, {
        lastValidatedRotation: { keyMaterialId: 'gone', rotationDate: day(1).toISOString() },
      }),
    ).toEqual([history[2], history[0]]);
  });

  it("reads a record from before reconciliation by its canary's date: the rotations after its last validation", () => {
    const canary = {
      ciphertext: 'x',
      plaintextSha256: 'a'.repeat(64),
      createdAt: new Date(day(2).getTime() + 60_000).toISOString(),
    };
    expect(rotationsToReconcile(history, { canary })).toEqual([history[0]]);
  });

  it('takes only the latest rotation of a key never validated, and nothing of a key never rotated', () => {
    expect(rotationsToReconcile(history, {})).toEqual([history[0]]);
    expect(rotationsToReconcile([], {})).toEqual([]);
    expect(
      rotationsToReconcile(history, {
        lastValidatedRotation: { keyMaterialId: 'm3', rotationDate: day(3).toISOString() },
      }),
    ).toEqual([]);
  });
});

describe('Function: reconcileRotations', () => {
  it('validates nothing, and asks KMS nothing, when no rotation came after the last validated one', async () => {
    const world = createWorld();
    const { keyId, key, history } = await keyWithHistory(world, [1, 2]);
    validatedUpTo(world, keyId, history[1] as RotationRecord);
    const before = world.kms.callsSince(0).length;
    expect(await reconcileRotations(key, history, world.deps)).toEqual([]);
    expect(world.kms.callsSince(before)).toEqual([]);
    expect(world.notifier.published).toEqual([]);
  });

  it('validates one rotation whose event was lost as onRotation would, and records it as the last validated', async () => {
    const world = createWorld();
    const { keyId, key, history } = await keyWithHistory(world, [1, 2]);
    validatedUpTo(world, keyId, history[0] as RotationRecord);
    const lost = history[1] as RotationRecord;

    const reconciled = await reconcileRotations(key, history, world.deps);

    const eventId = `reconcile:${keyId}:${lost.keyMaterialId}`;
    expect(reconciled).toEqual([
      {
        keyId,
        rotation: { keyMaterialId: lost.keyMaterialId, rotationDate: day(2).toISOString(), rotationType: 'AUTOMATIC' },
        outcome: 'validated',
        summary: `Rotation of ${ALIAS} validated: new material encrypts and decrypts (through ${ALIAS})`,
      },
    ]);
    expect(world.notifier.published).toEqual([
      {
        type: 'RotationValidated',
        severity: 'INFO',
        keyId,
        keyArn: key.arn,
        aliases: [ALIAS],
        account: LOCATION.account,
        region: LOCATION.region,
        occurredAt: world.clock.now().toISOString(),
        summary: `Rotation of ${ALIAS} validated: new material encrypts and decrypts (through ${ALIAS})`,
        details: {
          eventId,
          eventTime: day(2).toISOString(),
          rotationType: 'AUTOMATIC',
          checks: [
            { id: 'key-state', status: 'passed', detail: 'key is Enabled' },
            {
              id: 'key-type',
              status: 'passed',
              detail: 'symmetric encryption key (SYMMETRIC_DEFAULT / ENCRYPT_DECRYPT)',
            },
            {
              id: 'rotation-schedule',
              status: 'passed',
              detail: 'automatic rotation is enabled; no period is declared on the key',
            },
            {
              id: 'rotation-recorded',
              status: 'passed',
              detail: `AUTOMATIC recorded at ${day(2).toISOString()}, material ${lost.keyMaterialId}`,
            },
            {
              id: 'current-material',
              status: 'passed',
              detail: `current key material is ${lost.keyMaterialId}, as the event says`,
            },
            {
              id: 'round-trip',
              status: 'passed',
              detail: `encrypted and decrypted with ${keyId}, with an encryption context; encrypting through ${ALIAS} reaches it`,
            },
            {
              id: 'canary',
              status: 'passed',
              detail: 'data encrypted on 2026-01-01T00:00:00.000Z, before the rotation, still decrypts',
            },
          ],
          aliasDrift: [],
          undeclaredAliases: [],
          declaredStateProblems: [],
        },
      },
    ]);
    const record = world.records.byKey.get(keyId);
    expect(record?.lastValidatedRotation).toEqual({
      keyMaterialId: lost.keyMaterialId,
      rotationDate: day(2).toISOString(),
    });
    expect(record?.canary?.createdAt).toBe(world.clock.now().toISOString());
    // Under the key's lease, as onRotation validates.
    expect(world.leases.calls).toEqual([`acquire ${keyId}`, `release ${keyId}`]);
  });

  it('validates several, oldest first, each once; a re-run finds nothing left to do', async () => {
    const world = createWorld();
    const { keyId, key, history } = await keyWithHistory(world, [1, 2, 3, 4]);
    validatedUpTo(world, keyId, history[0] as RotationRecord);

    const first = await reconcileRotations(key, history, world.deps);
    expect(first.map((item) => [item.rotation.rotationDate, item.outcome])).toEqual([
      [day(2).toISOString(), 'validated'],
      [day(3).toISOString(), 'validated'],
      [day(4).toISOString(), 'validated'],
    ]);
    expect(world.notifier.published.map((n) => [n.type, n.details.eventId])).toEqual(
      history.slice(1).map((entry) => ['RotationValidated', `reconcile:${keyId}:${entry.keyMaterialId}`]),
    );
    // The two older ones were superseded: their current-material check says so, it does not fail.
    expect(
      world.notifier.published.map(
        (n) =>
          (n.details.checks as { id: string; status: string }[]).find((check) => check.id === 'current-material')
            ?.status,
      ),
    ).toEqual(['skipped', 'skipped', 'passed']);
    expect(world.records.byKey.get(keyId)?.lastValidatedRotation?.keyMaterialId).toBe(history[3]?.keyMaterialId);

    const again = await reconcileRotations(key, history, world.deps);
    expect(again).toEqual([]);
    expect(world.notifier.published).toHaveLength(3);
  });

  it('reports a rotation that fails validation, told once; the record does not move past it, so each audit counts it again', async () => {
    const world = createWorld();
    const { keyId, key, history } = await keyWithHistory(world, [1, 2]);
    validatedUpTo(world, keyId, history[0] as RotationRecord);
    world.kms.setDefect(keyId, 'wrong-plaintext');

    const first = await reconcileRotations(key, history, world.deps);
    expect(first.map((item) => item.outcome)).toEqual(['failed']);
    expect(world.notifier.kinds()).toEqual(['RotationValidationFailed/CRITICAL']);
    expect(world.notifier.published[0]?.summary).toBe(
      `Rotation of ${ALIAS} FAILED validation: decryption returned different data than was encrypted`,
    );
    expect(world.records.byKey.get(keyId)?.lastValidatedRotation?.keyMaterialId).toBe(history[0]?.keyMaterialId);

    const second = await reconcileRotations(key, history, world.deps);
    expect(second.map((item) => item.outcome)).toEqual(['failed']);
    expect(world.notifier.kinds()).toEqual(['RotationValidationFailed/CRITICAL']);
  });

  it('never moves the record back: a late event for an older rotation leaves the later one on record', async () => {
    const world = createWorld();
    const { keyId, key, history } = await keyWithHistory(world, [1, 2, 3]);
    validatedUpTo(world, keyId, history[2] as RotationRecord);
    const older = history[1] as RotationRecord & { rotationDate: Date };

    const report = await validateRotation(reconciliationEvent(key, older, world.deps.location), world.deps);

    expect(report.outcome).toBe('validated');
    expect(world.records.byKey.get(keyId)?.lastValidatedRotation?.keyMaterialId).toBe(history[2]?.keyMaterialId);
  });

  it('leaves a rotation it could not validate (the key held by another run) for the next audit, and stops there', async () => {
    const world = createWorld();
    const { keyId, key, history } = await keyWithHistory(world, [1, 2, 3]);
    validatedUpTo(world, keyId, history[0] as RotationRecord);
    const until = new Date(world.clock.now().getTime() + 60_000);
    world.leases.held.set(keyId, { keyId, holder: 'rotate other-request', purpose: 'alias-swap', until });

    const reconciled = await reconcileRotations(key, history, world.deps);
    expect(reconciled.map((item) => [item.rotation.rotationDate, item.outcome])).toEqual([
      [day(2).toISOString(), 'unfinished'],
    ]);
    expect(reconciled[0]?.summary).toBe(
      `PreconditionFailedError: ${keyId} is being changed by another run: rotate other-request holds it until ${until.toISOString()} (alias-swap); nothing was changed, try again after that`,
    );
    expect(world.notifier.published).toEqual([]);
    expect(world.records.byKey.get(keyId)?.lastValidatedRotation?.keyMaterialId).toBe(history[0]?.keyMaterialId);
  });
});
