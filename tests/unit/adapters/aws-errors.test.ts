import {
  DependencyTimeoutException,
  DisabledException,
  IncorrectKeyException,
  InvalidArnException,
  InvalidCiphertextException,
  InvalidKeyUsageException,
  KeyUnavailableException,
  KMSInternalException,
  KMSInvalidMacException,
  KMSInvalidSignatureException,
  KMSInvalidStateException,
  KMSServiceException,
  LimitExceededException,
  NotFoundException,
  UnsupportedOperationException,
} from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { callAws, translateAwsError } from '../../../src/adapters/aws-errors';
import { invocationEnded } from '../../../src/adapters/invocation';
import {
  AwsServiceError,
  InvalidInputError,
  PreconditionFailedError,
  VerificationFailedError,
} from '../../../src/domain/errors';
import { KEY_ID } from '../support/key-metadata';

/** Status codes as KMS models them (docs/kms-facts.md#errors). */
const status = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });

/** An error KMS does not model, as the SDK surfaces it: its base exception under the wire name. */
const unmodeled = (name: string, $fault: 'client' | 'server', httpStatusCode: number) =>
  new KMSServiceException({ name, $fault, message: `${name} happened`, ...status(httpStatusCode) });

describe('Function: translateAwsError', () => {
  describe('when KMS says the key is not in a usable state', () => {
    it.each([
      ['NotFoundException', new NotFoundException({ message: 'Key not found', ...status(404) }), 'key-not-found'],
      ['DisabledException', new DisabledException({ message: 'Key is disabled', ...status(409) }), 'key-disabled'],
      [
        'KMSInvalidStateException',
        new KMSInvalidStateException({ message: 'Key is pending deletion', ...status(409) }),
        'key-invalid-state',
      ],
      [
        'UnsupportedOperationException',
        new UnsupportedOperationException({ message: 'Not supported', ...status(400) }),
        'wrong-key-type',
      ],
    ])('returns PreconditionFailedError when the SDK throws %s', (name, sdkError, reason) => {
      // Act
      const error = translateAwsError('ListKeyRotations', KEY_ID, sdkError);

      // Assess
      expect(error).toBeInstanceOf(PreconditionFailedError);
      expect(error).toMatchObject({ reason, retryable: false, kind: 'precondition-failed' });
      expect(error.message).toContain(KEY_ID);
      expect(error.message).toContain(`ListKeyRotations on ${KEY_ID} failed: ${name}`);
      expect(error.cause).toBe(sdkError);
    });
  });

  describe('when KMS rejects ciphertext, keys or proofs', () => {
    it.each([
      ['InvalidCiphertextException', new InvalidCiphertextException({ message: 'bad', ...status(400) })],
      ['IncorrectKeyException', new IncorrectKeyException({ message: 'bad', ...status(400) })],
      ['InvalidKeyUsageException', new InvalidKeyUsageException({ message: 'bad', ...status(400) })],
      ['KMSInvalidMacException', new KMSInvalidMacException({ message: 'bad', ...status(400) })],
      ['KMSInvalidSignatureException', new KMSInvalidSignatureException({ message: 'bad', ...status(400) })],
    ])('returns VerificationFailedError when the SDK throws %s', (name, sdkError) => {
      // Act
      const error = translateAwsError('Decrypt', KEY_ID, sdkError);

      // Assess
      expect(error).toBeInstanceOf(VerificationFailedError);
      expect(error).toMatchObject({ retryable: false, message: `Decrypt on ${KEY_ID} failed: ${name}: bad` });
      expect(error.cause).toBe(sdkError);
    });
  });

  describe('when the call was refused for the service itself', () => {
    it.each([
      ['AccessDeniedException', unmodeled('AccessDeniedException', 'client', 400)],
      ['AccessDenied', unmodeled('AccessDenied', 'client', 403)],
    ])('returns a non-retryable AwsServiceError pointing at the IAM role when the SDK throws %s', (name, sdkError) => {
      // Act
      const error = translateAwsError('DescribeKey', KEY_ID, sdkError);

      // Assess
      expect(error).toBeInstanceOf(AwsServiceError);
      expect(error).toMatchObject({
        operation: 'DescribeKey',
        retryable: false,
        kind: 'aws-service',
        accessDenied: true,
      });
      expect(error.message).toBe(
        `DescribeKey on ${KEY_ID} failed: ${name}: ${name} happened; check the function's IAM role and the key policy`,
      );
    });
  });

  describe('when a later attempt may succeed', () => {
    it.each([
      ['ThrottlingException (unmodeled, 400)', unmodeled('ThrottlingException', 'client', 400)],
      ['DependencyTimeoutException', new DependencyTimeoutException({ message: 'timeout', ...status(503) })],
      ['KMSInternalException', new KMSInternalException({ message: 'internal', ...status(500) })],
      ['KeyUnavailableException', new KeyUnavailableException({ message: 'unavailable', ...status(500) })],
      ['an unknown server fault', unmodeled('SomethingBrokeException', 'server', 400)],
      ['an unknown 5xx status', unmodeled('SomethingBrokeException', 'client', 502)],
      ['a TimeoutError of the HTTP handler', Object.assign(new Error('Request timed out'), { name: 'TimeoutError' })],
      ['a network error without a response', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
      ['a code-only error', { code: 'ETIMEDOUT' }],
      ['a thrown string', 'boom'],
    ])('returns a retryable AwsServiceError when the SDK throws %s', (_what, sdkError) => {
      // Act
      const error = translateAwsError('GetKeyRotationStatus', KEY_ID, sdkError);

      // Assess
      expect(error).toBeInstanceOf(AwsServiceError);
      expect(error).toMatchObject({ operation: 'GetKeyRotationStatus', retryable: true });
      expect(error.message).toMatch(new RegExp(`^GetKeyRotationStatus on ${KEY_ID} failed: `));
      expect(error.cause).toBe(sdkError);
    });
  });

  describe('when the request itself is wrong', () => {
    it.each([
      ['InvalidArnException', new InvalidArnException({ message: 'bad arn', ...status(400) })],
      ['LimitExceededException', new LimitExceededException({ message: 'limit', ...status(400) })],
      ['an unknown client error', unmodeled('ValidationException', 'client', 400)],
    ])('returns a non-retryable AwsServiceError when the SDK throws %s', (_what, sdkError) => {
      // Act
      const error = translateAwsError('CreateAlias', 'alias/app/secure-key', sdkError);

      // Assess
      expect(error).toBeInstanceOf(AwsServiceError);
      expect(error).toMatchObject({ operation: 'CreateAlias', retryable: false });
      expect(error.message).not.toContain('IAM role');
    });
  });

  describe('when the invocation that made the call ended', () => {
    it.each([
      [
        'the HTTP handler (an aborted request)',
        Object.assign(new Error('Request aborted'), { name: 'AbortError', cause: invocationEnded() }),
      ],
      [
        'the retry middleware (an aborted backoff)',
        Object.assign(new Error('Request aborted'), { name: 'AbortError' }),
      ],
      [
        'the pacer (an aborted wait for a token)',
        Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' }),
      ],
      ['the signal itself (its reason)', invocationEnded()],
    ])(
      'returns a non-retryable AwsServiceError saying the call was cancelled when %s throws AbortError',
      (_from, sdkError) => {
        // Act
        const error = translateAwsError('ListKeyRotations', KEY_ID, sdkError);

        // Assess
        expect(error).toBeInstanceOf(AwsServiceError);
        expect(error).toMatchObject({ operation: 'ListKeyRotations', retryable: false, accessDenied: false });
        expect(error.message).toBe(
          `ListKeyRotations on ${KEY_ID} was cancelled because the invocation that made it ended`,
        );
        expect(error.cause).toBe(sdkError);
      },
    );
  });

  it('returns the same error when it is already one of the service', () => {
    // Prepare
    const own = new InvalidInputError('bad input');

    // Act
    const error = translateAwsError('DescribeKey', KEY_ID, own);

    // Assess
    expect(error).toBe(own);
  });

  it('names the message of the SDK error only when it has one', () => {
    const error = translateAwsError('ListAliases', KEY_ID, new KMSInternalException({ message: '', ...status(500) }));
    expect(error.message).toBe(`ListAliases on ${KEY_ID} failed: KMSInternalException`);
  });
});

describe('Function: callAws', () => {
  it('returns what the call resolves to', async () => {
    await expect(callAws('DescribeKey', KEY_ID, async () => 'described')).resolves.toBe('described');
  });

  it('throws the translated error when the call rejects', async () => {
    // Prepare
    const sdkError = new NotFoundException({ message: 'Key not found', ...status(404) });

    // Act
    const result = callAws('DescribeKey', KEY_ID, async () => {
      throw sdkError;
    });

    // Assess
    await expect(result).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(result).rejects.toMatchObject({ reason: 'key-not-found', cause: sdkError });
  });
});
