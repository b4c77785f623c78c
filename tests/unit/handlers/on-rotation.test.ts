import { readdirSync } from 'node:fs';
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  DecryptCommand,
  DescribeKeyCommand,
  DisabledException,
  EncryptCommand,
  GetKeyRotationStatusCommand,
  InvalidCiphertextException,
  KMSClient,
  KMSInternalException,
  KMSInvalidStateException,
  KMSServiceException,
  ListAliasesCommand,
  ListKeyRotationsCommand,
  ListResourceTagsCommand,
  NotFoundException,
} from '@aws-sdk/client-kms';
import { InternalErrorException, PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetParameterCommand, ParameterNotFound, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import {
  AwsServiceError,
  InvalidInputError,
  PreconditionFailedError,
  VerificationFailedError,
} from '../../../src/domain/errors';
import {
  ACCOUNT,
  ALIAS,
  CURRENT_MATERIAL,
  KEY_ARN,
  KEY_ID,
  OTHER_KEY_ARN,
  OTHER_KEY_ID,
  REGION,
  rotationEntry,
} from '../support/key-metadata';
import {
  CANARY_CONTEXT,
  DECLARED_TAGS,
  HISTORY,
  mockCanary,
  mockManagedKey,
  mockStoredRecord,
  seal,
  sha256Hex,
} from '../support/managed-key';
import { emfBlobs, publishedNotifications, sampleEvent, savedRecords } from '../support/observations';

type OnRotationHandler = typeof import('../../../handlers/on-rotation').handler;

const TOPIC_ARN = `arn:aws:sns:${REGION}:${ACCOUNT}:kms-rotation-test-notifications`;
const STATE_PREFIX = '/kms-rotation/test/keys';
const CONTEXT = {
  invokedFunctionArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:kms-rotation-test-onRotation`,
  functionName: 'kms-rotation-test-onRotation',
  awsRequestId: 'request-1',
  getRemainingTimeInMillis: () => 120_000,
} as Context;
const ON_DEMAND = 'rotation-on-demand.json';
const ON_DEMAND_EVENT_ID = '6a7e8feb-b491-4cf7-a9f1-bf3703467718';

const kms = mockClient(KMSClient);
const sns = mockClient(SNSClient);
const ssm = mockClient(SSMClient);
const dynamodb = mockClient(DynamoDBClient);

/** KMS models no throttling exception: the SDK surfaces it as the service's base exception. */
const throttling = () =>
  new KMSServiceException({
    name: 'ThrottlingException',
    $fault: 'client',
    message: 'You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.',
    $metadata: { httpStatusCode: 400 },
  });
const internalError = () => new KMSInternalException({ message: 'internal error', $metadata: { httpStatusCode: 500 } });
const accessDenied = () =>
  new KMSServiceException({
    name: 'AccessDeniedException',
    $fault: 'client',
    message: 'User is not authorized to perform this operation',
    $metadata: { httpStatusCode: 400 },
  });

const statusOf = (report: { checks: { id: string; status: string }[] }) =>
  Object.fromEntries(report.checks.map((check) => [check.id, check.status]));

describe('Function: handler (onRotation)', () => {
  let handler: OnRotationHandler;
  let consoleLog: MockInstance<typeof console.log>;

  beforeAll(async () => {
    vi.stubEnv('AWS_REGION', REGION);
    vi.stubEnv('TOPIC_ARN', TOPIC_ARN);
    vi.stubEnv('STATE_PARAMETER_PREFIX', STATE_PREFIX);
    vi.stubEnv('LEASE_TABLE', 'kms-rotation-test-key-leases');
    vi.stubEnv('POWERTOOLS_SERVICE_NAME', 'kms-rotation');
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'KmsRotation');
    vi.stubEnv('POWERTOOLS_DEV', 'true');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
    ({ handler } = await import('../../../handlers/on-rotation'));
  });

  afterAll(() => {
    vi.unstubAllEnvs();
  });

  beforeEach(() => {
    kms.reset();
    sns.reset();
    ssm.reset();
    dynamodb.reset();
    dynamodb.on(PutItemCommand).resolves({});
    dynamodb.on(DeleteItemCommand).resolves({});
    sns.on(PublishCommand).resolves({ MessageId: 'message-1' });
    ssm.on(GetParameterCommand).rejects(new ParameterNotFound({ message: 'not found', $metadata: {} }));
    ssm.on(PutParameterCommand).resolves({ Version: 2 });
    consoleLog = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  });

  /** The handler must reject with a CRITICAL `RotationValidationFailed`, counted once, and keep the canary on record. */
  const expectCriticalValidationFailure = async (
    event: unknown,
    failedCheck: string,
    previous: { canary?: unknown } = {},
  ) => {
    const error = await handler(event, CONTEXT).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(VerificationFailedError);
    expect((error as Error).message).toContain(`${failedCheck}:`);
    const published = publishedNotifications(sns);
    expect(published).toHaveLength(1);
    expect(published[0]?.attributes).toEqual({
      type: { DataType: 'String', StringValue: 'RotationValidationFailed' },
      severity: { DataType: 'String', StringValue: 'CRITICAL' },
    });
    expect(published[0]?.message).toMatchObject({
      type: 'RotationValidationFailed',
      severity: 'CRITICAL',
      keyId: KEY_ID,
      keyArn: KEY_ARN,
      details: {
        failure: 'verification-failed',
        checks: expect.arrayContaining([expect.objectContaining({ id: failedCheck, status: 'failed' })]),
      },
    });
    const [metrics, ...more] = emfBlobs(consoleLog);
    expect(more).toEqual([]);
    expect(metrics).toMatchObject({ RotationValidationFailed: 1, keyId: KEY_ID });
    expect(metrics).not.toHaveProperty('RotationValidated');
    // No canary refresh: the one write remembers the notified failure; the canary on record stays.
    const saved = savedRecords(ssm);
    expect(saved).toHaveLength(1);
    expect(saved[0]?.canary).toEqual(previous.canary);
    expect(saved[0]?.notifiedFailures).toHaveLength(1);
    return published[0]?.message;
  };

  describe('when the rotation is sound', () => {
    it('returns validated, notifies INFO and records RotationValidated when a 2025 on-demand event arrives', async () => {
      // Prepare
      mockManagedKey(kms);
      mockCanary(ssm);

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(report).toMatchObject({
        outcome: 'validated',
        eventId: ON_DEMAND_EVENT_ID,
        keyId: KEY_ID,
        keyArn: KEY_ARN,
        rotationType: 'ON_DEMAND',
        firstReport: true,
        notification: { type: 'RotationValidated', severity: 'INFO', status: 'published' },
        aliases: { declared: [ALIAS], verified: [ALIAS], undeclared: [], drift: [] },
      });
      expect(statusOf(report)).toEqual({
        'key-state': 'passed',
        'key-type': 'passed',
        'rotation-schedule': 'skipped',
        'rotation-recorded': 'passed',
        'current-material': 'passed',
        'round-trip': 'passed',
        canary: 'passed',
      });
      const published = publishedNotifications(sns);
      expect(published).toHaveLength(1);
      expect(published[0]?.topicArn).toBe(TOPIC_ARN);
      expect(published[0]?.attributes).toEqual({
        type: { DataType: 'String', StringValue: 'RotationValidated' },
        severity: { DataType: 'String', StringValue: 'INFO' },
      });
      expect(published[0]?.message).toEqual({
        type: 'RotationValidated',
        severity: 'INFO',
        keyId: KEY_ID,
        keyArn: KEY_ARN,
        aliases: [ALIAS],
        account: ACCOUNT,
        region: REGION,
        occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        summary: `Rotation of ${ALIAS} validated: new material encrypts and decrypts (through ${ALIAS})`,
        details: {
          eventId: ON_DEMAND_EVENT_ID,
          eventTime: '2026-11-20T03:11:54.000Z',
          rotationType: 'ON_DEMAND',
          checks: report.checks,
          aliasDrift: [],
          undeclaredAliases: [],
          declaredStateProblems: [],
        },
      });
    });

    it('emits one EMF blob with RotationValidated 1, AliasDrift 0 and the latency, the key id as metadata only, when validation passes', async () => {
      // Prepare
      mockManagedKey(kms);

      // Act
      await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      const blobs = emfBlobs(consoleLog);
      expect(blobs).toHaveLength(1);
      const [blob] = blobs;
      expect(blob?._aws.CloudWatchMetrics).toEqual([
        {
          Namespace: 'KmsRotation',
          Dimensions: [['service']],
          Metrics: expect.arrayContaining([
            { Name: 'RotationValidated', Unit: 'Count' },
            { Name: 'AliasDrift', Unit: 'Count' },
            { Name: 'RotationValidationLatency', Unit: 'Milliseconds' },
          ]),
        },
      ]);
      expect(blob).toMatchObject({
        service: 'kms-rotation',
        keyId: KEY_ID,
        eventId: ON_DEMAND_EVENT_ID,
        RotationValidated: 1,
        AliasDrift: 0,
        RotationValidationLatency: expect.any(Number),
      });
      expect(blob).not.toHaveProperty('RotationValidationFailed');
    });

    it('checks the rotation schedule against the kms-rotation:period-days tag when the rotation was automatic', async () => {
      // Prepare
      mockManagedKey(kms, { rotations: HISTORY.automatic, rotationStatus: { enabled: true, periodDays: 365 } });

      // Act
      const report = await handler(sampleEvent('rotation-automatic.json'), CONTEXT);

      // Assess
      expect(report.outcome).toBe('validated');
      expect(report.rotationType).toBe('AUTOMATIC');
      expect(report.checks).toContainEqual({
        id: 'rotation-schedule',
        status: 'passed',
        detail: 'automatic rotation is enabled every 365 days, as declared',
      });
      expect(statusOf(report)).toMatchObject({ 'rotation-recorded': 'passed', 'current-material': 'passed' });
      expect(kms).toHaveReceivedCommandWith(GetKeyRotationStatusCommand, { KeyId: KEY_ID });
    });

    it('finds the rotation by its date in the history, and its type there, when the event has the legacy minimal shape', async () => {
      // Prepare
      mockManagedKey(kms, { rotations: HISTORY.legacyMinimal });

      // Act
      const report = await handler(sampleEvent('rotation-legacy-minimal.json'), CONTEXT);

      // Assess
      expect(report.outcome).toBe('validated');
      expect(report.rotationType).toBe('AUTOMATIC');
      expect(report.checks).toContainEqual({
        id: 'rotation-recorded',
        status: 'passed',
        detail: `AUTOMATIC recorded at 2026-11-19T16:37:45.000Z, material ${CURRENT_MATERIAL}`,
      });
      expect(statusOf(report)).toMatchObject({ 'rotation-schedule': 'passed', 'current-material': 'skipped' });
      expect(publishedNotifications(sns)[0]?.message.details.rotationType).toBe('AUTOMATIC');
    });

    it('encrypts through the declared alias that points at the key, with the canary encryption context', async () => {
      // Prepare
      mockManagedKey(kms);

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(kms).toHaveReceivedCommandTimes(EncryptCommand, 2);
      expect(kms).toHaveReceivedCommandWith(EncryptCommand, { KeyId: ALIAS, EncryptionContext: CANARY_CONTEXT });
      expect(kms).toHaveReceivedCommandWith(EncryptCommand, { KeyId: KEY_ARN, EncryptionContext: CANARY_CONTEXT });
      // The probe encrypted with the key decrypts to itself, under the same context.
      const probe = kms.commandCalls(EncryptCommand, { KeyId: KEY_ARN })[0]?.args[0].input.Plaintext;
      expect(kms).toHaveReceivedCommandWith(DecryptCommand, {
        KeyId: KEY_ARN,
        CiphertextBlob: seal(probe ?? new Uint8Array()),
        EncryptionContext: CANARY_CONTEXT,
      });
      expect(report.checks).toContainEqual(
        expect.objectContaining({ id: 'round-trip', detail: expect.stringContaining(`encrypting through ${ALIAS}`) }),
      );
    });

    it('round-trips with the key ARN alone, keeping that ciphertext as the canary, when no alias is declared', async () => {
      // Prepare
      mockManagedKey(kms, { tags: { 'kms-rotation:managed': 'true', 'kms-rotation:period-days': '365' } });

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(report.outcome).toBe('validated');
      expect(kms).toHaveReceivedCommandTimes(EncryptCommand, 1);
      expect(kms).toHaveReceivedCommandWith(EncryptCommand, { KeyId: KEY_ARN });
      const probe = kms.commandCalls(EncryptCommand)[0]?.args[0].input.Plaintext ?? new Uint8Array();
      expect(savedRecords(ssm)[0]?.canary).toMatchObject({
        ciphertext: Buffer.from(seal(probe)).toString('base64'),
        plaintextSha256: sha256Hex(probe),
      });
      expect(publishedNotifications(sns)[0]?.message.summary).toContain(`through ${KEY_ARN}`);
    });

    it('saves the new canary with PutParameter Overwrite, as ciphertext and SHA-256 only, when validation passes', async () => {
      // Prepare
      mockManagedKey(kms);
      const previous = mockCanary(ssm, { extra: { managed: true, openDrift: { 'alias-drift:x': '2026-11-01' } } });

      // Act
      await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(ssm).toHaveReceivedCommandTimes(PutParameterCommand, 1);
      expect(ssm).toHaveReceivedCommandWith(PutParameterCommand, {
        Name: `${STATE_PREFIX}/${KEY_ID}`,
        Type: 'String',
        Overwrite: true,
      });
      const throughAlias = kms.commandCalls(EncryptCommand, { KeyId: ALIAS })[0]?.args[0].input.Plaintext;
      const plaintext = throughAlias ?? new Uint8Array();
      const [saved] = savedRecords(ssm);
      expect(saved).toEqual({
        managed: true,
        openDrift: { 'alias-drift:x': '2026-11-01' },
        // The rotation validated, for the audit's reconciliation to start after.
        lastValidatedRotation: { keyMaterialId: CURRENT_MATERIAL, rotationDate: '2026-11-20T03:11:50.000Z' },
        canary: {
          ciphertext: Buffer.from(seal(plaintext)).toString('base64'),
          plaintextSha256: sha256Hex(plaintext),
          createdAt: expect.any(String),
        },
      });
      expect(saved?.canary).not.toEqual(previous.canary);
      const written = ssm.commandCalls(PutParameterCommand)[0]?.args[0].input.Value ?? '';
      expect(written).not.toContain(Buffer.from(plaintext).toString('base64'));
      expect(written).not.toContain(Buffer.from(plaintext).toString('hex'));
    });

    it("decrypts the previous canary with the key's ARN and the same encryption context", async () => {
      // Prepare
      mockManagedKey(kms);
      const previous = mockCanary(ssm);

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(kms).toHaveReceivedCommandWith(DecryptCommand, {
        KeyId: KEY_ARN,
        CiphertextBlob: Buffer.from(previous.canary?.ciphertext ?? '', 'base64'),
        EncryptionContext: CANARY_CONTEXT,
      });
      expect(report.checks).toContainEqual({
        id: 'canary',
        status: 'passed',
        detail: 'data encrypted on 2026-11-01T00:00:00.000Z, before the rotation, still decrypts',
      });
    });

    it('skips the canary check, still validates and seeds the canary when none is on record yet', async () => {
      // Prepare
      mockManagedKey(kms);

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(report.outcome).toBe('validated');
      expect(report.checks).toContainEqual(
        expect.objectContaining({ id: 'canary', status: 'skipped', detail: expect.stringContaining('no data') }),
      );
      expect(kms).toHaveReceivedCommandTimes(DecryptCommand, 1); // the probe only
      expect(savedRecords(ssm)).toEqual([
        {
          lastValidatedRotation: { keyMaterialId: CURRENT_MATERIAL, rotationDate: '2026-11-20T03:11:50.000Z' },
          canary: expect.objectContaining({ plaintextSha256: expect.any(String) }),
        },
      ]);
      expect(publishedNotifications(sns)[0]?.attributes?.severity?.StringValue).toBe('INFO');
    });

    it('validates with WARNING, naming the tag, when a declared-state tag cannot be understood', async () => {
      // Prepare
      mockManagedKey(kms, { tags: { ...DECLARED_TAGS, 'kms-rotation:period-days': 'yearly' } });

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(report.outcome).toBe('validated');
      expect(report.declaredStateProblems).toEqual([expect.stringContaining('kms-rotation:period-days is "yearly"')]);
      const [published] = publishedNotifications(sns);
      expect(published?.attributes?.severity?.StringValue).toBe('WARNING');
      expect(published?.message.summary).toContain('declared state unreadable');
    });
  });

  describe("under the key's lease", () => {
    it('takes the lease before its first read and gives it back after its last write', async () => {
      // Prepare
      mockManagedKey(kms);
      mockCanary(ssm);

      // Act
      await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess: the record is read, changed and written back only while the key is held
      const [take] = dynamodb.commandCalls(PutItemCommand);
      const [giveBack] = dynamodb.commandCalls(DeleteItemCommand);
      expect(take?.args[0].input).toMatchObject({
        TableName: 'kms-rotation-test-key-leases',
        Item: { keyId: { S: KEY_ID }, holder: { S: 'kms-rotation-test-onRotation request-1' } },
      });
      expect(giveBack?.args[0].input).toMatchObject({ Key: { keyId: { S: KEY_ID } } });
      const others = [...kms.calls(), ...ssm.calls(), ...sns.calls()];
      expect(others.length).toBeGreaterThan(0);
      expect(
        others.filter((call) => !(take && call.calledAfter(take) && giveBack && call.calledBefore(giveBack))),
      ).toEqual([]);
    });

    it('fails retryable, naming the run that holds the key and reading nothing, when the key stays held past the wait its invocation allows', async () => {
      // Prepare: 20 s left is exactly the time kept for the validation itself, so there is no wait
      mockManagedKey(kms);
      mockCanary(ssm);
      dynamodb
        .on(PutItemCommand)
        .rejects(new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }));
      dynamodb.on(GetItemCommand).resolves({
        Item: {
          keyId: { S: KEY_ID },
          holder: { S: 'kms-rotation-test-rotate request-9' },
          purpose: { S: 'rotate: on-demand' },
          expiresAt: { N: '4102444800' },
        },
      });

      // Act
      const error = await handler(sampleEvent(ON_DEMAND), {
        ...CONTEXT,
        getRemainingTimeInMillis: () => 20_000,
      }).catch((caught: unknown) => caught);

      // Assess
      expect(error).toBeInstanceOf(PreconditionFailedError);
      expect(error).toMatchObject({ reason: 'key-busy', retryable: true });
      expect((error as Error).message).toBe(
        `${KEY_ID} is being changed by another run: kms-rotation-test-rotate request-9 holds it until 2100-01-01T00:00:00.000Z (rotate: on-demand); waited 0 s and changed nothing`,
      );
      expect(kms.calls()).toEqual([]);
      expect(ssm.calls()).toEqual([]);
      expect(sns.calls()).toEqual([]);
    });
  });

  describe('when a declared alias drifted', () => {
    it('returns validated with WARNING and AliasDrift 1 when the declared alias points at another key', async () => {
      // Prepare
      mockManagedKey(kms, { aliases: [] });
      kms
        .on(DescribeKeyCommand, { KeyId: ALIAS })
        .resolves({ KeyMetadata: { KeyId: OTHER_KEY_ID, Arn: OTHER_KEY_ARN, KeyState: 'Enabled' } });

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(report.outcome).toBe('validated');
      expect(report.aliases?.drift).toEqual([{ aliasName: ALIAS, expectedKeyId: KEY_ID, actualTarget: OTHER_KEY_ID }]);
      // The round trip does not go through an alias that reaches another key.
      expect(kms).not.toHaveReceivedCommandWith(EncryptCommand, { KeyId: ALIAS });
      const [published] = publishedNotifications(sns);
      expect(published?.attributes?.severity).toEqual({ DataType: 'String', StringValue: 'WARNING' });
      expect(published?.message.summary).toContain(
        `alias drift: ${ALIAS} points at ${OTHER_KEY_ID}, declared on ${KEY_ID}`,
      );
      expect(published?.message.details.aliasDrift).toEqual(report.aliases?.drift);
      expect(emfBlobs(consoleLog)[0]).toMatchObject({ RotationValidated: 1, AliasDrift: 1 });
    });

    it('returns validated with WARNING, describing the alias as missing, when the declared alias does not exist', async () => {
      // Prepare
      mockManagedKey(kms, { aliases: [] });
      kms.on(DescribeKeyCommand, { KeyId: ALIAS }).rejects(new NotFoundException({ message: 'gone', $metadata: {} }));

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(report.outcome).toBe('validated');
      const [published] = publishedNotifications(sns);
      expect(published?.message.severity).toBe('WARNING');
      expect(published?.message.summary).toContain(`${ALIAS} does not exist (declared on ${KEY_ID})`);
      expect(emfBlobs(consoleLog)[0]).toMatchObject({ AliasDrift: 1 });
    });

    it('counts every drifted alias in AliasDrift, and reports an undeclared alias without a warning of its own', async () => {
      // Prepare
      const declared = [ALIAS, 'alias/app/reports', 'alias/app/billing'];
      mockManagedKey(kms, {
        tags: { ...DECLARED_TAGS, 'kms-rotation:aliases': declared.join(' ') },
        aliases: [ALIAS, 'alias/legacy'],
      });
      kms
        .on(DescribeKeyCommand, { KeyId: 'alias/app/reports' })
        .rejects(new NotFoundException({ message: 'gone', $metadata: {} }));
      kms
        .on(DescribeKeyCommand, { KeyId: 'alias/app/billing' })
        .resolves({ KeyMetadata: { KeyId: OTHER_KEY_ID, Arn: OTHER_KEY_ARN } });

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(report.aliases).toMatchObject({ verified: [ALIAS], undeclared: ['alias/legacy'] });
      expect(report.aliases?.drift.map((drift) => drift.actualTarget)).toEqual(['missing', OTHER_KEY_ID]);
      expect(kms).toHaveReceivedCommandWith(EncryptCommand, { KeyId: ALIAS });
      expect(emfBlobs(consoleLog)[0]).toMatchObject({ AliasDrift: 2 });
    });
  });

  describe('when verification fails', () => {
    it('throws VerificationFailedError, notifying CRITICAL, when data from before the rotation decrypts to other data', async () => {
      // Prepare
      mockManagedKey(kms);
      const previous = mockCanary(ssm, { plaintext: new Uint8Array(32).fill(9), digestOf: new Uint8Array(32).fill(1) });

      // Act
      const message = await expectCriticalValidationFailure(sampleEvent(ON_DEMAND), 'canary', previous);

      // Assess
      expect(message.summary).toBe(
        `Rotation of ${ALIAS} FAILED validation: data encrypted on 2026-11-01T00:00:00.000Z decrypts to something else`,
      );
      expect(savedRecords(ssm)[0]?.notifiedFailures).toEqual([`${KEY_ID}:${CURRENT_MATERIAL}`]);
    });

    it('throws VerificationFailedError when the canary decrypt fails with InvalidCiphertextException', async () => {
      // Prepare
      mockManagedKey(kms);
      const previous = mockCanary(ssm);
      kms
        .on(DecryptCommand, { CiphertextBlob: Buffer.from(previous.canary?.ciphertext ?? '', 'base64') })
        .rejects(new InvalidCiphertextException({ message: 'The ciphertext is invalid', $metadata: {} }));

      // Act
      const message = await expectCriticalValidationFailure(sampleEvent(ON_DEMAND), 'canary', previous);

      // Assess
      expect(message.summary).toContain('no longer decrypts: VerificationFailedError: Decrypt on');
      expect(message.summary).toContain('failed: InvalidCiphertextException');
    });

    it("throws VerificationFailedError when encrypting through the alias returns another key's ARN", async () => {
      // Prepare
      mockManagedKey(kms);
      kms
        .on(EncryptCommand, { KeyId: ALIAS })
        .resolves({ CiphertextBlob: new Uint8Array([1, 2, 3]), KeyId: OTHER_KEY_ARN });

      // Act
      const message = await expectCriticalValidationFailure(sampleEvent(ON_DEMAND), 'round-trip');

      // Assess
      expect(message.summary).toContain(`encrypting through ${ALIAS} used key ${OTHER_KEY_ID}, not ${KEY_ID}`);
    });

    it("throws VerificationFailedError when the rotation is not in the key's history", async () => {
      // Prepare
      mockManagedKey(kms, { rotations: [HISTORY.onDemand[0] ?? rotationEntry('AUTOMATIC', '2025-01-01T00:00:00Z')] });

      // Act
      const message = await expectCriticalValidationFailure(sampleEvent(ON_DEMAND), 'rotation-recorded');

      // Assess
      expect(message.summary).toContain(`has no key material ${CURRENT_MATERIAL}`);
    });

    it('throws VerificationFailedError when an automatic rotation finds automatic rotation disabled', async () => {
      // Prepare
      mockManagedKey(kms, { rotations: HISTORY.automatic, rotationStatus: { enabled: false } });

      // Act
      const message = await expectCriticalValidationFailure(
        sampleEvent('rotation-automatic.json'),
        'rotation-schedule',
      );

      // Assess
      expect(message.summary).toContain('automatic rotation is disabled on the key');
    });

    it('throws VerificationFailedError when an automatic rotation finds another period than the declared one', async () => {
      // Prepare
      mockManagedKey(kms, { rotations: HISTORY.automatic, rotationStatus: { enabled: true, periodDays: 730 } });

      // Act
      const message = await expectCriticalValidationFailure(
        sampleEvent('rotation-automatic.json'),
        'rotation-schedule',
      );

      // Assess
      expect(message.summary).toContain('rotation period is 730 days, declared 365 days');
    });

    it('throws VerificationFailedError when KMS reports other current key material than the event names', async () => {
      // Prepare
      const stale = 'b'.repeat(64);
      mockManagedKey(kms, { metadata: { CurrentKeyMaterialId: stale } });

      // Act
      const message = await expectCriticalValidationFailure(sampleEvent(ON_DEMAND), 'current-material');

      // Assess
      expect(message.summary).toContain(`the event says the new material is ${CURRENT_MATERIAL}, KMS reports ${stale}`);
    });

    it('returns validated with current-material skipped when a newer rotation superseded the event', async () => {
      // Prepare
      const newer = 'c'.repeat(64);
      mockManagedKey(kms, {
        metadata: { CurrentKeyMaterialId: newer },
        rotations: [...HISTORY.onDemand, rotationEntry('AUTOMATIC', '2026-11-21T00:00:00Z', newer)],
      });

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(report.outcome).toBe('validated');
      expect(report.checks).toContainEqual({
        id: 'current-material',
        status: 'skipped',
        detail: `a newer rotation superseded this one: current material is ${newer}`,
      });
      expect(publishedNotifications(sns)[0]?.message.type).toBe('RotationValidated');
    });

    it('throws VerificationFailedError without notifying or counting again when a retry meets an already notified failure', async () => {
      // Prepare: a first attempt fails and records the failure it notified.
      mockManagedKey(kms);
      mockCanary(ssm, { digestOf: new Uint8Array(32).fill(1) });
      await expect(handler(sampleEvent(ON_DEMAND), CONTEXT)).rejects.toBeInstanceOf(VerificationFailedError);
      const [recorded] = savedRecords(ssm);
      expect(recorded?.notifiedFailures).toEqual([`${KEY_ID}:${CURRENT_MATERIAL}`]);
      mockStoredRecord(ssm, recorded ?? {});
      sns.resetHistory();
      ssm.resetHistory();
      consoleLog.mockClear();

      // Act
      const retry = handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      await expect(retry).rejects.toBeInstanceOf(VerificationFailedError);
      expect(sns).not.toHaveReceivedCommand(PublishCommand);
      expect(ssm).not.toHaveReceivedCommand(PutParameterCommand);
      const [metrics] = emfBlobs(consoleLog);
      expect(metrics).not.toHaveProperty('RotationValidationFailed');
      expect(metrics).toMatchObject({ RotationValidationLatency: expect.any(Number), AliasDrift: 0 });
    });

    it('notifies on the retry when the first notification of a failure could not be published', async () => {
      // Prepare
      mockManagedKey(kms);
      mockCanary(ssm, { digestOf: new Uint8Array(32).fill(1) });
      sns.on(PublishCommand).rejectsOnce(new InternalErrorException({ message: 'boom', $metadata: {} }));
      const first = handler(sampleEvent(ON_DEMAND), CONTEXT);
      await expect(first).rejects.toMatchObject({ name: 'AwsServiceError', retryable: true });
      expect(ssm).not.toHaveReceivedCommand(PutParameterCommand);

      // Act
      const retry = handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      await expect(retry).rejects.toBeInstanceOf(VerificationFailedError);
      expect(sns).toHaveReceivedCommandTimes(PublishCommand, 2);
      expect(savedRecords(ssm)[0]?.notifiedFailures).toEqual([`${KEY_ID}:${CURRENT_MATERIAL}`]);
    });

    it('still throws VerificationFailedError when the notified failure cannot be recorded', async () => {
      // Prepare
      mockManagedKey(kms, { rotations: [] });
      ssm.on(PutParameterCommand).rejects(new Error('ssm down'));

      // Act
      const result = handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      await expect(result).rejects.toBeInstanceOf(VerificationFailedError);
      expect(sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    });
  });

  describe('when a precondition fails', () => {
    it.each([
      ['Disabled', 'key-disabled'],
      ['PendingDeletion', 'key-pending-deletion'],
      ['PendingImport', 'key-invalid-state'],
    ])(
      'throws PreconditionFailedError, notifying CRITICAL, with no canary work, when the managed key is %s (reason %s)',
      async (state, reason) => {
        // Prepare
        mockManagedKey(kms, {
          metadata: {
            KeyState: state as 'Disabled',
            Enabled: false,
            ...(state === 'PendingDeletion' ? { DeletionDate: new Date('2026-12-20T00:00:00Z') } : {}),
          },
        });
        const previous = mockCanary(ssm);

        // Act
        const result = handler(sampleEvent(ON_DEMAND), CONTEXT);

        // Assess
        await expect(result).rejects.toBeInstanceOf(PreconditionFailedError);
        await expect(result).rejects.toMatchObject({ reason, message: expect.stringContaining(`key is ${state}`) });
        const [published] = publishedNotifications(sns);
        expect(published?.attributes?.severity?.StringValue).toBe('CRITICAL');
        expect(published?.message).toMatchObject({
          type: 'RotationValidationFailed',
          details: { failure: 'precondition-failed' },
        });
        // Only the probe of the first round trip, sent with the reads before the state is known; nothing after.
        expect(kms).not.toHaveReceivedCommand(EncryptCommand);
        expect(kms).not.toHaveReceivedCommand(DecryptCommand);
        expect(savedRecords(ssm)).toEqual([{ ...previous, notifiedFailures: [`${KEY_ID}:${CURRENT_MATERIAL}`] }]);
        expect(emfBlobs(consoleLog)[0]).toMatchObject({ RotationValidationFailed: 1 });
      },
    );

    it.each([
      ['RSA_2048', 'SIGN_VERIFY'],
      ['HMAC_256', 'GENERATE_VERIFY_MAC'],
    ] as const)(
      'throws PreconditionFailedError wrong-key-type when the managed key is %s / %s',
      async (spec, usage) => {
        // Prepare
        mockManagedKey(kms, { metadata: { KeySpec: spec, KeyUsage: usage, CurrentKeyMaterialId: undefined } });

        // Act
        const result = handler(sampleEvent(ON_DEMAND), CONTEXT);

        // Assess
        await expect(result).rejects.toBeInstanceOf(PreconditionFailedError);
        await expect(result).rejects.toMatchObject({ reason: 'wrong-key-type' });
        expect(publishedNotifications(sns)[0]?.message.summary).toContain(`key is ${spec} / ${usage}`);
        expect(kms).not.toHaveReceivedCommand(DecryptCommand);
      },
    );
  });

  describe('when the key is not one to validate', () => {
    it('throws PreconditionFailedError key-not-found, without notifying, when DescribeKey answers NotFoundException', async () => {
      // Prepare
      kms.on(DescribeKeyCommand).rejects(new NotFoundException({ message: 'Key does not exist', $metadata: {} }));

      // Act
      const result = handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      await expect(result).rejects.toBeInstanceOf(PreconditionFailedError);
      await expect(result).rejects.toMatchObject({ reason: 'key-not-found' });
      expect(sns).not.toHaveReceivedCommand(PublishCommand);
      expect(ssm).not.toHaveReceivedCommand(PutParameterCommand);
      expect(emfBlobs(consoleLog)).toEqual([]);
    });

    it('returns skipped, asking only what IAM allows on any key (no Encrypt, rotation status or history), when the key lacks the kms-rotation:managed tag', async () => {
      // Prepare
      mockManagedKey(kms, { tags: { 'kms-rotation:aliases': ALIAS } });

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(report).toMatchObject({ outcome: 'skipped', checks: [], keyId: KEY_ID });
      expect(report.summary).toContain('not managed by kms-rotation');
      expect(sns).not.toHaveReceivedCommand(PublishCommand);
      expect(ssm).not.toHaveReceivedCommand(PutParameterCommand);
      expect(kms).not.toHaveReceivedCommand(DecryptCommand);
      expect(kms).not.toHaveReceivedCommand(EncryptCommand);
      expect(kms).not.toHaveReceivedCommand(GetKeyRotationStatusCommand);
      expect(kms).not.toHaveReceivedCommand(ListKeyRotationsCommand);
      expect(emfBlobs(consoleLog)[0]).toMatchObject({ RotationEventsSkipped: 1 });
    });

    it("returns skipped with no cryptographic call when the key is a self-test run's throwaway key", async () => {
      // Prepare
      mockManagedKey(kms, { tags: { 'kms-rotation:managed': 'true', 'kms-rotation:self-test': 'run-1' } });

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(report).toMatchObject({ outcome: 'skipped', checks: [], keyId: KEY_ID });
      expect(report.summary).toContain('throwaway key of self-test run run-1');
      expect(kms).not.toHaveReceivedCommand(EncryptCommand);
      expect(ssm).not.toHaveReceivedCommand(PutParameterCommand);
      expect(sns).not.toHaveReceivedCommand(PublishCommand);
    });

    it('returns skipped without notifying or decrypting when the key is AWS managed', async () => {
      // Prepare
      mockManagedKey(kms, { metadata: { KeyManager: 'AWS' } });

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(report.outcome).toBe('skipped');
      expect(report.summary).toContain('is an AWS managed key');
      expect(sns).not.toHaveReceivedCommand(PublishCommand);
      expect(ssm).not.toHaveReceivedCommand(PutParameterCommand);
      expect(kms).not.toHaveReceivedCommand(DecryptCommand);
    });
  });

  describe('when KMS errs in ways the emulator cannot produce', () => {
    it('throws VerificationFailedError, notifying CRITICAL, when Encrypt answers DisabledException mid-validation', async () => {
      // Prepare
      mockManagedKey(kms);
      kms.on(EncryptCommand).rejects(new DisabledException({ message: 'key is disabled', $metadata: {} }));

      // Act
      const message = await expectCriticalValidationFailure(sampleEvent(ON_DEMAND), 'round-trip');

      // Assess
      expect(message.summary).toContain('DisabledException');
    });

    it('throws PreconditionFailedError key-invalid-state when ListKeyRotations answers KMSInvalidStateException for an enabled key', async () => {
      // Prepare
      mockManagedKey(kms);
      kms
        .on(ListKeyRotationsCommand)
        .rejects(new KMSInvalidStateException({ message: 'invalid state', $metadata: {} }));

      // Act
      const result = handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      await expect(result).rejects.toBeInstanceOf(PreconditionFailedError);
      await expect(result).rejects.toMatchObject({ reason: 'key-invalid-state' });
      expect(sns).not.toHaveReceivedCommand(PublishCommand);
    });

    const CALLS = [
      ['DescribeKey', DescribeKeyCommand],
      ['ListResourceTags', ListResourceTagsCommand],
      ['GetKeyRotationStatus', GetKeyRotationStatusCommand],
      ['ListKeyRotations', ListKeyRotationsCommand],
      ['ListAliases', ListAliasesCommand],
      ['Encrypt', EncryptCommand],
      ['Decrypt', DecryptCommand],
    ] as const;

    it.each(
      CALLS.flatMap(([operation, command]) => [
        [operation, 'ThrottlingException', command, throttling],
        [operation, 'KMSInternalException', command, internalError],
      ]),
    )(
      'throws a retryable AwsServiceError, publishing nothing, when %s answers %s',
      async (operation, _name, command, error) => {
        // Prepare
        mockManagedKey(kms);
        mockCanary(ssm);
        kms.on(command as typeof DescribeKeyCommand).rejects(error());

        // Act
        const result = handler(sampleEvent(ON_DEMAND), CONTEXT);

        // Assess
        await expect(result).rejects.toBeInstanceOf(AwsServiceError);
        await expect(result).rejects.toMatchObject({ retryable: true, operation });
        expect(sns).not.toHaveReceivedCommand(PublishCommand);
        expect(ssm).not.toHaveReceivedCommand(PutParameterCommand);
      },
    );

    it.each(CALLS.slice(0, 5))(
      'throws a non-retryable AwsServiceError naming the IAM role when %s answers AccessDeniedException',
      async (operation, command) => {
        // Prepare
        mockManagedKey(kms);
        kms.on(command as typeof DescribeKeyCommand).rejects(accessDenied());

        // Act
        const result = handler(sampleEvent(ON_DEMAND), CONTEXT);

        // Assess
        await expect(result).rejects.toBeInstanceOf(AwsServiceError);
        await expect(result).rejects.toMatchObject({
          retryable: false,
          operation,
          message: expect.stringContaining("check the function's IAM role and the key policy"),
        });
        expect(sns).not.toHaveReceivedCommand(PublishCommand);
      },
    );
  });

  describe('when SNS or SSM fail', () => {
    it('throws a retryable AwsServiceError, after refreshing the canary, when the notification of a passed validation cannot be published', async () => {
      // Prepare
      mockManagedKey(kms);
      sns.on(PublishCommand).rejects(new InternalErrorException({ message: 'internal error', $metadata: {} }));

      // Act
      const result = handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      await expect(result).rejects.toBeInstanceOf(AwsServiceError);
      await expect(result).rejects.toMatchObject({ retryable: true, operation: 'Publish' });
      expect(savedRecords(ssm)).toEqual([
        {
          lastValidatedRotation: { keyMaterialId: CURRENT_MATERIAL, rotationDate: '2026-11-20T03:11:50.000Z' },
          canary: expect.objectContaining({ ciphertext: expect.any(String) }),
        },
      ]);
    });

    it('validates without the canary, saying so, and leaves the unread state as it is, when GetParameter fails', async () => {
      // Prepare
      mockManagedKey(kms);
      ssm.on(GetParameterCommand).rejects(new Error('connect ETIMEDOUT'));

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(report.outcome).toBe('validated');
      expect(report.checks).toContainEqual({
        id: 'canary',
        status: 'skipped',
        detail: expect.stringMatching(
          /^the canary on record could not be read \(AwsServiceError: .*\); validated without it$/,
        ),
      });
      expect(kms).toHaveReceivedCommandTimes(DecryptCommand, 1); // the probe only
      expect(ssm).not.toHaveReceivedCommand(PutParameterCommand);
      expect(publishedNotifications(sns)[0]?.message.type).toBe('RotationValidated');
    });

    it('notifies a failure, but does not overwrite the unread state, when GetParameter fails and verification fails', async () => {
      // Prepare
      mockManagedKey(kms, { rotations: [] });
      ssm.on(GetParameterCommand).rejects(new Error('connect ETIMEDOUT'));

      // Act
      const result = handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      await expect(result).rejects.toBeInstanceOf(VerificationFailedError);
      expect(publishedNotifications(sns)[0]?.message.severity).toBe('CRITICAL');
      expect(ssm).not.toHaveReceivedCommand(PutParameterCommand);
    });

    it('returns validated when the canary cannot be refreshed', async () => {
      // Prepare
      mockManagedKey(kms);
      ssm.on(PutParameterCommand).rejects(new Error('ssm down'));

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), CONTEXT);

      // Assess
      expect(report.outcome).toBe('validated');
      expect(ssm).toHaveReceivedCommandTimes(PutParameterCommand, 1);
      expect(sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    });
  });

  describe('when the input is bad', () => {
    const expectNoAwsCall = () => {
      expect(kms.calls()).toEqual([]);
      expect(sns.calls()).toEqual([]);
      expect(ssm.calls()).toEqual([]);
      expect(dynamodb.calls()).toEqual([]);
    };

    /** The field each invalid sample gets wrong, as the error message names it. */
    const BAD_FIELD: Record<string, string> = {
      'invalid-hostile-detail.json': 'detail.key-id',
      'invalid-missing-key-id.json': 'detail.key-id',
      'invalid-other-account.json': 'account 999988887777',
      'invalid-resource-mismatch.json': 'resources.0',
      'invalid-rotate-typo.json': 'source',
      'invalid-wrong-detail-type.json': 'detail-type',
      'invalid-wrong-source.json': 'source',
    };

    it('knows the bad field of every invalid sample event', () => {
      expect(
        readdirSync('events')
          .filter((file) => file.startsWith('invalid-'))
          .sort(),
      ).toEqual(Object.keys(BAD_FIELD).sort());
    });

    it.each(Object.entries(BAD_FIELD))(
      'throws InvalidInputError naming the field, sending no AWS command, when the event is %s',
      async (file, field) => {
        // Prepare
        mockManagedKey(kms);

        // Act
        const result = handler(sampleEvent(file), CONTEXT);

        // Assess
        await expect(result).rejects.toBeInstanceOf(InvalidInputError);
        await expect(result).rejects.toThrow(field);
        expectNoAwsCall();
      },
    );

    it('throws InvalidInputError, sending no AWS command, when the event is for another Region', async () => {
      // Prepare
      mockManagedKey(kms);
      const otherRegion = {
        ...sampleEvent(ON_DEMAND),
        region: 'eu-west-1',
        resources: [KEY_ARN.replace(REGION, 'eu-west-1')],
      };

      // Act
      const result = handler(otherRegion, CONTEXT);

      // Assess
      await expect(result).rejects.toBeInstanceOf(InvalidInputError);
      await expect(result).rejects.toThrow(`in eu-west-1; this function serves account ${ACCOUNT} in ${REGION}`);
      expectNoAwsCall();
    });

    it('throws InvalidInputError naming resources.0, sending no AWS command, when the key ARN is of another partition', async () => {
      // Prepare
      mockManagedKey(kms);
      const otherPartition = { ...sampleEvent(ON_DEMAND), resources: [KEY_ARN.replace('arn:aws:', 'arn:aws-cn:')] };

      // Act
      const result = handler(otherPartition, CONTEXT);

      // Assess
      await expect(result).rejects.toBeInstanceOf(InvalidInputError);
      await expect(result).rejects.toThrow(
        `resources.0 must be in this function's partition, account and Region (aws, ${ACCOUNT}, ${REGION})`,
      );
      expectNoAwsCall();
    });

    it.each([
      ['null', null, '(payload)'],
      ['a string', 'KMS CMK Rotation', '(payload)'],
      ['an array', [sampleEvent(ON_DEMAND)], '(payload)'],
      ['a number', 42, '(payload)'],
      ['a 1 MB id', { ...sampleEvent(ON_DEMAND), id: 'x'.repeat(1_000_000) }, 'id'],
      [
        'a 1 MB key id',
        { ...sampleEvent(ON_DEMAND), detail: { ...sampleEvent(ON_DEMAND).detail, 'key-id': 'a'.repeat(1_000_000) } },
        'detail.key-id',
      ],
      ['a 1 MB resource', { ...sampleEvent(ON_DEMAND), resources: ['a'.repeat(1_000_000)] }, 'resources.0'],
    ])('throws InvalidInputError, sending no AWS command, when the event is %s', async (_name, event, field) => {
      // Act
      const result = handler(event, CONTEXT);

      // Assess
      await expect(result).rejects.toBeInstanceOf(InvalidInputError);
      await expect(result).rejects.toThrow(field);
      expectNoAwsCall();
    });

    it("throws InvalidInputError, sending no AWS command, when the context's function ARN is not a function's", async () => {
      // Act
      const result = handler(sampleEvent(ON_DEMAND), {
        ...CONTEXT,
        invokedFunctionArn: `arn:aws:iam::${ACCOUNT}:role/not-a-function`,
      });

      // Assess
      await expect(result).rejects.toBeInstanceOf(InvalidInputError);
      await expect(result).rejects.toThrow("function ARN is not a function's ARN");
      expectNoAwsCall();
    });
  });

  describe('when the context has no function ARN (serverless invoke local)', () => {
    it("serves the partition and account of the stack's own topic (TOPIC_ARN) in AWS_REGION", async () => {
      // Prepare
      mockManagedKey(kms);
      mockCanary(ssm);
      const { invokedFunctionArn: _, ...local } = CONTEXT;

      // Act
      const report = await handler(sampleEvent(ON_DEMAND), local as Context);

      // Assess
      expect(report.outcome).toBe('validated');
    });
  });
});
