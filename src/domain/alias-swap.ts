import { type AliasScope, describeAliasScope, outsideAliasScope } from './alias-scope';
import { aliasTargetOf } from './alias-target';
import { type DeclaredState, readDeclaredState, TAGS } from './declared-state';
import { AwsServiceError, PreconditionFailedError, VerificationFailedError } from './errors';
import { keyIdOf } from './key-ref';
import { type KeyVerificationDeps, verifyKeyWorks } from './key-verification';
import {
  declaredTagsOf,
  isServiceTag,
  LINEAGE,
  type LineageState,
  lineageStateOf,
  SELF_TEST_TAG,
  tagValue,
} from './lineage';
import type { KeyDescription, Tags } from './model';
import type { Clock, IdGenerator, KeyAdmin, KeyReader, Log, NewKeySpec, TaggedKeyFinder } from './ports';
import { ahead, once, settleAll, settledValue } from './settled';
import { successorPolicy } from './successor-policy';

export type AliasSwapStep = 'createSuccessor' | 'verifySuccessor' | 'promoteAliases' | 'finish';
export type RollbackStep = 'verifyPredecessor' | 'restoreAliases' | 'finishRollback';

/** What one named step did. `planned` only in a dry run; `skipped` when its work was already done. */
export interface StepReport {
  step: AliasSwapStep | RollbackStep | 'rotateKeyOnDemand' | 'waitForRotation' | 'validate';
  status: 'done' | 'skipped' | 'planned' | 'failed';
  detail: string;
}

