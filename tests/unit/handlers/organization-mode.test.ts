import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { contextOf, invoke, loadHandler } from '../support/handler-loader';
import { useRecordingAws } from '../support/recording-aws';

const MEMBER = '111111111111';
const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';

/** KMS's deletion event of a key the service kept a record of, in `account` and `region`. */
const deletionIn = (account: string, region: string) => {
  const event = JSON.parse(readFileSync(join('events', 'kms-cmk-deletion.json'), 'utf8'));
  return { ...event, account, region, resources: [`arn:aws:kms:${region}:${account}:key/${KEY_ID}`] };
};

/** The rotation sample event, moved to `account` and `region`. */
const rotationIn = (account: string, region: string) => {
  const event = JSON.parse(readFileSync(join('events', 'rotation-on-demand.json'), 'utf8'));
  const keyId = event.detail['key-id'];
  return { ...event, account, region, resources: [`arn:aws:kms:${region}:${account}:key/${keyId}`] };
};

const operations = (requests: { operation: string }[]) => requests.map((request) => request.operation);

describe('Handlers in organization mode (MEMBER_ROLE_NAME set)', () => {
  const recording = useRecordingAws('deleted-managed-key');

  it("onKeyActivity acts in the member through its member role, notifies centrally, and leaves the member's drift out of the central Security Hub", async () => {
    vi.stubEnv('MEMBER_ROLE_NAME', 'kms-rotation-member');
    vi.stubEnv('SECURITY_HUB_FINDINGS', 'true');
    const handler = await loadHandler('onKeyActivity', recording.aws);

    const invocation = await invoke(
      handler,
      deletionIn(MEMBER, 'eu-west-1'),
      contextOf('onKeyActivity'),
      recording.aws,
    );

    expect(invocation.failed, String(invocation.error)).toBe(false);
    const assumed = invocation.requests.filter((request) => request.operation === 'AssumeRole');
    expect(assumed).toHaveLength(1);
    const asked = new URLSearchParams(assumed[0]?.body);
    expect(asked.get('RoleArn')).toBe(`arn:aws:iam::${MEMBER}:role/kms-rotation-member-eu-west-1`);
    expect(asked.get('RoleSessionName')).toBe('kms-rotation-onKeyActivity');
    expect(operations(invocation.requests)).toContain('Publish');
    expect(invocation.requests.filter((request) => request.url.startsWith('/findings'))).toEqual([]);
    expect(invocation.logLines.filter((line) => line.includes('not imported into Security Hub'))).toHaveLength(1);
  });

  it("onKeyActivity in the function's own account and Region asks nothing of STS", async () => {
    vi.stubEnv('MEMBER_ROLE_NAME', 'kms-rotation-member');
    const handler = await loadHandler('onKeyActivity', recording.aws);

    const invocation = await invoke(
      handler,
      deletionIn('123456789012', 'us-east-1'),
      contextOf('onKeyActivity'),
      recording.aws,
    );

    expect(invocation.failed, String(invocation.error)).toBe(false);
    expect(operations(invocation.requests)).not.toContain('AssumeRole');
    expect(operations(invocation.requests)).toContain('TrentService.DescribeKey');
  });

  it('onRotation acts in the member through the member role named for its Region', async () => {
    vi.stubEnv('MEMBER_ROLE_NAME', 'kms-rotation-member');
    const handler = await loadHandler('onRotation', recording.aws);

    const invocation = await invoke(
      handler,
      rotationIn(MEMBER, 'ap-southeast-2'),
      contextOf('onRotation'),
      recording.aws,
    );

    const assumed = invocation.requests.filter((request) => request.operation === 'AssumeRole');
    expect(assumed.map((request) => new URLSearchParams(request.body).get('RoleArn'))).toEqual([
      `arn:aws:iam::${MEMBER}:role/kms-rotation-member-ap-southeast-2`,
    ]);
    expect(new URLSearchParams(assumed[0]?.body).get('RoleSessionName')).toBe('kms-rotation-onRotation');
  });
});

describe('Handlers outside organization mode', () => {
  const recording = useRecordingAws('fail');

  it.each([
    [
      'onRotation',
      () => rotationIn(MEMBER, 'us-east-1'),
      /is for account 111111111111 in us-east-1; this function serves account 123456789012/,
    ],
    [
      'onKeyActivity',
      () => deletionIn(MEMBER, 'us-east-1'),
      /is for account 111111111111 in us-east-1; this function serves account 123456789012/,
    ],
    [
      'rotate',
      () => ({ key: `alias/app/x`, account: MEMBER, region: 'us-east-1' }),
      /^Invalid rotate request: account is accepted in organization mode only/,
    ],
  ] as const)('%s refuses a member account before any AWS call', async (fn, event, expected) => {
    const handler = await loadHandler(fn, recording.aws);

    const invocation = await invoke(handler, event(), contextOf(fn), recording.aws);

    expect(invocation.failed).toBe(true);
    expect((invocation.error as Error).name).toBe('InvalidInputError');
    expect((invocation.error as Error).message).toMatch(expected);
    expect(invocation.requests).toEqual([]);
  });
});
