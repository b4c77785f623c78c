import { AwsServiceError, KmsRotationError, PreconditionFailedError, VerificationFailedError } from '../domain/errors';

interface SdkErrorShape {
  name?: string;
  message?: string;
  code?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
}

/** Service-side or transient failures: a later attempt may succeed. */
const RETRYABLE = new Set([
  'ThrottlingException',
  'DependencyTimeoutException',
  'KMSInternalException',
  'KeyUnavailableException',
  'InternalErrorException',
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'TimeoutError',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
]);

/** Cryptographic rejections: the key material or the ciphertext is not what it should be. */
const VERIFICATION = new Set([
  'InvalidCiphertextException',
  'IncorrectKeyException',
  'InvalidKeyUsageException',
  'KMSInvalidMacException',
  'KMSInvalidSignatureException',
]);

/**
 * Translates an SDK exception into the domain's taxonomy. Called only where the SDK is
 * called; `operation` and `subject` make the message say what failed on what.
 */
export const translateAwsError = (operation: string, subject: string, error: unknown): KmsRotationError => {
  if (error instanceof KmsRotationError) return error;
  const sdk = (typeof error === 'object' && error !== null ? error : {}) as SdkErrorShape;
  const name = sdk.name ?? sdk.code ?? 'Error';
  const detail = `${operation} on ${subject} failed: ${name}${sdk.message ? `: ${sdk.message}` : ''}`;
  const options = { cause: error };

  switch (name) {
    // The service aborts calls only when their invocation ends (see `observedHandler`).
    case 'AbortError':
      return new AwsServiceError(
        operation,
        false,
        `${operation} on ${subject} was cancelled because the invocation that made it ended`,
        options,
      );
    case 'NotFoundException':
      return new PreconditionFailedError(
        'key-not-found',
        `${subject} was not found in this account and Region (${detail})`,
        options,
      );
    case 'DisabledException':
      return new PreconditionFailedError('key-disabled', `${subject} is disabled (${detail})`, options);
    case 'KMSInvalidStateException':
      return new PreconditionFailedError(
        'key-invalid-state',
        `${subject} is not in a state that allows ${operation} (${detail})`,
        options,
      );
    case 'UnsupportedOperationException':
      return new PreconditionFailedError(
        'wrong-key-type',
        `${operation} is not supported for ${subject} (${detail})`,
        options,
      );
    case 'AccessDeniedException':
    case 'AccessDenied':
      return new AwsServiceError(operation, false, `${detail}; check the function's IAM role and the key policy`, {
        ...options,
        accessDenied: true,
      });
  }
  if (VERIFICATION.has(name)) return new VerificationFailedError(detail, options);
  const status = sdk.$metadata?.httpStatusCode;
  const retryable =
    RETRYABLE.has(name) || sdk.$fault === 'server' || (status !== undefined && status >= 500) || status === undefined;
  return new AwsServiceError(operation, retryable, detail, options);
};

/** Runs one SDK call and translates what it throws. */
export const callAws = async <T>(operation: string, subject: string, call: () => Promise<T>): Promise<T> => {
  try {
    return await call();
  } catch (error) {
    throw translateAwsError(operation, subject, error);
  }
};
