import type { KeyDescription } from '../../../src/domain/model';

/** An enabled, customer managed, symmetric encryption key with KMS material, unless `overrides` say otherwise. */
export const keyDescription = (
  keyId: string,
  overrides: Partial<KeyDescription> = {},
  account = '111122223333',
): KeyDescription => ({
  keyId,
  arn: `arn:aws:kms:us-east-1:${account}:key/${keyId}`,
  keyState: 'Enabled',
  keySpec: 'SYMMETRIC_DEFAULT',
  keyUsage: 'ENCRYPT_DECRYPT',
  origin: 'AWS_KMS',
  keyManager: 'CUSTOMER',
  ...overrides,
});
