/** The value of a settled promise, or its rejection thrown. */
export const settledValue = <T>(settled: PromiseSettledResult<T>): T => {
  if (settled.status === 'fulfilled') return settled.value;
  throw settled.reason;
};

/**
 * Like `Promise.all`, but waits for every promise to settle before throwing the first
 * rejection: writes that run at once are all landed or failed when the caller hears of it.
 */
export const settleAll = async <T extends readonly unknown[]>(
  promises: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> => {
  const results = await Promise.allSettled(promises);
  return results.map(settledValue) as unknown as T;
};

/** A read started ahead of need, whose answer may never be used: its failure surfaces only where it is awaited. */
export const ahead = <T>(promise: Promise<T>): Promise<T> => {
  promise.catch(() => undefined);
  return promise;
};

/** The promise of `read`, started on the first call only. */
export const once = <T>(read: () => Promise<T>): (() => Promise<T>) => {
  let started: Promise<T> | undefined;
  return () => {
    started ??= ahead(read());
    return started;
  };
};
