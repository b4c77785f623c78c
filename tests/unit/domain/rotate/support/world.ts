import { constants, createHash, createPublicKey, publicEncrypt } from 'node:crypto';
import { TAGS } from '../../../../../src/domain/declared-state';
import type { Notification } from '../../../../../src/domain/model';
import type {
  Clock,
  Digest,
  EncryptionContext,
  IdGenerator,
  KeyRecord,
  KeyRecordStore,
  Log,
  Notifier,
  PublicKeyEncryptor,
  RandomSource,
  Sleeper,
} from '../../../../../src/domain/ports';
import type { RotateDeps, RotateRequest } from '../../../../../src/domain/rotate-key';
import { MemoryKeyLeases } from '../../../support/memory-leases';
import { type FakeKeyInit, FakeKms } from './fake-kms';

export const LOCATION = { partition: 'aws', account: '123456789012', region: 'us-east-1' } as const;
export const START = new Date('2026-03-02T09:00:00.000Z');

/** Time stands still unless a test (or the sleeper) moves it. */
export class FakeClock implements Clock {
  private at: number;
  constructor(start: Date = START) {
    this.at = start.getTime();
  }
  now(): Date {
    return new Date(this.at);
  }
  advance(ms: number): void {
    this.at += ms;
  }
}

/** Sleeping moves the fake clock; nothing really waits. */
export class FakeSleeper implements Sleeper {
  readonly sleeps: number[] = [];
  constructor(private readonly clock: FakeClock) {}
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.clock.advance(ms);
  }
  get total(): number {
    return this.sleeps.reduce((sum, ms) => sum + ms, 0);
  }
}

export class SequentialIds implements IdGenerator {
  private next = 0;
  readonly issued: string[] = [];
  newId(): string {
    this.next += 1;
    const id = `rotation-${this.next.toString().padStart(4, '0')}`;
    this.issued.push(id);
    return id;
  }
}

/** Deterministic bytes, different on every call. */
export class CountingRandom implements RandomSource {
  private counter = 0;
  bytes(size: number): Uint8Array {
    const out = Buffer.alloc(size);
    for (let offset = 0; offset < size; offset += 32) {
      this.counter += 1;
      createHash('sha256').update(`random-${this.counter}`).digest().copy(out, offset);
    }
    return new Uint8Array(out);
  }
}

export const sha256Digest: Digest = { sha256Hex: (data) => createHash('sha256').update(data).digest('hex') };

/** Public-key encryption as a client holding the public key would do it (RSA-OAEP). */
export const rsaOaepEncryptor: PublicKeyEncryptor = {
  encrypt: (publicKeyDer, plaintext, algorithm) => {
    const oaepHash = { RSAES_OAEP_SHA_1: 'sha1', RSAES_OAEP_SHA_256: 'sha256' }[algorithm];
    if (!oaepHash) return undefined;
    const key = createPublicKey({ key: Buffer.from(publicKeyDer), format: 'der', type: 'spki' });
    return new Uint8Array(publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, plaintext));
  },
};

export class RecordingNotifier implements Notifier {
  readonly published: Notification[] = [];
  async publish(notification: Notification): Promise<void> {
    this.published.push(notification);
  }
  /** Type and severity of every notification, in order. */
  kinds(): string[] {
    return this.published.map((notification) => `${notification.type}/${notification.severity}`);
  }
}

export class MemoryKeyRecordStore implements KeyRecordStore {
  readonly byKey = new Map<string, KeyRecord>();
  readonly saves: { keyId: string; record: KeyRecord }[] = [];
  async load(keyId: string): Promise<KeyRecord> {
    return structuredClone(this.byKey.get(keyId) ?? {});
  }
  async save(keyId: string, record: KeyRecord): Promise<void> {
    this.saves.push({ keyId, record: structuredClone(record) });
    this.byKey.set(keyId, structuredClone(record));
  }
}

