/**
 * The stack, the way ops ship it: `serverless package`, cfn-lint, then what `serverless deploy`
 * does (create the stack with its deployment bucket, upload the bundles, update the stack with
 * the full template), done with the SDK against moto server instead of AWS.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  ListStackResourcesCommand,
  type Tag,
  UpdateStackCommand,
} from '@aws-sdk/client-cloudformation';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

export const PROJECT_ROOT = resolve(__dirname, '..', '..');
const FAKE_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
const CAPABILITIES = ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM', 'CAPABILITY_AUTO_EXPAND'] as const;
/** CloudFormation's limit for an inline TemplateBody; larger templates go through S3, as `serverless deploy` does. */
const TEMPLATE_BODY_MAX_BYTES = 51_200;
const PACKAGE_TIMEOUT_MS = 300_000;
const LINT_TIMEOUT_MS = 120_000;
const STACK_WAIT_TIMEOUT_MS = 120_000;
const STACK_POLL_MS = 250;
const PACKAGE_LOCK_TIMEOUT_MS = 300_000;

type Resource = { Type: string; Properties?: Record<string, unknown>; [key: string]: unknown };

export type Template = {
  Resources: Record<string, Resource>;
  [key: string]: unknown;
};

/** A function as `serverless package` built it. */
export interface PackagedFunction {
  /** The function's deployed name, e.g. `kms-rotation-it-onRotation`. */
  functionName: string;
  /** Logical id of its `AWS::Lambda::Function` in the template, e.g. `OnRotationLambdaFunction`. */
  logicalId: string;
  handler: string;
  zipPath: string;
  /** Where the template expects the bundle in the deployment bucket. */
  s3Key: string;
}

export interface PackagedService {
  dir: string;
  createTemplatePath: string;
  updateTemplatePath: string;
  /** The parsed update template: the full stack. */
  template: Template;
  /** Function name in serverless.yml (e.g. `onRotation`) -> its bundle. */
  functionZips: Record<string, string>;
  /** Function name in serverless.yml -> how it was packaged. */
  functions: Record<string, PackagedFunction>;
  /** `provider.stackTags`, which `serverless deploy` puts on the stack. */
  stackTags: Record<string, string>;
}

export interface DeployedFunction {
  name: string;
  arn: string;
  handler: string;
  environment: Record<string, string>;
  zipPath: string;
}

export interface DeployedStack {
  stackName: string;
  outputs: Record<string, string>;
  /** Logical id -> physical id. */
  resources: Record<string, string>;
  /** Function name in serverless.yml (e.g. `onRotation`) -> the function moto created. */
  functions: Record<string, DeployedFunction>;
  /** Template resources moto did not create: types its CloudFormation skips (alarms, ...), or a false Condition. */
  notCreated: string[];
}

/** Runs a command in the project root to completion; rejects with the command line and its output when it fails. */
export const run = (
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = PACKAGE_TIMEOUT_MS,
): Promise<string> =>
  new Promise((resolvePromise, reject) => {
    const commandLine = [command, ...args].join(' ');
    const child = spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`\`${commandLine}\` did not finish within ${timeoutMs / 1000} s and was killed:\n${output}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`\`${commandLine}\` could not start: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise(output);
      else reject(new Error(`\`${commandLine}\` exited with ${code ?? signal}:\n${output}`));
    });
  });

/**
 * The environment of the project's own tools: Node 22 from node_modules/.bin first, and fake
 * credentials instead of whatever AWS configuration the caller has, so that nothing here can reach a real account.
 */
