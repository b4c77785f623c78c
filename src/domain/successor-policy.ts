import { PreconditionFailedError } from './errors';
import { VERIFY_KEY_ACTIONS } from './key-verification';

/**
 * The key policy of an alias-swap successor: the predecessor's, plus one statement that lets
 * the rotate role finish the rotation on this one key.
 *
 * Why a statement in the key policy rather than IAM alone:
 * - CreateKey runs the policy lockout safety check: the new policy must allow the caller a
 *   later `kms:PutKeyPolicy` on the key, or CreateKey fails with
 *   MalformedPolicyDocumentException (KMS API Reference, CreateKey, `Policy` and
 *   `BypassPolicyLockoutSafetyCheck`:
 *   https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html). We do not
 *   bypass the check: AWS advises against it and many organizations deny it.
 * - A key's policy is part of the key from CreateKey on, while tags "might take up to five
 *   minutes" to affect authorization (KMS Developer Guide, ABAC for AWS KMS:
 *   https://docs.aws.amazon.com/kms/latest/developerguide/abac.html). Authorizing the
 *   successor through this statement lets the run verify it, move aliases onto it and tag it
 *   in the same minute it was created, with no wait.
 * The statement names the rotate role's exact ARN and this key only (`Resource: "*"` in a key
 * policy is the key itself). A later rotation of the successor replaces it, never adds a second.
 */
export const SUCCESSOR_STATEMENT_SID = 'KmsRotationFinishesThisRotation';

/** What the rotate role does to a successor before it carries the declared state. */
export const SUCCESSOR_ACTIONS = [
  // Required by CreateKey's policy lockout safety check; kms-rotation never calls it.
  'kms:PutKeyPolicy',
  'kms:DescribeKey',
  'kms:TagResource',
  'kms:EnableKeyRotation',
  'kms:GetKeyRotationStatus',
  'kms:CreateAlias',
  'kms:UpdateAlias',
  // verifySuccessor, by key usage: encrypt/decrypt, sign/verify, MAC, public key.
  ...VERIFY_KEY_ACTIONS,
] as const;

/** KMS's limit on a key policy document (KMS Developer Guide, "Quotas: key policy document size"). */
export const KEY_POLICY_MAX_BYTES = 32_768;

interface PolicyDocument {
  Version?: string;
  Statement: Record<string, unknown>[];
  [field: string]: unknown;
}

const parsePolicy = (keyId: string, policy: string): PolicyDocument => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(policy);
  } catch {
    throw new PreconditionFailedError(
      'key-policy-unusable',
      `the key policy of ${keyId} is not JSON; it cannot be copied`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new PreconditionFailedError('key-policy-unusable', `the key policy of ${keyId} is not a policy document`);
  }
  const document = parsed as { Statement?: unknown };
  const statements = Array.isArray(document.Statement)
    ? document.Statement
    : document.Statement !== undefined
      ? [document.Statement]
      : [];
  return { ...(parsed as Record<string, unknown>), Statement: statements as Record<string, unknown>[] };
};

/** The predecessor's key policy with the rotate role's statement for the successor, in place of any earlier one. */
export const successorPolicy = (predecessorId: string, predecessorPolicy: string, rotateRoleArn: string): string => {
  const document = parsePolicy(predecessorId, predecessorPolicy);
  const statements = document.Statement.filter((statement) => statement.Sid !== SUCCESSOR_STATEMENT_SID);
  statements.push({
    Sid: SUCCESSOR_STATEMENT_SID,
    Effect: 'Allow',
    Principal: { AWS: rotateRoleArn },
    Action: [...SUCCESSOR_ACTIONS],
    Resource: '*',
  });
  const policy = JSON.stringify({ ...document, Statement: statements });
  if (Buffer.byteLength(policy, 'utf8') > KEY_POLICY_MAX_BYTES) {
    throw new PreconditionFailedError(
      'key-policy-unusable',
      `the key policy of ${predecessorId} leaves no room for kms-rotation's statement for the successor (KMS allows ${KEY_POLICY_MAX_BYTES} bytes)`,
    );
  }
  return policy;
};
