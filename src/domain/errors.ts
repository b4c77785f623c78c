/**
 * The one error taxonomy of the service (docs/architecture.md#errors): invalid input, precondition
 * failed, verification failed, AWS service error. SDK exceptions are translated into these in
 * `src/adapters`, where the SDK is called; nothing else inspects SDK errors.
 */

/** Base class: every error the service raises on purpose. */
export abstract class KmsRotationError extends Error {
  abstract readonly kind: 'invalid-input' | 'precondition-failed' | 'verification-failed' | 'aws-service';
  /** Whether trying the same work again may succeed (drives Lambda's asynchronous retries). */
  abstract readonly retryable: boolean;
}

/** The longest message an `InvalidInputError` carries: it quotes input, and input may be hostile. */
export const MAX_INPUT_ERROR_CHARS = 2_000;

/**
 * At most `max` characters of a value taken from input, for a message or a log line: a 1 MiB
 * field must not become a 1 MiB error. The cut is marked with how much was left out.
 */
export const excerpt = (value: string, max = 200): string =>
  value.length <= max ? value : `${value.slice(0, max)}…(${value.length - max} more characters)`;

/** The event or payload is malformed, hostile, or addressed to another account or Region. */
export class InvalidInputError extends KmsRotationError {
  readonly kind = 'invalid-input';
  readonly retryable = false;
  constructor(message: string, options?: ErrorOptions) {
    super(excerpt(message, MAX_INPUT_ERROR_CHARS), options);
    this.name = 'InvalidInputError';
  }
}

export type PreconditionReason =
  | 'key-not-found'
  | 'key-disabled'
  | 'key-pending-deletion'
  | 'key-invalid-state'
  | 'wrong-key-type'
  | 'not-managed'
  | 'aws-managed'
  | 'replica'
  | 'strategy-mismatch'
  | 'on-demand-limit'
  | 'rotation-conflict'
  | 'no-pending-material'
  | 'nothing-to-roll-back'
  /** The key policy cannot be copied to a successor (not JSON, or no room for kms-rotation's statement). */
  | 'key-policy-unusable'
  /** A declared alias lies outside the stack's `aliasScope`, or points at a key kms-rotation may not move it from. */
  | 'alias-not-movable'
  /** Another run holds the key's lease: it is changing the key right now. */
  | 'key-busy';

/**
 * The key is not in a state or of a type that the requested work needs. Nothing was changed.
 * Not retried, except where the state is known to pass (another run holding the key, for an event).
 */
export class PreconditionFailedError extends KmsRotationError {
  readonly kind = 'precondition-failed';
  readonly retryable: boolean;
  constructor(
    readonly reason: PreconditionReason,
    message: string,
    options?: ErrorOptions & { retryable?: boolean },
  ) {
    super(message, options);
    this.name = 'PreconditionFailedError';
    this.retryable = options?.retryable ?? false;
  }
}

/** Key material or aliases did not pass verification. */
export class VerificationFailedError extends KmsRotationError {
  readonly kind = 'verification-failed';
  readonly retryable = false;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'VerificationFailedError';
  }
}

/** An AWS call failed for a reason of the service's own (throttling, outage, access denied). */
export class AwsServiceError extends KmsRotationError {
  readonly kind = 'aws-service';
  /** IAM or the key policy refused the call: asking again will not help until someone changes them. */
  readonly accessDenied: boolean;
  constructor(
    readonly operation: string,
    readonly retryable: boolean,
    message: string,
    options?: ErrorOptions & { accessDenied?: boolean },
  ) {
    super(message, options);
    this.name = 'AwsServiceError';
    this.accessDenied = options?.accessDenied ?? false;
  }
}

/**
 * What a check or a remediation says of an error it met: a retryable one is thrown on, failing the
 * invocation so that the event is run again (a retry may pass); any other is the verdict's text.
 */
export const verdictOrRethrow = (error: unknown): string => {
  if (error instanceof KmsRotationError && error.retryable) throw error;
  return describeError(error);
};

/** Short text of any thrown value, for reports and logs. */
export const describeError = (error: unknown): string =>
  excerpt(error instanceof Error ? `${error.name}: ${error.message}` : String(error), 1_000);
