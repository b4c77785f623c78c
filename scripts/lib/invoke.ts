/**
 * Runs a deployed function's bundle the way Lambda would, against moto. moto cannot run
 * Lambda functions (no Docker), so the bundle from `serverless package` runs in a fresh
 * Node 22 process with the environment CloudFormation gave the function and `AWS_ENDPOINT_URL`
 * pointing at the emulator. Nothing of the caller's AWS configuration reaches it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isProcessAlive, PROJECT_ROOT, run } from './stack';

/** What one invocation of a bundled handler ended with, and what it printed. */
export type InvokeResult = (
  | { ok: true; result: unknown; logs: string[]; emf: object[] }
  | { ok: false; error: { name: string; message: string }; logs: string[]; emf: object[] }
) & {
  /** Peak resident memory of the function's process (Lambda's "Max Memory Used"); absent if it died first. */
  maxRssKb?: number;
  /**
   * Only for an invocation given `startGate`, when it settled: when its handler was loaded and
   * waiting, when it was called, and when it settled (epoch ms, this machine's clock).
   */
  timing?: InvocationTiming;
};

export interface InvocationTiming {
  readyAt: number;
  startedAt: number;
  settledAt: number;
}

export interface InvokableFunction {
  name: string;
  arn: string;
  /** Lambda's handler setting, e.g. `handlers/on-rotation.handler`. */
  handler: string;
  environment: Record<string, string>;
  zipPath: string;
}

const LAMBDA_NODE_MAJOR = 22;
const RUN_TIMEOUT_MS = 60_000;
const MEMORY_SIZE_MB = '256';
const REMAINING_TIME_MS = 30_000;
/** A handler stuck in a logging loop must not exhaust the test runner's memory. */
const MAX_LOG_CHARS = 10_000_000;

/**
 * Runs in the child. Loads the handler as Lambda does (CommonJS require from the bundle), calls it
 * once, and writes the outcome, tagged with this invocation's marker, to a file of its own, so that
 * nothing the handler prints can be mistaken for it. Exits at once when the handler settles, as
 * Lambda freezes the sandbox then: open sockets or timers must not keep the process alive.
 */
const RUNNER_SOURCE = `'use strict';
const fs = require('node:fs');
const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
let settled = false;
const finish = (outcome) => {
  if (settled) return;
  settled = true;
  let line;
  try {
    const timing = started ? { timing: { ...started, settledAt: Date.now() } } : {};
    line = JSON.stringify({ marker: input.marker, maxRssKb: process.resourceUsage().maxRSS, ...timing, ...outcome });
  } catch (error) {
    line = JSON.stringify({ marker: input.marker, ok: false, error: { name: 'Runtime.ResultSerializationError', message: String(error && error.message) } });
  }
  fs.writeFileSync(input.outcomePath, line + '\\n');
  process.exit(0);
};
const failure = (error) => ({
  ok: false,
  error: {
    name: String((error && typeof error === 'object' && error.name) || 'Error'),
    message: String(error && error.message !== undefined ? error.message : error),
  },
});
let deadline = Date.now() + input.remainingTimeMs;
let started;
process.on('uncaughtException', (error) => finish(failure(error)));
process.on('unhandledRejection', (error) => finish(failure(error)));
const context = {
  ...input.context,
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
};
(async () => {
  try {
    const handler = require(input.handlerFile)[input.exportName];
    if (typeof handler !== 'function') {
      throw Object.assign(new Error(input.handlerFile + ' does not export a function named ' + input.exportName), { name: 'Runtime.HandlerNotFound' });
    }
    if (input.startGate !== undefined) {
      const readyAt = Date.now();
      fs.writeFileSync(input.startGate + '.' + input.marker + '.ready', '');
      while (!fs.existsSync(input.startGate)) await new Promise((resolve) => setTimeout(resolve, 1));
      started = { readyAt, startedAt: Date.now() };
      deadline = started.startedAt + input.remainingTimeMs;
    }
    const result = await new Promise((resolve, reject) => {
      const callback = (error, value) => (error ? reject(error) : resolve(value));
      const returned = handler(input.event, context, callback);
      if (returned && typeof returned.then === 'function') returned.then(resolve, reject);
    });
    finish({ ok: true, result: result === undefined ? null : result });
  } catch (error) {
    finish(failure(error));
  }
})();
`;

