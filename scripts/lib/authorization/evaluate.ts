/**
 * Evaluates recorded AWS calls against the policies a packaged template deploys, with
 * @cloud-copilot/iam-simulate (identity and resource policy together, AWS's same-account rules,
 * KMS's key-policy trust: for a key, IAM counts only where the key policy delegates to the account)
 * plus KMS's own rules (`kms-rules.ts`). Pure apart from the evaluator: no AWS calls.
 *
 * iam-simulate is AGPL-3.0: this file is for tests only and is never bundled into a function.
 */
import { getDenialReasons, runSimulation } from '@cloud-copilot/iam-simulate';
import type { CallRecord } from '../aws-proxy';
import {
  type AuthzRequest,
  aliasAuthorization,
  createKeyTagging,
  encryptedTopicPublish,
  type KeyForRule,
  keyContext,
  lockoutSafetyCheck,
  requestTagContext,
  settledTags,
  topicKeyUsable,
} from './kms-rules';
import type { CallDetail, KeySnapshot, TagWrite } from './recorder';
import { defaultKeyPolicy, type PolicyDocument, type ResolvedRole, type ResolvedStack } from './template';

export interface Caller {
  /** The function's name in serverless.yml, e.g. `rotate`. */
  functionName: string;
  role: ResolvedRole;
  /**
   * The stack whose account, Region and policies the caller's calls are judged in, when it is not
   * the one `evaluateCalls` is given: a member role's session is judged in its member stack.
   */
  stack?: ResolvedStack;
}

/**
 * What `sts:AssumeRole` into another account is authorized against: the role's trust policy (its
 * resource policy) and the organization of each account (`aws:ResourceOrgID`, `aws:PrincipalOrgID`).
 */
export interface OrganizationView {
  /** The role of that ARN as deployed (its trust policy); undefined when no stack deploys it. */
  roleOf(roleArn: string): ResolvedRole | undefined;
  /** The organization id of an account; undefined for an account outside any organization. */
  organizationOf(account: string): string | undefined;
}

/** A denial: what was refused and why, one line each. */
export interface Denial {
  flow: string;
  functionName: string;
  call: string;
  action: string;
  resource: string;
  reason: string;
}

export interface Evaluation {
  denials: Denial[];
  /** How many authorization requests were evaluated. */
  evaluated: number;
  /** `<policy name>#<statement index>` -> the actions it granted in evaluated requests (lower case). */
  grantsUsed: Map<string, Set<string>>;
  /** Calls that AWS answers before authorizing (a key that does not exist), with why. */
  notAuthorized: string[];
}

export const emptyEvaluation = (): Evaluation => ({
  denials: [],
  evaluated: 0,
  grantsUsed: new Map(),
  notAuthorized: [],
});

const kmsArn = (stack: ResolvedStack, rest: string) =>
  `arn:${stack.partition}:kms:${stack.region}:${stack.accountId}:${rest}`;

const tagsOf = (tags: unknown): Record<string, string> =>
  Array.isArray(tags)
    ? Object.fromEntries(
        (tags as { TagKey?: string; TagValue?: string }[])
          .filter((tag) => typeof tag.TagKey === 'string')
          .map((tag) => [tag.TagKey as string, String(tag.TagValue ?? '')]),
      )
    : {};

const parsePolicy = (policy: unknown): PolicyDocument | undefined => {
  if (typeof policy !== 'string') return undefined;
  try {
    return JSON.parse(policy) as PolicyDocument;
  } catch {
    return undefined;
  }
};

/** The key as KMS authorizes a call on it: the template's policy for the stack's keys, else the recorded one; settled tags. */
export const keyForRule = (
  stack: ResolvedStack,
  snapshot: KeySnapshot,
  history: Record<string, TagWrite[]>,
  at: number,
): KeyForRule => ({
  arn: snapshot.arn,
  policy:
    stack.keys[snapshot.keyId]?.policy ?? (snapshot.policy as PolicyDocument | undefined) ?? defaultKeyPolicy(stack),
  tags: settledTags(snapshot.tags, history[snapshot.keyId] ?? [], at),
  spec: snapshot.spec,
  usage: snapshot.usage,
  origin: snapshot.origin,
});

