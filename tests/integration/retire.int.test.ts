import {
  CreateAliasCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  TagResourceCommand,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsProxy, startAwsProxy } from '../../scripts/lib/aws-proxy';
import type { Emulator } from '../../scripts/lib/emulator';
import { emulatorKeys } from '../../scripts/lib/emulator-keys';
import { invokeBundled } from '../../scripts/lib/invoke';
import { type KeyStateGap, keyStateGap } from '../../scripts/lib/kms-gaps/key-state';
import { type LastUsageGap, lastUsageGap } from '../../scripts/lib/kms-gaps/last-usage';
import type { EmulatorClients, subscribeQueueToTopic } from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import { deployTestStack } from './support/deployed-stack';

const DAY = 86_400_000;
/** When KMS began tracking the keys, as if they were made long ago (a key made now is tracked from now). */
const LONG_AGO = new Date(Date.now() - 400 * DAY);

interface RetireReport {
  mode: string;
  dryRun: boolean;
  examined: number;
  keys: { keyId: string; outcome: string; steps: { step: string; status: string; detail: string }[] }[];
}

/**
 * `retire` on real parts: the stack deployed into moto with retireMode=enforce and waits of 7
 * days, an alias-swap made by the `rotate` function, then `retire` run as the schedule runs it,
 * every call through the proxy with the two gaps moto lacks (GetKeyLastUsage; key-state checks on
 * cryptographic calls). Time is moved by writing what KMS and the service would have written
 * that long ago: the successor's `rotated-at`, the retirement's `retirement-at`, and KMS's
 * tracking start (seeded in the last-usage gap); the function itself runs on the real clock.
 */
