import { type AliasTargets, readAliasTargets } from './alias-moves';
import type { AliasScope } from './alias-scope';
import { type DeclaredState, readDeclaredState, TAGS } from './declared-state';
import { PreconditionFailedError } from './errors';
import { keyIdOf } from './key-ref';
import type { KeyVerificationDeps } from './key-verification';
import { declaredTagsOf, LINEAGE, lineageStateOf } from './lineage';
import type { KeyDescription, Tags } from './model';
import type { Clock, IdGenerator, KeyAdmin, KeyReader, Log, TaggedKeyFinder } from './ports';
import { ahead, once } from './settled';

/**
 * Where an alias-swap rotation stands, and how it is found.
 *
 * Nothing is remembered between runs but the keys' tags (`LINEAGE`, `src/domain/lineage.ts`):
 * `locateSwap` reads the key the run was asked for and, from its lineage, the other key of its
 * rotation, so that a re-run after a crash at any step resumes that rotation instead of
 * starting a second one. The key named may be the predecessor (what the aliases named before
 * the swap) or an unfinished successor (what they name after it); a rotation whose every write
 * of `finish` is in place is over, and is not resumed.
 *
 * Round trips are saved where the answer is known to be needed, or cheap to discard:
 * - a key named by id or ARN is described and its tags read at once (`ahead`); an alias must
 *   be resolved first, because ListResourceTags takes key ids only (`keyAndTags`);
 * - where a new successor may be needed (`LocateOptions.prepareSuccessor`), the search for
 *   orphan successors starts alongside those reads (`SuccessorInputs`), for `createSuccessor`;
 * - where the declared aliases point is read at most once a run, by whichever needs it first
 *   (`once`): the check that a resumed rotation is finished, or `createSuccessor`, which starts
 *   it while the successor is created, for `verifySuccessor` and `promoteAliases`.
 * The key policy is read by `createSuccessor`, once the tags said the key is managed.
 */

export interface AliasSwapDeps extends KeyVerificationDeps {
  keys: KeyReader;
  admin: KeyAdmin;
  /** The tagged-key directory: keys by tag (the alias-swap lineage). */
  directory: TaggedKeyFinder;
  ids: IdGenerator;
  clock: Clock;
  log: Log;
  /** The rotate role's ARN: the successor's key policy names it, so the run may finish on the new key at once. */
  rotateRoleArn: string;
  /** The aliases kms-rotation may move (the stack's `aliasScope`). */
  aliasScope: AliasScope;
  /** Set by `selfTest` only: the run whose throwaway keys this rotation may swap. */
  selfTestRun?: string;
}

/** Reads a new successor needs, started early so that they overlap the reads before them. */
export interface SuccessorInputs {
  /** Successors an earlier run created but could not record on the predecessor. */
  orphans: Promise<{ keyId: string; tags: Tags }[]>;
}

/** Where an alias-swap rotation stands, read from the keys' tags; nothing else is remembered. */
export interface SwapState {
  rotationId: string;
  predecessor: KeyDescription;
  predecessorTags: Tags;
  successor?: KeyDescription;
  successorTags?: Tags;
  declared: DeclaredState;
  /** True when an earlier run started this rotation. */
  resumed: boolean;
  /** Why, as the operator said it; recorded on the successor. */
  reason?: string;
  /** Where the declared aliases point: read once, on first call (a new successor: while it is created). */
  aliasTargets: () => Promise<AliasTargets>;
  /** Whether the successor's automatic rotation was found on (resumed symmetric rotations only). */
  successorRotationEnabled?: boolean;
  /** Set once the successor passed verification in this run. */
  verified?: boolean;
  successorInputs?: SuccessorInputs;
}

export interface LocateOptions {
  /**
   * Whether to look for orphan successors (a tag search IAM allows on any key) alongside the key's own
   * reads: asked with the key once it is described, or with none when a key named by id is read
   * at once, before anything is known about it.
   */
  prepareSuccessor: (key?: KeyDescription) => boolean;
}

const isAliasRef = (keyRef: string): boolean => keyRef.startsWith('alias/') || keyRef.includes(':alias/');

