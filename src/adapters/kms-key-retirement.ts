import {
  CancelKeyDeletionCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  GetKeyLastUsageCommand,
  type KMSClient,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import type { KeyLastUsage, KeyRetirement } from '../domain/retire-predecessors';
import { callAws } from './aws-errors';
import { tagKeyWith } from './kms-key-gateway';

/**
 * KMS behind `retire`'s own calls, on retired predecessors only. Keys are named by key id (moto
 * fails on key ARNs for DisableKey, EnableKey and ScheduleKeyDeletion).
 */
export class KmsKeyRetirement implements KeyRetirement {
  constructor(private readonly kms: KMSClient) {}

  async getKeyLastUsage(keyId: string): Promise<KeyLastUsage> {
    const response = await callAws('GetKeyLastUsage', keyId, () =>
      this.kms.send(new GetKeyLastUsageCommand({ KeyId: keyId })),
    );
    return {
      lastUsedAt: response.KeyLastUsage?.Timestamp,
      operation: response.KeyLastUsage?.Operation,
      trackingStartDate: response.TrackingStartDate,
    };
  }

  async disableKey(keyId: string): Promise<void> {
    await callAws('DisableKey', keyId, () => this.kms.send(new DisableKeyCommand({ KeyId: keyId })));
  }

  async enableKey(keyId: string): Promise<void> {
    await callAws('EnableKey', keyId, () => this.kms.send(new EnableKeyCommand({ KeyId: keyId })));
  }

  async scheduleKeyDeletion(keyId: string, pendingWindowDays: number): Promise<Date | undefined> {
    const response = await callAws('ScheduleKeyDeletion', keyId, () =>
      this.kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: pendingWindowDays })),
    );
    return response.DeletionDate;
  }

  async cancelKeyDeletion(keyId: string): Promise<void> {
    await callAws('CancelKeyDeletion', keyId, () => this.kms.send(new CancelKeyDeletionCommand({ KeyId: keyId })));
  }

  async tagKey(keyId: string, tags: Readonly<Record<string, string>>): Promise<void> {
    await tagKeyWith(this.kms, keyId, tags);
  }
}
