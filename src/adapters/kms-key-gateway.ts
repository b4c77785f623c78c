import {
  CreateAliasCommand,
  CreateKeyCommand,
  type CustomerMasterKeySpec,
  DecryptCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  type EncryptionAlgorithmSpec,
  GenerateMacCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  GetPublicKeyCommand,
  type KeyMetadata,
  type KeyUsageType,
  type KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  type MacAlgorithmSpec,
  type OriginType,
  paginateListAliases,
  paginateListKeyRotations,
  RotateKeyOnDemandCommand,
  SignCommand,
  type SigningAlgorithmSpec,
  type Tag,
  TagResourceCommand,
  UpdateAliasCommand,
  VerifyCommand,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';
import type { FleetReader } from '../domain/audit-fleet';
import { PreconditionFailedError } from '../domain/errors';
import type { AliasEntry, KeyDescription, RotationRecord, RotationStatus, RotationType, Tags } from '../domain/model';
import type { EncryptionContext, KeyAdmin, KeyCrypto, KeyProver, KeyReader, NewKeySpec } from '../domain/ports';
import { callAws, translateAwsError } from './aws-errors';

export const toKeyDescription = (metadata: KeyMetadata | undefined, keyRef: string): KeyDescription => {
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
    ...(metadata.MultiRegionConfiguration?.MultiRegionKeyType === 'PRIMARY'
      ? {
          replicaKeys: (metadata.MultiRegionConfiguration.ReplicaKeys ?? []).flatMap((replica) =>
            replica.Region && replica.Arn ? [{ region: replica.Region, arn: replica.Arn }] : [],
          ),
        }
      : {}),
    currentKeyMaterialId: metadata.CurrentKeyMaterialId,
    expirationModel: metadata.ExpirationModel,
    validTo: metadata.ValidTo,
    creationDate: metadata.CreationDate,
    deletionDate: metadata.DeletionDate,
    description: metadata.Description,
    customKeyStoreId: metadata.CustomKeyStoreId,
    encryptionAlgorithms: metadata.EncryptionAlgorithms,
    signingAlgorithms: metadata.SigningAlgorithms,
    macAlgorithms: metadata.MacAlgorithms,
  };
};

/** TagResource on one key, by key id: every adapter that tags a key tags it this way. */
export const tagKeyWith = async (
  kms: KMSClient,
  keyId: string,
  tags: Readonly<Record<string, string>>,
): Promise<void> => {
  await callAws('TagResource', keyId, () =>
    kms.send(
      new TagResourceCommand({
        KeyId: keyId,
        Tags: Object.entries(tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })),
      }),
    ),
  );
};

/** The one CreateKey request of a `NewKeySpec` (an alias-swap successor, a self-test key). */
export const createKeyCommandOf = (spec: NewKeySpec): CreateKeyCommand =>
  new CreateKeyCommand({
    KeySpec: spec.keySpec as CustomerMasterKeySpec,
    KeyUsage: spec.keyUsage as KeyUsageType,
    Description: spec.description,
    Policy: spec.policy,
    Origin: spec.origin as OriginType | undefined,
    CustomKeyStoreId: spec.customKeyStoreId,
    Tags: Object.entries(spec.tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })),
  });

const toTags = (tags: Tag[] | undefined, into: Record<string, string>): void => {
  for (const tag of tags ?? []) if (tag.TagKey !== undefined) into[tag.TagKey] = tag.TagValue ?? '';
};

const errorName = (error: unknown): string | undefined => (error as { name?: string } | undefined)?.name;

/**
 * KMS behind the domain's ports. Clients are created by the caller, once, and reused;
 * `noRetryKms` (maxAttempts 1) serves the calls whose errors must not be retried by the SDK.
 */
export class KmsKeyGateway implements KeyReader, KeyCrypto, KeyAdmin, KeyProver, FleetReader {
  constructor(
    private readonly kms: KMSClient,
    private readonly noRetryKms: KMSClient = kms,
  ) {}

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

