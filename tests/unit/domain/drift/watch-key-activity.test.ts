import { beforeEach, describe, expect, it } from 'vitest';
import { toAsff } from '../../../../src/domain/asff';
import { type AuditRuleId, CONTROLS } from '../../../../src/domain/audit-rules';
import { REMEDIABLE_RULES } from '../../../../src/domain/drift-rules';
import { AwsServiceError, InvalidInputError, PreconditionFailedError } from '../../../../src/domain/errors';
import type { KeyDescription, Notification, Tags } from '../../../../src/domain/model';
import type { KeyRecord } from '../../../../src/domain/ports';
import {
  type Actor,
  type DriftReport,
  type DriftWatchDeps,
  type KeyActivity,
  watchKeyActivity,
} from '../../../../src/domain/watch-key-activity';
import { keyDescription } from '../../support/key-description';
import { MemoryKeyLeases } from '../../support/memory-leases';
import { MemorySecurityHub } from '../../support/memory-security-hub';
import { FakeClock, FakeSleeper } from '../rotate/support/world';

const ACCOUNT = '111122223333';
const KEY = '1234abcd-12ab-34cd-56ef-1234567890ab';
const OTHER = '0000aaaa-1111-4222-8333-444455556666';
const ALICE = `arn:aws:iam::${ACCOUNT}:user/Alice`;
const ROTATE_ROLE = `arn:aws:iam::${ACCOUNT}:role/kms-rotation-prod-RotateRole-ABC`;
const ROTATE_SESSION = `arn:aws:sts::${ACCOUNT}:assumed-role/kms-rotation-prod-RotateRole-ABC/kms-rotation-prod-rotate`;
/** A role with a path: the session ARN names the role without it. */
const DRIFT_ROLE = `arn:aws:iam::${ACCOUNT}:role/service/kms-rotation/kms-rotation-prod-DriftRole-XYZ`;
const DRIFT_SESSION = `arn:aws:sts::${ACCOUNT}:assumed-role/kms-rotation-prod-DriftRole-XYZ/kms-rotation-prod-onKeyActivity`;
const STRANGER = '999988887777';
const ROOT_POLICY = JSON.stringify({
  Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' }],
});

/** A small in-memory KMS: keys, tags, aliases, rotation settings; records every change. */
class FakeKms {
  keys = new Map<string, KeyDescription>();
  tags = new Map<string, Record<string, string>>();
  aliases = new Map<string, string>();
  rotation = new Map<string, { enabled: boolean; periodDays?: number }>();
  changes: string[] = [];
  failNext?: Error;
  brokenKeys = new Set<string>();

  addKey(keyId: string, tags: Tags, overrides: Partial<KeyDescription> = {}): void {
    this.keys.set(keyId, keyDescription(keyId, overrides, ACCOUNT));
    this.tags.set(keyId, { ...tags });
    this.rotation.set(keyId, { enabled: true, periodDays: 365 });
  }

  private find(ref: string): KeyDescription {
    const id = ref.startsWith('alias/') ? this.aliases.get(ref) : ref.split('key/').pop();
    const key = id ? this.keys.get(id) : undefined;
    if (!key) throw new PreconditionFailedError('key-not-found', `${ref} was not found`);
    return key;
  }

  private maybeFail(): void {
    if (this.failNext) {
      const error = this.failNext;
      this.failNext = undefined;
      throw error;
    }
  }

  keysPort = {
    describeKey: async (ref: string) => {
      this.maybeFail();
      return this.find(ref);
    },
    listTags: async (keyId: string) => ({ ...(this.tags.get(keyId) ?? {}) }),
    getRotationStatus: async (keyId: string) => ({ ...(this.rotation.get(keyId) ?? { enabled: false }) }),
    listRotations: async () => [],
    listAliasesOf: async (keyId: string) =>
      [...this.aliases]
        .filter(([, target]) => target === keyId)
        .map(([aliasName]) => ({ aliasName, targetKeyId: keyId })),
  };

  adminPort = {
    getKeyPolicy: async () => ROOT_POLICY,
    enableKeyRotation: async (keyId: string, periodDays?: number) => {
      this.changes.push(`EnableKeyRotation ${keyId} ${periodDays}`);
      this.rotation.set(keyId, { enabled: true, periodDays: periodDays ?? 365 });
    },
    updateAlias: async (alias: string, keyId: string) => {
      this.changes.push(`UpdateAlias ${alias} ${keyId}`);
      this.aliases.set(alias, keyId);
    },
    createAlias: async (alias: string, keyId: string) => {
      this.changes.push(`CreateAlias ${alias} ${keyId}`);
      this.aliases.set(alias, keyId);
    },
  };

  cryptoPort = {
    encrypt: async (keyRef: string, plaintext: Uint8Array) => {
      const key = this.find(keyRef);
      if (this.brokenKeys.has(key.keyId)) throw new PreconditionFailedError('key-disabled', 'broken');
      return { ciphertext: new Uint8Array([...plaintext].reverse()), keyArn: key.arn };
    },
    decrypt: async (keyId: string, ciphertext: Uint8Array) => ({
      plaintext: new Uint8Array([...ciphertext].reverse()),
      keyArn: this.find(keyId).arn,
    }),
  };
}

const managedTags = (aliases = 'alias/app/key'): Tags => ({
  'kms-rotation:managed': 'true',
  'kms-rotation:aliases': aliases,
  'kms-rotation:period-days': '365',
});

