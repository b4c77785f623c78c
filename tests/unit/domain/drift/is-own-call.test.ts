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

/**
 * Organization mode: in member account 444455556666, Region eu-west-1, the service acts through the
 * member role `kms-rotation-member-eu-west-1`, in sessions named `kms-rotation-<function>`.
 */
describe('Function: isOwnCall, in a member account', () => {
  const MEMBER: ServiceLocation = { partition: 'aws', account: '444455556666', region: 'eu-west-1' };
  const MEMBER_ROLE = 'arn:aws:iam::444455556666:role/kms-rotation-member-eu-west-1';
  const sessionOf = (role: string, session: string, account = '444455556666') =>
    `arn:aws:sts::${account}:assumed-role/${role}/${session}`;
  const memberCall = (session: string): Actor => ({
    type: 'AssumedRole',
    roleArn: MEMBER_ROLE,
    arn: sessionOf('kms-rotation-member-eu-west-1', session),
  });

  it.each(['kms-rotation-onKeyActivity', 'kms-rotation-rotate', 'kms-rotation-audit', 'kms-rotation-orgAuditItem'])(
    "is the service's own call: the member role's session %s",
    (session) => {
      expect(isOwnCall(memberCall(session), [], MEMBER, { roleArn: MEMBER_ROLE })).toBe(true);
    },
  );

  it.each([
    [
      'a human with a look-alike session name in another role of the member account',
      {
        type: 'AssumedRole',
        roleArn: 'arn:aws:iam::444455556666:role/Admin',
        arn: sessionOf('Admin', 'kms-rotation-onKeyActivity'),
      },
    ],
    [
      'a role named like the member role with a path',
      {
        type: 'AssumedRole',
        roleArn: 'arn:aws:iam::444455556666:role/x/kms-rotation-member-eu-west-1',
        arn: sessionOf('kms-rotation-member-eu-west-1', 'kms-rotation-onKeyActivity'),
      },
    ],
    [
      "the member role of another Region (another role: this Region's is the one acting here)",
      {
        type: 'AssumedRole',
        roleArn: 'arn:aws:iam::444455556666:role/kms-rotation-member-us-east-1',
        arn: sessionOf('kms-rotation-member-us-east-1', 'kms-rotation-onKeyActivity'),
      },
    ],
    [
      'the same role name in another account',
      {
        type: 'AssumedRole',
        roleArn: 'arn:aws:iam::777788889999:role/kms-rotation-member-eu-west-1',
        arn: sessionOf('kms-rotation-member-eu-west-1', 'kms-rotation-onKeyActivity', '777788889999'),
      },
    ],
    ['the member role in a session a person named', memberCall('alice@example.com')],
    ['the member role in a session named like a function that changes nothing', memberCall('kms-rotation-onRotation')],
    ['the member role in a session with a look-alike prefix', memberCall('kms-rotation-onKeyActivity-x')],
    [
      'the member role with a session ARN of another role',
      { type: 'AssumedRole', roleArn: MEMBER_ROLE, arn: sessionOf('Admin', 'kms-rotation-onKeyActivity') },
    ],
    [
      'an IAM user named like the session',
      { type: 'IAMUser', arn: 'arn:aws:iam::444455556666:user/kms-rotation-onKeyActivity' },
    ],
  ] as [string, Actor][])('is not for %s', (_name, actor) => {
    expect(isOwnCall(actor, [], MEMBER, { roleArn: MEMBER_ROLE })).toBe(false);
  });

  it('is not for the member role when the function acts in its own account (no member role given)', () => {
    expect(isOwnCall(memberCall('kms-rotation-onKeyActivity'), [], MEMBER)).toBe(false);
  });

  it("is not for the stack's own role name in the member account: the stack's roles are the central account's", () => {
    const central = 'arn:aws:iam::111122223333:role/kms-rotation-prod-RotateRole-ABC';
    const lookAlike: Actor = {
      type: 'AssumedRole',
      roleArn: 'arn:aws:iam::444455556666:role/kms-rotation-prod-RotateRole-ABC',
      arn: sessionOf('kms-rotation-prod-RotateRole-ABC', 'kms-rotation-prod-rotate'),
    };
    expect(isOwnCall(lookAlike, [central], MEMBER, { roleArn: MEMBER_ROLE })).toBe(false);
  });
});
