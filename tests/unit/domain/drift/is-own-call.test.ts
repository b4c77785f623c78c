import { describe, expect, it } from 'vitest';
import type { ServiceLocation } from '../../../../src/domain/model';
import { type Actor, isOwnCall } from '../../../../src/domain/watch-key-activity';

const LOCATION: ServiceLocation = { partition: 'aws', account: '111122223333', region: 'us-east-1' };
const ROLE = 'arn:aws:iam::111122223333:role/kms-rotation-prod-RotateRole-ABC';
const SESSION = 'arn:aws:sts::111122223333:assumed-role/kms-rotation-prod-RotateRole-ABC/kms-rotation-prod-rotate';
const own: Actor = { type: 'AssumedRole', roleArn: ROLE, arn: SESSION };

/**
 * Each condition of `isOwnCall` on its own: a call that meets every other condition but one is
 * never the service's. (The spoofs as CloudTrail records carry them are in watch-key-activity.test.ts;
 * these also hold when the stack's list of roles itself names something that is no role of here.)
 */
describe('Function: isOwnCall, one condition at a time', () => {
  it("is the service's own call when every condition holds", () => {
    expect(isOwnCall(own, [ROLE], LOCATION)).toBe(true);
  });

  it.each([
    [
      'a session ARN of IAM, not STS',
      { ...own, arn: 'arn:aws:iam::111122223333:assumed-role/kms-rotation-prod-RotateRole-ABC/x' },
      [ROLE],
    ],
    [
      'an issuer that is an IAM user, even if listed',
      { ...own, roleArn: 'arn:aws:iam::111122223333:user/kms-rotation-prod-RotateRole-ABC' },
      ['arn:aws:iam::111122223333:user/kms-rotation-prod-RotateRole-ABC'],
    ],
    [
      'an issuer of another service, even if listed',
      { ...own, roleArn: 'arn:aws:sts::111122223333:role/kms-rotation-prod-RotateRole-ABC' },
      ['arn:aws:sts::111122223333:role/kms-rotation-prod-RotateRole-ABC'],
    ],
    [
      'a role of another account, even if listed, with its own session',
      {
        ...own,
        roleArn: 'arn:aws:iam::999988887777:role/kms-rotation-prod-RotateRole-ABC',
        arn: 'arn:aws:sts::999988887777:assumed-role/kms-rotation-prod-RotateRole-ABC/x',
      },
      ['arn:aws:iam::999988887777:role/kms-rotation-prod-RotateRole-ABC'],
    ],
    [
      'a role of another partition, even if listed, with its own session',
      {
        ...own,
        roleArn: 'arn:aws-cn:iam::111122223333:role/kms-rotation-prod-RotateRole-ABC',
        arn: 'arn:aws-cn:sts::111122223333:assumed-role/kms-rotation-prod-RotateRole-ABC/x',
      },
      ['arn:aws-cn:iam::111122223333:role/kms-rotation-prod-RotateRole-ABC'],
    ],
    [
      'a federated user session of the same name under the right issuer',
      { ...own, arn: 'arn:aws:sts::111122223333:federated-user/kms-rotation-prod-RotateRole-ABC/x' },
      [ROLE],
    ],
    [
      'no session name',
      { ...own, arn: 'arn:aws:sts::111122223333:assumed-role/kms-rotation-prod-RotateRole-ABC/' },
      [ROLE],
    ],
  ] as [string, Actor, string[]][])('is not for %s', (_name, actor, roles) => {
    expect(isOwnCall(actor, roles, LOCATION)).toBe(false);
  });
});
