import { describe, expect, it } from 'vitest';
import { parseRetireInput } from '../../../src/adapters/schemas/retire-request';
import { InvalidInputError, MAX_INPUT_ERROR_CHARS } from '../../../src/domain/errors';

const KEY = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = `arn:aws:kms:eu-west-1:111122223333:key/${KEY}`;

const record = (detail: Record<string, unknown> = {}, envelope: Record<string, unknown> = {}) => ({
  version: '0',
  id: 'evt-1',
  'detail-type': 'AWS API Call via CloudTrail',
  source: 'aws.kms',
  account: '111122223333',
  time: '2026-02-01T10:00:00Z',
  region: 'eu-west-1',
  resources: [],
  ...envelope,
  detail: {
    eventSource: 'kms.amazonaws.com',
    eventName: 'Decrypt',
    eventTime: '2026-02-01T09:59:58Z',
    eventID: 'ct-1',
    errorCode: 'DisabledException',
    userIdentity: { arn: 'arn:aws:sts::111122223333:assumed-role/Orders/i-1' },
    resources: [{ ARN, accountId: '111122223333' }],
    ...detail,
  },
});

const refused = (payload: unknown, field: RegExp) => {
  let error: unknown;
  try {
    parseRetireInput(payload);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(InvalidInputError);
  expect((error as Error).message).toMatch(field);
  expect((error as Error).message.length).toBeLessThanOrEqual(MAX_INPUT_ERROR_CHARS);
};

describe('retire payload', () => {
  it('reads no payload, the schedule and a manual request', () => {
    for (const none of [undefined, null, '', {}]) {
      expect(parseRetireInput(none)).toEqual({ kind: 'request', request: {} });
    }
    expect(parseRetireInput({ scheduled: true })).toEqual({ kind: 'request', request: { scheduled: true } });
    expect(parseRetireInput({ dryRun: false, keyId: KEY })).toEqual({
      kind: 'request',
      request: { dryRun: false, keyId: KEY },
    });
  });

  it('refuses, naming the field: an unknown field, a typo of dryRun, an alias or ARN for keyId, a non-boolean dryRun', () => {
    refused({ dryrun: false }, /dryrun/);
    refused({ keyId: 'alias/app/secure-key' }, /keyId/);
    refused({ keyId: ARN }, /keyId/);
    refused({ dryRun: 'false' }, /dryRun/);
    refused({ scheduled: false }, /scheduled/);
    refused({ ['x'.repeat(100_000)]: 1 }, /Unrecognized key/);
    refused([], /payload/);
  });
});

describe('retire: the CloudTrail record of a refused use', () => {
  it('reads the key from the record of a use KMS refused, with who tried', () => {
    expect(parseRetireInput(record())).toEqual({
      kind: 'use-attempt',
      account: '111122223333',
      region: 'eu-west-1',
      attempt: {
        eventId: 'ct-1',
        keyId: KEY,
        eventName: 'Decrypt',
        errorCode: 'DisabledException',
        at: new Date('2026-02-01T09:59:58Z'),
        actor: 'arn:aws:sts::111122223333:assumed-role/Orders/i-1',
      },
    });
    expect(parseRetireInput(record({ errorCode: 'KMSInvalidStateException' }))).toMatchObject({
      attempt: { errorCode: 'KMSInvalidStateException' },
    });
  });

  it("refuses a record of another error, another service, or naming no key, another key ARN's account or Region, or two keys", () => {
    refused(record({ errorCode: 'AccessDeniedException' }), /errorCode/);
    refused(record({ errorCode: undefined }), /errorCode/);
    refused(record({ eventSource: 'sns.amazonaws.com' }), /eventSource/);
    refused(record({ resources: [] }), /resources/);
    refused(record({ resources: [{ ARN: ARN.replace('111122223333', '999999999999') }] }), /exactly one key ARN/);
    refused(record({ resources: [{ ARN: ARN.replace('eu-west-1', 'us-east-1') }] }), /exactly one key ARN/);
    refused(
      record({ resources: [{ ARN }, { ARN: ARN.replace(KEY, '00000000-0000-4000-8000-000000000000') }] }),
      /exactly one key ARN/,
    );
    refused(record({ eventName: 'x'.repeat(10_000) }), /eventName/);
    refused(record({}, { account: 'someone' }), /account/);
  });
});
