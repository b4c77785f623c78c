import { describe, expect, it } from 'vitest';
import { ROTATION_PERIOD_RANGE, readDeclaredState, TAG_PREFIX, TAGS } from '../../../src/domain/declared-state';

describe('Function: readDeclaredState', () => {
  it('reads a managed key with its aliases and period when every tag is well formed', () => {
    // Act
    const state = readDeclaredState({
      'kms-rotation:managed': 'true',
      'kms-rotation:aliases': 'alias/app/secure-key alias/app/reports',
      'kms-rotation:period-days': '365',
      'team:owner': 'payments',
    });

    // Assess
    expect(state).toEqual({
      managed: true,
      aliases: ['alias/app/secure-key', 'alias/app/reports'],
      periodDays: 365,
      problems: [],
    });
  });

  it('returns an unmanaged key with nothing declared and no problem when the key has no tags', () => {
    expect(readDeclaredState({})).toEqual({ managed: false, aliases: [], periodDays: undefined, problems: [] });
  });

  it.each(['TRUE', 'True', 'yes', '1', '', 'true '])('returns managed false when the managed tag is "%s"', (value) => {
    expect(readDeclaredState({ 'kms-rotation:managed': value }).managed).toBe(false);
  });

  it('splits aliases on any whitespace and drops duplicates', () => {
    const state = readDeclaredState({ 'kms-rotation:aliases': '  alias/a\talias/b\nalias/a   alias/c_1-2/x ' });
    expect(state.aliases).toEqual(['alias/a', 'alias/b', 'alias/c_1-2/x']);
    expect(state.problems).toEqual([]);
  });

  it.each([
    ['an AWS managed alias', 'alias/aws/s3'],
    ['a name without the alias/ prefix', 'app/secure-key'],
    ['a name with a forbidden character', 'alias/app:key'],
    ['a bare prefix', 'alias/'],
  ])('reports %s as a problem and does not declare it', (_what, name) => {
    // Act
    const state = readDeclaredState({ 'kms-rotation:aliases': `alias/app/ok ${name}` });

    // Assess
    expect(state.aliases).toEqual(['alias/app/ok']);
    expect(state.problems).toEqual([`tag kms-rotation:aliases names "${name}", which is not a customer alias name`]);
  });

  it('quotes at most 64 characters of a bad alias name', () => {
    const state = readDeclaredState({ 'kms-rotation:aliases': `x${'y'.repeat(500)}` });
    expect(state.problems[0]).toContain(`"x${'y'.repeat(63)}"`);
    expect(state.problems[0]).not.toContain('y'.repeat(64));
  });

  it.each([
    ['90', 90],
    ['365', 365],
    ['2560', 2560],
    ['0365', 365],
    [' 365 ', 365],
  ])('reads period "%s" as %i days', (value, days) => {
    expect(readDeclaredState({ 'kms-rotation:period-days': value })).toMatchObject({
      periodDays: days,
      problems: [],
    });
  });

  it.each(['89', '2561', '365.5', 'abc', '', '-365', '1e3', '0x16d', '365.0'])(
    'reports period "%s" as a problem and declares no period',
    (value) => {
      const state = readDeclaredState({ 'kms-rotation:period-days': value });
      expect(state.periodDays).toBeUndefined();
      expect(state.problems).toEqual([
        `tag kms-rotation:period-days is "${value}", not a whole number of days in 90..2560`,
      ]);
    },
  );

  it('quotes at most 16 characters of a bad period', () => {
    const state = readDeclaredState({ 'kms-rotation:period-days': '9'.repeat(400) });
    expect(state.problems[0]).toContain(`"${'9'.repeat(16)}"`);
    expect(state.problems[0]).not.toContain('9'.repeat(17));
  });
});

describe('Constants: declared-state tags', () => {
  it('keeps every tag under the one prefix, and the period range of KMS', () => {
    expect(Object.values(TAGS).every((tag) => tag.startsWith(TAG_PREFIX))).toBe(true);
    expect(TAG_PREFIX).toBe('kms-rotation:');
    expect(ROTATION_PERIOD_RANGE).toEqual({ min: 90, max: 2560 });
  });
});
