import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { actingLocations, type OptionsIn } from '../../../src/adapters/acting-location';
import { InvalidInputError } from '../../../src/domain/errors';

const sts = mockClient(STSClient);
const OWN = { partition: 'aws', account: '123456789012', region: 'us-east-1' };
const MEMBER = { account: '111111111111', region: 'eu-west-1' };

/** Clients as the handlers make them: here, the options each would be made with. */
const recording = () => {
  const made: { options: ReturnType<OptionsIn>; replicaIn: OptionsIn }[] = [];
  const make = (optionsIn: OptionsIn) => {
    const clients = { options: optionsIn(), replicaIn: optionsIn };
    made.push(clients);
    return clients;
  };
  return { made, make };
};

const credentialsAnswer = {
  Credentials: {
    AccessKeyId: 'AKIAMEMBER',
    SecretAccessKey: 'secret',
    SessionToken: 'token',
    Expiration: new Date(Date.now() + 3_600_000),
  },
};

describe('Function: actingLocations', () => {
  beforeEach(() => {
    sts.reset();
    sts.on(AssumeRoleCommand).resolves(credentialsAnswer);
  });

  it("outside organization mode: another account's event is acted on in the function's own location, with its own clients, and nothing is assumed", () => {
    const { made, make } = recording();
    const actingIn = actingLocations({
      fn: 'onRotation',
      memberRoleName: undefined,
      make,
      sts: () => new STSClient({}),
    });

    const acting = actingIn(OWN, MEMBER);

    expect(acting.location).toEqual(OWN);
    expect(acting.inMember).toBe(false);
    expect(acting.memberRoleArn).toBeUndefined();
    expect(acting.clients).toBe(made[0]);
    expect(made).toHaveLength(1);
    expect(acting.clients.options).toEqual({});
    expect(sts.calls()).toHaveLength(0);
  });

  it("in organization mode, the function's own account and Region keep its own clients, without AssumeRole", () => {
    const { made, make } = recording();
    const actingIn = actingLocations({
      fn: 'onRotation',
      memberRoleName: 'kms-rotation-member',
      make,
      sts: () => new STSClient({}),
    });

    const acting = actingIn(OWN, { account: OWN.account, region: OWN.region });

    expect(acting.location).toEqual(OWN);
    expect(acting.inMember).toBe(false);
    expect(acting.clients).toBe(made[0]);
    expect(sts.calls()).toHaveLength(0);
  });

  it("in organization mode, another account acts in the event's account and Region (the function's partition) through that account's member role", async () => {
    const { made, make } = recording();
    const actingIn = actingLocations({
      fn: 'onKeyActivity',
      memberRoleName: 'kms-rotation-member',
      make,
      sts: () => new STSClient({}),
    });

    const acting = actingIn(OWN, MEMBER);

    expect(acting.location).toEqual({ partition: 'aws', account: '111111111111', region: 'eu-west-1' });
    expect(acting.own).toEqual(OWN);
    expect(acting.inMember).toBe(true);
    expect(acting.memberRoleArn).toBe('arn:aws:iam::111111111111:role/kms-rotation-member-eu-west-1');
    expect(acting.clients).toBe(made[1]);
    expect(acting.clients.options.region).toBe('eu-west-1');
    const credentials = await acting.clients.options.credentials?.();
    expect(credentials?.accessKeyId).toBe('AKIAMEMBER');
    expect(sts.commandCalls(AssumeRoleCommand).map((call) => call.args[0].input)).toEqual([
      {
        RoleArn: 'arn:aws:iam::111111111111:role/kms-rotation-member-eu-west-1',
        RoleSessionName: 'kms-rotation-onKeyActivity',
        DurationSeconds: 3600,
      },
    ]);
  });

  it('another Region of its own account goes through the member role of that Region too', () => {
    const { make } = recording();
    const actingIn = actingLocations({
      fn: 'rotate',
      memberRoleName: 'kms-rotation-member',
      make,
      sts: () => new STSClient({}),
    });

    const acting = actingIn(OWN, { account: OWN.account, region: 'eu-west-1' });

    expect(acting.inMember).toBe(true);
    expect(acting.memberRoleArn).toBe('arn:aws:iam::123456789012:role/kms-rotation-member-eu-west-1');
  });

  it("a member's replicas are read with the member role of the replica's Region", async () => {
    const { make } = recording();
    const actingIn = actingLocations({
      fn: 'onRotation',
      memberRoleName: 'kms-rotation-member',
      make,
      sts: () => new STSClient({}),
    });

    const replicaOptions = actingIn(OWN, MEMBER).clients.replicaIn('ap-southeast-2');
    await replicaOptions.credentials?.();

    expect(replicaOptions.region).toBe('ap-southeast-2');
    expect(sts.commandCalls(AssumeRoleCommand)[0]?.args[0].input.RoleArn).toBe(
      'arn:aws:iam::111111111111:role/kms-rotation-member-ap-southeast-2',
    );
  });

  it('makes one client set per account and Region, kept for later invocations, and one STS client per process', () => {
    const { made, make } = recording();
    let stsClients = 0;
    const actingIn = actingLocations({
      fn: 'onRotation',
      memberRoleName: 'kms-rotation-member',
      make,
      sts: () => {
        stsClients += 1;
        return new STSClient({});
      },
    });

    const first = actingIn(OWN, MEMBER);
    const again = actingIn(OWN, MEMBER);
    const other = actingIn(OWN, { account: '222222222222', region: 'us-west-2' });

    expect(again.clients).toBe(first.clients);
    expect(other.clients).not.toBe(first.clients);
    expect(made).toHaveLength(3);
    expect(stsClients).toBe(1);
  });

  it.each([
    [
      'an account of 11 digits',
      { account: '11111111111', region: 'eu-west-1' },
      /^account must be a 12-digit account id/,
    ],
    [
      'an account with a role path',
      { account: '111111111111/x', region: 'eu-west-1' },
      /^account must be a 12-digit account id/,
    ],
    ['a Region with a slash', { account: '111111111111', region: 'eu-west-1/x' }, /^region must be a Region name/],
  ])('refuses %s before any AWS call', (_name, target, expected) => {
    const { make } = recording();
    const actingIn = actingLocations({
      fn: 'rotate',
      memberRoleName: 'kms-rotation-member',
      make,
      sts: () => new STSClient({}),
    });

    expect(() => actingIn(OWN, target)).toThrow(InvalidInputError);
    expect(() => actingIn(OWN, target)).toThrow(expected);
    expect(sts.calls()).toHaveLength(0);
  });
});
