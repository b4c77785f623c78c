import { PreconditionFailedError } from './errors';
import type { Classification } from './key-classification';

export type Strategy = 'on-demand' | 'alias-swap';
export type RequestedStrategy = Strategy | 'auto';

/**
 * The strategy a key gets: `auto` picks what AWS prescribes for its class; an explicit
 * strategy that does not fit the key is refused. Symmetric keys may be forced to alias-swap
 * (a fresh key, e.g. after suspected exposure); nothing else may be forced to on-demand.
 */
export const chooseStrategy = (
  keyId: string,
  classification: Classification,
  requested: RequestedStrategy,
  hasPendingImportedMaterial: boolean,
): Strategy => {
  const { keyClass, reason } = classification;
  switch (keyClass) {
    case 'aws-managed':
      throw new PreconditionFailedError('aws-managed', `${keyId} cannot be rotated by kms-rotation: ${reason}`);
    case 'replica':
      throw new PreconditionFailedError('replica', `${keyId} cannot be rotated here: ${reason}`);
    case 'inactive':
      throw new PreconditionFailedError(
        reason.includes('PendingDeletion') ? 'key-pending-deletion' : 'key-disabled',
        `${keyId} cannot be rotated: ${reason}; enable it (or cancel its deletion) first`,
      );
    case 'unsupported':
      throw new PreconditionFailedError('wrong-key-type', `${keyId} cannot be rotated: ${reason}`);
    case 'auto-rotatable':
      return requested === 'auto' ? 'on-demand' : requested;
    case 'on-demand-only':
      if (requested === 'alias-swap') {
        throw new PreconditionFailedError(
          'strategy-mismatch',
          `${keyId} has imported key material: kms-rotation cannot import material into a new key; import new material and rotate on demand`,
        );
      }
      if (!hasPendingImportedMaterial) {
        throw new PreconditionFailedError(
          'no-pending-material',
          `${keyId} has imported key material and none is waiting for rotation: import new key material (state PENDING_ROTATION) first`,
        );
      }
      return 'on-demand';
    case 'alias-swap':
      if (requested === 'on-demand') {
        throw new PreconditionFailedError(
          'strategy-mismatch',
          `${keyId} cannot be rotated on demand (${reason}); use strategy "alias-swap" or "auto"`,
        );
      }
      return 'alias-swap';
  }
};
