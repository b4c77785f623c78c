import { GetCallerIdentityCommand, STSClient, type STSClientConfig } from '@aws-sdk/client-sts';
import { AwsServiceError } from '../domain/errors';
import { callAws } from './aws-errors';

/** The account and partition of the credentials every call of the function is signed with. */
export type CallerIdentity = () => Promise<{ account: string; partition: string }>;

/**
 * STS `GetCallerIdentity`, asked at most once per process, and only when it is needed: Lambda
 * gives every invocation its function ARN, so only a runtime that does not (`serverless invoke
 * local`) ever asks. No IAM permission is needed to call it, and it cannot be denied
 * (docs/manual-invoke.md).
 */
export const stsCallerIdentity = (options: STSClientConfig): CallerIdentity => {
  let answer: Promise<{ account: string; partition: string }> | undefined;
  const ask = async () => {
    const sts = new STSClient(options);
    const { Account, Arn } = await callAws('GetCallerIdentity', 'the credentials', () =>
      sts.send(new GetCallerIdentityCommand({})),
    );
    const partition = /^arn:(aws[a-z-]*):/.exec(Arn ?? '')?.[1];
    if (!Account || !/^\d{12}$/.test(Account) || !partition) {
      throw new AwsServiceError('GetCallerIdentity', false, `STS answered no account or ARN (${Account}, ${Arn})`);
    }
    return { account: Account, partition };
  };
  return () => {
    // A failed answer is not kept: the next invocation asks again.
    answer ??= ask().catch((error: unknown) => {
      answer = undefined;
      throw error;
    });
    return answer;
  };
};