const HARNESS_DIR_PREFIX = 'kms-rotation-invoke-';
const OWNER_FILE = 'owner.pid';

/**
 * Removes the folders of earlier processes that ended without cleaning up: test runners end their
 * workers with a signal, and a killed process runs no exit handlers.
 */
const sweepAbandonedHarnessDirs = (): void => {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(HARNESS_DIR_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const owner = Number(readFileOr(join(dir, OWNER_FILE), ''));
    if (owner > 0 && !isProcessAlive(owner)) rmSync(dir, { recursive: true, force: true });
  }
};

const readFileOr = (path: string, fallback: string): string => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
};

/** One folder per process for unpacked bundles, the runner and outcome files; removed when the process exits. */
let harnessDir: string | undefined;
const harnessRoot = (): string => {
  if (!harnessDir) {
    sweepAbandonedHarnessDirs();
    const dir = mkdtempSync(join(tmpdir(), HARNESS_DIR_PREFIX));
    writeFileSync(join(dir, OWNER_FILE), String(process.pid));
    harnessDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return harnessDir;
};

let runnerPath: Promise<string> | undefined;
const runner = (): Promise<string> => {
  runnerPath ??= (async () => {
    const path = join(harnessRoot(), 'runner.cjs');
    await writeFile(path, RUNNER_SOURCE);
    return path;
  })();
  return runnerPath;
};

const unpacked = new Map<string, Promise<string>>();

/** Each bundle is unpacked once per process; keyed by size and time too, so a re-packaged zip at the same path is unpacked again. */
const unpack = (zipPath: string): Promise<string> => {
  if (!existsSync(zipPath)) return Promise.reject(new Error(`Function bundle not found: ${zipPath}`));
  const { size, mtimeMs } = statSync(zipPath);
  const cacheKey = `${zipPath}\0${size}\0${mtimeMs}`;
  let dir = unpacked.get(cacheKey);
  if (!dir) {
    dir = (async () => {
      const target = await mkdtemp(join(harnessRoot(), 'bundle-'));
      // Python is there wherever moto is; its zipfile module needs no other tool.
      await run('python3', ['-m', 'zipfile', '-e', zipPath, target], process.env, RUN_TIMEOUT_MS);
      return target;
    })();
    dir.catch(() => unpacked.delete(cacheKey));
    unpacked.set(cacheKey, dir);
  }
  return dir;
};

const majorOf = (version: string): number => Number(version.replace(/^v/, '').split('.')[0]);

let lambdaNodePath: string | undefined;
/** The Lambda runtime's Node major: this process's Node if it is that, else the `node` devDependency's. */
const lambdaNode = (): string => {
  if (lambdaNodePath) return lambdaNodePath;
  if (majorOf(process.version) === LAMBDA_NODE_MAJOR) {
    lambdaNodePath = process.execPath;
    return lambdaNodePath;
  }
  const local = join(PROJECT_ROOT, 'node_modules', '.bin', 'node');
  const version = existsSync(local) ? spawnSync(local, ['--version'], { encoding: 'utf8' }).stdout.trim() : '';
  if (majorOf(version) !== LAMBDA_NODE_MAJOR) {
    throw new Error(
      `Node ${LAMBDA_NODE_MAJOR} is needed to run the bundles like Lambda's nodejs${LAMBDA_NODE_MAJOR}.x; this process runs ${process.version} ` +
        `and ${local} is ${version || 'missing'}. Run through npm scripts or npx, which put the \`node\` devDependency first.`,
    );
  }
  lambdaNodePath = local;
  return lambdaNodePath;
};

/** Extensions Lambda's Node runtime tries for the handler's module, in its order. */
const HANDLER_EXTENSIONS = ['.js', '.mjs', '.cjs'];

/** `handlers/on-rotation.handler` -> file `handlers/on-rotation.js` in the bundle, export `handler`. */
const handlerLocation = (bundleDir: string, fn: InvokableFunction): { handlerFile: string; exportName: string } => {
  const dot = fn.handler.lastIndexOf('.');
  if (dot <= 0 || dot === fn.handler.length - 1) {
    throw new Error(`Handler setting "${fn.handler}" of ${fn.name} is not of the form <file>.<export>`);
  }
  const modulePath = join(bundleDir, fn.handler.slice(0, dot));
  const handlerFile = HANDLER_EXTENSIONS.map((extension) => modulePath + extension).find((file) => existsSync(file));
  if (!handlerFile) {
    throw new Error(
      `${fn.zipPath} has no ${fn.handler.slice(0, dot)}{${HANDLER_EXTENSIONS.join(',')}} for handler ${fn.handler} of ${fn.name}`,
    );
  }
  return { handlerFile, exportName: fn.handler.slice(dot + 1) };
};

/**
 * The access key id a function's process signs with: one per function, so that whoever sits
 * between it and the emulator (the proxy's call log) can tell the caller from the SigV4
 * `Authorization` header. `AKIA`, up to 12 letters of the function's short name (the part after
 * the stage, e.g. `ONKEYACTIVIT`), and 4 hex digits of a hash of its full name: 20 characters, as
 * AWS's are; moto takes any access key id it does not know for its default account.
 */
export const accessKeyIdFor = (functionName: string): string => {
  const short = (functionName.split('-').pop() ?? functionName).toUpperCase().replace(/[^A-Z0-9]/g, '');
  const hash = createHash('sha256').update(functionName).digest('hex').slice(0, 4).toUpperCase();
  return `AKIA${short.slice(0, 12).padEnd(12, 'X')}${hash}`;
};

/** Lambda's environment for the function; the caller's AWS_* variables and AWS config files stay out. */
const lambdaEnvironment = (
  opts: { endpoint: string; region: string; fn: InvokableFunction; env?: Record<string, string> },
  bundleDir: string,
  logGroupName: string,
  logStreamName: string,
): Record<string, string> => {
  const noSuchFile = join(harnessRoot(), 'no-aws-config');
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    LANG: 'en_US.UTF-8',
    TZ: 'UTC',
    LAMBDA_TASK_ROOT: bundleDir,
    _HANDLER: opts.fn.handler,
    AWS_EXECUTION_ENV: `AWS_Lambda_nodejs${LAMBDA_NODE_MAJOR}.x`,
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_LOG_GROUP_NAME: logGroupName,
    AWS_LAMBDA_LOG_STREAM_NAME: logStreamName,
    ...opts.fn.environment,
    ...opts.env,
    AWS_ENDPOINT_URL: opts.endpoint,
    AWS_REGION: opts.region,
    AWS_DEFAULT_REGION: opts.region,
    AWS_ACCESS_KEY_ID: accessKeyIdFor(opts.fn.name),
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_CONFIG_FILE: noSuchFile,
    AWS_SHARED_CREDENTIALS_FILE: noSuchFile,
    AWS_LAMBDA_FUNCTION_NAME: opts.fn.name,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: MEMORY_SIZE_MB,
  };
};

