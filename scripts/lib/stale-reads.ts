import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';

/**
 * Stale reads for the loopback proxy: KMS is eventually consistent, moto never is.
 *
 * AWS documents that "the AWS KMS API follows an eventual consistency model": a change "typically"
 * takes "less than a few seconds" to be seen everywhere, "in some cases" minutes
 * (https://docs.aws.amazon.com/kms/latest/developerguide/programming-eventual-consistency.html),
 * and that tag and alias changes may take up to five minutes to affect authorization
 * (https://docs.aws.amazon.com/kms/latest/developerguide/abac.html). A read made just after a
 * write may therefore answer with the state from before it.
 *
 * The model here: each answer to a read (per service, API and normalized request) is remembered
 * with the time it was given. A read whose same request was answered less than `windowMs` ago,
 * with a write made since, gets that remembered answer again (stale) instead of asking moto;
 * any other read is forwarded, and its answer remembered. So a read sees the state as it was up
 * to `windowMs` earlier, never older, and a request not seen before is answered fresh. The
 * proxy's `reset()` clears its call log, not these answers: they are the state of the world.
 */

/** What a KMS or tagging-API read is answered from; everything else is passed through. */
const READS: Record<string, ReadonlySet<string>> = {
  TrentService: new Set([
    'DescribeKey',
    'ListResourceTags',
    'ListAliases',
    'ListKeys',
    'GetKeyRotationStatus',
    'GetKeyPolicy',
    'ListKeyRotations',
  ]),
  ResourceGroupsTaggingAPI_20170126: new Set(['GetResources', 'GetTagKeys', 'GetTagValues']),
};

/** Calls that change what those reads answer: after one, a remembered answer may be stale. */
const WRITES: Record<string, ReadonlySet<string>> = {
  TrentService: new Set([
    'CreateKey',
    'TagResource',
    'UntagResource',
    'CreateAlias',
    'UpdateAlias',
    'DeleteAlias',
    'EnableKeyRotation',
    'DisableKeyRotation',
    'RotateKeyOnDemand',
    'PutKeyPolicy',
    'EnableKey',
    'DisableKey',
    'ScheduleKeyDeletion',
    'CancelKeyDeletion',
    'UpdateKeyDescription',
    'ImportKeyMaterial',
    'DeleteImportedKeyMaterial',
    'ReplicateKey',
    'UpdatePrimaryRegion',
  ]),
  ResourceGroupsTaggingAPI_20170126: new Set(['TagResources', 'UntagResources']),
};

interface Answer {
  status: number;
  headers: OutgoingHttpHeaders;
  body: Buffer;
  /** When it was given (performance.now()). */
  at: number;
}

export interface StaleReads {
  /**
   * Called for each request before it is forwarded. Answers a read with its remembered, stale
   * answer and returns true; otherwise returns false, having arranged to remember the answer of a
   * read, or the time of a write, once `res` is sent.
   */
  intercept(req: IncomingMessage, res: ServerResponse, api: string, body: string): boolean;
}

/** The JSON request with its members in one order, so that the same request is one key. */
const normalized = (body: string): string => {
  const sorted = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sorted);
    if (typeof value === 'object' && value !== null) {
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((key) => [key, sorted((value as Record<string, unknown>)[key])]),
      );
    }
    return value;
  };
  try {
    return JSON.stringify(sorted(JSON.parse(body || '{}')));
  } catch {
    return body;
  }
};

const serviceOf = (req: IncomingMessage): string | undefined => {
  const target = req.headers['x-amz-target'];
  return typeof target === 'string' ? target.slice(0, target.lastIndexOf('.')) : undefined;
};

export const createStaleReads = (windowMs: number, now: () => number = () => performance.now()): StaleReads => {
  const answers = new Map<string, Answer>();
  let lastWrite = Number.NEGATIVE_INFINITY;

  /** Keeps what is sent on `res`, and hands it over once the answer is complete. */
  const capture = (res: ServerResponse, done: (answer: Omit<Answer, 'at'>) => void): void => {
    const chunks: Buffer[] = [];
    let headers: OutgoingHttpHeaders = {};
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.writeHead = ((...args: unknown[]) => {
      const given = args.find((arg) => typeof arg === 'object' && arg !== null && !Array.isArray(arg));
      if (given) headers = { ...(given as OutgoingHttpHeaders) };
      return writeHead(...args);
    }) as ServerResponse['writeHead'];
    res.end = ((...args: unknown[]) => {
      const [chunk] = args;
      if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) chunks.push(Buffer.from(chunk));
      return end(...args);
    }) as ServerResponse['end'];
    res.once('finish', () => done({ status: res.statusCode, headers, body: Buffer.concat(chunks) }));
  };

  return {
    intercept: (req, res, api, body) => {
      const service = serviceOf(req);
      if (service === undefined) return false;
      if (WRITES[service]?.has(api)) {
        // The write may be visible from when AWS gets it; reads answered before its answer came back may miss it.
        lastWrite = now();
        res.once('close', () => {
          lastWrite = now();
        });
        return false;
      }
      if (!READS[service]?.has(api)) return false;
      const key = `${service}.${api} ${normalized(body)}`;
      const remembered = answers.get(key);
      if (remembered && now() - remembered.at <= windowMs && lastWrite > remembered.at) {
        res.writeHead(remembered.status, remembered.headers);
        res.end(remembered.body);
        return true;
      }
      capture(res, (answer) => {
        // An error of AWS's own (5xx) says nothing of the state; a 4xx (not found, ...) does.
        if (answer.status < 500) answers.set(key, { ...answer, at: now() });
      });
      return false;
    },
  };
};
