import { Readable } from 'node:stream';
import {
  ConflictException,
  CreateKeyCommand,
  DisabledException,
  KMSClient,
  KMSInvalidMacException,
  KMSInvalidSignatureException,
  KMSServiceException,
  LimitExceededException,
  NotFoundException,
  RotateKeyOnDemandCommand,
  VerifyCommand,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';
import { type AwsStub, mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KmsKeyGateway } from '../../../src/adapters/kms-key-gateway';
import { AwsServiceError, PreconditionFailedError } from '../../../src/domain/errors';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };
const metadata = { $metadata: { httpStatusCode: 400 } };
const MESSAGE = new Uint8Array([1, 2, 3]);
const PROOF = new Uint8Array([9, 9, 9]);
/** KMS models no throttling exception; the SDK surfaces it as the service's base exception. */
const throttling = () =>
  new KMSServiceException({ name: 'ThrottlingException', $fault: 'client', message: 'Rate exceeded', ...metadata });

describe('Class: KmsKeyGateway', () => {
  describe('with a mocked KMSClient', () => {
    // biome-ignore lint/suspicious/noExplicitAny: the stub's input and output types are the client's own
    let kms: AwsStub<any, any, any>;
    let regular: KMSClient;
    let noRetry: KMSClient;
    let gateway: KmsKeyGateway;

    beforeEach(() => {
      kms = mockClient(KMSClient);
      regular = new KMSClient({ region: REGION, credentials: CREDENTIALS });
      noRetry = new KMSClient({ region: REGION, credentials: CREDENTIALS, maxAttempts: 1 });
      gateway = new KmsKeyGateway(regular, noRetry);
    });

    afterEach(() => {
      kms.restore();
    });

    describe('Method: createKey', () => {
      it('sends CreateKey once, through the one-attempt client: a retry after a lost answer would make a second key', async () => {
        // Prepare
        kms.on(CreateKeyCommand).rejects(Object.assign(new Error('Request timed out'), { name: 'TimeoutError' }));

        // Act
        const error = await gateway
          .createKey({ keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY', description: '', policy: '{}', tags: { a: 'b' } })
          .catch((caught: unknown) => caught);

        // Assess
        expect(error).toBeInstanceOf(AwsServiceError);
        expect(error).toMatchObject({ operation: 'CreateKey', retryable: true });
        expect(kms).toHaveReceivedCommandTimes(CreateKeyCommand, 1);
        expect(kms.commandCalls(CreateKeyCommand)[0]?.thisValue).toBe(noRetry);
      });
    });

    describe('Method: rotateKeyOnDemand', () => {
      it('throws on-demand-limit, having called KMS once through the one-attempt client, when KMS answers LimitExceededException', async () => {
        // Prepare
        kms.on(RotateKeyOnDemandCommand).rejects(new LimitExceededException({ message: 'limit', ...metadata }));

        // Act
        const error = await gateway.rotateKeyOnDemand(KEY_ID).catch((caught: unknown) => caught);

        // Assess
        expect(error).toBeInstanceOf(PreconditionFailedError);
        expect(error).toMatchObject({ reason: 'on-demand-limit', retryable: false });
        expect((error as Error).cause).toBeInstanceOf(LimitExceededException);
        expect(kms).toHaveReceivedCommandTimes(RotateKeyOnDemandCommand, 1);
        expect(kms).toHaveReceivedCommandWith(RotateKeyOnDemandCommand, { KeyId: KEY_ID });
        expect(kms.commandCalls(RotateKeyOnDemandCommand)[0]?.thisValue).toBe(noRetry);
        expect(await noRetry.config.maxAttempts()).toBe(1);
      });

      it('throws rotation-conflict, not retried, when KMS answers ConflictException', async () => {
        // Prepare
        kms.on(RotateKeyOnDemandCommand).rejects(new ConflictException({ message: 'conflict', ...metadata }));

        // Act
        const error = await gateway.rotateKeyOnDemand(KEY_ID).catch((caught: unknown) => caught);

        // Assess
        expect(error).toBeInstanceOf(PreconditionFailedError);
        expect(error).toMatchObject({ reason: 'rotation-conflict', retryable: false });
        expect(kms).toHaveReceivedCommandTimes(RotateKeyOnDemandCommand, 1);
        expect(kms.commandCalls(RotateKeyOnDemandCommand)[0]?.thisValue).toBe(noRetry);
      });

      it('throws a retryable AwsServiceError when KMS throttles the call', async () => {
        // Prepare
        kms.on(RotateKeyOnDemandCommand).rejects(throttling());

        // Act
        const error = await gateway.rotateKeyOnDemand(KEY_ID).catch((caught: unknown) => caught);

        // Assess
        expect(error).toBeInstanceOf(AwsServiceError);
        expect(error).toMatchObject({ operation: 'RotateKeyOnDemand', retryable: true });
      });

      it('resolves when KMS accepts the rotation', async () => {
        // Prepare
        kms.on(RotateKeyOnDemandCommand).resolves({ KeyId: KEY_ID });

        // Act
        const result = gateway.rotateKeyOnDemand(KEY_ID);

        // Assess
        await expect(result).resolves.toBeUndefined();
        expect(kms).toHaveReceivedCommandTimes(RotateKeyOnDemandCommand, 1);
      });
    });

    describe('Method: verify', () => {
      it('returns true when KMS says the signature is valid', async () => {
        // Prepare
        kms.on(VerifyCommand).resolves({ SignatureValid: true });

        // Act
        const valid = await gateway.verify(KEY_ID, MESSAGE, PROOF, 'ECDSA_SHA_256');

        // Assess
        expect(valid).toBe(true);
        expect(kms).toHaveReceivedCommandWith(VerifyCommand, {
          KeyId: KEY_ID,
          Message: MESSAGE,
          MessageType: 'RAW',
          Signature: PROOF,
          SigningAlgorithm: 'ECDSA_SHA_256',
        });
      });

      it('returns false, not an error, when KMS answers KMSInvalidSignatureException', async () => {
        // Prepare
        kms.on(VerifyCommand).rejects(new KMSInvalidSignatureException({ message: 'invalid', ...metadata }));

        // Act
        const valid = await gateway.verify(KEY_ID, MESSAGE, PROOF, 'ECDSA_SHA_256');

        // Assess
        expect(valid).toBe(false);
      });

      it.each([
        {
          answer: 'NotFoundException',
          error: new NotFoundException({ message: 'gone', ...metadata }),
          expected: { name: 'PreconditionFailedError', reason: 'key-not-found' },
        },
        {
          answer: 'ThrottlingException',
          error: throttling(),
          expected: { name: 'AwsServiceError', operation: 'Verify', retryable: true },
        },
      ])('throws $expected.name when KMS answers $answer', async ({ error, expected }) => {
        // Prepare
        kms.on(VerifyCommand).rejects(error);

        // Act
        const result = gateway.verify(KEY_ID, MESSAGE, PROOF, 'ECDSA_SHA_256');

        // Assess
        await expect(result).rejects.toMatchObject(expected);
      });
    });

    describe('Method: verifyMac', () => {
      it('returns true when KMS says the MAC is valid', async () => {
        // Prepare
        kms.on(VerifyMacCommand).resolves({ MacValid: true });

        // Act
        const valid = await gateway.verifyMac(KEY_ID, MESSAGE, PROOF, 'HMAC_SHA_256');

        // Assess
        expect(valid).toBe(true);
        expect(kms).toHaveReceivedCommandWith(VerifyMacCommand, {
          KeyId: KEY_ID,
          Message: MESSAGE,
          Mac: PROOF,
          MacAlgorithm: 'HMAC_SHA_256',
        });
      });

      it('returns false, not an error, when KMS answers KMSInvalidMacException', async () => {
        // Prepare
        kms.on(VerifyMacCommand).rejects(new KMSInvalidMacException({ message: 'invalid', ...metadata }));

        // Act
        const valid = await gateway.verifyMac(KEY_ID, MESSAGE, PROOF, 'HMAC_SHA_256');

        // Assess
        expect(valid).toBe(false);
      });

      it('throws key-disabled when KMS answers DisabledException', async () => {
        // Prepare
        kms.on(VerifyMacCommand).rejects(new DisabledException({ message: 'disabled', ...metadata }));

        // Act
        const result = gateway.verifyMac(KEY_ID, MESSAGE, PROOF, 'HMAC_SHA_256');

        // Assess
        await expect(result).rejects.toMatchObject({ name: 'PreconditionFailedError', reason: 'key-disabled' });
      });

      it('throws a non-retryable AwsServiceError when KMS answers AccessDeniedException', async () => {
        // Prepare
        kms.on(VerifyMacCommand).rejects(
          new KMSServiceException({
            name: 'AccessDeniedException',
            $fault: 'client',
            message: 'denied',
            ...metadata,
          }),
        );

        // Act
        const error = await gateway
          .verifyMac(KEY_ID, MESSAGE, PROOF, 'HMAC_SHA_256')
          .catch((caught: unknown) => caught);

        // Assess
        expect(error).toBeInstanceOf(AwsServiceError);
        expect(error).toMatchObject({ operation: 'VerifyMac', retryable: false });
        expect((error as Error).message).toContain("check the function's IAM role");
      });
    });
  });

  describe('with the SDK middleware in place', () => {
    /** An HTTP handler that answers every request like KMS at its on-demand limit, counting requests. */
    const limitExceededHandler = () => {
      const requests: string[] = [];
      return {
        requests,
        handler: {
          handle: async (httpRequest: { headers: Record<string, string> }) => {
            requests.push(httpRequest.headers['x-amz-target'] ?? '');
            return {
              response: {
                statusCode: 400,
                reason: 'Bad Request',
                headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': 'LimitExceededException' },
                body: Readable.from([
                  Buffer.from(JSON.stringify({ __type: 'LimitExceededException', message: 'on-demand limit' })),
                ]),
              },
            };
          },
          updateHttpClientConfig: () => undefined,
          httpHandlerConfigs: () => ({}),
        },
      };
    };

    it('sends RotateKeyOnDemand once, through the one-attempt client only, when KMS answers LimitExceededException', async () => {
      // Prepare
      const retrying = limitExceededHandler();
      const once = limitExceededHandler();
      const gateway = new KmsKeyGateway(
        new KMSClient({ region: REGION, credentials: CREDENTIALS, requestHandler: retrying.handler as never }),
        new KMSClient({
          region: REGION,
          credentials: CREDENTIALS,
          maxAttempts: 1,
          requestHandler: once.handler as never,
        }),
      );

      // Act
      const error = await gateway.rotateKeyOnDemand(KEY_ID).catch((caught: unknown) => caught);

      // Assess
      expect(error).toMatchObject({ name: 'PreconditionFailedError', reason: 'on-demand-limit' });
      expect(once.requests).toEqual(['TrentService.RotateKeyOnDemand']);
      expect(retrying.requests).toEqual([]);
    });
  });
});
