import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseKeyActivityEvent, WATCHED_CALLS } from '../../../src/adapters/schemas/key-activity-event';
import { InvalidInputError } from '../../../src/domain/errors';

const sample = (file: string) => JSON.parse(readFileSync(join('events', file), 'utf8'));
const KEY = '1234abcd-12ab-34cd-56ef-1234567890ab';
const OTHER_KEY = '0000aaaa-1111-4222-8333-444455556666';

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

  const disableKey = () => sample('cloudtrail-disable-key.json');

  /** Sets the value at a dotted path (`detail.resources.0.ARN`) of a parsed sample. */
  const setAt = (event: Record<string, unknown>, path: string, value: string) => {
    const names = path.split('.');
    const parent = names
      .slice(0, -1)
      .reduce<Record<string, unknown>>((node, name) => node[name] as Record<string, unknown>, event);
    parent[names[names.length - 1] as string] = value;
  };

  it.each([
    ['detail.requestParameters.keyId', '../../etc/passwd'],
    ['detail.requestParameters.keyId', 'alias/app/key'],
    ['detail.requestParameters.keyId', '1234abcd-12ab-34cd-56ef-1234567890aß'],
    ['detail.requestParameters.targetKeyId', ''],
    ['detail.requestParameters.aliasName', 'alias/app/ke\u200dy'],
    ['detail.responseElements.keyId', 'key/1234abcd-12ab-34cd-56ef-1234567890ab'],
    ['detail.resources.0.ARN', 'arn:aws:s3:::bucket'],
  ])('refuses a successful call whose %s is %j, naming the field', (field, value) => {
    const event = disableKey();
    setAt(event, field, value);

    expect(() => parseKeyActivityEvent(event)).toThrow(InvalidInputError);
    expect(() => parseKeyActivityEvent(event)).toThrow(`${field} must be`);
  });

  it('refuses a successful call that names no key and no alias: nothing in it can be checked', () => {
    const event = disableKey();
    event.detail.requestParameters = null;
    event.detail.responseElements = null;
    event.detail.resources = [];

    expect(() => parseKeyActivityEvent(event)).toThrow(
      'Not a watched KMS event: detail.requestParameters names no key and no alias',
    );
  });

  it('accepts a failed call whatever it names: KMS refused it, and it is only logged', () => {
    const event = sample('cloudtrail-rotate-key-on-demand-failed.json');
    event.detail.requestParameters.keyId = 'my key';
    event.detail.resources = [];

    expect(parseKeyActivityEvent(event)).toMatchObject({ errorCode: 'LimitExceededException', keyRefs: [] });
  });

  it('keeps every ARN with its field, for the account, Region and partition check', () => {
    expect(parseKeyActivityEvent(sample('cloudtrail-update-alias.json')).arns).toEqual([
      { field: 'detail.responseElements.keyId', arn: `arn:aws:kms:us-east-1:123456789012:key/${OTHER_KEY}` },
      { field: 'detail.resources.0.ARN', arn: 'arn:aws:kms:us-east-1:123456789012:alias/app/secure-key' },
      { field: 'detail.resources.1.ARN', arn: `arn:aws:kms:us-east-1:123456789012:key/${OTHER_KEY}` },
    ]);
  });

  it('does not take invokedBy for the principal', () => {
    const event = disableKey();
    event.detail.userIdentity = {
      type: 'AWSService',
      invokedBy: 'arn:aws:iam::123456789012:role/kms-rotation-dev-rotate',
    };

    expect(parseKeyActivityEvent(event).actor).toMatchObject({
      type: 'AWSService',
      arn: undefined,
      invokedBy: 'arn:aws:iam::123456789012:role/kms-rotation-dev-rotate',
    });
  });

  it.each([
    ['another key', [`arn:aws:kms:us-east-1:123456789012:key/${OTHER_KEY}`]],
    ['another account', [`arn:aws:kms:us-east-1:999988887777:key/${KEY}`]],
    ['another Region', [`arn:aws:kms:eu-west-1:123456789012:key/${KEY}`]],
    [
      'a second resource',
      [`arn:aws:kms:us-east-1:123456789012:key/${KEY}`, `arn:aws:kms:us-east-1:123456789012:key/${OTHER_KEY}`],
    ],
    ['no resource', []],
  ])('refuses a KMS service event whose resources name %s than its detail', (_name, resources) => {
    for (const file of ['kms-cmk-deletion.json', 'kms-imported-key-material-expiration.json']) {
      const event = { ...sample(file), resources };

      expect(() => parseKeyActivityEvent(event)).toThrow(InvalidInputError);
      expect(() => parseKeyActivityEvent(event)).toThrow(
        resources.length === 1
          ? "resources.0 must be the ARN of detail.key-id in the event's account and Region (123456789012, us-east-1)"
          : "resources must hold exactly one ARN: the ARN of detail.key-id in the event's account and Region (123456789012, us-east-1)",
      );
    }
  });
});