/** A key and its tags; at once when it is named by id or ARN (ListResourceTags takes no alias). */
export const keyAndTags = async (keys: KeyReader, keyRef: string): Promise<[KeyDescription, Tags]> => {
  if (!isAliasRef(keyRef)) return Promise.all([keys.describeKey(keyRef), keys.listTags(keyIdOf(keyRef))]);
  const key = await keys.describeKey(keyRef);
  return [key, await keys.listTags(key.keyId)];
};

/** The key carries the declared state: `kms-rotation:managed=true`. */
export const carriesDeclaredState = (tags: Tags | undefined): boolean => tags?.[TAGS.managed] === 'true';

/**
 * The declared-state tags of a rotation, wherever they are now: on the successor once `finish`
 * gave them to it, otherwise on the predecessor. A predecessor that `finish` already retired
 * (`managed=false`) while the successor's tags were lost still holds the aliases and period.
 */
export const declaredTagsOfSwap = (predecessorTags: Tags, successorTags?: Tags): Record<string, string> => {
  if (successorTags && carriesDeclaredState(successorTags)) return declaredTagsOf(successorTags);
  return { ...declaredTagsOf(predecessorTags), [TAGS.managed]: 'true' };
};

export const isSymmetricKmsKey = (key: KeyDescription): boolean =>
  (key.keySpec ?? 'SYMMETRIC_DEFAULT') === 'SYMMETRIC_DEFAULT' &&
  (key.keyUsage ?? 'ENCRYPT_DECRYPT') === 'ENCRYPT_DECRYPT' &&
  (key.origin ?? 'AWS_KMS') === 'AWS_KMS';

/** Everything `finish` writes is in place: the rotation is over. */
const isFinished = (
  predecessorTags: Tags,
  successor: KeyDescription,
  successorTags: Tags,
  targets: AliasTargets,
  rotationEnabled: boolean | undefined,
): boolean =>
  lineageStateOf(successorTags) === 'active' &&
  carriesDeclaredState(successorTags) &&
  lineageStateOf(predecessorTags) === 'retired' &&
  !carriesDeclaredState(predecessorTags) &&
  Object.values(targets).every((target) => target === successor.keyId) &&
  rotationEnabled !== false;

/** The successor's rotation status, where `finish` turns it on. */
const rotationOf = async (keys: KeyReader, key: KeyDescription): Promise<boolean | undefined> =>
  isSymmetricKmsKey(key) ? (await keys.getRotationStatus(key.keyId)).enabled : undefined;

/** The key the run was asked for, as read, with what its own tags declare. */
interface NamedKey {
  key: KeyDescription;
  tags: Tags;
  successorInputs?: SuccessorInputs;
  declared: DeclaredState;
  /** Where the aliases the key's own tags declare point: read at most once, by whichever branch needs it first. */
  aliasTargets: () => Promise<AliasTargets>;
}

/** The named key, its tags and (when asked for) its orphans: at once when it is named by id or ARN. */
const readNamedKey = async (keyRef: string, deps: AliasSwapDeps, options: LocateOptions): Promise<NamedKey> => {
  const byId = !isAliasRef(keyRef);
  const successorInputsOf = (keyId: string, key?: KeyDescription): SuccessorInputs | undefined =>
    options.prepareSuccessor(key)
      ? {
          orphans: ahead(deps.directory.keysTagged(LINEAGE.predecessor, keyId)),
        }
      : undefined;
  const earlyTags = byId ? ahead(deps.keys.listTags(keyIdOf(keyRef))) : undefined;
  const earlyInputs = byId ? successorInputsOf(keyIdOf(keyRef)) : undefined;
  const key = await deps.keys.describeKey(keyRef);
  const [tags, successorInputs] =
    earlyTags && keyIdOf(keyRef) === key.keyId
      ? [await earlyTags, earlyInputs]
      : await Promise.all([deps.keys.listTags(key.keyId), successorInputsOf(key.keyId, key)]);
  const declared = readDeclaredState(tags);
  return {
    key,
    tags,
    successorInputs,
    declared,
    aliasTargets: once(() => readAliasTargets(deps.keys, declared.aliases)),
  };
};