export const toolEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('AWS_')) delete env[name];
  return {
    ...env,
    PATH: `${join(PROJECT_ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
    AWS_ACCESS_KEY_ID: FAKE_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: FAKE_CREDENTIALS.secretAccessKey,
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
  };
};

const sleep = (ms: number): Promise<void> => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

export const isProcessAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** A lock folder whose owner never wrote its pid (it died in between) is stale after this long. */
const LOCK_WITHOUT_OWNER_STALE_MS = 30_000;

const lockCreatedAt = async (lockDir: string): Promise<number> =>
  (await stat(lockDir).catch(() => undefined))?.mtimeMs ?? Date.now();

/**
 * serverless-esbuild builds in one work folder (`.esbuild/`) per project, so two packagings at
 * once (two vitest runs, the demo next to a test run) would overwrite each other's bundles.
 * A directory lock (mkdir is atomic) holding the owner's pid; a lock whose owner died is taken over.
 */
const withPackageLock = async <T>(work: () => Promise<T>): Promise<T> => {
  const lockDir = join(PROJECT_ROOT, '.tmp', 'serverless-package.lock');
  const ownerFile = join(lockDir, 'pid');
  await mkdir(dirname(lockDir), { recursive: true });
  const deadline = Date.now() + PACKAGE_LOCK_TIMEOUT_MS;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(ownerFile, String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number((await readFile(ownerFile, 'utf8').catch(() => '')) || Number.NaN);
      const ownerless =
        !Number.isInteger(owner) && Date.now() - (await lockCreatedAt(lockDir)) > LOCK_WITHOUT_OWNER_STALE_MS;
      if ((Number.isInteger(owner) && !isProcessAlive(owner)) || ownerless) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `Another \`serverless package\` (pid ${Number.isInteger(owner) ? owner : 'unknown'}) still holds ${lockDir} after ${PACKAGE_LOCK_TIMEOUT_MS / 1000} s`,
        );
      }
      await sleep(250);
    }
  }
  try {
    return await work();
  } finally {
    await rm(ownerFile, { force: true });
    await rmdir(lockDir).catch(() => undefined);
  }
};

/** Project folders that must never be the output folder, which is wiped before packaging. */
const PROTECTED_FOLDERS = new Set([
  '.git',
  'bench',
  'config',
  'events',
  'handlers',
  'node_modules',
  'scripts',
  'src',
  'tests',
]);

const isWithin = (parent: string, child: string): boolean => {
  const path = relative(parent, child);
  return path !== '' && !path.startsWith('..') && !isAbsolute(path);
};

const resolveOutDir = (outDir: string): string => {
  const dir = resolve(PROJECT_ROOT, outDir);
  const holdsProject = dir === PROJECT_ROOT || isWithin(dir, PROJECT_ROOT);
  const inProtectedFolder =
    isWithin(PROJECT_ROOT, dir) && PROTECTED_FOLDERS.has(relative(PROJECT_ROOT, dir).split(sep)[0] ?? '');
  if (holdsProject || inProtectedFolder) {
    throw new Error(
      `Refusing to package into ${dir}: it is wiped first, so give a folder of its own such as .tmp/package-<stage>`,
    );
  }
  return dir;
};

interface ServerlessState {
  service: {
    provider: { stackTags?: Record<string, string> };
    functions: Record<string, { name: string; handler: string; package?: { artifact?: string } }>;
  };
}

const readJson = async <T>(path: string, what: string): Promise<T> => {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (error) {
    throw new Error(`Could not read ${what} at ${path}: ${(error as Error).message}`);
  }
};

const lambdaFunctionResources = (template: Template): [string, Resource][] =>
  Object.entries(template.Resources).filter(([, resource]) => resource.Type === 'AWS::Lambda::Function');

/** Ties each function of serverless.yml to its template resource (by deployed name) and its bundle. */
const packagedFunctions = (
  dir: string,
  state: ServerlessState,
  template: Template,
): Record<string, PackagedFunction> => {
  const functions: Record<string, PackagedFunction> = {};
  for (const [name, fn] of Object.entries(state.service.functions)) {
    const match = lambdaFunctionResources(template).find(
      ([, resource]) => resource.Properties?.FunctionName === fn.name,
    );
    if (!match) {
      throw new Error(`The packaged template has no AWS::Lambda::Function named ${fn.name} (function ${name})`);
    }
    const [logicalId, resource] = match;
    const s3Key = (resource.Properties?.Code as { S3Key?: unknown } | undefined)?.S3Key;
    if (typeof s3Key !== 'string') {
      throw new Error(`${logicalId}.Properties.Code.S3Key is not a plain string in the packaged template`);
    }
    const zipPath = join(dir, basename(fn.package?.artifact || s3Key));
    if (!existsSync(zipPath)) throw new Error(`Bundle of function ${name} is missing: ${zipPath}`);
    functions[name] = { functionName: fn.name, logicalId, handler: fn.handler, zipPath, s3Key };
  }
  return functions;
};

