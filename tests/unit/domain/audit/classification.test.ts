import { describe, expect, it } from 'vitest';
import { classifyKey, type KeyClass } from '../../../../src/domain/key-classification';
import type { KeyDescription } from '../../../../src/domain/model';
import { keyDescription } from '../../support/key-description';

const key = (overrides: Partial<KeyDescription>): KeyDescription => keyDescription('k', overrides);

const SPECS_BY_USAGE: Record<string, string[]> = {
  ENCRYPT_DECRYPT: ['SYMMETRIC_DEFAULT', 'RSA_2048', 'RSA_3072', 'RSA_4096', 'SM2'],
  SIGN_VERIFY: [
    'RSA_2048',
    'RSA_3072',
    'RSA_4096',
    'ECC_NIST_P256',
    'ECC_NIST_P384',
    'ECC_NIST_P521',
    'ECC_SECG_P256K1',
    'ECC_NIST_EDWARDS25519',
    'SM2',
    'ML_DSA_44',
    'ML_DSA_65',
    'ML_DSA_87',
  ],
  GENERATE_VERIFY_MAC: ['HMAC_224', 'HMAC_256', 'HMAC_384', 'HMAC_512'],
  KEY_AGREEMENT: ['ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'SM2'],
};
const ORIGINS = ['AWS_KMS', 'EXTERNAL', 'AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'];
const STATES = [
  'Enabled',
  'Disabled',
  'PendingDeletion',
  'PendingImport',
  'PendingReplicaDeletion',
  'Unavailable',
  'Creating',
  'Updating',
];
const INACTIVE = new Set(['Disabled', 'PendingDeletion', 'PendingImport', 'PendingReplicaDeletion', 'Unavailable']);

/** The expected class, written as the AWS rules read (docs/kms-facts.md#rotation-by-key-type), independently of the code. */
const expectedClass = (
  spec: string,
  usage: string,
  origin: string,
  manager: string,
  state: string,
  replica: boolean,
): KeyClass => {
  if (manager === 'AWS') return 'aws-managed';
  if (INACTIVE.has(state)) return 'inactive';
  if (replica) return 'replica';
  if (usage === 'KEY_AGREEMENT') return 'unsupported';
  if (origin === 'AWS_CLOUDHSM' || origin === 'EXTERNAL_KEY_STORE') return 'alias-swap';
  if (spec !== 'SYMMETRIC_DEFAULT' || usage !== 'ENCRYPT_DECRYPT') return 'alias-swap';
  if (origin === 'EXTERNAL') return 'on-demand-only';
  return 'auto-rotatable';
};

const combinations = Object.entries(SPECS_BY_USAGE).flatMap(([usage, specs]) =>
  specs.flatMap((spec) =>
    ORIGINS.flatMap((origin) =>
      ['CUSTOMER', 'AWS'].flatMap((manager) =>
        STATES.flatMap((state) => [false, true].map((replica) => ({ spec, usage, origin, manager, state, replica }))),
      ),
    ),
  ),
);

describe('Function: classifyKey', () => {
  it(`classifies all ${combinations.length} KeySpec / KeyUsage / Origin / KeyManager / KeyState / multi-Region combinations`, () => {
    const mismatches = combinations.filter(({ spec, usage, origin, manager, state, replica }) => {
      const actual = classifyKey(
        key({
          keySpec: spec,
          keyUsage: usage,
          origin,
          keyManager: manager,
          keyState: state,
          multiRegion: replica || undefined,
          multiRegionKeyType: replica ? 'REPLICA' : undefined,
        }),
      ).keyClass;
      return actual !== expectedClass(spec, usage, origin, manager, state, replica);
    });
    expect(mismatches).toEqual([]);
  });

  it('treats a multi-Region primary like a single-Region key', () => {
    expect(classifyKey(key({ multiRegion: true, multiRegionKeyType: 'PRIMARY' })).keyClass).toBe('auto-rotatable');
  });

  it('reads metadata the emulator leaves out (no KeyUsage, no KeySpec) as the AWS defaults', () => {
    expect(classifyKey(key({ keySpec: undefined, keyUsage: undefined, origin: undefined })).keyClass).toBe(
      'auto-rotatable',
    );
  });

  it('explains each class in words', () => {
    expect(classifyKey(key({ origin: 'EXTERNAL' })).reason).toContain('imported key material');
    expect(classifyKey(key({ keyState: 'PendingDeletion' })).reason).toBe('key is PendingDeletion');
  });
});
