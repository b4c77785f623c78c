import { aliasMovesReport, pointAliases, requireAliasesInScope, requireAliasesOn } from './alias-moves';
import {
  type AliasSwapDeps,
  carriesDeclaredState,
  declaredTagsOfSwap,
  isSymmetricKmsKey,
  type SwapState,
} from './alias-swap-state';
import { TAGS } from './declared-state';
import { AwsServiceError, PreconditionFailedError, VerificationFailedError } from './errors';
import { verifyKeyWorks } from './key-verification';
import { isServiceTag, LINEAGE, type LineageState, lineageStateOf, SELF_TEST_TAG, tagValue } from './lineage';
import type { KeyDescription, Tags } from './model';
import type { NewKeySpec } from './ports';
import { ahead, settleAll, settledValue } from './settled';
import type { StepReport } from './step-report';
import { successorPolicy } from './successor-policy';

/**
 * The steps of an alias-swap rotation, after the Secrets Manager rotation template's four:
 * each reads the state `locateSwap` found (`alias-swap-state.ts`), does its one part of the
 * rotation, and records what it wrote on the state for the steps after it. Each is idempotent:
 * a re-run after a crash at any point finds what the crashed run wrote in the keys' tags, and
 * the step reports `skipped` for what is in place and does only what is not. In a dry run each
 * plans, and changes nothing.
 */

const setLineage = (tags: Tags | undefined, changes: Record<string, string>): Tags => ({ ...(tags ?? {}), ...changes });

/** A self-test's throwaway key is swapped by the run that made it only: the rotate role may not create keys with its tag. */
const requireOwnSelfTestKey = (swap: SwapState, deps: AliasSwapDeps): void => {
  const selfTestRun = swap.predecessorTags[SELF_TEST_TAG];
  if (selfTestRun !== undefined && selfTestRun !== deps.selfTestRun) {
    throw new PreconditionFailedError(
      'not-managed',
      `${swap.predecessor.keyId} is a throwaway key of self-test run ${selfTestRun}: only that run swaps it (the rotate role may not create keys with the self-test tag)`,
    );
  }
};

/** A key in an external key store has its material outside AWS: kms-rotation cannot make its successor. */
const requireCreatable = (predecessor: KeyDescription): void => {
  if (predecessor.origin === 'EXTERNAL_KEY_STORE') {
    throw new PreconditionFailedError(
      'wrong-key-type',
      `${predecessor.keyId} is in an external key store: its successor needs a new external key, which kms-rotation cannot create`,
    );
  }
};

const kindOf = (key: KeyDescription): string =>
  `${key.keySpec ?? 'SYMMETRIC_DEFAULT'} / ${key.keyUsage ?? 'ENCRYPT_DECRYPT'}`;

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
 * The orphans (looked for by `locateSwap` already when it was asked to) and the predecessor's
 * key policy. The policy only now, once the tags said the key is managed: IAM allows
 * GetKeyPolicy on managed keys only, and a call that is bound to be denied must not reach
 * CloudTrail. A policy that could not be read fails the run only when a key is created with it.
 */
const readSuccessorInputs = async (
  swap: SwapState,
  deps: AliasSwapDeps,
): Promise<{ orphans: { keyId: string; tags: Tags }[]; policy: PromiseSettledResult<string> }> => {
  const policyRead = ahead(deps.admin.getKeyPolicy(swap.predecessor.keyId));
  const inputs = swap.successorInputs ?? {
    orphans: ahead(deps.directory.keysTagged(LINEAGE.predecessor, swap.predecessor.keyId)),
  };
  const [found, policy] = await Promise.allSettled([inputs.orphans, policyRead]);
  if (found.status === 'rejected') throw found.reason;
  return { orphans: found.value, policy };
};

/** The new key: the predecessor's kind, policy (naming the rotate role) and description, with lineage tags only. */
const successorSpec = (swap: SwapState, policy: PromiseSettledResult<string>, deps: AliasSwapDeps): NewKeySpec => {
  const { predecessor } = swap;
  return {
    keySpec: predecessor.keySpec ?? 'SYMMETRIC_DEFAULT',
    keyUsage: predecessor.keyUsage ?? 'ENCRYPT_DECRYPT',
    description: predecessor.description ?? '',
    policy: successorPolicy(predecessor.keyId, settledValue(policy), deps.rotateRoleArn),
    origin: predecessor.origin === 'AWS_CLOUDHSM' ? 'AWS_CLOUDHSM' : undefined,
    customKeyStoreId: predecessor.origin === 'AWS_CLOUDHSM' ? predecessor.customKeyStoreId : undefined,
    // Lineage only: the rotate role may create keys with these tags and no others (resources/role-rotate.yml,
    // CreateSuccessorKeysWithLineageOnly); the predecessor's own tags follow in `verifySuccessor`.
    tags: {
      [LINEAGE.rotationId]: swap.rotationId,
      [LINEAGE.predecessor]: predecessor.keyId,
      [LINEAGE.state]: 'created' satisfies LineageState,
      ...reasonTag(swap.reason),
      // A self-test key's successor is one too from CreateKey on: the selfTest role may create
      // keys only with that tag, and may touch no other key.
      ...(swap.predecessorTags[SELF_TEST_TAG] ? { [SELF_TEST_TAG]: swap.predecessorTags[SELF_TEST_TAG] } : {}),
    },
  };
};

