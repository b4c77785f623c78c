/**
 * The aliases kms-rotation may create and move: the stack's `aliasScope` parameter, as alias
 * names (`alias/app/secure-key`) or folders ending in `*` (`alias/app/*`). The same patterns
 * are the `Resource` of every alias grant in resources/role-*.yml, so an alias outside them is
 * refused here, before any call that IAM would deny.
 */
export type AliasScope = readonly string[];

export const inAliasScope = (aliasName: string, scope: AliasScope): boolean =>
  scope.some((pattern) => (pattern.endsWith('*') ? aliasName.startsWith(pattern.slice(0, -1)) : aliasName === pattern));

/** The declared aliases that lie outside the scope, in their declared order. */
export const outsideAliasScope = (aliases: readonly string[], scope: AliasScope): string[] =>
  aliases.filter((alias) => !inAliasScope(alias, scope));

export const describeAliasScope = (scope: AliasScope): string => (scope.length > 0 ? scope.join(', ') : '(none)');
