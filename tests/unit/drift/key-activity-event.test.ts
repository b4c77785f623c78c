import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseKeyActivityEvent, WATCHED_CALLS } from '../../../src/adapters/schemas/key-activity-event';
import { InvalidInputError } from '../../../src/domain/errors';

const sample = (file: string) => JSON.parse(readFileSync(join('events', file), 'utf8'));
const KEY = '1234abcd-12ab-34cd-56ef-1234567890ab';

describe('Function: parseKeyActivityEvent', () => {
  it('accepts a sample of every watched call, with who, where from and when', () => {
    const files = readdirSync('events').filter((file) => file.startsWith('cloudtrail-'));
    const names = files.map((file) => parseKeyActivityEvent(sample(file)).name);
    expect(new Set(names)).toEqual(new Set(WATCHED_CALLS));
    const parsed = parseKeyActivityEvent(sample('cloudtrail-disable-key-rotation.json'));
    expect(parsed).toMatchObject({
      name: 'DisableKeyRotation',
      callId: expect.any(String),
      keyRefs: expect.arrayContaining([KEY]),
      actor: { type: 'IAMUser', arn: 'arn:aws:iam::123456789012:user/Alice', sourceIp: '198.51.100.24' },
    });
  });

  it('reads alias names and the new target of alias calls from the request and the resources', () => {
    const parsed = parseKeyActivityEvent(sample('cloudtrail-update-alias.json'));
    expect(parsed.aliasNames).toEqual(['alias/app/secure-key']);
    expect(parsed.keyRefs).toEqual(
      expect.arrayContaining([
        '0000aaaa-1111-4222-8333-444455556666',
        'arn:aws:kms:us-east-1:123456789012:key/0000aaaa-1111-4222-8333-444455556666',
      ]),
    );
  });

  it('keeps the error of a failed call', () => {
    expect(parseKeyActivityEvent(sample('cloudtrail-rotate-key-on-demand-failed.json'))).toMatchObject({
      errorCode: 'LimitExceededException',
    });
  });

  it('accepts KMS deletion and key material expiration events', () => {
    expect(parseKeyActivityEvent(sample('kms-cmk-deletion.json'))).toMatchObject({
      name: 'KMS CMK Deletion',
      keyRefs: [KEY],
    });
    expect(parseKeyActivityEvent(sample('kms-imported-key-material-expiration.json'))).toMatchObject({
      name: 'KMS Imported Key Material Expiration',
    });
  });

  it.each([
    ['an unwatched call', sample('unwatched-cloudtrail-encrypt.json'), /eventName/],
    ['another service', sample('unwatched-cloudtrail-s3.json'), /source/],
    ['a rotation event', sample('rotation-on-demand.json'), /detail-type/],
    ['null', null, /Not a watched KMS event/],
    [
      'an oversized principal',
      {
        ...sample('cloudtrail-disable-key.json'),
        detail: { ...sample('cloudtrail-disable-key.json').detail, userIdentity: { arn: 'a'.repeat(5000) } },
      },
      /userIdentity\.arn/,
    ],
  ])('refuses %s with a message naming the field', (_name, event, message) => {
    expect(() => parseKeyActivityEvent(event)).toThrow(InvalidInputError);
    expect(() => parseKeyActivityEvent(event)).toThrow(message);
  });

  it('ignores key references that are not key ids or key ARNs', () => {
    const event = sample('cloudtrail-disable-key.json');
    event.detail.requestParameters.keyId = '../../etc/passwd';
    event.detail.resources = [];
    event.detail.responseElements = null;
    expect(parseKeyActivityEvent(event).keyRefs).toEqual([]);
  });
});
