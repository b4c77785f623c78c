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
  /** The whole rotation history, every page. */
  listRotations(keyId: string): Promise<RotationRecord[]>;
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

/** Per-key state the validator keeps between rotations. */
export interface ValidationState {
  canary?: Canary;
  /** Keys of events whose failure was already notified (newest last, bounded). */
  notifiedFailures?: string[];
}

export interface ValidationStateStore {
  /** An absent or unreadable record reads as `{}`; the adapter logs why. */
  load(keyId: string): Promise<ValidationState>;
  save(keyId: string, state: ValidationState): Promise<void>;
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
