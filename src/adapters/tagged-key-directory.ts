import { paginateGetResources, type ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { TAGS } from '../domain/declared-state';
import { keyIdOf } from '../domain/key-ref';
import type { ManagedKeyDirectory } from '../domain/ports';
import { callAws } from './aws-errors';

/** Managed keys from the Resource Groups Tagging API: one paginated listing instead of a tag read per key. */
export class TaggedKeyDirectory implements ManagedKeyDirectory {
  constructor(private readonly tagging: ResourceGroupsTaggingAPIClient) {}

  async managedKeys(): Promise<{ keyId: string; tags: Record<string, string> }[]> {
    return callAws('GetResources', `keys tagged ${TAGS.managed}=true`, async () => {
      const keys: { keyId: string; tags: Record<string, string> }[] = [];
      const pages = paginateGetResources(
        { client: this.tagging },
        { ResourceTypeFilters: ['kms:key'], TagFilters: [{ Key: TAGS.managed, Values: ['true'] }] },
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
