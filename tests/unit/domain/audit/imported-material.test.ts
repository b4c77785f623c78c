import { describe, expect, it } from 'vitest';
import {
  currentMaterialOf,
  importedMaterialExpiring,
  importedMaterialExpiry,
} from '../../../../src/domain/imported-material';
import type { KeyDescription } from '../../../../src/domain/model';

const NOW = new Date('2026-11-22T00:00:00Z');
const DAY = 86_400_000;
const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = `arn:aws:kms:us-east-1:111122223333:key/${KEY_ID}`;
const WHERE = { partition: 'aws', account: '111122223333', region: 'us-east-1' };
const MATERIAL = 'a'.repeat(64);

const imported = (validTo: Date | undefined, overrides: Partial<KeyDescription> = {}): KeyDescription => ({
  keyId: KEY_ID,
  arn: ARN,
  keyState: 'Enabled',
  origin: 'EXTERNAL',
  expirationModel: 'KEY_MATERIAL_EXPIRES',
  currentKeyMaterialId: MATERIAL,
  ...(validTo ? { validTo } : {}),
  ...overrides,
});

const inDays = (days: number) => new Date(NOW.getTime() + days * DAY);

describe('Rule: imported key material expiring (importExpiryWarningDays, CRITICAL within 7 days)', () => {
  it.each([
    { case: 'more than 30 days away', validTo: new Date(NOW.getTime() + 30 * DAY + 1), expected: undefined },
    {
      case: 'exactly 30 days away',
      validTo: inDays(30),
      expected: { validTo: inDays(30), daysLeft: 30, expired: false, severity: 'WARNING' },
    },
    {
      case: '7 days and a millisecond away',
      validTo: new Date(NOW.getTime() + 7 * DAY + 1),
      expected: { validTo: new Date(NOW.getTime() + 7 * DAY + 1), daysLeft: 7, expired: false, severity: 'WARNING' },
    },
    {
      case: 'exactly 7 days away',
      validTo: inDays(7),
      expected: { validTo: inDays(7), daysLeft: 7, expired: false, severity: 'CRITICAL' },
    },
    {
      case: 'half a day away',
      validTo: new Date(NOW.getTime() + DAY / 2),
      expected: { validTo: new Date(NOW.getTime() + DAY / 2), daysLeft: 0, expired: false, severity: 'CRITICAL' },
    },
    {
      case: 'expired (ValidTo passed)',
      validTo: inDays(-2),
      expected: { validTo: inDays(-2), daysLeft: 0, expired: true, severity: 'CRITICAL' },
    },
  ])('$case', ({ validTo, expected }) => {
    expect(importedMaterialExpiry(imported(validTo), 30, NOW)).toEqual(expected);
  });

  it('follows the warning window it is given (60 days: 45 days away is a WARNING)', () => {
    expect(importedMaterialExpiry(imported(inDays(45)), 60, NOW)?.severity).toBe('WARNING');
    expect(importedMaterialExpiry(imported(inDays(45)), 30, NOW)).toBeUndefined();
  });

  it.each([
    {
      case: 'material that does not expire',
      key: imported(undefined, { expirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }),
    },
    { case: 'no ValidTo reported', key: imported(undefined) },
    { case: 'KMS material (AWS_KMS), even with a ValidTo', key: imported(inDays(1), { origin: 'AWS_KMS' }) },
    { case: 'no expiration model reported', key: imported(inDays(1), { expirationModel: undefined }) },
  ])('says nothing of $case', ({ key }) => {
    expect(importedMaterialExpiry(key, 30, NOW)).toBeUndefined();
  });

  it('is notified as ImportedMaterialExpiring, WARNING, with the contract fields and what to do', () => {
    const key = imported(inDays(20));
    const expiry = importedMaterialExpiry(key, 30, NOW);
    expect(expiry).toBeDefined();
    const notification = importedMaterialExpiring({
      key,
      aliases: ['alias/app/imported'],
      expiry: expiry as NonNullable<typeof expiry>,
      warningDays: 30,
      where: WHERE,
      at: NOW,
      auditId: 'audit-1',
    });
    expect(notification).toEqual({
      type: 'ImportedMaterialExpiring',
      severity: 'WARNING',
      keyId: KEY_ID,
      keyArn: ARN,
      aliases: ['alias/app/imported'],
      account: '111122223333',
      region: 'us-east-1',
      occurredAt: NOW.toISOString(),
      summary: `imported key material of ${KEY_ID} expires at 2026-12-12T00:00:00.000Z, in 20 days: import it again with a later ValidTo, or import new material and rotate on demand`,
      details: {
        auditId: 'audit-1',
        validTo: '2026-12-12T00:00:00.000Z',
        daysLeft: 20,
        expired: false,
        expirationModel: 'KEY_MATERIAL_EXPIRES',
        currentKeyMaterialId: MATERIAL,
        keyState: 'Enabled',
        warningDays: 30,
        criticalWithinDays: 7,
      },
    });
  });

  it('is notified CRITICAL once expired, saying the key is unusable', () => {
    const key = imported(inDays(-1));
    const expiry = importedMaterialExpiry(key, 30, NOW) as NonNullable<ReturnType<typeof importedMaterialExpiry>>;
    const notification = importedMaterialExpiring({
      key,
      aliases: [],
      expiry,
      warningDays: 30,
      where: WHERE,
      at: NOW,
      auditId: 'audit-1',
    });
    expect(notification).toEqual({
      type: 'ImportedMaterialExpiring',
      severity: 'CRITICAL',
      keyId: KEY_ID,
      keyArn: ARN,
      aliases: [],
      account: '111122223333',
      region: 'us-east-1',
      occurredAt: NOW.toISOString(),
      summary: `imported key material of ${KEY_ID} expired at 2026-11-21T00:00:00.000Z: the key is unusable until the same material is imported again`,
      details: {
        auditId: 'audit-1',
        validTo: '2026-11-21T00:00:00.000Z',
        daysLeft: 0,
        expired: true,
        expirationModel: 'KEY_MATERIAL_EXPIRES',
        currentKeyMaterialId: MATERIAL,
        keyState: 'Enabled',
        warningDays: 30,
        criticalWithinDays: 7,
      },
    });
  });
});