/** Rule d: attaches to each request on `snapshot`'s key the context it would have with the key's tags as they are now. */
const withUnsettledTags = (
  requests: AuthzRequest[],
  snapshot: KeySnapshot | undefined,
  settled: Record<string, string> | undefined,
): AuthzRequest[] => {
  if (!snapshot || !settled) return requests;
  const recentTags = [...new Set([...Object.keys(snapshot.tags), ...Object.keys(settled)])].filter(
    (tag) => snapshot.tags[tag] !== settled[tag],
  );
  if (recentTags.length === 0) return requests;
  return requests.map((request) => {
    if (request.resource !== snapshot.arn) return request;
    const context = Object.fromEntries(
      Object.entries(request.context).filter(([name]) => !name.startsWith('aws:ResourceTag/')),
    );
    for (const [tag, value] of Object.entries(snapshot.tags)) context[`aws:ResourceTag/${tag}`] = value;
    return { ...request, withUnsettledTags: { context, recentTags } };
  });
};

export const baseContext = (stack: ResolvedStack, principalArn: string, action: string) => ({
  'aws:PrincipalArn': principalArn,
  'aws:PrincipalAccount': stack.accountId,
  'aws:SecureTransport': 'true',
  ...(action.startsWith('kms:') ? { 'kms:CallerAccount': stack.accountId } : {}),
});

/**
 * The authorization requests AWS makes for one recorded call: the call's own, plus those KMS's
 * rules add. `refusals` are refusals that need no policy evaluation (a topic key not enabled).
 */