/** Collects a child's output as lines, in arrival order; stdout lines are also kept apart for EMF. */
const lineCollector = () => {
  const logs: string[] = [];
  const stdoutLines: string[] = [];
  let total = 0;
  let truncated = false;
  const stream = (isStdout: boolean) => {
    let partial = '';
    const push = (line: string): void => {
      if (line.trim() === '') return;
      if (total + line.length > MAX_LOG_CHARS) {
        if (!truncated) logs.push(`[harness] output beyond ${MAX_LOG_CHARS} characters dropped`);
        truncated = true;
        return;
      }
      total += line.length;
      logs.push(line);
      if (isStdout) stdoutLines.push(line);
    };
    return {
      write: (chunk: Buffer): void => {
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        lines.forEach(push);
      },
      end: (): void => {
        push(partial);
        partial = '';
      },
    };
  };
  return { logs, stdoutLines, stdout: stream(true), stderr: stream(false) };
};

const asEmf = (line: string): object | undefined => {
  if (!line.startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(line) as { _aws?: { CloudWatchMetrics?: unknown } };
    return parsed?._aws?.CloudWatchMetrics ? parsed : undefined;
  } catch {
    return undefined;
  }
};

type Outcome = ({ ok: true; result: unknown } | { ok: false; error: { name: string; message: string } }) & {
  maxRssKb?: number;
  timing?: InvocationTiming;
};

