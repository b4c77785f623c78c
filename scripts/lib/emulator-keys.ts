import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  type KeySpec,
  type KeyUsageType,
  type KMSClient,
  ListResourceTagsCommand,
} from '@aws-sdk/client-kms';

/** Keys made and read from outside the service, as an operator would with the CLI. */
export const emulatorKeys = (kms: KMSClient) => ({
  /** A key tagged managed and declaring `alias`, with the alias pointing at it; `tags` added. */
  createManagedKey: async (
    keySpec: KeySpec,
    keyUsage: KeyUsageType,
    alias: string,
    tags: Record<string, string> = {},
  ): Promise<string> => {
    const { KeyMetadata } = await kms.send(
      new CreateKeyCommand({
        KeySpec: keySpec,
        KeyUsage: keyUsage,
        Description: `${keySpec} key for ${alias}`,
        Tags: Object.entries({ 'kms-rotation:managed': 'true', 'kms-rotation:aliases': alias, ...tags }).map(
          ([TagKey, TagValue]) => ({ TagKey, TagValue }),
        ),
      }),
    );
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: KeyMetadata?.KeyId }));
    return KeyMetadata?.KeyId as string;
  },
  tagsOf: async (keyId: string): Promise<Record<string, string>> => {
    const { Tags = [] } = await kms.send(new ListResourceTagsCommand({ KeyId: keyId }));
    return Object.fromEntries(Tags.map((tag) => [tag.TagKey, tag.TagValue]));
  },
  /** The key an alias points at. */
  targetOf: async (alias: string): Promise<string | undefined> =>
    (await kms.send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata?.KeyId,
});
