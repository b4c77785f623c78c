import {
  DeleteAliasCommand,
  DisableKeyRotationCommand,
  type KMSClient,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import type { KeyDescription } from '../domain/model';
import type { NewKeySpec, ThrowawayKeyAdmin } from '../domain/ports';
import { callAws } from './aws-errors';
import { createKeyCommandOf, toKeyDescription } from './kms-key-gateway';

/**
 * KMS behind `selfTest`'s own calls. Keys are named by key id: moto fails on key ARNs for
 * ScheduleKeyDeletion (moto 5.x fails on a key ARN there, as on Disable/EnableKey), and the self-test
 * only ever holds ids.
 * `noRetryKms` (maxAttempts 1) sends CreateKey: it is not idempotent, and a blind retry could
 * leave a throwaway key the run does not know of (the cleanup also looks for the run's tag).
 */
export class KmsThrowawayKeys implements ThrowawayKeyAdmin {
  constructor(
    private readonly kms: KMSClient,
    private readonly noRetryKms: KMSClient = kms,
  ) {}

  async createKey(spec: NewKeySpec): Promise<KeyDescription> {
    const response = await callAws('CreateKey', `a self-test ${spec.keySpec} key`, () =>
      this.noRetryKms.send(createKeyCommandOf(spec)),
    );
    const metadata = response.KeyMetadata;
    return {
      ...toKeyDescription(metadata, 'CreateKey'),
      keyState: metadata?.KeyState ?? 'Enabled',
      // moto leaves KeyUsage out of its answer when it was asked for explicitly: keep what was asked.
      keySpec: metadata?.KeySpec ?? spec.keySpec,
      keyUsage: metadata?.KeyUsage ?? spec.keyUsage,
    };
  }

  async disableKeyRotation(keyId: string): Promise<void> {
    await callAws('DisableKeyRotation', keyId, () => this.kms.send(new DisableKeyRotationCommand({ KeyId: keyId })));
  }

  async deleteAlias(aliasName: string): Promise<void> {
    await callAws('DeleteAlias', aliasName, () => this.kms.send(new DeleteAliasCommand({ AliasName: aliasName })));
  }

  async scheduleKeyDeletion(keyId: string, pendingWindowDays: number): Promise<Date | undefined> {
    const response = await callAws('ScheduleKeyDeletion', keyId, () =>
      this.kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: pendingWindowDays })),
    );
    return response.DeletionDate;
  }
}
