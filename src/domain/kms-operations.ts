/**
 * KMS's cryptographic operations: the uses of a key, as GetKeyLastUsage names them (its
 * `KeyLastUsage.Operation`, the SDK's `KeyLastUsageTrackingOperation`). It records the last successful
 * one; a disabled key refuses each with `DisabledException`, a key pending deletion with
 * `KMSInvalidStateException` (docs/kms-facts.md#retiring-a-key).
 */
export const CRYPTOGRAPHIC_OPERATIONS = [
  'Encrypt',
  'Decrypt',
  'ReEncrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'Sign',
  'Verify',
  'GenerateMac',
  'VerifyMac',
  'DeriveSharedSecret',
  'Encapsulate',
  'Decapsulate',
] as const;

export const isCryptographicOperation = (name: string): boolean =>
  (CRYPTOGRAPHIC_OPERATIONS as readonly string[]).includes(name);