export interface AliasSwapDeps extends KeyVerificationDeps {
  keys: KeyReader;
  admin: KeyAdmin;
  finder: TaggedKeyFinder;
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

/** Where each declared alias points now (a key id), or `undefined` when the alias does not exist. */
export type AliasTargets = Readonly<Record<string, string | undefined>>;

/** Reads a new successor needs, started early so that they overlap the reads before them. */
interface SuccessorInputs {
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

const isAliasRef = (keyRef: string): boolean => keyRef.startsWith('alias/') || keyRef.includes(':alias/');

/** A key and its tags; at once when it is named by id or ARN (ListResourceTags takes no alias). */
const keyAndTags = async (keys: KeyReader, keyRef: string): Promise<[KeyDescription, Tags]> => {
  if (!isAliasRef(keyRef)) return Promise.all([keys.describeKey(keyRef), keys.listTags(keyIdOf(keyRef))]);
  const key = await keys.describeKey(keyRef);
  return [key, await keys.listTags(key.keyId)];
};

/** The key carries the declared state: `kms-rotation:managed=true`. */
const carriesDeclaredState = (tags: Tags | undefined): boolean => tags?.[TAGS.managed] === 'true';

/**
 * The declared-state tags of a rotation, wherever they are now: on the successor once `finish`
 * gave them to it, otherwise on the predecessor. A predecessor that `finish` already retired
 * (`managed=false`) while the successor's tags were lost still holds the aliases and period.
 */
const declaredTagsOfSwap = (predecessorTags: Tags, successorTags?: Tags): Record<string, string> => {
  if (successorTags && carriesDeclaredState(successorTags)) return declaredTagsOf(successorTags);
  return { ...declaredTagsOf(predecessorTags), [TAGS.managed]: 'true' };
};

const isSymmetricKmsKey = (key: KeyDescription): boolean =>
  (key.keySpec ?? 'SYMMETRIC_DEFAULT') === 'SYMMETRIC_DEFAULT' &&
  (key.keyUsage ?? 'ENCRYPT_DECRYPT') === 'ENCRYPT_DECRYPT' &&
  (key.origin ?? 'AWS_KMS') === 'AWS_KMS';

const readAliasTargets = async (keys: KeyReader, aliases: readonly string[]): Promise<AliasTargets> =>
  Object.fromEntries(
    await Promise.all(aliases.map(async (alias) => [alias, await aliasTargetOf(keys, alias)] as const)),
  );

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

export interface LocateOptions {
  /**
   * Whether to look for orphan successors (a tag search IAM allows on any key) alongside the key's own
   * reads: asked with the key once it is described, or with none when a key named by id is read
   * at once, before anything is known about it.
   */
  prepareSuccessor: (key?: KeyDescription) => boolean;
}

/**
 * Finds the rotation the key is part of, so that a re-run after a crash at any step resumes
 * it instead of starting a second one. The key may be the predecessor (what the aliases named
 * before the swap) or an unfinished successor (what they name after it).
 *
 * Round trips: a key named by id or ARN is described, and its tags (and, when a successor may
 * be needed, its orphans) read, all at once; an alias must be resolved first, because
 * ListResourceTags takes key ids only. The key policy is read by `createSuccessor`, once the
 * tags said the key is managed.
 */
export const locateSwap = async (keyRef: string, deps: AliasSwapDeps, options: LocateOptions): Promise<SwapState> => {
  const byId = !isAliasRef(keyRef);
  const successorInputsOf = (keyId: string, key?: KeyDescription): SuccessorInputs | undefined =>
    options.prepareSuccessor(key)
      ? {
          orphans: ahead(deps.finder.keysTagged(LINEAGE.predecessor, keyId)),
        }
      : undefined;
  const earlyTags = byId ? ahead(deps.keys.listTags(keyIdOf(keyRef))) : undefined;
  const earlyInputs = byId ? successorInputsOf(keyIdOf(keyRef)) : undefined;
  const key = await deps.keys.describeKey(keyRef);
  const [tags, successorInputs] =
    earlyTags && keyIdOf(keyRef) === key.keyId
      ? [await earlyTags, earlyInputs]
      : await Promise.all([deps.keys.listTags(key.keyId), successorInputsOf(key.keyId, key)]);

  const state = lineageStateOf(tags);
  const rotationId = tags[LINEAGE.rotationId];
  const predecessorId = tags[LINEAGE.predecessor];
  const successorId = tags[LINEAGE.successor];

  const ownDeclared = readDeclaredState(tags);
  // Where the aliases the key's own tags declare point: read at most once, by whichever branch needs it first.
  const ownAliasTargets = once(() => readAliasTargets(deps.keys, ownDeclared.aliases));

  // Named the successor: resume unless its rotation is over.
  if (rotationId && predecessorId && (state === 'created' || state === 'active')) {
    // An active successor's rotation may be over: where its aliases point decides, read alongside.
    if (state === 'active') void ownAliasTargets();
    const [[predecessor, predecessorTags], rotationEnabled] = await Promise.all([
      keyAndTags(deps.keys, predecessorId),
      state === 'active' ? rotationOf(deps.keys, key) : undefined,
    ]);
    if (predecessorTags[LINEAGE.rotationId] === rotationId) {
      const finished =
        state === 'active' && isFinished(predecessorTags, key, tags, await ownAliasTargets(), rotationEnabled);
      if (!finished) {
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
            ? ownAliasTargets
            : once(() => readAliasTargets(deps.keys, declared.aliases)),
          successorRotationEnabled: rotationEnabled,
        };
      }
    }
  }

  // Named the predecessor of a rotation under way (or retired by one).
  if (rotationId && (state === 'rotating' || state === 'retired')) {
    if (successorId) {
      // A retired predecessor keeps its aliases tag: the aliases are read alongside the successor.
      void ownAliasTargets();
      const [successor, successorTags] = await keyAndTags(deps.keys, successorId);
      // After a rollback the key still names the successor it was rolled back from: not this rotation's.
      if (successorTags[LINEAGE.rotationId] === rotationId && successorTags[LINEAGE.predecessor] === key.keyId) {
        const rotationEnabled =
          lineageStateOf(successorTags) === 'active' ? await rotationOf(deps.keys, successor) : undefined;
        if (isFinished(tags, successor, successorTags, await ownAliasTargets(), rotationEnabled)) {
          throw new PreconditionFailedError(
            'not-managed',
            `${key.keyId} was retired by alias-swap rotation ${rotationId}: its successor ${successor.keyId} carries its aliases and declared state; rotate ${successor.keyId} instead`,
          );
        }
        return {
          rotationId,
          predecessor: key,
          predecessorTags: tags,
          successor,
          successorTags,
          declared: readDeclaredState(declaredTagsOfSwap(tags, successorTags)),
          resumed: true,
          aliasTargets: ownAliasTargets,
          successorRotationEnabled: rotationEnabled,
        };
      }
    }
    if (state === 'rotating') {
      return {
        rotationId,
        predecessor: key,
        predecessorTags: tags,
        declared: ownDeclared,
        resumed: true,
        aliasTargets: ownAliasTargets,
        successorInputs,
      };
    }
  }

