import { type DeclaredState, readDeclaredState } from './declared-state';
import { PreconditionFailedError, VerificationFailedError } from './errors';
import { type KeyVerificationDeps, verifyKeyWorks } from './key-verification';
import {
  DECLARED_TAG_KEYS,
  declaredTagsOf,
  isServiceTag,
  LINEAGE,
  type LineageState,
  lineageStateOf,
  tagValue,
} from './lineage';
import type { KeyDescription, Tags } from './model';
import type { Clock, IdGenerator, KeyAdmin, KeyReader, Log } from './ports';

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
  ids: IdGenerator;
  clock: Clock;
  log: Log;
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
}

const keyAndTags = async (keys: KeyReader, keyRef: string): Promise<[KeyDescription, Tags]> => {
  const key = await keys.describeKey(keyRef);
  return [key, await keys.listTags(key.keyId)];
};

/** The declared state lives on the predecessor until `finish` moves it; read it wherever it is now. */
const declaredOf = (predecessorTags: Tags, successorTags?: Tags): DeclaredState =>
  readDeclaredState(
    predecessorTags[DECLARED_TAG_KEYS[0]] !== undefined || !successorTags ? predecessorTags : successorTags,
  );

/**
 * Finds the rotation the key is part of, so that a re-run after a crash at any step resumes
 * it instead of starting a second one. The key may be the predecessor (what the alias named
 * before the swap) or an unfinished successor (what it names after `promoteAliases`).
 */
export const locateSwap = async (keyRef: string, deps: AliasSwapDeps): Promise<SwapState> => {
  const [key, tags] = await keyAndTags(deps.keys, keyRef);
  const state = lineageStateOf(tags);
  const rotationId = tags[LINEAGE.rotationId];
  const predecessorId = tags[LINEAGE.predecessor];

  if (rotationId && predecessorId && (state === 'created' || state === 'verified' || state === 'active')) {
    const [predecessor, predecessorTags] = await keyAndTags(deps.keys, predecessorId);
    const unfinished =
      state !== 'active' || lineageStateOf(predecessorTags) === 'rotating' || hasDeclaredTags(predecessorTags);
    if (unfinished && predecessorTags[LINEAGE.rotationId] === rotationId) {
      return {
        rotationId,
        predecessor,
        predecessorTags,
        successor: key,
        successorTags: tags,
        declared: declaredOf(predecessorTags, tags),
        resumed: true,
      };
    }
  }
  if (rotationId && state === 'rotating') {
    const successorId = tags[LINEAGE.successor];
    if (successorId) {
      const [successor, successorTags] = await keyAndTags(deps.keys, successorId);
      // After a rollback the key still names the successor it was rolled back from: not this rotation's.
      if (successorTags[LINEAGE.rotationId] === rotationId) {
        return {
          rotationId,
          predecessor: key,
          predecessorTags: tags,
          successor,
          successorTags,
          declared: declaredOf(tags, successorTags),
          resumed: true,
        };
      }
    }
    return { rotationId, predecessor: key, predecessorTags: tags, declared: declaredOf(tags), resumed: true };
  }
  return {
    rotationId: deps.ids.newId(),
    predecessor: key,
    predecessorTags: tags,
    declared: readDeclaredState(tags),
    resumed: false,
  };
};

const hasDeclaredTags = (tags: Tags): boolean => DECLARED_TAG_KEYS.some((key) => tags[key] !== undefined);

const aliasTarget = async (keys: KeyReader, aliasName: string): Promise<string | undefined> => {
  try {
    return (await keys.describeKey(aliasName)).keyId;
  } catch (error) {
    if (error instanceof PreconditionFailedError && error.reason === 'key-not-found') return undefined;
    throw error;
  }
};

const setLineage = (tags: Tags | undefined, changes: Record<string, string>): Tags => ({ ...(tags ?? {}), ...changes });

