/**
 * The authorization test's recorder: an inspector for the loopback proxy (`aws-proxy.ts`) that
 * adds to each call's record what an authorization decision needs and the plain call log lacks:
 * the IAM action, the request parameters that matter, the state of the key the call names just
 * before it (tags, key policy, spec), where an alias points now, the topic's key for a Publish,
 * and, per key, when the service itself wrote each tag (for KMS's ABAC delay).
 *
 * It reads that state from moto directly, never through the proxy, so that its reads are not
 * taken for the functions' calls.
 */
import {
  DescribeKeyCommand,
  GetKeyPolicyCommand,
  KMSClient,
  ListAliasesCommand,
  ListResourceTagsCommand,
} from '@aws-sdk/client-kms';
import { GetTopicAttributesCommand, SNSClient } from '@aws-sdk/client-sns';
import { type CallInspector, type InspectedRequest, signedRegionOf } from '../aws-proxy';

/** A key as it was just before a call. */
export interface KeySnapshot {
  keyId: string;
  arn: string;
  state: string;
  spec: string;
  usage: string;
  origin: string;
  manager: string;
  tags: Record<string, string>;
  /** The key policy, parsed; `undefined` if moto would not give it. */
  policy?: unknown;
}

/** What the recorder adds to a call's record. */
export interface CallDetail {
  /** Wall-clock time the call was made (epoch ms). */
  at: number;
  /** The IAM action, e.g. `kms:CreateKey`, `sns:Publish`, `lambda:InvokeFunction`. */
  action: string;
  /** The Region the call was signed for (`aws:RequestedRegion`); absent when it carried no SigV4 header. */
  region?: string;
  /** The request parameters that matter for authorization. */
  params: Record<string, unknown>;
  /** The key the call names (KeyId or TargetKeyId, aliases resolved), as it was just before it. */
  key?: KeySnapshot;
  /** The call named a key moto does not have: AWS answers NotFoundException before any authorization. */
  keyNotFound?: string;
  /** Alias calls: the key the alias points at now (before the call). */
  aliasTarget?: KeySnapshot;
  /** sns:Publish: the topic's KMS key just before the call, if the topic is encrypted. */
  topicKey?: KeySnapshot;
  /** CreateKey: the key it made. */
  created?: { keyId: string; arn: string };
  status?: number;
  /** The error type of a failed call (`__type` of a JSON answer, `<Code>` of a query answer). */
  errorType?: string;
}

/** One tag the service wrote on a key (TagResource, UntagResource, CreateKey Tags). */
export interface TagWrite {
  tagKey: string;
  /** Value before the write; absent if the key had no such tag (or did not exist). */
  previous?: string;
  /** Value after the write; absent for UntagResource. */
  value?: string;
  at: number;
}

/** A role session a caller got from `sts:AssumeRole` through the proxy: who signs with its access key id. */
export interface AssumedSession {
  /** The role assumed, as the request named it. */
  roleArn: string;
  sessionName: string;
  /** The access key id that signed the AssumeRole: the principal that assumed the role. */
  assumedBy?: string;
}

export interface CallRecorder extends CallInspector {
  /** Per key id: every tag the service wrote, oldest first. */
  tagHistory(): Record<string, TagWrite[]>;
  /** Access key id -> the role session it belongs to, learnt from the AssumeRole answers the proxy carried. */
  sessions(): Record<string, AssumedSession>;
  reset(): void;
}

/** IAM service prefix of a SigV4 signing name, where they differ. */
const IAM_PREFIX: Record<string, string> = { tagging: 'tag', monitoring: 'cloudwatch' };

const parseJson = (text: string): Record<string, unknown> => {
  if (!text.startsWith('{')) return {};
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return {};
  }
};

const parseQuery = (text: string): Record<string, string> => Object.fromEntries(new URLSearchParams(text).entries());

/** Lambda's REST path for Invoke: `/2015-03-31/functions/<name>/invocations`. */
const LAMBDA_INVOKE = /^\/2015-03-31\/functions\/([^/]+)\/invocations/;

