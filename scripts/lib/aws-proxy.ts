import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { KMS_DEFAULT_QUOTAS } from '../../src/adapters/pacing';
import { keyIdOf } from '../../src/domain/key-ref';
import type { AccountRegion, SyntheticAccounts } from './kms-gaps/synthetic-accounts';
import type { KmsUsage } from './kms-gaps/usage-metrics';
import { createStaleReads } from './stale-reads';

/**
 * A loopback proxy in front of moto server that makes it behave more like AWS under load:
 * per-call latency, per-API request-rate limits answered the way KMS answers them (HTTP 400
 * `ThrottlingException`), and faults injected per API and per call index. It counts calls
 * per API and keeps a log of them. Listens on 127.0.0.1 only.
 */

export type FaultKind = 'http-500' | 'http-503' | 'connection-reset' | 'slow';

export interface ProxyOptions {
  /** moto server's endpoint. */
  target: string;
  latencyMs?: number;
  jitterMs?: number;
  /** Requests per second per API (e.g. `{ ListKeyRotations: 100 }`), already scaled as wanted. */
  rateLimits?: Record<string, number>;
  /**
   * The account's KMS calls (`kmsUsage`, scripts/lib/kms-gaps/usage-metrics.ts): every KMS call the
   * proxy answers is recorded there, and its simulated other callers take their calls of each
   * API's limit first, every second, so that only the rest is left to the callers of the proxy.
   * The `usageMetricsGap` answers CloudWatch's AWS/Usage CallCount from it.
   */
  usage?: KmsUsage;
  /** How long a `slow` fault holds the answer, AWS having acted: set it above the client's timeout. */
  slowMs?: number;
  /**
   * Answer the audit's KMS reads for this many synthetic symmetric keys (every other one with
   * rotation on) instead of asking moto, whose single Python process cannot serve KMS's
   * request rates: fleet-scale benchmarks then measure the audit and the quotas, not moto.
   */
  syntheticKeys?: number;
  /**
   * A simulated organization (scripts/lib/kms-gaps/synthetic-accounts.ts): the synthetic KMS answers
   * are those of the caller's account-Region (its own number of keys, its account and Region in
   * their ARNs), and `rateLimits` hold per account-Region, as KMS's quotas do. Its gap (learning
   * accounts from AssumeRole answers) is asked before `gaps`. Takes the place of `syntheticKeys`.
   */
  syntheticAccounts?: SyntheticAccounts;
  /** KMS and tagging-API reads may answer with the state of up to this many ms earlier (see stale-reads.ts). */
  staleReadsMs?: number;
  /**
   * Looks at each request before it is forwarded and at its answer after, and adds what it finds
   * to the call's record as `detail` (the authorization test's recorder, which reads key state
   * from moto directly). Not consulted for faults, throttles or synthetic answers.
   */
  inspector?: CallInspector;
  /**
   * What moto lacks, filled in the proxy (docs/kms-facts.md#moto): each gap may answer a call moto
   * cannot serve (an API it does not implement) and amend the answer to one it serves (a field it
   * leaves out). Gaps are asked in order; the first answer wins, every amendment applies. Calls
   * a gap answers are inspected and recorded like forwarded ones (outcome `filled`).
   */
  gaps?: readonly ApiGap[];
}

/** A call as a gap sees it: the API, the request's JSON text, and the Region it is signed for. */
export interface GapCall {
  api: string;
  body: string;
  region?: string;
  /** moto's endpoint, for a gap that needs to read what moto holds. */
  target: string;
  /** The access key id the request is signed with (who called). */
  caller?: string;
}

/** One thing moto does not do, done in the proxy. */
export interface ApiGap {
  /** The answer to a call moto cannot serve (awsJson 1.1, status 200 unless given), or undefined to forward it. */
  answer?(
    call: GapCall,
  ): Promise<{ status?: number; body: object } | undefined> | { status?: number; body: object } | undefined;
  /** moto's answer rewritten (its JSON text), or undefined to leave it as it is. */
  amend?(call: GapCall, answer: { status?: number; body: string }): Promise<string | undefined> | string | undefined;
}

