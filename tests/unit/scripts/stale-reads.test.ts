import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  EncryptCommand,
  KMSClient,
  ListResourceTagsCommand,
  TagResourceCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { GetResourcesCommand, ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AwsProxy, startAwsProxy } from '../../../scripts/lib/aws-proxy';
import { type Emulator, startMoto } from '../../../scripts/lib/emulator';

const WINDOW_MS = 600;
const region = 'us-east-1';
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The proxy's stale-reads mode in front of a real moto server, driven by real SDK clients: a
 * read repeated within the window after a write answers as before the write; past the window,
 * or with no write since, it asks moto.
 */
// moto's tagging API alone can take seconds per search on a loaded machine.
describe('Function: startAwsProxy with staleReadsMs', { timeout: 30_000 }, () => {
  let emulator: Emulator;
  let proxy: AwsProxy;
  let kms: KMSClient;
  let tagging: ResourceGroupsTaggingAPIClient;

  beforeAll(async () => {
    emulator = await startMoto();
    proxy = await startAwsProxy({ target: emulator.endpoint, staleReadsMs: WINDOW_MS });
    kms = new KMSClient({ endpoint: proxy.endpoint, region, credentials, maxAttempts: 1 });
    tagging = new ResourceGroupsTaggingAPIClient({ endpoint: proxy.endpoint, region, credentials, maxAttempts: 1 });
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    await emulator?.stop();
  });

  beforeEach(() => proxy.reset());

  const newKey = async (tags: Record<string, string> = {}) =>
    (
      await kms.send(
        new CreateKeyCommand({ Tags: Object.entries(tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })) }),
      )
    ).KeyMetadata?.KeyId as string;
  const target = async (alias: string) => (await kms.send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata?.KeyId;
  const outcomes = (api: string) => proxy.calls().flatMap((call) => (call.api === api ? [call.outcome] : []));

  it('answers a read repeated within the window after a write with the answer from before it, then catches up', async () => {
    const [first, second] = [await newKey(), await newKey()];
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/stale/app', TargetKeyId: first }));
    expect(await target('alias/stale/app')).toBe(first);

    await kms.send(new UpdateAliasCommand({ AliasName: 'alias/stale/app', TargetKeyId: second }));
    // moto moved it at once; the proxy answers as KMS may, from before the move.
    expect(await target('alias/stale/app')).toBe(first);
    expect(await target('alias/stale/app')).toBe(first);
    await sleep(WINDOW_MS + 50);
    expect(await target('alias/stale/app')).toBe(second);

    expect(outcomes('DescribeKey')).toEqual(['forwarded', 'stale', 'stale', 'forwarded']);
    // A stale answer is an answer: the caller got HTTP 200.
    expect(
      proxy
        .calls()
        .filter((call) => call.outcome === 'stale')
        .map((call) => call.status),
    ).toEqual([200, 200]);
  });

  it('answers fresh a read with no write since, and a request never answered before', async () => {
    const keyId = await newKey({ team: 'a' });
    const tagsOf = async (ref: string) =>
      (await kms.send(new ListResourceTagsCommand({ KeyId: ref }))).Tags?.map((tag) => `${tag.TagKey}=${tag.TagValue}`);

    expect(await tagsOf(keyId)).toEqual(['team=a']);
    expect(await tagsOf(keyId)).toEqual(['team=a']);
    await kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'team', TagValue: 'b' }] }));
    expect(await tagsOf(keyId)).toEqual(['team=a']);
    // Named by ARN it is another request, never answered: moto answers it.
    const arn = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.Arn as string;
    expect(await tagsOf(arn)).toEqual(['team=b']);

    expect(outcomes('ListResourceTags')).toEqual(['forwarded', 'forwarded', 'stale', 'forwarded']);
  });

  it('remembers a "not found" answer: an alias just created may not resolve yet', async () => {
    const keyId = await newKey();
    await expect(target('alias/stale/new')).rejects.toMatchObject({ name: 'NotFoundException' });
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/stale/new', TargetKeyId: keyId }));

    await expect(target('alias/stale/new')).rejects.toMatchObject({ name: 'NotFoundException' });
    await sleep(WINDOW_MS + 50);
    expect(await target('alias/stale/new')).toBe(keyId);
    expect(outcomes('DescribeKey')).toEqual(['forwarded', 'stale', 'forwarded']);
  });

  it('makes tagging-API searches stale too, and never cryptographic calls', async () => {
    const search = async () =>
      (
        await tagging.send(
          new GetResourcesCommand({
            ResourceTypeFilters: ['kms:key'],
            TagFilters: [{ Key: 'stale-test', Values: ['found'] }],
          }),
        )
      ).ResourceTagMappingList ?? [];

    expect(await search()).toEqual([]);
    const keyId = await newKey({ 'stale-test': 'found' });
    expect(await search()).toEqual([]);
    await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: new TextEncoder().encode('a') }));
    await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: new TextEncoder().encode('a') }));
    await sleep(WINDOW_MS + 50);
    expect((await search()).map((item) => item.ResourceARN?.split('key/').pop())).toEqual([keyId]);

    expect(outcomes('GetResources')).toEqual(['forwarded', 'stale', 'forwarded']);
    expect(outcomes('Encrypt')).toEqual(['forwarded', 'forwarded']);
  });
});