export const requestsForCall = (
  stack: ResolvedStack,
  caller: Caller,
  detail: CallDetail,
  history: Record<string, TagWrite[]>,
  organization?: OrganizationView,
): { requests: AuthzRequest[]; refusals: { what: string; resource: string; reason: string }[]; skip?: string } => {
  const principal = caller.role.arn;
  const { action, params, at } = detail;
  // aws:RequestedRegion: the Region the request was sent to (IAM User Guide, "AWS global condition
  // context keys"); the member role's CreateKey is bounded by it.
  const base = { ...baseContext(stack, principal, action), 'aws:RequestedRegion': detail.region ?? stack.region };
  const requests: AuthzRequest[] = [];
  const refusals: { what: string; resource: string; reason: string }[] = [];
  const api = action.split(':')[1] ?? action;

  if (detail.keyNotFound) {
    return {
      requests,
      refusals,
      skip: `${action} names ${detail.keyNotFound}, which does not exist (NotFoundException)`,
    };
  }

  if (action.startsWith('kms:')) {
    if (api === 'CreateKey') {
      const tags = tagsOf(params.Tags);
      const policy = parsePolicy(params.Policy);
      const bypass = params.BypassPolicyLockoutSafetyCheck === true;
      const creation = {
        ...base,
        ...requestTagContext(tags),
        'kms:BypassPolicyLockoutSafetyCheck': String(bypass),
        'kms:KeySpec': String(params.KeySpec ?? 'SYMMETRIC_DEFAULT'),
        'kms:KeyUsage': String(params.KeyUsage ?? 'ENCRYPT_DECRYPT'),
        'kms:KeyOrigin': String(params.Origin ?? 'AWS_KMS'),
      };
      requests.push({ principal, action, resource: '*', context: creation, what: 'CreateKey' });
      const newKeyArn = detail.created?.arn ?? kmsArn(stack, 'key/00000000-0000-4000-8000-000000000000');
      requests.push(
        ...createKeyTagging({ principal, tags, newKeyArn, policy: policy ?? defaultKeyPolicy(stack), base }),
      );
      requests.push(...lockoutSafetyCheck({ principal, newKeyArn, policy, bypass, base }));
    } else if (api === 'CreateAlias' || api === 'UpdateAlias' || api === 'DeleteAlias') {
      const aliasArn = kmsArn(stack, String(params.AliasName));
      requests.push(
        ...aliasAuthorization({
          principal,
          api,
          aliasArn,
          base,
          ...(detail.key && api !== 'DeleteAlias' ? { newKey: keyForRule(stack, detail.key, history, at) } : {}),
          ...(detail.aliasTarget ? { currentKey: keyForRule(stack, detail.aliasTarget, history, at) } : {}),
        }),
      );
    } else if (detail.key) {
      const key = keyForRule(stack, detail.key, history, at);
      const context: Record<string, string | string[]> = { ...base, ...keyContext(key) };
      if (api === 'TagResource') Object.assign(context, requestTagContext(tagsOf(params.Tags)));
      if (api === 'UntagResource' && Array.isArray(params.TagKeys)) context['aws:TagKeys'] = params.TagKeys as string[];
      // KMS puts the request's PendingWindowInDays in kms:ScheduleKeyDeletionPendingWindowInDays
      // (KMS Developer Guide, "AWS KMS condition keys": https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html).
      if (api === 'ScheduleKeyDeletion' && params.PendingWindowInDays !== undefined) {
        context['kms:ScheduleKeyDeletionPendingWindowInDays'] = String(params.PendingWindowInDays);
      }
      if (api === 'PutKeyPolicy') {
        context['kms:BypassPolicyLockoutSafetyCheck'] = String(params.BypassPolicyLockoutSafetyCheck === true);
      }
      if (params.EncryptionContext && typeof params.EncryptionContext === 'object') {
        const encryptionContext = params.EncryptionContext as Record<string, string>;
        for (const [name, value] of Object.entries(encryptionContext)) context[`kms:EncryptionContext:${name}`] = value;
        context['kms:EncryptionContextKeys'] = Object.keys(encryptionContext);
      }
      requests.push({ principal, action, resource: key.arn, resourcePolicy: key.policy, context, what: api });
    } else {
      requests.push({ principal, action, resource: '*', context: base, what: api });
    }
  } else if (action === 'sts:AssumeRole') {
    // Authorized by the caller's identity policy and the role's trust policy, both (IAM User Guide,
    // "Cross account resource access in IAM"); the request carries the session name
    // (sts:RoleSessionName) and the organizations of both accounts (aws:ResourceOrgID, aws:PrincipalOrgID).
    const roleArn = String(params.RoleArn);
    const roleAccount = roleArn.split(':')[4] ?? '';
    const role = organization?.roleOf(roleArn);
    const resourceOrg = organization?.organizationOf(roleAccount);
    const principalOrg = organization?.organizationOf(stack.accountId);
    if (!role?.trustPolicy) {
      refusals.push({
        what: 'AssumeRole',
        resource: roleArn,
        reason: `no stack deploys the role ${roleArn}: AWS refuses to assume a role that does not exist (moto assumes any)`,
      });
    } else {
      requests.push({
        principal,
        action,
        resource: roleArn,
        resourcePolicy: role.trustPolicy,
        context: {
          ...base,
          'sts:RoleSessionName': String(params.RoleSessionName ?? ''),
          ...(resourceOrg ? { 'aws:ResourceOrgID': resourceOrg, 'aws:ResourceAccount': roleAccount } : {}),
          ...(principalOrg ? { 'aws:PrincipalOrgID': principalOrg } : {}),
        },
        what: `AssumeRole ${roleArn} as ${String(params.RoleSessionName ?? '')}`,
      });
    }
  } else if (action === 'organizations:ListParents' || action === 'organizations:DescribeOrganizationalUnit') {
    // Authorized on the account or OU named (Service Authorization Reference, "Actions, resources, and
    // condition keys for AWS Organizations"), whose ARNs name the management account: the caller's,
    // as only the management account (or a delegated administrator) may call them.
    const id = String(params.ChildId ?? params.OrganizationalUnitId ?? '');
    const org = organization?.organizationOf(stack.accountId) ?? 'o-unknown';
    const kind = /^\d{12}$/.test(id) ? 'account' : id.startsWith('r-') ? 'root' : 'ou';
    const resource = `arn:${stack.partition}:organizations::${stack.accountId}:${kind}/${org}/${id}`;
    requests.push({ principal, action, resource, context: base, what: `${api} ${id}` });
  } else if (action === 'sns:Publish') {
    const topicArn = String(params.TopicArn ?? params.TargetArn);
    requests.push({
      principal,
      action,
      resource: topicArn,
      ...(stack.topics[topicArn]?.policy ? { resourcePolicy: stack.topics[topicArn].policy } : {}),
      context: base,
      what: 'Publish',
    });
    if (detail.topicKey) {
      requests.push(
        ...encryptedTopicPublish({
          principal,
          topicArn,
          key: keyForRule(stack, detail.topicKey, history, at),
          region: stack.region,
          base,
        }),
      );
      const unusable = topicKeyUsable(detail.topicKey.state);
      if (unusable)
        refusals.push({
          what: 'Publish',
          resource: detail.topicKey.arn,
          reason: `[encrypted-topic-publish] ${unusable}`,
        });
    }
  } else if (action === 'securityhub:BatchImportFindings') {
    // Authorized on each finding's product (`product` resource type, `securityhub:TargetAccount` the
    // finding's account). With the default product ARN, Security Hub also refuses a finding whose
    // AwsAccountId is not the caller's account, whatever the policies say.
    const findings = Array.isArray(params.Findings) ? (params.Findings as Record<string, unknown>[]) : [];
    const pairs = new Map<string, { product: string; account: string }>();
    for (const finding of findings) {
      const product = String(finding.ProductArn ?? '');
      const account = String(finding.AwsAccountId ?? '');
      pairs.set(`${product} ${account}`, { product, account });
      const defaultOf = /:product\/([^/]+)\/default$/.exec(product)?.[1];
      if (defaultOf !== undefined && (defaultOf !== stack.accountId || account !== stack.accountId)) {
        refusals.push({
          what: 'BatchImportFindings',
          resource: product,
          reason: `[default-product] finding ${String(finding.Id)} of account ${account} to the default product of ${defaultOf}; only the account itself imports to its own default product`,
        });
      }
    }
    for (const { product, account } of pairs.values()) {
      requests.push({
        principal,
        action,
        resource: product,
        context: { ...base, 'securityhub:TargetAccount': account },
        what: 'BatchImportFindings',
      });
    }
  } else if (action === 'securityhub:GetFindings') {
    const hub = `arn:${stack.partition}:securityhub:${stack.region}:${stack.accountId}:hub/default`;
    requests.push({ principal, action, resource: hub, context: base, what: 'GetFindings' });
  } else if (action === 's3:PutObject') {
    // Authorized on the object, under the bucket's own policy (a TLS-only Deny, say).
    const bucket = String(params.Bucket);
    const resource = `arn:${stack.partition}:s3:::${bucket}/${String(params.Key)}`;
    const context: Record<string, string> = { ...base };
    if (typeof params.ServerSideEncryption === 'string')
      context['s3:x-amz-server-side-encryption'] = params.ServerSideEncryption;
    requests.push({
      principal,
      action,
      resource,
      ...(stack.buckets[bucket]?.policy ? { resourcePolicy: stack.buckets[bucket].policy } : {}),
      context,
      what: 'PutObject',
    });
  } else if (action === 'dynamodb:TransactWriteItems') {
    // Each item is authorized as its own action on its own table: DynamoDB has no separate
    // permission for the transaction (DynamoDB Developer Guide, "Using IAM with DynamoDB transactions",
    // https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html).
    const ITEM_ACTIONS: Record<string, string> = {
      Put: 'dynamodb:PutItem',
      Update: 'dynamodb:UpdateItem',
      Delete: 'dynamodb:DeleteItem',
      ConditionCheck: 'dynamodb:ConditionCheckItem',
    };
    for (const item of (Array.isArray(params.TransactItems) ? params.TransactItems : []) as Record<string, unknown>[]) {
      for (const [kind, itemAction] of Object.entries(ITEM_ACTIONS)) {
        const table = (item[kind] as { TableName?: string } | undefined)?.TableName;
        if (table === undefined) continue;
        const resource = `arn:${stack.partition}:dynamodb:${stack.region}:${stack.accountId}:table/${table}`;
        requests.push({ principal, action: itemAction, resource, context: base, what: `${api} ${kind}` });
      }
    }
  } else if (action.startsWith('dynamodb:')) {
    const resource = `arn:${stack.partition}:dynamodb:${stack.region}:${stack.accountId}:table/${String(params.TableName)}`;
    requests.push({ principal, action, resource, context: base, what: api });
  } else if (action.startsWith('ssm:')) {
    const name = String(params.Name ?? params.Path ?? '');
    const resource = `arn:${stack.partition}:ssm:${stack.region}:${stack.accountId}:parameter${name.startsWith('/') ? name : `/${name}`}`;
    requests.push({ principal, action, resource, context: base, what: api });
  } else if (action === 'lambda:InvokeFunction') {
    const name = String(params.FunctionName);
    const resource = name.startsWith('arn:')
      ? name
      : `arn:${stack.partition}:lambda:${stack.region}:${stack.accountId}:function:${name}`;
    requests.push({
      principal,
      action,
      resource,
      ...(stack.lambdaPolicies[resource] ? { resourcePolicy: stack.lambdaPolicies[resource] } : {}),
      context: base,
      what: 'Invoke',
    });
  } else if (action.startsWith('sqs:')) {
    // On the queue its URL names (`<endpoint>/<account>/<name>`). A batch API is authorized as its
    // single-message action: SQS has no SendMessageBatch permission (SQS Developer Guide, "Amazon SQS
    // API permissions: Actions and resource reference",
    // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html).
    const [account = stack.accountId, name = ''] = String(params.QueueUrl ?? '')
      .split('/')
      .slice(-2);
    const resource = `arn:${stack.partition}:sqs:${stack.region}:${account}:${name}`;
    requests.push({ principal, action: action.replace(/Batch$/, ''), resource, context: base, what: api });
  } else {
    // tag:GetResources and other calls without a resource type.
    requests.push({ principal, action, resource: '*', context: base, what: api });
  }
  let marked = requests;
  for (const snapshot of [detail.key, detail.aliasTarget, detail.topicKey]) {
    if (snapshot)
      marked = withUnsettledTags(marked, snapshot, settledTags(snapshot.tags, history[snapshot.keyId] ?? [], at));
  }
  return { requests: marked, refusals };
};

