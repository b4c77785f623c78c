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

export interface CallRecorder extends CallInspector {
  /** Per key id: every tag the service wrote, oldest first. */
  tagHistory(): Record<string, TagWrite[]>;
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
        'PendingWindowInDays',
      ),
    };
  }
  // Query protocol (SNS): Action=Publish&TopicArn=...
  const query = parseQuery(request.body);
  const params: Record<string, unknown> = {};
  for (const name of ['TopicArn', 'TargetArn', 'QueueUrl', 'Name']) if (query[name]) params[name] = query[name];
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
  // A call signed for another Region (a multi-Region primary's replica, read where it lives) names a key there.
  const kmsIn = new Map<string, KMSClient>([[opts.region, kms]]);
  const kmsFor = (region: string | undefined): KMSClient => {
    if (!region) return kms;
    let client = kmsIn.get(region);
    if (!client) {
      client = new KMSClient({ ...config, region });
      kmsIn.set(region, client);
    }
    return client;
  };
  let history: Record<string, TagWrite[]> = {};

  const snapshot = async (keyRef: string, inRegion?: string): Promise<KeySnapshot | undefined> => {
    const kms = kmsFor(inRegion);
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

  const aliasTargetOf = async (aliasName: string): Promise<string | undefined> => {
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
    params: Record<string, unknown>;
    key?: KeySnapshot;
    keyNotFound?: string;
    aliasTarget?: KeySnapshot;
    topicKey?: KeySnapshot;
  }

  const before = async (request: InspectedRequest): Promise<Kept> => {
    const at = clock();
    const { action, params } = actionOf(request);
    const kept: Kept = { at, action, params };
    if (action.startsWith('kms:')) {
      const api = action.slice(4);
      const named = (params.TargetKeyId ?? params.KeyId) as string | undefined;
      if (named && !KMS_WITHOUT_KEY_RESOURCE.has(api)) {
        const key = await snapshot(named, signedRegionOf(request.headers));
        if (key) kept.key = key;
        else kept.keyNotFound = named;
      }
      if (typeof params.AliasName === 'string' && (api === 'UpdateAlias' || api === 'DeleteAlias')) {
        const target = await aliasTargetOf(params.AliasName);
        const targetKey = target ? await snapshot(target) : undefined;
        if (targetKey) kept.aliasTarget = targetKey;
      }
    }
    if (action === 'sns:Publish' && typeof params.TopicArn === 'string') {
      const { Attributes = {} } = await sns.send(new GetTopicAttributesCommand({ TopicArn: params.TopicArn }));
      if (Attributes.KmsMasterKeyId) {
        const topicKey = await snapshot(Attributes.KmsMasterKeyId);
        if (topicKey) kept.topicKey = topicKey;
      }
    }
    return kept;
  };

  const remember = (keyId: string, write: TagWrite) => {
    history[keyId] ??= [];
    history[keyId].push(write);
  };

  const after: CallInspector['after'] = (_request, keptValue, answer): CallDetail => {
    const kept = keptValue as Kept;
    const detail: CallDetail = { ...kept, ...(answer.status !== undefined ? { status: answer.status } : {}) };
    const ok = answer.status === 200;
    if (!ok) {
      const errorType = errorTypeOf(answer.body);
      if (errorType) detail.errorType = errorType;
      return detail;
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
    reset: () => {
      history = {};
    },
  };
};
