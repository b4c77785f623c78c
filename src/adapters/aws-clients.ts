import { NodeHttpHandler } from '@smithy/node-http-handler';
import { invocationSignal } from './invocation';

/**
 * The SDK's Node.js request handler, bound to the invocation: each request (every attempt of
 * every call, retries included) carries the signal of the invocation that made the call,
 * unless the call brought its own. Once the invocation has ended, a request in flight is
 * destroyed and the next attempt fails at once, before any connection, with an `AbortError`
 * that the SDK's retry strategies do not retry (smithy-lang/smithy-typescript#2271; the
 * signal-based cancellation is that of
 * https://aws.amazon.com/blogs/developer/abortcontroller-in-modular-aws-sdk-for-javascript/).
 * A backoff wait already under way is not cut short: the retry middleware races it only
 * against a signal given to `send`; the attempt after it is the one that fails.
 */
class InvocationBoundHttpHandler extends NodeHttpHandler {
  override handle(...[request, options]: Parameters<NodeHttpHandler['handle']>): ReturnType<NodeHttpHandler['handle']> {
    return super.handle(request, { ...options, abortSignal: options?.abortSignal ?? invocationSignal() });
  }
}

/**
 * Options every SDK client of the service is created with: bounded connection and request
 * times, so that a hung call fails (and is retried) instead of eating the invocation, and
 * requests cancelled when their invocation ends. Since @smithy/node-http-handler 4.x,
 * `requestTimeout` alone only logs a warning when exceeded; `throwOnRequestTimeout` makes it
 * fail the attempt with a retryable `TimeoutError`. Each call makes a new request handler, as
 * the SDK does from plain options: call it once per client (handlers use `const sdk = () => ...`).
 */
export const clientOptions = (timeoutMs: number) => ({
  requestHandler: new InvocationBoundHttpHandler({
    connectionTimeout: Math.min(timeoutMs, 3_000),
    requestTimeout: timeoutMs,
    throwOnRequestTimeout: true,
  }),
});
