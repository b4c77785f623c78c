import type { KeyMetadata, RotationsListEntry } from '@aws-sdk/client-kms';

/** The account, Region and key of the sample events in `events/`. */
export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
export const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
export const KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${KEY_ID}`;
export const ALIAS = 'alias/app/secure-key';
export const OTHER_KEY_ID = '0000aaaa-1111-4222-8333-444455556666';
export const OTHER_KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${OTHER_KEY_ID}`;

/** Key material ids of the 2025-shape sample events. */
export const PREVIOUS_MATERIAL = '123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0';
export const CURRENT_MATERIAL = '96083e4fb6dbc41d77578a213a6b6669c044dd4c143e96755396d2bf11fd6068';

/** DescribeKey's `KeyMetadata` of an enabled, customer managed, symmetric encryption key, unless `overrides` say otherwise. */
export const keyMetadata = (overrides: Partial<KeyMetadata> = {}): KeyMetadata => ({
  AWSAccountId: ACCOUNT,
  KeyId: KEY_ID,
  Arn: KEY_ARN,
  CreationDate: new Date('2025-01-01T00:00:00Z'),
  Enabled: true,
  KeyState: 'Enabled',
  KeySpec: 'SYMMETRIC_DEFAULT',
  KeyUsage: 'ENCRYPT_DECRYPT',
  KeyManager: 'CUSTOMER',
  Origin: 'AWS_KMS',
  EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
  MultiRegion: false,
  CurrentKeyMaterialId: CURRENT_MATERIAL,
  ...overrides,
});

/** One ListKeyRotations entry of the key. */
export const rotationEntry = (
  rotationType: 'AUTOMATIC' | 'ON_DEMAND',
  rotationDate: string,
  keyMaterialId?: string,
): RotationsListEntry => ({
  KeyId: KEY_ID,
  RotationType: rotationType,
  RotationDate: new Date(rotationDate),
  ...(keyMaterialId ? { KeyMaterialId: keyMaterialId } : {}),
});
