/**
 * moto server on loopback, the local AWS that integration tests and the demo deploy into.
 * One server per caller, on a free port, in its own process group so that stop() can
 * take down whatever the `moto_server` launcher (often a pyenv shim) started.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

export interface Emulator {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
  /** The last lines moto printed: its request log, and the Python traceback behind an HTTP 500. */
  recentOutput(): string;
}

const HOST = '127.0.0.1';
const MOTO_COMMAND = 'moto_server';
const INSTALL_HINT =
  'Install it with `pipx install "moto[server]"` (or `pip install "moto[server]"`) and make sure `moto_server` is on PATH.';
const READY_TIMEOUT_MS = 30_000;
const READY_POLL_MS = 200;
const PROBE_TIMEOUT_MS = 2_000;
const STOP_GRACE_MS = 5_000;
const STOP_KILL_WAIT_MS = 3_000;
/** A free port can be taken by someone else between our probe and moto's bind: try a few. */
const START_ATTEMPTS = 3;
/** Enough of moto's output to explain a failed start without holding every request log line. */
const OUTPUT_TAIL_CHARS = 32_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const findOnPath = (command: string): string | undefined => {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory; keep looking
    }
  }
  return undefined;
};

/** Binds port 0 on loopback, reads the port the OS chose, and releases it for moto. */
export const findFreePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() =>
        port > 0 ? resolve(port) : reject(new Error('Could not read the free port chosen by the OS')),
      );
    });
  });

/** True once anything answers HTTP on the port; the status code does not matter. */
const answersHttp = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const req = request({ host: HOST, port, path: '/moto-api/', method: 'GET', timeout: PROBE_TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(true);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });

/** Keeps the last characters of a stream; moto logs every request, so the pipe must be drained anyway. */
const tailOf = (child: ChildProcess): (() => string) => {
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => tail;
};

const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

const waitForExit = (child: ChildProcess, timeoutMs: number): Promise<boolean> => {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
};

/** Signals the whole process group (negative pid); the group may already be gone. */
const signalGroup = (child: ChildProcess, signal: NodeJS.Signals): void => {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: nothing left in the group
  }
};

const stopProcessGroup = async (child: ChildProcess): Promise<void> => {
  if (child.pid === undefined) return; // it never started
  signalGroup(child, 'SIGTERM');
  if (!(await waitForExit(child, STOP_GRACE_MS))) {
    signalGroup(child, 'SIGKILL');
    if (!(await waitForExit(child, STOP_KILL_WAIT_MS))) {
      throw new Error(`moto server (pid ${child.pid}) did not exit after SIGKILL`);
    }
  }
  // The leader is gone; sweep any helper it left in its group.
  signalGroup(child, 'SIGKILL');
  child.stdin?.destroy();
  child.stdout?.destroy();
  child.stderr?.destroy();
};

class MotoStartError extends Error {
  constructor(
    message: string,
    readonly portRace: boolean,
  ) {
    super(message);
    this.name = 'MotoStartError';
  }
}

/**
 * Ready means: our process says it is serving on the port (werkzeug's " * Running on http://host:port"
 * banner) and the port answers HTTP. The port alone is not enough: if someone else already listens
 * there, it would answer while our moto fails to bind and exits.
 */
const waitUntilReady = async (
  child: ChildProcess,
  port: number,
  output: () => string,
  commandLine: string,
  spawnError: () => Error | undefined,
): Promise<void> => {
  const banner = new RegExp(`Running on https?://[^\\s]*:${port}\\b`);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const cannotStart = spawnError();
    if (cannotStart) {
      throw new MotoStartError(`Could not start \`${commandLine}\`: ${cannotStart.message}\n${INSTALL_HINT}`, false);
    }
    if (hasExited(child)) {
      const text = output();
      const notInstalled = /command not found|No module named|not installed/i.test(text);
      throw new MotoStartError(
        `moto server exited before answering (code ${child.exitCode}, signal ${child.signalCode}): \`${commandLine}\`\n${text}` +
          (notInstalled ? `\n${INSTALL_HINT}` : ''),
        /address already in use/i.test(text),
      );
    }
    if (banner.test(output()) && (await answersHttp(port)) && !hasExited(child)) return;
    await sleep(READY_POLL_MS);
  }
  throw new MotoStartError(
    `moto server did not report serving on ${HOST}:${port} and answer HTTP within ${READY_TIMEOUT_MS / 1000} s: \`${commandLine}\`\n${output()}`,
    false,
  );
};

/**
 * Runs moto under a small sh watchdog that ends it when our stdin pipe closes, that is when this
 * process ends in any way. `process.on('exit')` is not enough: test runners end their workers with
 * a signal (vitest's forks do), and a killed process runs no exit handlers. The watchdog reads a
 * copy of stdin (fd 3), because sh gives background jobs /dev/null as their stdin.
 */
const WATCHDOG = [
  'exec 3<&0',
  '"$0" "$@" </dev/null 3<&- &',
  'moto=$!',
  '(cat <&3 >/dev/null 2>&1; kill "$moto" 2>/dev/null; sleep 3; kill -9 "$moto" 2>/dev/null) >/dev/null 2>&1 &',
  'exec 3<&-',
  'wait "$moto"',
].join('\n');

const startOnce = async (motoPath: string, port: number): Promise<Emulator> => {
  const args = ['-H', HOST, '-p', String(port)];
  const commandLine = [MOTO_COMMAND, ...args].join(' ');
  // detached: its own process group, so stop() reaches moto, the watchdog and any shim in between.
  const child = spawn('/bin/sh', ['-c', WATCHDOG, motoPath, ...args], {
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    // Unbuffered, so that a traceback is in the output tail the moment a request fails.
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  const output = tailOf(child);
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });

  try {
    await waitUntilReady(child, port, output, commandLine, () => spawnError);
  } catch (error) {
    await stopProcessGroup(child);
    throw error;
  }

  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://${HOST}:${port}`,
    port,
    stop: () => {
      stopped ??= stopProcessGroup(child);
      return stopped;
    },
    recentOutput: output,
  };
};

/** Starts moto server on 127.0.0.1 and resolves once it answers HTTP. */
export const startMoto = async (opts: { port?: number } = {}): Promise<Emulator> => {
  const motoPath = findOnPath(MOTO_COMMAND);
  if (!motoPath) throw new Error(`\`${MOTO_COMMAND}\` was not found on PATH. ${INSTALL_HINT}`);

  const attempts = opts.port === undefined ? START_ATTEMPTS : 1;
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await findFreePort());
    try {
      return await startOnce(motoPath, port);
    } catch (error) {
      if (!(error instanceof MotoStartError && error.portRace && attempt < attempts)) throw error;
    }
  }
};
