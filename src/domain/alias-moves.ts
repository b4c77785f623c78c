import { type AliasScope, describeAliasScope, outsideAliasScope } from './alias-scope';
import { aliasTargetOf } from './alias-target';
import { TAGS } from './declared-state';
import { PreconditionFailedError } from './errors';
import type { KeyDescription } from './model';
import type { KeyAdmin, KeyReader } from './ports';
import { settleAll } from './settled';
import type { StepReport } from './step-report';

/**
 * How an alias-swap and its rollback move the declared aliases: read where they point, refuse
 * before any move what IAM or KMS would deny, then move the ones not yet in place, all at once.
 */

/** Where each declared alias points now (a key id), or `undefined` when the alias does not exist. */
export type AliasTargets = Readonly<Record<string, string | undefined>>;

export const readAliasTargets = async (keys: KeyReader, aliases: readonly string[]): Promise<AliasTargets> =>
  Object.fromEntries(
    await Promise.all(aliases.map(async (alias) => [alias, await aliasTargetOf(keys, alias)] as const)),
  );

/** Declared aliases outside the stack's `aliasScope` would be denied by IAM: refused before any call. */
export const requireAliasesInScope = (aliases: readonly string[], scope: AliasScope): void => {
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
 * (docs/kms-facts.md, "Aliases"). The rotate role may move an alias only away from the keys
 * of this rotation; one that points anywhere else is drift for an operator to settle, refused
 * before any alias moves.
 */
export const requireAliasesOn = (targets: AliasTargets, keys: readonly string[], action: string): void => {
  const elsewhere = Object.entries(targets).filter(([, target]) => target !== undefined && !keys.includes(target));
  if (elsewhere.length > 0) {
    throw new PreconditionFailedError(
      'alias-not-movable',
      `${elsewhere.map(([alias, target]) => `${alias} points at ${target}`).join('; ')}, a key outside this rotation: no alias was moved. Point it back at ${keys[0]} (or fix the key's ${TAGS.aliases} tag), then ${action} again`,
    );
  }
};

/** Points each alias at `target` (creating the missing ones), all at once; `targets` says where they point now. */
export const pointAliases = async (
  aliases: readonly string[],
  targets: AliasTargets,
  target: KeyDescription,
  admin: KeyAdmin,
  dryRun: boolean,
): Promise<{ moved: string[]; already: string[] }> => {
  const already = aliases.filter((alias) => targets[alias] === target.keyId);
  const toMove = aliases.filter((alias) => targets[alias] !== target.keyId);
  if (!dryRun) {
    await settleAll(
      toMove.map((alias) =>
        targets[alias] === undefined ? admin.createAlias(alias, target.keyId) : admin.updateAlias(alias, target.keyId),
      ),
    );
  }
  const moved = toMove.map((alias) =>
    targets[alias] === undefined ? `${alias} (created)` : `${alias} (from ${targets[alias]})`,
  );
  return { moved, already };
};

/** The report of a step that moved aliases with `pointAliases`: `skipped` when every one was in place already. */
export const aliasMovesReport = (
  step: 'promoteAliases' | 'restoreAliases',
  { moved, already }: { moved: string[]; already: string[] },
  target: KeyDescription,
  dryRun: boolean,
  towards: 'at' | 'back at',
): StepReport =>
  moved.length === 0
    ? { step, status: 'skipped', detail: `${already.join(', ')} already point at ${target.keyId}` }
    : {
        step,
        status: dryRun ? 'planned' : 'done',
        detail: `${dryRun ? 'would point' : 'pointed'} ${moved.join(', ')} ${towards} ${target.keyId}`,
      };
