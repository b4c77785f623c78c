import { join } from 'node:path';
import { DescribeKeyCommand, KMSClient, ListResourceTagsCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startMoto } from '../../scripts/lib/emulator';
import { invokeBundled } from '../../scripts/lib/invoke';
import { type DeployedStack, deployToMoto, lintTemplate, packageService } from '../../scripts/lib/stack';

/**
 * The local-AWS harness itself, end to end: moto server on loopback, `serverless package`,
 * cfn-lint, the deploy into moto (with its key-policy workaround), and a bundled handler run.
 */
describe('Harness: package, lint, deploy into moto, run a bundle', () => {
  const region = 'us-east-1';
  let emulator: Emulator | undefined;
  let stack: DeployedStack;
  let kms: KMSClient;

  beforeAll(async () => {
    emulator = await startMoto();
    const pkg = await packageService({ stage: 'it', region, outDir: join('.tmp', 'package-it-harness') });
    await lintTemplate(pkg.updateTemplatePath);
    stack = await deployToMoto({ endpoint: emulator.endpoint, region, stackName: 'kms-rotation-it', pkg });
    kms = new KMSClient({
      endpoint: emulator.endpoint,
      region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
  }, 180_000);

  afterAll(async () => {
    kms?.destroy();
    await emulator?.stop();
  });

  it('starts moto on loopback only', () => {
    expect(emulator?.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('deploys the stack with its outputs', () => {
    expect(stack.outputs).toMatchObject({
      KeyId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      KeyArn: expect.stringMatching(/^arn:aws:kms:us-east-1:123456789012:key\//),
      AliasName: 'alias/app/secure-key',
      TopicArn: expect.stringMatching(/^arn:aws:sns:us-east-1:123456789012:/),
    });
    expect(stack.resources.RotationKey).toBe(stack.outputs.KeyId);
  });

  it('tags the deployed key as managed', async () => {
    const { Tags = [] } = await kms.send(new ListResourceTagsCommand({ KeyId: stack.outputs.KeyId }));

    expect(Tags).toContainEqual({ TagKey: 'kms-rotation:managed', TagValue: 'true' });
  });

  it('leaves a key that DescribeKey can read (the KeyPolicy workaround)', async () => {
    const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: stack.outputs.KeyId }));

    expect(KeyMetadata).toMatchObject({ KeyId: stack.outputs.KeyId, KeyState: 'Enabled' });
  });

  it('reads the function back from Lambda with its environment resolved', () => {
    const onRotation = stack.functions.onRotation;

    expect(onRotation).toMatchObject({
      name: 'kms-rotation-it-onRotation',
      arn: 'arn:aws:lambda:us-east-1:123456789012:function:kms-rotation-it-onRotation',
      handler: 'handlers/on-rotation.handler',
      zipPath: expect.stringMatching(/onRotation\.zip$/),
    });
    expect(onRotation?.environment.TOPIC_ARN).toBe(stack.outputs.TopicArn);
  });

  it('runs the bundled onRotation and reports its outcome', async () => {
    const onRotation = stack.functions.onRotation as DeployedStack['functions'][string];

    const outcome = await invokeBundled({
      endpoint: (emulator as Emulator).endpoint,
      region,
      fn: onRotation,
      event: {},
    });

    expect([true, false]).toContain(outcome.ok);
    if (outcome.ok) expect(outcome).toHaveProperty('result');
    else expect(outcome.error).toEqual({ name: expect.any(String), message: expect.any(String) });
    expect(Array.isArray(outcome.logs)).toBe(true);
    expect(Array.isArray(outcome.emf)).toBe(true);
    expect(outcome.maxRssKb).toBeGreaterThan(0);
  });
});
