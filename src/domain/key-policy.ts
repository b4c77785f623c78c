/** Reading a key policy for the two things drift watch and audit judge; never logged whole. */

interface Statement {
  Sid?: string;
  Effect?: string;
  Principal?: unknown;
  Action?: unknown;
  Condition?: unknown;
}

const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]);

export const parsePolicy = (text: string): Statement[] | undefined => {
  try {
    const document = JSON.parse(text) as { Statement?: unknown };
    return asList(document.Statement).filter(
      (statement): statement is Statement => typeof statement === 'object' && statement !== null,
    );
  } catch {
    return undefined;
  }
};

const principalsOf = (principal: unknown): string[] => {
  if (principal === '*') return ['*'];
  if (typeof principal !== 'object' || principal === null) return [];
  return Object.values(principal).flatMap((value) => asList(value).map(String));
};

const hasCondition = (statement: Statement): boolean =>
  typeof statement.Condition === 'object' &&
  statement.Condition !== null &&
  Object.keys(statement.Condition).length > 0;

/** Allow statements that grant to everyone (`*`) with no condition to narrow them. */
export const wildcardGrants = (statements: readonly Statement[]): string[] =>
  statements
    .filter(
      (statement) =>
        statement.Effect === 'Allow' && principalsOf(statement.Principal).includes('*') && !hasCondition(statement),
    )
    .map((statement, index) => statement.Sid ?? `statement #${index + 1}`);

const actionMatches = (pattern: string, action: string): boolean => {
  const expression = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i');
  return expression.test(action);
};

/**
 * The service's roles get their KMS rights from IAM policies, which work only while the key
 * policy lets the account's IAM decide (the account root statement). Returns the needed
 * actions that no unconditioned Allow to the account root covers.
 */
export const actionsMissingForAccount = (
  statements: readonly Statement[],
  account: string,
  needed: readonly string[],
): string[] => {
  const rootGrants = statements.filter(
    (statement) =>
      statement.Effect === 'Allow' &&
      !hasCondition(statement) &&
      principalsOf(statement.Principal).some(
        (principal) => principal === account || /^arn:aws[a-z-]*:iam::(\d{12}):root$/.exec(principal)?.[1] === account,
      ),
  );
  const allowed = rootGrants.flatMap((statement) => asList(statement.Action).map(String));
  return needed.filter((action) => !allowed.some((pattern) => actionMatches(pattern, action)));
};

/** The KMS actions this service's functions call on a managed key through their IAM roles. */
export const SERVICE_KEY_ACTIONS = [
  'kms:DescribeKey',
  'kms:ListResourceTags',
  'kms:GetKeyRotationStatus',
  'kms:ListKeyRotations',
  'kms:EnableKeyRotation',
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:TagResource',
  'kms:UpdateAlias',
] as const;