/** Step 1: a new key of the predecessor's kind, policy, description and tags, plus lineage. At most one per rotation. */
export const createSuccessor = async (swap: SwapState, deps: AliasSwapDeps, dryRun: boolean): Promise<StepReport> => {
  const { predecessor, rotationId } = swap;
  if (swap.successor) {
    return {
      step: 'createSuccessor',
      status: 'skipped',
      detail: `successor ${swap.successor.keyId} of rotation ${rotationId} exists`,
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
      detail: `create a ${kind} key with ${predecessor.keyId}'s key policy, description and tags, tagged with rotation ${rotationId}`,
    };
  }

  // Mark the predecessor first: a crash after CreateKey then leaves a successor we can find.
  const begun =
    lineageStateOf(swap.predecessorTags) === 'rotating' && swap.predecessorTags[LINEAGE.rotationId] === rotationId;
  const orphan = begun
    ? (await deps.admin.findKeysByTag(LINEAGE.rotationId, rotationId)).find((id) => id !== predecessor.keyId)
    : undefined;
  if (!begun) {
    const marks = { [LINEAGE.rotationId]: rotationId, [LINEAGE.state]: 'rotating' };
    await deps.admin.tagKey(predecessor.keyId, marks);
    swap.predecessorTags = setLineage(swap.predecessorTags, marks);
  }

  let detail: string;
  if (orphan) {
    swap.successor = await deps.keys.describeKey(orphan);
    swap.successorTags = await deps.keys.listTags(orphan);
    detail = `adopted successor ${orphan}, created by an earlier run of rotation ${rotationId}`;
  } else {
    const userTags = Object.fromEntries(Object.entries(swap.predecessorTags).filter(([key]) => !isServiceTag(key)));
    const lineage = {
      [LINEAGE.rotationId]: rotationId,
      [LINEAGE.predecessor]: predecessor.keyId,
      [LINEAGE.state]: 'created' satisfies LineageState,
      ...reasonTag(swap.reason),
    };
    swap.successor = await deps.admin.createKey({
      keySpec: predecessor.keySpec ?? 'SYMMETRIC_DEFAULT',
      keyUsage: predecessor.keyUsage ?? 'ENCRYPT_DECRYPT',
      description: predecessor.description ?? '',
      policy: await deps.admin.getKeyPolicy(predecessor.keyId),
      origin: predecessor.origin === 'AWS_CLOUDHSM' ? 'AWS_CLOUDHSM' : undefined,
      customKeyStoreId: predecessor.origin === 'AWS_CLOUDHSM' ? predecessor.customKeyStoreId : undefined,
      tags: { ...userTags, ...lineage },
    });
    swap.successorTags = { ...userTags, ...lineage };
    detail = `created ${kind} key ${swap.successor.keyId}`;
  }
  await deps.admin.tagKey(predecessor.keyId, { [LINEAGE.successor]: swap.successor.keyId });
  swap.predecessorTags = setLineage(swap.predecessorTags, { [LINEAGE.successor]: swap.successor.keyId });
  deps.log.info('createSuccessor', {
    rotationId,
    predecessor: predecessor.keyId,
    successor: swap.successor.keyId,
    detail,
  });
  return { step: 'createSuccessor', status: 'done', detail };
};

