import { beforeEach, describe, expect, it } from 'vitest';
import { REMEDIABLE_RULES } from '../../../src/domain/drift-rules';
import { AwsServiceError, InvalidInputError, PreconditionFailedError } from '../../../src/domain/errors';
import type { KeyDescription, Notification, Tags } from '../../../src/domain/model';
import type { ValidationState } from '../../../src/domain/ports';
import { type DriftWatchDeps, type KeyActivity, watchKeyActivity } from '../../../src/domain/watch-key-activity';
import { keyDescription } from '../support/key-description';

const ACCOUNT = '111122223333';
const KEY = '1234abcd-12ab-34cd-56ef-1234567890ab';
const OTHER = '0000aaaa-1111-4222-8333-444455556666';
const ALICE = `arn:aws:iam::${ACCOUNT}:user/Alice`;
const ROTATE_ROLE = `arn:aws:iam::${ACCOUNT}:role/kms-rotation-prod-RotateRole-ABC`;
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
  actor: { type: 'IAMUser', arn: ALICE, sourceIp: '198.51.100.24' },
  ...overrides,
});

describe('Function: watchKeyActivity', () => {
  let kms: FakeKms;
  let states: Map<string, ValidationState>;
  let published: Notification[];
  let deps: DriftWatchDeps;

  beforeEach(() => {
    kms = new FakeKms();
    kms.addKey(KEY, managedTags());
    kms.addKey(OTHER, { team: 'x' });
    kms.aliases.set('alias/app/key', KEY);
    states = new Map();
    published = [];
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
      state: {
        load: async (keyId) => structuredClone(states.get(keyId) ?? {}),
        save: async (keyId, state) => {
          states.set(keyId, structuredClone(state));
        },
      },
      notifier: { publish: async (notification) => void published.push(notification) },
      clock: { now: () => new Date('2026-11-21T10:00:05Z') },
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      location: { partition: 'aws', account: ACCOUNT, region: 'us-east-1' },
      mode: 'detect',
      remediateRules: new Set(REMEDIABLE_RULES),
      serviceRoleArns: [ROTATE_ROLE],
      aliasScope: ['alias/app/*'],
    };
  });

  it('names who did it, and notifies a drift once however often its events repeat', async () => {
    // Prepare
    kms.rotation.set(KEY, { enabled: false });

    // Act
    const first = await watchKeyActivity(activity('DisableKeyRotation'), deps);
    const duplicate = await watchKeyActivity(activity('DisableKeyRotation', { eventId: 'redelivered' }), deps);

    // Assess
    expect(first).toMatchObject({
      outcome: 'drift',
      newFindings: [expect.objectContaining({ rule: 'rotation-disabled' })],
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

  it('notifies again when a drift that was put right comes back', async () => {
    kms.rotation.set(KEY, { enabled: false });
    await watchKeyActivity(activity('DisableKeyRotation'), deps);
    kms.rotation.set(KEY, { enabled: true, periodDays: 365 });
    await watchKeyActivity(activity('EnableKeyRotation'), deps);
    kms.rotation.set(KEY, { enabled: false });

    await watchKeyActivity(activity('DisableKeyRotation', { eventId: 'again' }), deps);

    expect(published.map((notification) => notification.type)).toEqual(['DriftDetected', 'DriftDetected']);
  });

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

  it("recognises the service's own changes, by role or by its assumed-role session, and never remediates them", async () => {
    kms.aliases.set('alias/app/key', OTHER);
    const byRole = activity('UpdateAlias', { actor: { type: 'AssumedRole', roleArn: ROTATE_ROLE } });
    const bySession = activity('UpdateAlias', {
      actor: { arn: `arn:aws:sts::${ACCOUNT}:assumed-role/kms-rotation-prod-RotateRole-ABC/session` },
    });

    const reports = [
      await watchKeyActivity(byRole, { ...deps, mode: 'remediate' }),
      await watchKeyActivity(bySession, deps),
    ];

    expect(reports.map((report) => report.outcome)).toEqual(['ignored', 'ignored']);
    expect(kms.changes).toEqual([]);
  });

  it('in detect mode only notifies', async () => {
    kms.rotation.set(KEY, { enabled: false });
    kms.aliases.delete('alias/app/key');

    const report = await watchKeyActivity(activity('DeleteAlias', { aliasNames: ['alias/app/key'] }), deps);

    expect(report.findings.map((finding) => finding.rule).sort()).toEqual([
      'declared-alias-missing',
      'rotation-disabled',
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
    expect(states.get(KEY)?.openDrift).toBeUndefined();
  });

  it('in remediate mode puts back only the rules it is told to', async () => {
    kms.rotation.set(KEY, { enabled: false });
    kms.aliases.set('alias/app/key', OTHER);

    await watchKeyActivity(activity('UpdateAlias', { aliasNames: ['alias/app/key'] }), {
      ...deps,
      mode: 'remediate',
      remediateRules: new Set(['rotation-disabled']),
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
    states.set(KEY, { managed: true });
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

  it('ignores the deletion of a key it never looked after, and keys that are not managed', async () => {
    kms.keys.delete(KEY);

    const deleted = await watchKeyActivity(activity('KMS CMK Deletion'), deps);
    const unmanaged = await watchKeyActivity(activity('DisableKey', { keyRefs: [OTHER] }), deps);

    expect([deleted.outcome, unmanaged.outcome]).toEqual(['no-drift', 'no-drift']);
    expect(published).toEqual([]);
    expect(states.size).toBe(0);
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
});
