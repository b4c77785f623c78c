import { describe, expect, it } from 'vitest';
import { ALIAS_SWAP_STEPS } from '../../../../src/domain/alias-swap';
import type { SwapState } from '../../../../src/domain/alias-swap-state';
import { readDeclaredState } from '../../../../src/domain/declared-state';
import { AwsServiceError } from '../../../../src/domain/errors';
import { LINEAGE } from '../../../../src/domain/lineage';
import type { NewKeySpec } from '../../../../src/domain/ports';
import { RotationFailedError, rotateKey } from '../../../../src/domain/rotate-key';
import { SUCCESSOR_ACTIONS, SUCCESSOR_STATEMENT_SID } from '../../../../src/domain/successor-policy';
import type { KeyDefect } from './support/fake-kms';
import {
  addManagedKey,
  createWorld,
  RECENT_ROTATION_MS,
  ROTATE_ROLE_ARN,
  request,
  START,
  stepStatuses,
  type World,
} from './support/world';

const ALIAS = 'alias/payments/signing';
const SECOND_ALIAS = 'alias/payments/signing-v2';

/** The cryptographic calls that prove each kind of key works. */
const KINDS = [
  {
    kind: 'an RSA signing key',
    init: { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY', signingAlgorithms: ['RSASSA_PSS_SHA_256'] },
    proof: ['sign', 'verify', 'verify'],
  },
  {
    kind: 'an ECC signing key',
    init: { keySpec: 'ECC_NIST_P256', keyUsage: 'SIGN_VERIFY' },
    proof: ['sign', 'verify', 'verify'],
  },
  {
    kind: 'an HMAC key',
    init: { keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' },
    proof: ['generateMac', 'verifyMac', 'verifyMac'],
  },
  {
    kind: 'an RSA encryption key',
    init: { keySpec: 'RSA_2048', keyUsage: 'ENCRYPT_DECRYPT', encryptionAlgorithms: ['RSAES_OAEP_SHA_256'] },
    proof: ['getPublicKey', 'decryptAsymmetric'],
  },
  {
    kind: 'a CloudHSM key',
    init: { origin: 'AWS_CLOUDHSM', customKeyStoreId: 'cks-1234567890abcdef0' },
    proof: ['encrypt', 'decrypt'],
  },
];

const rotateSigningKey = async (world: World, aliases = [ALIAS, SECOND_ALIAS]) => {
  const predecessor = addManagedKey(world, aliases, {
    keySpec: 'RSA_2048',
    keyUsage: 'SIGN_VERIFY',
    signingAlgorithms: ['RSASSA_PSS_SHA_256'],
  });
  const report = await rotateKey(request({ key: aliases[0] as string }), world.deps);
  return { predecessor, successor: report.successor as string, report };
};

describe('Function: rotateKey', () => {
  describe('alias-swap', () => {
    it('moves every declared alias to one verified successor and retires the predecessor, leaving it enabled, when the key is asymmetric', async () => {
      // Prepare
      const world = createWorld();
      const predecessor = addManagedKey(world, [ALIAS, SECOND_ALIAS], {
        keySpec: 'RSA_2048',
        keyUsage: 'SIGN_VERIFY',
        signingAlgorithms: ['RSASSA_PSS_SHA_256'],
        description: 'invoice signing',
      });
      const message = new Uint8Array(Buffer.from('invoice 2026-0042'));
      const signature = await world.kms.sign(predecessor, message, 'RSASSA_PSS_SHA_256');

      // Act
      const report = await rotateKey(request({ key: ALIAS, reason: 'annual rotation' }), world.deps);

      // Assess
      const successor = report.successor as string;
      expect(report).toMatchObject({
        action: 'rotate',
        outcome: 'completed',
        strategy: 'alias-swap',
        predecessor,
        keyId: successor,
        aliases: [ALIAS, SECOND_ALIAS],
        rotationId: 'rotation-0001',
        notification: { type: 'RotationCompleted', severity: 'INFO' },
      });
      expect(stepStatuses(report)).toEqual([
        ['createSuccessor', 'done'],
        ['verifySuccessor', 'done'],
        ['promoteAliases', 'done'],
        ['finish', 'done'],
      ]);
      expect(successor).not.toBe(predecessor);
      expect(world.kms.keyIds()).toEqual([predecessor, successor]);
      expect(world.kms.aliasTarget(ALIAS)).toBe(successor);
      expect(world.kms.aliasTarget(SECOND_ALIAS)).toBe(successor);
      expect(world.kms.tagsOf(successor)).toEqual({
        'kms-rotation:managed': 'true',
        'kms-rotation:aliases': `${ALIAS} ${SECOND_ALIAS}`,
        'kms-rotation:state': 'active',
        'kms-rotation:predecessor': predecessor,
        'kms-rotation:rotation-id': 'rotation-0001',
        'kms-rotation:rotated-at': START.toISOString(),
        'kms-rotation:reason': 'annual rotation',
        team: 'payments',
      });
      // Retired: no longer managed, its aliases tag kept as the record of what it served.
      expect(world.kms.tagsOf(predecessor)).toEqual({
        'kms-rotation:managed': 'false',
        'kms-rotation:aliases': `${ALIAS} ${SECOND_ALIAS}`,
        'kms-rotation:state': 'retired',
        'kms-rotation:successor': successor,
        'kms-rotation:rotation-id': 'rotation-0001',
        team: 'payments',
      });
      const described = await world.kms.describeKey(successor);
      expect(described).toMatchObject({ keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY', description: 'invoice signing' });
      expect((await world.kms.describeKey(predecessor)).keyState).toBe('Enabled');
      expect(await world.kms.verify(predecessor, message, signature, 'RSASSA_PSS_SHA_256')).toBe(true);
      expect(world.notifier.published).toHaveLength(1);
      expect(world.notifier.published[0]).toMatchObject({
        type: 'RotationCompleted',
        severity: 'INFO',
        keyId: successor,
        aliases: [ALIAS, SECOND_ALIAS],
        account: '123456789012',
        region: 'us-east-1',
        details: { strategy: 'alias-swap', predecessor, successor, rotationId: 'rotation-0001' },
      });
    });

    it("creates the successor with the predecessor key policy plus the rotate role's statement, lineage tags only, and a symmetric successor rotates itself with the declared period, when a symmetric key is forced to alias-swap", async () => {
      // Prepare
      const world = createWorld();
      const predecessor = addManagedKey(world, [ALIAS], {
        policy: '{"Id":"payments-key-policy"}',
        tags: { 'kms-rotation:period-days': '180' },
      });

      // Act
      const report = await rotateKey(request({ key: ALIAS, strategy: 'alias-swap' }), world.deps);

      // Assess
      const successor = report.successor as string;
      expect(report.outcome).toBe('completed');
      const created = world.kms.callsSince(0, 'createKey')[0]?.args[0] as NewKeySpec;
      expect(created).toMatchObject({ keySpec: 'SYMMETRIC_DEFAULT', keyUsage: 'ENCRYPT_DECRYPT' });
      expect(JSON.parse(created.policy)).toEqual({
        Id: 'payments-key-policy',
        Statement: [
          {
            Sid: SUCCESSOR_STATEMENT_SID,
            Effect: 'Allow',
            Principal: { AWS: ROTATE_ROLE_ARN },
            Action: [...SUCCESSOR_ACTIONS],
            Resource: '*',
          },
        ],
      });
      // Only what the rotate role may tag a new key with (resources/role-rotate.yml, CreateSuccessorKeysWithLineageOnly).
      expect(Object.keys(created.tags).sort()).toEqual([
        'kms-rotation:predecessor',
        'kms-rotation:rotation-id',
        'kms-rotation:state',
      ]);
      expect(created.tags).toMatchObject({ 'kms-rotation:predecessor': predecessor, 'kms-rotation:state': 'created' });
      expect(world.kms.tagsOf(successor)).toMatchObject({ team: 'payments' });
      expect(world.kms.rotationOf(successor)).toMatchObject({ enabled: true, periodDays: 180 });
      expect(world.kms.tagsOf(successor)).toMatchObject({ 'kms-rotation:period-days': '180' });
      expect(world.kms.tagsOf(predecessor)).toMatchObject({
        'kms-rotation:managed': 'false',
        'kms-rotation:state': 'retired',
        'kms-rotation:period-days': '180',
      });
    });

    it.each(KINDS)(
      'proves the successor works before any alias moves, when the key is $kind',
      async ({ init, proof }) => {
        // Prepare
        const world = createWorld();
        addManagedKey(world, [ALIAS], init);

        // Act
        const report = await rotateKey(request({ key: ALIAS }), world.deps);

        // Assess
        const successor = report.successor as string;
        expect(report).toMatchObject({ outcome: 'completed', strategy: 'alias-swap' });
        const calls = world.kms.calls;
        const firstAliasMove = calls.findIndex((call) => call.method === 'updateAlias');
        const proofCalls = calls
          .slice(0, firstAliasMove)
          .filter((call) => proof.includes(call.method) && String(call.args[0]).endsWith(successor));
        expect(proofCalls.map((call) => call.method)).toEqual(proof);
        expect(world.kms.aliasTarget(ALIAS)).toBe(successor);
      },
    );

    it('creates a declared alias that does not exist yet, pointing at the successor', async () => {
      // Prepare
      const world = createWorld();
      world.kms.addKey({
        keySpec: 'HMAC_256',
        keyUsage: 'GENERATE_VERIFY_MAC',
        aliases: [ALIAS],
        tags: { 'kms-rotation:managed': 'true', 'kms-rotation:aliases': `${ALIAS} ${SECOND_ALIAS}` },
      });

      // Act
      const report = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      const successor = report.successor as string;
      expect(world.kms.callsSince(0, 'createAlias').map((call) => call.args)).toEqual([[SECOND_ALIAS, successor]]);
      expect(world.kms.callsSince(0, 'updateAlias').map((call) => call.args)).toEqual([[ALIAS, successor]]);
      expect(world.kms.aliasTarget(SECOND_ALIAS)).toBe(successor);
    });

    it('logs each step by name without key material or ciphertext', async () => {
      // Prepare
      const world = createWorld();

      // Act
      await rotateSigningKey(world);

      // Assess
      const messages = world.log.lines.map((line) => line.message);
      expect(messages.slice(0, 2)).toEqual(['createSuccessor', 'verifySuccessor']);
      // The aliases move while the declared state does: either may log first.
      expect(messages.slice(2, 4).sort()).toEqual(['finish', 'promoteAliases']);
      expect(JSON.stringify(world.log.lines)).not.toMatch(/ciphertext|plaintext|"Statement"/i);
    });
  });

  describe('alias-swap re-run', () => {
    it('changes nothing and reports nothing to do when the finished rotation is requested again', async () => {
      // Prepare
      const world = createWorld();
      const { successor } = await rotateSigningKey(world);
      const before = world.kms.snapshot();
      const from = world.kms.calls.length;

      // Act
      const again = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      expect(again).toMatchObject({ outcome: 'nothing-to-do', keyId: successor, strategy: 'alias-swap' });
      expect(again.steps.filter((step) => step.status !== 'skipped')).toEqual([]);
      expect(world.kms.mutatingCallsSince(from)).toEqual([]);
      expect(world.kms.callsSince(from, 'createKey')).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
      expect(world.notifier.kinds()).toEqual(['RotationCompleted/INFO']);
    });

    it('skips every step, changing nothing, when each step runs again over the finished rotation', async () => {
      // Prepare
      const world = createWorld();
      const { predecessor, successor, report } = await rotateSigningKey(world);
      const before = world.kms.snapshot();
      const from = world.kms.calls.length;
      const successorTags = world.kms.tagsOf(successor);
      const swap: SwapState = {
        rotationId: report.rotationId as string,
        predecessor: await world.kms.describeKey(predecessor),
        predecessorTags: world.kms.tagsOf(predecessor),
        successor: await world.kms.describeKey(successor),
        successorTags,
        declared: readDeclaredState(successorTags),
        resumed: true,
        aliasTargets: async () => ({ [ALIAS]: successor, [SECOND_ALIAS]: successor }),
      };

      // Act
      const steps = [];
      for (const step of ALIAS_SWAP_STEPS.flat()) steps.push(await step(swap, world.deps, false));

      // Assess
      expect(stepStatuses({ steps })).toEqual([
        ['createSuccessor', 'skipped'],
        ['verifySuccessor', 'skipped'],
        ['promoteAliases', 'skipped'],
        ['finish', 'skipped'],
      ]);
      expect(world.kms.mutatingCallsSince(from)).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
    });

    it('refuses, naming the successor and changing nothing, when the retired predecessor is named after its rotation finished', async () => {
      // Prepare
      const world = createWorld();
      const { predecessor, successor } = await rotateSigningKey(world);
      world.clock.advance(RECENT_ROTATION_MS + 1);
      const before = world.kms.snapshot();
      const from = world.kms.calls.length;

      // Act
      const refused = rotateKey(request({ key: predecessor }), world.deps);

      // Assess
      await expect(refused).rejects.toMatchObject({
        reason: 'not-managed',
        message: expect.stringContaining(`its successor ${successor} carries its aliases and declared state`),
      });
      expect(world.kms.mutatingCallsSince(from)).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
      expect(world.notifier.kinds()).toEqual(['RotationCompleted/INFO']);
    });

    it('rotates the successor in turn, to a new key, when asked after the recent-rotation window or with force', async () => {
      // Prepare
      const world = createWorld();
      const { successor } = await rotateSigningKey(world);
      const forcedWorld = createWorld();
      const forced = await rotateSigningKey(forcedWorld);
      world.clock.advance(RECENT_ROTATION_MS + 1);

      // Act
      const later = await rotateKey(request({ key: ALIAS }), world.deps);
      const now = await rotateKey(request({ key: ALIAS, force: true }), forcedWorld.deps);

      // Assess
      for (const [report, previous, kms] of [
        [later, successor, world.kms],
        [now, forced.successor, forcedWorld.kms],
      ] as const) {
        expect(report).toMatchObject({ outcome: 'completed', predecessor: previous, rotationId: 'rotation-0002' });
        expect(report.successor).not.toBe(previous);
        expect(kms.keyIds()).toHaveLength(3);
        expect(kms.aliasTarget(ALIAS)).toBe(report.successor);
        expect(kms.tagsOf(previous)).toMatchObject({
          [LINEAGE.state]: 'retired',
          [LINEAGE.successor]: report.successor,
          [LINEAGE.predecessor]: expect.any(String),
        });
      }
    });
  });

  describe('alias-swap dry run', () => {
    it('plans every step without a single mutating call, when nothing has begun', async () => {
      // Prepare
      const world = createWorld();
      const predecessor = addManagedKey(world, [ALIAS], { keySpec: 'ECC_NIST_P384', keyUsage: 'SIGN_VERIFY' });
      const before = world.kms.snapshot();

      // Act
      const report = await rotateKey(request({ key: ALIAS, dryRun: true }), world.deps);

      // Assess
      expect(report).toMatchObject({ outcome: 'planned', dryRun: true, strategy: 'alias-swap', keyId: predecessor });
      expect(report.steps.map((step) => step.status)).toEqual(['planned', 'planned', 'planned', 'planned']);
      expect(report.notification).toBeUndefined();
      expect(world.kms.mutatingCallsSince(0)).toEqual([]);
      expect(world.kms.callsSince(0, 'findKeysByTag')).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
      expect(world.notifier.published).toEqual([]);
    });

    it('plans the remaining steps without a mutating call, when an earlier run was interrupted', async () => {
      // Prepare
      const world = createWorld();
      addManagedKey(world, [ALIAS], { keySpec: 'HMAC_384', keyUsage: 'GENERATE_VERIFY_MAC' });
      world.kms.failAt('updateAlias', 1);
      await expect(rotateKey(request({ key: ALIAS }), world.deps)).rejects.toThrow(RotationFailedError);
      const before = world.kms.snapshot();
      const from = world.kms.calls.length;
      const published = world.notifier.published.length;

      // Act
      const report = await rotateKey(request({ key: ALIAS, dryRun: true }), world.deps);

      // Assess
      expect(stepStatuses(report)).toEqual([
        ['createSuccessor', 'skipped'],
        ['verifySuccessor', 'skipped'],
        ['promoteAliases', 'planned'],
        ['finish', 'planned'],
      ]);
      expect(report.outcome).toBe('planned');
      expect(world.kms.mutatingCallsSince(from)).toEqual([]);
      expect(world.kms.snapshot()).toEqual(before);
      expect(world.notifier.published).toHaveLength(published);
    });
  });

  describe('RotationFailedError tells whether a re-run may pass', () => {
    it('is retryable, as an AWS service error, when the rotation failed on throttling', async () => {
      // Prepare
      const world = createWorld();
      addManagedKey(world, [ALIAS], { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' });
      const throttled = new AwsServiceError('UpdateAlias', true, 'Rate exceeded');
      world.kms.failAt('updateAlias', 1, { error: throttled });

      // Act
      const failure = await rotateKey(request({ key: ALIAS }), world.deps).catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(RotationFailedError);
      expect(failure).toMatchObject({ kind: 'aws-service', retryable: true, cause: throttled });
    });

    it('is not retryable when the successor failed verification, nor when the cause is no error of ours', async () => {
      // Prepare
      const world = createWorld();
      addManagedKey(world, [ALIAS], { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' });
      world.kms.createdKeyDefect = 'accepts-tampering';

      // Act
      const failure = await rotateKey(request({ key: ALIAS }), world.deps).catch((error: unknown) => error);

      // Assess
      expect(failure).toMatchObject({ name: 'RotationFailedError', kind: 'verification-failed', retryable: false });
      const report = (failure as RotationFailedError).report;
      expect(new RotationFailedError('x', report, { cause: new Error('?') })).toMatchObject({
        kind: 'verification-failed',
        retryable: false,
      });
    });
  });

  describe('alias-swap verification failure', () => {
    const BROKEN: { kind: string; init: Record<string, unknown>; defect: KeyDefect }[] = [
      {
        kind: 'a signing successor accepts a tampered message',
        init: { keySpec: 'RSA_3072', keyUsage: 'SIGN_VERIFY' },
        defect: 'accepts-tampering',
      },
      {
        kind: 'an HMAC successor rejects its own MAC',
        init: { keySpec: 'HMAC_512', keyUsage: 'GENERATE_VERIFY_MAC' },
        defect: 'rejects-all',
      },
      {
        kind: 'a symmetric successor decrypts to other data',
        init: { origin: 'AWS_CLOUDHSM', customKeyStoreId: 'cks-1' },
        defect: 'wrong-plaintext',
      },
      {
        kind: 'an RSA encryption successor decrypts to other data',
        init: { keySpec: 'RSA_2048', keyUsage: 'ENCRYPT_DECRYPT' },
        defect: 'wrong-plaintext',
      },
    ];

    it.each(BROKEN)(
      'moves no alias and notifies RotationFailed CRITICAL once, when $kind',
      async ({ init, defect }) => {
        // Prepare
        const world = createWorld();
        const predecessor = addManagedKey(world, [ALIAS, SECOND_ALIAS], init);
        world.kms.createdKeyDefect = defect;

        // Act
        const failure = await rotateKey(request({ key: ALIAS }), world.deps).catch((error: unknown) => error);

        // Assess
        expect(failure).toBeInstanceOf(RotationFailedError);
        const report = (failure as RotationFailedError).report;
        expect(report.notification).toEqual({ type: 'RotationFailed', severity: 'CRITICAL' });
        expect(stepStatuses(report)).toEqual([['createSuccessor', 'done']]);
        expect((failure as Error).message).toContain('no alias was moved');
        expect(world.kms.callsSince(0, 'updateAlias')).toEqual([]);
        expect(world.kms.callsSince(0, 'createAlias')).toEqual([]);
        expect(world.kms.aliasTarget(ALIAS)).toBe(predecessor);
        expect(world.kms.aliasTarget(SECOND_ALIAS)).toBe(predecessor);
        expect(world.kms.tagsOf(report.successor as string)).toMatchObject({ [LINEAGE.state]: 'created' });
        expect(world.kms.tagsOf(predecessor)).toMatchObject({
          [LINEAGE.state]: 'rotating',
          'kms-rotation:managed': 'true',
        });
        expect(world.notifier.kinds()).toEqual(['RotationFailed/CRITICAL']);
        expect(world.notifier.published[0]).toMatchObject({ keyId: predecessor, details: { predecessor } });
      },
    );

    it('moves no alias and notifies RotationFailed CRITICAL again, when a re-run finds the same successor still failing', async () => {
      // Prepare
      const world = createWorld();
      const predecessor = addManagedKey(world, [ALIAS], { keySpec: 'ECC_NIST_P256', keyUsage: 'SIGN_VERIFY' });
      world.kms.createdKeyDefect = 'accepts-tampering';
      await expect(rotateKey(request({ key: ALIAS }), world.deps)).rejects.toThrow(RotationFailedError);
      const from = world.kms.calls.length;

      // Act
      const failure = await rotateKey(request({ key: ALIAS }), world.deps).catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(RotationFailedError);
      expect(stepStatuses((failure as RotationFailedError).report)).toEqual([['createSuccessor', 'skipped']]);
      expect(world.kms.mutatingCallsSince(from)).toEqual([]);
      expect(world.kms.aliasTarget(ALIAS)).toBe(predecessor);
      expect(world.kms.keyIds()).toHaveLength(2);
      expect(world.notifier.kinds()).toEqual(['RotationFailed/CRITICAL', 'RotationFailed/CRITICAL']);
    });

    it('finishes with the same successor, creating no other key, when a re-run finds it working again', async () => {
      // Prepare
      const world = createWorld();
      const predecessor = addManagedKey(world, [ALIAS], { keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' });
      world.kms.createdKeyDefect = 'rejects-all';
      const failed = await rotateKey(request({ key: ALIAS }), world.deps).catch((error: RotationFailedError) => error);
      const successor = (failed as RotationFailedError).report.successor as string;
      world.kms.setDefect(successor, undefined);

      // Act
      const report = await rotateKey(request({ key: ALIAS }), world.deps);

      // Assess
      expect(report).toMatchObject({ outcome: 'completed', predecessor, successor, keyId: successor });
      expect(stepStatuses(report)).toEqual([
        ['createSuccessor', 'skipped'],
        ['verifySuccessor', 'done'],
        ['promoteAliases', 'done'],
        ['finish', 'done'],
      ]);
      expect(world.kms.callsSince(0, 'createKey')).toHaveLength(1);
      expect(world.kms.aliasTarget(ALIAS)).toBe(successor);
      expect(world.notifier.kinds()).toEqual(['RotationFailed/CRITICAL', 'RotationCompleted/INFO']);
    });

    it('moves no alias when the successor is not enabled', async () => {
      // Prepare
      const world = createWorld();
      const predecessor = addManagedKey(world, [ALIAS], { keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' });
      const original = world.kms.createKey.bind(world.kms);
      world.kms.createKey = async (spec) => {
        const created = await original(spec);
        world.kms.setKeyState(created.keyId, 'Disabled');
        return { ...created, keyState: 'Disabled' };
      };

      // Act
      const failure = await rotateKey(request({ key: ALIAS }), world.deps).catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(RotationFailedError);
      expect((failure as Error).message).toContain('is Disabled, not Enabled; no alias was moved');
      expect(world.kms.callsSince(0, 'updateAlias')).toEqual([]);
      expect(world.kms.aliasTarget(ALIAS)).toBe(predecessor);
      expect(world.notifier.kinds()).toEqual(['RotationFailed/CRITICAL']);
    });
  });
});
