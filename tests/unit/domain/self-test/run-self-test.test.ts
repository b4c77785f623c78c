import { describe, expect, it } from 'vitest';
import { parseKeyActivityEvent } from '../../../../src/adapters/schemas/key-activity-event';
import { TAGS } from '../../../../src/domain/declared-state';
import { SELF_TEST_TAG } from '../../../../src/domain/lineage';
import type { NewKeySpec } from '../../../../src/domain/ports';
import {
  CLEANUP_RESERVE_MS,
  disableKeyRotationRecord,
  runSelfTest,
  SELF_TEST_ALIAS_PREFIX,
  THROWAWAY_KEY_ACTIONS,
} from '../../../../src/domain/self-test';
import { SUCCESSOR_STATEMENT_SID } from '../../../../src/domain/successor-policy';
import { LOCATION } from '../rotate/support/world';
import { accessDenied, createSelfTestWorld, ROLE_ARN, statuses } from './support/self-test-world';

const RUN_ID = 'rotation-0001';
const ALL_PASSED = [
  ['createSymmetricKey', 'passed'],
  ['createRsaKey', 'passed'],
  ['createHmacKey', 'passed'],
  ['rotateOnDemand', 'passed'],
  ['aliasSwapRsa', 'passed'],
  ['rollbackRsa', 'passed'],
  ['aliasSwapHmac', 'passed'],
  ['rollbackHmac', 'passed'],
  ['disableRotation', 'passed'],
  ['detectDrift', 'passed'],
  ['deleteAliases', 'passed'],
  ['scheduleKeyDeletion', 'passed'],
];

const createdSpecs = (world: ReturnType<typeof createSelfTestWorld>): NewKeySpec[] =>
  world.kms.calls.filter((call) => call.method === 'createKey').map((call) => call.args[0] as NewKeySpec);

const detailOf = (report: { steps: { name: string; detail: string }[] }, name: string): string =>
  report.steps.find((step) => step.name === name)?.detail ?? '';

