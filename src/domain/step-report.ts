/** The steps of an alias-swap rotation (`alias-swap.ts`), in the order they run. */
export type AliasSwapStep = 'createSuccessor' | 'verifySuccessor' | 'promoteAliases' | 'finish';
/** The steps of a rollback of the last alias-swap (`alias-swap-rollback.ts`). */
export type RollbackStep = 'verifyPredecessor' | 'restoreAliases' | 'finishRollback';
/** The steps of an on-demand rotation (`on-demand-rotation.ts`). */
export type OnDemandStep = 'rotateKeyOnDemand' | 'waitForRotation' | 'validate';

/** What one named step did. `planned` only in a dry run; `skipped` when its work was already done. */
export interface StepReport {
  step: AliasSwapStep | RollbackStep | OnDemandStep;
  status: 'done' | 'skipped' | 'planned' | 'failed';
  detail: string;
}