  return {
    rotationId: deps.ids.newId(),
    predecessor: key,
    predecessorTags: tags,
    declared: ownDeclared,
    resumed: false,
    aliasTargets: ownAliasTargets,
    successorInputs,
  };
};

const setLineage = (tags: Tags | undefined, changes: Record<string, string>): Tags => ({ ...(tags ?? {}), ...changes });

/** An earlier run's successor of this predecessor that never proved itself: adopted, never duplicated. */
const orphanOf = (found: { keyId: string; tags: Tags }[], predecessorId: string) =>
  found.find(({ keyId, tags }) => {
    const state = lineageStateOf(tags);
    return (
      keyId !== predecessorId &&
      tags[LINEAGE.predecessor] === predecessorId &&
      tags[LINEAGE.rotationId] !== undefined &&
      state === 'created'
    );
  });

/**
 * Step 1: a new key of the predecessor's kind, policy, description and tags, plus lineage. At
 * most one per rotation: the successor carries its rotation id and predecessor from CreateKey
 * on, so a successor whose run died before recording it on the predecessor is found (Resource
 * Groups Tagging API) and adopted.
 */
export const createSuccessor = async (swap: SwapState, deps: AliasSwapDeps, dryRun: boolean): Promise<StepReport> => {
  const { predecessor } = swap;
  requireAliasesInScope(swap.declared.aliases, deps.aliasScope);
  const selfTestRun = swap.predecessorTags[SELF_TEST_TAG];
  if (selfTestRun !== undefined && selfTestRun !== deps.selfTestRun) {
    throw new PreconditionFailedError(
      'not-managed',
      `${predecessor.keyId} is a throwaway key of self-test run ${selfTestRun}: only that run swaps it (the rotate role may not create keys with the self-test tag)`,
    );
  }
  if (swap.successor) {
    return {
      step: 'createSuccessor',
      status: 'skipped',
      detail: `successor ${swap.successor.keyId} of rotation ${swap.rotationId} exists`,
    };
  }
  const kind = `${predecessor.keySpec ?? 'SYMMETRIC_DEFAULT'} / ${predecessor.keyUsage ?? 'ENCRYPT_DECRYPT'}`;
  if (predecessor.origin === 'EXTERNAL_KEY_STORE') {
    throw new PreconditionFailedError(
      'wrong-key-type',
      `${predecessor.keyId} is in an external key store: its successor needs a new external key, which kms-rotation cannot create`,
    );
  }
  if (dryRun) {
    return {
      step: 'createSuccessor',
      status: 'planned',
      detail: `create a ${kind} key with ${predecessor.keyId}'s key policy, description and tags, tagged with rotation ${swap.rotationId}`,
    };
  }
  // The key policy only now, once the tags said the key is managed: IAM allows GetKeyPolicy on
  // managed keys only, and a call that is bound to be denied must not reach CloudTrail.
  const policyRead = ahead(deps.admin.getKeyPolicy(predecessor.keyId));
  const inputs = swap.successorInputs ?? {
    orphans: ahead(deps.finder.keysTagged(LINEAGE.predecessor, predecessor.keyId)),
  };
  const [found, policy] = await Promise.allSettled([inputs.orphans, policyRead]);
  if (found.status === 'rejected') throw found.reason;
  // Where the aliases point is read while the successor is created: promoteAliases needs it next.
  void swap.aliasTargets();

  const orphan = orphanOf(found.value, predecessor.keyId);
  let detail: string;
  if (orphan) {
    swap.rotationId = orphan.tags[LINEAGE.rotationId] as string;
    swap.successor = await deps.keys.describeKey(orphan.keyId);
    swap.successorTags = orphan.tags;
    detail = `adopted successor ${orphan.keyId}, created by an earlier run of rotation ${swap.rotationId}`;
  } else {
    const lineage = {
      [LINEAGE.rotationId]: swap.rotationId,
      [LINEAGE.predecessor]: predecessor.keyId,
      [LINEAGE.state]: 'created' satisfies LineageState,
      ...reasonTag(swap.reason),
      // A self-test key's successor is one too from CreateKey on: the selfTest role may create
      // keys only with that tag, and may touch no other key.
      ...(swap.predecessorTags[SELF_TEST_TAG] ? { [SELF_TEST_TAG]: swap.predecessorTags[SELF_TEST_TAG] } : {}),
    };
    const created = await createOnce(swap, deps, {
      keySpec: predecessor.keySpec ?? 'SYMMETRIC_DEFAULT',
      keyUsage: predecessor.keyUsage ?? 'ENCRYPT_DECRYPT',
      description: predecessor.description ?? '',
      policy: successorPolicy(predecessor.keyId, settledValue(policy), deps.rotateRoleArn),
      origin: predecessor.origin === 'AWS_CLOUDHSM' ? 'AWS_CLOUDHSM' : undefined,
      customKeyStoreId: predecessor.origin === 'AWS_CLOUDHSM' ? predecessor.customKeyStoreId : undefined,
      // Lineage only: the rotate role may create keys with these tags and no others (serverless.yml,
      // CreateSuccessorKeys); the predecessor's own tags follow in `verifySuccessor`.
      tags: lineage,
    });
    swap.successor = created.key;
    swap.successorTags = { ...lineage };
    detail = `created ${kind} key ${swap.successor.keyId}${created.answerLost ? ` (its CreateKey answer was lost: ${created.answerLost}; found by its rotation id)` : ''}`;
  }
  deps.log.info('createSuccessor', {
    rotationId: swap.rotationId,
    predecessor: predecessor.keyId,
    successor: swap.successor.keyId,
    detail,
  });
  return { step: 'createSuccessor', status: 'done', detail };
};

/**
 * CreateKey is not idempotent: an attempt whose answer is lost (a timeout, a reset connection,
 * a 5xx) may have created the key all the same, and a blind retry would make a second successor.
 * So it is sent once (the gateway gives it no SDK retry). After an error that leaves the outcome
 * open, the key is looked for by its rotation id and taken if it is there; if it is not, the run
 * fails, retryable, and the re-run looks again before it creates anything.
 */
const createOnce = async (
  swap: SwapState,
  deps: AliasSwapDeps,
  spec: NewKeySpec,
): Promise<{ key: KeyDescription; answerLost?: string }> => {
  try {
    return { key: await deps.admin.createKey(spec) };
  } catch (error) {
    if (!(error instanceof AwsServiceError && error.retryable)) throw error;
    const made = (await deps.finder.keysTagged(LINEAGE.predecessor, swap.predecessor.keyId)).find(
      ({ tags }) => tags[LINEAGE.rotationId] === swap.rotationId,
    );
    if (!made) {
      throw new AwsServiceError(
        'CreateKey',
        true,
        `${error.message}; no key of rotation ${swap.rotationId} exists: run the rotation again (it adopts a successor that appears meanwhile, never makes a second)`,
        { cause: error },
      );
    }
    deps.log.warn('createSuccessor: CreateKey answer lost, key found by its rotation id', {
      rotationId: swap.rotationId,
      successor: made.keyId,
      error: error.message,
    });
    return { key: await deps.keys.describeKey(made.keyId), answerLost: error.message };
  }
};

/** Declared aliases outside the stack's `aliasScope` would be denied by IAM: refused before any call. */
const requireAliasesInScope = (aliases: readonly string[], scope: AliasScope): void => {
  const outside = outsideAliasScope(aliases, scope);
  if (outside.length > 0) {
    throw new PreconditionFailedError(
      'alias-not-movable',
      `declared alias ${outside.join(', ')} is outside the aliases kms-rotation may move (aliasScope: ${describeAliasScope(scope)}); add it to the aliasScope parameter and deploy, or change the key's ${TAGS.aliases} tag`,
    );
  }
};

/**
 * KMS authorizes UpdateAlias on the key an alias points at now as well as on the new one
 * (KMS Developer Guide, "Controlling access to aliases":
 * https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html). The rotate role may
 * move an alias only away from the keys of this rotation; one that points anywhere else is
 * drift for an operator to settle, refused before any alias moves.
 */
const requireAliasesOn = (targets: AliasTargets, keys: readonly string[], action: string): void => {
  const elsewhere = Object.entries(targets).filter(([, target]) => target !== undefined && !keys.includes(target));
  if (elsewhere.length > 0) {
    throw new PreconditionFailedError(
      'alias-not-movable',
      `${elsewhere.map(([alias, target]) => `${alias} points at ${target}`).join('; ')}, a key outside this rotation: no alias was moved. Point it back at ${keys[0]} (or fix the key's ${TAGS.aliases} tag), then ${action} again`,
    );
  }
};

/** The predecessor's own (non-service) tags, which the successor takes over. */
const userTagsOf = (tags: Tags): Record<string, string> =>
  Object.fromEntries(Object.entries(tags).filter(([key]) => !isServiceTag(key)));

/** The successor takes the predecessor's own tags (once: a re-run finds them in place). */
const labelSuccessor = async (swap: SwapState, successor: KeyDescription, deps: AliasSwapDeps): Promise<void> => {
  const userTags = userTagsOf(swap.predecessorTags);
  const have = swap.successorTags ?? {};
  if (Object.entries(userTags).every(([key, value]) => have[key] === value)) return;
  await deps.admin.tagKey(successor.keyId, userTags);
  swap.successorTags = setLineage(swap.successorTags, userTags);
};

/** The predecessor names its rotation and successor, so that a re-run named by it resumes the rotation. */
const markPredecessor = async (swap: SwapState, successor: KeyDescription, deps: AliasSwapDeps): Promise<void> => {
  const marks = {
    [LINEAGE.rotationId]: swap.rotationId,
    [LINEAGE.state]: 'rotating',
    [LINEAGE.successor]: successor.keyId,
  };
  if (Object.entries(marks).every(([key, value]) => swap.predecessorTags[key] === value)) return;
  await deps.admin.tagKey(swap.predecessor.keyId, marks);
  swap.predecessorTags = setLineage(swap.predecessorTags, marks);
};

/**
 * Step 2: the successor must prove it works before any alias may point at it. Meanwhile the
 * predecessor is marked with the rotation and its successor.
 */
export const verifySuccessor = async (swap: SwapState, deps: AliasSwapDeps, dryRun: boolean): Promise<StepReport> => {
  const state = swap.successorTags ? lineageStateOf(swap.successorTags) : undefined;
  if (swap.successor && state === 'active') {
    swap.verified = true;
    return {
      step: 'verifySuccessor',
      status: 'skipped',
      detail: `successor ${swap.successor.keyId} is already ${state}`,
    };
  }
  if (dryRun || !swap.successor) {
    return { step: 'verifySuccessor', status: 'planned', detail: 'prove the successor works, by its key usage' };
  }
  const successor = swap.successor;
  if (successor.keyState !== 'Enabled') {
    throw new VerificationFailedError(
      `successor ${successor.keyId} is ${successor.keyState}, not Enabled; no alias was moved`,
    );
  }
  const [verdict, marked, labelled, targets] = await Promise.allSettled([
    verifyKeyWorks(successor, deps),
    markPredecessor(swap, successor, deps),
    labelSuccessor(swap, successor, deps),
    swap.aliasTargets(),
  ]);
  if (targets.status === 'rejected') throw targets.reason;
  requireAliasesOn(targets.value, [swap.predecessor.keyId, successor.keyId], 'rotate');
  if (verdict.status === 'rejected') throw verdict.reason;
  if (verdict.value.status !== 'passed') {
    throw new VerificationFailedError(
      `successor ${successor.keyId} failed verification: ${verdict.value.detail}; no alias was moved`,
    );
  }
  if (marked.status === 'rejected') throw marked.reason;
  if (labelled.status === 'rejected') throw labelled.reason;
  swap.verified = true;
  deps.log.info('verifySuccessor', {
    rotationId: swap.rotationId,
    successor: successor.keyId,
    detail: verdict.value.detail,
  });
  return { step: 'verifySuccessor', status: 'done', detail: verdict.value.detail };
};

/** Points each alias at `target` (creating the missing ones), all at once; `targets` says where they point now. */
const pointAliases = async (
  aliases: readonly string[],
  targets: AliasTargets,
  target: KeyDescription,
  deps: AliasSwapDeps,
  dryRun: boolean,
): Promise<{ moved: string[]; already: string[] }> => {
  const already = aliases.filter((alias) => targets[alias] === target.keyId);
  const toMove = aliases.filter((alias) => targets[alias] !== target.keyId);
  if (!dryRun) {
    await settleAll(
      toMove.map((alias) =>
        targets[alias] === undefined
          ? deps.admin.createAlias(alias, target.keyId)
          : deps.admin.updateAlias(alias, target.keyId),
      ),
    );
  }
  const moved = toMove.map((alias) =>
    targets[alias] === undefined ? `${alias} (created)` : `${alias} (from ${targets[alias]})`,
  );
  return { moved, already };
};

/** A swap's successor may take aliases and the declared state only once it proved itself. */
const requireVerified = (swap: SwapState, successor: KeyDescription): void => {
  if (!swap.verified) {
    throw new VerificationFailedError(`successor ${successor.keyId} is not verified; no alias was moved`);
  }
};

/** Step 3: every declared alias of the predecessor moves to the verified successor. Runs alongside `finish`. */
export const promoteAliases = async (swap: SwapState, deps: AliasSwapDeps, dryRun: boolean): Promise<StepReport> => {
  const aliases = swap.declared.aliases;
  if (aliases.length === 0)
    return { step: 'promoteAliases', status: 'skipped', detail: 'no aliases are declared on the key' };
  if (!swap.successor) {
    return { step: 'promoteAliases', status: 'planned', detail: `point ${aliases.join(', ')} at the successor` };
  }
  if (!dryRun) requireVerified(swap, swap.successor);
  const { moved, already } = await pointAliases(aliases, await swap.aliasTargets(), swap.successor, deps, dryRun);
  if (moved.length === 0) {
    return {
      step: 'promoteAliases',
      status: 'skipped',
      detail: `${already.join(', ')} already point at ${swap.successor.keyId}`,
    };
  }
  const detail = `${dryRun ? 'would point' : 'pointed'} ${moved.join(', ')} at ${swap.successor.keyId}`;
  if (!dryRun) deps.log.info('promoteAliases', { rotationId: swap.rotationId, detail });
  return { step: 'promoteAliases', status: dryRun ? 'planned' : 'done', detail };
};

/**
 * Step 4, alongside `promoteAliases`: the successor takes the declared state and turns active
 * (and, when symmetric, rotates itself with the declared period); the predecessor is tagged
 * retired with `managed=false`, keeping its aliases and period tags as the record of what it
 * served, and stays enabled. Each write is made only if it is not in place yet, all at once:
 * the rotation is over when every one of them and the alias moves are in place, which is what
 * a re-run checks (see `locateSwap`). The successor takes the declared state in one write and
 * the predecessor gives it up in one write, so a fault between them loses nothing: whichever
 * key still carries it, a re-run reads it there.
 */
export const finish = async (swap: SwapState, deps: AliasSwapDeps, dryRun: boolean): Promise<StepReport> => {
  const { predecessor, successor } = swap;
  if (dryRun || !successor) {
    return {
      step: 'finish',
      status: 'planned',
      detail: `move the declared state to the successor; tag ${predecessor.keyId} retired (managed=false), leaving it enabled`,
    };
  }
  requireVerified(swap, successor);
  const successorTags = swap.successorTags ?? {};
  const successorDone = lineageStateOf(successorTags) === 'active' && carriesDeclaredState(successorTags);
  const predecessorDone =
    lineageStateOf(swap.predecessorTags) === 'retired' &&
    !carriesDeclaredState(swap.predecessorTags) &&
    swap.predecessorTags[LINEAGE.successor] === successor.keyId;
  const rotationDone = !isSymmetricKmsKey(successor) || swap.successorRotationEnabled === true;
  if (successorDone && predecessorDone && rotationDone) {
    return { step: 'finish', status: 'skipped', detail: `rotation ${swap.rotationId} is already finished` };
  }

  const active = {
    ...declaredTagsOfSwap(swap.predecessorTags, swap.successorTags),
    [LINEAGE.state]: 'active',
    [LINEAGE.rotatedAt]: deps.clock.now().toISOString(),
  };
  const retired = {
    [LINEAGE.rotationId]: swap.rotationId,
    [LINEAGE.state]: 'retired',
    [LINEAGE.successor]: successor.keyId,
    [TAGS.managed]: 'false',
  };
  await settleAll([
    successorDone ? Promise.resolve() : deps.admin.tagKey(successor.keyId, active),
    // A symmetric successor rotates itself from now on, with the declared period.
    rotationDone ? Promise.resolve() : deps.admin.enableKeyRotation(successor.keyId, swap.declared.periodDays),
    predecessorDone ? Promise.resolve() : deps.admin.tagKey(predecessor.keyId, retired),
  ]);
  if (!successorDone) swap.successorTags = setLineage(swap.successorTags, active);
  if (!predecessorDone) swap.predecessorTags = setLineage(swap.predecessorTags, retired);
  const detail = `${successor.keyId} is active with the declared state; ${predecessor.keyId} is retired and stays enabled`;
  deps.log.info('finish', { rotationId: swap.rotationId, detail });
  return { step: 'finish', status: 'done', detail };
};

/**
 * The steps, in the order they run; steps in one group run at once. Moving the aliases and
 * finishing overlap: both only ever follow a passed verification.
 */
export const ALIAS_SWAP_STEPS = [[createSuccessor], [verifySuccessor], [promoteAliases, finish]] as const;

/** A rollback target: the key the aliases point at now, and the predecessor of its alias-swap. */
export interface RollbackState {
  current: KeyDescription;
  currentTags: Tags;
  predecessor: KeyDescription;
  predecessorTags: Tags;
  declared: DeclaredState;
}

/**
 * Once `restoreAliases` has run, the aliases name the predecessor. A rollback named by alias
 * after that (a re-run, or a resume after a crash) is the same rollback: found from the
 * predecessor's successor, not from the predecessor's own predecessor, a generation further back.
 */
const rolledBackFrom = async (key: KeyDescription, tags: Tags, keys: KeyReader): Promise<[KeyDescription, Tags]> => {
  const successorId = tags[LINEAGE.successor];
  const state = lineageStateOf(tags);
  if (!successorId || (state !== 'retired' && state !== 'active')) return [key, tags];
  const [successor, successorTags] = await keyAndTags(keys, successorId);
  const successorState = lineageStateOf(successorTags);
  const sameSwap =
    successorTags[LINEAGE.predecessor] === key.keyId &&
    (successorState === 'active' || successorState === 'rolled-back');
  return sameSwap ? [successor, successorTags] : [key, tags];
};

export const locateRollback = async (keyRef: string, deps: AliasSwapDeps): Promise<RollbackState> => {
  const [named, namedTags] = await keyAndTags(deps.keys, keyRef);
  const [current, currentTags] = await rolledBackFrom(named, namedTags, deps.keys);
  const predecessorId = currentTags[LINEAGE.predecessor];
  if (!predecessorId) {
    throw new PreconditionFailedError(
      'nothing-to-roll-back',
      `${current.keyId} was not created by an alias-swap rotation (no ${LINEAGE.predecessor} tag): nothing to roll back`,
    );
  }
  const [predecessor, predecessorTags] = await keyAndTags(deps.keys, predecessorId);
  return {
    current,
    currentTags,
    predecessor,
    predecessorTags,
    declared: readDeclaredState(declaredTagsOfSwap(predecessorTags, currentTags)),
  };
};

/** Rollback 1: the predecessor must still work before any alias goes back to it. */
export const verifyPredecessor = async (
  rollback: RollbackState,
  deps: AliasSwapDeps,
  dryRun: boolean,
): Promise<StepReport> => {
  const { predecessor } = rollback;
  if (predecessor.keyState !== 'Enabled') {
    throw new PreconditionFailedError(
      predecessor.keyState === 'PendingDeletion' ? 'key-pending-deletion' : 'key-disabled',
      `predecessor ${predecessor.keyId} is ${predecessor.keyState}: aliases cannot go back to it`,
    );
  }
  if (dryRun) return { step: 'verifyPredecessor', status: 'planned', detail: `prove ${predecessor.keyId} still works` };
  const verdict = await verifyKeyWorks(predecessor, deps);
  if (verdict.status !== 'passed') {
    throw new VerificationFailedError(
      `predecessor ${predecessor.keyId} failed verification: ${verdict.detail}; no alias was moved`,
    );
  }
  return { step: 'verifyPredecessor', status: 'done', detail: verdict.detail };
};

/** Rollback 2: every declared alias back to the predecessor. */
export const restoreAliases = async (
  rollback: RollbackState,
  deps: AliasSwapDeps,
  dryRun: boolean,
): Promise<StepReport> => {
  const aliases = rollback.declared.aliases;
  if (aliases.length === 0) return { step: 'restoreAliases', status: 'skipped', detail: 'no aliases are declared' };
  requireAliasesInScope(aliases, deps.aliasScope);
  const targets = await readAliasTargets(deps.keys, aliases);
  requireAliasesOn(targets, [rollback.current.keyId, rollback.predecessor.keyId], 'roll back');
  const { moved, already } = await pointAliases(aliases, targets, rollback.predecessor, deps, dryRun);
  if (moved.length === 0) {
    return {
      step: 'restoreAliases',
      status: 'skipped',
      detail: `${already.join(', ')} already point at ${rollback.predecessor.keyId}`,
    };
  }
  return {
    step: 'restoreAliases',
    status: dryRun ? 'planned' : 'done',
    detail: `${dryRun ? 'would point' : 'pointed'} ${moved.join(', ')} back at ${rollback.predecessor.keyId}`,
  };
};

/** Rollback 3: the declared state goes back to the predecessor; the rolled-back key stays enabled. */
export const finishRollback = async (
  rollback: RollbackState,
  deps: AliasSwapDeps,
  dryRun: boolean,
): Promise<StepReport> => {
  const { current, predecessor } = rollback;
  const done =
    lineageStateOf(rollback.currentTags) === 'rolled-back' &&
    lineageStateOf(rollback.predecessorTags) === 'active' &&
    !carriesDeclaredState(rollback.currentTags);
  if (done) return { step: 'finishRollback', status: 'skipped', detail: `${current.keyId} is already rolled back` };
  if (dryRun) {
    return {
      step: 'finishRollback',
      status: 'planned',
      detail: `declared state back to ${predecessor.keyId}; ${current.keyId} tagged rolled-back (managed=false), left enabled`,
    };
  }
  // The predecessor takes the declared state back before the rolled-back key gives it up.
  await deps.admin.tagKey(predecessor.keyId, {
    ...declaredTagsOfSwap(rollback.predecessorTags, rollback.currentTags),
    [LINEAGE.state]: 'active',
    [LINEAGE.rotatedAt]: deps.clock.now().toISOString(),
  });
  await deps.admin.tagKey(current.keyId, { [LINEAGE.state]: 'rolled-back', [TAGS.managed]: 'false' });
  return {
    step: 'finishRollback',
    status: 'done',
    detail: `${predecessor.keyId} is active again; ${current.keyId} is tagged rolled-back and stays enabled`,
  };
};

export const ROLLBACK_STEPS = [verifyPredecessor, restoreAliases, finishRollback] as const;

export const reasonTag = (reason: string | undefined): Record<string, string> =>
  reason ? { [LINEAGE.reason]: tagValue(reason.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, ' ')) } : {};
