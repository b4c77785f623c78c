import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DescribeKeyCommand, GetKeyPolicyCommand, KMSClient, ListAliasesCommand } from '@aws-sdk/client-kms';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import type { Context } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { clientOptions } from '../../../src/adapters/aws-clients';
import { callAws } from '../../../src/adapters/aws-errors';
import { invocationSignal, runInInvocation } from '../../../src/adapters/invocation';
import { observedHandler } from '../../../src/adapters/observed-handler';
import { paceKmsCalls } from '../../../src/adapters/pacing';
import { AwsServiceError } from '../../../src/domain/errors';
import { KEY_ID, REGION } from '../support/key-metadata';

/** What the fake KMS does with one operation: refuse it, fail it (the SDK retries a 500), or never answer. */
type Answer = 'deny' | 'fail' | 'hang';

const CONTEXT = { functionName: 'kms-rotation-test-audit' } as Context;
/** Far more than any test waits: a call still running after it was not cancelled. */
const STILL_RUNNING = 'still running';
const BOUND_MS = 5_000;

const servers: Server[] = [];

afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

/**
 * A fake KMS on 127.0.0.1 that answers each operation as told. It counts the requests it
 * receives per operation, and the hung ones whose client went away.
 */
const fakeKms = async (answers: Readonly<Record<string, Answer>>) => {
  const received: Record<string, number> = {};
  const dropped: Record<string, number> = {};
  const server = createServer((request, response) => {
    const operation = String(request.headers['x-amz-target']).replace('TrentService.', '');
    received[operation] = (received[operation] ?? 0) + 1;
    request.resume();
    const answer = answers[operation] ?? 'deny';
    if (answer === 'hang') {
      response.on('close', () => {
        dropped[operation] = (dropped[operation] ?? 0) + 1;
      });
      return;
    }
    const [status, type] = answer === 'deny' ? [400, 'AccessDeniedException'] : [500, 'KMSInternalException'];
    response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
    response.end(JSON.stringify({ __type: type, message: `${operation} ${answer}` }));
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, dropped };
};

/** A KMS client made as the handlers make theirs, many attempts allowed. */
const kmsAt = (endpoint: string, options: { retryMode?: string; retryStrategy?: ConfiguredRetryStrategy } = {}) =>
  new KMSClient({
    ...clientOptions(30_000),
    endpoint,
    region: REGION,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 20,
    ...options,
  });

/** One handler over `work`, framed as every handler of the service is. */
const handlerOf = <R>(work: () => Promise<R>) =>
  observedHandler(new Logger({ logLevel: 'SILENT' }), new Metrics({ namespace: 'test' }), 'Test failed', work);

const describeKey = (kms: KMSClient) =>
  callAws('DescribeKey', KEY_ID, () => kms.send(new DescribeKeyCommand({ KeyId: KEY_ID })));
const getKeyPolicy = (kms: KMSClient) =>
  callAws('GetKeyPolicy', KEY_ID, () => kms.send(new GetKeyPolicyCommand({ KeyId: KEY_ID, PolicyName: 'default' })));
const listAliases = (kms: KMSClient) =>
  callAws('ListAliases', KEY_ID, () => kms.send(new ListAliasesCommand({ KeyId: KEY_ID })));

/** Resolves once `condition` holds (polled). */
const until = async (condition: () => boolean): Promise<void> => {
  while (!condition()) await delay(5);
};

/** How `call` settled within the bound: its error, or `STILL_RUNNING`. */
const settlementOf = (call: Promise<unknown>): Promise<unknown> =>
  Promise.race([
    call.then(
      () => 'resolved',
      (error: unknown) => error,
    ),
    delay(BOUND_MS, STILL_RUNNING),
  ]);

/** The error a call left behind by its invocation rejects with. */
const cancelled = (operation: string) => ({
  name: 'AwsServiceError',
  operation,
  retryable: false,
  message: `${operation} on ${KEY_ID} was cancelled because the invocation that made it ended`,
});

describe('Function: observedHandler, when an invocation ends with AWS calls outstanding', () => {
  it('stops the SDK retries of a sibling call once the invocation has failed', async () => {
    // Prepare: DescribeKey fails with 500 (retried every 500 ms), GetKeyPolicy is refused at once.
    const { endpoint, received } = await fakeKms({ DescribeKey: 'fail', GetKeyPolicy: 'deny' });
    const kms = kmsAt(endpoint, { retryStrategy: new ConfiguredRetryStrategy(20, 500) });
    let outstanding: Promise<unknown> = Promise.resolve();
    const handler = handlerOf(async () => {
      outstanding = describeKey(kms);
      await until(() => (received.DescribeKey ?? 0) >= 2);
      return getKeyPolicy(kms);
    });

    // Act
    await expect(handler({}, CONTEXT)).rejects.toMatchObject({ operation: 'GetKeyPolicy', accessDenied: true });
    const receivedWhenFailed = received.DescribeKey;
    const settled = await settlementOf(outstanding);

    // Assess: the retry due after the failure fails at once; the fake KMS sees no further request.
    expect(settled).toBeInstanceOf(AwsServiceError);
    expect(settled).toMatchObject(cancelled('DescribeKey'));
    expect(received.DescribeKey).toBe(receivedWhenFailed);
    expect(receivedWhenFailed).toBe(2);
  });

  it('cancels a request in flight, which adaptive retry (the audit KMS client) does not retry', async () => {
    // Prepare: ListAliases never answers.
    const { endpoint, received, dropped } = await fakeKms({ ListAliases: 'hang', GetKeyPolicy: 'deny' });
    const kms = kmsAt(endpoint, { retryMode: 'adaptive' });
    let outstanding: Promise<unknown> = Promise.resolve();
    const handler = handlerOf(async () => {
      outstanding = listAliases(kms);
      await until(() => received.ListAliases === 1);
      return getKeyPolicy(kms);
    });

    // Act
    await expect(handler({}, CONTEXT)).rejects.toMatchObject({ operation: 'GetKeyPolicy' });
    const settled = await settlementOf(outstanding);

    // Assess: one attempt, its connection closed by the client.
    expect(settled).toMatchObject(cancelled('ListAliases'));
    expect((settled as AwsServiceError).cause).toMatchObject({ name: 'AbortError', $metadata: { attempts: 1 } });
    await until(() => dropped.ListAliases === 1);
    expect(received.ListAliases).toBe(1);
  });

  it('cancels what is outstanding when the invocation succeeds, too', async () => {
    // Prepare
    const { endpoint, received } = await fakeKms({ ListAliases: 'hang' });
    const kms = kmsAt(endpoint);
    let outstanding: Promise<unknown> = Promise.resolve();
    const handler = handlerOf(async () => {
      outstanding = listAliases(kms);
      await until(() => received.ListAliases === 1);
      return 'done';
    });

    // Act
    await expect(handler({}, CONTEXT)).resolves.toBe('done');

    // Assess
    expect(await settlementOf(outstanding)).toMatchObject(cancelled('ListAliases'));
  });

  it('fails a call that work left behind starts after the invocation ended, without sending it', async () => {
    // Prepare: the left-over work waits for the invocation's end, then calls (as a frozen environment would on thaw).
    const { endpoint, received } = await fakeKms({ DescribeKey: 'fail', GetKeyPolicy: 'deny' });
    const kms = kmsAt(endpoint);
    let invocationFailed = (): void => undefined;
    const failed = new Promise<void>((resolve) => {
      invocationFailed = resolve;
    });
    let leftOver: Promise<unknown> = Promise.resolve();
    const handler = handlerOf(async () => {
      leftOver = failed.then(() => describeKey(kms));
      return getKeyPolicy(kms);
    });

    // Act
    await expect(handler({}, CONTEXT)).rejects.toMatchObject({ operation: 'GetKeyPolicy' });
    invocationFailed();

    // Assess
    expect(await settlementOf(leftOver)).toMatchObject(cancelled('DescribeKey'));
    expect(received.DescribeKey).toBeUndefined();
  });

  it('stops a call waiting for its pacing token, which is then never sent', async () => {
    // Prepare: one DescribeKey every 100 s; the first is refused, the second waits for its token.
    const { endpoint, received } = await fakeKms({ DescribeKey: 'deny' });
    const kms = kmsAt(endpoint);
    paceKmsCalls(kms, { overrides: { DescribeKey: 0.01 }, share: 1 });
    let waiting: Promise<unknown> = Promise.resolve();
    const handler = handlerOf(async () => {
      const first = describeKey(kms);
      waiting = describeKey(kms);
      return first;
    });

    // Act
    await expect(handler({}, CONTEXT)).rejects.toMatchObject({ operation: 'DescribeKey', accessDenied: true });

    // Assess
    expect(await settlementOf(waiting)).toMatchObject(cancelled('DescribeKey'));
    expect(received.DescribeKey).toBe(1);
  });

  it('gives each invocation a signal of its own, aborted when it ends; outside any, none', async () => {
    // Prepare
    const { endpoint } = await fakeKms({ GetKeyPolicy: 'deny' });
    const kms = kmsAt(endpoint);
    const signals: (AbortSignal | undefined)[] = [];
    const handler = handlerOf(async () => {
      signals.push(invocationSignal());
      return getKeyPolicy(kms);
    });

    // Act
    await expect(handler({}, CONTEXT)).rejects.toMatchObject({ accessDenied: true });
    await expect(handler({}, CONTEXT)).rejects.toMatchObject({ accessDenied: true });

    // Assess
    expect(signals).toHaveLength(2);
    expect(signals[0]).not.toBe(signals[1]);
    expect(signals.map((signal) => signal?.aborted)).toEqual([true, true]);
    expect(invocationSignal()).toBeUndefined();
  });
});

describe('Function: runInInvocation', () => {
  it('gives the work, however deep, its signal, and nested work the nested signal', async () => {
    // Prepare
    const outer = new AbortController().signal;
    const inner = new AbortController().signal;

    // Act
    const seen = await runInInvocation(outer, async () => {
      await delay(1);
      const nested = await runInInvocation(inner, async () => invocationSignal());
      return [invocationSignal(), nested];
    });

    // Assess
    expect(seen[0]).toBe(outer);
    expect(seen[1]).toBe(inner);
  });
});
