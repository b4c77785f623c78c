/**
 * `npx tsx scripts/emulator.ts deploy [--stage local] [--region us-east-1] [--param name=value ...]`
 * (also `npm run emulator`): starts moto server on loopback, packages the service, lints the
 * template, deploys it into moto, prints what was deployed and how to reach it, then keeps moto
 * running until Ctrl-C, so that ops can poke at the stack with the AWS CLI or SDK.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ListKeyRotationsCommand, RotateKeyOnDemandCommand } from '@aws-sdk/client-kms';
import { type Emulator, startMoto } from './lib/emulator';
import { emulatorClients, kmsCallRecord, rotationEvent } from './lib/local-aws';
import { type DeployedStack, deployToMoto, lintTemplate, packageService } from './lib/stack';

const USAGE = 'Usage: npx tsx scripts/emulator.ts deploy [--stage local] [--region us-east-1] [--param name=value ...]';

interface DeployOptions {
  stage: string;
  region: string;
  params: Record<string, string>;
}

const parseDeployOptions = (args: string[]): DeployOptions => {
  const { values } = parseArgs({
    args,
    options: {
      stage: { type: 'string', default: 'local' },
      region: { type: 'string', default: 'us-east-1' },
      param: { type: 'string', multiple: true, default: [] },
    },
  });
  const params: Record<string, string> = {};
  for (const pair of values.param) {
    const equals = pair.indexOf('=');
    if (equals <= 0) throw new Error(`--param takes name=value, got "${pair}"`);
    params[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return { stage: values.stage, region: values.region, params };
};

/**
 * What ops can try each function with, against this stack: events about the stack's own key,
 * written beside the package, and the commands that invoke each function with
 * `serverless invoke local`, in an order that tells a story (tests/integration/manual-invoke.int.test.ts
 * runs them as printed). The stack's key is rotated once on demand, so that onRotation has a
 * rotation to validate.
 */
const prepareTryIt = async (emulator: Emulator, stack: DeployedStack, options: DeployOptions): Promise<string[]> => {
  const keyId = stack.outputs.KeyId as string;
  const keyArn = stack.outputs.KeyArn as string;
  const account = keyArn.split(':')[4] as string;
  const { kms } = emulatorClients(emulator.endpoint, options.region);
  await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
  const { Rotations = [] } = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
  const events = join('.tmp', `emulator-${options.stage}`, 'events');
  await mkdir(events, { recursive: true });
  const rotationFile = join(events, 'rotation.json');
  const recordFile = join(events, 'disable-key-rotation.json');
  const rotation = rotationEvent({
    keyId,
    keyArn,
    time: Rotations.at(-1)?.RotationDate ?? new Date(),
    rotationType: 'ON_DEMAND',
    account,
    region: options.region,
  });
  const record = kmsCallRecord({
    eventName: 'DisableKeyRotation',
    requestParameters: { keyId },
    resourceArns: [keyArn],
    account,
    region: options.region,
  });
  await writeFile(rotationFile, `${JSON.stringify(rotation, null, 2)}\n`);
  await writeFile(recordFile, `${JSON.stringify(record, null, 2)}\n`);
  const sls = `npx serverless invoke local --stage ${options.stage} --region ${options.region}`;
  const flags = Object.entries(options.params)
    .map(([name, value]) => ` --param ${name}=${value}`)
    .join('');
  return [
    `${sls}${flags} -f rotate --data '{"key":"${stack.outputs.AliasName}","dryRun":true}'`,
    `${sls}${flags} -f onRotation --path ${rotationFile}`,
    `aws kms disable-key-rotation --key-id ${keyId}`,
    `${sls}${flags} -f onKeyActivity --path ${recordFile}`,
    `${sls}${flags} -f audit --data '{"remediate":true}'`,
    `${sls}${flags} -f audit`,
    `${sls}${flags} -f selfTest`,
  ];
};

const printStack = (emulator: Emulator, stack: DeployedStack, region: string, tryIt: readonly string[]): void => {
  console.log(`\nStack ${stack.stackName} is deployed in moto at ${emulator.endpoint}\n`);
  console.log('Outputs:');
  for (const [name, value] of Object.entries(stack.outputs)) console.log(`  ${name.padEnd(36)} ${value}`);
  console.log('\nFunctions (moto cannot run them; `serverless invoke local` runs them here, below):');
  for (const [name, fn] of Object.entries(stack.functions)) console.log(`  ${name.padEnd(16)} ${fn.arn}`);
  console.log(
    `\nNot created by moto (unsupported types, or a false Condition): ${stack.notCreated.join(', ') || 'none'}`,
  );
  // The SDKs read AWS_REGION, the AWS CLI AWS_DEFAULT_REGION.
  console.log('\nTo use it from another shell:');
  console.log(
    `  export AWS_ENDPOINT_URL=${emulator.endpoint} AWS_REGION=${region} AWS_DEFAULT_REGION=${region} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test`,
  );
  console.log(`  aws kms describe-key --key-id ${stack.outputs.AliasName ?? '<alias>'}`);
  console.log(
    "\nTry each function (in that shell, in this order: a dry run, the validation of the key's rotation, a drift made and seen, an audit that puts it back, a clean audit, the self-test):",
  );
  for (const command of tryIt) console.log(`  ${command}`);
  console.log('\nPress Ctrl-C to stop moto.');
};

const untilInterrupted = (): Promise<NodeJS.Signals> =>
  new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });

const deploy = async (options: DeployOptions): Promise<void> => {
  const emulator = await startMoto();
  console.log(`moto server listening on ${emulator.endpoint}`);
  try {
    const pkg = await packageService({
      stage: options.stage,
      region: options.region,
      outDir: join('.tmp', `emulator-${options.stage}`),
      params: options.params,
    });
    console.log(`packaged: ${Object.keys(pkg.functionZips).join(', ')}`);
    await lintTemplate(pkg.updateTemplatePath);
    console.log('cfn-lint: clean');
    const stackName = `kms-rotation-${options.stage}`;
    let stack: DeployedStack;
    try {
      stack = await deployToMoto({ endpoint: emulator.endpoint, region: options.region, stackName, pkg });
    } catch (error) {
      console.error(`\nmoto server output (last lines):\n${emulator.recentOutput().split('\n').slice(-40).join('\n')}`);
      throw error;
    }
    printStack(emulator, stack, options.region, await prepareTryIt(emulator, stack, options));
    const signal = await untilInterrupted();
    console.log(`\n${signal}: stopping moto`);
  } finally {
    await emulator.stop();
  }
};

const main = async (): Promise<void> => {
  const [command, ...rest] = process.argv.slice(2);
  if (command !== 'deploy') {
    console.error(USAGE);
    process.exitCode = 2;
    return;
  }
  await deploy(parseDeployOptions(rest));
};

main().catch((error: unknown) => {
  console.error(`\nemulator: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
