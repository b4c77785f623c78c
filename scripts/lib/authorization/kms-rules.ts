/**
 * KMS's own authorization rules, which a policy evaluator does not apply by itself. Each rule
 * turns a recorded call into the extra requests KMS authorizes for it (or the extra context it
 * authorizes with), each named after the rule, with the AWS documentation page it comes from.
 * Pure: no AWS calls.
 */
import type { TagWrite } from './recorder';
import type { PolicyDocument } from './template';

/** One authorization request to evaluate: who asks for what on which resource, under which policy and context. */
export interface AuthzRequest {
  principal: string;
  action: string;
  resource: string;
  /** The resource's policy (a key policy, a topic policy, ...); none for resources that have none (aliases, SSM parameters). */
  resourcePolicy?: PolicyDocument;
  context: Record<string, string | string[]>;
  /** The KMS rule that adds this request, if it is not the call's own plain authorization. */
  rule?: string;
  /** A line saying what this request is, for the failure message. */
  what: string;
  /**
   * Rule d: the same request with the key's tags as they are now, when tags the service wrote
   * have not settled yet; if only this one is allowed, the denial is the ABAC delay's.
   */
  withUnsettledTags?: { context: Record<string, string | string[]>; recentTags: string[] };
}

/** Tag changes take up to five minutes to affect authorization (KMS Developer Guide, "ABAC for AWS KMS"). */
export const ABAC_DELAY_MS = 300_000;

/**
 * Rule d, ABAC delay: the tags KMS authorizes a call with are the key's tags as of five minutes
 * before it; tags the service itself wrote (TagResource, UntagResource, CreateKey Tags) less than
 * that long before the call are taken back to what they were. Tags set up before the flow are settled.
 * Source: https://docs.aws.amazon.com/kms/latest/developerguide/abac.html ("It might take up to five
 * minutes for tag and alias changes to affect KMS key authorization"), and tag-authorization.html.
 */
export const settledTags = (
  tagsNow: Record<string, string>,
  writes: TagWrite[],
  at: number,
  delayMs = ABAC_DELAY_MS,
): Record<string, string> => {
  const settled = { ...tagsNow };
  const recent = writes.filter((write) => write.at <= at && write.at > at - delayMs).sort((a, b) => b.at - a.at);
  for (const write of recent) {
    if (write.previous === undefined) delete settled[write.tagKey];
    else settled[write.tagKey] = write.previous;
  }
  return settled;
};

export const resourceTagContext = (tags: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(tags).map(([key, value]) => [`aws:ResourceTag/${key}`, value]));

export const requestTagContext = (tags: Record<string, string>): Record<string, string | string[]> =>
  Object.keys(tags).length === 0
    ? {}
    : {
        ...Object.fromEntries(Object.entries(tags).map(([key, value]) => [`aws:RequestTag/${key}`, value])),
        'aws:TagKeys': Object.keys(tags),
      };

/**
 * Rule a, the key policy lockout safety check: CreateKey with a `Policy`, unless
 * BypassPolicyLockoutSafetyCheck is true, succeeds only if that policy (with the caller's IAM
 * policies) allows the caller a later kms:PutKeyPolicy on the new key; otherwise KMS answers
 * MalformedPolicyDocumentException. The new key's tags are not settled yet (rule d), so none count.
 * Source: https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html (`Policy`,
 * `BypassPolicyLockoutSafetyCheck`); "Default key policy" in the KMS Developer Guide
 * (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
 */
export const lockoutSafetyCheck = (opts: {
  principal: string;
  newKeyArn: string;
  policy: PolicyDocument | undefined;
  bypass: boolean;
  base: Record<string, string | string[]>;
}): AuthzRequest[] =>
  opts.policy === undefined || opts.bypass
    ? []
    : [
        {
          principal: opts.principal,
          action: 'kms:PutKeyPolicy',
          resource: opts.newKeyArn,
          resourcePolicy: opts.policy,
          context: { ...opts.base, 'kms:BypassPolicyLockoutSafetyCheck': 'false' },
          rule: 'lockout-safety-check',
          what: `CreateKey's policy must let the caller PutKeyPolicy on the new key ${opts.newKeyArn}, or CreateKey fails with MalformedPolicyDocumentException`,
        },
      ];

/**
 * Rule b: CreateKey with `Tags` needs kms:TagResource too, in an IAM policy not restricted to
 * particular keys, with the same aws:RequestTag/aws:TagKeys context. Evaluated on the new key
 * (its ARN matches a policy only through a wildcard, never by name), under the new key's policy;
 * the tags it is being created with are not settled (rule d), so no aws:ResourceTag counts.
 * Source: https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html ("Required
 * permissions": kms:CreateKey, and kms:TagResource to tag it), and
 * https://docs.aws.amazon.com/kms/latest/developerguide/tag-permissions.html ("To add tags while
 * creating a KMS key, the principal must have permission in an IAM policy that isn't restricted to
 * particular KMS keys").
 */