/** The IAM action of a request and the parameters that matter for it. */
export const actionOf = (request: InspectedRequest): { action: string; params: Record<string, unknown> } => {
  const service = request.signingService ?? 'unknown';
  const prefix = IAM_PREFIX[service] ?? service;
  if (service === 'lambda') {
    const name = LAMBDA_INVOKE.exec(request.url)?.[1];
    return name
      ? { action: 'lambda:InvokeFunction', params: { FunctionName: decodeURIComponent(name) } }
      : { action: `lambda:${request.method} ${request.url}`, params: {} };
  }
  if (service === 'securityhub') {
    // REST: the proxy named the API from the method and path (`REST_APIS`). BatchImportFindings is
    // authorized per finding's product and account; GetFindings on the hub alone.
    if (request.api !== 'BatchImportFindings') return { action: `securityhub:${request.api}`, params: {} };
    const findings = parseJson(request.body).Findings;
    return {
      action: 'securityhub:BatchImportFindings',
      params: {
        Findings: (Array.isArray(findings) ? findings : []).map((finding: Record<string, unknown>) => ({
          Id: finding?.Id,
          ProductArn: finding?.ProductArn,
          AwsAccountId: finding?.AwsAccountId,
        })),
      },
    };
  }
  if (service === 's3') {
    // REST, path-style as against the emulator: PUT /<bucket>/<key>. The headers that S3's
    // condition keys read travel with it.
    const path = decodeURIComponent(request.url.split('?')[0] ?? '');
    const [, bucket = '', ...key] = path.split('/');
    const encryption = request.headers['x-amz-server-side-encryption'];
    return {
      action: `s3:${request.api}`,
      params: {
        Bucket: bucket,
        Key: key.join('/'),
        ...(typeof encryption === 'string' ? { ServerSideEncryption: encryption } : {}),
      },
    };
  }
  if (request.headers['x-amz-target'] !== undefined) {
    const body = parseJson(request.body);
    const pick = (...names: string[]) =>
      Object.fromEntries(names.filter((name) => body[name] !== undefined).map((name) => [name, body[name]]));
    return {
      action: `${prefix}:${request.api}`,
      params: pick(
        'KeyId',
        'TargetKeyId',
        'AliasName',
        'Tags',
        'TagKeys',
        'Policy',
        'BypassPolicyLockoutSafetyCheck',
        'KeySpec',
        'KeyUsage',
        'Origin',
        'Name',
        'Path',
        'QueueUrl',
        'TagFilters',
        'ResourceTypeFilters',
        'EncryptionContext',
        'TableName',
        'TransactItems',
        'PendingWindowInDays',
        'RoleArn',
        'RoleSessionName',
        'ChildId',
        'OrganizationalUnitId',
      ),
    };
  }
  // Query protocol (SNS): Action=Publish&TopicArn=...
  const query = parseQuery(request.body);
  const params: Record<string, unknown> = {};
  for (const name of ['TopicArn', 'TargetArn', 'QueueUrl', 'Name', 'RoleArn', 'RoleSessionName'])
    if (query[name]) params[name] = query[name];
  return { action: `${prefix}:${request.api}`, params };
};

const tagsAsRecord = (tags: unknown): Record<string, string> =>
  Array.isArray(tags)
    ? Object.fromEntries(
        tags
          .filter((tag): tag is { TagKey: string; TagValue?: string } => typeof tag?.TagKey === 'string')
          .map((tag) => [tag.TagKey, String(tag.TagValue ?? '')]),
      )
    : {};

const errorTypeOf = (body: string): string | undefined => {
  const json = parseJson(body);
  if (typeof json.__type === 'string') return json.__type.split('#').pop();
  return /<Code>([^<]+)<\/Code>/.exec(body)?.[1];
};

