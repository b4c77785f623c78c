import {
  aliasMovesReport,
  pointAliases,
  readAliasTargets,
  requireAliasesInScope,
  requireAliasesOn,
} from './alias-moves';
import { type AliasSwapDeps, carriesDeclaredState, declaredTagsOfSwap, keyAndTags } from './alias-swap-state';
import { type DeclaredState, readDeclaredState, TAGS } from './declared-state';
import { PreconditionFailedError, VerificationFailedError } from './errors';
import { verifyKeyWorks } from './key-verification';
import { LINEAGE, lineageStateOf } from './lineage';
import type { KeyDescription, Tags } from './model';
import type { KeyReader } from './ports';
import type { StepReport } from './step-report';

/**
 * Rollback of the last alias-swap: the declared aliases and state go back from the key they
 * are on now to the predecessor of its swap, which must still work. Like the swap's steps,
 * each rollback step reads the state `locateRollback` found, reports `skipped` for what is in
 * place, and plans in a dry run; the rolled-back key stays enabled.
 */

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

/**
 * Finds the rollback from the key named (an alias reads the key it points at): that key, or
 * the successor it was already rolled back from, and the predecessor of its swap.
 */
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

/**
 * Rollback 1: the predecessor must still work before any alias goes back to it. Proves it
 * again on every run (it writes nothing, so it is idempotent as it stands).
 */
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

/**
 * Rollback 2: every declared alias back to the predecessor. Re-reads where the aliases point,
 * each still on one of the two keys. Idempotent: an alias already on the predecessor is left;
 * when all are, the step is `skipped`.
 */
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
  const moves = await pointAliases(aliases, targets, rollback.predecessor, deps.admin, dryRun);
  return aliasMovesReport('restoreAliases', moves, rollback.predecessor, dryRun, 'back at');
};

/**
 * Rollback 3: the declared state goes back to the predecessor; the rolled-back key stays
 * enabled. Re-reads nothing: it compares the tags `locateRollback` read. Idempotent: `skipped`
 * once both keys are tagged so; otherwise both tag writes are made again (a tag write that is
 * in place already changes nothing).
 */
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
