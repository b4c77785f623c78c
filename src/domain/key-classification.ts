import type { KeyDescription } from './model';

/**
 * How a key can be rotated, from its metadata alone (docs/kms-facts.md#rotation-by-key-type).
 * One table for every caller: `rotate` picks its strategy from it, `audit` picks the checks
 * that apply, so a key type is never judged by a rule it cannot satisfy.
 */
export type KeyClass =
  /** Symmetric encryption, KMS-generated material, not a replica: automatic and on-demand rotation. */
  | 'auto-rotatable'
  /** Imported material: only on-demand rotation, and only with new material already imported (PENDING_ROTATION). */
  | 'on-demand-only'
  /** Asymmetric, HMAC, custom key store: a new key and the aliases moved to it (alias-swap). */
  | 'alias-swap'
  /** AWS managed: AWS rotates it; not ours to judge or touch. */
  | 'aws-managed'
  /** Multi-Region replica: rotation happens on (and is judged at) the primary key. */
  | 'replica'
  /** Disabled, pending deletion, pending import, unavailable: nothing can be rotated now. */
  | 'inactive'
  /** A key usage we cannot verify or rotate (e.g. KEY_AGREEMENT). */
  | 'unsupported';

export interface Classification {
  keyClass: KeyClass;
  reason: string;
}

const INACTIVE_STATES = new Set([
  'Disabled',
  'PendingDeletion',
  'PendingReplicaDeletion',
  'PendingImport',
  'Unavailable',
]);
const CUSTOM_KEY_STORE_ORIGINS = new Set(['AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE']);

export const classifyKey = (key: KeyDescription): Classification => {
  const spec = key.keySpec ?? 'SYMMETRIC_DEFAULT';
  const usage = key.keyUsage ?? 'ENCRYPT_DECRYPT';
  const origin = key.origin ?? 'AWS_KMS';

  if (key.keyManager === 'AWS')
    return { keyClass: 'aws-managed', reason: 'AWS managed key: AWS rotates it every year' };
  if (INACTIVE_STATES.has(key.keyState)) {
    return { keyClass: 'inactive', reason: `key is ${key.keyState}` };
  }
  if (key.multiRegion && key.multiRegionKeyType === 'REPLICA') {
    return { keyClass: 'replica', reason: 'multi-Region replica: rotation is done on the primary key' };
  }
  if (usage === 'KEY_AGREEMENT') {
    return { keyClass: 'unsupported', reason: 'key agreement keys cannot be verified by kms-rotation' };
  }
  if (CUSTOM_KEY_STORE_ORIGINS.has(origin)) {
    return {
      keyClass: 'alias-swap',
      reason: `custom key store (${origin}): KMS cannot rotate it; move aliases to a new key`,
    };
  }
  if (spec !== 'SYMMETRIC_DEFAULT' || usage !== 'ENCRYPT_DECRYPT') {
    return { keyClass: 'alias-swap', reason: `${spec} / ${usage}: KMS cannot rotate it; move aliases to a new key` };
  }
  if (origin === 'EXTERNAL') {
    return {
      keyClass: 'on-demand-only',
      reason: 'imported key material: on-demand rotation with new material, never automatic',
    };
  }
  return { keyClass: 'auto-rotatable', reason: 'symmetric encryption key with KMS key material' };
};