/** The credentials of an AssumeRole answer (STS's query XML, or JSON). */
export const assumedCredentialsOf = (
  body: string,
): { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined => {
  const json = parseJson(body);
  const fromJson = (json.Credentials ?? (json.AssumeRoleResult as Record<string, unknown> | undefined)?.Credentials) as
    | Record<string, string>
    | undefined;
  const field = (name: string) => fromJson?.[name] ?? new RegExp(`<${name}>([^<]+)</${name}>`).exec(body)?.[1];
  const accessKeyId = field('AccessKeyId');
  const secretAccessKey = field('SecretAccessKey');
  const sessionToken = field('SessionToken');
  if (!accessKeyId || !secretAccessKey) return undefined;
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
};

/** KMS APIs whose resource is `*` even when they carry a KeyId (ListAliases filters by it). */
const KMS_WITHOUT_KEY_RESOURCE = new Set(['ListAliases', 'ListKeys', 'CreateKey']);

/**
 * `clock` gives the time a call is taken to happen at (default `Date.now`): a test that runs flows
 * one after another can put them minutes apart, as they would be in an account, without waiting.
 */
export const createCallRecorder = (opts: { target: string; region: string; clock?: () => number }): CallRecorder => {
  const clock = opts.clock ?? Date.now;
  const config = {
    endpoint: opts.target,
    region: opts.region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  const kms = new KMSClient(config);
  const sns = new SNSClient(config);
  let history: Record<string, TagWrite[]> = {};
  /** Access key id -> the role session and its credentials (moto: they act in the role's account). */
  const sessions = new Map<string, AssumedSession & { secretAccessKey: string; sessionToken?: string }>();
  // A call signed for another Region (a multi-Region primary's replica, read where it lives) names a
  // key there; a call signed with a role session's key (a member role) names a key of that role's
  // account: the state is read there, with the same session's credentials.
  const kmsIn = new Map<string, KMSClient>([[`${opts.region} `, kms]]);
  const kmsFor = (region: string | undefined, caller?: string): KMSClient => {
    const session = caller ? sessions.get(caller) : undefined;
    const where = `${region ?? opts.region} ${session ? caller : ''}`;
    let client = kmsIn.get(where);
    if (!client) {
      client = new KMSClient({
        ...config,
        region: region ?? opts.region,
        ...(session && caller
          ? {
              credentials: {
                accessKeyId: caller,
                secretAccessKey: session.secretAccessKey,
                ...(session.sessionToken ? { sessionToken: session.sessionToken } : {}),
              },
            }
          : {}),
      });
      kmsIn.set(where, client);
    }
    return client;
  };

  const snapshot = async (keyRef: string, kms: KMSClient): Promise<KeySnapshot | undefined> => {
    let m: Record<string, string>;
    try {
      const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: keyRef }));
      m = KeyMetadata as unknown as Record<string, string>;
    } catch (error) {
      if ((error as Error).name === 'NotFoundException') return undefined;
      throw error;
    }
    const keyId = m.KeyId as string;
    const { Tags = [] } = await kms.send(new ListResourceTagsCommand({ KeyId: keyId }));
    let policy: unknown;
    try {
      const { Policy } = await kms.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default' }));
      policy = Policy ? JSON.parse(Policy) : undefined;
    } catch {
      policy = undefined;
    }
    return {
      keyId,
      arn: m.Arn as string,
      state: m.KeyState as string,
      spec: (m.KeySpec ?? 'SYMMETRIC_DEFAULT') as string,
      usage: (m.KeyUsage ?? 'ENCRYPT_DECRYPT') as string,
      origin: (m.Origin ?? 'AWS_KMS') as string,
      manager: (m.KeyManager ?? 'CUSTOMER') as string,
      tags: tagsAsRecord(Tags),
      policy,
    };
  };

  const aliasTargetOf = async (aliasName: string, kms: KMSClient): Promise<string | undefined> => {
    let marker: string | undefined;
    do {
      const page = await kms.send(new ListAliasesCommand({ Marker: marker }));
      const found = page.Aliases?.find((alias) => alias.AliasName === aliasName);
      if (found) return found.TargetKeyId;
      marker = page.Truncated ? page.NextMarker : undefined;
    } while (marker);
    return undefined;
  };

  interface Kept {
    at: number;
    action: string;
    region?: string;
    params: Record<string, unknown>;
    key?: KeySnapshot;
    keyNotFound?: string;
    aliasTarget?: KeySnapshot;
    topicKey?: KeySnapshot;
  }

  const before = async (request: InspectedRequest): Promise<Kept> => {
    const at = clock();
    const { action, params } = actionOf(request);
    const signedRegion = signedRegionOf(request.headers);
    const kept: Kept = { at, action, params, ...(signedRegion ? { region: signedRegion } : {}) };
    if (action.startsWith('kms:')) {
      const api = action.slice(4);
      const named = (params.TargetKeyId ?? params.KeyId) as string | undefined;
      const where = kmsFor(signedRegionOf(request.headers), request.caller);
      if (named && !KMS_WITHOUT_KEY_RESOURCE.has(api)) {
        const key = await snapshot(named, where);
        if (key) kept.key = key;
        else kept.keyNotFound = named;
      }
      if (typeof params.AliasName === 'string' && (api === 'UpdateAlias' || api === 'DeleteAlias')) {
        const target = await aliasTargetOf(params.AliasName, where);
        const targetKey = target ? await snapshot(target, where) : undefined;
        if (targetKey) kept.aliasTarget = targetKey;
      }
    }
    if (action === 'sns:Publish' && typeof params.TopicArn === 'string') {
      const { Attributes = {} } = await sns.send(new GetTopicAttributesCommand({ TopicArn: params.TopicArn }));
      if (Attributes.KmsMasterKeyId) {
        const topicKey = await snapshot(Attributes.KmsMasterKeyId, kms);
        if (topicKey) kept.topicKey = topicKey;
      }
    }
    return kept;
  };

  const remember = (keyId: string, write: TagWrite) => {
    history[keyId] ??= [];
    history[keyId].push(write);
  };

  const after: CallInspector['after'] = (request, keptValue, answer): CallDetail => {
    const kept = keptValue as Kept;
    const detail: CallDetail = { ...kept, ...(answer.status !== undefined ? { status: answer.status } : {}) };
    const ok = answer.status === 200;
    if (!ok) {
      const errorType = errorTypeOf(answer.body);
      if (errorType) detail.errorType = errorType;
      return detail;
    }
    if (kept.action === 'sts:AssumeRole') {
      const credentials = assumedCredentialsOf(answer.body);
      if (credentials && typeof kept.params.RoleArn === 'string') {
        sessions.set(credentials.accessKeyId, {
          roleArn: kept.params.RoleArn,
          sessionName: String(kept.params.RoleSessionName ?? ''),
          ...(request.caller ? { assumedBy: request.caller } : {}),
          secretAccessKey: credentials.secretAccessKey,
          ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}),
        });
      }
    }
    const requestTags = tagsAsRecord(kept.params.Tags);
    if (kept.action === 'kms:CreateKey') {
      const metadata = parseJson(answer.body).KeyMetadata as { KeyId?: string; Arn?: string } | undefined;
      if (metadata?.KeyId && metadata.Arn) {
        detail.created = { keyId: metadata.KeyId, arn: metadata.Arn };
        for (const [tagKey, value] of Object.entries(requestTags)) {
          remember(metadata.KeyId, { tagKey, value, at: kept.at });
        }
      }
    }
    if (kept.action === 'kms:TagResource' && kept.key) {
      for (const [tagKey, value] of Object.entries(requestTags)) {
        const previous = kept.key.tags[tagKey];
        remember(kept.key.keyId, { tagKey, value, at: kept.at, ...(previous !== undefined ? { previous } : {}) });
      }
    }
    if (kept.action === 'kms:UntagResource' && kept.key && Array.isArray(kept.params.TagKeys)) {
      for (const tagKey of kept.params.TagKeys as string[]) {
        const previous = kept.key.tags[tagKey];
        if (previous !== undefined) remember(kept.key.keyId, { tagKey, previous, at: kept.at });
      }
    }
    return detail;
  };

  return {
    before,
    after,
    tagHistory: () => structuredClone(history),
    sessions: () =>
      Object.fromEntries(
        [...sessions].map(([accessKeyId, { roleArn, sessionName, assumedBy }]) => [
          accessKeyId,
          { roleArn, sessionName, ...(assumedBy ? { assumedBy } : {}) },
        ]),
      ),
    reset: () => {
      history = {};
    },
  };
};
