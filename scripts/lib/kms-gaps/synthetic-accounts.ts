import type { ApiGap } from '../aws-proxy';

/** An account and Region of a simulated organization. */
export interface AccountRegion {
  account: string;
  region: string;
}

/**
 * Who a call is for in a simulated organization: KMS's quotas and keys are per account and
 * Region (docs/kms-facts.md#request-quotas), so the proxy answers and limits each account-Region
 * on its own. The account is learned from the AssumeRole answers passing through the proxy (the
 * role ARN of the request names the account, the answer's `AccessKeyId` is what the assumed
 * credentials then sign with); a caller never seen assuming a role is the central account (its own
 * credentials). The Region is the one the request is signed for.
 */
export interface SyntheticAccounts {
  /** Learns, from each AssumeRole answer, the account its access key id acts in; amends nothing. */
  gap: ApiGap;
  /** The account-Region of a call signed by `caller` for `region`. */
  locate(caller: string | undefined, region: string | undefined): AccountRegion;
  /** `<account>/<region>` of a call: the scope of the proxy's rate limits. */
  scopeOf(caller: string | undefined, region: string | undefined): string;
  /** How many synthetic keys the account-Region of a call holds. */
  keysIn(location: AccountRegion): number;
  /** Access key ids learned, and the account each acts in. */
  learned(): ReadonlyMap<string, string>;
}

export const syntheticAccounts = (opts: {
  /** The account of callers that assumed no role (the central functions' own credentials). */
  centralAccount: string;
  /** Used when a call's Region is not known (an unsigned request). */
  defaultRegion: string;
  /** The synthetic fleet's size in each account-Region. */
  keysIn: (location: AccountRegion) => number;
}): SyntheticAccounts => {
  const accountOf = new Map<string, string>();
  const locate = (caller: string | undefined, region: string | undefined): AccountRegion => ({
    account: (caller ? accountOf.get(caller) : undefined) ?? opts.centralAccount,
    region: region ?? opts.defaultRegion,
  });
  return {
    gap: {
      amend: (call, answer) => {
        if (call.api !== 'AssumeRole') return undefined;
        const roleArn = decodeURIComponent(/(?:^|&)RoleArn=([^&]+)/.exec(call.body)?.[1] ?? '');
        const account = /^arn:[^:]+:iam::(\d{12}):role\//.exec(roleArn)?.[1];
        const accessKeyId = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(answer.body)?.[1];
        if (account && accessKeyId) accountOf.set(accessKeyId, account);
        return undefined;
      },
    },
    locate,
    scopeOf: (caller, region) => {
      const location = locate(caller, region);
      return `${location.account}/${location.region}`;
    },
    keysIn: opts.keysIn,
    learned: () => accountOf,
  };
};
