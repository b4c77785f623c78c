/**
 * Options every SDK client of the service is created with: bounded connection and request
 * times, so that a hung call fails (and is retried) instead of eating the invocation. Since
 * @smithy/node-http-handler 4.x, `requestTimeout` alone only logs a warning when exceeded;
 * `throwOnRequestTimeout` makes it fail the attempt with a retryable `TimeoutError`.
 */
export const clientOptions = (timeoutMs: number) => ({
  requestHandler: {
    connectionTimeout: Math.min(timeoutMs, 3_000),
    requestTimeout: timeoutMs,
    throwOnRequestTimeout: true,
  },
});
