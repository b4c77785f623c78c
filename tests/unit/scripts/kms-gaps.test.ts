import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GetKeyLastUsageCommand,
  KMSClient,
  ScheduleKeyDeletionCommand,
  SignCommand,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsProxy, startAwsProxy } from '../../../scripts/lib/aws-proxy';
import { type Emulator, startMoto } from '../../../scripts/lib/emulator';
import { type KeyStateGap, keyStateGap } from '../../../scripts/lib/kms-gaps/key-state';
import { type LastUsageGap, lastUsageGap } from '../../../scripts/lib/kms-gaps/last-usage';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const region = 'us-east-1';

/**
 * The two gaps the retirement stands on, in the proxy in front of a real moto server: what moto
 * lacks (GetKeyLastUsage; key-state checks on cryptographic calls) is filled, and what it does is
 * left to it.
 */
describe('KMS gaps: last usage and key state, in front of moto', { timeout: 30_000 }, () => {
  let emulator: Emulator;
  let proxy: AwsProxy;
  let kms: KMSClient;
  let direct: KMSClient;
  let usage: LastUsageGap;
  let states: KeyStateGap;
  let clock = new Date('2026-03-01T10:00:00Z');
  const trackingStartedAt = new Date('2026-01-01T00:00:00Z');

  beforeAll(async () => {
    emulator = await startMoto();
    states = keyStateGap({ now: () => clock });
    usage = lastUsageGap({ now: () => clock, trackingStartedAt });
    proxy = await startAwsProxy({ target: emulator.endpoint, gaps: [states, usage] });
    kms = new KMSClient({ endpoint: proxy.endpoint, region, credentials, maxAttempts: 1 });
    direct = new KMSClient({ endpoint: emulator.endpoint, region, credentials, maxAttempts: 1 });
  });

  afterAll(async () => {
    await proxy?.stop();
    await emulator?.stop();
  });

  const newKey = async (spec: 'SYMMETRIC_DEFAULT' | 'RSA_2048' = 'SYMMETRIC_DEFAULT') => {
    const { KeyMetadata } = await direct.send(
      new CreateKeyCommand({ KeySpec: spec, KeyUsage: spec === 'RSA_2048' ? 'SIGN_VERIFY' : 'ENCRYPT_DECRYPT' }),
    );
    return { keyId: KeyMetadata?.KeyId as string, created: KeyMetadata?.CreationDate as Date };
  };

  it('answers GetKeyLastUsage with no use, tracking from the later of its start and the key creation', async () => {
    const { keyId, created } = await newKey();
    const answer = await kms.send(new GetKeyLastUsageCommand({ KeyId: keyId }));
    expect(answer.KeyId).toBe(keyId);
    expect(answer.KeyLastUsage).toEqual({});
    // Epoch seconds with a fraction on the wire: equal to the millisecond, give or take its rounding.
    expect(
      Math.abs((answer.TrackingStartDate?.getTime() ?? 0) - Math.max(trackingStartedAt.getTime(), created.getTime())),
    ).toBeLessThanOrEqual(1);
  });

  it('records each successful cryptographic call for the key it used (by id, alias or ciphertext), with the operation and time', async () => {
    const { keyId } = await newKey();
    await direct.send(new CreateAliasCommand({ AliasName: 'alias/gap/used', TargetKeyId: keyId }));
    clock = new Date('2026-03-02T08:00:00Z');
    const { CiphertextBlob } = await kms.send(
      new EncryptCommand({ KeyId: 'alias/gap/used', Plaintext: new TextEncoder().encode('x') }),
    );
    clock = new Date('2026-03-03T09:30:00Z');
    await kms.send(new DecryptCommand({ CiphertextBlob }));
    const answer = await kms.send(new GetKeyLastUsageCommand({ KeyId: keyId }));
    expect(answer.KeyLastUsage).toMatchObject({ Operation: 'Decrypt', Timestamp: clock });

    const signer = await newKey('RSA_2048');
    await kms.send(
      new SignCommand({ KeyId: signer.keyId, Message: new Uint8Array([1]), SigningAlgorithm: 'RSASSA_PSS_SHA_256' }),
    );
    expect(usage.usageOf(signer.keyId)).toMatchObject({ operation: 'Sign', lastUsedAt: clock });
  });

  it('lets a test seed a use and a tracking start, as if KMS had recorded them', async () => {
    const { keyId } = await newKey();
    const longAgo = new Date('2025-06-01T00:00:00Z');
    usage.seed(keyId, {
      lastUsedAt: longAgo,
      operation: 'GenerateDataKey',
      trackingStartDate: new Date('2025-05-01T00:00:00Z'),
    });
    const answer = await kms.send(new GetKeyLastUsageCommand({ KeyId: keyId }));
    expect(answer).toMatchObject({
      KeyLastUsage: { Operation: 'GenerateDataKey', Timestamp: longAgo },
      TrackingStartDate: new Date('2025-05-01T00:00:00Z'),
    });
  });

  it("answers GetKeyLastUsage of an unknown key with moto's NotFoundException", async () => {
    await expect(
      kms.send(new GetKeyLastUsageCommand({ KeyId: '00000000-0000-4000-8000-000000000000' })),
    ).rejects.toMatchObject({ name: 'NotFoundException' });
  });

  it('refuses cryptographic calls on a disabled key with DisabledException and on one pending deletion with KMSInvalidStateException, never counting them as uses', async () => {
    const { keyId } = await newKey();
    const plaintext = new TextEncoder().encode('y');
    clock = new Date('2026-03-04T00:00:00Z');
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }));
    const usedAt = clock;

    await direct.send(new DisableKeyCommand({ KeyId: keyId }));
    clock = new Date('2026-03-05T00:00:00Z');
    await expect(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }))).rejects.toMatchObject({
      name: 'DisabledException',
    });
    await expect(kms.send(new DecryptCommand({ CiphertextBlob }))).rejects.toMatchObject({ name: 'DisabledException' });
    // moto itself would have answered: the gap is what refuses.
    await expect(direct.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }))).resolves.toBeDefined();

    await direct.send(new EnableKeyCommand({ KeyId: keyId }));
    await direct.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    await expect(kms.send(new DecryptCommand({ CiphertextBlob }))).rejects.toMatchObject({
      name: 'KMSInvalidStateException',
    });

    expect(
      states
        .refused()
        .filter((call) => call.keyId === keyId)
        .map((call) => [call.api, call.errorCode]),
    ).toEqual([
      ['Encrypt', 'DisabledException'],
      ['Decrypt', 'DisabledException'],
      ['Decrypt', 'KMSInvalidStateException'],
    ]);
    expect(usage.usageOf(keyId)).toMatchObject({ lastUsedAt: usedAt, operation: 'Encrypt' });
    // The refused calls are recorded by the proxy as filled (Decrypt names no key: the ciphertext does).
    expect(
      proxy
        .calls()
        .filter((call) => call.outcome === 'filled' && call.status === 400 && call.api !== 'GetKeyLastUsage')
        .map((call) => call.api),
    ).toEqual(['Encrypt', 'Decrypt', 'Decrypt']);
  });
});