/** `serverless package` into `outDir`: the same template and bundles `serverless deploy` would upload. */
export const packageService = async (opts: {
  stage: string;
  region: string;
  outDir: string;
  params?: Record<string, string>;
}): Promise<PackagedService> => {
  const dir = resolveOutDir(opts.outDir);
  const params = Object.entries(opts.params ?? {}).map(([name, value]) => `--param=${name}=${value}`);
  // The local bin is what `npx serverless` runs, without npx's chance of fetching a package.
  const serverless = join(PROJECT_ROOT, 'node_modules', '.bin', 'serverless');
  await withPackageLock(async () => {
    await rm(dir, { recursive: true, force: true });
    await run(
      serverless,
      ['package', '--stage', opts.stage, '--region', opts.region, '--package', dir, ...params],
      toolEnv(),
    );
  });

  const createTemplatePath = join(dir, 'cloudformation-template-create-stack.json');
  const updateTemplatePath = join(dir, 'cloudformation-template-update-stack.json');
  const template = await readJson<Template>(updateTemplatePath, 'the update template');
  const state = await readJson<ServerlessState>(join(dir, 'serverless-state.json'), 'the serverless state');
  const functions = packagedFunctions(dir, state, template);
  return {
    dir,
    createTemplatePath,
    updateTemplatePath,
    template,
    functionZips: Object.fromEntries(Object.entries(functions).map(([name, fn]) => [name, fn.zipPath])),
    functions,
    stackTags: state.service.provider.stackTags ?? {},
  };
};

/** cfn-lint with the project's `.cfnlintrc.yaml` (read from the project root); any finding fails. */
export const lintTemplate = async (templatePath: string): Promise<void> => {
  const path = resolve(PROJECT_ROOT, templatePath);
  try {
    await run('cfn-lint', [path], process.env, LINT_TIMEOUT_MS);
  } catch (error) {
    const hint = /could not start/.test((error as Error).message)
      ? '\nInstall it with `pipx install cfn-lint` (or `pip install cfn-lint`).'
      : '';
    throw new Error(`cfn-lint found problems in ${path}: ${(error as Error).message}${hint}`);
  }
};

const INTRINSIC_NAMES = /^(Ref|Fn::[A-Za-z0-9]+)$/;
/** These return lists, which cannot be elements of Fn::Join. */
const LIST_INTRINSICS = new Set(['Fn::GetAZs', 'Fn::Split', 'Fn::Cidr']);

const isIntrinsic = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && INTRINSIC_NAMES.test(keys[0] as string);
};

/** JSON text of `value` as a list of literal text and intrinsics; an intrinsic stands for a JSON string. */
const jsonPieces = (value: unknown): unknown[] => {
  if (isIntrinsic(value)) {
    const name = Object.keys(value)[0] as string;
    if (LIST_INTRINSICS.has(name)) {
      throw new Error(`${name} returns a list and cannot be joined into a key policy string`);
    }
    return ['"', value, '"'];
  }
  if (Array.isArray(value)) {
    const items = value.map((item) => (item === undefined ? ['null'] : jsonPieces(item)));
    return ['[', ...items.flatMap((item, index) => (index === 0 ? item : [',', ...item])), ']'];
  }
  if (typeof value === 'object' && value !== null) {
    const members = Object.entries(value)
      .filter(([, inner]) => inner !== undefined)
      .map(([key, inner]) => [`${JSON.stringify(key)}:`, ...jsonPieces(inner)]);
    return ['{', ...members.flatMap((member, index) => (index === 0 ? member : [',', ...member])), '}'];
  }
  return [JSON.stringify(value) ?? 'null'];
};

const mergeAdjacentText = (pieces: unknown[]): unknown[] =>
  pieces.reduce<unknown[]>((merged, piece) => {
    const last = merged.at(-1);
    if (typeof piece === 'string' && typeof last === 'string') merged[merged.length - 1] = last + piece;
    else merged.push(piece);
    return merged;
  }, []);

/**
 * moto stores a CloudFormation `KeyPolicy` object as a dict and then fails every DescribeKey
 * on the key (docs/kms-facts.md#moto). Real CloudFormation stores a string; so for moto the
 * policy becomes an `Fn::Join` of its JSON text, intrinsic functions kept as join elements
 * (each standing for a JSON string value; what they resolve to, ARNs and the like, needs no escaping).
 * A policy that is already a string, or is itself an intrinsic, is returned as it is.
 */
export const keyPolicyAsJoinedString = (policy: unknown): unknown => {
  if (typeof policy !== 'object' || policy === null || isIntrinsic(policy)) return policy;
  return { 'Fn::Join': ['', mergeAdjacentText(jsonPieces(policy))] };
};

/**
 * moto's CloudFormation hands `AWS::KMS::Key` Tags to its KMS tagger as they are, and that
 * tagger reads `TagKey`/`TagValue` (the KMS API's shape): `Key`/`Value` (CloudFormation's shape)
 * crash CreateStack/UpdateStack with HTTP 500 (KeyError 'TagKey').
 */
