import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DescribeKeyCommand,
  GetKeyLastUsageCommand,
  KMSClient,
  ListKeyRotationsCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type AwsProxy,
  apiOf,
  type InspectedRequest,
  keyNamedIn,
  kmsQuotaLimits,
  signerOf,
  startAwsProxy,
} from '../../../scripts/lib/aws-proxy';
import { kmsUsage } from '../../../scripts/lib/kms-gaps/usage-metrics';
import { clientOptions } from '../../../src/adapters/aws-clients';
import { KMS_DEFAULT_QUOTAS } from '../../../src/adapters/pacing';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const KEY_ARN = `arn:aws:kms:us-east-1:111122223333:key/${KEY_ID}`;

/**
 * The proxy the fault tests and benchmarks stand on, in front of a stub upstream that answers
 * every request with an empty JSON object and counts what reached it; driven by a real KMS
 * client, so that what the proxy answers is read the way the service's own code reads it.
 */
describe('Function: startAwsProxy', () => {
  let upstream: Server;
  let reached: string[];
  let proxy: AwsProxy | undefined;

  beforeEach(async () => {
    reached = [];
    upstream = createServer((req, res) => {
      reached.push(String(req.headers['x-amz-target']));
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    vi.useRealTimers();
    await proxy?.stop();
    proxy = undefined;
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  const start = async (options: Omit<Parameters<typeof startAwsProxy>[0], 'target'> = {}) => {
    proxy = await startAwsProxy({ target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, ...options });
    return proxy;
  };

  const kmsThrough = (endpoint: string, requestTimeout = 5_000) =>
    new KMSClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
      // The service's own client options: a slow answer must fail the call, as it does in the functions.
      ...clientOptions(requestTimeout),
    });

  it('scales the KMS quota table: a tenth of the real rates is a tenth of every quota', () => {
    const tenth = kmsQuotaLimits(0.1);

    expect(Object.keys(tenth)).toEqual(Object.keys(KMS_DEFAULT_QUOTAS));
    expect(tenth.ListKeyRotations).toBeCloseTo((KMS_DEFAULT_QUOTAS.ListKeyRotations as number) / 10);
    expect(tenth.DescribeKey).toBeCloseTo((KMS_DEFAULT_QUOTAS.DescribeKey as number) / 10);
    expect(kmsQuotaLimits()).toEqual(KMS_DEFAULT_QUOTAS);
  });

  it('answers calls past an API quota within one second as KMS does (HTTP 400 ThrottlingException), and counts them', async () => {
    // One frozen second: every call falls into the same quota window.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-12-01T00:00:00.000Z'));
    const { endpoint, throttled, counts } = await start({ rateLimits: kmsQuotaLimits(0.1) });
    const kms = kmsThrough(endpoint);
    const quota = (KMS_DEFAULT_QUOTAS.ListKeyRotations as number) / 10;

    const outcomes = await Promise.allSettled(
      Array.from({ length: quota + 5 }, () => kms.send(new ListKeyRotationsCommand({ KeyId: KEY_ID }))),
    );

    const rejected = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason] : []));
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(quota);
    expect(rejected).toHaveLength(5);
    for (const error of rejected) {
      expect(error).toMatchObject({ name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
    }
    expect(throttled()).toBe(5);
    expect(counts()).toEqual({ ListKeyRotations: quota + 5 });
    expect(reached).toHaveLength(quota);
    // Another API has a quota of its own.
    await expect(kms.send(new DescribeKeyCommand({ KeyId: KEY_ID }))).resolves.toBeDefined();
  });

  it('leaves to its callers only what the simulated other callers leave of each quota, and records what it answered for the usage metrics', async () => {
    // One frozen second; other callers take 30% of ListKeyRotations' 10 a second (a tenth of the quota).
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-12-01T00:00:00.000Z'));
    const limits = kmsQuotaLimits(0.1);
    const usage = kmsUsage(limits, 0.3);
    const { endpoint, throttled } = await start({ rateLimits: limits, usage });
    const kms = kmsThrough(endpoint);

    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, () => kms.send(new ListKeyRotationsCommand({ KeyId: KEY_ID }))),
    );

    // 7 of 10 answered, 3 throttled: the other callers' 3 slots were not there to take.
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(7);
    expect(throttled()).toBe(3);
    // The second's usage: the 7 answered calls plus the other callers' 3.
    const second = Date.parse('2026-12-01T00:00:00.000Z');
    expect(usage.callsIn('ListKeyRotations', second, second + 1000)).toBe(10);
  });

  it('fills what the upstream lacks: a gap answers an API it does not serve, another amends an answer it gives; both are recorded and inspected', async () => {
    const seen: string[] = [];
    const { endpoint, calls } = await start({
      gaps: [
        {
          answer: ({ api, body, region }) =>
            api === 'GetKeyLastUsage'
              ? { body: { KeyId: JSON.parse(body).KeyId, TrackingStartDate: 1_700_000_000, Region: region } }
              : undefined,
        },
        {
          amend: ({ api }, answer) =>
            api === 'DescribeKey'
              ? JSON.stringify({
                  ...JSON.parse(answer.body),
                  KeyMetadata: { KeyId: KEY_ID, CurrentKeyMaterialId: 'm-1' },
                })
              : undefined,
        },
      ],
      inspector: {
        before: async ({ api }) => api,
        after: (_request, kept, answer) => {
          seen.push(`${String(kept)}:${answer.status}`);
          return kept;
        },
      },
    });
    const kms = kmsThrough(endpoint);

    const usage = await kms.send(new GetKeyLastUsageCommand({ KeyId: KEY_ID }));
    const described = await kms.send(new DescribeKeyCommand({ KeyId: KEY_ID }));
    await kms.send(new ListKeyRotationsCommand({ KeyId: KEY_ID }));

    expect(usage.KeyId).toBe(KEY_ID);
    expect(usage.TrackingStartDate).toEqual(new Date(1_700_000_000_000));
    expect(described.KeyMetadata?.CurrentKeyMaterialId).toBe('m-1');
    // The answered call never reached the upstream; the amended and the untouched ones did.
    expect(reached).toEqual(['TrentService.DescribeKey', 'TrentService.ListKeyRotations']);
    expect(calls().map(({ api, outcome, status }) => [api, outcome, status])).toEqual([
      ['GetKeyLastUsage', 'filled', 200],
      ['DescribeKey', 'forwarded', 200],
      ['ListKeyRotations', 'forwarded', 200],
    ]);
    expect(seen).toEqual(['GetKeyLastUsage:200', 'DescribeKey:200', 'ListKeyRotations:200']);
  });

  it('injects a fault at the n-th call of one API only, and forwards the calls around it', async () => {
    const { endpoint, calls } = await start();
    const kms = kmsThrough(endpoint);
    proxy?.injectFault('DescribeKey', 2, 'http-503');
    proxy?.injectFault('DescribeKey', 3, 'http-500');

    const first = kms.send(new DescribeKeyCommand({ KeyId: KEY_ID }));
    await expect(first).resolves.toBeDefined();
    await expect(kms.send(new DescribeKeyCommand({ KeyId: KEY_ID }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 503 },
    });
    await expect(kms.send(new DescribeKeyCommand({ KeyId: KEY_ID }))).rejects.toMatchObject({
      name: 'KMSInternalException',
      $metadata: { httpStatusCode: 500 },
    });
    await expect(kms.send(new DescribeKeyCommand({ KeyId: KEY_ID }))).resolves.toBeDefined();

    expect(calls().map(({ api, outcome, status }) => [api, outcome, status])).toEqual([
      ['DescribeKey', 'forwarded', 200],
      ['DescribeKey', 'http-503', 503],
      ['DescribeKey', 'http-500', 500],
      ['DescribeKey', 'forwarded', 200],
    ]);
    expect(reached).toHaveLength(2);
  });

  it('resets the connection of a faulted call: the client gets a network error, no answer', async () => {
    const { endpoint, calls } = await start();
    proxy?.injectFault('DescribeKey', 1, 'connection-reset');

    await expect(kmsThrough(endpoint).send(new DescribeKeyCommand({ KeyId: KEY_ID }))).rejects.toThrow();

    expect(calls()).toEqual([expect.objectContaining({ api: 'DescribeKey', outcome: 'connection-reset' })]);
    expect(calls()[0]?.status).toBeUndefined();
    expect(reached).toEqual([]);
  });

  it('holds the answer of a slow call past the client timeout, which fails the call though AWS has acted; idle() waits for it', async () => {
    const { endpoint, calls } = await start({ slowMs: 400 });
    proxy?.injectFault('UpdateAlias', 1, 'slow');

    await expect(
      kmsThrough(endpoint, 100).send(new UpdateAliasCommand({ AliasName: 'alias/app', TargetKeyId: KEY_ID })),
    ).rejects.toMatchObject({ name: 'TimeoutError' });
    // AWS got the request at once: only its answer is late.
    expect(reached).toEqual(['TrentService.UpdateAlias']);
    expect(calls()).toEqual([]);
    await proxy?.idle();

    expect(calls()).toEqual([expect.objectContaining({ api: 'UpdateAlias', outcome: 'slow', keyId: KEY_ID })]);
    // The caller had given up: it got no status.
    expect(calls()[0]?.status).toBeUndefined();
  });

  it('records the key each call names, a key ARN reduced to its id, and forgets everything on reset', async () => {
    const { endpoint, calls, counts } = await start();
    const kms = kmsThrough(endpoint);

    await kms.send(new DescribeKeyCommand({ KeyId: KEY_ARN }));
    await kms.send(new UpdateAliasCommand({ AliasName: 'alias/app', TargetKeyId: KEY_ID }));

    expect(calls().map(({ api, keyId }) => [api, keyId])).toEqual([
      ['DescribeKey', KEY_ID],
      ['UpdateAlias', KEY_ID],
    ]);
    proxy?.reset();
    expect(calls()).toEqual([]);
    expect(counts()).toEqual({});
  });

  it('records who called (the access key id of the SigV4 signature) and what an inspector adds', async () => {
    const seen: InspectedRequest[] = [];
    const { endpoint, calls } = await start({
      inspector: {
        before: async (request) => {
          seen.push(request);
          return request.api;
        },
        after: (_request, kept, answer) => ({ kept, status: answer.status, body: answer.body }),
      },
    });
    const kms = new KMSClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIAROTATEXXXXXX1A2B', secretAccessKey: 'test' },
      maxAttempts: 1,
    });

    await kms.send(new DescribeKeyCommand({ KeyId: KEY_ARN }));

    expect(seen.map(({ api, caller, signingService }) => [api, caller, signingService])).toEqual([
      ['DescribeKey', 'AKIAROTATEXXXXXX1A2B', 'kms'],
    ]);
    expect(calls()).toEqual([
      expect.objectContaining({
        api: 'DescribeKey',
        keyId: KEY_ID,
        caller: 'AKIAROTATEXXXXXX1A2B',
        detail: { kept: 'DescribeKey', status: 200, body: '{}' },
      }),
    ]);
    expect(signerOf({})).toEqual({});
  });
});

