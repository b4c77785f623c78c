import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  ListStackResourcesCommand,
  UpdateStackCommand,
} from '@aws-sdk/client-cloudformation';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

export const PROJECT_ROOT = resolve(__dirname, '..', '..');
const FAKE_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

type Template = {
  Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  [key: string]: unknown;
};

export interface PackagedService {
  dir: string;
  createTemplatePath: string;
  updateTemplatePath: string;
  template: Template;
  /** Function name in serverless.yml (e.g. `onRotation`) -> its bundle. */
  functionZips: Record<string, string>;
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
  functions: Record<string, DeployedFunction>;
}

/** Runs a command to completion; rejects with the command line and its output when it fails. */
export const run = (command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> =>
  new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('error', (error) => reject(new Error(`${command} could not start: ${error.message}`)));
    child.once('close', (code) => {
      if (code === 0) resolvePromise(output);
      else reject(new Error(`\`${command} ${args.join(' ')}\` exited with ${code}:\n${output}`));
    });
  });

/** The environment of the project's own tools: Node 22 from node_modules/.bin first, fake credentials. */
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

/** `serverless package` into `outDir`: the same template and bundles `serverless deploy` would upload. */
export const packageService = async (opts: {
  stage: string;
  region: string;
  outDir: string;
  params?: Record<string, string>;
}): Promise<PackagedService> => {
  const dir = resolve(PROJECT_ROOT, opts.outDir);
  await rm(dir, { recursive: true, force: true });
  const params = Object.entries(opts.params ?? {}).map(([name, value]) => `--param=${name}=${value}`);
  await run(
    join(PROJECT_ROOT, 'node_modules', '.bin', 'serverless'),
    ['package', '--stage', opts.stage, '--region', opts.region, '--package', dir, ...params],
    toolEnv(),
  );
  const updateTemplatePath = join(dir, 'cloudformation-template-update-stack.json');
  const template = JSON.parse(await readFile(updateTemplatePath, 'utf8')) as Template;
  const functionZips: Record<string, string> = {};
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const key = (resource.Properties.Code as { S3Key: string }).S3Key;
    functionZips[basename(key, '.zip')] = join(dir, basename(key));
  }
  return {
    dir,
    createTemplatePath: join(dir, 'cloudformation-template-create-stack.json'),
    updateTemplatePath,
    template,
    functionZips,
  };
};

/** cfn-lint with the project's `.cfnlintrc.yaml`; any error or warning fails. */
export const lintTemplate = async (templatePath: string): Promise<void> => {
  try {
    await run('cfn-lint', [templatePath]);
  } catch (error) {
    throw new Error(`cfn-lint found problems in ${templatePath}: ${(error as Error).message}`);
  }
};

const isIntrinsic = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (keys[0] === 'Ref' || (keys[0] as string).startsWith('Fn::'));
};

/**
 * moto stores a CloudFormation `KeyPolicy` object as a dict and then fails every DescribeKey
 * on the key (kms-reference.md §4). Real CloudFormation stores a string; so for moto the
 * policy becomes an `Fn::Join` of its JSON text, intrinsic functions kept as join elements.
 */
export const keyPolicyAsJoinedString = (policy: unknown): unknown => {
  const intrinsics: unknown[] = [];
  const marker = (index: number) => `@@cfn-intrinsic-${index}@@`;
  const replace = (value: unknown): unknown => {
    if (isIntrinsic(value)) {
      intrinsics.push(value);
      return marker(intrinsics.length - 1);
    }
    if (Array.isArray(value)) return value.map(replace);
    if (typeof value === 'object' && value !== null) {
      return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, replace(inner)]));
    }
    return value;
  };
  const text = JSON.stringify(replace(policy));
  const parts = text
    .split(/@@cfn-intrinsic-(\d+)@@/)
    .map((part, index) => (index % 2 === 1 ? intrinsics[Number(part)] : part));
  return { 'Fn::Join': ['', parts.filter((part) => part !== '')] };
};

/**
 * The template as moto can take it; only moto's own gaps are bridged, the product template
 * stays what real CloudFormation gets: the key policy as a string (see above), and key tags
 * as `TagKey`/`TagValue`, the only shape moto's CloudFormation passes to its KMS tagger.
 */
