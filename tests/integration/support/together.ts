import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type InvokableFunction, type InvokeResult, invokeBundled } from '../../../scripts/lib/invoke';

/** How long the processes may take to start and load their bundles before the gate opens regardless. */
const READY_WAIT_MS = 30_000;
const POLL_MS = 5;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One function's invocations, one per event, started together (see `invokeEachTogether`). */
export const invokeTogether = (opts: {
  endpoint: string;
  region: string;
  fn: InvokableFunction;
  events: readonly unknown[];
}): Promise<InvokeResult[]> =>
  invokeEachTogether({ ...opts, calls: opts.events.map((event) => ({ fn: opts.fn, event })) });

/**
 * Starts one bundled invocation per call (a function and its event), each in a Node process of
 * its own, as Lambda runs concurrent invocations in separate sandboxes. Every process loads its
 * bundle and waits at a gate; the gate opens once all are waiting, so that the handlers are
 * called at one moment and race each other against the emulator for real, not by the luck of
 * process start-up. Resolves, in the order of `calls`, when all have ended.
 */
export const invokeEachTogether = async (opts: {
  endpoint: string;
  region: string;
  calls: readonly { fn: InvokableFunction; event: unknown }[];
}): Promise<InvokeResult[]> => {
  const dir = await mkdtemp(join(tmpdir(), 'kms-rotation-together-'));
  const startGate = join(dir, 'go');
  let ended = 0;
  try {
    const runs = Promise.all(
      opts.calls.map(({ fn, event }) =>
        invokeBundled({ endpoint: opts.endpoint, region: opts.region, fn, event, startGate }).finally(() => {
          ended += 1;
        }),
      ),
    );
    // Awaited below; meanwhile a failure to start must not count as unhandled.
    runs.catch(() => undefined);
    // An invocation that ends before it is ready (it could not load) opens the gate for the rest.
    const giveUpAt = Date.now() + READY_WAIT_MS;
    const ready = async () => (await readdir(dir)).filter((name) => name.endsWith('.ready')).length;
    while (ended === 0 && Date.now() < giveUpAt && (await ready()) < opts.calls.length) await sleep(POLL_MS);
    await writeFile(startGate, '');
    return await runs;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
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
