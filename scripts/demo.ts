/**
 * `npm run demo`: the whole service in about a minute, on a local AWS emulator. Starts moto
 * server on loopback, packages, lints and deploys the stack into it, then runs every function's
 * bundle as Lambda would, on real keys: an on-demand rotation validated (rotate, then onRotation
 * for the event KMS sends); an alias-swap of a signing key, with a signature made before it still
 * verifying by its key id; a drift made "by someone", told with who did it, then put back in
 * remediate mode; an audit of a small mixed fleet, its findings in Security Hub. Prints each step, the notifications, the
 * metrics and a timeline. Stops the emulator.
 */
import { join } from 'node:path';
import {
  CreateKeyCommand,
  DecryptCommand,
  DisableKeyRotationCommand,
  EncryptCommand,
  GetKeyRotationStatusCommand,
  ListKeyRotationsCommand,
  SignCommand,
  TagResourceCommand,
  VerifyCommand,
} from '@aws-sdk/client-kms';
import { GetFindingsCommand, SecurityHubClient } from '@aws-sdk/client-securityhub';
import { type Emulator, startMoto } from './lib/emulator';
import { emulatorKeys } from './lib/emulator-keys';
import { type InvokeResult, invokeBundled } from './lib/invoke';
import { emulatorClients, kmsCallRecord, rotationEvent, subscribeQueueToTopic } from './lib/local-aws';
import { type DeployedStack, deployToMoto, lintTemplate, packageService } from './lib/stack';

const REGION = 'us-east-1';
const STAGE = 'demo';

const startedAt = Date.now();
const timeline: { at: number; what: string }[] = [];
const mark = (what: string): void => {
  timeline.push({ at: Date.now() - startedAt, what });
  console.log(`  ✓ ${what}`);
};
const heading = (text: string): void => console.log(`\n== ${text} ==`);
const detail = (text: string): void => console.log(`      ${text}`);

interface Check {
  id: string;
  status: string;
  detail: string;
}
interface Step {
  step: string;
  status: string;
  detail: string;
}

