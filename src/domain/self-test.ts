import { TAGS } from './declared-state';
import { AwsServiceError, describeError, PreconditionFailedError } from './errors';
import { partitionOf } from './key-ref';
import { VERIFY_KEY_ACTIONS } from './key-verification';
import { SELF_TEST_TAG } from './lineage';
import type { KeyDescription, Notification, ServiceLocation } from './model';
import type {
  KeyRecord,
  KeyRecordStore,
  ManagedKeyDirectory,
  Notifier,
  TaggedKeyFinder,
  ThrowawayKeyAdmin,
} from './ports';
import { type RotateDeps, type RotateReport, RotationFailedError, rotateKey } from './rotate-key';
import { type KeyActivity, watchKeyActivity } from './watch-key-activity';

/** Every alias of a self-test run lives under this prefix; the selfTest role may touch no other alias. */
export const SELF_TEST_ALIAS_PREFIX = 'alias/kms-rotation-self-test/';
/** KMS's shortest waiting period before a scheduled key is deleted. */
export const SELF_TEST_DELETION_WINDOW_DAYS = 7;
/** Time kept back at the end of the invocation, so that the cleanup always gets to run. */
export const CLEANUP_RESERVE_MS = 120_000;
/** The rotation period declared on the throwaway keys (KMS's default). */
const DECLARED_PERIOD_DAYS = 365;

/**
 * What each throwaway key's policy lets the selfTest role do on it, beside the account-root
 * statement. Key policies given at CreateKey take effect with the key, where IAM statements
 * conditioned on the self-test tag may wait up to five minutes for the tag (KMS Developer
 * Guide, "ABAC for AWS KMS"). `kms:PutKeyPolicy` is there for CreateKey's policy lockout
 * safety check, which the successors of an alias-swap (created with this policy) pass too.
 */
export const THROWAWAY_KEY_ACTIONS = [
  'kms:DescribeKey',
  'kms:ListResourceTags',
  'kms:TagResource',
  'kms:GetKeyPolicy',
  'kms:PutKeyPolicy',
  'kms:GetKeyRotationStatus',
  'kms:EnableKeyRotation',
  'kms:DisableKeyRotation',
  'kms:ListKeyRotations',
  'kms:RotateKeyOnDemand',
  ...VERIFY_KEY_ACTIONS,
  'kms:CreateAlias',
  'kms:UpdateAlias',
  'kms:DeleteAlias',
  'kms:ScheduleKeyDeletion',
] as const;

export type SelfTestStepName =
  | 'createSymmetricKey'
  | 'createRsaKey'
  | 'createHmacKey'
  | 'rotateOnDemand'
  | 'aliasSwapRsa'
  | 'rollbackRsa'
  | 'aliasSwapHmac'
  | 'rollbackHmac'
  | 'disableRotation'
  | 'detectDrift'
  | 'deleteAliases'
  | 'scheduleKeyDeletion';

export interface SelfTestStep {
  name: SelfTestStepName;
  status: 'passed' | 'failed' | 'skipped';
  detail: string;
}

export interface SelfTestReport {
  /** True only when every step ran and passed. */
  passed: boolean;
  runId: string;
  summary: string;
  steps: SelfTestStep[];
  /** Every throwaway key of the run, successors included. */
  keys: string[];
  aliases: string[];
}

export interface SelfTestDeps extends Omit<RotateDeps, 'records' | 'rotateRoleArn' | 'aliasScope'> {
  throwaway: ThrowawayKeyAdmin;
  /** The tagged-key directory: the managed keys, and keys by tag (the run's throwaway keys, lineage). */
  directory: ManagedKeyDirectory & TaggedKeyFinder;
  /** The drift watch's own event schema: the self-test's CloudTrail record goes through it as a delivered one would. */
  parseActivity: (event: unknown) => KeyActivity;
  /** The function's role: named in each throwaway key's policy, and in the detail of a denied call. */
  roleArn: string;
  /** Time left in the invocation. */
  remainingMs: () => number;
}

