import { isCryptographicOperation } from '../../../src/domain/kms-operations';
import type { ApiGap } from '../aws-proxy';
import { keyOfCryptoCall } from './moto-kms';

/** A cryptographic call the gap refused, as CloudTrail would record it (with its errorCode). */
export interface RefusedCall {
  api: string;
  keyId: string;
  errorCode: 'DisabledException' | 'KMSInvalidStateException';
  keyState: string;
  at: Date;
}

export interface KeyStateGap extends ApiGap {
  /** Every call refused so far, oldest first. */
  refused(): RefusedCall[];
}

/**
 * KMS's key-state checks on cryptographic calls, which moto 5 does not make (a disabled key still
 * encrypts there; docs/kms-facts.md#moto). Before a cryptographic call is forwarded, the key it
 * names is read from moto: `Disabled` is answered with `DisabledException`, `PendingDeletion`
 * (and any other state that is not `Enabled`) with `KMSInvalidStateException`, as KMS does (KMS
 * Developer Guide, "Key states of AWS KMS keys"). Refused calls are kept, for a test that turns
 * them into the CloudTrail records KMS would write.
 */
export const keyStateGap = (opts: { now?: () => Date } = {}): KeyStateGap => {
  const now = opts.now ?? (() => new Date());
  const refused: RefusedCall[] = [];
  return {
    refused: () => [...refused],
    async answer({ api, body, region, target }) {
      if (!isCryptographicOperation(api)) return undefined;
      const key = await keyOfCryptoCall(target, region ?? 'us-east-1', body);
      if (!key?.keyState || key.keyState === 'Enabled') return undefined;
      const errorCode = key.keyState === 'Disabled' ? 'DisabledException' : 'KMSInvalidStateException';
      refused.push({ api, keyId: key.keyId, errorCode, keyState: key.keyState, at: now() });
      const keyArn = key.arn ?? key.keyId;
      return {
        status: 400,
        body: {
          __type: errorCode,
          message: errorCode === 'DisabledException' ? `${keyArn} is disabled.` : `${keyArn} is pending deletion.`,
        },
      };
    },
  };
};
