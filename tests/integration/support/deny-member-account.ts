import type { ApiGap } from '../../../scripts/lib/aws-proxy';

/**
 * A fault for the organization audit's failure test: every KMS call made with credentials of the
 * member role of the listed accounts is answered `AccessDeniedException`, as KMS answers a role
 * its key policies or SCPs refuse. It learns which access keys are those accounts' from the
 * AssumeRole answers passing through the proxy (the role ARN names the account).
 */
export const denyMemberAccounts = () => {
  const denied = new Set<string>();
  const keysOfDenied = new Set<string>();
  const gap: ApiGap = {
    amend: (call, answer) => {
      if (call.api !== 'AssumeRole') return undefined;
      const roleArn = decodeURIComponent(/(?:^|&)RoleArn=([^&]+)/.exec(call.body)?.[1] ?? '');
      const account = /^arn:aws:iam::(\d{12}):role\//.exec(roleArn)?.[1];
      const accessKeyId = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(answer.body)?.[1];
      if (account && accessKeyId && denied.has(account)) keysOfDenied.add(accessKeyId);
      return undefined;
    },
    answer: (call) =>
      call.caller && keysOfDenied.has(call.caller) && !call.body.startsWith('Action=')
        ? {
            status: 400,
            body: {
              __type: 'AccessDeniedException',
              message: `User: assumed role of a denied account is not authorized to perform: kms:${call.api}`,
            },
          }
        : undefined,
  };
  return { gap, deny: (account: string) => denied.add(account), denied };
};