const describeDenial = (
  request: AuthzRequest,
  analysis: Parameters<typeof getDenialReasons>[0],
  roleName: string,
): string => {
  const reasons = getDenialReasons(analysis);
  const identityAllows = analysis.identityAnalysis?.result === 'Allowed';
  const parts: string[] = [];
  for (const reason of reasons) {
    if (reason.denialType === 'Explicit') {
      parts.push(
        `explicitly denied by ${reason.policyType} policy ${reason.policyIdentifier ?? ''} statement ${reason.statementId ?? reason.statementIndex}`,
      );
    } else if (reason.policyType === 'identity') {
      parts.push(
        `no statement of ${roleName}'s policies allows ${request.action} on ${request.resource} in this context`,
      );
    } else if (reason.policyType === 'resource') {
      parts.push(
        request.resource.includes(':key/')
          ? `the key policy allows it neither to ${roleName} nor to the account root (which would delegate to IAM)${identityAllows ? ' (IAM alone would allow it)' : ''}`
          : `the resource policy of ${request.resource} does not allow it`,
      );
    } else {
      parts.push(`denied by ${reason.policyType}`);
    }
  }
  const missing = parts.length > 0 ? parts.join('; ') : 'denied';
  return request.rule ? `[${request.rule}] ${request.what}: ${missing}` : missing;
};

