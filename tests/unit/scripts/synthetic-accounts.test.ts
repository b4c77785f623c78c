import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeKeyCommand, KMSClient, ListKeyRotationsCommand, ListKeysCommand } from '@aws-sdk/client-kms';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type AwsProxy, startAwsProxy } from '../../../scripts/lib/aws-proxy';
import { type AccountRegion, syntheticAccounts } from '../../../scripts/lib/kms-gaps/synthetic-accounts';

const CENTRAL = '123456789012';
const MEMBER_A = '111111111111';
const MEMBER_B = '222222222222';

/** Fleet sizes, written down: a different number in each account-Region. */
const SIZES: Record<string, number> = {
  [`${CENTRAL}/us-east-1`]: 2,
  [`${MEMBER_A}/us-east-1`]: 3,
  [`${MEMBER_A}/eu-west-1`]: 5,
  [`${MEMBER_B}/eu-west-1`]: 7,
};
const keysIn = (location: AccountRegion) => SIZES[`${location.account}/${location.region}`] ?? 0;

/**
 * The proxy's simulated organization (scripts/lib/kms-gaps/synthetic-accounts.ts), in front of a
 * stub STS that answers AssumeRole as STS does (XML, an access key id of its own per role), driven
 * by real SDK clients: the assumed credentials' calls are answered and limited as their account's
 * and Region's, the central credentials' as the central account's.
 */
describe('Function: syntheticAccounts (the proxy answering and limiting per account and Region)', () => {
  let upstream: Server;
  let proxy: AwsProxy | undefined;
  let issued = 0;

  beforeEach(async () => {
    issued = 0;
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (!body.includes('Action=AssumeRole')) {
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
          res.end('{}');
          return;
        }
        issued += 1;
        const key = `ASIASTUB${String(issued).padStart(12, '0')}`;
        res.writeHead(200, { 'content-type': 'text/xml' });
        res.end(
          `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>` +
            `<AccessKeyId>${key}</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken>` +
            `<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>` +
            `<AssumedRoleUser><AssumedRoleId>AROA:x</AssumedRoleId><Arn>arn:aws:sts::1:assumed-role/r/x</Arn></AssumedRoleUser>` +
            `</AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>`,
        );
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    vi.useRealTimers();
    await proxy?.stop();
    proxy = undefined;
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  const start = async (rateLimits?: Record<string, number>) => {
    const organization = syntheticAccounts({ centralAccount: CENTRAL, defaultRegion: 'us-east-1', keysIn });
    proxy = await startAwsProxy({
      target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      syntheticAccounts: organization,
      ...(rateLimits ? { rateLimits } : {}),
    });
    return { proxy, organization };
  };

  const central = { accessKeyId: 'AKIACENTRAL000000001', secretAccessKey: 'test' };

  /** A KMS client acting in `account` and `region` through a role assumed there, as the member role is. */
  const memberKms = async (endpoint: string, account: string, region: string) => {
    const sts = new STSClient({ endpoint, region: 'us-east-1', credentials: central, maxAttempts: 1 });
    const { Credentials } = await sts.send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${account}:role/kms-rotation-member-${region}`,
        RoleSessionName: 's',
      }),
    );
    sts.destroy();
    return new KMSClient({
      endpoint,
      region,
      maxAttempts: 1,
      credentials: {
        accessKeyId: Credentials?.AccessKeyId as string,
        secretAccessKey: Credentials?.SecretAccessKey as string,
        sessionToken: Credentials?.SessionToken as string,
      },
    });
  };

  it("learns each assumed role's account from the AssumeRole answer and answers KMS reads with that account-Region's own fleet", async () => {
    const { proxy, organization } = await start();
    const inA = await memberKms(proxy.endpoint, MEMBER_A, 'eu-west-1');
    const inAHome = await memberKms(proxy.endpoint, MEMBER_A, 'us-east-1');
    const inB = await memberKms(proxy.endpoint, MEMBER_B, 'eu-west-1');
    const own = new KMSClient({ endpoint: proxy.endpoint, region: 'us-east-1', credentials: central, maxAttempts: 1 });

    const listed = async (kms: KMSClient) => (await kms.send(new ListKeysCommand({}))).Keys ?? [];
    const keysA = await listed(inA);
    expect(keysA).toHaveLength(5);
    for (const key of keysA) expect(key.KeyArn).toMatch(new RegExp(`^arn:aws:kms:eu-west-1:${MEMBER_A}:key/`));
    expect(await listed(inAHome)).toHaveLength(3);
    const keysB = await listed(inB);
    expect(keysB).toHaveLength(7);
    expect(keysB[0]?.KeyArn).toContain(`:eu-west-1:${MEMBER_B}:key/`);
    // Credentials that assumed no role: the central account.
    const ownKeys = await listed(own);
    expect(ownKeys).toHaveLength(2);
    expect(ownKeys[0]?.KeyArn).toContain(`:us-east-1:${CENTRAL}:key/`);
    const described = await inB.send(new DescribeKeyCommand({ KeyId: keysB[3]?.KeyId }));
    expect(described.KeyMetadata?.Arn).toBe(keysB[3]?.KeyArn);
    expect([...organization.learned().values()].sort()).toEqual([MEMBER_A, MEMBER_A, MEMBER_B]);
    for (const kms of [inA, inAHome, inB, own]) kms.destroy();
  });

  it("enforces each API's limit per account-Region: one account-Region's calls leave another's quota whole", async () => {
    // One frozen second: every call falls into the same quota window.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-12-01T00:00:00.000Z'));
    const { proxy } = await start({ ListKeyRotations: 4 });
    const inA = await memberKms(proxy.endpoint, MEMBER_A, 'eu-west-1');
    const inAHome = await memberKms(proxy.endpoint, MEMBER_A, 'us-east-1');
    const inB = await memberKms(proxy.endpoint, MEMBER_B, 'eu-west-1');
    const burst = (kms: KMSClient, calls: number) =>
      Promise.allSettled(
        Array.from({ length: calls }, () => kms.send(new ListKeyRotationsCommand({ KeyId: 'k' }))),
      ).then((outcomes) => outcomes.filter((outcome) => outcome.status === 'fulfilled').length);

    expect(await burst(inA, 6)).toBe(4);
    expect(proxy.throttled()).toBe(2);
    // Same account, another Region; another account, same Region: each its own 4.
    expect(await burst(inAHome, 4)).toBe(4);
    expect(await burst(inB, 4)).toBe(4);
    expect(proxy.throttled()).toBe(2);
    expect(await burst(inB, 1)).toBe(0);
    for (const kms of [inA, inAHome, inB]) kms.destroy();
  });
});