describe('Function: apiOf', () => {
  it('reads the API from X-Amz-Target (JSON protocols) or Action (query protocols)', () => {
    expect(apiOf({ 'x-amz-target': 'TrentService.ListKeys' }, '{}')).toBe('ListKeys');
    expect(apiOf({}, 'Action=Publish&Version=2010-03-31&TopicArn=x')).toBe('Publish');
    expect(apiOf({}, 'nothing to go by')).toBe('Other');
  });

  it('reads a REST API from the service that signed the request, its method and its path', () => {
    const signedFor = (service: string) => ({
      authorization: `AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261202/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=0`,
    });
    const securityHub = signedFor('securityhub');
    expect(apiOf(securityHub, '{"Findings":[]}', { method: 'POST', url: '/findings/import' })).toBe(
      'BatchImportFindings',
    );
    expect(apiOf(securityHub, '{"Filters":{}}', { method: 'POST', url: '/findings' })).toBe('GetFindings');
    expect(apiOf(securityHub, '{}', { method: 'POST', url: '/findings/batchupdate' })).toBe('Other');
    expect(apiOf(securityHub, '{}', { method: 'GET', url: '/findings' })).toBe('Other');
    expect(
      apiOf(signedFor('lambda'), '{}', { method: 'POST', url: '/2015-03-31/functions/audit-fn/invocations' }),
    ).toBe('Invoke');
    expect(
      apiOf(signedFor('s3'), 'a,b', { method: 'PUT', url: '/reports-bucket/audit-reports/a.csv?x-id=PutObject' }),
    ).toBe('PutObject');
    expect(apiOf(signedFor('s3'), '', { method: 'PUT', url: '/reports-bucket' })).toBe('Other');
    // The path alone decides nothing: a Security Hub path signed for another service is not Security Hub's.
    expect(apiOf(signedFor('lambda'), '{}', { method: 'POST', url: '/findings/import' })).toBe('Other');
  });
});

describe('Function: keyNamedIn', () => {
  it('prefers TargetKeyId, reduces a key ARN to its id, and ignores what is not JSON', () => {
    expect(keyNamedIn(JSON.stringify({ AliasName: 'alias/app', TargetKeyId: KEY_ARN, KeyId: 'other' }))).toBe(KEY_ID);
    expect(keyNamedIn(JSON.stringify({ KeyId: 'alias/app' }))).toBe('alias/app');
    expect(keyNamedIn(JSON.stringify({ Limit: 10 }))).toBeUndefined();
    expect(keyNamedIn('Action=Publish')).toBeUndefined();
    expect(keyNamedIn('{not json')).toBeUndefined();
  });
});
