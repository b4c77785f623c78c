import { type InvokableFunction, type InvokeResult, invokeBundled } from '../../../scripts/lib/invoke';

/**
 * How long after the call the handlers are released: enough for each process to start and load
 * its bundle (and, the first time, for the bundle to be unpacked) on a busy two-core machine.
 */
const START_MARGIN_MS = 2_500;

/**
 * Starts one bundled invocation per event, each in a Node process of its own, as Lambda runs
 * concurrent invocations in separate sandboxes. Every process loads its bundle, then waits for
 * one common moment to call its handler, so that they race each other against the emulator for
 * real, not by the luck of process start-up. Resolves, in the order of `events`, when all have ended.
 */
export const invokeTogether = (opts: {
  endpoint: string;
  region: string;
  fn: InvokableFunction;
  events: readonly unknown[];
}): Promise<InvokeResult[]> => {
  const startAt = Date.now() + START_MARGIN_MS;
  return Promise.all(
    opts.events.map((event) =>
      invokeBundled({ endpoint: opts.endpoint, region: opts.region, fn: opts.fn, event, startAt }),
    ),
  );
};

/**
 * Whether the invocations were called together: each had its bundle loaded and was waiting
 * before the first of them was called. Otherwise, what went wrong.
 */
export const calledTogether = (outcomes: readonly InvokeResult[]): true | string => {
  const timings = outcomes.map((outcome) => outcome.timing);
  if (timings.some((timing) => timing === undefined)) return 'an invocation died before its handler settled';
  const defined = timings as NonNullable<InvokeResult['timing']>[];
  const lastReady = Math.max(...defined.map((timing) => timing.readyAt));
  const firstStart = Math.min(...defined.map((timing) => timing.startedAt));
  return lastReady <= firstStart || `an invocation was loaded ${lastReady - firstStart} ms after the first was called`;
};
