/**
 * `npm run demo`: the main job, end to end, on a local AWS emulator.
 * Starts moto server on loopback, packages and deploys the stack into it, encrypts an
 * application record, rotates the key twice, runs the bundled `onRotation` for each
 * rotation, then prints the notifications, the metrics and a timeline. Stops the emulator.
 */
import { join } from 'node:path';
import { DecryptCommand, EncryptCommand, ListKeyRotationsCommand, RotateKeyOnDemandCommand } from '@aws-sdk/client-kms';
import { type Emulator, startMoto } from './lib/emulator';
import { invokeBundled } from './lib/invoke';
import { emulatorClients, rotationEvent, subscribeQueueToTopic } from './lib/local-aws';
import { deployToMoto, lintTemplate, packageService } from './lib/stack';

const REGION = 'us-east-1';
const STAGE = 'demo';

const startedAt = Date.now();
const timeline: { at: number; what: string }[] = [];
const mark = (what: string): void => {
  timeline.push({ at: Date.now() - startedAt, what });
  console.log(`  ✓ ${what}`);
};
const heading = (text: string): void => console.log(`\n== ${text} ==`);

interface Check {
  id: string;
  status: string;
  detail: string;
}

const main = async (): Promise<void> => {
  heading('Local AWS');
  let emulator: Emulator | undefined;
  try {
    emulator = await startMoto();
    mark(`moto server listening on ${emulator.endpoint}`);

    const pkg = await packageService({ stage: STAGE, region: REGION, outDir: join('.tmp', 'package-demo') });
    mark(`serverless package: CloudFormation template and ${Object.keys(pkg.functionZips).length} function bundle(s)`);
    await lintTemplate(pkg.updateTemplatePath);
    mark('cfn-lint: generated template is clean');
    const stack = await deployToMoto({
      endpoint: emulator.endpoint,
      region: REGION,
      stackName: `kms-rotation-${STAGE}`,
      pkg,
    });
    const keyId = stack.outputs.KeyId as string;
    const keyArn = stack.outputs.KeyArn as string;
    const alias = stack.outputs.AliasName as string;
    mark(`deployed stack kms-rotation-${STAGE}: key ${keyId} (${alias}), topic, dead-letter queue, rule, role`);

    const clients = emulatorClients(emulator.endpoint, REGION);
    const inbox = await subscribeQueueToTopic(clients, stack.outputs.TopicArn as string, 'demo-inbox');
    mark('subscribed a queue to the notification topic (stands in for the on-call mailbox)');

    heading('An application encrypts a record through the alias');
    const record = 'order #1042: card ending 4242';
    const encrypted = await clients.kms.send(
      new EncryptCommand({ KeyId: alias, Plaintext: Buffer.from(record), EncryptionContext: { app: 'orders' } }),
    );
    mark(`encrypted "${record}" through ${alias}`);

    const emf: object[] = [];
    for (const round of [1, 2]) {
      heading(`Rotation ${round}`);
      await clients.kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
      const { Rotations = [] } = await clients.kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
      const rotatedAt = Rotations.at(-1)?.RotationDate ?? new Date();
      mark(`KMS rotated the key material on demand (history: ${Rotations.length} rotation(s))`);

      const event = rotationEvent({ keyId, keyArn, time: rotatedAt, rotationType: 'ON_DEMAND' });
      const invokedAt = Date.now();
      const outcome = await invokeBundled({
        endpoint: emulator.endpoint,
        region: REGION,
        fn: stack.functions.onRotation as (typeof stack.functions)[string],
        event,
      });
      emf.push(...outcome.emf);
      if (!outcome.ok) throw new Error(`onRotation failed: ${outcome.error.name}: ${outcome.error.message}`);
      const report = outcome.result as { outcome: string; summary: string; checks: Check[] };
      mark(`onRotation ${report.outcome} the rotation in ${Date.now() - invokedAt} ms (fresh Node process)`);
      for (const check of report.checks) {
        console.log(`      ${check.status.padEnd(7)} ${check.id.padEnd(18)} ${check.detail}`);
      }
    }

    heading('The record from before both rotations');
    const decrypted = await clients.kms.send(
      new DecryptCommand({
        CiphertextBlob: encrypted.CiphertextBlob,
        KeyId: keyId,
        EncryptionContext: { app: 'orders' },
      }),
    );
    mark(`still decrypts: "${Buffer.from(decrypted.Plaintext ?? new Uint8Array()).toString()}"`);

    heading('Notifications (SNS -> subscribed queue)');
    for (const notification of await inbox.drain()) {
      const body = notification.body as { severity: string; type: string; summary: string; occurredAt: string };
      console.log(`  [${body.severity}] ${body.type} at ${body.occurredAt}\n      ${body.summary}`);
      console.log(`      message attributes: ${JSON.stringify(notification.attributes)}`);
    }

    heading('Metrics (CloudWatch embedded metric format, from the function logs)');
    for (const blob of emf as {
      _aws: { CloudWatchMetrics: { Namespace: string; Metrics: { Name: string; Unit: string }[] }[] };
    }[]) {
      const [directive] = blob._aws.CloudWatchMetrics;
      const values = (directive?.Metrics ?? []).map(
        (metric) =>
          `${metric.Name}=${JSON.stringify((blob as unknown as Record<string, unknown>)[metric.Name])} ${metric.Unit}`,
      );
      console.log(`  ${directive?.Namespace}: ${values.join(', ')}`);
    }
  } finally {
    await emulator?.stop();
    if (emulator) mark('moto server stopped');
  }

  heading('Timeline');
  for (const entry of timeline) console.log(`  +${(entry.at / 1000).toFixed(1).padStart(5)} s  ${entry.what}`);
};

main().catch((error: unknown) => {
  console.error(`\nDemo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