/**
 * Step 1: a new key of the predecessor's kind, policy, description and tags, plus lineage.
 * Re-reads the successors tagged with this predecessor (Resource Groups Tagging API) and the
 * predecessor's key policy. Idempotent: at most one successor per rotation. A located successor
 * is `skipped`; the successor carries its rotation id and predecessor from CreateKey on, so one
 * whose run died before recording it on the predecessor is found and adopted, and one whose
 * CreateKey answer was lost is found by its rotation id (`createOnce`).
 */
export const createSuccessor = async (swap: SwapState, deps: AliasSwapDeps, dryRun: boolean): Promise<StepReport> => {
  const { predecessor } = swap;
  requireAliasesInScope(swap.declared.aliases, deps.aliasScope);
  requireOwnSelfTestKey(swap, deps);
  if (swap.successor) {
    return {
      step: 'createSuccessor',
      status: 'skipped',
      detail: `successor ${swap.successor.keyId} of rotation ${swap.rotationId} exists`,
    };
  }
  requireCreatable(predecessor);
  if (dryRun) {
    return {
      step: 'createSuccessor',
      status: 'planned',
      detail: `create a ${kindOf(predecessor)} key with ${predecessor.keyId}'s key policy, description and tags, tagged with rotation ${swap.rotationId}`,
    };
  }
  const { orphans, policy } = await readSuccessorInputs(swap, deps);
  // Where the aliases point is read while the successor is created: promoteAliases needs it next.
  void swap.aliasTargets();
  const orphan = orphanOf(orphans, predecessor.keyId);
  const { successor, detail } = orphan ? await adoptOrphan(swap, orphan, deps) : await createNew(swap, policy, deps);
  deps.log.info('createSuccessor', {
    rotationId: swap.rotationId,
    predecessor: predecessor.keyId,
    successor: successor.keyId,
    detail,
  });
  return { step: 'createSuccessor', status: 'done', detail };
};

/** What `createSuccessor` made the swap's successor, and how. */
type NewSuccessor = { successor: KeyDescription; detail: string };

/** An orphan successor becomes this rotation's: its rotation id is taken over. */
const adoptOrphan = async (
  swap: SwapState,
  orphan: { keyId: string; tags: Tags },
  deps: AliasSwapDeps,
): Promise<NewSuccessor> => {
  swap.rotationId = orphan.tags[LINEAGE.rotationId] as string;
  const successor = await deps.keys.describeKey(orphan.keyId);
  swap.successor = successor;
  swap.successorTags = orphan.tags;
  const detail = `adopted successor ${orphan.keyId}, created by an earlier run of rotation ${swap.rotationId}`;
  return { successor, detail };
};

/** A new key, created once (`createOnce`), with the lineage of this rotation. */
const createNew = async (
  swap: SwapState,
  policy: PromiseSettledResult<string>,
  deps: AliasSwapDeps,
): Promise<NewSuccessor> => {
  const spec = successorSpec(swap, policy, deps);
  const created = await createOnce(swap, deps, spec);
  swap.successor = created.key;
  swap.successorTags = { ...spec.tags };
  const detail = `created ${kindOf(swap.predecessor)} key ${created.key.keyId}${created.answerLost ? ` (its CreateKey answer was lost: ${created.answerLost}; found by its rotation id)` : ''}`;
  return { successor: created.key, detail };
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
    const made = (await deps.directory.keysTagged(LINEAGE.predecessor, swap.predecessor.keyId)).find(
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
 * Step 2: the successor must prove it works before any alias may point at it (`verifyKeyWorks`,
 * by its key usage). Meanwhile the predecessor is marked with the rotation and its successor,
 * the successor takes the predecessor's own tags, and where the aliases point is checked: each
 * still on one of this rotation's keys. Re-reads where the aliases point (the run's one read)
 * and proves the successor again on every run that has not finished it. Idempotent: a successor
 * already `active` is `skipped`; the tags are written only where they are not in place yet.
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
  const detail = await proveAndMark(swap, successor, deps);
  swap.verified = true;
  deps.log.info('verifySuccessor', { rotationId: swap.rotationId, successor: successor.keyId, detail });
  return { step: 'verifySuccessor', status: 'done', detail };
};

