/** The key id inside a key ARN (`arn:aws:kms:<region>:<account>:key/<id>`), or the reference unchanged. */
export const keyIdOf = (ref: string): string => {
  const marker = ':key/';
  const at = ref.indexOf(marker);
  return ref.startsWith('arn:') && at >= 0 ? ref.slice(at + marker.length) : ref;
};

/** Whether two references (ids or ARNs) name the same key. */
export const sameKey = (a: string, b: string): boolean => keyIdOf(a) === keyIdOf(b);

/** The parts of an ARN: `arn:<partition>:<service>:<region>:<account>:<resource>`. */
export interface ArnParts {
  partition: string;
  service: string;
  region: string;
  account: string;
  resource: string;
}

const ARN = /^arn:([a-z-]+):([a-z0-9-]+):([a-z0-9-]*):(\d{12})?:(.+)$/;

export const parseArn = (arn: string): ArnParts | undefined => {
  const match = ARN.exec(arn);
  if (!match) return undefined;
  const [, partition = '', service = '', region = '', account = '', resource = ''] = match;
  return { partition, service, region, account, resource };
};

/** The partition of the ARN (`aws`, `aws-cn`, `aws-us-gov`, ...), or `aws` for anything else. */
export const partitionOf = (arn: string): string => parseArn(arn)?.partition ?? 'aws';

/**
 * Aliases that begin with `alias/aws/` name AWS managed keys: AWS creates and rotates them, and
 * merely describing one makes KMS create its key in the account (see docs/trust-boundaries.md).
 */
export const isAwsManagedAlias = (ref: string): boolean => {
  const alias = ref.startsWith('arn:') ? parseArn(ref)?.resource : ref;
  return alias?.startsWith('alias/aws/') ?? false;
};
