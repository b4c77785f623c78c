import { constants, createHash, createPublicKey, publicEncrypt, randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { ConfigurationError } from '../config';
import { excerpt, InvalidInputError } from '../domain/errors';
import type { ServiceLocation } from '../domain/model';
import type { Clock, Digest, IdGenerator, Log, PublicKeyEncryptor, RandomSource, Sleeper } from '../domain/ports';

export const systemClock: Clock = { now: () => new Date() };
export const secureRandom: RandomSource = { bytes: (size) => new Uint8Array(randomBytes(size)) };
export const sha256: Digest = { sha256Hex: (data) => createHash('sha256').update(data).digest('hex') };

/** The domain's log port over the Powertools logger. */
export const logTo = (logger: Logger): Log => ({
  info: (message, attributes) => logger.info(message, attributes ?? {}),
  warn: (message, attributes) => logger.warn(message, attributes ?? {}),
  error: (message, attributes) => logger.error(message, attributes ?? {}),
});

/**
 * Partition, account and Region the function serves. Lambda names them in the function's ARN
 * (`arn:aws:lambda:<region>:<account>:function:<name>`), given to every invocation. A runtime
 * that gives no ARN (`serverless invoke local`) gets the partition and account from the ARN of
 * the stack's own topic (`TOPIC_ARN`, set by the deployment, never by an event) and the Region from
 * `AWS_REGION`, which must be the topic's. An ARN that is there but is not a function's is refused.
 */
export const serviceLocationOf = (
  context: { invokedFunctionArn?: string } | undefined,
  config: { region: string; topicArn: string },
): ServiceLocation => {
  const arn = context?.invokedFunctionArn;
  if (arn === undefined || arn === '') return locationOfStack(config);
  const [, partition, account] = /^arn:(aws[a-z-]*):lambda:[a-z0-9-]+:(\d{12}):function:/.exec(arn) ?? [];
  if (!partition || !account) {
    throw new InvalidInputError(
      `The Lambda context's function ARN is not a function's ARN, so it tells no account: ${excerpt(arn)}`,
    );
  }
  return { partition, account, region: config.region };
};

const locationOfStack = (config: { region: string; topicArn: string }): ServiceLocation => {
  const [, partition, region, account] = /^arn:(aws[a-z-]*):sns:([a-z0-9-]+):(\d{12}):/.exec(config.topicArn) ?? [];
  if (!partition || !account || region !== config.region) {
    throw new ConfigurationError(
      `Invalid environment: the Lambda context has no function ARN, and TOPIC_ARN (${excerpt(config.topicArn)}) is not a topic in AWS_REGION ${config.region} to tell which account this function serves`,
    );
  }
  return { partition, account, region };
};

/** Who holds a key lease (the function and its request) and how long the invocation may still run. */
export const leaseHolderOf = (
  context: Pick<Context, 'functionName' | 'awsRequestId' | 'getRemainingTimeInMillis'>,
) => ({
  holder: `${context.functionName} ${context.awsRequestId}`,
  remainingMs: () => context.getRemainingTimeInMillis(),
});

/** Local public-key encryption, as a holder of the public key would do it (RSA-OAEP only). */
export const localPublicKeyEncryptor: PublicKeyEncryptor = {
  encrypt: (publicKeyDer, plaintext, algorithm) => {
    const hash = { RSAES_OAEP_SHA_1: 'sha1', RSAES_OAEP_SHA_256: 'sha256' }[algorithm];
    if (!hash) return undefined;
    const key = createPublicKey({ key: Buffer.from(publicKeyDer), format: 'der', type: 'spki' });
    return new Uint8Array(publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, plaintext));
  },
};

export const realSleeper: Sleeper = { sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) };
export const uuidGenerator: IdGenerator = { newId: () => randomUUID() };
