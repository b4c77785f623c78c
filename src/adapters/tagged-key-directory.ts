import { paginateGetResources, type ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { TAGS } from '../domain/declared-state';
import { keyIdOf } from '../domain/key-ref';
import type { ManagedKeyDirectory, TaggedKeyFinder } from '../domain/ports';
import { callAws } from './aws-errors';

/** Keys found by their tags through the Resource Groups Tagging API: one paginated listing instead of a tag read per key. */
export class TaggedKeyDirectory implements ManagedKeyDirectory, TaggedKeyFinder {
  constructor(private readonly tagging: ResourceGroupsTaggingAPIClient) {}

  managedKeys(): Promise<{ keyId: string; tags: Record<string, string> }[]> {
    return this.keysTagged(TAGS.managed, 'true');
  }

  async keysTagged(tagKey: string, tagValue: string): Promise<{ keyId: string; tags: Record<string, string> }[]> {
    return callAws('GetResources', `keys tagged ${tagKey}=${tagValue}`, async () => {
      const keys: { keyId: string; tags: Record<string, string> }[] = [];
      const pages = paginateGetResources(
        { client: this.tagging },
        { ResourceTypeFilters: ['kms:key'], TagFilters: [{ Key: tagKey, Values: [tagValue] }] },
      );
      for await (const page of pages) {
        for (const resource of page.ResourceTagMappingList ?? []) {
          if (!resource.ResourceARN) continue;
          keys.push({
            keyId: keyIdOf(resource.ResourceARN),
            tags: Object.fromEntries((resource.Tags ?? []).map((tag) => [tag.Key ?? '', tag.Value ?? ''])),
          });
        }
      }
      return keys;
    });
  }
}
