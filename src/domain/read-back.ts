import type { RollbackState } from './alias-swap-rollback';
import type { SwapState } from './alias-swap-state';
import { aliasTargetOf } from './alias-target';
import { TAGS } from './declared-state';
import { AwsServiceError } from './errors';
import { lineageStateOf } from './lineage';
import type { Clock, KeyReader, Sleeper } from './ports';

/**
 * KMS is eventually consistent: "changes that you make to AWS KMS resources might not be
 * immediately visible", typically for less than a few seconds, sometimes minutes
 * (https://docs.aws.amazon.com/kms/latest/developerguide/programming-eventual-consistency.html).
 * A run that reports its alias moves and tags done before they read back leaves the next run
 * (a re-run, the rollback that follows) reading the state from before them: a finished
 * alias-swap then reads as one not begun, and is begun again with a second successor. So a run
 * that wrote reads its end state back, polling, before it reports; if KMS does not show it
 * within the wait, the run fails, retryable, and says that its writes are made but not yet seen.
 */

export interface ReadBackDeps {
  keys: KeyReader;
  clock: Clock;
  sleeper: Sleeper;
  /** How long to wait for KMS to show what the run wrote. */
  rotationWaitMs: number;
}

/** What of an end state does not read back yet: aliases on `aliasesOn`, each key's lineage state and `managed` tag. */
const unseen = async (
  keys: KeyReader,
  aliases: readonly string[],
  aliasesOn: string,
  expected: { keyId: string; state: string; managed: boolean }[],
): Promise<string[]> => {
  const [targets, tags] = await Promise.all([
    Promise.all(aliases.map((alias) => aliasTargetOf(keys, alias))),
    Promise.all(expected.map(({ keyId }) => keys.listTags(keyId))),
  ]);
  return [
    ...aliases.flatMap((alias, index) =>
      targets[index] === aliasesOn ? [] : [`${alias} reads as pointing at ${targets[index] ?? 'nothing'}`],
    ),
    ...expected.flatMap(({ keyId, state, managed }, index) => {
      const read = tags[index] ?? {};
      return lineageStateOf(read) === state && (read[TAGS.managed] === 'true') === managed
        ? []
        : [`${keyId} reads as ${lineageStateOf(read) ?? 'untagged'} (managed=${read[TAGS.managed] ?? 'unset'})`];
    }),
  ];
};

/** Polls until nothing of the end state is unseen, or the wait is over: then a retryable AwsServiceError. */
const awaitReadBack = async (what: string, check: () => Promise<string[]>, deps: ReadBackDeps): Promise<void> => {
  const deadline = deps.clock.now().getTime() + deps.rotationWaitMs;
  let interval = 250;
  for (;;) {
    const left = await check();
    if (left.length === 0) return;
    if (deps.clock.now().getTime() + interval > deadline) {
      throw new AwsServiceError(
        'DescribeKey',
        true,
        `${what} is written, but KMS does not show it after ${Math.round(deps.rotationWaitMs / 1000)} s (eventual consistency): ${left.join('; ')}; retryable: run the same request again once it does`,
      );
    }
    await deps.sleeper.sleep(interval);
    interval = Math.min(interval * 2, 5_000);
  }
};

/** The end state of a finished alias-swap reads back: aliases on the successor, successor active, predecessor retired. */
export const awaitSwapReadBack = (swap: SwapState, deps: ReadBackDeps): Promise<void> => {
  const successor = swap.successor?.keyId as string;
  return awaitReadBack(
    `alias-swap rotation ${swap.rotationId}`,
    () =>
      unseen(deps.keys, swap.declared.aliases, successor, [
        { keyId: successor, state: 'active', managed: true },
        { keyId: swap.predecessor.keyId, state: 'retired', managed: false },
      ]),
    deps,
  );
};

/** The end state of a finished rollback reads back: aliases on the predecessor, active again; the other key rolled back. */
export const awaitRollbackReadBack = (rollback: RollbackState, deps: ReadBackDeps): Promise<void> =>
  awaitReadBack(
    `the rollback of ${rollback.current.keyId} to ${rollback.predecessor.keyId}`,
    () =>
      unseen(deps.keys, rollback.declared.aliases, rollback.predecessor.keyId, [
        { keyId: rollback.predecessor.keyId, state: 'active', managed: true },
        { keyId: rollback.current.keyId, state: 'rolled-back', managed: false },
      ]),
    deps,
  );
