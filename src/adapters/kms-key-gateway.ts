import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GetKeyRotationStatusCommand,
  type KeyMetadata,
  type KMSClient,
  ListResourceTagsCommand,
  paginateListAliases,
  paginateListKeyRotations,
  type Tag,
} from '@aws-sdk/client-kms';
import type { AliasEntry, KeyDescription, RotationRecord, RotationStatus, RotationType, Tags } from '../domain/model';
import type { EncryptionContext, KeyCrypto, KeyReader } from '../domain/ports';
import { callAws } from './aws-errors';

const toKeyDescription = (metadata: KeyMetadata | undefined, keyRef: string): KeyDescription => {
  if (!metadata?.KeyId || !metadata.Arn) {
    throw new Error(`DescribeKey on ${keyRef} returned no key metadata`);
  }
  return {
    keyId: metadata.KeyId,
    arn: metadata.Arn,
    keyState: metadata.KeyState ?? (metadata.Enabled ? 'Enabled' : 'Disabled'),
    keySpec: metadata.KeySpec ?? metadata.CustomerMasterKeySpec,
    keyUsage: metadata.KeyUsage,
    origin: metadata.Origin,
    keyManager: metadata.KeyManager,
    multiRegion: metadata.MultiRegion,
    multiRegionKeyType: metadata.MultiRegionConfiguration?.MultiRegionKeyType,
    currentKeyMaterialId: metadata.CurrentKeyMaterialId,
    creationDate: metadata.CreationDate,
    deletionDate: metadata.DeletionDate,
    description: metadata.Description,
  };
};

const toTags = (tags: Tag[] | undefined, into: Record<string, string>): void => {
  for (const tag of tags ?? []) if (tag.TagKey !== undefined) into[tag.TagKey] = tag.TagValue ?? '';
};

/** KMS behind the domain's ports. One client, created by the caller and reused. */
export class KmsKeyGateway implements KeyReader, KeyCrypto {
  constructor(private readonly kms: KMSClient) {}

  async describeKey(keyRef: string): Promise<KeyDescription> {
    const response = await callAws('DescribeKey', keyRef, () =>
      this.kms.send(new DescribeKeyCommand({ KeyId: keyRef })),
    );
    return toKeyDescription(response.KeyMetadata, keyRef);
  }

  async getRotationStatus(keyId: string): Promise<RotationStatus> {
    const response = await callAws('GetKeyRotationStatus', keyId, () =>
      this.kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId })),
    );
    return {
      enabled: response.KeyRotationEnabled ?? false,
      periodDays: response.RotationPeriodInDays,
      nextRotationDate: response.NextRotationDate,
      onDemandRotationStartDate: response.OnDemandRotationStartDate,
    };
  }

  async listRotations(keyId: string): Promise<RotationRecord[]> {
    return callAws('ListKeyRotations', keyId, async () => {
      const records: RotationRecord[] = [];
      for await (const page of paginateListKeyRotations({ client: this.kms, pageSize: 1000 }, { KeyId: keyId })) {
        for (const entry of page.Rotations ?? []) {
          records.push({
            keyMaterialId: entry.KeyMaterialId,
            rotationDate: entry.RotationDate,
            rotationType: entry.RotationType as RotationType | undefined,
            keyMaterialState: entry.KeyMaterialState,
          });
        }
      }
      return records;
    });
  }

  async listAliasesOf(keyId: string): Promise<AliasEntry[]> {
    return callAws('ListAliases', keyId, async () => {
      const aliases: AliasEntry[] = [];
      for await (const page of paginateListAliases({ client: this.kms, pageSize: 100 }, { KeyId: keyId })) {
        for (const alias of page.Aliases ?? []) {
          if (alias.AliasName) aliases.push({ aliasName: alias.AliasName, targetKeyId: alias.TargetKeyId });
        }
      }
      return aliases;
    });
  }

  async listTags(keyId: string): Promise<Tags> {
    return callAws('ListResourceTags', keyId, async () => {
      const tags: Record<string, string> = {};
      let marker: string | undefined;
      do {
        const page = await this.kms.send(new ListResourceTagsCommand({ KeyId: keyId, Marker: marker, Limit: 50 }));
        toTags(page.Tags, tags);
        marker = page.Truncated ? page.NextMarker : undefined;
      } while (marker);
      return tags;
    });
  }

  async encrypt(
    keyRef: string,
    plaintext: Uint8Array,
    context: EncryptionContext,
  ): Promise<{ ciphertext: Uint8Array; keyArn: string }> {
    const response = await callAws('Encrypt', keyRef, () =>
      this.kms.send(new EncryptCommand({ KeyId: keyRef, Plaintext: plaintext, EncryptionContext: { ...context } })),
    );
    if (!response.CiphertextBlob || !response.KeyId)
      throw new Error(`Encrypt through ${keyRef} returned no ciphertext`);
    return { ciphertext: response.CiphertextBlob, keyArn: response.KeyId };
  }

  async decrypt(
    keyId: string,
    ciphertext: Uint8Array,
    context: EncryptionContext,
  ): Promise<{ plaintext: Uint8Array; keyArn: string }> {
    const response = await callAws('Decrypt', keyId, () =>
      this.kms.send(
        new DecryptCommand({ KeyId: keyId, CiphertextBlob: ciphertext, EncryptionContext: { ...context } }),
      ),
    );
    if (!response.Plaintext || !response.KeyId) throw new Error(`Decrypt with ${keyId} returned no plaintext`);
    return { plaintext: response.Plaintext, keyArn: response.KeyId };
  }
}