  async listRotations(keyId: string, options: { includeKeyMaterial?: boolean } = {}): Promise<RotationRecord[]> {
    return callAws('ListKeyRotations', keyId, async () => {
      const records: RotationRecord[] = [];
      const input = {
        KeyId: keyId,
        ...(options.includeKeyMaterial ? { IncludeKeyMaterial: 'ALL_KEY_MATERIAL' as const } : {}),
      };
      for await (const page of paginateListKeyRotations({ client: this.kms, pageSize: 1000 }, input)) {
        for (const entry of page.Rotations ?? []) {
          records.push({
            keyMaterialId: entry.KeyMaterialId,
            rotationDate: entry.RotationDate,
            rotationType: entry.RotationType as RotationType | undefined,
            keyMaterialState: entry.KeyMaterialState,
            importState: entry.ImportState,
            expirationModel: entry.ExpirationModel,
            validTo: entry.ValidTo,
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

  async rotateKeyOnDemand(keyId: string): Promise<void> {
    try {
      // The SDK classifies LimitExceededException as throttling and would retry it.
      await this.noRetryKms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    } catch (error) {
      if (errorName(error) === 'LimitExceededException') {
        throw new PreconditionFailedError(
          'on-demand-limit',
          `${keyId} has used all its on-demand rotations (KMS: LimitExceededException); rotate it with strategy "alias-swap"`,
          { cause: error },
        );
      }
      if (errorName(error) === 'ConflictException') {
        throw new PreconditionFailedError(
          'rotation-conflict',
          `${keyId} has an automatic rotation in progress or due within 20 minutes (KMS: ConflictException); try again later`,
          { cause: error },
        );
      }
      throw translateAwsError('RotateKeyOnDemand', keyId, error);
    }
  }

  async getKeyPolicy(keyId: string): Promise<string> {
    const response = await callAws('GetKeyPolicy', keyId, () =>
      this.kms.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default' })),
    );
    if (!response.Policy) throw new Error(`GetKeyPolicy on ${keyId} returned no policy`);
    return response.Policy;
  }

  async createKey(spec: NewKeySpec): Promise<KeyDescription> {
    // Sent once: CreateKey is not idempotent, and the caller looks for a key whose answer was lost.
    const response = await callAws('CreateKey', `a successor ${spec.keySpec} key`, () =>
      this.noRetryKms.send(createKeyCommandOf(spec)),
    );
    return toKeyDescription(response.KeyMetadata, 'CreateKey');
  }

  async tagKey(keyId: string, tags: Readonly<Record<string, string>>): Promise<void> {
    await tagKeyWith(this.kms, keyId, tags);
  }

  async updateAlias(aliasName: string, targetKeyId: string): Promise<void> {
    await callAws('UpdateAlias', aliasName, () =>
      this.kms.send(new UpdateAliasCommand({ AliasName: aliasName, TargetKeyId: targetKeyId })),
    );
  }

  async createAlias(aliasName: string, targetKeyId: string): Promise<void> {
    await callAws('CreateAlias', aliasName, () =>
      this.kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: targetKeyId })),
    );
  }

  async enableKeyRotation(keyId: string, periodDays?: number): Promise<void> {
    await callAws('EnableKeyRotation', keyId, () =>
      this.kms.send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: periodDays })),
    );
  }

  async sign(keyId: string, message: Uint8Array, algorithm: string): Promise<Uint8Array> {
    const response = await callAws('Sign', keyId, () =>
      this.kms.send(
        new SignCommand({
          KeyId: keyId,
          Message: message,
          MessageType: 'RAW',
          SigningAlgorithm: algorithm as SigningAlgorithmSpec,
        }),
      ),
    );
    if (!response.Signature) throw new Error(`Sign with ${keyId} returned no signature`);
    return response.Signature;
  }

  async verify(keyId: string, message: Uint8Array, signature: Uint8Array, algorithm: string): Promise<boolean> {
    try {
      const response = await this.kms.send(
        new VerifyCommand({
          KeyId: keyId,
          Message: message,
          MessageType: 'RAW',
          Signature: signature,
          SigningAlgorithm: algorithm as SigningAlgorithmSpec,
        }),
      );
      return response.SignatureValid === true;
    } catch (error) {
      if (errorName(error) === 'KMSInvalidSignatureException') return false;
      throw translateAwsError('Verify', keyId, error);
    }
  }

  async generateMac(keyId: string, message: Uint8Array, algorithm: string): Promise<Uint8Array> {
    const response = await callAws('GenerateMac', keyId, () =>
      this.kms.send(
        new GenerateMacCommand({ KeyId: keyId, Message: message, MacAlgorithm: algorithm as MacAlgorithmSpec }),
      ),
    );
    if (!response.Mac) throw new Error(`GenerateMac with ${keyId} returned no MAC`);
    return response.Mac;
  }

  async verifyMac(keyId: string, message: Uint8Array, mac: Uint8Array, algorithm: string): Promise<boolean> {
    try {
      const response = await this.kms.send(
        new VerifyMacCommand({ KeyId: keyId, Message: message, Mac: mac, MacAlgorithm: algorithm as MacAlgorithmSpec }),
      );
      return response.MacValid === true;
    } catch (error) {
      if (errorName(error) === 'KMSInvalidMacException') return false;
      throw translateAwsError('VerifyMac', keyId, error);
    }
  }

  async getPublicKey(keyId: string): Promise<Uint8Array> {
    const response = await callAws('GetPublicKey', keyId, () =>
      this.kms.send(new GetPublicKeyCommand({ KeyId: keyId })),
    );
    if (!response.PublicKey) throw new Error(`GetPublicKey of ${keyId} returned no key`);
    return response.PublicKey;
  }

  async decryptAsymmetric(keyId: string, ciphertext: Uint8Array, algorithm: string): Promise<Uint8Array> {
    const response = await callAws('Decrypt', keyId, () =>
      this.kms.send(
        new DecryptCommand({
          KeyId: keyId,
          CiphertextBlob: ciphertext,
          EncryptionAlgorithm: algorithm as EncryptionAlgorithmSpec,
        }),
      ),
    );
    if (!response.Plaintext) throw new Error(`Decrypt with ${keyId} returned no plaintext`);
    return response.Plaintext;
  }

  async listKeysPage(marker?: string): Promise<{ keyIds: string[]; nextMarker?: string }> {
    const page = await callAws('ListKeys', 'the account', () =>
      this.kms.send(new ListKeysCommand({ Limit: 1000, Marker: marker })),
    );
    return {
      keyIds: (page.Keys ?? []).flatMap((key) => (key.KeyId ? [key.KeyId] : [])),
      nextMarker: page.Truncated ? page.NextMarker : undefined,
    };
  }

  async listAllAliases(): Promise<AliasEntry[]> {
    return callAws('ListAliases', 'the account', async () => {
      const aliases: AliasEntry[] = [];
      let marker: string | undefined;
      do {
        const page = await this.kms.send(new ListAliasesCommand({ Limit: 100, Marker: marker }));
        for (const alias of page.Aliases ?? []) {
          if (alias.AliasName) aliases.push({ aliasName: alias.AliasName, targetKeyId: alias.TargetKeyId });
        }
        marker = page.Truncated ? page.NextMarker : undefined;
      } while (marker);
      return aliases;
    });
  }
}
