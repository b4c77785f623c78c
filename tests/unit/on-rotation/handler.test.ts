import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  DecryptCommand,
  DescribeKeyCommand,
  DisabledException,
  EncryptCommand,
  GetKeyRotationStatusCommand,
  KMSClient,
  KMSInvalidStateException,
  KMSServiceException,
  ListAliasesCommand,
  ListKeyRotationsCommand,
  ListResourceTagsCommand,
  NotFoundException,
} from '@aws-sdk/client-kms';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  AwsServiceError,
  InvalidInputError,
  PreconditionFailedError,
  VerificationFailedError,
} from '../../../src/domain/errors';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const KEY_ARN = `arn:aws:kms:us-east-1:123456789012:key/${KEY_ID}`;
const OTHER_ID = '0000aaaa-1111-4222-8333-444455556666';
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:kms-rotation-test-notifications';
const CONTEXT = {
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:kms-rotation-test-onRotation',
} as Context;
const EVENT_TIME = new Date('2026-11-20T03:11:54Z');
const event = (file: string) => JSON.parse(readFileSync(`events/${file}`, 'utf8'));

const kms = mockClient(KMSClient);
const sns = mockClient(SNSClient);
const ssm = mockClient(SSMClient);

/** Ciphertext the fake KMS "makes": the plaintext reversed, so decrypting is checkable. */
const reverse = (data: Uint8Array) => new Uint8Array([...data].reverse());

/** A managed key in its declared state, rotated on demand at the sample event's time. */
const mockManagedKey = (
  overrides: { state?: string; spec?: string; usage?: string; rotationEnabled?: boolean; period?: number } = {},
) => {
  kms.on(DescribeKeyCommand, { KeyId: KEY_ID }).resolves({
    KeyMetadata: {
      KeyId: KEY_ID,
      Arn: KEY_ARN,
      KeyState: (overrides.state ?? 'Enabled') as 'Enabled',
      KeySpec: (overrides.spec ?? 'SYMMETRIC_DEFAULT') as 'SYMMETRIC_DEFAULT',
      KeyUsage: (overrides.usage ?? 'ENCRYPT_DECRYPT') as 'ENCRYPT_DECRYPT',
      KeyManager: 'CUSTOMER',
      Origin: 'AWS_KMS',
      CurrentKeyMaterialId: '96083e4fb6dbc41d77578a213a6b6669c044dd4c143e96755396d2bf11fd6068',
    },
  });
  kms.on(ListResourceTagsCommand).resolves({
    Tags: [
      { TagKey: 'kms-rotation:managed', TagValue: 'true' },
      { TagKey: 'kms-rotation:aliases', TagValue: 'alias/app/secure-key' },
      { TagKey: 'kms-rotation:period-days', TagValue: '365' },
    ],
  });
  kms.on(GetKeyRotationStatusCommand).resolves({
    KeyRotationEnabled: overrides.rotationEnabled ?? true,
    RotationPeriodInDays: overrides.period ?? 365,
  });
  kms.on(ListKeyRotationsCommand).resolves({
    Rotations: [
      {
        KeyId: KEY_ID,
        KeyMaterialId: '96083e4fb6dbc41d77578a213a6b6669c044dd4c143e96755396d2bf11fd6068',
        RotationDate: EVENT_TIME,
        RotationType: 'ON_DEMAND',
      },
      {
        KeyId: KEY_ID,
        KeyMaterialId: 'a'.repeat(64),
        RotationDate: new Date('2026-11-21T00:00:05Z'),
        RotationType: 'AUTOMATIC',
      },
    ],
  });
  kms.on(ListAliasesCommand).resolves({ Aliases: [{ AliasName: 'alias/app/secure-key', TargetKeyId: KEY_ID }] });
  kms.on(EncryptCommand).callsFake(async (input) => ({ CiphertextBlob: reverse(input.Plaintext), KeyId: KEY_ARN }));
  kms.on(DecryptCommand).callsFake(async (input) => ({ Plaintext: reverse(input.CiphertextBlob), KeyId: KEY_ARN }));
};

