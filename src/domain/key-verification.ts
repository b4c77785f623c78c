import { verdictOrRethrow } from './errors';
import type { KeyDescription } from './model';
import type { KeyCrypto, KeyProver, PublicKeyEncryptor, RandomSource } from './ports';
import type { CheckResult } from './rotation-checks';

export interface KeyVerificationDeps {
  crypto: KeyCrypto;
  prover: KeyProver;
  publicKeys: PublicKeyEncryptor;
  random: RandomSource;
}

/** Algorithms by key spec, for keys whose metadata does not list them (older keys, the emulator). */
const DEFAULT_SIGNING: Record<string, string> = {
  RSA_2048: 'RSASSA_PSS_SHA_256',
  RSA_3072: 'RSASSA_PSS_SHA_256',
  RSA_4096: 'RSASSA_PSS_SHA_256',
  ECC_NIST_P256: 'ECDSA_SHA_256',
  ECC_SECG_P256K1: 'ECDSA_SHA_256',
  ECC_NIST_P384: 'ECDSA_SHA_384',
  ECC_NIST_P521: 'ECDSA_SHA_512',
  ECC_NIST_EDWARDS25519: 'ED25519_SHA_512',
  SM2: 'SM2DSA',
};
const DEFAULT_MAC: Record<string, string> = {
  HMAC_224: 'HMAC_SHA_224',
  HMAC_256: 'HMAC_SHA_256',
  HMAC_384: 'HMAC_SHA_384',
  HMAC_512: 'HMAC_SHA_512',
};

const check = (status: CheckResult['status'], detail: string): CheckResult => ({ id: 'key-works', status, detail });

const flipFirstBit = (data: Uint8Array): Uint8Array => {
  const copy = new Uint8Array(data);
  copy[0] = (copy[0] ?? 0) ^ 1;
  return copy;
};

/**
 * What `verifyKeyWorks` may call on a key, over every key usage: encrypt/decrypt, sign/verify,
 * MAC generate/verify, the public key. Key policies that let a role verify a key grant these.
 */
export const VERIFY_KEY_ACTIONS = [
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:Sign',
  'kms:Verify',
  'kms:GenerateMac',
  'kms:VerifyMac',
  'kms:GetPublicKey',
] as const;

/** Whether two byte strings are the same bytes. */
export const equalBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((byte, index) => byte === b[index]);

/**
 * Proves a key does its job, by key usage: encrypt/decrypt (asymmetric: through the public
 * key, as a client would), sign/verify, or MAC generate/verify, each with a tampered input
 * that must be rejected. Only retryable AWS errors escape; anything else is the verdict.
 */
export const verifyKeyWorks = async (key: KeyDescription, deps: KeyVerificationDeps): Promise<CheckResult> => {
  const message = deps.random.bytes(32);
  const usage = key.keyUsage ?? 'ENCRYPT_DECRYPT';
  const spec = key.keySpec ?? 'SYMMETRIC_DEFAULT';
  try {
    if (usage === 'ENCRYPT_DECRYPT' && spec === 'SYMMETRIC_DEFAULT') {
      const context = { 'kms-rotation:purpose': 'key-verification', 'kms-rotation:key-id': key.keyId };
      const encrypted = await deps.crypto.encrypt(key.arn, message, context);
      const decrypted = await deps.crypto.decrypt(key.arn, encrypted.ciphertext, context);
      return equalBytes(decrypted.plaintext, message)
        ? check('passed', 'encrypt -> decrypt round trip with an encryption context')
        : check('failed', 'decryption returned different data than was encrypted');
    }
    if (usage === 'ENCRYPT_DECRYPT') {
      const algorithm =
        key.encryptionAlgorithms?.find((name) => name === 'RSAES_OAEP_SHA_256') ??
        key.encryptionAlgorithms?.[0] ??
        'RSAES_OAEP_SHA_256';
      const publicKey = await deps.prover.getPublicKey(key.arn);
      const ciphertext = deps.publicKeys.encrypt(publicKey, message, algorithm);
      if (!ciphertext) return check('failed', `cannot encrypt locally with ${algorithm} to verify a ${spec} key`);
      const plaintext = await deps.prover.decryptAsymmetric(key.arn, ciphertext, algorithm);
      return equalBytes(plaintext, message)
        ? check('passed', `encrypted with the public key (${algorithm}), decrypted by KMS`)
        : check('failed', 'KMS decrypted public-key ciphertext to different data');
    }
    if (usage === 'SIGN_VERIFY') {
      const algorithm = key.signingAlgorithms?.[0] ?? DEFAULT_SIGNING[spec];
      if (!algorithm) return check('failed', `no signing algorithm known for ${spec}`);
      const signature = await deps.prover.sign(key.arn, message, algorithm);
      const [valid, forgedAccepted] = await Promise.all([
        deps.prover.verify(key.arn, message, signature, algorithm),
        deps.prover.verify(key.arn, flipFirstBit(message), signature, algorithm),
      ]);
      if (!valid) return check('failed', `a fresh ${algorithm} signature does not verify`);
      if (forgedAccepted) return check('failed', `a ${algorithm} signature verifies for a different message`);
      return check('passed', `sign -> verify (${algorithm}); a tampered message is rejected`);
    }
    if (usage === 'GENERATE_VERIFY_MAC') {
      const algorithm = key.macAlgorithms?.[0] ?? DEFAULT_MAC[spec];
      if (!algorithm) return check('failed', `no MAC algorithm known for ${spec}`);
      const mac = await deps.prover.generateMac(key.arn, message, algorithm);
      const [valid, forgedAccepted] = await Promise.all([
        deps.prover.verifyMac(key.arn, message, mac, algorithm),
        deps.prover.verifyMac(key.arn, message, flipFirstBit(mac), algorithm),
      ]);
      if (!valid) return check('failed', `a fresh ${algorithm} MAC does not verify`);
      if (forgedAccepted) return check('failed', `a tampered ${algorithm} MAC verifies`);
      return check('passed', `MAC generate -> verify (${algorithm}); a tampered MAC is rejected`);
    }
    return check('failed', `key usage ${usage} cannot be verified`);
  } catch (error) {
    return check('failed', `verification of ${key.keyId} failed: ${verdictOrRethrow(error)}`);
  }
};