export class RecordingLog implements Log {
  readonly lines: { level: 'info' | 'warn' | 'error'; message: string; attributes?: Record<string, unknown> }[] = [];
  info(message: string, attributes?: Record<string, unknown>): void {
    this.lines.push({ level: 'info', message, attributes });
  }
  warn(message: string, attributes?: Record<string, unknown>): void {
    this.lines.push({ level: 'warn', message, attributes });
  }
  error(message: string, attributes?: Record<string, unknown>): void {
    this.lines.push({ level: 'error', message, attributes });
  }
}

/** Everything `rotateKey` runs against, each part a fake a test can inspect or steer. */
export interface World {
  kms: FakeKms;
  clock: FakeClock;
  sleeper: FakeSleeper;
  ids: SequentialIds;
  notifier: RecordingNotifier;
  records: MemoryKeyRecordStore;
  log: RecordingLog;
  leases: MemoryKeyLeases;
  deps: RotateDeps;
}

export const ON_DEMAND_LIMIT = 25;
export const ROTATE_ROLE_ARN = 'arn:aws:iam::111122223333:role/kms-rotation-test-rotate';
export const ROTATION_WAIT_MS = 30_000;
export const RECENT_ROTATION_MS = 10 * 60_000;

export const createWorld = (overrides: Partial<RotateDeps> = {}): World => {
  const clock = new FakeClock();
  const sleeper = new FakeSleeper(clock);
  const kms = new FakeKms(clock);
  const ids = new SequentialIds();
  const notifier = new RecordingNotifier();
  const records = new MemoryKeyRecordStore();
  const log = new RecordingLog();
  const leases = new MemoryKeyLeases(clock);
  const deps: RotateDeps = {
    keys: kms,
    crypto: kms,
    admin: kms,
    directory: kms,
    prover: kms,
    publicKeys: rsaOaepEncryptor,
    random: new CountingRandom(),
    digest: sha256Digest,
    ids,
    clock,
    log,
    records,
    notifier,
    sleeper,
    location: { ...LOCATION },
    toleranceMs: 15 * 60_000,
    onDemandLimit: ON_DEMAND_LIMIT,
    rotationWaitMs: ROTATION_WAIT_MS,
    recentRotationMs: RECENT_ROTATION_MS,
    rotateRoleArn: ROTATE_ROLE_ARN,
    aliasScope: ['alias/*'],
    leases,
    holder: 'kms-rotation-test-rotate request-1',
    remainingMs: () => 170_000,
    ...overrides,
  };
  return { kms, clock, sleeper, ids, notifier, records, log, leases, deps };
};

/** Tags of a key kms-rotation manages, with its declared aliases. */
export const managedTags = (aliases: string[], extra: Record<string, string> = {}): Record<string, string> => ({
  [TAGS.managed]: 'true',
  [TAGS.aliases]: aliases.join(' '),
  team: 'payments',
  ...extra,
});

/** A managed key with its declared aliases pointing at it. */
export const addManagedKey = (world: World, aliases: string[], init: FakeKeyInit = {}): string =>
  world.kms.addKey({ aliases, ...init, tags: managedTags(aliases, init.tags) });

export const request = (overrides: Partial<RotateRequest> & Pick<RotateRequest, 'key'>): RotateRequest => ({
  strategy: 'auto',
  dryRun: false,
  action: 'rotate',
  ...overrides,
});

const canaryContext = (keyId: string): EncryptionContext => ({
  'kms-rotation:purpose': 'rotation-canary',
  'kms-rotation:key-id': keyId,
});

/** Data encrypted under the key before a rotation, on record as its canary (as onRotation keeps it). */
export const seedCanary = async (world: World, keyId: string): Promise<void> => {
  const plaintext = new Uint8Array(Buffer.from('canary encrypted before the rotation'));
  const { ciphertext } = await world.kms.encrypt(keyId, plaintext, canaryContext(keyId));
  world.records.byKey.set(keyId, {
    managed: true,
    canary: {
      ciphertext: Buffer.from(ciphertext).toString('base64'),
      plaintextSha256: sha256Digest.sha256Hex(plaintext),
      createdAt: '2026-01-01T00:00:00.000Z',
    },
  });
};

/** Step name and status of each step of a report. */
export const stepStatuses = (report: { steps: { step: string; status: string }[] }): string[][] =>
  report.steps.map((step) => [step.step, step.status]);
