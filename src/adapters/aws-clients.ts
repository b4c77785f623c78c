/**
 * Options every SDK client of the service is created with: bounded connection and request
 * times, so that a hung call fails (and is retried) instead of eating the invocation.
 */
export const clientOptions = (timeoutMs: number) => ({
  requestHandler: { connectionTimeout: Math.min(timeoutMs, 3_000), requestTimeout: timeoutMs },
});