describe('Function: retire against the local AWS emulator', () => {
  const region = 'us-east-1';
  let emulator: Emulator;
  let stack: DeployedStack;
  let clients: EmulatorClients;
  let inbox: Awaited<ReturnType<typeof subscribeQueueToTopic>>;
  let proxy: AwsProxy;
  let usage: LastUsageGap;
  let states: KeyStateGap;
  let app: KMSClient;

  beforeAll(async () => {
    ({ emulator, stack, clients, inbox } = await deployTestStack('itretire', {
      params: {
        aliasScope: 'alias/app/*,alias/it/*',
        retireMode: 'enforce',
        retireDisableAfterDays: '7',
        retireDeleteAfterDays: '7',
      },
    }));
    states = keyStateGap();
    usage = lastUsageGap({ trackingStartedAt: new Date(Date.now() - 365 * DAY) });
    proxy = await startAwsProxy({ target: emulator.endpoint, gaps: [states, usage] });
    // An application of the keys, through the proxy: KMS's key-state checks apply to it.
    app = new KMSClient({
      endpoint: proxy.endpoint,
      region,
      credentials: { accessKeyId: 'app', secretAccessKey: 'app' },
      maxAttempts: 1,
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await emulator?.stop();
  });

  const run = (fn: 'rotate' | 'retire', event: unknown) =>
    invokeBundled({
      endpoint: proxy.endpoint,
      region,
      fn: stack.functions[fn] as DeployedStack['functions'][string],
      event,
    });

  const ok = async <T>(fn: 'rotate' | 'retire', event: unknown): Promise<T> => {
    const outcome = await run(fn, event);
    expect(outcome.ok, JSON.stringify(outcome.ok ? outcome.result : outcome.error)).toBe(true);
    return (outcome as { result: T }).result;
  };

  const keys = () => emulatorKeys(clients.kms);
  const stateOf = async (keyId: string) =>
    (await clients.kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata;
  const backdate = (keyId: string, tag: string, days: number) =>
    clients.kms.send(
      new TagResourceCommand({
        KeyId: keyId,
        Tags: [{ TagKey: tag, TagValue: new Date(Date.now() - days * DAY).toISOString() }],
      }),
    );

  const inventory = async () => {
    const { Keys = [] } = await clients.kms.send(new ListKeysCommand({}));
    const all = await Promise.all(
      Keys.map(
        async ({ KeyId }) =>
          `${KeyId}:${(await stateOf(KeyId as string))?.KeyState}:${JSON.stringify(await keys().tagsOf(KeyId as string))}`,
      ),
    );
    const { Aliases = [] } = await clients.kms.send(new ListAliasesCommand({}));
    return { keys: all.sort(), aliases: Aliases.map((alias) => `${alias.AliasName}->${alias.TargetKeyId}`).sort() };
  };

  /** A managed key, data encrypted under it, an alias-swap by `rotate`: the predecessor retired, with its ciphertext. */
  const swapped = async (alias: string) => {
    const predecessor = await keys().createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', alias);
    const { CiphertextBlob } = await app.send(
      new EncryptCommand({ KeyId: alias, Plaintext: new TextEncoder().encode('order 42') }),
    );
    const report = await ok<{ successor: string }>('rotate', { key: alias, strategy: 'alias-swap' });
    await inbox.drain();
    // The predecessor was last used at the encryption above; KMS began tracking long before.
    return { predecessor, successor: report.successor, ciphertext: CiphertextBlob as Uint8Array };
  };

  /** What CloudTrail records, and EventBridge delivers, of a cryptographic call KMS refused. */
  const cloudTrailRecordOf = (refused: ReturnType<KeyStateGap['refused']>[number], keyArn: string) => ({
    version: '0',
    id: `evt-${refused.at.getTime()}`,
    'detail-type': 'AWS API Call via CloudTrail',
    source: 'aws.kms',
    account: keyArn.split(':')[4],
    time: refused.at.toISOString(),
    region,
    resources: [],
    detail: {
      eventVersion: '1.08',
      userIdentity: { type: 'AssumedRole', arn: 'arn:aws:sts::123456789012:assumed-role/OrdersService/i-1' },
      eventTime: refused.at.toISOString(),
      eventSource: 'kms.amazonaws.com',
      eventName: refused.api,
      awsRegion: region,
      errorCode: refused.errorCode,
      errorMessage: `${keyArn} is ${refused.keyState === 'Disabled' ? 'disabled' : 'pending deletion'}.`,
      requestParameters: { encryptionAlgorithm: 'SYMMETRIC_DEFAULT' },
      responseElements: null,
      eventID: `ct-${refused.at.getTime()}`,
      readOnly: true,
      resources: [{ accountId: keyArn.split(':')[4], type: 'AWS::KMS::Key', ARN: keyArn }],
      eventType: 'AwsApiCall',
      managementEvent: true,
      eventCategory: 'Management',
    },
  });

  it('plans in a dry run and changes nothing; leaves a predecessor alone until it has been unused for retireDisableAfterDays', async () => {
    const { predecessor } = await swapped('alias/it/retire-wait');
    const before = await inventory();
    const planned = await ok<RetireReport>('retire', { dryRun: true, keyId: predecessor });
    expect(planned).toMatchObject({ dryRun: true, examined: 1 });
    // Used a moment ago (the encryption before the swap): nothing to plan yet.
    expect(planned.keys[0]).toMatchObject({ keyId: predecessor, outcome: 'waiting' });
    const scheduled = await ok<RetireReport>('retire', { scheduled: true });
    expect(scheduled.keys.find((key) => key.keyId === predecessor)?.outcome).toBe('waiting');
    expect(await inventory()).toEqual(before);
    expect(await inbox.drain()).toEqual([]);
  });

  it('disables a predecessor unused for 7 days, notifies PredecessorDisabled; a refused use re-enables it, notifies PredecessorInUse and stops the retirement', async () => {
    const alias = 'alias/it/retire-used';
    const { predecessor, successor, ciphertext } = await swapped(alias);
    // Eight days on: the swap, and the last use, were that long ago.
    await backdate(successor, 'kms-rotation:rotated-at', 8);
    usage.seed(predecessor, {
      lastUsedAt: new Date(Date.now() - 8 * DAY),
      operation: 'Encrypt',
      trackingStartDate: LONG_AGO,
    });

    const dry = await ok<RetireReport>('retire', { dryRun: true, keyId: predecessor });
    expect(dry.keys[0]?.steps.at(-1)).toMatchObject({ step: 'disablePredecessor', status: 'planned' });
    expect((await stateOf(predecessor))?.KeyState).toBe('Enabled');

    const report = await ok<RetireReport>('retire', { scheduled: true });
    expect(report.keys.find((key) => key.keyId === predecessor)).toMatchObject({ outcome: 'disabled' });
    expect((await stateOf(predecessor))?.KeyState).toBe('Disabled');
    expect(await keys().targetOf(alias)).toBe(successor);
    expect(await keys().tagsOf(predecessor)).toMatchObject({
      'kms-rotation:state': 'retired',
      'kms-rotation:retirement': 'disabled',
    });
    const [disabled, ...others] = await inbox.drain();
    expect(others).toEqual([]);
    expect(disabled?.attributes).toEqual({ type: 'PredecessorDisabled', severity: 'INFO' });
    expect(disabled?.body).toMatchObject({
      type: 'PredecessorDisabled',
      severity: 'INFO',
      keyId: predecessor,
      keyArn: (await stateOf(predecessor))?.Arn,
      region,
      details: { successor },
    });

    // An application that still decrypts with the old key: KMS refuses it (the gap does what moto does not).
    await expect(app.send(new DecryptCommand({ CiphertextBlob: ciphertext }))).rejects.toMatchObject({
      name: 'DisabledException',
    });
    const refused = states.refused().filter((call) => call.keyId === predecessor);
    expect(refused.map((call) => [call.api, call.errorCode])).toEqual([['Decrypt', 'DisabledException']]);

    const stopped = await ok<{ outcome: string }>(
      'retire',
      cloudTrailRecordOf(refused[0] as (typeof refused)[number], (await stateOf(predecessor))?.Arn as string),
    );
    expect(stopped.outcome).toBe('stopped');
    expect((await stateOf(predecessor))?.KeyState).toBe('Enabled');
    expect(await keys().tagsOf(predecessor)).toMatchObject({ 'kms-rotation:retirement': 'stopped' });
    const [inUse] = await inbox.drain();
    expect(inUse?.attributes).toEqual({ type: 'PredecessorInUse', severity: 'WARNING' });
    expect(inUse?.body).toMatchObject({ keyId: predecessor, details: { wasState: 'Disabled' } });
    // The data decrypts again, and later runs leave the stopped retirement alone.
    await expect(app.send(new DecryptCommand({ CiphertextBlob: ciphertext }))).resolves.toBeDefined();
    const after = await ok<RetireReport>('retire', { scheduled: true });
    expect(after.keys.find((key) => key.keyId === predecessor)?.outcome).toBe('stopped');
    expect(await inbox.drain()).toEqual([]);
  });

  it('schedules the deletion of a predecessor disabled and unused for 7 more days with the 30-day window, notifies PredecessorDeletionScheduled; a refused use cancels it', async () => {
    const { predecessor, successor, ciphertext } = await swapped('alias/it/retire-deleted');
    await backdate(successor, 'kms-rotation:rotated-at', 20);
    usage.seed(predecessor, {
      lastUsedAt: new Date(Date.now() - 20 * DAY),
      operation: 'Encrypt',
      trackingStartDate: LONG_AGO,
    });
    await ok<RetireReport>('retire', { keyId: predecessor });
    expect((await stateOf(predecessor))?.KeyState).toBe('Disabled');
    await inbox.drain();

    await backdate(predecessor, 'kms-rotation:retirement-at', 8);
    const report = await ok<RetireReport>('retire', { scheduled: true });
    expect(report.keys.find((key) => key.keyId === predecessor)?.outcome).toBe('deletion-scheduled');
    const metadata = await stateOf(predecessor);
    expect(metadata?.KeyState).toBe('PendingDeletion');
    const windowDays = ((metadata?.DeletionDate?.getTime() ?? 0) - Date.now()) / DAY;
    expect(Math.round(windowDays)).toBe(30);
    const [scheduled] = await inbox.drain();
    expect(scheduled?.attributes).toEqual({ type: 'PredecessorDeletionScheduled', severity: 'WARNING' });
    expect(scheduled?.body).toMatchObject({ keyId: predecessor, details: { pendingWindowDays: 30 } });

    // A run the same day has nothing more to do.
    const again = await ok<RetireReport>('retire', { keyId: predecessor });
    expect(again.keys[0]?.outcome).toBe('deletion-scheduled');
    expect(await inbox.drain()).toEqual([]);

    await expect(app.send(new DecryptCommand({ CiphertextBlob: ciphertext }))).rejects.toMatchObject({
      name: 'KMSInvalidStateException',
    });
    const refused = states.refused().filter((call) => call.keyId === predecessor);
    const stopped = await ok<{ outcome: string }>(
      'retire',
      cloudTrailRecordOf(refused.at(-1) as (typeof refused)[number], metadata?.Arn as string),
    );
    expect(stopped.outcome).toBe('stopped');
    expect((await stateOf(predecessor))?.KeyState).toBe('Enabled');
    const [inUse] = await inbox.drain();
    expect(inUse?.body).toMatchObject({ type: 'PredecessorInUse', details: { wasState: 'PendingDeletion' } });
  });

  it('never touches a key an alias points at, nor one whose lineage the successor does not confirm', async () => {
    const { predecessor, successor } = await swapped('alias/it/retire-kept');
    await backdate(successor, 'kms-rotation:rotated-at', 30);
    usage.seed(predecessor, { lastUsedAt: new Date(Date.now() - 30 * DAY), trackingStartDate: LONG_AGO });
    await clients.kms.send(
      new CreateAliasCommand({
        AliasName: 'alias/it/legacy-reader',
        TargetKeyId: predecessor,
      }),
    );
    const aliased = await ok<RetireReport>('retire', { keyId: predecessor });
    expect(aliased.keys[0]?.outcome).toBe('aliased');

    // A key someone tagged retired, naming a successor that does not name it back.
    const impostor = await keys().createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', 'alias/it/impostor');
    await clients.kms.send(
      new TagResourceCommand({
        KeyId: impostor,
        Tags: [
          { TagKey: 'kms-rotation:state', TagValue: 'retired' },
          { TagKey: 'kms-rotation:successor', TagValue: successor },
          { TagKey: 'kms-rotation:rotation-id', TagValue: 'forged' },
        ],
      }),
    );
    const before = await inventory();
    const report = await ok<RetireReport>('retire', { scheduled: true });
    expect(report.keys.find((key) => key.keyId === impostor)?.outcome).toBe('not-ours');
    expect(report.keys.find((key) => key.keyId === predecessor)?.outcome).toBe('aliased');
    expect(await inventory()).toEqual(before);
    expect(await inbox.drain()).toEqual([]);
  });
});