/**
 * The proof and the tag writes of `verifySuccessor`, at once; every one lands or fails before
 * the first failure is thrown: aliases off this rotation's keys first, then a failed proof.
 */
const proveAndMark = async (swap: SwapState, successor: KeyDescription, deps: AliasSwapDeps): Promise<string> => {
  const [verdict, marked, labelled, targets] = await Promise.allSettled([
    verifyKeyWorks(successor, deps),
    markPredecessor(swap, successor, deps),
    labelSuccessor(swap, successor, deps),
    swap.aliasTargets(),
  ]);
  requireAliasesOn(settledValue(targets), [swap.predecessor.keyId, successor.keyId], 'rotate');
  const { status, detail } = settledValue(verdict);
  if (status !== 'passed') {
    throw new VerificationFailedError(
      `successor ${successor.keyId} failed verification: ${detail}; no alias was moved`,
    );
  }
  settledValue(marked);
  settledValue(labelled);
  return detail;
};

/** A swap's successor may take aliases and the declared state only once it proved itself. */
const requireVerified = (swap: SwapState, successor: KeyDescription): void => {
  if (!swap.verified) {
    throw new VerificationFailedError(`successor ${successor.keyId} is not verified; no alias was moved`);
  }
};

/**
 * Step 3, alongside `finish`: every declared alias of the predecessor moves to the verified
 * successor, the missing ones created. Re-reads where the aliases point (the run's one read).
 * Idempotent: an alias already on the successor is left; when all are, the step is `skipped`.
 */
export const promoteAliases = async (swap: SwapState, deps: AliasSwapDeps, dryRun: boolean): Promise<StepReport> => {
  const aliases = swap.declared.aliases;
  if (aliases.length === 0)
    return { step: 'promoteAliases', status: 'skipped', detail: 'no aliases are declared on the key' };
  if (!swap.successor) {
    return { step: 'promoteAliases', status: 'planned', detail: `point ${aliases.join(', ')} at the successor` };
  }
  if (!dryRun) requireVerified(swap, swap.successor);
  const targets = await swap.aliasTargets();
  const moves = await pointAliases(aliases, targets, swap.successor, deps.admin, dryRun);
  const report = aliasMovesReport('promoteAliases', moves, swap.successor, dryRun, 'at');
  if (report.status === 'done') deps.log.info('promoteAliases', { rotationId: swap.rotationId, detail: report.detail });
  return report;
};

/** Which of `finish`'s writes are in place already, by the tags and rotation status `locateSwap` read. */
const finishedParts = (swap: SwapState, successor: KeyDescription) => {
  const successorTags = swap.successorTags ?? {};
  return {
    successorDone: lineageStateOf(successorTags) === 'active' && carriesDeclaredState(successorTags),
    predecessorDone:
      lineageStateOf(swap.predecessorTags) === 'retired' &&
      !carriesDeclaredState(swap.predecessorTags) &&
      swap.predecessorTags[LINEAGE.successor] === successor.keyId,
    rotationDone: !isSymmetricKmsKey(successor) || swap.successorRotationEnabled === true,
  };
};

/**
 * Step 4, alongside `promoteAliases`: the successor takes the declared state and turns active
 * (and, when symmetric, rotates itself with the declared period); the predecessor is tagged
 * retired with `managed=false`, keeping its aliases and period tags as the record of what it
 * served, and stays enabled. Re-reads nothing: it compares the tags and rotation status
 * `locateSwap` read with what it writes. Idempotent: each write is made only if it is not in
 * place yet, all at once, and the step is `skipped` when all are. The rotation is over when
 * every one of them and the alias moves are in place, which is what a re-run checks (see
 * `locateSwap`). The successor takes the declared state in one write and the predecessor gives
 * it up in one write, so a fault between them loses nothing: whichever key still carries it,
 * a re-run reads it there.
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
  const { successorDone, predecessorDone, rotationDone } = finishedParts(swap, successor);
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
  const detail = `${successor.keyId} is active with the declared state; ${predecessor.keyId} is retired and stays enabled`;
  deps.log.info('finish', { rotationId: swap.rotationId, detail });
  return { step: 'finish', status: 'done', detail };
};

/**
 * The steps, in the order they run; steps in one group run at once. Moving the aliases and
 * finishing overlap: both only ever follow a passed verification.
 */
export const ALIAS_SWAP_STEPS = [[createSuccessor], [verifySuccessor], [promoteAliases, finish]] as const;

export const reasonTag = (reason: string | undefined): Record<string, string> =>
  reason ? { [LINEAGE.reason]: tagValue(reason.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, ' ')) } : {};