/** Step 2: the successor must prove it works before any alias may point at it. */
export const verifySuccessor = async (swap: SwapState, deps: AliasSwapDeps, dryRun: boolean): Promise<StepReport> => {
  const state = swap.successorTags ? lineageStateOf(swap.successorTags) : undefined;
  if (swap.successor && (state === 'verified' || state === 'active')) {
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
  const verdict = await verifyKeyWorks(successor, deps);
  if (verdict.status !== 'passed') {
    throw new VerificationFailedError(
      `successor ${successor.keyId} failed verification: ${verdict.detail}; no alias was moved`,
    );
  }
  await deps.admin.tagKey(successor.keyId, { [LINEAGE.state]: 'verified' });
  swap.successorTags = setLineage(swap.successorTags, { [LINEAGE.state]: 'verified' });
  deps.log.info('verifySuccessor', { rotationId: swap.rotationId, successor: successor.keyId, detail: verdict.detail });
  return { step: 'verifySuccessor', status: 'done', detail: verdict.detail };
};

/** Points each declared alias at `target`; creates a declared alias that is missing. */
const pointAliases = async (
  aliases: readonly string[],
  target: KeyDescription,
  deps: AliasSwapDeps,
  dryRun: boolean,
): Promise<{ moved: string[]; already: string[] }> => {
  const targets = await Promise.all(aliases.map((alias) => aliasTarget(deps.keys, alias)));
  const moved: string[] = [];
  const already: string[] = [];
  for (const [index, alias] of aliases.entries()) {
    const current = targets[index];
    if (current === target.keyId) {
      already.push(alias);
      continue;
    }
    if (!dryRun) {
      if (current === undefined) await deps.admin.createAlias(alias, target.keyId);
      else await deps.admin.updateAlias(alias, target.keyId);
    }
    moved.push(current === undefined ? `${alias} (created)` : `${alias} (from ${current})`);
  }
  return { moved, already };
};

/** Step 3: every declared alias of the predecessor moves to the verified successor. */
export const promoteAliases = async (swap: SwapState, deps: AliasSwapDeps, dryRun: boolean): Promise<StepReport> => {
  const aliases = swap.declared.aliases;
  if (aliases.length === 0)
    return { step: 'promoteAliases', status: 'skipped', detail: 'no aliases are declared on the key' };
  if (!swap.successor) {
    return { step: 'promoteAliases', status: 'planned', detail: `point ${aliases.join(', ')} at the successor` };
  }
  const state = swap.successorTags ? lineageStateOf(swap.successorTags) : undefined;
  if (!dryRun && state !== 'verified' && state !== 'active') {
    throw new VerificationFailedError(`successor ${swap.successor.keyId} is not verified; no alias was moved`);
  }
  const { moved, already } = await pointAliases(aliases, swap.successor, deps, dryRun);
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

/** Step 4: the declared state moves to the successor; the predecessor is tagged retired and stays enabled. */
export const finish = async (swap: SwapState, deps: AliasSwapDeps, dryRun: boolean): Promise<StepReport> => {
  const { predecessor, successor } = swap;
  const done =
    successor !== undefined &&
    swap.successorTags !== undefined &&
    lineageStateOf(swap.successorTags) === 'active' &&
    lineageStateOf(swap.predecessorTags) === 'retired' &&
    !hasDeclaredTags(swap.predecessorTags);
  if (done) return { step: 'finish', status: 'skipped', detail: `rotation ${swap.rotationId} is already finished` };
  if (dryRun || !successor) {
    return {
      step: 'finish',
      status: 'planned',
      detail: `move the declared-state tags to the successor; tag ${predecessor.keyId} retired, leaving it enabled`,
    };
  }
  const declaredTags = hasDeclaredTags(swap.predecessorTags)
    ? declaredTagsOf(swap.predecessorTags)
    : declaredTagsOf(swap.successorTags ?? {});
  const successorTags = {
    ...declaredTags,
    [LINEAGE.state]: 'active',
    [LINEAGE.rotatedAt]: deps.clock.now().toISOString(),
  };
  await deps.admin.tagKey(successor.keyId, successorTags);
  swap.successorTags = setLineage(swap.successorTags, successorTags);
  if (
    successor.keySpec === 'SYMMETRIC_DEFAULT' &&
    successor.keyUsage === 'ENCRYPT_DECRYPT' &&
    successor.origin === 'AWS_KMS'
  ) {
    // A symmetric successor rotates itself from now on, with the declared period.
    await deps.admin.enableKeyRotation(successor.keyId, swap.declared.periodDays);
  }
  // The declared state leaves the predecessor before it is tagged retired: a retired key that
  // still looked managed would, named in a re-run after a crash here, start a second rotation.
  await deps.admin.untagKey(
    predecessor.keyId,
    DECLARED_TAG_KEYS.filter((key) => swap.predecessorTags[key] !== undefined),
  );
  const retired = { [LINEAGE.state]: 'retired', [LINEAGE.successor]: successor.keyId };
  await deps.admin.tagKey(predecessor.keyId, retired);
  swap.predecessorTags = Object.fromEntries(
    Object.entries(setLineage(swap.predecessorTags, retired)).filter(
      ([key]) => !(DECLARED_TAG_KEYS as readonly string[]).includes(key),
    ),
  );
  const detail = `${successor.keyId} is active with the declared state; ${predecessor.keyId} is retired and stays enabled`;
  deps.log.info('finish', { rotationId: swap.rotationId, detail });
  return { step: 'finish', status: 'done', detail };
};

export const ALIAS_SWAP_STEPS = [createSuccessor, verifySuccessor, promoteAliases, finish] as const;

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
    declared: readDeclaredState(hasDeclaredTags(currentTags) ? currentTags : predecessorTags),
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
  const { moved, already } = await pointAliases(aliases, rollback.predecessor, deps, dryRun);
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
    !hasDeclaredTags(rollback.currentTags);
  if (done) return { step: 'finishRollback', status: 'skipped', detail: `${current.keyId} is already rolled back` };
  if (dryRun) {
    return {
      step: 'finishRollback',
      status: 'planned',
      detail: `declared state back to ${predecessor.keyId}; ${current.keyId} tagged rolled-back, left enabled`,
    };
  }
  const declaredTags = hasDeclaredTags(rollback.currentTags)
    ? declaredTagsOf(rollback.currentTags)
    : declaredTagsOf(rollback.predecessorTags);
  await deps.admin.tagKey(predecessor.keyId, {
    ...declaredTags,
    [LINEAGE.state]: 'active',
    [LINEAGE.rotatedAt]: deps.clock.now().toISOString(),
  });
  await deps.admin.tagKey(current.keyId, { [LINEAGE.state]: 'rolled-back' });
  await deps.admin.untagKey(
    current.keyId,
    DECLARED_TAG_KEYS.filter((key) => rollback.currentTags[key] !== undefined),
  );
  return {
    step: 'finishRollback',
    status: 'done',
    detail: `${predecessor.keyId} is active again; ${current.keyId} is tagged rolled-back and stays enabled`,
  };
};

export const ROLLBACK_STEPS = [verifyPredecessor, restoreAliases, finishRollback] as const;

export const reasonTag = (reason: string | undefined): Record<string, string> =>
  reason ? { [LINEAGE.reason]: tagValue(reason.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, ' ')) } : {};