type Kind = 'symmetric' | 'rsa' | 'hmac';

const KINDS: Record<Kind, { keySpec: string; keyUsage: string; create: SelfTestStepName }> = {
  symmetric: { keySpec: 'SYMMETRIC_DEFAULT', keyUsage: 'ENCRYPT_DECRYPT', create: 'createSymmetricKey' },
  rsa: { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY', create: 'createRsaKey' },
  hmac: { keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC', create: 'createHmacKey' },
};

export const selfTestAliasOf = (runId: string, kind: Kind): string => `${SELF_TEST_ALIAS_PREFIX}${runId}/${kind}`;

/**
 * The policy of a throwaway key: the account-root statement (IAM decides, as for every key of
 * the service) and one statement naming the selfTest role with exactly what the run does.
 */
export const throwawayKeyPolicy = (roleArn: string, account: string): string =>
  JSON.stringify({
    Version: '2012-10-17',
    Id: 'kms-rotation-self-test',
    Statement: [
      {
        Sid: 'EnableIamPolicies',
        Effect: 'Allow',
        Principal: { AWS: `arn:${partitionOf(roleArn)}:iam::${account}:root` },
        Action: 'kms:*',
        Resource: '*',
      },
      {
        Sid: 'SelfTestRoleOnThisThrowawayKey',
        Effect: 'Allow',
        Principal: { AWS: roleArn },
        Action: [...THROWAWAY_KEY_ACTIONS],
        Resource: '*',
      },
    ],
  });

/**
 * The CloudTrail record EventBridge delivers for a DisableKeyRotation call by the selfTest
 * role (the shape of events/cloudtrail-disable-key-rotation.json).
 */
export const disableKeyRotationRecord = (
  key: KeyDescription,
  roleArn: string,
  runId: string,
  at: Date,
  location: ServiceLocation,
) => {
  const time = at.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const roleName = roleArn.slice(roleArn.lastIndexOf('/') + 1);
  const { account, region } = location;
  return {
    version: '0',
    id: `self-test-${runId}-drift`,
    'detail-type': 'AWS API Call via CloudTrail',
    source: 'aws.kms',
    account,
    time,
    region,
    resources: [],
    detail: {
      eventVersion: '1.11',
      userIdentity: {
        type: 'AssumedRole',
        arn: `arn:${partitionOf(roleArn)}:sts::${account}:assumed-role/${roleName}/self-test-${runId}`,
        accountId: account,
        sessionContext: { sessionIssuer: { type: 'Role', arn: roleArn, accountId: account, userName: roleName } },
      },
      eventTime: time,
      eventSource: 'kms.amazonaws.com',
      eventName: 'DisableKeyRotation',
      awsRegion: region,
      sourceIPAddress: 'lambda.amazonaws.com',
      userAgent: 'kms-rotation self-test',
      requestParameters: { keyId: key.keyId },
      responseElements: null,
      requestID: `self-test-${runId}`,
      eventID: `self-test-${runId}-disable-key-rotation`,
      readOnly: false,
      resources: [{ accountId: account, type: 'AWS::KMS::Key', ARN: key.arn }],
      eventType: 'AwsApiCall',
      managementEvent: true,
      recipientAccountId: account,
      eventCategory: 'Management',
    },
  };
};

/** The run's key records live in memory: a self-test leaves no record behind and never touches a real key's. */
const runRecords = (): KeyRecordStore => {
  const byKey = new Map<string, KeyRecord>();
  return {
    load: async (keyId) => structuredClone(byKey.get(keyId) ?? {}),
    save: async (keyId, record) => {
      byKey.set(keyId, structuredClone(record));
    },
  };
};

/** Every notification of the run is marked as a self-test, in its body (and, by the notifier, as a message attribute). */
const markedAsSelfTest = (notifier: Notifier, runId: string, published: Notification[]): Notifier => ({
  publish: async (notification) => {
    const marked: Notification = {
      ...notification,
      selfTest: true,
      details: { ...notification.details, selfTestRunId: runId },
    };
    await notifier.publish(marked);
    published.push(marked);
  },
});

const DENIED = /AccessDenied|not authori[sz]ed/i;

/** The denied AWS call behind a failure, wherever it sits among the error's causes. */
const deniedCall = (error: unknown): { operation?: string; message: string } | undefined => {
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 8; depth += 1) {
    if (current instanceof AwsServiceError && current.accessDenied) {
      return { operation: current.operation, message: current.message };
    }
    current = current.cause;
  }
  // A verification turns a denied Sign or Decrypt into its verdict's text.
  const message = error instanceof Error ? error.message : String(error);
  if (!DENIED.test(message)) return undefined;
  return { operation: /(\w+) on \S+ failed: \w*(?:AccessDenied|NotAuthori[sz]ed)/i.exec(message)?.[1], message };
};

/** What a failed step says: for a denied call, which action was denied to which role. */
const failureDetail = (error: unknown, roleArn: string): string => {
  const denied = deniedCall(error);
  if (!denied) return describeError(error);
  return `access denied: ${denied.operation ?? 'an AWS call'} was denied to ${roleArn} (${denied.message})`;
};

/** Data encrypted under the key before its rotation, on record as its canary (as onRotation keeps it). */
const seedCanary = async (key: KeyDescription, records: KeyRecordStore, deps: SelfTestDeps): Promise<void> => {
  const plaintext = deps.random.bytes(32);
  const { ciphertext } = await deps.crypto.encrypt(key.keyId, plaintext, {
    'kms-rotation:purpose': 'rotation-canary',
    'kms-rotation:key-id': key.keyId,
  });
  await records.save(key.keyId, {
    managed: true,
    canary: {
      ciphertext: Buffer.from(ciphertext).toString('base64'),
      plaintextSha256: deps.digest.sha256Hex(plaintext),
      createdAt: deps.clock.now().toISOString(),
    },
  });
};

const stepsOf = (report: RotateReport): string => report.steps.map((step) => `${step.step} ${step.status}`).join(', ');

/** A step's work: its detail when it passed, `{ failed }` when it failed without throwing, `{ skipped }` when there was nothing to do. */
type StepWork = () => Promise<string | { failed: string } | { skipped: string }>;

/**
 * `selfTest`: proves each flow of the service in the account it runs in, on throwaway keys of
 * each kind the service rotates, through the very domain code the functions run: an on-demand
 * rotation and its validation, an alias-swap and its rollback (RSA and HMAC), and a drift
 * (rotation disabled) caught by the drift watch, notified and marked as a self-test. Then every
 * throwaway key, successors included, is scheduled for deletion (7 days) and its aliases
 * deleted, whatever happened before. A step whose prerequisite did not pass is skipped.
 */
export const runSelfTest = async (deps: SelfTestDeps): Promise<SelfTestReport> => {
  const runId = deps.ids.newId();
  const steps: SelfTestStep[] = [];
  const keys = new Set<string>();
  const aliases: string[] = [];
  const published: Notification[] = [];
  const created: Partial<Record<Kind, KeyDescription>> = {};
  const successors: Partial<Record<Kind, string>> = {};
  const records = runRecords();
  const notifier = markedAsSelfTest(deps.notifier, runId, published);
  // The successors' key policies name this function's role, which runs the rotations; only the
  // self-test's own aliases may move.
  const aliasScope = [`${SELF_TEST_ALIAS_PREFIX}*`];
  const rotateDeps: RotateDeps = {
    ...deps,
    records,
    notifier,
    rotateRoleArn: deps.roleArn,
    aliasScope,
    selfTestRun: runId,
  };
  const reason = `kms-rotation self-test ${runId}`;

  const statusOf = (name: SelfTestStepName) => steps.find((step) => step.name === name)?.status;
  const record = (step: SelfTestStep): void => {
    steps.push(step);
    const attributes = { runId, detail: step.detail };
    if (step.status === 'failed') deps.log.warn(`selfTest ${step.name} failed`, attributes);
    else deps.log.info(`selfTest ${step.name} ${step.status}`, attributes);
  };
  const step = async (
    name: SelfTestStepName,
    requires: readonly SelfTestStepName[],
    work: StepWork,
    options: { cleanup?: boolean } = {},
  ): Promise<void> => {
    const unmet = requires.find((required) => statusOf(required) !== 'passed');
    if (unmet) {
      record({ name, status: 'skipped', detail: `skipped: ${unmet} ${statusOf(unmet) ?? 'did not run'}` });
      return;
    }
    if (!options.cleanup && deps.remainingMs() < CLEANUP_RESERVE_MS) {
      record({
        name,
        status: 'skipped',
        detail: `skipped: less than ${CLEANUP_RESERVE_MS / 1000} s of the invocation left, kept for the cleanup`,
      });
      return;
    }
    try {
      const outcome = await work();
      if (typeof outcome === 'string') record({ name, status: 'passed', detail: outcome });
      else if ('failed' in outcome) record({ name, status: 'failed', detail: outcome.failed });
      else record({ name, status: 'skipped', detail: outcome.skipped });
    } catch (error) {
      record({ name, status: 'failed', detail: failureDetail(error, deps.roleArn) });
    }
  };

  const createKey =
    (kind: Kind): StepWork =>
    async () => {
      const { keySpec, keyUsage } = KINDS[kind];
      const alias = selfTestAliasOf(runId, kind);
      const key = await deps.throwaway.createKey({
        keySpec,
        keyUsage,
        description: `kms-rotation self-test ${runId}: throwaway ${kind} key, scheduled for deletion by the same run`,
        policy: throwawayKeyPolicy(deps.roleArn, deps.location.account),
        // The self-test tag only: the role may create keys with no other tag, so that the same
        // grant can never mark some other key as managed.
        tags: { [SELF_TEST_TAG]: runId },
      });
      keys.add(key.keyId);
      // The declared state through the key's own policy, which takes effect with the key.
      await deps.admin.tagKey(key.keyId, {
        [TAGS.managed]: 'true',
        [TAGS.aliases]: alias,
        [TAGS.periodDays]: String(DECLARED_PERIOD_DAYS),
      });
      await deps.admin.createAlias(alias, key.keyId);
      aliases.push(alias);
      // A symmetric key rotates itself, as the declared state says; the drift step turns that off.
      if (kind === 'symmetric') await deps.admin.enableKeyRotation(key.keyId, DECLARED_PERIOD_DAYS);
      created[kind] = key;
      return `created ${keySpec} / ${keyUsage} key ${key.keyId}, tagged ${SELF_TEST_TAG}=${runId}, with ${alias}${
        kind === 'symmetric' ? `, automatic rotation every ${DECLARED_PERIOD_DAYS} days` : ''
      }`;
    };

  const rotateOnDemand: StepWork = async () => {
    const key = created.symmetric as KeyDescription;
    await seedCanary(key, records, deps);
    const report = await rotateKey(
      { key: key.keyId, strategy: 'on-demand', dryRun: false, action: 'rotate', reason },
      rotateDeps,
    );
    const checks = (report.checks ?? []).map((check) => `${check.id} ${check.status}`).join(', ');
    if (report.outcome !== 'completed')
      return { failed: `on-demand rotation ended ${report.outcome}: ${report.summary}` };
    return `${report.summary}; checks: ${checks}`;
  };

  const aliasSwap =
    (kind: Kind): StepWork =>
    async () => {
      const predecessor = created[kind] as KeyDescription;
      const alias = selfTestAliasOf(runId, kind);
      let report: RotateReport;
      try {
        report = await rotateKey(
          { key: predecessor.keyId, strategy: 'alias-swap', dryRun: false, action: 'rotate', reason },
          rotateDeps,
        );
      } catch (error) {
        if (error instanceof RotationFailedError && error.report.successor) keys.add(error.report.successor);
        throw error;
      }
      if (report.successor) keys.add(report.successor);
      if (report.outcome !== 'completed' || !report.successor) {
        return { failed: `alias-swap ended ${report.outcome}: ${report.summary}` };
      }
      const [target, after] = await Promise.all([
        deps.keys.describeKey(alias),
        deps.keys.describeKey(predecessor.keyId),
      ]);
      if (target.keyId !== report.successor) {
        return { failed: `${alias} points at ${target.keyId}, not at the successor ${report.successor}` };
      }
      if (after.keyState !== 'Enabled') {
        return { failed: `predecessor ${predecessor.keyId} is ${after.keyState}; it must stay enabled` };
      }
      successors[kind] = report.successor;
      return `${predecessor.keyId} rotated by alias-swap to ${report.successor} (${stepsOf(report)}); ${alias} points at the successor, the predecessor stays enabled`;
    };

  const rollback =
    (kind: Kind): StepWork =>
    async () => {
      const predecessor = created[kind] as KeyDescription;
      const alias = selfTestAliasOf(runId, kind);
      const report = await rotateKey(
        { key: successors[kind] as string, strategy: 'auto', dryRun: false, action: 'rollback', reason },
        rotateDeps,
      );
      if (report.outcome !== 'completed') return { failed: `rollback ended ${report.outcome}: ${report.summary}` };
      const target = await deps.keys.describeKey(alias);
      if (target.keyId !== predecessor.keyId) {
        return { failed: `${alias} points at ${target.keyId} after the rollback, not at ${predecessor.keyId}` };
      }
      return `${report.summary} (${stepsOf(report)})`;
    };

  let disabledAt = deps.clock.now();
  const disableRotation: StepWork = async () => {
    const key = created.symmetric as KeyDescription;
    await deps.throwaway.disableKeyRotation(key.keyId);
    disabledAt = deps.clock.now();
    return `automatic rotation disabled on ${key.keyId}, as a person might by hand`;
  };

  const detectDrift: StepWork = async () => {
    const key = created.symmetric as KeyDescription;
    const activity = deps.parseActivity(disableKeyRotationRecord(key, deps.roleArn, runId, disabledAt, deps.location));
    const before = published.length;
    const report = await watchKeyActivity(activity, {
      ...deps,
      records,
      notifier,
      // Detect only: the drift is the run's own making, and its key is deleted anyway.
      mode: 'detect',
      remediateRules: new Set(),
      serviceRoleArns: [],
      aliasScope,
    });
    const finding = report.findings.find((item) => item.rule === 'rotation-enabled' && item.keyId === key.keyId);
    if (!finding)
      return { failed: `the drift watch found no rotation-enabled drift on ${key.keyId}: ${report.summary}` };
    const notified = published.slice(before).find((item) => item.type === 'DriftDetected' && item.keyId === key.keyId);
    if (!notified) return { failed: `drift found on ${key.keyId}, but no DriftDetected notification was published` };
    return `DriftDetected (${notified.severity}) published to the topic, marked as a self-test: ${finding.summary}`;
  };

  const deleteAliases: StepWork = async () => {
    if (aliases.length === 0) return { skipped: 'skipped: no alias was created' };
    const results = await Promise.allSettled(
      aliases.map(async (alias) => {
        try {
          await deps.throwaway.deleteAlias(alias);
          return `${alias} deleted`;
        } catch (error) {
          if (error instanceof PreconditionFailedError && error.reason === 'key-not-found') return `${alias} was gone`;
          throw error;
        }
      }),
    );
    const failed = results.flatMap((result, index) =>
      result.status === 'rejected' ? [`${aliases[index]}: ${failureDetail(result.reason, deps.roleArn)}`] : [],
    );
    if (failed.length > 0) return { failed: `could not delete ${failed.join('; ')}` };
    return results.map((result) => (result as PromiseFulfilledResult<string>).value).join('; ');
  };

  const scheduleDeletion: StepWork = async () => {
    // Keys this run lost track of (a successor whose CreateKey answer was lost) are found by their tag.
    const tagged = await deps.directory.keysTagged(SELF_TEST_TAG, runId).catch((error: unknown) => {
      deps.log.warn('selfTest: keys of the run could not be listed by tag', { runId, error: describeError(error) });
      return [];
    });
    for (const { keyId } of tagged) keys.add(keyId);
    if (keys.size === 0) return { skipped: 'skipped: no throwaway key was created' };
    const all = [...keys];
    const results = await Promise.allSettled(
      all.map(async (keyId) => {
        try {
          // No longer managed: the deployed audit and drift watch then leave the pending deletion alone.
          await deps.admin.tagKey(keyId, { [TAGS.managed]: 'false' });
          const deletionDate = await deps.throwaway.scheduleKeyDeletion(keyId, SELF_TEST_DELETION_WINDOW_DAYS);
          return deletionDate ? `${keyId} (deleted on ${deletionDate.toISOString()})` : keyId;
        } catch (error) {
          // Already scheduled (a re-run of the cleanup): nothing left to do.
          const now = await deps.keys.describeKey(keyId).catch(() => undefined);
          if (now?.keyState === 'PendingDeletion') return `${keyId} (already pending deletion)`;
          throw error;
        }
      }),
    );
    const failed = results.flatMap((result, index) =>
      result.status === 'rejected' ? [`${all[index]}: ${failureDetail(result.reason, deps.roleArn)}`] : [],
    );
    if (failed.length > 0) return { failed: `could not schedule the deletion of ${failed.join('; ')}` };
    const scheduled = results.map((result) => (result as PromiseFulfilledResult<string>).value);
    return `scheduled for deletion in ${SELF_TEST_DELETION_WINDOW_DAYS} days: ${scheduled.join(', ')}`;
  };

  deps.log.info('selfTest started', { runId, roleArn: deps.roleArn });
  try {
    for (const kind of ['symmetric', 'rsa', 'hmac'] as const) await step(KINDS[kind].create, [], createKey(kind));
    await step('rotateOnDemand', ['createSymmetricKey'], rotateOnDemand);
    await step('aliasSwapRsa', ['createRsaKey'], aliasSwap('rsa'));
    await step('rollbackRsa', ['aliasSwapRsa'], rollback('rsa'));
    await step('aliasSwapHmac', ['createHmacKey'], aliasSwap('hmac'));
    await step('rollbackHmac', ['aliasSwapHmac'], rollback('hmac'));
    await step('disableRotation', ['createSymmetricKey'], disableRotation);
    await step('detectDrift', ['disableRotation'], detectDrift);
  } finally {
    // Aliases first: an alias must not be left pointing at a key pending deletion.
    await step('deleteAliases', [], deleteAliases, { cleanup: true });
    await step('scheduleKeyDeletion', [], scheduleDeletion, { cleanup: true });
  }

  const passed = steps.length > 0 && steps.every((item) => item.status === 'passed');
  const notPassed = steps.filter((item) => item.status !== 'passed').map((item) => `${item.name} ${item.status}`);
  const summary = passed
    ? `Self-test ${runId} passed: ${steps.length} steps on ${keys.size} throwaway keys, all scheduled for deletion`
    : `Self-test ${runId} FAILED: ${notPassed.join(', ')}`;
  deps.log.info(summary, { runId, passed });
  return { passed, runId, summary, steps, keys: [...keys], aliases };
};