describe('currentMaterialOf: the current material rotate reports', () => {
  const rotated = new Date('2026-11-01T00:00:00Z');
  const validTo = new Date('2027-06-01T00:00:00Z');

  it('is the entry ListKeyRotations says is CURRENT, whatever DescribeKey names', () => {
    expect(
      currentMaterialOf(
        [
          { keyMaterialId: 'old', keyMaterialState: 'NON_CURRENT', importState: 'IMPORTED' },
          {
            keyMaterialId: 'new',
            keyMaterialState: 'CURRENT',
            importState: 'IMPORTED',
            expirationModel: 'KEY_MATERIAL_EXPIRES',
            validTo,
            rotationDate: rotated,
            rotationType: 'ON_DEMAND',
          },
        ],
        'old',
      ),
    ).toEqual({
      keyMaterialId: 'new',
      keyMaterialState: 'CURRENT',
      importState: 'IMPORTED',
      expirationModel: 'KEY_MATERIAL_EXPIRES',
      validTo: validTo.toISOString(),
    });
  });

  it("is the entry DescribeKey's CurrentKeyMaterialId names when no entry has a state, its id alone when none matches, nothing when neither says", () => {
    const entries = [{ keyMaterialId: 'a' }, { keyMaterialId: 'b', importState: 'IMPORTED' }];
    expect(currentMaterialOf(entries, 'b')).toEqual({
      keyMaterialId: 'b',
      keyMaterialState: undefined,
      importState: 'IMPORTED',
    });
    expect(currentMaterialOf(entries, 'c')).toEqual({ keyMaterialId: 'c' });
    expect(currentMaterialOf(entries, undefined)).toBeUndefined();
  });
});