const main = async (): Promise<void> => {
  heading('Local AWS');
  let emulator: Emulator | undefined;
  try {
    emulator = await startMoto();
    const endpoint = emulator.endpoint;
    mark(`moto server listening on ${endpoint}`);

    // With the audit's and the drift watch's findings sent to Security Hub (opt-in: securityHubFindings).
    const pkg = await packageService({
      stage: STAGE,
      region: REGION,
      outDir: join('.tmp', 'package-demo'),
      params: { securityHubFindings: 'true' },
    });
    mark(`serverless package: CloudFormation template and ${Object.keys(pkg.functionZips).length} function bundles`);
    await lintTemplate(pkg.updateTemplatePath);
    mark('cfn-lint: generated template is clean');
    const stack = await deployToMoto({ endpoint, region: REGION, stackName: `kms-rotation-${STAGE}`, pkg });
    const keyId = stack.outputs.KeyId as string;
    const keyArn = stack.outputs.KeyArn as string;
    const alias = stack.outputs.AliasName as string;
    const account = keyArn.split(':')[4] as string;
    mark(`deployed stack kms-rotation-${STAGE}: key ${keyId} (${alias}), topic, dead-letter queue, rules, roles`);

    const clients = emulatorClients(endpoint, REGION);
    const keys = emulatorKeys(clients.kms);
    const inbox = await subscribeQueueToTopic(clients, stack.outputs.TopicArn as string, 'demo-inbox');
    mark('subscribed a queue to the notification topic (stands in for the on-call mailbox)');

    const emf: object[] = [];
    /** Runs a function's bundle in a fresh Node process with the environment CloudFormation gave it. */
    const invoke = async (
      name: string,
      event: unknown,
      environment: Record<string, string> = {},
    ): Promise<Record<string, unknown>> => {
      const fn = stack.functions[name] as DeployedStack['functions'][string];
      const invokedAt = Date.now();
      const outcome: InvokeResult = await invokeBundled({
        endpoint,
        region: REGION,
        fn: { ...fn, environment: { ...fn.environment, ...environment } },
        event,
      });
      emf.push(...outcome.emf);
      if (!outcome.ok) throw new Error(`${name} failed: ${outcome.error.name}: ${outcome.error.message}`);
      const result = outcome.result as Record<string, unknown>;
      mark(`${name}: ${String(result.summary ?? result.outcome)} (${Date.now() - invokedAt} ms, fresh Node process)`);
      return result;
    };
    const showSteps = (steps: unknown) => {
      for (const step of (steps ?? []) as Step[])
        detail(`${step.status.padEnd(8)} ${step.step.padEnd(18)} ${step.detail}`);
    };
    const showChecks = (checks: unknown) => {
      for (const check of (checks ?? []) as Check[])
        detail(`${check.status.padEnd(8)} ${check.id.padEnd(18)} ${check.detail}`);
    };

    heading('1. An on-demand rotation, validated');
    const record = 'order #1042: card ending 4242';
    const encrypted = await clients.kms.send(
      new EncryptCommand({ KeyId: alias, Plaintext: Buffer.from(record), EncryptionContext: { app: 'orders' } }),
    );
    mark(`an application encrypted "${record}" through ${alias}`);
    const rotated = await invoke('rotate', { key: alias, strategy: 'on-demand', reason: 'demo' });
    showSteps(rotated.steps);
    showChecks(rotated.checks);
    const { Rotations = [] } = await clients.kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
    const validated = await invoke(
      'onRotation',
      rotationEvent({ keyId, keyArn, time: Rotations.at(-1)?.RotationDate ?? new Date(), rotationType: 'ON_DEMAND' }),
    );
    showChecks(validated.checks);
    const decrypted = await clients.kms.send(
      new DecryptCommand({
        CiphertextBlob: encrypted.CiphertextBlob,
        KeyId: keyId,
        EncryptionContext: { app: 'orders' },
      }),
    );
    mark(`the record from before the rotation still decrypts: "${Buffer.from(decrypted.Plaintext ?? []).toString()}"`);

    heading('2. An alias-swap of a signing key (KMS cannot rotate asymmetric keys itself)');
    const signingAlias = 'alias/app/signing-key';
    const predecessor = await keys.createManagedKey('RSA_2048', 'SIGN_VERIFY', signingAlias);
    const message = Buffer.from('invoice 2026-0042: EUR 1,250.00');
    const signing = { Message: message, MessageType: 'RAW' as const, SigningAlgorithm: 'RSASSA_PSS_SHA_256' as const };
    const signed = await clients.kms.send(new SignCommand({ KeyId: signingAlias, ...signing }));
    mark(`signed an invoice through ${signingAlias} (key ${predecessor})`);
    const swapped = await invoke('rotate', { key: signingAlias, strategy: 'alias-swap', reason: 'demo' });
    showSteps(swapped.steps);
    const byKeyId = await clients.kms.send(
      new VerifyCommand({ KeyId: predecessor, Signature: signed.Signature, ...signing }),
    );
    mark(`the signature made before the swap verifies with its key id ${predecessor}: ${byKeyId.SignatureValid}`);
    const throughAlias = await clients.kms
      .send(new VerifyCommand({ KeyId: signingAlias, Signature: signed.Signature, ...signing }))
      .then((answer) => String(answer.SignatureValid))
      .catch((error: Error) => error.name);
    mark(
      `through the alias, which now names successor ${String(swapped.successor)}, it does not (${throughAlias}): verifiers verify with the key id a signature was made with`,
    );

    heading('3. A drift: someone switches rotation off');
    await clients.kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));
    const disabled = kmsCallRecord({
      eventName: 'DisableKeyRotation',
      requestParameters: { keyId },
      resourceArns: [keyArn],
      account,
      region: REGION,
    });
    mark(`alice switched automatic rotation off on ${alias}; CloudTrail records it, EventBridge delivers the record`);
    const seen = await invoke('onKeyActivity', disabled);
    detail(`who: ${JSON.stringify(seen.actor)}`);
    const putBack = await invoke(
      'onKeyActivity',
      { ...disabled, id: crypto.randomUUID() },
      { DRIFT_MODE: 'remediate' },
    );
    detail(`in remediate mode: ${JSON.stringify(putBack.remediations)}`);
    const status = await clients.kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }));
    mark(`automatic rotation of ${alias} is on again: ${status.KeyRotationEnabled}`);

    heading('4. An audit of a small mixed fleet');
    const { KeyMetadata: unmanaged } = await clients.kms.send(new CreateKeyCommand({ Description: 'a team key' }));
    const excepted = await keys.createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', 'alias/app/legacy', {});
    await clients.kms.send(new DisableKeyRotationCommand({ KeyId: excepted }));
    const until = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    await clients.kms.send(
      new TagResourceCommand({
        KeyId: excepted,
        Tags: [
          { TagKey: 'kms-rotation:exception:rotation-enabled', TagValue: `until=${until} owner=team-x ticket=SEC-123` },
        ],
      }),
    );
    mark(
      `added a team's key with rotation off (${unmanaged?.KeyId}) and a managed key excepted from rotation until ${until}`,
    );
    const audit = await invoke('audit', {});
    const findings = (audit.findings ?? []) as { rule: string; severity: string; keyId: string; summary: string }[];
    for (const finding of findings)
      detail(`${finding.severity.padEnd(8)} ${finding.rule.padEnd(26)} ${finding.summary}`);
    for (const suppressed of (audit.suppressed ?? []) as { rule: string; keyId: string; exception?: unknown }[]) {
      detail(`SUPPRESSED ${suppressed.rule.padEnd(24)} ${suppressed.keyId} ${JSON.stringify(suppressed.exception)}`);
    }

    const securityHub = new SecurityHubClient({
      endpoint,
      region: REGION,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const { Findings = [] } = await securityHub.send(new GetFindingsCommand({}));
    const open = Findings.filter((finding) => finding.RecordState === 'ACTIVE');
    mark(`Security Hub holds ${open.length} open finding(s) of the audit, one per key and rule (ASFF)`);
    mark(
      `and ${Findings.length - open.length} resolved: the drift of step 3, imported by the drift watch, resolved once it put it back`,
    );
    for (const finding of Findings) {
      detail(
        `${String(finding.Severity?.Label).padEnd(13)} ${String(finding.Workflow?.Status).padEnd(10)} ${finding.Title} (${finding.Id})`,
      );
    }

    heading('Notifications (SNS -> subscribed queue)');
    for (const notification of await inbox.drain()) {
      const body = notification.body as { severity: string; type: string; summary: string };
      console.log(`  [${body.severity}] ${body.type}\n      ${body.summary}`);
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