/** What an inspector sees of a request. */
export interface InspectedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  api: string;
  /** The access key id it is signed with. */
  caller?: string;
  /** The service name of its SigV4 credential scope, e.g. `kms`, `sns`, `tagging`. */
  signingService?: string;
}

export interface CallInspector {
  /** Before forwarding: returns what to keep for `after`. */
  before(request: InspectedRequest): Promise<unknown>;
  /** After the answer: returns the record's `detail`. */
  after(request: InspectedRequest, kept: unknown, answer: { status?: number; body: string }): unknown;
}

export interface CallRecord {
  api: string;
  startedAt: number;
  endedAt: number;
  outcome: 'forwarded' | 'filled' | 'throttled' | 'stale' | FaultKind;
  /** The key a KMS call names (`TargetKeyId`, else `KeyId`), an ARN reduced to its key id. */
  keyId?: string;
  /** The HTTP status the caller got; none when its connection was reset or it had given up (a client timeout). */
  status?: number;
  /** The access key id the request is signed with (SigV4 `Authorization` header): who called. */
  caller?: string;
  /** What the proxy's inspector found out about the call, if it has one. */
  detail?: unknown;
}

/** The access key id and service of a SigV4 `Authorization` header (`... Credential=<key>/<date>/<region>/<service>/aws4_request, ...`). */
export const signerOf = (headers: IncomingMessage['headers']): { caller?: string; signingService?: string } => {
  const authorization = headers.authorization;
  if (typeof authorization !== 'string') return {};
  const match = /Credential=([^/,\s]+)\/[^/]+\/[^/]+\/([^/]+)\//.exec(authorization);
  return match ? { caller: match[1], signingService: match[2] } : {};
};

/** The Region of a SigV4 `Authorization` header's credential scope. */
export const signedRegionOf = (headers: IncomingMessage['headers']): string | undefined => {
  const authorization = headers.authorization;
  if (typeof authorization !== 'string') return undefined;
  return /Credential=[^/,\s]+\/[^/]+\/([^/]+)\//.exec(authorization)?.[1];
};

export interface AwsProxy {
  endpoint: string;
  /** Calls per API, faults and throttles included. */
  counts(): Record<string, number>;
  calls(): CallRecord[];
  throttled(): number;
  /**
   * Resolves once no request is being answered: a `slow` fault's answer is still held after the
   * caller gave up on it, and a check made before then would race it.
   */
  idle(): Promise<void>;
  /** The `index`-th call (1-based) of `api` from now on gets `fault`. */
  injectFault(api: string, index: number, fault: FaultKind): void;
  reset(): void;
  setLatency(latencyMs: number, jitterMs?: number): void;
  stop(): Promise<void>;
}

/**
 * KMS's request quotas per API (docs/kms-facts.md#request-quotas, the table the audit paces itself by),
 * times `scale`: 0.1 runs a test at a tenth of the real rates.
 */
export const kmsQuotaLimits = (scale = 1): Record<string, number> =>
  Object.fromEntries(Object.entries(KMS_DEFAULT_QUOTAS).map(([api, rate]) => [api, rate * scale]));

/**
 * REST APIs the functions call, by the service of the request's signature, method and path:
 * Lambda's Invoke, Security Hub's findings, S3's PutObject (path-style, as against an emulator; a
 * virtual-hosted request names its bucket in the host, and its path is the object key alone).
 */
export const REST_APIS: readonly { service: string; method: string; path: RegExp; api: string }[] = [
  { service: 'lambda', method: 'POST', path: /^\/2015-03-31\/functions\/[^/]+\/invocations(?:[?/]|$)/, api: 'Invoke' },
  { service: 'securityhub', method: 'POST', path: /^\/findings\/import\/?(?:\?|$)/, api: 'BatchImportFindings' },
  { service: 'securityhub', method: 'POST', path: /^\/findings\/?(?:\?|$)/, api: 'GetFindings' },
  { service: 's3', method: 'PUT', path: /^\/[^/?]+\/[^?]+/, api: 'PutObject' },
];