const ENCRYPTION_CONTEXT_PREFIX = 'kms:EncryptionContext:';
/** The name iam-data gives the encryption-context condition key; iam-simulate keeps context values under it. */
const ENCRYPTION_CONTEXT_SPEC_KEY = `${ENCRYPTION_CONTEXT_PREFIX}\${EncryptionContextKey}`;

/**
 * iam-simulate 0.1.x drops the variable part of `kms:EncryptionContext:<key>` (it substitutes
 * variables only after a '/'), so a request's encryption-context value is never found for a
 * condition on it. For a request with exactly one encryption-context key, that key is renamed to
 * the spec name in the request and in every condition that names it; conditions on other
 * encryption-context keys still find nothing, as they should. Requests with several keys are
 * left as they are (and a condition on them would fail closed: reported as denied).
 */
export const withEncryptionContextWorkaround = <P>(
  context: Record<string, unknown>,
  policies: P[],
): { context: Record<string, unknown>; policies: P[] } => {
  const keys = Object.keys(context).filter(
    (name) =>
      name.toLowerCase().startsWith(ENCRYPTION_CONTEXT_PREFIX.toLowerCase()) && name !== ENCRYPTION_CONTEXT_SPEC_KEY,
  );
  if (keys.length !== 1) return { context, policies };
  const [name] = keys as [string];
  const { [name]: value, ...rest } = context;
  const rename = (text: string): string =>
    text.split(JSON.stringify(name).slice(1, -1)).join(JSON.stringify(ENCRYPTION_CONTEXT_SPEC_KEY).slice(1, -1));
  return {
    context: { ...rest, [ENCRYPTION_CONTEXT_SPEC_KEY]: value },
    policies: policies.map((policy) =>
      policy === undefined ? policy : (JSON.parse(rename(JSON.stringify(policy))) as P),
    ),
  };
};

