import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The signal of the invocation that started the current asynchronous work. AsyncLocalStorage
 * carries it through promises and timers (the SDK's retries included), so adapters can reach
 * it without the domain passing it along.
 */
const current = new AsyncLocalStorage<AbortSignal>();

/** Runs `work` so that everything it starts, however deep, sees `signal` as its invocation's. */
export const runInInvocation = <T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> =>
  current.run(signal, work);

/** The signal of the invocation this code runs for; undefined outside any (a cold start's init). */
export const invocationSignal = (): AbortSignal | undefined => current.getStore();

/** Why an invocation's leftover calls are cancelled: named `AbortError`, as the SDK's aborts are. */
export const invocationEnded = (): DOMException =>
  new DOMException('The invocation ended; its outstanding AWS calls are cancelled', 'AbortError');