/** A canary made before the rotation: ciphertext and the digest of its plaintext. */
const mockCanary = (plaintext = new Uint8Array(32).fill(9), digestOf = plaintext) => {
  ssm.on(GetParameterCommand).resolves({
    Parameter: {
      Value: JSON.stringify({
        canary: {
          ciphertext: Buffer.from(reverse(plaintext)).toString('base64'),
          plaintextSha256: createHash('sha256').update(digestOf).digest('hex'),
          createdAt: '2026-11-01T00:00:00.000Z',
        },
      }),
    },
  });
};

const metricsPrinted = (spy: { mock: { calls: unknown[][] } }): Record<string, unknown>[] =>
  spy.mock.calls
    .map(([line]): Record<string, unknown> | undefined => {
      try {
        return JSON.parse(String(line));
      } catch {
        return undefined;
      }
    })
    .filter((blob): blob is Record<string, unknown> => Boolean(blob?._aws));

const publishedMessages = () =>
  sns.commandCalls(PublishCommand).map((call) => ({
    message: JSON.parse(call.args[0].input.Message as string),
    attributes: call.args[0].input.MessageAttributes,
  }));

describe('Function: onRotation handler', () => {
  let handler: (
    event: unknown,
    context: Context,
  ) => Promise<{ outcome: string; checks: { id: string; status: string }[] }>;
  let log: { mock: { calls: unknown[][] }; mockClear: () => void };

  beforeAll(async () => {
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('TOPIC_ARN', TOPIC);
    vi.stubEnv('STATE_PARAMETER_PREFIX', '/kms-rotation/test/keys');
    vi.stubEnv('POWERTOOLS_SERVICE_NAME', 'kms-rotation');
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'KmsRotation');
    vi.stubEnv('POWERTOOLS_DEV', 'true');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
    ({ handler } = (await import('../../../handlers/on-rotation')) as unknown as { handler: typeof handler });
  });

  afterAll(() => {
    vi.unstubAllEnvs();
  });

  beforeEach(() => {
    kms.reset();
    sns.reset();
    ssm.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    ssm.on(GetParameterCommand).rejects(Object.assign(new Error('no parameter'), { name: 'ParameterNotFound' }));
    ssm.on(PutParameterCommand).resolves({});
    log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  });

  describe('when the rotation is sound', () => {
    it('validates the 2025 on-demand shape, notifies INFO and records RotationValidated', async () => {
      // Prepare
      mockManagedKey();
      mockCanary();

      // Act
      const report = await handler(event('rotation-on-demand.json'), CONTEXT);

      // Assess
      expect(report.outcome).toBe('validated');
      expect(Object.fromEntries(report.checks.map((check) => [check.id, check.status]))).toEqual({
        'key-state': 'passed',
        'key-type': 'passed',
        'rotation-schedule': 'skipped',
        'rotation-recorded': 'passed',
        'current-material': 'passed',
        'round-trip': 'passed',
        canary: 'passed',
      });
      expect(kms).toHaveReceivedCommandWith(EncryptCommand, {
        KeyId: 'alias/app/secure-key',
        EncryptionContext: { 'kms-rotation:purpose': 'rotation-canary', 'kms-rotation:key-id': KEY_ID },
      });
      expect(kms).toHaveReceivedCommandWith(DecryptCommand, { KeyId: KEY_ARN });
      const [published] = publishedMessages();
      expect(published?.attributes).toEqual({
        type: { DataType: 'String', StringValue: 'RotationValidated' },
        severity: { DataType: 'String', StringValue: 'INFO' },
      });
      expect(published?.message).toMatchObject({
        type: 'RotationValidated',
        keyId: KEY_ID,
        keyArn: KEY_ARN,
        region: 'us-east-1',
      });
      expect(metricsPrinted(log)).toEqual([
        expect.objectContaining({ RotationValidated: 1, AliasDrift: 0, keyId: KEY_ID, service: 'kms-rotation' }),
      ]);
    });

    it('checks the schedule of an automatic rotation against the declared period', async () => {
      mockManagedKey({ period: 365 });

      const report = await handler(event('rotation-automatic.json'), CONTEXT);

      expect(report.checks.find((check) => check.id === 'rotation-schedule')?.status).toBe('passed');
    });

    it('matches a minimal legacy event to the history by time', async () => {
      mockManagedKey();
      const legacy = { ...event('rotation-legacy-minimal.json'), time: '2026-11-20T03:11:54Z' };

      const report = await handler(legacy, CONTEXT);

      expect(report.checks.find((check) => check.id === 'rotation-recorded')).toMatchObject({ status: 'passed' });
    });

    it("stores the round trip's ciphertext as the next canary, never the plaintext", async () => {
      mockManagedKey();

      await handler(event('rotation-on-demand.json'), CONTEXT);

      const put = ssm.commandCalls(PutParameterCommand)[0]?.args[0].input;
      expect(put).toMatchObject({ Name: `/kms-rotation/test/keys/${KEY_ID}`, Type: 'String', Overwrite: true });
      const saved = JSON.parse(put?.Value as string);
      expect(Object.keys(saved.canary).sort()).toEqual(['ciphertext', 'createdAt', 'plaintextSha256']);
    });

    it('skips the canary check before there is one, and still validates', async () => {
      mockManagedKey();

      const report = await handler(event('rotation-on-demand.json'), CONTEXT);

      expect(report.checks.find((check) => check.id === 'canary')?.status).toBe('skipped');
      expect(report.outcome).toBe('validated');
    });
  });

  describe('when an alias drifted', () => {
    it('validates with a WARNING and counts the drifted aliases', async () => {
      mockManagedKey();
      kms.on(ListAliasesCommand).resolves({ Aliases: [] });
      kms
        .on(DescribeKeyCommand, { KeyId: 'alias/app/secure-key' })
        .resolves({ KeyMetadata: { KeyId: OTHER_ID, Arn: `arn:aws:kms:us-east-1:123456789012:key/${OTHER_ID}` } });

      const report = await handler(event('rotation-on-demand.json'), CONTEXT);

      expect(report.outcome).toBe('validated');
      expect(kms).toHaveReceivedCommandWith(EncryptCommand, { KeyId: KEY_ARN });
      const [published] = publishedMessages();
      expect(published?.message.severity).toBe('WARNING');
      expect(published?.message.summary).toContain(`alias/app/secure-key points at ${OTHER_ID}`);
      expect(metricsPrinted(log)[0]).toMatchObject({ AliasDrift: 1 });
    });
  });

  describe('when verification fails', () => {
    const expectCritical = async (file = 'rotation-on-demand.json') => {
      await expect(handler(event(file), CONTEXT)).rejects.toBeInstanceOf(VerificationFailedError);
      const [published] = publishedMessages();
      expect(published?.attributes?.severity?.StringValue).toBe('CRITICAL');
      expect(published?.message.type).toBe('RotationValidationFailed');
      expect(metricsPrinted(log)[0]).toMatchObject({ RotationValidationFailed: 1 });
      // The failure is remembered; the canary on record is not replaced by data from the failed key.
      const previous = await ssm.commandCalls(GetParameterCommand)[0]?.returnValue?.catch(() => undefined);
      const previousCanary = JSON.parse(previous?.Parameter?.Value ?? '{}').canary;
      const saved = ssm.commandCalls(PutParameterCommand).map((call) => JSON.parse(call.args[0].input.Value as string));
      expect(saved).toEqual([expect.objectContaining({ notifiedFailures: [expect.stringContaining(KEY_ID)] })]);
      expect(saved[0]?.canary).toEqual(previousCanary);
    };

    it('fails CRITICAL when data from before the rotation decrypts to something else', async () => {
      mockManagedKey();
      mockCanary(new Uint8Array(32).fill(9), new Uint8Array(32).fill(1));
      await expectCritical();
    });

    it('fails CRITICAL when the old data no longer decrypts (InvalidCiphertextException)', async () => {
      mockManagedKey();
      mockCanary();
      kms.on(DecryptCommand).rejects(
        new KMSServiceException({
          name: 'InvalidCiphertextException',
          $fault: 'client',
          message: 'bad',
          $metadata: {},
        }),
      );
      await expectCritical();
    });

    it('fails CRITICAL when the alias sends data to another key', async () => {
      mockManagedKey();
      kms
        .on(EncryptCommand)
        .resolves({ CiphertextBlob: new Uint8Array(4), KeyId: `arn:aws:kms:us-east-1:123456789012:key/${OTHER_ID}` });
      await expectCritical();
    });

    it("fails CRITICAL when the rotation is not in the key's history", async () => {
      mockManagedKey();
      kms.on(ListKeyRotationsCommand).resolves({ Rotations: [] });
      await expectCritical();
    });

    it('fails CRITICAL when an automatically rotated key has rotation disabled, or another period', async () => {
      mockManagedKey({ rotationEnabled: false });
      await expectCritical('rotation-automatic.json');
      sns.resetHistory();
      ssm.resetHistory();
      log.mockClear();
      mockManagedKey({ period: 730 });
      await expectCritical('rotation-automatic.json');
    });

    it('fails CRITICAL when KMS reports other current material than the event, unless a newer rotation superseded it', async () => {
      mockManagedKey();
      const stale = { ...event('rotation-on-demand.json') };
      stale.detail = { ...stale.detail, 'current-key-material-id': 'b'.repeat(64) };
      kms.on(ListKeyRotationsCommand).resolves({
        Rotations: [{ KeyMaterialId: 'b'.repeat(64), RotationDate: EVENT_TIME, RotationType: 'ON_DEMAND' }],
      });
      await expect(handler(stale, CONTEXT)).rejects.toBeInstanceOf(VerificationFailedError);

      sns.resetHistory();
      mockManagedKey();
      kms.on(ListKeyRotationsCommand).resolves({
        Rotations: [
          { KeyMaterialId: 'b'.repeat(64), RotationDate: EVENT_TIME, RotationType: 'ON_DEMAND' },
          {
            KeyMaterialId: '96083e4fb6dbc41d77578a213a6b6669c044dd4c143e96755396d2bf11fd6068',
            RotationDate: new Date('2026-11-21T00:00:00Z'),
            RotationType: 'ON_DEMAND',
          },
        ],
      });
      const superseded = await handler(stale, CONTEXT);
      expect(superseded.checks.find((check) => check.id === 'current-material')?.status).toBe('skipped');
    });

    it('notifies once per event, not once per retry', async () => {
      mockManagedKey();
      mockCanary(new Uint8Array(32).fill(9), new Uint8Array(32).fill(1));
      await expect(handler(event('rotation-on-demand.json'), CONTEXT)).rejects.toThrow();
      const saved = ssm.commandCalls(PutParameterCommand)[0]?.args[0].input.Value as string;
      ssm.on(GetParameterCommand).resolves({ Parameter: { Value: saved } });
      sns.resetHistory();
      log.mockClear();

      await expect(handler(event('rotation-on-demand.json'), CONTEXT)).rejects.toBeInstanceOf(VerificationFailedError);

      expect(sns).not.toHaveReceivedCommand(PublishCommand);
      expect(metricsPrinted(log)[0]).not.toHaveProperty('RotationValidationFailed');
    });
  });

  describe('when the key cannot be validated', () => {
    it.each([
      ['Disabled', 'key-disabled'],
      ['PendingDeletion', 'key-pending-deletion'],
    ])('refuses a %s managed key: CRITICAL, nothing decrypted, no canary', async (state, reason) => {
      mockManagedKey({ state });

      await expect(handler(event('rotation-on-demand.json'), CONTEXT)).rejects.toMatchObject({
        name: 'PreconditionFailedError',
        reason,
      });

      expect(publishedMessages()[0]?.message).toMatchObject({ type: 'RotationValidationFailed', severity: 'CRITICAL' });
      // Only the probe of round trip 1 was attempted, in parallel with the reads.
      expect(kms).toHaveReceivedCommandTimes(EncryptCommand, 1);
      expect(kms).not.toHaveReceivedCommand(DecryptCommand);
      expect(ssm).not.toHaveReceivedCommandWith(PutParameterCommand, { Value: expect.stringContaining('canary') });
    });

    it('refuses a key of a kind KMS does not rotate', async () => {
      mockManagedKey({ spec: 'RSA_2048', usage: 'SIGN_VERIFY' });
      await expect(handler(event('rotation-on-demand.json'), CONTEXT)).rejects.toMatchObject({
        reason: 'wrong-key-type',
      });
    });

    it('refuses an unknown key without notifying', async () => {
      kms.on(DescribeKeyCommand).rejects(new NotFoundException({ message: 'Key not found', $metadata: {} }));
      await expect(handler(event('rotation-on-demand.json'), CONTEXT)).rejects.toMatchObject({
        name: 'PreconditionFailedError',
        reason: 'key-not-found',
      });
      expect(sns).not.toHaveReceivedCommand(PublishCommand);
    });

    it('skips a key it does not manage, and an AWS managed key, without notifying or decrypting', async () => {
      mockManagedKey();
      kms.on(ListResourceTagsCommand).resolves({ Tags: [] });
      expect((await handler(event('rotation-on-demand.json'), CONTEXT)).outcome).toBe('skipped');
      kms
        .on(DescribeKeyCommand)
        .resolves({ KeyMetadata: { KeyId: KEY_ID, Arn: KEY_ARN, KeyManager: 'AWS', KeyState: 'Enabled' } });
      expect((await handler(event('rotation-on-demand.json'), CONTEXT)).outcome).toBe('skipped');
      expect(sns).not.toHaveReceivedCommand(PublishCommand);
      expect(kms).toHaveReceivedCommandTimes(EncryptCommand, 2); // the probe of round trip 1, once per event
      expect(kms).not.toHaveReceivedCommand(DecryptCommand);
    });
  });

  describe('when KMS errs in ways the emulator cannot', () => {
    it('treats DisabledException during the round trip as a CRITICAL verification failure', async () => {
      mockManagedKey();
      kms.on(EncryptCommand).rejects(new DisabledException({ message: 'disabled', $metadata: {} }));
      await expect(handler(event('rotation-on-demand.json'), CONTEXT)).rejects.toBeInstanceOf(VerificationFailedError);
      expect(publishedMessages()[0]?.message.severity).toBe('CRITICAL');
    });

    it('fails on KMSInvalidStateException from the history of an enabled key', async () => {
      mockManagedKey();
      kms.on(ListKeyRotationsCommand).rejects(new KMSInvalidStateException({ message: 'state', $metadata: {} }));
      await expect(handler(event('rotation-on-demand.json'), CONTEXT)).rejects.toMatchObject({
        reason: 'key-invalid-state',
      });
    });

    it.each([
      ['ThrottlingException', 'client', 400],
      ['KMSInternalException', 'server', 500],
    ])('rethrows %s as a retryable AwsServiceError and notifies nobody', async (name, fault, status) => {
      mockManagedKey();
      kms.on(GetKeyRotationStatusCommand).rejects(
        new KMSServiceException({
          name,
          $fault: fault as 'client',
          message: 'slow down',
          $metadata: { httpStatusCode: status },
        }),
      );
      await expect(handler(event('rotation-on-demand.json'), CONTEXT)).rejects.toMatchObject({
        name: 'AwsServiceError',
        retryable: true,
      });
      expect(sns).not.toHaveReceivedCommand(PublishCommand);
    });

    it('reports AccessDeniedException as not retryable, pointing at the IAM role', async () => {
      kms.on(DescribeKeyCommand).rejects(
        new KMSServiceException({
          name: 'AccessDeniedException',
          $fault: 'client',
          message: 'denied',
          $metadata: { httpStatusCode: 400 },
        }),
      );
      const failure = handler(event('rotation-on-demand.json'), CONTEXT);
      await expect(failure).rejects.toBeInstanceOf(AwsServiceError);
      await expect(failure).rejects.toMatchObject({ retryable: false, message: expect.stringContaining('IAM role') });
    });

    it('fails (so Lambda retries) when the notification cannot be published, after refreshing the canary', async () => {
      mockManagedKey();
      sns.on(PublishCommand).rejects(new Error('socket hang up'));
      await expect(handler(event('rotation-on-demand.json'), CONTEXT)).rejects.toMatchObject({ retryable: true });
      expect(ssm).toHaveReceivedCommand(PutParameterCommand);
    });

    it('validates without the canary when the state cannot be read, and saying so', async () => {
      mockManagedKey();
      ssm.on(GetParameterCommand).rejects(new Error('ssm down'));
      const report = await handler(event('rotation-on-demand.json'), CONTEXT);
      expect(report.checks.find((check) => check.id === 'canary')?.status).toBe('skipped');
    });

    it('still validates when the canary cannot be refreshed', async () => {
      mockManagedKey();
      ssm.on(PutParameterCommand).rejects(new Error('ssm down'));
      expect((await handler(event('rotation-on-demand.json'), CONTEXT)).outcome).toBe('validated');
    });
  });

  describe('when the event is bad', () => {
    it.each([
      ['invalid-wrong-source.json', 'source'],
      ['invalid-wrong-detail-type.json', 'detail-type'],
      ['invalid-missing-key-id.json', 'key-id'],
      ['invalid-resource-mismatch.json', 'resources'],
      ['invalid-hostile-detail.json', 'key-id'],
    ])('refuses %s naming %s, without any AWS call', async (file, field) => {
      const failure = handler(event(file), CONTEXT);
      await expect(failure).rejects.toBeInstanceOf(InvalidInputError);
      await expect(failure).rejects.toThrow(field);
      expect(kms.calls()).toEqual([]);
      expect(sns.calls()).toEqual([]);
    });

    it('refuses an event of another account or Region', async () => {
      mockManagedKey();
      await expect(handler(event('invalid-other-account.json'), CONTEXT)).rejects.toThrow(/999988887777/);
      const otherRegion = {
        ...event('rotation-on-demand.json'),
        region: 'eu-west-1',
        resources: [KEY_ARN.replace('us-east-1', 'eu-west-1')],
      };
      await expect(handler(otherRegion, CONTEXT)).rejects.toBeInstanceOf(InvalidInputError);
      expect(sns.calls()).toEqual([]);
    });

    it.each([null, 'KMS CMK Rotation', [1, 2], { ...event('rotation-on-demand.json'), id: 'x'.repeat(1_000_000) }])(
      'refuses %#: a non-event or an oversized field',
      async (bad) => {
        await expect(handler(bad, CONTEXT)).rejects.toBeInstanceOf(InvalidInputError);
        expect(kms.calls()).toEqual([]);
      },
    );

    it('has no way to be told about its own account except its function ARN', async () => {
      await expect(handler(event('rotation-on-demand.json'), {} as Context)).rejects.toBeInstanceOf(InvalidInputError);
    });
  });

  it('keeps error classes distinct for callers', () => {
    expect(new PreconditionFailedError('key-disabled', 'x')).not.toBeInstanceOf(VerificationFailedError);
  });
});