/** The API a request calls: `X-Amz-Target` for JSON protocols, `Action` for query protocols, method + path for REST (`REST_APIS`). */
export const apiOf = (
  headers: IncomingMessage['headers'],
  body: string,
  rest?: { method?: string; url?: string },
): string => {
  const target = headers['x-amz-target'];
  if (typeof target === 'string') return target.slice(target.lastIndexOf('.') + 1);
  const action = /(?:^|&)Action=([A-Za-z]+)/.exec(body)?.[1];
  if (action) return action;
  const service = signerOf(headers).signingService;
  const route = REST_APIS.find(
    (candidate) =>
      candidate.service === service && candidate.method === rest?.method && candidate.path.test(rest?.url ?? ''),
  );
  return route?.api ?? 'Other';
};

/** The key a JSON-protocol request names: `TargetKeyId` (UpdateAlias, CreateAlias), else `KeyId`. */
export const keyNamedIn = (body: string): string | undefined => {
  if (!body.startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(body) as { TargetKeyId?: unknown; KeyId?: unknown };
    const named = parsed.TargetKeyId ?? parsed.KeyId;
    return typeof named === 'string' ? keyIdOf(named) : undefined;
  } catch {
    return undefined;
  }
};

class RateLimiter {
  private readonly windows = new Map<string, { second: number; used: number }>();

  constructor(
    private readonly limits: Record<string, number>,
    private readonly others: (api: string) => number = () => 0,
  ) {}

  /**
   * Fixed one-second windows, as KMS's quotas are stated; other callers' calls taken from each first.
   * Each `scope` (an account-Region) has windows of its own.
   */
  allow(api: string, now: number, scope = ''): boolean {
    const quota = this.limits[api];
    if (quota === undefined) return true;
    const limit = quota - this.others(api);
    const second = Math.floor(now / 1000);
    const windowKey = `${scope}|${api}`;
    const window = this.windows.get(windowKey);
    if (!window || window.second !== second) {
      this.windows.set(windowKey, { second, used: 1 });
      return limit >= 1;
    }
    window.used += 1;
    return window.used <= limit;
  }
}

