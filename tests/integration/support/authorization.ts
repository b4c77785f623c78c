/**
 * What the authorization tests share (tests/integration/authorization*.int.test.ts): who signs with
 * which access key, adding one flow's evaluation to the total, and the least-privilege measure
 * (every granted action used by a recorded call, or explained).
 */
import type { Caller, Evaluation } from '../../../scripts/lib/authorization/evaluate';
import type { PolicyDocument, PolicyStatement, ResolvedStack } from '../../../scripts/lib/authorization/template';
import { accessKeyIdFor } from '../../../scripts/lib/invoke';
import type { DeployedStack, PackagedService } from '../../../scripts/lib/stack';

/** `kms:GenerateDataKey*` matches `kms:generatedatakey`: IAM's action globbing, case-insensitive. */
export const actionMatches = (pattern: string, action: string): boolean =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  ).test(action);

export const statementsOf = (policy: { Statement: PolicyStatement[] | PolicyStatement }): PolicyStatement[] =>
  Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement];

/** Access key id -> the function that signs with it and its role, in one resolution of the template. */
export const functionCallers = (
  pkg: PackagedService,
  stack: DeployedStack,
  resolved: ResolvedStack,
): Record<string, Caller> =>
  Object.fromEntries(
    Object.entries(pkg.functions).map(([functionName, packaged]) => {
      const fn = resolved.functions[packaged.logicalId];
      const role = fn ? resolved.roles[fn.roleLogicalId] : undefined;
      if (!fn || !role) throw new Error(`No role resolved for function ${functionName} (${packaged.logicalId})`);
      return [accessKeyIdFor(stack.functions[functionName]?.name ?? ''), { functionName, role }];
    }),
  );

/** Adds one evaluation to the running total. */
export const mergeEvaluation = (total: Evaluation, evaluation: Evaluation): void => {
  total.evaluated += evaluation.evaluated;
  total.denials.push(...evaluation.denials);
  total.notAuthorized.push(...evaluation.notAuthorized);
  for (const [grant, actions] of evaluation.grantsUsed) {
    const used = total.grantsUsed.get(grant) ?? new Set<string>();
    for (const action of actions) used.add(action);
    total.grantsUsed.set(grant, used);
  }
};

/**
 * Least privilege, measured: every action an Allow statement of `policies` grants is used by an
 * evaluated request, or explained. Grants are named `<policy name>#<Sid or index> <action>`.
 * `unused`: granted, used by nothing, not explained; `stale`: explained, granted by none of them.
 */
export const leastPrivilege = (
  policies: { name: string; policy: PolicyDocument }[],
  total: Evaluation,
  explained: Record<string, string>,
): { grants: Set<string>; unused: string[]; stale: string[] } => {
  const unused: string[] = [];
  const grants = new Set<string>();
  for (const { name, policy } of policies) {
    statementsOf(policy).forEach((statement, index) => {
      if (statement.Effect !== 'Allow') return;
      const actions = ([] as unknown[]).concat(statement.Action ?? []).map(String);
      const used = total.grantsUsed.get(`${name}#${index + 1}`) ?? new Set<string>();
      for (const action of actions) {
        const grant = `${name}#${String(statement.Sid ?? index + 1)} ${action}`;
        grants.add(grant);
        if ([...used].some((usedAction) => actionMatches(action, usedAction))) continue;
        if (explained[grant]) continue;
        unused.push(`- ${grant}: granted, used by no recorded call, not explained`);
      }
    });
  }
  const stale = Object.keys(explained).filter((grant) => !grants.has(grant));
  return { grants, unused, stale };
};
