import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseRotationEvent } from '../../../src/adapters/schemas/rotation-event';
import { InvalidInputError } from '../../../src/domain/errors';
import type { RotationEvent } from '../../../src/domain/model';
import { ACCOUNT, CURRENT_MATERIAL, KEY_ARN, KEY_ID, PREVIOUS_MATERIAL, REGION } from '../support/key-metadata';
import { sampleEvent } from '../support/observations';

/** What each valid sample parses into. */
const PARSED: Record<string, RotationEvent> = {
  'rotation-on-demand.json': {
    eventId: '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
    time: new Date('2026-11-20T03:11:54Z'),
    account: ACCOUNT,
    region: REGION,
    keyId: KEY_ID,
    keyArn: KEY_ARN,
    rotationType: 'ON_DEMAND',
    keyOrigin: 'AWS_KMS',
    previousKeyMaterialId: PREVIOUS_MATERIAL,
    currentKeyMaterialId: CURRENT_MATERIAL,
  },
  'rotation-automatic.json': {
    eventId: '0b4a2c1e-7f0e-4c59-9d8a-2f1e3c4b5a69',
    time: new Date('2026-11-21T00:00:07Z'),
    account: ACCOUNT,
    region: REGION,
    keyId: KEY_ID,
    keyArn: KEY_ARN,
    rotationType: 'AUTOMATIC',
    keyOrigin: 'AWS_KMS',
    previousKeyMaterialId: PREVIOUS_MATERIAL,
    currentKeyMaterialId: CURRENT_MATERIAL,
  },
  'rotation-legacy-minimal.json': {
    eventId: '5e0f4b8a-9a0c-4d8e-8f3b-1c2d3e4f5a6b',
    time: new Date('2026-11-19T16:37:50Z'),
    account: ACCOUNT,
    region: REGION,
    keyId: KEY_ID,
    keyArn: KEY_ARN,
  },
  // Well formed, and consistent with itself: refusing another account is the handler's job,
  // against the account of its own function ARN (tests/unit/handlers/on-rotation.test.ts).
  'invalid-other-account.json': {
    eventId: '5e0f4b8a-9a0c-4d8e-8f3b-1c2d3e4f5a6b',
    time: new Date('2026-11-19T16:37:50Z'),
    account: '999988887777',
    region: REGION,
    keyId: KEY_ID,
    keyArn: `arn:aws:kms:${REGION}:999988887777:key/${KEY_ID}`,
  },
};

/** The field each other sample gets wrong, as a rotation event, in the words of the error. */
const REFUSED: Record<string, string> = {
  'invalid-hostile-detail.json': 'detail.key-id must be a KMS key id',
  'invalid-missing-key-id.json': 'detail.key-id',
  'invalid-resource-mismatch.json': 'resources.0 must name the same key, account and Region as the event',
  'invalid-rotate-typo.json': 'source must be "aws.kms"',
  'invalid-wrong-detail-type.json': 'detail-type must be "KMS CMK Rotation"',
  'invalid-wrong-source.json': 'source must be "aws.kms"',
};

/** Samples of the other functions: never a rotation event. */
const OTHER_FUNCTIONS = /^(cloudtrail-|kms-cmk-deletion|kms-imported-|rotate-|unwatched-)/;

const parseError = (event: unknown): unknown => {
  try {
    parseRotationEvent(event);
  } catch (error) {
    return error;
  }
  throw new Error('expected parseRotationEvent to throw');
};

describe('Function: parseRotationEvent', () => {
  it('has an expectation for every sample in events/', () => {
    const unaccounted = readdirSync('events').filter(
      (file) => !(file in PARSED) && !(file in REFUSED) && !OTHER_FUNCTIONS.test(file),
    );
    expect(unaccounted).toEqual([]);
  });

  it.each(Object.entries(PARSED))('returns the RotationEvent of %s', (file, expected) => {
    expect(parseRotationEvent(sampleEvent(file))).toEqual(expected);
  });

  it.each(Object.entries(REFUSED))('throws InvalidInputError naming the field when the event is %s', (file, field) => {
    // Act
    const error = parseError(sampleEvent(file));

    // Assess
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as Error).message).toContain('Not a valid KMS CMK Rotation event: ');
    expect((error as Error).message).toContain(field);
  });

  it.each(readdirSync('events').filter((file) => OTHER_FUNCTIONS.test(file)))(
    'throws InvalidInputError naming source or detail-type when the event is %s',
    (file) => {
      const error = parseError(sampleEvent(file));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect((error as Error).message).toMatch(/(^|; |: )(source|detail-type|version) /);
    },
  );

  it('names the rotation type too when the hostile sample also has an unknown one', () => {
    expect((parseError(sampleEvent('invalid-hostile-detail.json')) as Error).message).toContain('detail.rotation-type');
  });

  it('leaves Object.prototype alone when a detail carries __proto__', () => {
    parseError(sampleEvent('invalid-hostile-detail.json'));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('returns the RotationEvent of a multi-Region key in another partition', () => {
    // Prepare
    const mrk = `mrk-${'0123456789abcdef'.repeat(2)}`;
    const event = {
      ...sampleEvent('rotation-legacy-minimal.json'),
      region: 'cn-north-1',
      resources: [`arn:aws-cn:kms:cn-north-1:${ACCOUNT}:key/${mrk}`],
      detail: { 'key-id': mrk },
    };

    // Act
    const parsed = parseRotationEvent(event);

    // Assess
    expect(parsed).toMatchObject({ keyId: mrk, region: 'cn-north-1', keyArn: event.resources[0] });
  });

  it('tolerates detail fields it does not read', () => {
    const event = sampleEvent('rotation-on-demand.json');
    event.detail['future-field'] = { anything: true };
    expect(parseRotationEvent(event).keyId).toBe(KEY_ID);
  });

  it.each([
    ['null', null, '(payload)'],
    ['a string', 'KMS CMK Rotation', '(payload)'],
    ['an array', [], '(payload)'],
    ['an empty object', {}, 'source'],
    ['a 1 MB id', { ...sampleEvent('rotation-on-demand.json'), id: 'x'.repeat(1_000_000) }, 'id '],
    ['an empty id', { ...sampleEvent('rotation-on-demand.json'), id: '' }, 'id '],
    ['a time that is not ISO-8601', { ...sampleEvent('rotation-on-demand.json'), time: 'yesterday' }, 'time'],
    ['a short account id', { ...sampleEvent('rotation-on-demand.json'), account: '1234' }, 'account'],
    ['an invented Region', { ...sampleEvent('rotation-on-demand.json'), region: 'moon' }, 'region'],
    ['no resource', { ...sampleEvent('rotation-on-demand.json'), resources: [] }, 'resources'],
    ['two resources', { ...sampleEvent('rotation-on-demand.json'), resources: [KEY_ARN, KEY_ARN] }, 'resources'],
    [
      'a resource that is no key ARN',
      { ...sampleEvent('rotation-on-demand.json'), resources: ['arn:aws:s3:::b'] },
      'resources.0',
    ],
    [
      'an uppercase material id',
      {
        ...sampleEvent('rotation-on-demand.json'),
        detail: {
          ...sampleEvent('rotation-on-demand.json').detail,
          'current-key-material-id': CURRENT_MATERIAL.toUpperCase(),
        },
      },
      'detail.current-key-material-id',
    ],
  ])('throws InvalidInputError naming the field when the event has %s', (_what, event, field) => {
    const error = parseError(event);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as Error).message).toContain(field);
  });
});