const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const startAwsProxy = async (options: ProxyOptions): Promise<AwsProxy> => {
  const target = new URL(options.target);
  let latencyMs = options.latencyMs ?? 0;
  let jitterMs = options.jitterMs ?? 0;
  const limiter = new RateLimiter(options.rateLimits ?? {}, (api) => options.usage?.othersPerSecond(api) ?? 0);
  let counts: Record<string, number> = {};
  let records: CallRecord[] = [];
  let faults = new Map<string, Map<number, FaultKind>>();
  let throttles = 0;
  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];
  const staleReads = options.staleReadsMs ? createStaleReads(options.staleReadsMs) : undefined;
  /** The synthetic fleet's answer to a KMS read: the caller's account-Region's, or the one fleet's. */
  const syntheticAnswerOf = (
    api: string,
    text: string,
    service: string | undefined,
    caller: string | undefined,
    region: string | undefined,
  ): object | undefined => {
    const organization = options.syntheticAccounts;
    if (organization) {
      if (service !== 'kms') return undefined;
      const location = organization.locate(caller, region);
      return syntheticKmsAnswer(api, text, organization.keysIn(location), location);
    }
    return options.syntheticKeys ? syntheticKmsAnswer(api, text, options.syntheticKeys) : undefined;
  };

  /** The caller has given up on its request (a client timeout): it gets nothing more. */
  const gone = (req: IncomingMessage, res: ServerResponse) => res.destroyed || req.socket.destroyed;

  /**
   * Passes the request on to AWS and its answer back; `holdMs` holds the answer that long first
   * (a `slow` fault: AWS has acted, the caller has not heard).
   */
  const forward = (
    req: IncomingMessage,
    body: Buffer,
    res: ServerResponse,
    holdMs: number,
    amend?: (answer: { status?: number; body: string }) => Promise<string | undefined>,
  ): Promise<{ status?: number; body: string }> =>
    new Promise((resolve) => {
      const upstream = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: target.host },
        },
        (answer) => {
          const chunks: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => chunks.push(chunk));
          answer.on('error', () => resolve({ body: '' }));
          answer.on('end', () => {
            void sleep(holdMs).then(async () => {
              const received = Buffer.concat(chunks);
              const amended = amend
                ? await amend({ status: answer.statusCode, body: received.toString('utf8') })
                : undefined;
              const answered = amended === undefined ? received : Buffer.from(amended, 'utf8');
              if (!gone(req, res)) {
                const headers = { ...answer.headers };
                if (amended !== undefined) {
                  delete headers['content-length'];
                  delete headers['x-amz-crc32'];
                }
                res.writeHead(answer.statusCode ?? 502, headers);
                res.end(answered);
              }
              resolve({ status: answer.statusCode, body: answered.toString('utf8') });
            });
          });
        },
      );
      upstream.on('error', () => {
        if (!gone(req, res) && !res.headersSent) {
          res.writeHead(502);
          res.end();
        }
        resolve({ body: '' });
      });
      upstream.end(body);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const startedAt = performance.now();
    const body = await readBody(req);
    const text = body.toString('utf8');
    const api = apiOf(req.headers, text, { method: req.method, url: req.url });
    counts[api] = (counts[api] ?? 0) + 1;
    const fault = faults.get(api)?.get(counts[api]);
    const keyId = keyNamedIn(text);
    const signer = signerOf(req.headers);
    let detail: unknown;
    const record = (outcome: CallRecord['outcome']) =>
      records.push({
        api,
        startedAt,
        endedAt: performance.now(),
        outcome,
        ...(keyId ? { keyId } : {}),
        ...(res.headersSent ? { status: res.statusCode } : {}),
        ...(signer.caller ? { caller: signer.caller } : {}),
        ...(detail !== undefined ? { detail } : {}),
      });

    if (latencyMs > 0 || jitterMs > 0) await sleep(latencyMs + Math.random() * jitterMs);
    if (fault === 'connection-reset') {
      record(fault);
      req.socket.destroy();
      return;
    }
    if (fault === 'http-500' || fault === 'http-503') {
      const status = fault === 'http-500' ? 500 : 503;
      const type = fault === 'http-500' ? 'KMSInternalException' : 'ServiceUnavailable';
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({ __type: type, message: `injected ${fault}` }));
      record(fault);
      return;
    }
    const signedRegion = signedRegionOf(req.headers);
    const scope = options.syntheticAccounts?.scopeOf(signer.caller, signedRegion) ?? '';
    if (!limiter.allow(api, Date.now(), scope)) {
      throttles += 1;
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(
        JSON.stringify({
          __type: 'ThrottlingException',
          message: 'You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.',
        }),
      );
      record('throttled');
      return;
    }
    if (staleReads?.intercept(req, res, api, text)) {
      record('stale');
      return;
    }
    const synthetic = syntheticAnswerOf(api, text, signer.signingService, signer.caller, signedRegion);
    const holdMs = fault === 'slow' ? (options.slowMs ?? 5_000) : 0;
    if (synthetic) {
      await sleep(holdMs);
      if (!gone(req, res)) {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(synthetic));
      }
      record(fault ?? 'forwarded');
      options.usage?.record(api, Date.now());
      return;
    }
    const gaps = [...(options.syntheticAccounts ? [options.syntheticAccounts.gap] : []), ...(options.gaps ?? [])];
    const call: GapCall = {
      api,
      body: text,
      region: signedRegion,
      target: options.target,
      ...(signer.caller ? { caller: signer.caller } : {}),
    };
    let filled: { status?: number; body: object } | undefined;
    for (const gap of gaps) {
      filled = await gap.answer?.(call);
      if (filled) break;
    }
    const amend = gaps.some((gap) => gap.amend)
      ? async (answer: { status?: number; body: string }) => {
          let current = answer;
          let changed = false;
          for (const gap of gaps) {
            const amended = await gap.amend?.(call, current);
            if (amended !== undefined) {
              current = { status: current.status, body: amended };
              changed = true;
            }
          }
          return changed ? current.body : undefined;
        }
      : undefined;
    const respond = async (): Promise<{ status?: number; body: string }> => {
      if (!filled) return forward(req, body, res, holdMs, amend);
      await sleep(holdMs);
      const status = filled.status ?? 200;
      const answered = JSON.stringify(filled.body);
      if (!gone(req, res)) {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(answered);
      }
      return { status, body: answered };
    };
    if (options.inspector) {
      const inspected: InspectedRequest = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body: text,
        api,
        ...signer,
      };
      const kept = await options.inspector.before(inspected);
      const answer = await respond();
      detail = options.inspector.after(inspected, kept, answer);
    } else {
      await respond();
    }
    record(fault ?? (filled ? 'filled' : 'forwarded'));
    if (signer.signingService === 'kms') options.usage?.record(api, Date.now());
  };

  const server: Server = createServer((req, res) => {
    inFlight += 1;
    handle(req, res)
      .catch(() => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      })
      .finally(() => {
        inFlight -= 1;
        if (inFlight === 0) {
          const waiters = idleWaiters;
          idleWaiters = [];
          for (const wake of waiters) wake();
        }
      });
  });
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    calls: () => [...records],
    throttled: () => throttles,
    idle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => void idleWaiters.push(resolve))),
    injectFault: (api, index, fault) => {
      const perApi = faults.get(api) ?? new Map<number, FaultKind>();
      perApi.set((counts[api] ?? 0) + index, fault);
      faults.set(api, perApi);
    },
    reset: () => {
      counts = {};
      records = [];
      faults = new Map();
      throttles = 0;
    },
    setLatency: (latency, jitter = 0) => {
      latencyMs = latency;
      jitterMs = jitter;
    },
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};

