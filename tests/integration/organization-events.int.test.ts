import {
  DisableKeyRotationCommand,
  EnableKeyRotationCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  KMSClient,
  ListKeyRotationsCommand,
  RotateKeyOnDemandCommand,
} from '@aws-sdk/client-kms';
import {
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  DescribeCreateAccountStatusCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsProxy, startAwsProxy } from '../../scripts/lib/aws-proxy';
import { emulatorKeys } from '../../scripts/lib/emulator-keys';
import { accessKeyIdFor, invokeBundled } from '../../scripts/lib/invoke';
import { kmsCallRecord, rotationEvent } from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import { deployTestStack, type TestStack } from './support/deployed-stack';

const CENTRAL = '123456789012';
const MEMBER_ROLE_NAME = 'kms-rotation-member';
/** Organization mode, as the stage's `memberRoleName` gives it to the functions that act in members. */
const ORGANIZATION_MODE = { MEMBER_ROLE_NAME };

interface Notified {
  type: string;
  account: string;
  region: string;
  keyArn: string;
  details: Record<string, unknown>;
}

/**
 * Organization mode end to end: the central stack deployed into moto, keys in member accounts
 * made with AssumeRole credentials (moto serves any account), and the bundled functions run with
 * `MEMBER_ROLE_NAME` set, through the proxy that records who signed each call.
 */
