import type { AliasEntry, KeyDescription, Notification, RotationRecord, RotationStatus, Tags } from './model';

/**
 * Reads a key's real state. Implementations translate SDK errors into domain errors:
 * an unknown key is a `PreconditionFailedError('key-not-found')`, throttling and outages
 * are retryable `AwsServiceError`s.
 */
export interface KeyReader {
  /** Accepts a key id, key ARN, alias name or alias ARN. */
  describeKey(keyRef: string): Promise<KeyDescription>;
  getRotationStatus(keyId: string): Promise<RotationStatus>;
  /**
   * The whole rotation history, every page. `includeKeyMaterial` adds the first material
   * and imported material waiting for a rotation (`PENDING_ROTATION`).
   */
  listRotations(keyId: string, options?: { includeKeyMaterial?: boolean }): Promise<RotationRecord[]>;
  /** Aliases that point at the key. */
  listAliasesOf(keyId: string): Promise<AliasEntry[]>;
  listTags(keyId: string): Promise<Tags>;
}

export type EncryptionContext = Readonly<Record<string, string>>;

export interface KeyCrypto {
  /** Encrypts through `keyRef` (key id, ARN or alias); returns the ARN of the key that was used. */
  encrypt(
    keyRef: string,
    plaintext: Uint8Array,
    context: EncryptionContext,
  ): Promise<{ ciphertext: Uint8Array; keyArn: string }>;
  /** Decrypts with exactly `keyId` (never "whatever key the ciphertext names"). */
  decrypt(
    keyId: string,
    ciphertext: Uint8Array,
    context: EncryptionContext,
  ): Promise<{ plaintext: Uint8Array; keyArn: string }>;
}

/** Data encrypted under a key before a rotation, kept to prove it still decrypts after. */
export interface Canary {
  /** Base64 ciphertext. Never the plaintext. */
  ciphertext: string;
  /** SHA-256 (hex) of the plaintext, to recognise a correct decryption. */
  plaintextSha256: string;
  createdAt: string;
}

/**
 * The key's record: what the service keeps of one key between runs (its canary, the failures and
 * drift already notified). Persisted as one SSM parameter per key; its field names are that format.
 */
export interface KeyRecord {
  /** Set once the service has looked after the key: a deleted key with a record was ours. */
  managed?: boolean;
  canary?: Canary;
  /** Keys of events whose failure was already notified (newest last, bounded). */
  notifiedFailures?: string[];
  /** Drift fingerprint -> when it was first notified; dropped once the drift is gone. */
  openDrift?: Record<string, string>;
  /**
   * The last rotation a validation passed for (ListKeyRotations' entry): the audit reconciles the
   * rotations after it (src/domain/reconcile-rotations.ts).
   */
  lastValidatedRotation?: { keyMaterialId?: string; rotationDate: string };
  /**
   * Replica Region -> the first sighting of its replica behind the primary's current material,
   * kept while it lags: seen again at a later audit, the lag is CRITICAL (src/domain/replica-material.ts).
   */
  replicaLag?: Record<string, ReplicaLagSighting>;
}

/** A replica first seen behind its primary: when, and the materials then. */
export interface ReplicaLagSighting {
  firstSeen: string;
  primaryMaterialId: string;
  replicaMaterialId?: string;
}

/** DescribeKey of a multi-Region primary's replica, in the replica's own Region. Errors are translated like `KeyReader`'s. */
export interface ReplicaReader {
  describeReplica(replicaArn: string, region: string): Promise<KeyDescription>;
}

/** Where the keys' records are kept: passed as `records`. */
export interface KeyRecordStore {
  /** An absent or unreadable record reads as `{}`; the adapter logs why. */
  load(keyId: string): Promise<KeyRecord>;
  save(keyId: string, record: KeyRecord): Promise<void>;
}

/** One run's hold on one key: while it lasts, no other run changes the key. */
export interface KeyLease {
  keyId: string;
  /** Which run holds it: the function and its request id. */
  holder: string;
  /** What the run is doing, for whoever is refused. */
  purpose: string;
  /** When the lease ends by itself, if never released: the holder's invocation cannot outlive it. */
  until: Date;
}

/** Per-key mutual exclusion across invocations, on an atomic conditional write. */
export interface KeyLeases {
  /**
   * Takes the lease unless another holder's is still running (its `until` not passed);
   * returns that other lease when refused. Taking one's own again renews it.
   */
  acquire(lease: KeyLease): Promise<KeyLease | undefined>;
  /** Gives the lease back, if this holder still holds it. */
  release(keyId: string, holder: string): Promise<void>;
}