/** Named an unfinished successor: its rotation, resumed. */
const resumeFromSuccessor = async (named: NamedKey, deps: AliasSwapDeps): Promise<SwapState | undefined> => {
  const { key, tags } = named;
  const state = lineageStateOf(tags);
  const rotationId = tags[LINEAGE.rotationId];
  const predecessorId = tags[LINEAGE.predecessor];
  if (!rotationId || !predecessorId || (state !== 'created' && state !== 'active')) return undefined;
  // An active successor's rotation may be over: where its aliases point decides, read alongside.
  if (state === 'active') void named.aliasTargets();
  const [[predecessor, predecessorTags], rotationEnabled] = await Promise.all([
    keyAndTags(deps.keys, predecessorId),
    state === 'active' ? rotationOf(deps.keys, key) : undefined,
  ]);
  if (predecessorTags[LINEAGE.rotationId] !== rotationId) return undefined;
  if (state === 'active' && isFinished(predecessorTags, key, tags, await named.aliasTargets(), rotationEnabled)) {
    return undefined;
  }
  const declared = readDeclaredState(declaredTagsOfSwap(predecessorTags, tags));
  return {
    rotationId,
    predecessor,
    predecessorTags,
    successor: key,
    successorTags: tags,
    declared,
    resumed: true,
    aliasTargets: carriesDeclaredState(tags)
      ? named.aliasTargets
      : once(() => readAliasTargets(deps.keys, declared.aliases)),
    successorRotationEnabled: rotationEnabled,
  };
};

/**
 * Named the predecessor of a rotation under way (or retired by one): that rotation, resumed
 * with its successor, or before it has one; a retired predecessor whose rotation is over is
 * refused, naming the successor to rotate instead.
 */
const resumeFromPredecessor = async (named: NamedKey, deps: AliasSwapDeps): Promise<SwapState | undefined> => {
  const { key, tags } = named;
  const state = lineageStateOf(tags);
  const rotationId = tags[LINEAGE.rotationId];
  const successorId = tags[LINEAGE.successor];
  if (!rotationId || (state !== 'rotating' && state !== 'retired')) return undefined;
  const resumed = {
    rotationId,
    predecessor: key,
    predecessorTags: tags,
    resumed: true,
    aliasTargets: named.aliasTargets,
  };
  if (successorId) {
    // A retired predecessor keeps its aliases tag: the aliases are read alongside the successor.
    void named.aliasTargets();
    const [successor, successorTags] = await keyAndTags(deps.keys, successorId);
    // After a rollback the key still names the successor it was rolled back from: not this rotation's.
    if (successorTags[LINEAGE.rotationId] === rotationId && successorTags[LINEAGE.predecessor] === key.keyId) {
      const rotationEnabled =
        lineageStateOf(successorTags) === 'active' ? await rotationOf(deps.keys, successor) : undefined;
      if (isFinished(tags, successor, successorTags, await named.aliasTargets(), rotationEnabled)) {
        throw new PreconditionFailedError(
          'not-managed',
          `${key.keyId} was retired by alias-swap rotation ${rotationId}: its successor ${successor.keyId} carries its aliases and declared state; rotate ${successor.keyId} instead`,
        );
      }
      return {
        ...resumed,
        successor,
        successorTags,
        declared: readDeclaredState(declaredTagsOfSwap(tags, successorTags)),
        successorRotationEnabled: rotationEnabled,
      };
    }
  }
  return state === 'rotating'
    ? { ...resumed, declared: named.declared, successorInputs: named.successorInputs }
    : undefined;
};

/**
 * Finds the rotation the key is part of (see the top of this file): resumed when the key names
 * one under way, from either of its keys; otherwise a new rotation, with a new id.
 */
export const locateSwap = async (keyRef: string, deps: AliasSwapDeps, options: LocateOptions): Promise<SwapState> => {
  const named = await readNamedKey(keyRef, deps, options);
  return (
    (await resumeFromSuccessor(named, deps)) ??
    (await resumeFromPredecessor(named, deps)) ?? {
      rotationId: deps.ids.newId(),
      predecessor: named.key,
      predecessorTags: named.tags,
      declared: named.declared,
      resumed: false,
      aliasTargets: named.aliasTargets,
      successorInputs: named.successorInputs,
    }
  );
};
