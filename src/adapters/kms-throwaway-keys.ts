import {
  CreateKeyCommand,
  type CustomerMasterKeySpec,
  DeleteAliasCommand,
  DisableKeyRotationCommand,
  type KeyUsageType,
  type KMSClient,
  type OriginType,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import type { KeyDescription } from '../domain/model';
import type { NewKeySpec, ThrowawayKeyAdmin } from '../domain/ports';
import { callAws } from './aws-errors';

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
      this.noRetryKms.send(
        new CreateKeyCommand({
          KeySpec: spec.keySpec as CustomerMasterKeySpec,
          KeyUsage: spec.keyUsage as KeyUsageType,
          Description: spec.description,
          Policy: spec.policy,
          Origin: spec.origin as OriginType | undefined,
          Tags: Object.entries(spec.tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })),
        }),
      ),
    );
    const metadata = response.KeyMetadata;
    if (!metadata?.KeyId || !metadata.Arn) throw new Error('CreateKey returned no key metadata');
    return {
      keyId: metadata.KeyId,
      arn: metadata.Arn,
      keyState: metadata.KeyState ?? 'Enabled',
      // moto leaves KeyUsage out of its answer when it was asked for explicitly: keep what was asked.
      keySpec: metadata.KeySpec ?? spec.keySpec,
      keyUsage: metadata.KeyUsage ?? spec.keyUsage,
      origin: metadata.Origin,
      keyManager: metadata.KeyManager,
      creationDate: metadata.CreationDate,
      description: metadata.Description,
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