export interface Notifier {
  publish(notification: Notification): Promise<void>;
}

export interface Clock {
  now(): Date;
}

export interface RandomSource {
  bytes(size: number): Uint8Array;
}

export interface Digest {
  sha256Hex(data: Uint8Array): string;
}

/** Structured log lines; implementations must not receive plaintext, ciphertext or policies. */
export interface Log {
  info(message: string, attributes?: Record<string, unknown>): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
  error(message: string, attributes?: Record<string, unknown>): void;
}

/** What a successor key is created with: the predecessor's kind, policy and tags. */
export interface NewKeySpec {
  keySpec: string;
  keyUsage: string;
  description: string;
  policy: string;
  tags: Readonly<Record<string, string>>;
  origin?: string;
  customKeyStoreId?: string;
}

/** Key management calls of manual rotation. Errors are translated like `KeyReader`'s. */
export interface KeyAdmin {
  /**
   * Starts an on-demand rotation. Never retried by the SDK: the per-key limit is a
   * `PreconditionFailedError('on-demand-limit')`, a conflicting automatic rotation a
   * `PreconditionFailedError('rotation-conflict')`.
   */
  rotateKeyOnDemand(keyId: string): Promise<void>;
  getKeyPolicy(keyId: string): Promise<string>;
  createKey(spec: NewKeySpec): Promise<KeyDescription>;
  tagKey(keyId: string, tags: Readonly<Record<string, string>>): Promise<void>;
  /** Points an existing alias at the key. */
  updateAlias(aliasName: string, targetKeyId: string): Promise<void>;
  createAlias(aliasName: string, targetKeyId: string): Promise<void>;
  enableKeyRotation(keyId: string, periodDays?: number): Promise<void>;
}

/** Keys by a tag value, with their tags (Resource Groups Tagging API: one listing, eventually consistent). */
export interface TaggedKeyFinder {
  keysTagged(tagKey: string, tagValue: string): Promise<{ keyId: string; tags: Tags }[]>;
}

/** The cryptographic operations that prove an asymmetric or HMAC key works. */
export interface KeyProver {
  sign(keyId: string, message: Uint8Array, algorithm: string): Promise<Uint8Array>;
  /** False when KMS says the signature is invalid. */
  verify(keyId: string, message: Uint8Array, signature: Uint8Array, algorithm: string): Promise<boolean>;
  generateMac(keyId: string, message: Uint8Array, algorithm: string): Promise<Uint8Array>;
  /** False when KMS says the MAC is invalid. */
  verifyMac(keyId: string, message: Uint8Array, mac: Uint8Array, algorithm: string): Promise<boolean>;
  /** DER-encoded SubjectPublicKeyInfo. */
  getPublicKey(keyId: string): Promise<Uint8Array>;
  decryptAsymmetric(keyId: string, ciphertext: Uint8Array, algorithm: string): Promise<Uint8Array>;
}

/** Public-key encryption done locally, as a client of the key would. */
export interface PublicKeyEncryptor {
  /** `algorithm` is a KMS encryption algorithm name, e.g. `RSAES_OAEP_SHA_256`. */
  encrypt(publicKeyDer: Uint8Array, plaintext: Uint8Array, algorithm: string): Uint8Array | undefined;
}

export interface Sleeper {
  sleep(ms: number): Promise<void>;
}

export interface IdGenerator {
  newId(): string;
}

/** Every key that carries `kms-rotation:managed=true`, with its tags, in one listing. */
export interface ManagedKeyDirectory {
  managedKeys(): Promise<{ keyId: string; tags: Tags }[]>;
}

/**
 * The calls only `selfTest` makes, on its own throwaway keys: creating them, making a drift,
 * and cleaning up. Errors are translated like `KeyReader`'s.
 */
export interface ThrowawayKeyAdmin {
  createKey(spec: NewKeySpec): Promise<KeyDescription>;
  disableKeyRotation(keyId: string): Promise<void>;
  deleteAlias(aliasName: string): Promise<void>;
  /** Returns when the key will be deleted, when KMS says. */
  scheduleKeyDeletion(keyId: string, pendingWindowDays: number): Promise<Date | undefined>;
}