describe('Function: runSelfTest', () => {
  describe('on a KMS that works', () => {
    it('passes every step, through rotateKey and watchKeyActivity, and cleans up every key and alias', async () => {
      // Prepare
      const world = createSelfTestWorld();

      // Act
      const report = await runSelfTest(world.selfTestDeps);

      // Assess
      expect(statuses(report)).toEqual(ALL_PASSED);
      expect(report.passed).toBe(true);
      expect(report.runId).toBe(RUN_ID);
      expect(report.keys).toHaveLength(5);
      for (const keyId of report.keys)
        expect(world.kms.snapshot().keys.find((k) => k.keyId === keyId)?.keyState).toBe('PendingDeletion');
      expect(world.kms.snapshot().aliases).toEqual([]);
      expect(
        world.kms.calls.filter((call) => call.method === 'scheduleKeyDeletion').map((call) => call.args[1]),
      ).toEqual([7, 7, 7, 7, 7]);
      expect(detailOf(report, 'rotateOnDemand')).toMatch(/canary passed/);
      // Handed over for deletion no longer managed: the deployed audit and drift watch leave them alone.
      for (const keyId of report.keys) expect(world.kms.tagsOf(keyId)[TAGS.managed]).toBe('false');
    });

    it('creates each kind of throwaway key with the self-test tag only, then gives it its declared state and an alias under the self-test prefix', async () => {
      // Prepare
      const world = createSelfTestWorld();

      // Act
      await runSelfTest(world.selfTestDeps);

      // Assess
      const [symmetric, rsa, hmac] = createdSpecs(world);
      expect([symmetric, rsa, hmac].map((spec) => `${spec?.keySpec}/${spec?.keyUsage}`)).toEqual([
        'SYMMETRIC_DEFAULT/ENCRYPT_DECRYPT',
        'RSA_2048/SIGN_VERIFY',
        'HMAC_256/GENERATE_VERIFY_MAC',
      ]);
      // CreateKey carries only what the role may tag any key with (resources/role-self-test.yml, CreateOnlySelfTestKeys).
      expect(rsa?.tags).toEqual({ [SELF_TEST_TAG]: RUN_ID });
      const declared = world.kms.calls
        .filter((call) => call.method === 'tagKey')
        .map((call) => call.args[1] as Record<string, string>)
        .find((tags) => tags[TAGS.aliases] === `${SELF_TEST_ALIAS_PREFIX}${RUN_ID}/rsa`);
      expect(declared).toEqual({
        [TAGS.managed]: 'true',
        [TAGS.aliases]: `${SELF_TEST_ALIAS_PREFIX}${RUN_ID}/rsa`,
        [TAGS.periodDays]: '365',
      });
      expect(
        world.kms.calls.filter((call) => call.method === 'createAlias').map((call) => call.args[0] as string),
      ).toEqual(['symmetric', 'rsa', 'hmac'].map((kind) => `${SELF_TEST_ALIAS_PREFIX}${RUN_ID}/${kind}`));
    });

    it("gives each key a policy that keeps the account root's statement and names the role, PutKeyPolicy included", async () => {
      // Prepare
      const world = createSelfTestWorld();

      // Act
      await runSelfTest(world.selfTestDeps);

      // Assess
      const policy = JSON.parse(createdSpecs(world)[0]?.policy ?? '{}');
      expect(policy.Statement).toEqual([
        expect.objectContaining({ Principal: { AWS: 'arn:aws:iam::123456789012:root' }, Action: 'kms:*' }),
        expect.objectContaining({ Principal: { AWS: ROLE_ARN }, Action: [...THROWAWAY_KEY_ACTIONS] }),
      ]);
      expect(THROWAWAY_KEY_ACTIONS).toContain('kms:PutKeyPolicy');
      expect(JSON.stringify(policy)).not.toMatch(/"AWS":"\*"/);
    });

    it('creates the alias-swap successors with the self-test tag and the same policy, so they stay throwaway keys', async () => {
      // Prepare
      const world = createSelfTestWorld();

      // Act
      await runSelfTest(world.selfTestDeps);

      // Assess
      const specs = createdSpecs(world);
      const successors = specs.slice(3);
      expect(successors.map((spec) => spec.keySpec)).toEqual(['RSA_2048', 'HMAC_256']);
      for (const spec of successors) {
        expect(spec.tags[SELF_TEST_TAG]).toBe(RUN_ID);
        // The predecessor's policy, plus the statement that names the role running the rotation.
        const { Statement } = JSON.parse(spec.policy);
        expect(Statement.slice(0, 2)).toEqual(JSON.parse(specs[1]?.policy ?? '{}').Statement);
        expect(Statement[2]).toMatchObject({ Sid: SUCCESSOR_STATEMENT_SID, Principal: { AWS: ROLE_ARN } });
      }
    });

    it('marks every notification as a self-test, the drift among them', async () => {
      // Prepare
      const world = createSelfTestWorld();

      // Act
      await runSelfTest(world.selfTestDeps);

      // Assess
      expect(world.notifier.kinds()).toEqual([
        'RotationCompleted/INFO',
        'RotationCompleted/INFO',
        'RotationCompleted/INFO',
        'RotationCompleted/INFO',
        'RotationCompleted/INFO',
        'DriftDetected/WARNING',
      ]);
      for (const notification of world.notifier.published) {
        expect(notification.selfTest).toBe(true);
        expect(notification.details.selfTestRunId).toBe(RUN_ID);
      }
      const drift = world.notifier.published.at(-1);
      expect(drift?.details).toMatchObject({ call: 'DisableKeyRotation', findings: [{ rule: 'rotation-enabled' }] });
    });

    it('keeps its key records in memory, never in the store of the real keys', async () => {
      // Prepare
      const world = createSelfTestWorld();

      // Act
      await runSelfTest(world.selfTestDeps);

      // Assess
      expect(world.records.saves).toEqual([]);
    });
  });

  describe('when a call is denied', () => {
    it('fails the step, naming the action and the role, skips what needed it, and still cleans up', async () => {
      // Prepare
      const world = createSelfTestWorld();
      world.kms.failAt('createKey', 2, { error: accessDenied('CreateKey', 'a self-test RSA_2048 key') });

      // Act
      const report = await runSelfTest(world.selfTestDeps);

      // Assess
      expect(report.passed).toBe(false);
      expect(statuses(report)).toEqual(
        ALL_PASSED.map(([name, status]) =>
          name === 'createRsaKey'
            ? [name, 'failed']
            : name === 'aliasSwapRsa' || name === 'rollbackRsa'
              ? [name, 'skipped']
              : [name, status],
        ),
      );
      expect(detailOf(report, 'createRsaKey')).toMatch(
        new RegExp(`^access denied: CreateKey was denied to ${ROLE_ARN.replaceAll('/', '\\/')}`),
      );
      expect(detailOf(report, 'aliasSwapRsa')).toBe('skipped: createRsaKey failed');
      expect(detailOf(report, 'rollbackRsa')).toBe('skipped: aliasSwapRsa skipped');
      expect(report.keys).toHaveLength(3);
      expect(world.kms.snapshot().aliases).toEqual([]);
    });

    it('names the denied call when verification turned it into a verdict', async () => {
      // Prepare
      const world = createSelfTestWorld();
      world.kms.failAt('sign', 1, { error: accessDenied('Sign', '00000000-0000-4000-8000-000000000004') });

      // Act
      const report = await runSelfTest(world.selfTestDeps);

      // Assess
      expect(statuses(report).slice(4, 6)).toEqual([
        ['aliasSwapRsa', 'failed'],
        ['rollbackRsa', 'skipped'],
      ]);
      expect(detailOf(report, 'aliasSwapRsa')).toMatch(/^access denied: Sign was denied to arn:aws:iam::/);
      // The successor that failed verification is a throwaway key too: scheduled for deletion.
      expect(report.keys).toHaveLength(5);
      expect(world.kms.snapshot().keys.every((key) => key.keyState === 'PendingDeletion')).toBe(true);
    });

    it('fails the cleanup step when a deletion is denied, naming the key, the action and the role', async () => {
      // Prepare
      const world = createSelfTestWorld();
      world.kms.failAt('scheduleKeyDeletion', 2, { error: accessDenied('ScheduleKeyDeletion', 'a key') });

      // Act
      const report = await runSelfTest(world.selfTestDeps);

      // Assess
      expect(report.passed).toBe(false);
      expect(statuses(report).at(-1)).toEqual(['scheduleKeyDeletion', 'failed']);
      expect(detailOf(report, 'scheduleKeyDeletion')).toMatch(
        new RegExp(
          `could not schedule the deletion of ${report.keys[1]}: access denied: ScheduleKeyDeletion was denied to`,
        ),
      );
    });

    it('fails the drift step when the notification cannot be published', async () => {
      // Prepare
      const world = createSelfTestWorld();
      let published = 0;
      world.selfTestDeps.notifier = {
        publish: async (notification) => {
          published += 1;
          if (notification.type === 'DriftDetected') throw accessDenied('Publish', 'the topic');
        },
      };

      // Act
      const report = await runSelfTest(world.selfTestDeps);

      // Assess
      expect(published).toBe(6);
      expect(statuses(report).slice(8, 10)).toEqual([
        ['disableRotation', 'passed'],
        ['detectDrift', 'failed'],
      ]);
      expect(detailOf(report, 'detectDrift')).toMatch(/^access denied: Publish was denied to /);
    });
  });

  describe('cleanup', () => {
    it('runs after a failed step, and a failed prerequisite skips only what depends on it', async () => {
      // Prepare
      const world = createSelfTestWorld();
      world.kms.failAt('disableKeyRotation', 1, { error: new Error('connection reset') });

      // Act
      const report = await runSelfTest(world.selfTestDeps);

      // Assess
      expect(statuses(report).slice(8)).toEqual([
        ['disableRotation', 'failed'],
        ['detectDrift', 'skipped'],
        ['deleteAliases', 'passed'],
        ['scheduleKeyDeletion', 'passed'],
      ]);
      expect(detailOf(report, 'disableRotation')).toBe('Error: connection reset');
    });

    it('also schedules the deletion of keys of the run it lost track of, found by their self-test tag', async () => {
      // Prepare
      const world = createSelfTestWorld();
      const lost = world.kms.addKey({ tags: { [SELF_TEST_TAG]: RUN_ID } });
      const other = world.kms.addKey({ tags: { [SELF_TEST_TAG]: 'another-run' } });

      // Act
      const report = await runSelfTest(world.selfTestDeps);

      // Assess
      expect(report.keys).toContain(lost);
      expect(report.keys).not.toContain(other);
      const states = Object.fromEntries(world.kms.snapshot().keys.map((key) => [key.keyId, key.keyState]));
      expect(states[lost]).toBe('PendingDeletion');
      expect(states[other]).toBe('Enabled');
    });

    it('leaves the tests out when too little of the invocation is left, and is never passed when nothing ran', async () => {
      // Prepare
      const world = createSelfTestWorld();
      world.timeLeft.ms = CLEANUP_RESERVE_MS - 1;

      // Act
      const report = await runSelfTest(world.selfTestDeps);

      // Assess
      expect(report.passed).toBe(false);
      expect(report.steps.every((step) => step.status === 'skipped')).toBe(true);
      expect(detailOf(report, 'createSymmetricKey')).toMatch(/less than 120 s of the invocation left/);
      expect(world.kms.calls.filter((call) => call.method === 'createKey')).toEqual([]);
    });
  });

  describe('the CloudTrail record of the drift', () => {
    it('is accepted by the drift watch schema as the DisableKeyRotation call of the self-test role', () => {
      // Prepare
      const key = { keyId: '1234abcd-12ab-34cd-56ef-1234567890ab', arn: '', keyState: 'Enabled' };
      key.arn = `arn:aws:kms:us-east-1:123456789012:key/${key.keyId}`;

      // Act
      const activity = parseKeyActivityEvent(
        disableKeyRotationRecord(key, ROLE_ARN, RUN_ID, new Date('2026-12-01T10:00:00.123Z'), LOCATION),
      );

      // Assess
      expect(activity).toMatchObject({
        name: 'DisableKeyRotation',
        account: LOCATION.account,
        region: LOCATION.region,
        keyRefs: [key.keyId, key.arn],
        time: new Date('2026-12-01T10:00:00.000Z'),
        actor: { type: 'AssumedRole', roleArn: ROLE_ARN },
      });
    });
  });
});
