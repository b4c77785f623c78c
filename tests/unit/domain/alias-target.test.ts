import { describe, expect, it } from 'vitest';
import { aliasTargetOf } from '../../../src/domain/alias-target';
import { AwsServiceError, PreconditionFailedError } from '../../../src/domain/errors';
import type { KeyDescription } from '../../../src/domain/model';
import type { KeyReader } from '../../../src/domain/ports';

/** A reader whose DescribeKey answers with `answer` (a key) or throws it (an error). */
const readerAnswering = (answer: KeyDescription | Error): KeyReader =>
  ({
    describeKey: async () => {
      if (answer instanceof Error) throw answer;
      return answer;
    },
  }) as unknown as KeyReader;

describe('Function: aliasTargetOf', () => {
  it('is the key the alias points at', async () => {
    const key = { keyId: 'k1', arn: 'arn:aws:kms:us-east-1:111122223333:key/k1' } as KeyDescription;
    await expect(aliasTargetOf(readerAnswering(key), 'alias/app')).resolves.toBe('k1');
  });

  it('is undefined only when KMS says the alias does not exist', async () => {
    const missing = new PreconditionFailedError('key-not-found', 'alias/app does not exist');
    await expect(aliasTargetOf(readerAnswering(missing), 'alias/app')).resolves.toBeUndefined();
  });

  it.each([
    ['a throttled lookup', new AwsServiceError('DescribeKey', true, 'Rate exceeded')],
    ['a denied lookup', new AwsServiceError('DescribeKey', false, 'not authorized', { accessDenied: true })],
    ['another precondition', new PreconditionFailedError('key-disabled', 'k1 is Disabled')],
  ])('is never read from %s: the error goes on, so no caller takes the alias for missing', async (_name, error) => {
    await expect(aliasTargetOf(readerAnswering(error), 'alias/app')).rejects.toBe(error);
  });
});
