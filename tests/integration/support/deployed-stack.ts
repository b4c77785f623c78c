import { join } from 'node:path';
import { type Emulator, startMoto } from '../../../scripts/lib/emulator';
import { type EmulatorClients, emulatorClients, subscribeQueueToTopic } from '../../../scripts/lib/local-aws';
import { type DeployedStack, deployToMoto, lintTemplate, packageService } from '../../../scripts/lib/stack';

export interface TestStack {
  emulator: Emulator;
  stack: DeployedStack;
  clients: EmulatorClients;
  /** A queue subscribed to the notification topic, as a person's mailbox would be. */
  inbox: Awaited<ReturnType<typeof subscribeQueueToTopic>>;
  keyId: string;
  keyArn: string;
  stop(): Promise<void>;
}

/**
 * What every integration test starts from: its own moto server, the stack packaged for
 * `stage` by `serverless package` (with serverless `params`, e.g. `{ driftMode: 'remediate' }`),
 * linted, deployed into moto, and a queue on the topic.
 */
export const deployTestStack = async (
  stage: string,
  region = 'us-east-1',
  params?: Record<string, string>,
): Promise<TestStack> => {
  const emulator = await startMoto();
  try {
    const pkg = await packageService({ stage, region, outDir: join('.tmp', `package-${stage}`), params });
    await lintTemplate(pkg.updateTemplatePath);
    const stack = await deployToMoto({ endpoint: emulator.endpoint, region, stackName: `kms-rotation-${stage}`, pkg });
    const clients = emulatorClients(emulator.endpoint, region);
    const inbox = await subscribeQueueToTopic(clients, stack.outputs.TopicArn as string, `${stage}-inbox`);
    return {
      emulator,
      stack,
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