const activity = (name: string, overrides: Partial<KeyActivity> = {}): KeyActivity => ({
  eventId: `event-${name}`,
  callId: `call-${name}`,
  name,
  time: new Date('2026-11-21T10:00:00Z'),
  account: ACCOUNT,
  region: 'us-east-1',
  keyRefs: [KEY],
  aliasNames: [],
  arns: [],
  actor: { type: 'IAMUser', arn: ALICE, sourceIp: '198.51.100.24' },
  ...overrides,
});

describe('Function: watchKeyActivity', () => {
  let kms: FakeKms;
  let records: Map<string, KeyRecord>;
  let published: Notification[];
  let leases: MemoryKeyLeases;
  let clock: FakeClock;
  let deps: DriftWatchDeps;

  beforeEach(() => {
    kms = new FakeKms();
    kms.addKey(KEY, managedTags());
    kms.addKey(OTHER, { team: 'x' });
    kms.aliases.set('alias/app/key', KEY);
    records = new Map();
    published = [];
    clock = new FakeClock(new Date('2026-11-21T10:00:05Z'));
    leases = new MemoryKeyLeases(clock);
    deps = {
      keys: { ...kms.keysPort, listRotations: kms.keysPort.listRotations },
      admin: kms.adminPort as unknown as DriftWatchDeps['admin'],
      crypto: kms.cryptoPort,
      prover: {} as DriftWatchDeps['prover'],
      publicKeys: { encrypt: () => undefined },
      random: { bytes: (size) => new Uint8Array(size).fill(7) },
      directory: {
        managedKeys: async () =>
          [...kms.tags]
            .filter(([, tags]) => tags['kms-rotation:managed'] === 'true')
            .map(([keyId, tags]) => ({ keyId, tags })),
      },
      records: {
        load: async (keyId) => structuredClone(records.get(keyId) ?? {}),
        save: async (keyId, record) => {
          records.set(keyId, structuredClone(record));
        },
      },
      notifier: { publish: async (notification) => void published.push(notification) },
      clock,
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      location: { partition: 'aws', account: ACCOUNT, region: 'us-east-1' },
      mode: 'detect',
      remediateRules: new Set(REMEDIABLE_RULES),
      serviceRoleArns: [ROTATE_ROLE, DRIFT_ROLE],
      aliasScope: ['alias/app/*'],
      leases,
      holder: 'kms-rotation-test-onKeyActivity request-1',
      remainingMs: () => 25_000,
    };
  });

  it.each([
    ['throttled', new AwsServiceError('DescribeKey', true, 'Rate exceeded')],
    ['denied', new AwsServiceError('DescribeKey', false, 'not authorized', { accessDenied: true })],
  ])(
    'fails, telling nothing, when the key cannot be read (%s): it is never taken for deleted',
    async (_name, error) => {
      // Prepare: a managed key the service keeps a record of, so a "not found" would be a deletion.
      records.set(KEY, { managed: true });
      kms.failNext = error;

      // Act
      const outcome = watchKeyActivity(activity('DisableKeyRotation'), deps);

      // Assess
      await expect(outcome).rejects.toBe(error);
      expect(published).toEqual([]);
      expect(kms.changes).toEqual([]);
    },
  );

  it('names who did it, and notifies a drift once however often its events repeat', async () => {
    // Prepare
    kms.rotation.set(KEY, { enabled: false });

    // Act
    const first = await watchKeyActivity(activity('DisableKeyRotation'), deps);
    const duplicate = await watchKeyActivity(activity('DisableKeyRotation', { eventId: 'redelivered' }), deps);

    // Assess
    expect(first).toMatchObject({
      outcome: 'drift',
      newFindings: [expect.objectContaining({ rule: 'rotation-enabled' })],
    });
    expect(duplicate).toMatchObject({ outcome: 'drift', newFindings: [] });
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({
      type: 'DriftDetected',
      severity: 'WARNING',
      keyId: KEY,
      aliases: ['alias/app/key'],
      summary: expect.stringContaining(`DisableKeyRotation by ${ALICE} from 198.51.100.24 at 2026-11-21T10:00:00.000Z`),
      details: expect.objectContaining({
        callId: 'call-DisableKeyRotation',
        actor: expect.objectContaining({ arn: ALICE }),
      }),
    });
    expect(kms.changes).toEqual([]);
  });

  it('waits for a key another run holds, then judges it by what it reads under the lease: a redelivered drift is told once', async () => {
    // Prepare: another delivery of the same record holds the key, and finishes while this one waits
    kms.rotation.set(KEY, { enabled: false });
    const other = 'kms-rotation-test-onKeyActivity request-0';
    leases.held.set(KEY, {
      keyId: KEY,
      holder: other,
      purpose: 'drift watch',
      until: new Date(clock.now().getTime() + 60_000),
    });
    let otherReport: DriftReport | undefined;
    const sleeper = {
      sleep: async (ms: number) => {
        clock.advance(ms);
        otherReport ??= await watchKeyActivity(activity('DisableKeyRotation'), { ...deps, holder: other });
      },
    };

    // Act
    const report = await watchKeyActivity(activity('DisableKeyRotation', { eventId: 'redelivered' }), {
      ...deps,
      leaseWait: { ms: 10_000, sleeper },
    });

    // Assess
    expect(otherReport).toMatchObject({
      outcome: 'drift',
      newFindings: [expect.objectContaining({ rule: 'rotation-enabled' })],
    });
    expect(report).toMatchObject({ outcome: 'drift', newFindings: [] });
    expect(published.map((notification) => notification.type)).toEqual(['DriftDetected']);
    expect(leases.held.size).toBe(0);
  });

  it('gives up on a key held for longer than it may wait, retryable, having read, notified and changed nothing', async () => {
    // Prepare
    kms.rotation.set(KEY, { enabled: false });
    const until = new Date(clock.now().getTime() + 120_000);
    leases.held.set(KEY, { keyId: KEY, holder: 'kms-rotation-test-rotate request-9', purpose: 'rotate', until });
    kms.failNext = new Error('no key read expected');

    // Act
    const error = await watchKeyActivity(activity('DisableKeyRotation'), {
      ...deps,
      leaseWait: { ms: 10_000, sleeper: new FakeSleeper(clock) },
    }).catch((caught: unknown) => caught);

    // Assess
    expect(error).toMatchObject({ name: 'PreconditionFailedError', reason: 'key-busy', retryable: true });
    expect((error as Error).message).toBe(
      `${KEY} is being changed by another run: kms-rotation-test-rotate request-9 holds it until ${until.toISOString()} (rotate); waited 10 s and changed nothing`,
    );
    expect(kms.failNext).toBeDefined();
    expect(published).toEqual([]);
    expect(records.size).toBe(0);
  });

  it('names who made the call in its report, as CloudTrail recorded it', async () => {
    kms.rotation.set(KEY, { enabled: false });

    const report = await watchKeyActivity(activity('DisableKeyRotation'), deps);

    expect(report.actor).toEqual({ type: 'IAMUser', arn: ALICE, sourceIp: '198.51.100.24' });
  });

  it('notifies again when a drift that was put right comes back', async () => {
    kms.rotation.set(KEY, { enabled: false });
    await watchKeyActivity(activity('DisableKeyRotation'), deps);
    kms.rotation.set(KEY, { enabled: true, periodDays: 365 });
    await watchKeyActivity(activity('EnableKeyRotation'), deps);
    kms.rotation.set(KEY, { enabled: false });

    await watchKeyActivity(activity('DisableKeyRotation', { eventId: 'again' }), deps);

    expect(published.map((notification) => notification.type)).toEqual(['DriftDetected', 'DriftDetected']);
  });

  it.each([
    [
      'rotation-disabled',
      { enabled: false },
      'DisableKeyRotation',
      `rotation-disabled:${KEY}`,
      `rotation-enabled:${KEY}`,
    ],
    [
      'rotation-period-changed',
      { enabled: true, periodDays: 730 },
      'EnableKeyRotation',
      `rotation-period-changed:${KEY}:730`,
      `rotation-period:${KEY}:730`,
    ],
  ] as const)(
    'reads a fingerprint kept under the renamed id %s as the new one: a drift notified before the upgrade is not notified again',
    async (_oldRule, rotation, call, kept, renamed) => {
      // Prepare: the key's record, as the release before this one kept it
      records.set(KEY, { managed: true, openDrift: { [kept]: '2026-11-20T08:00:00.000Z' } });
      kms.rotation.set(KEY, rotation);

      // Act
      const report = await watchKeyActivity(activity(call), deps);

      // Assess: the same drift, found under its new id, is not news; the record keeps when it was first notified
      expect(report).toMatchObject({ outcome: 'drift', newFindings: [] });
      expect(report.findings.map((finding) => finding.fingerprint)).toEqual([renamed]);
      expect(published).toEqual([]);
      expect(records.get(KEY)).toEqual({ managed: true, openDrift: { [renamed]: '2026-11-20T08:00:00.000Z' } });
    },
  );

  it('finds no drift when an UpdateAlias event arrives after the alias was already restored', async () => {
    const late = activity('UpdateAlias', { keyRefs: [OTHER], aliasNames: ['alias/app/key'] });

    const report = await watchKeyActivity(late, deps);

    expect(report).toMatchObject({ outcome: 'no-drift', findings: [] });
    expect(report.keys).toEqual([KEY]);
    expect(published).toEqual([]);
  });

  it('finds the key that declares an alias re-pointed elsewhere, through the managed-key directory', async () => {
    kms.aliases.set('alias/app/key', OTHER);

    const report = await watchKeyActivity(
      activity('UpdateAlias', { keyRefs: [OTHER], aliasNames: ['alias/app/key'] }),
      deps,
    );

    expect(report.findings).toEqual([
      expect.objectContaining({
        rule: 'declared-alias-elsewhere',
        keyId: KEY,
        evidence: { aliasName: 'alias/app/key', pointsAt: OTHER },
      }),
    ]);
  });

  it('ignores a failed call, and changes nothing', async () => {
    kms.rotation.set(KEY, { enabled: false });

    const report = await watchKeyActivity(
      activity('RotateKeyOnDemand', { errorCode: 'LimitExceededException', errorMessage: 'quota' }),
      { ...deps, mode: 'remediate' },
    );

    expect(report).toMatchObject({ outcome: 'ignored', summary: expect.stringContaining('LimitExceededException') });
    expect(published).toEqual([]);
    expect(kms.changes).toEqual([]);
  });

  it("recognises the service's own calls by the exact sessions of its roles, and never remediates them", async () => {
    kms.aliases.set('alias/app/key', OTHER);
    const byRotate = activity('UpdateAlias', {
      actor: { type: 'AssumedRole', arn: ROTATE_SESSION, roleArn: ROTATE_ROLE },
    });
    const byDriftWatch = activity('UpdateAlias', {
      actor: { type: 'AssumedRole', arn: DRIFT_SESSION, roleArn: DRIFT_ROLE },
    });

    const reports = [
      await watchKeyActivity(byRotate, { ...deps, mode: 'remediate' }),
      await watchKeyActivity(byDriftWatch, deps),
    ];

    expect(reports.map((report) => [report.outcome, report.summary])).toEqual([
      ['ignored', 'UpdateAlias was made by kms-rotation itself'],
      ['ignored', 'UpdateAlias was made by kms-rotation itself'],
    ]);
    expect(published).toEqual([]);
    expect(kms.changes).toEqual([]);
  });

  /** Records that carry the text of a service role without being a session of it. */
  const SPOOFS: [string, Actor][] = [
    [
      'a role of the same name in another account',
      {
        type: 'AssumedRole',
        arn: ROTATE_SESSION.replace(ACCOUNT, STRANGER),
        roleArn: ROTATE_ROLE.replace(ACCOUNT, STRANGER),
      },
    ],
    [
      'an IAM user whose path imitates the role',
      { type: 'IAMUser', arn: `arn:aws:iam::${ACCOUNT}:user/role/kms-rotation-prod-RotateRole-ABC` },
    ],
    [
      "an IAM user whose path imitates the role's ARN",
      { type: 'IAMUser', arn: `arn:aws:iam::${ACCOUNT}:user/:role/kms-rotation-prod-RotateRole-ABC` },
    ],
    ["invokedBy set to the role's ARN", { type: 'AWSService', invokedBy: ROTATE_ROLE }],
    [
      "the role's ARN as principal, not a session of it",
      { type: 'AssumedRole', arn: ROTATE_ROLE, roleArn: ROTATE_ROLE },
    ],
    [
      "the role as session issuer of another role's session",
      {
        type: 'AssumedRole',
        arn: `arn:aws:sts::${ACCOUNT}:assumed-role/intruder/kms-rotation-prod-rotate`,
        roleArn: ROTATE_ROLE,
      },
    ],
    ["the role's session under another principal type", { type: 'IAMUser', arn: ROTATE_SESSION, roleArn: ROTATE_ROLE }],
    [
      "the role's session in another partition",
      { type: 'AssumedRole', arn: ROTATE_SESSION.replace('arn:aws:', 'arn:aws-cn:'), roleArn: ROTATE_ROLE },
    ],
    [
      "the role's session in another account",
      { type: 'AssumedRole', arn: ROTATE_SESSION.replace(ACCOUNT, STRANGER), roleArn: ROTATE_ROLE },
    ],
    [
      'a session ARN with more than a session name after the role',
      { type: 'AssumedRole', arn: `${ROTATE_SESSION}/extra`, roleArn: ROTATE_ROLE },
    ],
    [
      'a federated user named like the role',
      { type: 'FederatedUser', arn: `arn:aws:sts::${ACCOUNT}:federated-user/kms-rotation-prod-RotateRole-ABC` },
    ],
  ];

  it.each(SPOOFS)(
    'does not take %s for kms-rotation itself: the change is checked and notified',
    async (_name, actor) => {
      kms.aliases.set('alias/app/key', OTHER);

      const report = await watchKeyActivity(activity('UpdateAlias', { aliasNames: ['alias/app/key'], actor }), deps);

      expect(report.outcome).toBe('drift');
      expect(published.map((notification) => notification.type)).toEqual(['DriftDetected']);
    },
  );

  it('refuses, before any AWS call, an ARN of another account, Region or partition, naming its field', async () => {
    const foreign = [
      `arn:aws:kms:us-east-1:${STRANGER}:key/${KEY}`,
      `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${KEY}`,
      `arn:aws-cn:kms:us-east-1:${ACCOUNT}:alias/app/key`,
    ];
    for (const arn of foreign) {
      kms.failNext = new Error('no AWS call expected');
      const refused = activity('DisableKey', { arns: [{ field: 'detail.resources.1.ARN', arn }] });

      const error = await watchKeyActivity(refused, deps).catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(InvalidInputError);
      expect((error as Error).message).toBe(
        `detail.resources.1.ARN must be in this function's partition, account and Region (aws, ${ACCOUNT}, us-east-1): ${arn}`,
      );
      expect(kms.failNext).toBeDefined();
    }
    expect(published).toEqual([]);
  });

  it('in detect mode only notifies', async () => {
    kms.rotation.set(KEY, { enabled: false });
    kms.aliases.delete('alias/app/key');

    const report = await watchKeyActivity(activity('DeleteAlias', { aliasNames: ['alias/app/key'] }), deps);

    expect(report.findings.map((finding) => finding.rule).sort()).toEqual([
      'declared-alias-missing',
      'rotation-enabled',
    ]);
    expect(report.remediations).toEqual([]);
    expect(kms.changes).toEqual([]);
  });

  it('in remediate mode re-enables rotation with the declared period and re-creates a deleted declared alias, each notified', async () => {
    kms.rotation.set(KEY, { enabled: false });
    kms.aliases.delete('alias/app/key');

    const report = await watchKeyActivity(activity('DeleteAlias', { aliasNames: ['alias/app/key'] }), {
      ...deps,
      mode: 'remediate',
    });

    expect(kms.changes.sort()).toEqual([`CreateAlias alias/app/key ${KEY}`, `EnableKeyRotation ${KEY} 365`]);
    expect(report.remediations.map((item) => item.status)).toEqual(['remediated', 'remediated']);
    expect(published.map((notification) => [notification.type, notification.severity])).toEqual([
      ['DriftDetected', 'WARNING'],
      ['DriftRemediated', 'INFO'],
    ]);
    expect(records.get(KEY)?.openDrift).toBeUndefined();
  });

  it('in remediate mode puts back only the rules it is told to', async () => {
    kms.rotation.set(KEY, { enabled: false });
    kms.aliases.set('alias/app/key', OTHER);

    await watchKeyActivity(activity('UpdateAlias', { aliasNames: ['alias/app/key'] }), {
      ...deps,
      mode: 'remediate',
      remediateRules: new Set(['rotation-enabled']),
    });

    expect(kms.changes).toEqual([`EnableKeyRotation ${KEY} 365`]);
    expect(kms.aliases.get('alias/app/key')).toBe(OTHER);
  });

  it('never points an alias at a key that fails verification', async () => {
    kms.aliases.set('alias/app/key', OTHER);
    kms.brokenKeys.add(KEY);

    const report = await watchKeyActivity(activity('UpdateAlias', { aliasNames: ['alias/app/key'] }), {
      ...deps,
      mode: 'remediate',
    });

    expect(report.remediations).toEqual([
      expect.objectContaining({
        rule: 'declared-alias-elsewhere',
        status: 'failed',
        detail: expect.stringContaining('failed verification'),
      }),
    ]);
    expect(kms.changes).toEqual([]);
    expect(published.at(-1)).toMatchObject({ type: 'DriftRemediated', severity: 'WARNING' });
  });

  it('leaves an alias outside aliasScope where it is, with no call that IAM would deny, and says why', async () => {
    kms.aliases.set('alias/app/key', OTHER);
    const calls: string[] = [];
    const counted = {
      ...kms.cryptoPort,
      encrypt: (...args: Parameters<typeof kms.cryptoPort.encrypt>) => {
        calls.push('encrypt');
        return kms.cryptoPort.encrypt(...args);
      },
    };

    const report = await watchKeyActivity(activity('UpdateAlias', { aliasNames: ['alias/app/key'] }), {
      ...deps,
      crypto: counted,
      mode: 'remediate',
      aliasScope: ['alias/payments/*'],
    });

    expect(report.remediations).toEqual([
      expect.objectContaining({
        rule: 'declared-alias-elsewhere',
        status: 'failed',
        detail:
          'alias/app/key left as is: it is outside the aliases kms-rotation may move (aliasScope: alias/payments/*)',
      }),
    ]);
    expect(calls).toEqual([]);
    expect(kms.changes).toEqual([]);
    expect(kms.aliases.get('alias/app/key')).toBe(OTHER);
  });

  it('never reverts deletion, disabling or policy changes, even in remediate mode', async () => {
    kms.keys.set(KEY, { ...(kms.keys.get(KEY) as KeyDescription), keyState: 'Disabled' });

    const report = await watchKeyActivity(activity('DisableKey'), { ...deps, mode: 'remediate' });

    expect(report.findings).toEqual([expect.objectContaining({ rule: 'key-disabled', severity: 'CRITICAL' })]);
    expect(report.remediations).toEqual([]);
    expect(published.map((notification) => notification.severity)).toEqual(['CRITICAL']);
  });

  it('raises CRITICAL once for a deleted key it had a record of, however often KMS repeats the deletion event', async () => {
    kms.keys.delete(KEY);
    records.set(KEY, { managed: true });
    const deletion = activity('KMS CMK Deletion', { actor: undefined, callId: undefined });

    await watchKeyActivity(deletion, deps);
    await watchKeyActivity({ ...deletion, eventId: 'second-delivery' }, deps);

    expect(published).toEqual([
      expect.objectContaining({
        type: 'DriftDetected',
        severity: 'CRITICAL',
        summary: expect.stringContaining('by AWS KMS'),
      }),
    ]);
  });

  it('never reads clean when nothing managed was examined: it says what it found instead', async () => {
    kms.keys.delete(KEY);

    const deleted = await watchKeyActivity(activity('KMS CMK Deletion'), deps);
    const unmanaged = await watchKeyActivity(activity('DisableKey', { keyRefs: [OTHER] }), deps);
    const nowhere = await watchKeyActivity(
      activity('DeleteAlias', { keyRefs: [], aliasNames: ['alias/app/unknown'] }),
      deps,
    );

    expect([deleted, unmanaged, nowhere].map((report) => [report.outcome, report.summary])).toEqual([
      [
        'ignored',
        `KMS CMK Deletion concerns nothing kms-rotation manages; nothing checked (${KEY}: deleted, and kms-rotation kept no record of it (DescribeKey: not found))`,
      ],
      [
        'ignored',
        `DisableKey concerns nothing kms-rotation manages; nothing checked (${OTHER}: not managed by kms-rotation (no kms-rotation:managed tag))`,
      ],
      [
        'ignored',
        'DeleteAlias concerns nothing kms-rotation manages; nothing checked (alias/app/unknown: points at no key, and no managed key declares it)',
      ],
    ]);
    expect(published).toEqual([]);
    expect(records.size).toBe(0);
  });

  it('fails loudly when a call record names a key that does not exist here', async () => {
    kms.keys.delete(KEY);

    const error = await watchKeyActivity(activity('DisableKeyRotation'), deps).catch((caught: unknown) => caught);

    expect(error).toMatchObject({ name: 'PreconditionFailedError', reason: 'key-not-found', retryable: false });
    expect(published).toEqual([]);
  });
  it('refuses events of another account or Region', async () => {
    await expect(watchKeyActivity(activity('DisableKey', { account: '999988887777' }), deps)).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    await expect(watchKeyActivity(activity('DisableKey', { region: 'eu-west-1' }), deps)).rejects.toBeInstanceOf(
      InvalidInputError,
    );
  });

  it('fails loudly on a retryable AWS error so that the event is retried, notifying nothing', async () => {
    kms.failNext = new AwsServiceError('DescribeKey', true, 'DescribeKey failed: ThrottlingException');

    await expect(watchKeyActivity(activity('DisableKeyRotation'), deps)).rejects.toMatchObject({ retryable: true });
    expect(published).toEqual([]);
  });

  describe('decisions, each guarded (a mutant of any of them fails a test here)', () => {
    const THIRD = '2222bbbb-3333-4444-8555-666677778888';
    /** Every write of a key's record, by key. */
    let saves: string[];

    beforeEach(() => {
      saves = [];
      const save = deps.records.save;
      deps = {
        ...deps,
        records: {
          load: deps.records.load,
          save: async (keyId, record) => {
            saves.push(keyId);
            await save(keyId, record);
          },
        },
      };
    });

    it('writes the record once per new drift: a drift already recorded writes nothing when its event repeats', async () => {
      kms.rotation.set(KEY, { enabled: false });

      await watchKeyActivity(activity('DisableKeyRotation'), deps);
      await watchKeyActivity({ ...activity('DisableKeyRotation'), eventId: 'redelivered' }, deps);

      expect(saves).toEqual([KEY]);
    });

    it('writes a record again only for a key whose drift was put back, and keeps what the record held (the canary)', async () => {
      // Prepare: KEY's rotation is off (put back); OTHER's declared alias points at KEY, and OTHER fails verification.
      const canary = { ciphertext: 'Y2lwaGVy', plaintextSha256: 'ab'.repeat(32), createdAt: '2026-11-01T00:00:00Z' };
      records.set(KEY, { managed: true, canary });
      kms.rotation.set(KEY, { enabled: false });
      kms.tags.set(OTHER, { ...managedTags('alias/app/other') });
      kms.aliases.set('alias/app/other', KEY);
      kms.brokenKeys.add(OTHER);

      // Act
      const report = await watchKeyActivity(activity('DisableKeyRotation', { keyRefs: [KEY, OTHER] }), {
        ...deps,
        mode: 'remediate',
      });

      // Assess: keys in a stable order; KEY written twice (notified, then put back), OTHER once.
      expect(report.keys).toEqual([OTHER, KEY]);
      expect(report.remediations.map(({ keyId, status }) => [keyId, status])).toEqual([
        [OTHER, 'failed'],
        [KEY, 'remediated'],
      ]);
      expect(saves.filter((keyId) => keyId === KEY)).toHaveLength(2);
      expect(saves.filter((keyId) => keyId === OTHER)).toHaveLength(1);
      // The drift put back is gone from it; the one that cannot be (an alias KEY does not declare) stays.
      expect(records.get(KEY)).toEqual({
        managed: true,
        canary,
        openDrift: { [`undeclared-alias:${KEY}:alias/app/other`]: '2026-11-21T10:00:05.000Z' },
      });
      expect(Object.keys(records.get(OTHER)?.openDrift ?? {})).toEqual([
        expect.stringContaining('declared-alias-elsewhere'),
      ]);
    });

    it.each(['detect', 'remediate'] as const)(
      'keeps no record of a key it does not manage, named beside one it does (%s)',
      async (mode) => {
        kms.rotation.set(KEY, { enabled: false });

        const report = await watchKeyActivity(activity('DisableKeyRotation', { keyRefs: [KEY, OTHER] }), {
          ...deps,
          mode,
        });

        expect(report.keys).toEqual([KEY]);
        expect([...records.keys()]).toEqual([KEY]);
      },
    );

    it('lists the managed keys (the tagging API) only for an event that names an alias', async () => {
      let listings = 0;
      const directory = {
        managedKeys: () => {
          listings += 1;
          return deps.directory.managedKeys();
        },
      };

      await watchKeyActivity(activity('DisableKeyRotation'), { ...deps, directory });
      expect(listings).toBe(0);
      await watchKeyActivity(activity('UpdateAlias', { keyRefs: [], aliasNames: ['alias/app/key'] }), {
        ...deps,
        directory,
      });
      expect(listings).toBe(1);
    });

    it('says an alias leads nowhere only when it points at no key and no managed key declares it', async () => {
      kms.aliases.set('alias/app/foo', OTHER);

      const report = await watchKeyActivity(
        activity('UpdateAlias', { keyRefs: [], aliasNames: ['alias/app/foo'] }),
        deps,
      );

      expect(report.summary).toBe(
        `UpdateAlias concerns nothing kms-rotation manages; nothing checked (${OTHER}: not managed by kms-rotation (no kms-rotation:managed tag))`,
      );
    });

    it('leaves an AWS managed key alone without reading its tags, and says so', async () => {
      kms.addKey(THIRD, managedTags(), { keyManager: 'AWS' });
      const tagReads: string[] = [];
      const keys = {
        ...deps.keys,
        listTags: (keyId: string) => {
          tagReads.push(keyId);
          return deps.keys.listTags(keyId);
        },
      };

      const report = await watchKeyActivity(activity('DisableKey', { keyRefs: [THIRD] }), { ...deps, keys });

      expect(report.summary).toBe(
        `DisableKey concerns nothing kms-rotation manages; nothing checked (${THIRD}: an AWS managed key)`,
      );
      expect(tagReads).toEqual([]);
    });

    it('never reads the rotation status of a key KMS cannot rotate by itself, so never flags it for rotation', async () => {
      kms.addKey(THIRD, managedTags(''), { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' });
      kms.rotation.set(THIRD, { enabled: false });
      const statusReads: string[] = [];
      const keys = {
        ...deps.keys,
        getRotationStatus: (keyId: string) => {
          statusReads.push(keyId);
          return deps.keys.getRotationStatus(keyId);
        },
      };

      const report = await watchKeyActivity(activity('DisableKeyRotation', { keyRefs: [THIRD] }), { ...deps, keys });

      expect(report).toMatchObject({ outcome: 'no-drift', summary: `DisableKeyRotation: no drift on ${THIRD}` });
      expect(statusReads).toEqual([]);
    });

    it('never moves a declared alias back onto its key while that key is not enabled', async () => {
      kms.keys.set(KEY, { ...(kms.keys.get(KEY) as KeyDescription), keyState: 'Disabled' });
      kms.aliases.set('alias/app/key', OTHER);

      const report = await watchKeyActivity(activity('UpdateAlias', { aliasNames: ['alias/app/key'] }), {
        ...deps,
        mode: 'remediate',
      });

      expect(report.remediations).toEqual([
        {
          rule: 'declared-alias-elsewhere',
          keyId: KEY,
          status: 'failed',
          detail: `alias/app/key left as is: its declared key ${KEY} is not enabled`,
        },
      ]);
      expect(kms.changes).toEqual([]);
    });

    it('moves an existing declared alias back with UpdateAlias (CreateAlias is for a deleted one), saying how the key proved itself', async () => {
      kms.aliases.set('alias/app/key', OTHER);

      const report = await watchKeyActivity(activity('UpdateAlias', { aliasNames: ['alias/app/key'] }), {
        ...deps,
        mode: 'remediate',
      });

      expect(kms.changes).toEqual([`UpdateAlias alias/app/key ${KEY}`]);
      expect(report.remediations).toEqual([
        {
          rule: 'declared-alias-elsewhere',
          keyId: KEY,
          status: 'remediated',
          detail: `alias/app/key points at ${KEY} again (encrypt -> decrypt round trip with an encryption context)`,
        },
      ]);
    });

    it('sums up what it judged in one line: the drift found, or no drift on the keys it checked', async () => {
      const clean = await watchKeyActivity(activity('EnableKeyRotation'), deps);
      kms.rotation.set(KEY, { enabled: false });
      const drifted = await watchKeyActivity(activity('DisableKeyRotation'), deps);

      expect(clean.summary).toBe(`EnableKeyRotation: no drift on ${KEY}`);
      expect(drifted.summary).toBe(`DisableKeyRotation: ${drifted.findings[0]?.summary}`);
      expect(drifted.findings).toHaveLength(1);
    });
  });

  describe('with Security Hub findings (securityHubFindings on)', () => {
    let hub: MemorySecurityHub;
    const idOf = (rule: string) => `kms-rotation/${ACCOUNT}/us-east-1/${KEY}/${rule}`;
    const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/${KEY}`;
    /** The finding the audit imported for the key before, two days earlier. */
    const auditFinding = (rule: AuditRuleId, summary: string) =>
      toAsff(
        { rule, severity: 'WARNING', keyId: KEY, aliases: ['alias/app/key'], summary, evidence: {} },
        {
          location: { partition: 'aws', account: ACCOUNT, region: 'us-east-1' },
          auditId: 'audit-0',
          now: new Date('2026-11-19T03:00:00Z'),
        },
      );

    beforeEach(() => {
      hub = new MemorySecurityHub();
      deps = { ...deps, securityHub: hub };
    });

    it('reads back the findings of the managed keys only, and sends nothing when there is nothing to import or resolve', async () => {
      const report = await watchKeyActivity(activity('EnableKeyRotation', { keyRefs: [KEY, OTHER] }), deps);

      expect(report.securityHub).toEqual({ imported: 0, resolved: 0 });
      expect(hub.reads).toEqual([[KEY_ARN]]);
      expect(hub.imports).toEqual([]);
    });

    it("imports a drift under the audit rule's finding, open, naming who caused it, and reads back only the key's findings", async () => {
      kms.rotation.set(KEY, { enabled: false });

      const report = await watchKeyActivity(activity('DisableKeyRotation'), deps);

      expect(hub.reads).toEqual([[KEY_ARN]]);
      expect(hub.state()).toEqual({ [`${KEY}/rotation-enabled`]: 'ACTIVE NEW FAILED' });
      expect(hub.stored.get(idOf('rotation-enabled'))).toMatchObject({
        GeneratorId: 'kms-rotation/rotation-enabled',
        Severity: { Label: 'MEDIUM' },
        FindingProviderFields: { Severity: { Label: 'MEDIUM' } },
        CreatedAt: '2026-11-21T10:00:05.000Z',
        Description: expect.stringContaining(`Drift after DisableKeyRotation by ${ALICE} from 198.51.100.24`),
        Resources: [expect.objectContaining({ Id: KEY_ARN })],
        Compliance: { Status: 'FAILED', RelatedRequirements: CONTROLS['rotation-enabled'] },
        ProductFields: {
          'kms-rotation/rule': 'rotation-enabled',
          'kms-rotation/keyId': KEY,
          'kms-rotation/driftRule': 'rotation-enabled',
          'kms-rotation/eventId': 'event-DisableKeyRotation',
          'kms-rotation/actor': ALICE,
        },
      });
      expect(report.securityHub).toEqual({ imported: 1, resolved: 0 });
    });

    it('says nothing of Security Hub with it off', async () => {
      kms.rotation.set(KEY, { enabled: false });

      const report = await watchKeyActivity(activity('DisableKeyRotation'), { ...deps, securityHub: undefined });

      expect(report).not.toHaveProperty('securityHub');
      expect(hub.reads).toEqual([]);
    });

    it("updates the audit's open finding of the same key and rule, keeping its CreatedAt and audit id", async () => {
      hub.stored.set(idOf('declared-alias'), auditFinding('declared-alias', 'declared alias alias/app/key missing'));
      kms.aliases.delete('alias/app/key');

      await watchKeyActivity(activity('DeleteAlias', { aliasNames: ['alias/app/key'] }), deps);

      expect(hub.stored.size).toBe(1);
      expect(hub.stored.get(idOf('declared-alias'))).toMatchObject({
        CreatedAt: '2026-11-19T03:00:00.000Z',
        UpdatedAt: '2026-11-21T10:00:05.000Z',
        RecordState: 'ACTIVE',
        ProductFields: expect.objectContaining({
          'kms-rotation/auditId': 'audit-0',
          'kms-rotation/driftRule': 'declared-alias-missing',
        }),
      });
    });

    it('maps CRITICAL drift to CRITICAL, under its own finding for a rule no audit rule judges', async () => {
      kms.keys.set(KEY, { ...(kms.keys.get(KEY) as KeyDescription), keyState: 'Disabled' });

      await watchKeyActivity(activity('DisableKey'), deps);

      expect(hub.stored.get(idOf('key-disabled'))).toMatchObject({
        GeneratorId: 'kms-rotation/key-disabled',
        Severity: { Label: 'CRITICAL' },
        FindingProviderFields: { Severity: { Label: 'CRITICAL' } },
        Workflow: { Status: 'NEW' },
      });
    });

    it('resolves its own finding of a rule no audit rule judges when a later record shows the key put back', async () => {
      kms.keys.set(KEY, { ...(kms.keys.get(KEY) as KeyDescription), keyState: 'Disabled' });
      await watchKeyActivity(activity('DisableKey'), deps);
      kms.keys.set(KEY, { ...(kms.keys.get(KEY) as KeyDescription), keyState: 'Enabled' });

      const report = await watchKeyActivity(activity('EnableKey'), deps);

      expect(hub.state()).toEqual({ [`${KEY}/key-disabled`]: 'ARCHIVED RESOLVED PASSED' });
      expect(hub.stored.get(idOf('key-disabled'))?.Description).toMatch(
        /^No longer found by the kms-rotation drift watch after EnableKey by /,
      );
      expect(report.securityHub).toEqual({ imported: 0, resolved: 1 });
    });

    it("leaves the audit's own finding, which the drift watch did not import, for the audit to resolve", async () => {
      hub.stored.set(idOf('rotation-period'), auditFinding('rotation-period', 'rotation period above the maximum'));

      const report = await watchKeyActivity(activity('EnableKeyRotation'), deps);

      expect(report.outcome).toBe('no-drift');
      expect(hub.state()).toEqual({ [`${KEY}/rotation-period`]: 'ACTIVE NEW FAILED' });
    });

    it('in remediate mode imports the drift it put back as resolved, saying it remediated it and who caused it', async () => {
      kms.rotation.set(KEY, { enabled: false });

      const report = await watchKeyActivity(activity('DisableKeyRotation'), { ...deps, mode: 'remediate' });

      expect(hub.state()).toEqual({ [`${KEY}/rotation-enabled`]: 'ARCHIVED RESOLVED PASSED' });
      const finding = hub.stored.get(idOf('rotation-enabled'));
      expect(finding?.Description).toMatch(
        new RegExp(
          `^Remediated by the kms-rotation drift watch: automatic rotation re-enabled on ${KEY} every 365 days\\. Drift after DisableKeyRotation by ${ALICE}`,
        ),
      );
      expect(finding?.ProductFields).toMatchObject({
        'kms-rotation/remediation': `automatic rotation re-enabled on ${KEY} every 365 days`,
        'kms-rotation/actor': ALICE,
      });
      expect(report.securityHub).toEqual({ imported: 0, resolved: 1 });
    });

    it('keeps a finding open while any drift under it is not put back (one of two declared aliases outside aliasScope)', async () => {
      kms.tags.set(KEY, managedTags('alias/app/key alias/other/key'));
      kms.aliases.delete('alias/app/key');

      await watchKeyActivity(activity('DeleteAlias', { aliasNames: ['alias/app/key'] }), {
        ...deps,
        mode: 'remediate',
      });

      expect(kms.aliases.get('alias/app/key')).toBe(KEY);
      expect(hub.state()).toEqual({ [`${KEY}/declared-alias`]: 'ACTIVE NEW FAILED' });
      expect(hub.stored.get(idOf('declared-alias'))?.ProductFields['kms-rotation/driftRule']).toBe(
        'declared-alias-missing',
      );
    });

    it("honours the key's exception in force: the finding stays SUPPRESSED, never reopened as NEW", async () => {
      kms.tags.set(KEY, {
        ...managedTags(),
        'kms-rotation:exception:rotation-enabled': 'until=2026-12-31 owner=team-x',
      });
      kms.rotation.set(KEY, { enabled: false });

      await watchKeyActivity(activity('DisableKeyRotation'), deps);

      expect(hub.state()).toEqual({ [`${KEY}/rotation-enabled`]: 'ACTIVE SUPPRESSED FAILED' });
      expect(hub.stored.get(idOf('rotation-enabled'))?.ProductFields['kms-rotation/exception']).toContain('team-x');
    });

    it('fails when Security Hub refuses, only after notifying and recording; the retry imports without notifying again', async () => {
      kms.rotation.set(KEY, { enabled: false });
      hub.failNext = new AwsServiceError('BatchImportFindings', false, 'refused 1 of 1 findings');

      await expect(watchKeyActivity(activity('DisableKeyRotation'), deps)).rejects.toThrow(/refused/);
      expect(published.map((notification) => notification.type)).toEqual(['DriftDetected']);
      expect(records.get(KEY)?.openDrift).toBeDefined();

      const retry = await watchKeyActivity(activity('DisableKeyRotation'), deps);

      expect(published).toHaveLength(1);
      expect(retry.securityHub).toEqual({ imported: 1, resolved: 0 });
      expect(hub.state()).toEqual({ [`${KEY}/rotation-enabled`]: 'ACTIVE NEW FAILED' });
    });
  });
});