export const createKeyTagging = (opts: {
  principal: string;
  tags: Record<string, string>;
  newKeyArn: string;
  policy: PolicyDocument;
  base: Record<string, string | string[]>;
}): AuthzRequest[] =>
  Object.keys(opts.tags).length === 0
    ? []
    : [
        {
          principal: opts.principal,
          action: 'kms:TagResource',
          resource: opts.newKeyArn,
          resourcePolicy: opts.policy,
          context: { ...opts.base, ...requestTagContext(opts.tags) },
          rule: 'create-key-tags',
          what: `CreateKey with Tags [${Object.keys(opts.tags).join(', ')}] needs kms:TagResource (IAM, on any key)`,
        },
      ];

export interface KeyForRule {
  arn: string;
  policy: PolicyDocument;
  /** Settled tags (rule d). */
  tags: Record<string, string>;
  spec?: string;
  usage?: string;
  origin?: string;
}

export const keyContext = (key: KeyForRule): Record<string, string> => ({
  ...resourceTagContext(key.tags),
  ...(key.spec ? { 'kms:KeySpec': key.spec } : {}),
  ...(key.usage ? { 'kms:KeyUsage': key.usage } : {}),
  ...(key.origin ? { 'kms:KeyOrigin': key.origin } : {}),
});

/**
 * Rule c, aliases are authorized on the alias and on every key they affect: CreateAlias needs
 * kms:CreateAlias on the alias and on the key; UpdateAlias needs kms:UpdateAlias on the alias, on
 * the key it points at now and on the new key; DeleteAlias on the alias and its key. An alias in a
 * policy's Resource is the alias, never its key.
 * Sources: https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html ("Controlling
 * access to aliases"); https://docs.aws.amazon.com/kms/latest/APIReference/API_UpdateAlias.html.
 */
export const aliasAuthorization = (opts: {
  principal: string;
  api: 'CreateAlias' | 'UpdateAlias' | 'DeleteAlias';
  aliasArn: string;
  /** CreateAlias, UpdateAlias: the key named in TargetKeyId. */
  newKey?: KeyForRule;
  /** UpdateAlias, DeleteAlias: the key the alias points at now. */
  currentKey?: KeyForRule;
  base: Record<string, string | string[]>;
}): AuthzRequest[] => {
  const action = `kms:${opts.api}`;
  const requests: AuthzRequest[] = [
    {
      principal: opts.principal,
      action,
      resource: opts.aliasArn,
      context: opts.base,
      rule: 'alias-on-alias-and-keys',
      what: `${opts.api} on the alias ${opts.aliasArn}`,
    },
  ];
  const onKey = (key: KeyForRule, role: string): AuthzRequest => ({
    principal: opts.principal,
    action,
    resource: key.arn,
    resourcePolicy: key.policy,
    context: { ...opts.base, ...keyContext(key) },
    rule: 'alias-on-alias-and-keys',
    what: `${opts.api} on ${role} ${key.arn}`,
  });
  if (opts.currentKey) requests.push(onKey(opts.currentKey, 'the key the alias points at now'));
  if (opts.newKey) requests.push(onKey(opts.newKey, 'the new target key'));
  return requests;
};

/**
 * Rule e, publishing to a KMS-encrypted SNS topic: SNS calls kms:GenerateDataKey* and
 * kms:Decrypt on the topic's key as the publisher (kms:ViaService = sns.<region>.amazonaws.com,
 * encryption context aws:sns:topicArn); AWS services that publish (CloudWatch alarms) need them in
 * the key policy, scoped by aws:SourceArn/aws:SourceAccount. The key must be enabled, else Publish
 * fails (KMSDisabledException / KMSInvalidStateException).
 * Sources: https://docs.aws.amazon.com/sns/latest/dg/sns-server-side-encryption.html ("Encryption
 * at rest") and https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html ("Key management").
 */
export const encryptedTopicPublish = (opts: {
  principal: string;
  topicArn: string;
  key: KeyForRule;
  region: string;
  base: Record<string, string | string[]>;
  /** For a service principal: the alarm (or other source) ARN and its account. */
  source?: { arn: string; account: string };
}): AuthzRequest[] =>
  ['kms:GenerateDataKey', 'kms:Decrypt'].map((action) => ({
    principal: opts.principal,
    action,
    resource: opts.key.arn,
    resourcePolicy: opts.key.policy,
    context: {
      ...opts.base,
      ...keyContext(opts.key),
      ...(opts.source
        ? { 'aws:SourceArn': opts.source.arn, 'aws:SourceAccount': opts.source.account }
        : { 'kms:ViaService': `sns.${opts.region}.amazonaws.com` }),
      'kms:EncryptionContext:aws:sns:topicArn': opts.topicArn,
      'kms:EncryptionContextKeys': ['aws:sns:topicArn'],
    },
    rule: 'encrypted-topic-publish',
    what: `SNS ${action.slice(4)} on the topic's key ${opts.key.arn} for a Publish to ${opts.topicArn}`,
  }));

/** Rule e, the key's state: Publish to a topic whose key is not enabled fails. */
export const topicKeyUsable = (keyState: string | undefined): string | undefined =>
  keyState === undefined || keyState === 'Enabled'
    ? undefined
    : `the topic's key is ${keyState}: SNS cannot encrypt, Publish fails (KMSDisabledException/KMSInvalidStateException)`;