export const kmsKeyTagsForMoto = (tags: unknown): unknown =>
  Array.isArray(tags)
    ? tags.map((tag: unknown) =>
        typeof tag === 'object' && tag !== null && 'Key' in tag && 'Value' in tag
          ? { TagKey: tag.Key, TagValue: tag.Value }
          : tag,
      )
    : tags;

/** The template as moto can take it: only moto's own gaps are bridged; the product template stays what AWS gets. */
export const templateForMoto = (template: Template): Template => ({
  ...template,
  Resources: Object.fromEntries(
    Object.entries(template.Resources).map(([id, resource]) => {
      if (resource.Type !== 'AWS::KMS::Key' || !resource.Properties) return [id, resource];
      const properties = { ...resource.Properties };
      if (properties.KeyPolicy !== undefined) properties.KeyPolicy = keyPolicyAsJoinedString(properties.KeyPolicy);
      if (properties.Tags !== undefined) properties.Tags = kmsKeyTagsForMoto(properties.Tags);
      return [id, { ...resource, Properties: properties }];
    }),
  ),
});

const failureReasons = async (cfn: CloudFormationClient, stackName: string): Promise<string> => {
  const { StackEvents = [] } = await cfn.send(new DescribeStackEventsCommand({ StackName: stackName }));
  const reasons = StackEvents.filter((event) => event.ResourceStatusReason).map(
    (event) =>
      `  ${event.LogicalResourceId} (${event.ResourceType}): ${event.ResourceStatus}: ${event.ResourceStatusReason}`,
  );
  return reasons.length > 0 ? reasons.join('\n') : '  (no stack event carries a reason)';
};

const waitForStack = async (cfn: CloudFormationClient, stackName: string, goal: string): Promise<void> => {
  const deadline = Date.now() + STACK_WAIT_TIMEOUT_MS;
  for (;;) {
    const { Stacks = [] } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    const status = Stacks[0]?.StackStatus ?? 'UNKNOWN';
    if (status === goal) return;
    if (status.endsWith('_FAILED') || status.includes('ROLLBACK')) {
      throw new Error(
        `Stack ${stackName} reached ${status}, not ${goal}. Stack events:\n${await failureReasons(cfn, stackName)}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Stack ${stackName} is still ${status} after ${STACK_WAIT_TIMEOUT_MS / 1000} s (waiting for ${goal})`,
      );
    }
    await sleep(STACK_POLL_MS);
  }
};

/** moto's CloudFormation provisions during the call itself, so a resource it cannot handle fails the call (HTTP 500, HTML body). */
const sendStackCall = async <T>(what: string, stackName: string, call: () => Promise<T>): Promise<T> => {
  try {
    return await call();
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const hint = status === 500 ? ' (moto crashed while provisioning; its server log has the Python traceback)' : '';
    throw new Error(
      `${what} of stack ${stackName} failed${status ? ` with HTTP ${status}` : ''}${hint}: ${(error as Error).message}`,
    );
  }
};

const stackResources = async (cfn: CloudFormationClient, stackName: string): Promise<Record<string, string>> => {
  const resources: Record<string, string> = {};
  let token: string | undefined;
  do {
    const page = await cfn.send(new ListStackResourcesCommand({ StackName: stackName, NextToken: token }));
    for (const summary of page.StackResourceSummaries ?? []) {
      if (summary.LogicalResourceId && summary.PhysicalResourceId) {
        resources[summary.LogicalResourceId] = summary.PhysicalResourceId;
      }
    }
    token = page.NextToken;
  } while (token);
  return resources;
};

const stackOutputs = async (cfn: CloudFormationClient, stackName: string): Promise<Record<string, string>> => {
  const { Stacks = [] } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
  const outputs: Record<string, string> = {};
  for (const output of Stacks[0]?.Outputs ?? []) {
    if (output.OutputKey && output.OutputValue !== undefined) outputs[output.OutputKey] = output.OutputValue;
  }
  return outputs;
};

/** Inline body when it fits, otherwise a TemplateURL into the deployment bucket (moto reads it from its own S3). */
const templateSource = async (
  s3: S3Client,
  bucket: string,
  pkg: PackagedService,
  region: string,
  body: string,
): Promise<{ TemplateBody: string } | { TemplateURL: string }> => {
  if (Buffer.byteLength(body) <= TEMPLATE_BODY_MAX_BYTES) return { TemplateBody: body };
  const firstKey = Object.values(pkg.functions)[0]?.s3Key;
  const key = `${firstKey ? dirname(firstKey) : 'serverless'}/compiled-cloudformation-template.json`;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json' }));
  return { TemplateURL: `https://s3.${region}.amazonaws.com/${bucket}/${key}` };
};

