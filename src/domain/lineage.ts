import { TAG_PREFIX, TAGS } from './declared-state';
import type { Tags } from './model';

/** Tags that record an alias-swap rotation on both keys: the only state a rotation keeps. */
export const LINEAGE = {
  rotationId: `${TAG_PREFIX}rotation-id`,
  predecessor: `${TAG_PREFIX}predecessor`,
  successor: `${TAG_PREFIX}successor`,
  state: `${TAG_PREFIX}state`,
  rotatedAt: `${TAG_PREFIX}rotated-at`,
  reason: `${TAG_PREFIX}reason`,
} as const;

/**
 * Lifecycle of the keys in an alias-swap rotation.
 * Successor: created -> active (-> rolled-back); verification leaves no tag, it gates the alias move in the same run.
 * Predecessor: rotating -> retired (-> active on rollback).
 */
export type LineageState = 'created' | 'active' | 'rotating' | 'retired' | 'rolled-back';

export const lineageStateOf = (tags: Tags): LineageState | undefined => {
  const value = tags[LINEAGE.state];
  return value === 'created' ||
    value === 'active' ||
    value === 'rotating' ||
    value === 'retired' ||
    value === 'rolled-back'
    ? value
    : undefined;
};

/** The declared-state tags that move with the aliases from one key to the other. */
export const DECLARED_TAG_KEYS = [TAGS.managed, TAGS.aliases, TAGS.periodDays] as const;

/**
 * Marks a throwaway key of a `selfTest` run (value: the run id). Not a service tag: an alias-swap
 * successor carries it on like the key's other tags, so the successor of a throwaway key is a
 * throwaway key too, within reach of the selfTest role (which may touch nothing else) and of its cleanup.
 */
export const SELF_TEST_TAG = `${TAG_PREFIX}self-test`;

/** The tags of a key that are the service's own (declared state and lineage). */
export const isServiceTag = (tagKey: string): boolean => tagKey.startsWith(TAG_PREFIX) && tagKey !== SELF_TEST_TAG;

export const declaredTagsOf = (tags: Tags): Record<string, string> =>
  Object.fromEntries(DECLARED_TAG_KEYS.flatMap((key) => (tags[key] !== undefined ? [[key, tags[key]]] : [])));

/** Tag values are at most 256 characters. */
export const tagValue = (text: string): string => (text.length > 256 ? text.slice(0, 256) : text);