describe('Organization mode: central functions act in member accounts', () => {
  const region = 'us-east-1';
  let deployed: TestStack;
  let proxy: AwsProxy;

  beforeAll(async () => {
    deployed = await deployTestStack('itorg', { params: { aliasScope: 'alias/app/*,alias/org/*' } });
    proxy = await startAwsProxy({ target: deployed.emulator.endpoint });
  });

  afterAll(async () => {
    await proxy?.stop();
    await deployed?.stop();
  });

  const fn = (name: string) => deployed.stack.functions[name] as DeployedStack['functions'][string];

  const invoke = (name: string, event: unknown, env: Record<string, string> = ORGANIZATION_MODE) =>
    invokeBundled({ endpoint: proxy.endpoint, region, fn: fn(name), event, env });

  /** KMS in a member account and Region, as its own operators would use it. */
  const memberKms = async (account: string, memberRegion: string): Promise<KMSClient> => {
    const sts = new STSClient({
      endpoint: deployed.emulator.endpoint,
      region: memberRegion,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const { Credentials } = await sts.send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${account}:role/OrganizationAccountAccessRole`,
        RoleSessionName: 'operator',
      }),
    );
    return new KMSClient({
      endpoint: deployed.emulator.endpoint,
      region: memberRegion,
      credentials: {
        accessKeyId: Credentials?.AccessKeyId as string,
        secretAccessKey: Credentials?.SecretAccessKey as string,
        sessionToken: Credentials?.SessionToken as string,
      },
    });
  };

  /** A managed key in the member, rotated on demand, and the `KMS CMK Rotation` event AWS sends for it. */
  const rotatedMemberKey = async (account: string, memberRegion: string, alias: string) => {
    const kms = await memberKms(account, memberRegion);
    const keyId = await emulatorKeys(kms).createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', alias);
    const keyArn = `arn:aws:kms:${memberRegion}:${account}:key/${keyId}`;
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    const { Rotations = [] } = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
    const event = rotationEvent({
      keyId,
      keyArn,
      time: Rotations.at(-1)?.RotationDate ?? new Date(),
      rotationType: 'ON_DEMAND',
      account,
      region: memberRegion,
    });
    return { kms, keyId, keyArn, event };
  };

  const notified = async (): Promise<Notified[]> =>
    (await deployed.inbox.drain()).map((notification) => notification.body as unknown as Notified);

  it("validates a member key's rotation centrally, with KMS through the member role and records, leases and topic central", async () => {
    // Prepare
    const { keyArn, event } = await rotatedMemberKey('111111111111', region, 'alias/org/payments');
    await deployed.inbox.drain();
    proxy.reset();

    // Act
    const outcome = await invoke('onRotation', event);

    // Assess
    expect(outcome.ok, JSON.stringify(outcome.ok ? outcome.result : outcome.error)).toBe(true);
    expect((outcome as { result: { outcome: string } }).result.outcome).toBe('validated');
    const [notification, ...others] = await notified();
    expect(others).toEqual([]);
    expect(notification).toMatchObject({ type: 'RotationValidated', account: '111111111111', region, keyArn });
    const own = accessKeyIdFor(fn('onRotation').name);
    const calls = proxy.calls();
    const assumed = calls.filter((call) => call.api === 'AssumeRole');
    expect(assumed.map((call) => call.caller)).toEqual([own]);
    const kmsCalls = calls.filter((call) =>
      ['DescribeKey', 'Encrypt', 'Decrypt', 'ListKeyRotations'].includes(call.api),
    );
    expect(kmsCalls.length).toBeGreaterThan(0);
    expect(kmsCalls.filter((call) => call.caller === own)).toEqual([]);
    const central = calls.filter((call) =>
      ['Publish', 'PutParameter', 'GetParameter', 'PutItem', 'DeleteItem'].includes(call.api),
    );
    expect(central.length).toBeGreaterThan(0);
    expect(central.filter((call) => call.caller !== own)).toEqual([]);
  });

  it("validates a rotation in another member account and another Region, in that account's Region", async () => {
    const { keyArn, event } = await rotatedMemberKey('222222222222', 'eu-west-1', 'alias/org/ledger');
    await deployed.inbox.drain();

    const outcome = await invoke('onRotation', event);

    expect(outcome.ok, JSON.stringify(outcome.ok ? outcome.result : outcome.error)).toBe(true);
    expect(await notified()).toEqual([
      expect.objectContaining({ type: 'RotationValidated', account: '222222222222', region: 'eu-west-1', keyArn }),
    ]);
  });

  it('outside organization mode, the same member event is refused before any AWS call', async () => {
    const { event } = await rotatedMemberKey('111111111111', region, 'alias/org/refused');
    await deployed.inbox.drain();
    proxy.reset();

    const outcome = await invoke('onRotation', event, {});

    expect(outcome.ok).toBe(false);
    expect((outcome as { error: { name: string; message: string } }).error).toMatchObject({
      name: 'InvalidInputError',
      message: expect.stringContaining(
        `is for account 111111111111 in ${region}; this function serves account ${CENTRAL}`,
      ),
    });
    expect(proxy.calls()).toEqual([]);
    expect(await notified()).toEqual([]);
  });

  it('detects a drift in a member account (rotation disabled by a person there), and sees its own remediation there as its own', async () => {
    // Prepare: the real change in the member, then its CloudTrail record.
    const kms = await memberKms('111111111111', region);
    const keyId = await emulatorKeys(kms).createManagedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', 'alias/org/drift');
    const keyArn = `arn:aws:kms:${region}:111111111111:key/${keyId}`;
    await kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
    await kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));
    const event = kmsCallRecord({
      eventName: 'DisableKeyRotation',
      requestParameters: { keyId },
      resourceArns: [keyArn],
      account: '111111111111',
      region,
    });
    await deployed.inbox.drain();

    // Act: detected in the member, then put back there.
    const detected = await invoke('onKeyActivity', event);
    const detectedNotifications = await notified();
    const remediated = await invoke('onKeyActivity', event, { ...ORGANIZATION_MODE, DRIFT_MODE: 'remediate' });

    // Assess
    expect(detected.ok, JSON.stringify(detected.ok ? detected.result : detected.error)).toBe(true);
    const report = (detected as { result: { outcome: string; findings: { rule: string }[] } }).result;
    expect(report.outcome).toBe('drift');
    expect(report.findings.map((finding) => finding.rule)).toEqual(['rotation-enabled']);
    expect(detectedNotifications).toEqual([
      expect.objectContaining({ type: 'DriftDetected', account: '111111111111', region, keyArn }),
    ]);
    expect(remediated.ok, JSON.stringify(remediated.ok ? remediated.result : remediated.error)).toBe(true);
    expect((await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).KeyRotationEnabled).toBe(true);
    expect(await notified()).toEqual([
      expect.objectContaining({ type: 'DriftRemediated', account: '111111111111', region, keyArn }),
    ]);

    // Its own remediation's record, as CloudTrail writes it in the member: the member role's session.
    const ownRecord = {
      ...event,
      id: crypto.randomUUID(),
      detail: {
        ...event.detail,
        eventName: 'EnableKeyRotation',
        eventID: crypto.randomUUID(),
        userIdentity: {
          type: 'AssumedRole',
          arn: `arn:aws:sts::111111111111:assumed-role/${MEMBER_ROLE_NAME}-${region}/kms-rotation-onKeyActivity`,
          accountId: '111111111111',
          sessionContext: {
            sessionIssuer: {
              type: 'Role',
              arn: `arn:aws:iam::111111111111:role/${MEMBER_ROLE_NAME}-${region}`,
              accountId: '111111111111',
              userName: `${MEMBER_ROLE_NAME}-${region}`,
            },
          },
        },
      },
    };
    const own = await invoke('onKeyActivity', ownRecord);

    expect(own.ok, JSON.stringify(own.ok ? own.result : own.error)).toBe(true);
    expect((own as { result: { outcome: string; summary: string } }).result).toMatchObject({
      outcome: 'ignored',
      summary: 'EnableKeyRotation was made by kms-rotation itself',
    });
  });

  it('rotate {key, account, region} rotates a member key on demand, in the member', async () => {
    const kms = await memberKms('111111111111', region);
    const keyId = await emulatorKeys(kms).createManagedKey(
      'SYMMETRIC_DEFAULT',
      'ENCRYPT_DECRYPT',
      'alias/org/rotate-me',
    );
    await deployed.inbox.drain();

    const outcome = await invoke('rotate', {
      key: 'alias/org/rotate-me',
      account: '111111111111',
      region,
      strategy: 'on-demand',
    });

    expect(outcome.ok, JSON.stringify(outcome.ok ? outcome.result : outcome.error)).toBe(true);
    expect((outcome as { result: { outcome: string; keyId: string } }).result).toMatchObject({
      outcome: 'completed',
      keyId,
    });
    const { Rotations = [] } = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
    expect(Rotations.map((rotation) => rotation.RotationType)).toEqual(['ON_DEMAND']);
    expect((await notified()).map((notification) => [notification.account, notification.keyArn])).toContainEqual([
      '111111111111',
      `arn:aws:kms:${region}:111111111111:key/${keyId}`,
    ]);
  });

  it("rotate's alias-swap in a member names the member role in the successor's key policy (the role that creates and finishes it)", async () => {
    const kms = await memberKms('111111111111', region);
    const predecessor = await emulatorKeys(kms).createManagedKey(
      'SYMMETRIC_DEFAULT',
      'ENCRYPT_DECRYPT',
      'alias/org/swap-me',
    );

    const outcome = await invoke('rotate', {
      key: 'alias/org/swap-me',
      account: '111111111111',
      region,
      strategy: 'alias-swap',
    });

    expect(outcome.ok, JSON.stringify(outcome.ok ? outcome.result : outcome.error)).toBe(true);
    const report = (outcome as { result: { outcome: string; keyId: string; predecessor: string } }).result;
    expect(report).toMatchObject({ outcome: 'completed', predecessor });
    expect(await emulatorKeys(kms).targetOf('alias/org/swap-me')).toBe(report.keyId);
    const { Policy } = await kms.send(new GetKeyPolicyCommand({ KeyId: report.keyId, PolicyName: 'default' }));
    const statements = (JSON.parse(Policy as string) as { Statement: { Sid?: string; Principal?: unknown }[] })
      .Statement;
    expect(statements.find((statement) => statement.Sid === 'KmsRotationFinishesThisRotation')?.Principal).toEqual({
      AWS: `arn:aws:iam::111111111111:role/${MEMBER_ROLE_NAME}-${region}`,
    });
    await deployed.inbox.drain();
  });

  it('rotate refuses account and region outside organization mode, by name, before any AWS call', async () => {
    proxy.reset();

    const outcome = await invoke('rotate', { key: 'alias/org/rotate-me', account: '111111111111', region }, {});

    expect(outcome.ok).toBe(false);
    expect((outcome as { error: { name: string; message: string } }).error).toMatchObject({
      name: 'InvalidInputError',
      message: expect.stringMatching(/^Invalid rotate request: account is accepted in organization mode only/),
    });
    expect(proxy.calls()).toEqual([]);
  });

  it("names the member account's OU path when Organizations gives it (the central account is the management account)", async () => {
    // Prepare: an organization, an OU, a member account moved into it (moto picks its id).
    const organizations = new OrganizationsClient({
      endpoint: deployed.emulator.endpoint,
      region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await organizations.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }));
    const rootId = (await organizations.send(new ListRootsCommand({}))).Roots?.[0]?.Id as string;
    const { OrganizationalUnit } = await organizations.send(
      new CreateOrganizationalUnitCommand({ ParentId: rootId, Name: 'Workloads' }),
    );
    const { CreateAccountStatus } = await organizations.send(
      new CreateAccountCommand({ AccountName: 'payments', Email: 'payments@example.com' }),
    );
    const { CreateAccountStatus: created } = await organizations.send(
      new DescribeCreateAccountStatusCommand({ CreateAccountRequestId: CreateAccountStatus?.Id }),
    );
    const account = created?.AccountId as string;
    await organizations.send(
      new MoveAccountCommand({
        AccountId: account,
        SourceParentId: rootId,
        DestinationParentId: OrganizationalUnit?.Id,
      }),
    );
    const { event } = await rotatedMemberKey(account, region, 'alias/org/in-ou');
    await deployed.inbox.drain();

    const outcome = await invoke('onRotation', event);

    expect(outcome.ok, JSON.stringify(outcome.ok ? outcome.result : outcome.error)).toBe(true);
    const [notification] = await notified();
    expect(notification?.account).toBe(account);
    expect(notification?.details.organizationalUnitPath).toBe(`${rootId}/Workloads`);
  });
});