/** Evaluates one request; identity policies are the caller's (none for a service principal). */
export const evaluateRequest = async (
  request: AuthzRequest,
  identityPolicies: { name: string; policy: PolicyDocument }[],
  accountId: string,
  evaluation: Evaluation,
  roleName: string,
): Promise<string | undefined> => {
  const adjusted = withEncryptionContextWorkaround(request.context, [
    identityPolicies,
    request.resourcePolicy,
  ] as const);
  const [adjustedIdentity, adjustedResource] = adjusted.policies as unknown as [
    typeof identityPolicies,
    AuthzRequest['resourcePolicy'],
  ];
  const response = await runSimulation(
    {
      request: {
        principal: request.principal,
        action: request.action,
        resource: { resource: request.resource, accountId },
        contextVariables: adjusted.context as AuthzRequest['context'],
      },
      identityPolicies: adjustedIdentity,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(adjustedResource ? { resourcePolicy: adjustedResource } : {}),
    },
    {},
  );
  evaluation.evaluated += 1;
  if (response.resultType === 'error') {
    return `the evaluator refused the request: ${JSON.stringify(response.errors).slice(0, 400)}`;
  }
  if (response.resultType === 'wildcard' && request.resource === '*') {
    // An action whose resource types are all optional, called on no resource (cloudwatch:GetMetricData
    // on classic metrics: its one resource type, `dataset`, is for OTLP metrics only; docs/authorization.md):
    // the evaluator simulates each pattern the policies grant; the call is allowed when `*` is, and no pattern is denied.
    for (const result of response.results) {
      for (const statement of result.analysis.identityAnalysis?.allowStatements ?? []) {
        const key = `${statement.policyId}#${statement.statement.index()}`;
        const used = evaluation.grantsUsed.get(key) ?? new Set<string>();
        used.add(request.action.toLowerCase());
        evaluation.grantsUsed.set(key, used);
      }
    }
    // A grant on some resource pattern (datasets) does not reach a call on no resource: `*` itself must be allowed.
    const onStar = response.results.find((result) => result.resourcePattern === '*');
    if (response.overallResult === 'Allowed' && onStar?.analysis.result === 'Allowed') return undefined;
    const refused = response.results.find((result) => result.analysis.result !== 'Allowed');
    return refused
      ? describeDenial(request, refused.analysis, roleName)
      : `no statement of ${roleName}'s policies allows ${request.action} on *`;
  }
  if (response.resultType !== 'single') return `unexpected wildcard result for ${request.resource}`;
  const analysis = response.result.analysis;
  if (!analysis) return 'the evaluator returned no analysis';
  for (const statement of analysis.identityAnalysis?.allowStatements ?? []) {
    const key = `${statement.policyId}#${statement.statement.index()}`;
    const used = evaluation.grantsUsed.get(key) ?? new Set<string>();
    used.add(request.action.toLowerCase());
    evaluation.grantsUsed.set(key, used);
  }
  if (response.overallResult === 'Allowed') return undefined;
  const denial = describeDenial(request, analysis, roleName);
  if (request.withUnsettledTags) {
    const { withUnsettledTags: unsettled, ...rest } = request;
    const scratch = emptyEvaluation();
    const withTagsNow = await evaluateRequest(
      { ...rest, context: unsettled.context },
      identityPolicies,
      accountId,
      scratch,
      roleName,
    );
    if (withTagsNow === undefined) {
      return `[abac-delay] allowed only through tags the service wrote less than 5 minutes before (${unsettled.recentTags.join(', ')}), which KMS may not honour yet: ${denial}`;
    }
  }
  return denial;
};

