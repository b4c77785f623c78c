import { GetCallerIdentityCommand, STSClient, STSServiceException } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { stsCallerIdentity } from '../../../src/adapters/caller-identity';
import { serviceLocationOf } from '../../../src/adapters/runtime';
import { AwsServiceError, InvalidInputError } from '../../../src/domain/errors';

const sts = mockClient(STSClient);
const OPTIONS = { region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };

describe('Function: serviceLocationOf', () => {
  beforeEach(() => {
    sts.reset();
  });

  it("takes partition and account from the function's ARN, asking STS nothing", async () => {
    const whoAmI = stsCallerIdentity(OPTIONS);

    const location = await serviceLocationOf(
      { invokedFunctionArn: 'arn:aws-us-gov:lambda:us-gov-west-1:111122223333:function:kms-rotation-prod-rotate' },
      'us-gov-west-1',
      whoAmI,
    );

    expect(location).toEqual({ partition: 'aws-us-gov', account: '111122223333', region: 'us-gov-west-1' });
    expect(sts.calls()).toEqual([]);
  });

  it.each([
    ['no function ARN', {}],
    ['an empty function ARN', { invokedFunctionArn: '' }],
    ['no context at all', undefined],
  ])('with %s, serves the account and partition of the credentials, asking STS once', async (_, context) => {
    // Prepare
    sts
      .on(GetCallerIdentityCommand)
      .resolves({ Account: '444455556666', Arn: 'arn:aws-cn:sts::444455556666:assumed-role/ops/alice' });
    const whoAmI = stsCallerIdentity(OPTIONS);

    // Act
    const first = await serviceLocationOf(context, 'cn-north-1', whoAmI);
    const second = await serviceLocationOf(context, 'cn-north-1', whoAmI);

    // Assess
    expect(first).toEqual({ partition: 'aws-cn', account: '444455556666', region: 'cn-north-1' });
    expect(second).toEqual(first);
    expect(sts.commandCalls(GetCallerIdentityCommand)).toHaveLength(1);
  });

  it("refuses a function ARN that is not a function's, asking STS nothing", async () => {
    const whoAmI = stsCallerIdentity(OPTIONS);

    const result = serviceLocationOf({ invokedFunctionArn: 'arn:aws:iam::111122223333:role/x' }, 'us-east-1', whoAmI);

    await expect(result).rejects.toBeInstanceOf(InvalidInputError);
    expect(sts.calls()).toEqual([]);
  });

  it('asks again on the next invocation when STS failed, and says what failed', async () => {
    // Prepare
    sts
      .on(GetCallerIdentityCommand)
      .rejectsOnce(
        new STSServiceException({
          name: 'ExpiredTokenException',
          $fault: 'client',
          message: 'The security token included in the request is expired',
          $metadata: { httpStatusCode: 400 },
        }),
      )
      .resolves({ Account: '444455556666', Arn: 'arn:aws:iam::444455556666:user/alice' });
    const whoAmI = stsCallerIdentity(OPTIONS);

    // Act
    const failed = await serviceLocationOf({}, 'us-east-1', whoAmI).catch((error: unknown) => error);
    const retried = await serviceLocationOf({}, 'us-east-1', whoAmI);

    // Assess
    expect(failed).toBeInstanceOf(AwsServiceError);
    expect((failed as Error).message).toContain('GetCallerIdentity');
    expect(retried).toEqual({ partition: 'aws', account: '444455556666', region: 'us-east-1' });
  });

  it('refuses an answer without an account or ARN', async () => {
    sts.on(GetCallerIdentityCommand).resolves({});
    const whoAmI = stsCallerIdentity(OPTIONS);

    await expect(serviceLocationOf({}, 'us-east-1', whoAmI)).rejects.toThrow('STS answered no account or ARN');
  });
});
