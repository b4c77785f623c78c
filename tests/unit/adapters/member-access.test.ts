import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { MemberCredentials, perLocation, RENEW_BEFORE_EXPIRY_MS } from '../../../src/adapters/member-access';
import { AwsServiceError } from '../../../src/domain/errors';

const sts = mockClient(STSClient);
const member = { partition: 'aws', account: '111111111111', region: 'eu-west-1' };
const other = { partition: 'aws', account: '222222222222', region: 'eu-west-1' };
const T0 = Date.parse('2026-12-02T00:00:00Z');

const answer = (id: string, expiresAt: number) => ({
  Credentials: {
    AccessKeyId: id,
    SecretAccessKey: 'secret',
    SessionToken: 'token',
    Expiration: new Date(expiresAt),
  },
});

describe('MemberCredentials', () => {
  let now = T0;
  const credentials = () =>
    new MemberCredentials(new STSClient({}), 'kms-rotation-member', 'kms-rotation-audit', () => now);

  beforeEach(() => {
    sts.reset();
    now = T0;
  });

  it('assumes the member role of the account and Region, named for its Region', async () => {
    sts.on(AssumeRoleCommand).resolves(answer('AKIA1', T0 + 3_600_000));
    const got = await credentials().credentialsFor(member);
    expect(got.accessKeyId).toBe('AKIA1');
    expect(sts.commandCalls(AssumeRoleCommand)[0]?.args[0].input).toEqual({
      RoleArn: 'arn:aws:iam::111111111111:role/kms-rotation-member-eu-west-1',
      RoleSessionName: 'kms-rotation-audit',
      DurationSeconds: 3600,
    });
  });

  it('keeps the credentials of an account until shortly before they expire, then assumes the role again', async () => {
    sts
      .on(AssumeRoleCommand)
      .resolvesOnce(answer('AKIA1', T0 + 3_600_000))
      .resolves(answer('AKIA2', T0 + 7_200_000));
    const access = credentials();
    expect((await access.credentialsFor(member)).accessKeyId).toBe('AKIA1');
    now = T0 + 3_600_000 - RENEW_BEFORE_EXPIRY_MS - 1;
    expect((await access.credentialsFor(member)).accessKeyId).toBe('AKIA1');
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(1);
    now = T0 + 3_600_000 - RENEW_BEFORE_EXPIRY_MS;
    expect((await access.credentialsFor(member)).accessKeyId).toBe('AKIA2');
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(2);
  });

  it('shares one AssumeRole among callers at the same time, and keeps accounts apart', async () => {
    sts
      .on(AssumeRoleCommand)
      .callsFake((input: { RoleArn: string }) => answer(input.RoleArn.split(':')[4] as string, T0 + 3_600_000));
    const access = credentials();
    const got = await Promise.all([
      access.credentialsFor(member),
      access.credentialsFor(member),
      access.credentialsFor(other),
    ]);
    expect(got.map((c) => c.accessKeyId)).toEqual(['111111111111', '111111111111', '222222222222']);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(2);
  });

  it('refuses with the role, account and Region when the role cannot be assumed, and tries again next time', async () => {
    sts
      .on(AssumeRoleCommand)
      .rejectsOnce(Object.assign(new Error('not authorized to perform sts:AssumeRole'), { name: 'AccessDenied' }))
      .resolves(answer('AKIA1', T0 + 3_600_000));
    const access = credentials();
    const error = await access.credentialsFor(member).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsServiceError);
    expect((error as AwsServiceError).accessDenied).toBe(true);
    expect((error as Error).message).toContain('arn:aws:iam::111111111111:role/kms-rotation-member-eu-west-1');
    expect((error as Error).message).toContain(
      'Is the member stack deployed in account 111111111111, Region eu-west-1',
    );
    expect((await access.credentialsFor(member)).accessKeyId).toBe('AKIA1');
  });

  it('fails retryable when STS answers no credentials', async () => {
    sts.on(AssumeRoleCommand).resolves({});
    const error = await credentials()
      .credentialsFor(member)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsServiceError);
    expect((error as AwsServiceError).retryable).toBe(true);
  });
});

describe('perLocation', () => {
  it('makes one value per partition, account and Region, and reuses it', () => {
    let made = 0;
    const clientIn = perLocation((location) => {
      made += 1;
      return { location, serial: made };
    });
    expect(clientIn(member).serial).toBe(1);
    expect(clientIn({ ...member }).serial).toBe(1);
    expect(clientIn(other).serial).toBe(2);
    expect(clientIn({ ...member, region: 'us-east-1' }).serial).toBe(3);
  });
});