/** A recorded call as the test knows it: the proxy's record, and the flow it belongs to. */
export interface FlowCall {
  flow: string;
  record: CallRecord;
}

/** Evaluates every recorded call of the flows; `callers` maps access key ids to functions and roles. */
export const evaluateCalls = async (
  stack: ResolvedStack,
  callers: Record<string, Caller>,
  calls: FlowCall[],
  history: Record<string, TagWrite[]>,
  evaluation: Evaluation = emptyEvaluation(),
  organization?: OrganizationView,
): Promise<Evaluation> => {
  for (const { flow, record } of calls) {
    const detail = record.detail as CallDetail | undefined;
    const caller = record.caller ? callers[record.caller] : undefined;
    if (!caller) {
      evaluation.denials.push({
        flow,
        functionName: '?',
        call: record.api,
        action: detail?.action ?? record.api,
        resource: '?',
        reason: `signed by ${record.caller ?? 'no access key'}, which is no function of the stack: the caller cannot be told`,
      });
      continue;
    }
    if (!detail) {
      evaluation.denials.push({
        flow,
        functionName: caller.functionName,
        call: record.api,
        action: record.api,
        resource: '?',
        reason: `the proxy recorded no detail (outcome ${record.outcome}); the call cannot be evaluated`,
      });
      continue;
    }
    const judgedIn = caller.stack ?? stack;
    const { requests, refusals, skip } = requestsForCall(judgedIn, caller, detail, history, organization);
    if (skip) {
      evaluation.notAuthorized.push(`${flow}: ${caller.functionName} ${skip}`);
      continue;
    }
    const call = describeCall(detail);
    for (const refusal of refusals) {
      evaluation.denials.push({ flow, functionName: caller.functionName, call, action: detail.action, ...refusal });
    }
    for (const request of requests) {
      const reason = await evaluateRequest(
        request,
        caller.role.policies,
        // The resource's own account (a role of another account for AssumeRole), else the caller's stack's.
        /^arn:[^:]+:[^:]*:[^:]*:(\d{12}):/.exec(request.resource)?.[1] ?? judgedIn.accountId,
        evaluation,
        caller.role.logicalId,
      );
      if (reason) {
        evaluation.denials.push({
          flow,
          functionName: caller.functionName,
          call,
          action: request.action,
          resource: request.resource,
          reason,
        });
      }
    }
  }
  return evaluation;
};

/** `UpdateAlias alias/app/key -> 1234...`, `TagResource 1234... {a=b}`: what a person reads in a failure. */
export const describeCall = (detail: CallDetail): string => {
  const { params } = detail;
  const api = detail.action.split(':')[1] ?? detail.action;
  const bits: string[] = [api];
  if (params.AliasName) bits.push(String(params.AliasName));
  if (params.TargetKeyId) bits.push(`-> ${String(params.TargetKeyId)}`);
  else if (params.KeyId && !params.AliasName) bits.push(String(params.KeyId));
  if (params.Tags) {
    bits.push(
      `{${Object.entries(tagsOf(params.Tags))
        .map(([key, value]) => `${key}=${value}`)
        .join(', ')}}`,
    );
  }
  if (params.Policy) bits.push('with Policy');
  if (params.TopicArn) bits.push(String(params.TopicArn));
  if (params.Name) bits.push(String(params.Name));
  if (params.FunctionName) bits.push(String(params.FunctionName));
  return bits.join(' ');
};

export const formatDenials = (denials: Denial[]): string =>
  denials
    .map(
      (denial) =>
        `- [${denial.flow}] ${denial.functionName}: ${denial.call} -> ${denial.action} on ${denial.resource}: ${denial.reason}`,
    )
    .join('\n');
