import { KMSClient, KMSServiceException, RotateKeyOnDemandCommand } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { KmsKeyGateway } from '../../../src/adapters/kms-key-gateway';
import { parseRotateRequest } from '../../../src/adapters/schemas/rotate-request';
import { ALIAS_SWAP_STEPS } from '../../../src/domain/alias-swap';
import { readDeclaredState } from '../../../src/domain/declared-state';
import { InvalidInputError, PreconditionFailedError } from '../../../src/domain/errors';
import type { Notification, Tags } from '../../../src/domain/model';
import { type RotateDeps, type RotateRequest, RotationFailedError, rotateKey } from '../../../src/domain/rotate-key';
import { FakeKms } from './fake-kms';

const ALIAS = 'alias/app/signing';
const managed = (aliases = ALIAS): Tags => ({
  'kms-rotation:managed': 'true',
  'kms-rotation:aliases': aliases,
  'kms-rotation:period-days': '365',
  team: 'payments',
});
const request = (overrides: Partial<RotateRequest> = {}): RotateRequest => ({
  key: ALIAS,
  strategy: 'auto',
  dryRun: false,
  action: 'rotate',
  ...overrides,
});

describe('Function: rotateKey', () => {
  let kms: FakeKms;
  let published: Notification[];
  let now: number;
  let deps: RotateDeps;

  beforeEach(() => {
    kms = new FakeKms();
    published = [];
    now = Date.parse('2026-11-22T10:00:00Z');
    deps = {
      keys: kms,
      crypto: kms,
      admin: kms,
      prover: kms,
      publicKeys: { encrypt: () => undefined },
      state: { load: async () => ({}), save: async () => undefined },
      notifier: { publish: async (notification) => void published.push(notification) },
      clock: { now: () => new Date(now) },
      random: { bytes: (size) => new Uint8Array(size).map((_, index) => index) },
      digest: { sha256Hex: (data) => Buffer.from(data).toString('hex') },
      ids: { newId: () => 'rotation-1' },
      sleeper: {
        sleep: async (ms) => {
          now += ms;
        },
      },
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      location: { account: '123456789012', region: 'us-east-1' },
      toleranceMs: 3_600_000,
      onDemandLimit: 25,
      rotationWaitMs: 60_000,
      recentRotationMs: 3_600_000,
    };
  });

  const signingKey = () => kms.addKey({ keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' }, managed(), [ALIAS]);

  describe('alias-swap', () => {
    it('creates one verified successor, moves the alias, retires the predecessor and leaves it enabled', async () => {
      // Prepare
      const predecessor = signingKey();

      // Act
      const report = await rotateKey(request(), deps);

      // Assess
      expect(report.steps.map((step) => [step.step, step.status])).toEqual([
        ['createSuccessor', 'done'],
        ['verifySuccessor', 'done'],
        ['promoteAliases', 'done'],
        ['finish', 'done'],
      ]);
      const successor = report.successor as string;
      expect(kms.aliases.get(ALIAS)).toBe(successor);
      expect(kms.key(successor).tags).toMatchObject({
        ...managed(),
        'kms-rotation:state': 'active',
        'kms-rotation:predecessor': predecessor,
        'kms-rotation:rotation-id': 'rotation-1',
      });
      expect(kms.key(successor).meta).toMatchObject({
        keySpec: 'RSA_2048',
        keyUsage: 'SIGN_VERIFY',
        description: 'test key',
      });
      expect(kms.key(predecessor).tags).toEqual({
        team: 'payments',
        'kms-rotation:state': 'retired',
        'kms-rotation:successor': successor,
        'kms-rotation:rotation-id': 'rotation-1',
      });
      expect(kms.key(predecessor).meta.keyState).toBe('Enabled');
      expect(published.map((notification) => [notification.type, notification.severity])).toEqual([
        ['RotationCompleted', 'INFO'],
      ]);
    });

    it('skips every step when its work is already done: a second run of each step changes nothing', async () => {
      // Prepare: a finished rotation, read back the way a re-run would find it.
      const predecessor = signingKey();
      const { successor } = await rotateKey(request(), deps);
      const swap = {
        rotationId: 'rotation-1',
        predecessor: await kms.describeKey(predecessor),
        predecessorTags: await kms.listTags(predecessor),
        successor: await kms.describeKey(successor as string),
        successorTags: await kms.listTags(successor as string),
        declared: readDeclaredState(await kms.listTags(successor as string)),
        resumed: true,
      };
      const before = kms.snapshot();
      kms.changes.length = 0;

      // Act
      const steps = [];
      for (const step of ALIAS_SWAP_STEPS) steps.push(await step(swap, deps, false));

      // Assess
      expect(steps.map((step) => step.status)).toEqual(['skipped', 'skipped', 'skipped', 'skipped']);
      expect(kms.changes).toEqual([]);
      expect(kms.snapshot()).toEqual(before);
    });

    it('takes a request moments after a finished rotation as its re-run, and rotates again only when forced or later', async () => {
      signingKey();
      const first = await rotateKey(request(), deps);
      kms.changes.length = 0;

      const rerun = await rotateKey(request(), deps);
      expect(rerun).toMatchObject({ outcome: 'nothing-to-do', summary: expect.stringContaining('"force": true') });
      expect(kms.changes).toEqual([]);

      const forced = await rotateKey(request({ force: true }), { ...deps, ids: { newId: () => 'rotation-2' } });
      expect(forced).toMatchObject({ outcome: 'completed', predecessor: first.successor, rotationId: 'rotation-2' });

      now += 2 * 3_600_000;
      const later = await rotateKey(request(), { ...deps, ids: { newId: () => 'rotation-3' } });
      expect(later).toMatchObject({ outcome: 'completed', predecessor: forced.successor });
    });

    const crashPoints: [string, number][] = [
      ['tagKey', 1], // predecessor marked rotating, before CreateKey
      ['createKey', 1], // successor created, predecessor not yet told
      ['tagKey', 2], // predecessor tagged with its successor
      ['tagKey', 3], // successor tagged verified
      ['updateAlias', 1], // alias moved
      ['tagKey', 4], // successor active with the declared state
      ['enableKeyRotation', 1],
      ['tagKey', 5], // predecessor retired, declared tags not yet removed
      ['untagKey', 1],
    ];

    it.each(crashPoints)('converges after a crash after %s #%d, with exactly one successor', async (method, nth) => {
      // Prepare: an uninterrupted run for reference.
      const reference = new FakeKms();
      reference.addKey({ keySpec: 'SYMMETRIC_DEFAULT' }, managed(), [ALIAS]);
      await rotateKey(request({ strategy: 'alias-swap' }), {
        ...deps,
        keys: reference,
        crypto: reference,
        admin: reference,
        prover: reference,
      });
      kms.addKey({ keySpec: 'SYMMETRIC_DEFAULT' }, managed(), [ALIAS]);
      kms.crashAfter(method, nth);

      // Act: the crashed run, then the operator runs the same command again.
      await expect(rotateKey(request({ strategy: 'alias-swap' }), deps)).rejects.toThrow(/crash at/);
      const rerun = await rotateKey(request({ strategy: 'alias-swap' }), deps);

      // Assess
      // A crash after the very last write left nothing to do: the re-run says so.
      expect(rerun.outcome).toBe(method === 'untagKey' ? 'nothing-to-do' : 'completed');
      expect(kms.changes.filter((change) => change.startsWith('CreateKey'))).toHaveLength(1);
      expect(kms.snapshot()).toEqual(reference.snapshot());
    });

    it('never moves an alias to a successor that fails verification, and says so CRITICAL', async () => {
      signingKey();
      kms.failNext('sign', new PreconditionFailedError('key-disabled', 'DisabledException'));

      const failure = rotateKey(request(), deps);

      await expect(failure).rejects.toBeInstanceOf(RotationFailedError);
      const predecessor = [...kms.keys.keys()][0] as string;
      expect(kms.aliases.get(ALIAS)).toBe(predecessor);
      expect(kms.changes.some((change) => change.startsWith('UpdateAlias'))).toBe(false);
      expect(published).toEqual([expect.objectContaining({ type: 'RotationFailed', severity: 'CRITICAL' })]);
    });

    it('plans without any change on a dry run', async () => {
      signingKey();

      const report = await rotateKey(request({ dryRun: true }), deps);

      expect(report.outcome).toBe('planned');
      expect(report.steps.map((step) => step.status)).toEqual(['planned', 'planned', 'planned', 'planned']);
      expect(kms.changes).toEqual([]);
      expect(published).toEqual([]);
    });
  });

  describe('rollback', () => {
    it('points the aliases back at the verified predecessor and keeps the rolled-back key enabled', async () => {
      const predecessor = signingKey();
      const { successor } = await rotateKey(request(), deps);

      const report = await rotateKey(request({ action: 'rollback' }), deps);

      expect(report.steps.map((step) => [step.step, step.status])).toEqual([
        ['verifyPredecessor', 'done'],
        ['restoreAliases', 'done'],
        ['finishRollback', 'done'],
      ]);
      expect(kms.aliases.get(ALIAS)).toBe(predecessor);
      expect(kms.key(predecessor).tags).toMatchObject({
        'kms-rotation:managed': 'true',
        'kms-rotation:state': 'active',
      });
      expect(kms.key(successor as string).tags['kms-rotation:state']).toBe('rolled-back');
      expect(kms.key(successor as string).meta.keyState).toBe('Enabled');
    });

    it('changes nothing when re-run after it finished', async () => {
      signingKey();
      await rotateKey(request(), deps);
      const { successor } = await rotateKey(request({ action: 'rollback' }), deps);
      kms.changes.length = 0;

      const again = await rotateKey(request({ key: successor as string, action: 'rollback' }), deps);

      expect(again.outcome).toBe('nothing-to-do');
      expect(kms.changes).toEqual([]);
    });

    it('refuses a disabled predecessor, and a key without lineage', async () => {
      const predecessor = signingKey();
      await rotateKey(request(), deps);
      kms.key(predecessor).meta.keyState = 'Disabled';

      await expect(rotateKey(request({ action: 'rollback' }), deps)).rejects.toMatchObject({ reason: 'key-disabled' });
      const plain = kms.addKey({}, managed('alias/plain'), ['alias/plain']);
      await expect(rotateKey(request({ key: plain, action: 'rollback' }), deps)).rejects.toMatchObject({
        reason: 'nothing-to-roll-back',
      });
      expect(kms.aliases.get(ALIAS)).not.toBe(predecessor);
    });
  });

  describe('on-demand', () => {
    const symmetric = () => kms.addKey({}, managed('alias/app/data'), ['alias/app/data']);

    it('rotates, waits for the record, validates like onRotation and notifies', async () => {
      const keyId = symmetric();

      const report = await rotateKey(request({ key: 'alias/app/data' }), deps);

      expect(report).toMatchObject({ outcome: 'completed', strategy: 'on-demand', keyId });
      expect(report.checks?.find((check) => check.id === 'round-trip')?.status).toBe('passed');
      expect(kms.changes).toEqual([`RotateKeyOnDemand ${keyId}`]);
      expect(published[0]).toMatchObject({ type: 'RotationCompleted', severity: 'INFO' });
    });

    it('refuses before calling KMS when the 25 on-demand rotations are spent', async () => {
      const keyId = symmetric();
      for (let index = 0; index < 25; index += 1) {
        kms
          .key(keyId)
          .rotations.push({ rotationType: 'ON_DEMAND', rotationDate: new Date(now - (index + 1) * 86_400_000) });
      }

      await expect(rotateKey(request({ key: keyId }), deps)).rejects.toMatchObject({ reason: 'on-demand-limit' });
      expect(kms.changes).toEqual([]);
    });

    it('refuses while an on-demand rotation is in progress', async () => {
      const keyId = symmetric();
      kms.getRotationStatus = async () => ({ enabled: true, onDemandRotationStartDate: new Date(now - 60_000) });

      await expect(rotateKey(request({ key: keyId }), deps)).rejects.toMatchObject({ reason: 'rotation-conflict' });
    });

    it('reports in-progress, WARNING, when KMS has not recorded the rotation within the wait', async () => {
      const keyId = symmetric();
      const record = kms.rotateKeyOnDemand.bind(kms);
      kms.rotateKeyOnDemand = async (id) => {
        await record(id);
        kms.key(id).rotations.pop(); // accepted, not yet recorded
      };

      const report = await rotateKey(request({ key: keyId }), deps);

      expect(report.outcome).toBe('in-progress');
      expect(published[0]).toMatchObject({ type: 'RotationCompleted', severity: 'WARNING' });
      expect(now - Date.parse('2026-11-22T10:00:00Z')).toBeLessThanOrEqual(60_000);
    });

    it('fails CRITICAL when the rotated key fails the validation of onRotation', async () => {
      const keyId = symmetric();
      kms.failNext('decrypt', new PreconditionFailedError('key-invalid-state', 'InvalidCiphertextException'));

      await expect(rotateKey(request({ key: keyId }), deps)).rejects.toBeInstanceOf(RotationFailedError);
      expect(published[0]).toMatchObject({ type: 'RotationFailed', severity: 'CRITICAL' });
    });
  });

  describe('refusals, before any change', () => {
    it.each([
      ['a key it does not manage', {}, {}, 'not-managed'],
      ['an AWS managed key', { keyManager: 'AWS' }, managed(), 'aws-managed'],
      ['a disabled key', { keyState: 'Disabled' }, managed(), 'key-disabled'],
      ['a key pending deletion', { keyState: 'PendingDeletion' }, managed(), 'key-pending-deletion'],
      ['a multi-Region replica', { multiRegion: true, multiRegionKeyType: 'REPLICA' }, managed(), 'replica'],
      [
        'an external key store key',
        { origin: 'EXTERNAL_KEY_STORE', keySpec: 'SYMMETRIC_DEFAULT' },
        managed(),
        'wrong-key-type',
      ],
      ['imported material with none pending', { origin: 'EXTERNAL' }, managed(), 'no-pending-material'],
    ])('refuses %s', async (_name, meta, tags, reason) => {
      const keyId = kms.addKey(meta, tags);

      await expect(rotateKey(request({ key: keyId }), deps)).rejects.toMatchObject({ reason });
      expect(kms.changes).toEqual([]);
      expect(published).toEqual([]);
    });

    it('refuses an explicit strategy that does not fit the key', async () => {
      const signing = signingKey();
      const imported = kms.addKey({ origin: 'EXTERNAL' }, managed('alias/imported'));

      await expect(rotateKey(request({ key: signing, strategy: 'on-demand' }), deps)).rejects.toMatchObject({
        reason: 'strategy-mismatch',
      });
      await expect(rotateKey(request({ key: imported, strategy: 'alias-swap' }), deps)).rejects.toMatchObject({
        reason: 'strategy-mismatch',
      });
      expect(kms.changes).toEqual([]);
    });
  });
});

describe('Class: KmsKeyGateway', () => {
  const kms = mockClient(KMSClient);
  beforeEach(() => kms.reset());

  it.each([
    ['LimitExceededException', 'on-demand-limit'],
    ['ConflictException', 'rotation-conflict'],
  ])('turns %s from RotateKeyOnDemand into %s, without the SDK retrying it', async (name, reason) => {
    kms.on(RotateKeyOnDemandCommand).rejects(
      new KMSServiceException({
        name,
        $fault: 'client',
        message: name,
        $metadata: { httpStatusCode: name === 'ConflictException' ? 409 : 400 },
      }),
    );
    const gateway = new KmsKeyGateway(
      new KMSClient({ region: 'us-east-1' }),
      new KMSClient({ region: 'us-east-1', maxAttempts: 1 }),
    );

    await expect(gateway.rotateKeyOnDemand('k')).rejects.toMatchObject({
      name: 'PreconditionFailedError',
      reason,
      retryable: false,
    });
    expect(kms).toHaveReceivedCommandTimes(RotateKeyOnDemandCommand, 1);
  });
});

describe('Function: parseRotateRequest', () => {
  it('applies the defaults', () => {
    expect(parseRotateRequest({ key: 'alias/app/x' })).toEqual({
      key: 'alias/app/x',
      strategy: 'auto',
      dryRun: false,
      action: 'rotate',
    });
  });

  it.each([
    [{ key: 'alias/app/x', dryrun: true }, 'dryrun'],
    [{ key: '../../etc' }, 'key'],
    [{ key: 'alias/app/x', strategy: 'yolo' }, 'strategy'],
    [{ key: 'alias/app/x', reason: 'x'.repeat(300) }, 'reason'],
    [null, 'payload'],
  ])('refuses %j, naming %s', (payload, field) => {
    expect(() => parseRotateRequest(payload)).toThrow(InvalidInputError);
    expect(() => parseRotateRequest(payload)).toThrow(field);
  });
});