const readOutcome = async (outcomePath: string, marker: string): Promise<Outcome | undefined> => {
  const text = await readFile(outcomePath, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  const { marker: written, ...outcome } = JSON.parse(text) as Outcome & { marker?: string };
  return written === marker ? (outcome as Outcome) : undefined;
};

/** Runs the child to its end (or kills it at the time bound) and gathers its output. */
const runChild = (
  args: string[],
  env: Record<string, string>,
  cwd: string,
  fnName: string,
  timeoutMs: number,
): Promise<{ logs: string[]; stdoutLines: string[]; code: number | null; signal: NodeJS.Signals | null }> =>
  new Promise((resolve, reject) => {
    const output = lineCollector();
    const child = spawn(lambdaNode(), args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', output.stdout.write);
    child.stderr.on('data', output.stderr.write);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${fnName} did not finish within ${timeoutMs / 1000} s and was killed. Its output:\n${output.logs.join('\n')}`,
        ),
      );
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`Could not start Node to run ${fnName}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      output.stdout.end();
      output.stderr.end();
      resolve({ logs: output.logs, stdoutLines: output.stdoutLines, code, signal });
    });
  });

/** Invokes the deployed function's bundle once with `event`, in a fresh Node process, against the emulator. */
export const invokeBundled = async (opts: {
  endpoint: string;
  region: string;
  fn: InvokableFunction;
  event: unknown;
  env?: Record<string, string>;
  /** How long the function may run (default 60 s; Lambda allows up to 900 s). */
  timeoutMs?: number;
  /**
   * A file that does not exist yet: the process loads the bundle, writes `<startGate>.<marker>.ready`
   * beside it, and calls the handler only once `startGate` exists, so that invocations given one
   * gate can be called together (see `invokeTogether` in the integration tests' support).
   */
  startGate?: string;
}): Promise<InvokeResult> => {
  const bundleDir = await unpack(resolve(opts.fn.zipPath));
  const { handlerFile, exportName } = handlerLocation(bundleDir, opts.fn);

  const invocationId = randomUUID();
  const logGroupName = `/aws/lambda/${opts.fn.name}`;
  const logStreamName = `${new Date().toISOString().slice(0, 10).replaceAll('-', '/')}/[$LATEST]${invocationId.replaceAll('-', '')}`;
  const inputPath = join(harnessRoot(), `invoke-${invocationId}.json`);
  const outcomePath = join(harnessRoot(), `outcome-${invocationId}.json`);
  const marker = `kms-rotation-outcome-${invocationId}`;
  await writeFile(
    inputPath,
    JSON.stringify({
      handlerFile,
      exportName,
      event: opts.event,
      outcomePath,
      marker,
      remainingTimeMs: opts.timeoutMs ?? REMAINING_TIME_MS,
      startGate: opts.startGate,
      context: {
        functionName: opts.fn.name,
        functionVersion: '$LATEST',
        invokedFunctionArn: opts.fn.arn,
        memoryLimitInMB: MEMORY_SIZE_MB,
        awsRequestId: randomUUID(),
        logGroupName,
        logStreamName,
      },
    }),
  );

  try {
    const env = lambdaEnvironment(opts, bundleDir, logGroupName, logStreamName);
    const child = await runChild(
      [await runner(), inputPath],
      env,
      bundleDir,
      opts.fn.name,
      opts.timeoutMs ?? RUN_TIMEOUT_MS,
    );
    const emf = child.stdoutLines.map(asEmf).filter((blob): blob is object => blob !== undefined);
    const outcome = (await readOutcome(outcomePath, marker)) ?? {
      ok: false as const,
      // What Lambda reports when the runtime process dies before the handler settles.
      error: {
        name: 'Runtime.ExitError',
        message: `${opts.fn.name} exited (${child.signal ?? `code ${child.code}`}) before the handler settled`,
      },
    };
    return { ...outcome, logs: child.logs, emf };
  } finally {
    await rm(inputPath, { force: true });
    await rm(outcomePath, { force: true });
  }
};
