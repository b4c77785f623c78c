/** The default key policy's root statement (the emulator's account), plus one more. */
export const rootPolicyWith = (statement: Record<string, unknown>): string =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'Root',
        Effect: 'Allow',
        Principal: { AWS: 'arn:aws:iam::123456789012:root' },
        Action: 'kms:*',
        Resource: '*',
      },
      statement,
    ],
  });

/** A key policy that lets anyone decrypt, with no condition: the audit's `policy-wildcard-principal`. */
export const WILDCARD_POLICY = rootPolicyWith({
  Sid: 'Everyone',
  Effect: 'Allow',
  Principal: { AWS: '*' },
  Action: 'kms:Decrypt',
  Resource: '*',
});