const syntheticKeyId = (index: number): string => `5e1f0000-0000-4000-8000-${String(index).padStart(12, '0')}`;
const syntheticIndex = (keyId: string): number => Number(keyId.split('key/').pop()?.split('-').pop());

/** KMS's answers (awsJson 1.1, dates as epoch seconds) for a fleet of `count` synthetic keys. */
const SYNTHETIC_APIS = new Set([
  'ListKeys',
  'ListAliases',
  'DescribeKey',
  'ListResourceTags',
  'GetKeyRotationStatus',
  'ListKeyRotations',
]);

/** KMS's answer to `api` for `count` synthetic keys of `location` (exported for its unit test). */
export const syntheticKmsAnswer = (
  api: string,
  body: string,
  count: number,
  location: AccountRegion = { account: '123456789012', region: 'us-east-1' },
): object | undefined => {
  if (!SYNTHETIC_APIS.has(api)) return undefined;
  const arnOf = (keyId: string) => `arn:aws:kms:${location.region}:${location.account}:key/${keyId}`;
  const input = JSON.parse(body || '{}') as { KeyId?: string; Marker?: string; Limit?: number };
  const created = Date.parse('2026-06-01T00:00:00Z') / 1000;
  switch (api) {
    case 'ListKeys': {
      const start = Number(input.Marker ?? 0);
      const end = Math.min(count, start + (input.Limit ?? 1000));
      const keys = Array.from({ length: end - start }, (_, offset) => {
        const keyId = syntheticKeyId(start + offset);
        return { KeyId: keyId, KeyArn: arnOf(keyId) };
      });
      return end < count ? { Keys: keys, Truncated: true, NextMarker: String(end) } : { Keys: keys, Truncated: false };
    }
    case 'ListAliases':
      return { Aliases: [], Truncated: false };
    case 'DescribeKey': {
      const keyId = syntheticKeyId(syntheticIndex(input.KeyId ?? ''));
      return {
        KeyMetadata: {
          KeyId: keyId,
          Arn: arnOf(keyId),
          KeyState: 'Enabled',
          Enabled: true,
          KeySpec: 'SYMMETRIC_DEFAULT',
          KeyUsage: 'ENCRYPT_DECRYPT',
          Origin: 'AWS_KMS',
          KeyManager: 'CUSTOMER',
          CreationDate: created,
        },
      };
    }
    case 'ListResourceTags':
      return { Tags: [], Truncated: false };
    case 'GetKeyRotationStatus':
      return { KeyRotationEnabled: syntheticIndex(input.KeyId ?? '') % 2 === 0, RotationPeriodInDays: 365 };
    case 'ListKeyRotations':
      return { Rotations: [], Truncated: false };
    default:
      return undefined;
  }
};
