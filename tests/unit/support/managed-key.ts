import { createHash } from 'node:crypto';
import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GetKeyRotationStatusCommand,
  type KeyMetadata,
  type KMSClient,
  ListAliasesCommand,
  ListKeyRotationsCommand,
  ListResourceTagsCommand,
  type RotationsListEntry,
} from '@aws-sdk/client-kms';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import {
  ALIAS,
  CURRENT_MATERIAL,
  KEY_ARN,
  KEY_ID,
  keyMetadata,
  PREVIOUS_MATERIAL,
  rotationEntry,
} from './key-metadata';

/** The encryption context every canary and probe is bound with. */
export const CANARY_CONTEXT = { 'kms-rotation:purpose': 'rotation-canary', 'kms-rotation:key-id': KEY_ID };

/** The declared state of the sample key, as tags. */
export const DECLARED_TAGS: Readonly<Record<string, string>> = {
  'kms-rotation:managed': 'true',
  'kms-rotation:aliases': ALIAS,
  'kms-rotation:period-days': '365',
};

/** Rotation histories in which each sample event's rotation is recorded, a few seconds before the event. */
export const HISTORY = {
  onDemand: [
    rotationEntry('AUTOMATIC', '2025-11-20T00:00:00Z', PREVIOUS_MATERIAL),
    rotationEntry('ON_DEMAND', '2026-11-20T03:11:50Z', CURRENT_MATERIAL),
  ],
  automatic: [
    rotationEntry('ON_DEMAND', '2026-05-01T10:00:00Z', PREVIOUS_MATERIAL),
    rotationEntry('AUTOMATIC', '2026-11-21T00:00:03Z', CURRENT_MATERIAL),
  ],
  legacyMinimal: [
    rotationEntry('ON_DEMAND', '2026-05-01T10:00:00Z', PREVIOUS_MATERIAL),
    rotationEntry('AUTOMATIC', '2026-11-19T16:37:45Z', CURRENT_MATERIAL),
  ],
} satisfies Record<string, RotationsListEntry[]>;

/**
 * What the fake KMS "encrypts" to: a marker byte and the plaintext scrambled, so that a
 * ciphertext never equals its plaintext and decrypting it is checkable.
 */
export const seal = (plaintext: Uint8Array): Uint8Array =>
  new Uint8Array([0xc1, ...[...plaintext].map((byte) => byte ^ 0x5a).reverse()]);
export const unseal = (ciphertext: Uint8Array): Uint8Array =>
  new Uint8Array([...ciphertext.subarray(1)].reverse().map((byte) => byte ^ 0x5a));

export const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

export interface ManagedKeyOptions {
  /** Over the enabled symmetric key of `keyMetadata()`. */
  metadata?: Partial<KeyMetadata>;
  /** Replace the declared tags. */
  tags?: Readonly<Record<string, string>>;
  rotationStatus?: { enabled?: boolean; periodDays?: number };
  /** ListKeyRotations; the history of the on-demand sample event unless given. */
  rotations?: RotationsListEntry[];
  /** Aliases that point at the key (ListAliases filtered by the key). */
  aliases?: string[];
}

/**
 * KMS answering for the sample key in its declared state: described, tagged, rotating every
 * 365 days, with the rotation of the on-demand sample event in its history, `alias/app/secure-key`
 * pointing at it, and Encrypt/Decrypt that round-trip (`seal`/`unseal`) on this key.
 */
export const mockManagedKey = (kms: AwsClientStub<KMSClient>, options: ManagedKeyOptions = {}): void => {
  kms.on(DescribeKeyCommand, { KeyId: KEY_ID }).resolves({ KeyMetadata: keyMetadata(options.metadata) });
  kms.on(ListResourceTagsCommand).resolves({
    Tags: Object.entries(options.tags ?? DECLARED_TAGS).map(([TagKey, TagValue]) => ({ TagKey, TagValue })),
    Truncated: false,
  });
  kms.on(GetKeyRotationStatusCommand).resolves({
    KeyId: KEY_ARN,
    KeyRotationEnabled: options.rotationStatus?.enabled ?? true,
    RotationPeriodInDays: options.rotationStatus?.periodDays ?? 365,
  });
  kms.on(ListKeyRotationsCommand).resolves({ Rotations: options.rotations ?? HISTORY.onDemand, Truncated: false });
  kms.on(ListAliasesCommand).resolves({
    Aliases: (options.aliases ?? [ALIAS]).map((AliasName) => ({ AliasName, TargetKeyId: KEY_ID })),
    Truncated: false,
  });
  kms.on(EncryptCommand).callsFake(async (input: { Plaintext?: Uint8Array }) => ({
    CiphertextBlob: seal(input.Plaintext ?? new Uint8Array()),
    KeyId: KEY_ARN,
    EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
  }));
  kms.on(DecryptCommand).callsFake(async (input: { CiphertextBlob?: Uint8Array }) => ({
    Plaintext: unseal(input.CiphertextBlob ?? new Uint8Array()),
    KeyId: KEY_ARN,
    EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
  }));
};

/** The key's record as the service stores it in SSM. */
export interface StoredRecord {
  canary?: { ciphertext: string; plaintextSha256: string; createdAt: string };
  notifiedFailures?: string[];
  managed?: boolean;
  openDrift?: Record<string, string>;
}

/**
 * SSM holding a canary made before the rotation: `plaintext` sealed, with the digest of
 * `digestOf` (another value than `plaintext` makes a canary that decrypts to the wrong data).
 */
export const mockCanary = (
  ssm: AwsClientStub<SSMClient>,
  options: { plaintext?: Uint8Array; digestOf?: Uint8Array; extra?: Omit<StoredRecord, 'canary'> } = {},
): StoredRecord => {
  const plaintext = options.plaintext ?? new Uint8Array(32).fill(9);
  const state: StoredRecord = {
    ...options.extra,
    canary: {
      ciphertext: Buffer.from(seal(plaintext)).toString('base64'),
      plaintextSha256: sha256Hex(options.digestOf ?? plaintext),
      createdAt: '2026-11-01T00:00:00.000Z',
    },
  };
  mockStoredRecord(ssm, state);
  return state;
};

/** SSM holding `state` for the sample key. */
export const mockStoredRecord = (ssm: AwsClientStub<SSMClient>, state: StoredRecord | string): void => {
  ssm.on(GetParameterCommand).resolves({
    Parameter: {
      Name: `/kms-rotation/test/keys/${KEY_ID}`,
      Type: 'String',
      Value: typeof state === 'string' ? state : JSON.stringify(state),
    },
  });
};