const deployedFunctions = async (
  lambda: LambdaClient,
  pkg: PackagedService,
  resources: Record<string, string>,
  stackName: string,
): Promise<Record<string, DeployedFunction>> => {
  const functions: Record<string, DeployedFunction> = {};
  for (const [name, packaged] of Object.entries(pkg.functions)) {
    const physical = resources[packaged.logicalId];
    if (!physical) throw new Error(`Function ${name} (${packaged.logicalId}) was not created in stack ${stackName}`);
    // Read back from Lambda: moto has resolved the Refs in the environment by now.
    const configuration = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: physical }));
    functions[name] = {
      name: configuration.FunctionName ?? physical,
      arn: configuration.FunctionArn ?? '',
      handler: configuration.Handler ?? packaged.handler,
      environment: configuration.Environment?.Variables ?? {},
      zipPath: packaged.zipPath,
    };
  }
  return functions;
};

/**
 * What `serverless deploy` does, against moto: create the stack with the deployment bucket,
 * upload the bundles where the template expects them, update the stack with the full template.
 */
export const deployToMoto = async (opts: {
  endpoint: string;
  region: string;
  stackName: string;
  pkg: PackagedService;
}): Promise<DeployedStack> => {
  const { stackName, pkg, region } = opts;
  const config = { endpoint: opts.endpoint, region, credentials: FAKE_CREDENTIALS };
  // No retries: CreateStack/UpdateStack are not idempotent, and a loopback server does not throttle.
  const cfn = new CloudFormationClient({ ...config, maxAttempts: 1 });
  const s3 = new S3Client({ ...config, forcePathStyle: true });
  const lambda = new LambdaClient(config);
  const Tags: Tag[] = Object.entries(pkg.stackTags).map(([Key, Value]) => ({ Key, Value }));
  try {
    const createBody = await readFile(pkg.createTemplatePath, 'utf8');
    await sendStackCall('CreateStack', stackName, () =>
      cfn.send(
        new CreateStackCommand({
          StackName: stackName,
          TemplateBody: createBody,
          Capabilities: [...CAPABILITIES],
          Tags,
        }),
      ),
    );
    await waitForStack(cfn, stackName, 'CREATE_COMPLETE');
    const bucket = (await stackResources(cfn, stackName)).ServerlessDeploymentBucket;
    if (!bucket) throw new Error(`Stack ${stackName} has no ServerlessDeploymentBucket after CreateStack`);

    for (const fn of Object.values(pkg.functions)) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: fn.s3Key, Body: await readFile(fn.zipPath) }));
    }

    const source = await templateSource(s3, bucket, pkg, region, JSON.stringify(templateForMoto(pkg.template)));
    await sendStackCall('UpdateStack', stackName, () =>
      cfn.send(new UpdateStackCommand({ StackName: stackName, ...source, Capabilities: [...CAPABILITIES], Tags })),
    );
    await waitForStack(cfn, stackName, 'UPDATE_COMPLETE');

    const resources = await stackResources(cfn, stackName);
    return {
      stackName,
      outputs: await stackOutputs(cfn, stackName),
      resources,
      functions: await deployedFunctions(lambda, pkg, resources, stackName),
      notCreated: Object.keys(pkg.template.Resources).filter((id) => !(id in resources)),
    };
  } finally {
    cfn.destroy();
    s3.destroy();
    lambda.destroy();
  }
};

const DECODE_CFN_YAML = [
  'import json, sys',
  'from cfnlint.decode import decode',
  'template, problems = decode(sys.argv[1])',
  'if problems: sys.exit("\\n".join(str(problem) for problem in problems))',
  'print(json.dumps(template))',
].join('\n');

/**
 * A CloudFormation YAML template (short-form tags such as `!Ref` and `!Sub` included) as the JSON
 * CloudFormation reads, decoded by cfn-lint's own decoder (the Python package cfn-lint installs,
 * which `lintTemplate` needs anyway).
 */
export const readCloudFormationYaml = async (templatePath: string): Promise<Template> => {
  const path = resolve(PROJECT_ROOT, templatePath);
  try {
    return JSON.parse(await run('python3', ['-c', DECODE_CFN_YAML, path], process.env, LINT_TIMEOUT_MS)) as Template;
  } catch (error) {
    throw new Error(
      `Could not decode ${path} with cfn-lint's decoder (python3 -m pip install cfn-lint): ${(error as Error).message}`,
    );
  }
};
