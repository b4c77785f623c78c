import { describe, expect, it } from 'vitest';
import { serviceLocationOf } from '../../../src/adapters/runtime';
import { ConfigurationError } from '../../../src/config';
import { InvalidInputError } from '../../../src/domain/errors';

const CONFIG = { region: 'us-east-1', topicArn: 'arn:aws:sns:us-east-1:444455556666:kms-rotation-prod-notifications' };

describe('Function: serviceLocationOf', () => {
  it("takes partition and account from the function's ARN, as Lambda gives it", () => {
    const location = serviceLocationOf(
      { invokedFunctionArn: 'arn:aws-us-gov:lambda:us-gov-west-1:111122223333:function:kms-rotation-prod-rotate' },
      { region: 'us-gov-west-1', topicArn: 'arn:aws-us-gov:sns:us-gov-west-1:111122223333:t' },
    );

    expect(location).toEqual({ partition: 'aws-us-gov', account: '111122223333', region: 'us-gov-west-1' });
  });

  it.each([
    ['no function ARN', {}],
    ['an empty function ARN', { invokedFunctionArn: '' }],
    ['no context at all', undefined],
  ])("with %s (serverless invoke local), serves the partition and account of the stack's topic", (_, context) => {
    expect(serviceLocationOf(context, CONFIG)).toEqual({
      partition: 'aws',
      account: '444455556666',
      region: 'us-east-1',
    });
  });

  it("refuses a function ARN that is not a function's", () => {
    expect(() => serviceLocationOf({ invokedFunctionArn: 'arn:aws:iam::111122223333:role/x' }, CONFIG)).toThrow(
      InvalidInputError,
    );
  });

  it('refuses, as a configuration error, a topic of another Region than AWS_REGION when it has to rely on it', () => {
    const elsewhere = { region: 'eu-west-1', topicArn: CONFIG.topicArn };

    expect(() => serviceLocationOf({}, elsewhere)).toThrow(ConfigurationError);
    expect(() => serviceLocationOf({}, elsewhere)).toThrow('is not a topic in AWS_REGION eu-west-1');
  });
});