const forMoto = (template: Template): Template => {
  const resources = Object.fromEntries(
    Object.entries(template.Resources).map(([id, resource]) => {
      if (resource.Type !== 'AWS::KMS::Key') return [id, resource];
      const properties = { ...resource.Properties };
      if (typeof properties.KeyPolicy === 'object' && properties.KeyPolicy !== null) {
        properties.KeyPolicy = keyPolicyAsJoinedString(properties.KeyPolicy);
      }
      if (Array.isArray(properties.Tags)) {
        properties.Tags = (properties.Tags as { Key: string; Value: string }[]).map((tag) => ({
          TagKey: tag.Key,
          TagValue: tag.Value,
        }));
      }
      return [id, { ...resource, Properties: properties }];
    }),
  );
  return { ...template, Resources: resources };
};

const waitForStack = async (cfn: CloudFormationClient, stackName: string, goal: string): Promise<void> => {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const { Stacks = [] } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    const status = Stacks[0]?.StackStatus ?? 'UNKNOWN';
    if (status === goal) return;
    if (status.endsWith('_FAILED') || status.includes('ROLLBACK')) {
      const { StackEvents = [] } = await cfn.send(new DescribeStackEventsCommand({ StackName: stackName }));
      const reasons = StackEvents.filter((event) => event.ResourceStatusReason)
        .map((event) => `${event.LogicalResourceId}: ${event.ResourceStatus} ${event.ResourceStatusReason}`)
        .join('\n');
      throw new Error(`Stack ${stackName} reached ${status}, not ${goal}:\n${reasons}`);
    }
    if (Date.now() > deadline) throw new Error(`Stack ${stackName} still ${status} after 180 s (waiting for ${goal})`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 300));
  }
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
  const config = { endpoint: opts.endpoint, region: opts.region, credentials: FAKE_CREDENTIALS };
  const cfn = new CloudFormationClient(config);
  const s3 = new S3Client({ ...config, forcePathStyle: true });
  const lambda = new LambdaClient(config);
  const { stackName, pkg } = opts;

  await cfn.send(
    new CreateStackCommand({
      StackName: stackName,
      TemplateBody: await readFile(pkg.createTemplatePath, 'utf8'),
      Capabilities: ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM'],
    }),
  );
  await waitForStack(cfn, stackName, 'CREATE_COMPLETE');
  const bucket = (await stackResources(cfn, stackName)).ServerlessDeploymentBucket;
  if (!bucket) throw new Error(`Stack ${stackName} has no ServerlessDeploymentBucket`);

  for (const resource of Object.values(pkg.template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const key = (resource.Properties.Code as { S3Key: string }).S3Key;
    const zipPath = join(pkg.dir, basename(key));
    if (!existsSync(zipPath)) throw new Error(`Bundle ${zipPath} named by the template is missing`);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(zipPath) }));
  }

  await cfn.send(
    new UpdateStackCommand({
      StackName: stackName,
      TemplateBody: JSON.stringify(forMoto(pkg.template)),
      Capabilities: ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM'],
    }),
  );
  await waitForStack(cfn, stackName, 'UPDATE_COMPLETE');

  const { Stacks = [] } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
  const outputs = Object.fromEntries(
    (Stacks[0]?.Outputs ?? []).map((output) => [output.OutputKey, output.OutputValue]),
  );
  const resources = await stackResources(cfn, stackName);

  const functions: Record<string, DeployedFunction> = {};
  for (const [logicalId, resource] of Object.entries(pkg.template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const physical = resources[logicalId];
    if (!physical) throw new Error(`Function ${logicalId} was not created in ${stackName}`);
    const configuration = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: physical }));
    const key = (resource.Properties.Code as { S3Key: string }).S3Key;
    functions[basename(key, '.zip')] = {
      name: configuration.FunctionName ?? physical,
      arn: configuration.FunctionArn ?? '',
      handler: configuration.Handler ?? '',
      environment: configuration.Environment?.Variables ?? {},
      zipPath: join(pkg.dir, basename(key)),
    };
  }
  return { stackName, outputs: outputs as Record<string, string>, resources, functions };
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
