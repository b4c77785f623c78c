import {
  CreateKeyCommand,
  DeleteAliasCommand,
  KMSClient,
  NotFoundException,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { KmsThrowawayKeys } from '../../../src/adapters/kms-throwaway-keys';
import { parseSelfTestRequest } from '../../../src/adapters/schemas/self-test-request';
import { SnsNotifier } from '../../../src/adapters/sns-notifier';
import { AwsServiceError, InvalidInputError, PreconditionFailedError } from '../../../src/domain/errors';
import type { Notification } from '../../../src/domain/model';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:kms-rotation-dev-notifications';
const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const sns = mockClient(SNSClient);
const kms = mockClient(KMSClient);

const notification = (extra: Partial<Notification> = {}): Notification => ({
  type: 'DriftDetected',
  severity: 'WARNING',
  keyId: KEY_ID,
  keyArn: `arn:aws:kms:us-east-1:123456789012:key/${KEY_ID}`,
  aliases: ['alias/kms-rotation-self-test/run-1/symmetric'],
  account: '123456789012',
  region: 'us-east-1',
  occurredAt: '2026-12-01T10:00:00.000Z',
  summary: 'automatic rotation is disabled',
  details: {},
  ...extra,
});

describe('Class: SnsNotifier', () => {
  beforeEach(() => {
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'message-1' });
  });

  describe('Method: publish', () => {
    it('marks a self-test notification with a selfTest attribute, a subject prefix and the body field', async () => {
      // Act
      await new SnsNotifier(new SNSClient({}), TOPIC).publish(notification({ selfTest: true }));

      // Assess
      const input = sns.commandCalls(PublishCommand)[0]?.args[0].input;
      expect(input?.MessageAttributes).toEqual({
        type: { DataType: 'String', StringValue: 'DriftDetected' },
        severity: { DataType: 'String', StringValue: 'WARNING' },
        selfTest: { DataType: 'String', StringValue: 'true' },
      });
      expect(input?.Subject).toMatch(/^\[self-test\] \[WARNING\] DriftDetected: /);
      expect((input?.Subject ?? '').length).toBeLessThan(100);
      expect(JSON.parse(input?.Message ?? '{}').selfTest).toBe(true);
    });

    it('adds nothing to the notifications of the other functions', async () => {
      // Act
      await new SnsNotifier(new SNSClient({}), TOPIC).publish(notification());

      // Assess
      const input = sns.commandCalls(PublishCommand)[0]?.args[0].input;
      expect(Object.keys(input?.MessageAttributes ?? {})).toEqual(['type', 'severity']);
      expect(input?.Subject).toMatch(/^\[WARNING\]/);
    });
  });
});

describe('Class: KmsThrowawayKeys', () => {
  beforeEach(() => {
    kms.reset();
  });

  it('creates a key with its policy and tags, once, keeping the usage it asked for when KMS leaves it out', async () => {
    // Prepare
    kms.on(CreateKeyCommand).resolves({
      KeyMetadata: { KeyId: KEY_ID, Arn: `arn:aws:kms:us-east-1:123456789012:key/${KEY_ID}`, KeySpec: 'HMAC_256' },
    });

    // Act
    const key = await new KmsThrowawayKeys(new KMSClient({})).createKey({
      keySpec: 'HMAC_256',
      keyUsage: 'GENERATE_VERIFY_MAC',
      description: 'throwaway',
      policy: '{"Version":"2012-10-17"}',
      tags: { 'kms-rotation:self-test': 'run-1' },
    });

    // Assess
    expect(key).toMatchObject({
      keyId: KEY_ID,
      keySpec: 'HMAC_256',
      keyUsage: 'GENERATE_VERIFY_MAC',
      keyState: 'Enabled',
    });
    expect(kms).toHaveReceivedCommandWith(CreateKeyCommand, {
      Policy: '{"Version":"2012-10-17"}',
      Tags: [{ TagKey: 'kms-rotation:self-test', TagValue: 'run-1' }],
    });
  });

  it('schedules a deletion by key id with the window it is given and returns the date', async () => {
    // Prepare
    const deletionDate = new Date('2026-12-08T10:00:00Z');
    kms.on(ScheduleKeyDeletionCommand).resolves({ DeletionDate: deletionDate });

    // Act
    const date = await new KmsThrowawayKeys(new KMSClient({})).scheduleKeyDeletion(KEY_ID, 7);

    // Assess
    expect(date).toEqual(deletionDate);
    expect(kms).toHaveReceivedCommandWith(ScheduleKeyDeletionCommand, { KeyId: KEY_ID, PendingWindowInDays: 7 });
  });

  it('translates a missing alias into key-not-found and a denied call into an access-denied error', async () => {
    // Prepare
    kms
      .on(DeleteAliasCommand)
      .rejectsOnce(new NotFoundException({ message: 'Alias not found', $metadata: {} }))
      .rejectsOnce(Object.assign(new Error('not authorized'), { name: 'AccessDeniedException', $metadata: {} }));
    const keys = new KmsThrowawayKeys(new KMSClient({}));

    // Act
    const missing = await keys.deleteAlias('alias/kms-rotation-self-test/run-1/rsa').catch((error) => error);
    const denied = await keys.deleteAlias('alias/kms-rotation-self-test/run-1/rsa').catch((error) => error);

    // Assess
    expect(missing).toBeInstanceOf(PreconditionFailedError);
    expect(missing.reason).toBe('key-not-found');
    expect(denied).toBeInstanceOf(AwsServiceError);
    expect(denied).toMatchObject({ operation: 'DeleteAlias', accessDenied: true });
  });
});

describe('Function: parseSelfTestRequest', () => {
  it.each([undefined, null, '', {}])('accepts no payload (%s)', (payload) => {
    expect(() => parseSelfTestRequest(payload)).not.toThrow();
  });

  it('refuses a payload with fields rather than ignore it', () => {
    expect(() => parseSelfTestRequest({ dryRun: true })).toThrow(InvalidInputError);
  });
});
