import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT, run } from './stack';

/** What one invocation of a bundled handler ended with, and what it printed. */
export type InvokeResult =
  | { ok: true; result: unknown; logs: string[]; emf: object[] }
  | { ok: false; error: { name: string; message: string }; logs: string[]; emf: object[] };

interface InvokableFunction {
  name: string;
  arn: string;
  handler: string;
  environment: Record<string, string>;
  zipPath: string;
}

const RUN_TIMEOUT_MS = 60_000;

/** Runs in the child: loads the bundle as Lambda would, calls the handler once, writes the outcome to a file. */
const RUNNER = `
const fs = require('node:fs');
const [, , handlerFile, exportName, eventFile, outcomeFile, contextFile] = process.argv;
const context = JSON.parse(fs.readFileSync(contextFile, 'utf8'));
context.getRemainingTimeInMillis = () => 30000;
const finish = (outcome) => { fs.writeFileSync(outcomeFile, JSON.stringify(outcome)); process.exit(0); };
(async () => {
  try {
    const handler = require(handlerFile)[exportName];
    const result = await handler(JSON.parse(fs.readFileSync(eventFile, 'utf8')), context);
    finish({ ok: true, result: result === undefined ? null : result });
  } catch (error) {
    finish({ ok: false, error: { name: (error && error.name) || 'Error', message: (error && error.message) || String(error) } });
  }
})();
`;

const unpacked = new Map<string, Promise<string>>();

/** Each bundle is unpacked once per process, into its own temporary folder. */
const unpack = (zipPath: string): Promise<string> => {
  let dir = unpacked.get(zipPath);
  if (!dir) {
    dir = (async () => {
      const target = await mkdtemp(join(tmpdir(), 'kms-rotation-bundle-'));
      await run('python3', ['-m', 'zipfile', '-e', zipPath, target]);
      return target;
    })();
    unpacked.set(zipPath, dir);
  }
  return dir;
};

const node22 = (): string => {
  const local = join(PROJECT_ROOT, 'node_modules', '.bin', 'node');
  return existsSync(local) ? local : process.execPath;
};

const isEmf = (line: string): object | undefined => {
  if (!line.startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(line) as { _aws?: { CloudWatchMetrics?: unknown } };
    return parsed._aws?.CloudWatchMetrics ? parsed : undefined;
  } catch {
    return undefined;
  }
};

/**
 * moto cannot run Lambda functions (no Docker), so the deployed function's bundle runs in a
 * fresh Node process with the environment CloudFormation gave it and `AWS_ENDPOINT_URL`
 * pointing at the emulator. Nothing of the parent's AWS configuration leaks in.
 */
export const invokeBundled = async (opts: {
  endpoint: string;
  region: string;
  fn: InvokableFunction;
  event: unknown;
  env?: Record<string, string>;
}): Promise<InvokeResult> => {
  const bundle = await unpack(opts.fn.zipPath);
  const work = await mkdtemp(join(tmpdir(), 'kms-rotation-invoke-'));
  const [file, exportName] = [
    opts.fn.handler.slice(0, opts.fn.handler.lastIndexOf('.')),
    opts.fn.handler.split('.').pop(),
  ];
  const paths = {
    runner: join(work, 'runner.cjs'),
    event: join(work, 'event.json'),
    outcome: join(work, 'outcome.json'),
    context: join(work, 'context.json'),
  };
  await writeFile(paths.runner, RUNNER);
  await writeFile(paths.event, JSON.stringify(opts.event));
  await writeFile(
    paths.context,
    JSON.stringify({
      functionName: opts.fn.name,
      functionVersion: '$LATEST',
      invokedFunctionArn: opts.fn.arn,
      memoryLimitInMB: '256',
      awsRequestId: randomUUID(),
      logGroupName: `/aws/lambda/${opts.fn.name}`,
      logStreamName: `local/${randomUUID()}`,
      callbackWaitsForEmptyEventLoop: true,
    }),
  );

  const parentEnv = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_') && !name.startsWith('POWERTOOLS_')),
  );
  const env = {
    ...parentEnv,
    ...opts.fn.environment,
    ...opts.env,
    AWS_ENDPOINT_URL: opts.endpoint,
    AWS_REGION: opts.region,
    AWS_DEFAULT_REGION: opts.region,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_LAMBDA_FUNCTION_NAME: opts.fn.name,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
  };

  const logs = await new Promise<string[]>((resolve, reject) => {
    const child = spawn(
      node22(),
      [paths.runner, join(bundle, `${file}.js`), exportName ?? 'handler', paths.event, paths.outcome, paths.context],
      { cwd: bundle, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${opts.fn.name} did not finish within ${RUN_TIMEOUT_MS / 1000} s:\n${output}`));
    }, RUN_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', () => {
      clearTimeout(timer);
      resolve(output.split('\n').filter((line) => line.trim() !== ''));
    });
  });

  if (!existsSync(paths.outcome)) {
    throw new Error(`${opts.fn.name} ended without an outcome (crashed while loading?):\n${logs.join('\n')}`);
  }
  const outcome = JSON.parse(await readFile(paths.outcome, 'utf8')) as
    | { ok: true; result: unknown }
    | { ok: false; error: { name: string; message: string } };
  const emf = logs.map(isEmf).filter((blob): blob is object => blob !== undefined);
  return { ...outcome, logs, emf };
};
