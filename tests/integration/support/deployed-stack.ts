import { join } from 'node:path';
import { type Emulator, startMoto } from '../../../scripts/lib/emulator';
import { type EmulatorClients, emulatorClients, subscribeQueueToTopic } from '../../../scripts/lib/local-aws';
import {
  type DeployedStack,
  deployToMoto,
  lintTemplate,
  type PackagedService,
  packageService,
} from '../../../scripts/lib/stack';

export interface TestStack {
  emulator: Emulator;
  stack: DeployedStack;
  /** What `serverless package` made: the template the stack was deployed from, and the bundles. */
  pkg: PackagedService;
  clients: EmulatorClients;
  /** A queue subscribed to the notification topic, as a person's mailbox would be. */
  inbox: Awaited<ReturnType<typeof subscribeQueueToTopic>>;
  keyId: string;
  keyArn: string;
  stop(): Promise<void>;
}

/**
 * What every integration test starts from: its own moto server, the stack packaged for
 * `stage` by `serverless package` (with stage `params` such as `aliasScope`), linted, deployed
 * into moto, and a queue on the topic.
 */
export const deployTestStack = async (
  stage: string,
  opts: { region?: string; params?: Record<string, string> } = {},
): Promise<TestStack> => {
  const region = opts.region ?? 'us-east-1';
  const emulator = await startMoto();
  try {
    const pkg = await packageService({ stage, region, outDir: join('.tmp', `package-${stage}`), params: opts.params });
    await lintTemplate(pkg.updateTemplatePath);
    const stack = await deployToMoto({ endpoint: emulator.endpoint, region, stackName: `kms-rotation-${stage}`, pkg });
    const clients = emulatorClients(emulator.endpoint, region);
    const inbox = await subscribeQueueToTopic(clients, stack.outputs.TopicArn as string, `${stage}-inbox`);
    return {
      emulator,
      stack,
      pkg,
      clients,
      inbox,
      keyId: stack.outputs.KeyId as string,
      keyArn: stack.outputs.KeyArn as string,
      stop: () => emulator.stop(),
    };
  } catch (error) {
    await emulator.stop();
    throw error;
  }
};
