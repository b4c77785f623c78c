import { describe, expect, it } from 'vitest';
import {
  applyExceptions,
  EXCEPTABLE_RULES,
  EXCEPTION_MAX_DAYS_AHEAD,
  hasExpired,
  parseException,
  readExceptions,
} from '../../../../src/domain/audit-exceptions';
import { type AuditFinding, CONTROLS } from '../../../../src/domain/audit-rules';

const NOW = new Date('2026-11-22T10:00:00Z');
const OPTIONS = { exceptableRules: EXCEPTABLE_RULES, now: NOW };
const TAG = 'kms-rotation:exception:rotation-enabled';

const finding = (rule: AuditFinding['rule']): AuditFinding => ({
  rule,
  severity: 'WARNING',
  keyId: 'k1',
  aliases: ['alias/app'],
  summary: `${rule} on k1`,
  evidence: { seen: true },
});

describe('Function: parseException', () => {
  it('reads every field of a well-formed exception, separated by spaces', () => {
    // Act
    const parsed = parseException(
      TAG,
      'until=2027-03-01 owner=team-x ticket=SEC-123 reason=legacy_client/v1+batch',
      OPTIONS,
    );

    // Assess
    expect(parsed).toEqual({
      ok: true,
      exception: {
        rule: 'rotation-enabled',
        until: '2027-03-01',
        owner: 'team-x',
        ticket: 'SEC-123',
        reason: 'legacy_client/v1+batch',
      },
    });
  });

  it('needs only until and owner, in any order, with any spacing', () => {
    expect(parseException(TAG, '  owner=alice@example.com \t until=2027-03-01 ', OPTIONS)).toEqual({
      ok: true,
      exception: { rule: 'rotation-enabled', until: '2027-03-01', owner: 'alice@example.com' },
    });
  });

  it('accepts an end date exactly the maximum number of days after the audit', () => {
    // Prepare: 2026-11-22 + 366 days
    const latest = '2027-11-23';

    // Act
    const parsed = parseException(TAG, `until=${latest} owner=team-x`, OPTIONS);

    // Assess
    expect(EXCEPTION_MAX_DAYS_AHEAD).toBe(366);
    expect(parsed.ok).toBe(true);
  });

  it.each([
    ['an empty value', '', 'until= (the last day, YYYY-MM-DD) is missing'],
    ['no until', 'owner=team-x ticket=SEC-1', 'until= (the last day, YYYY-MM-DD) is missing'],
    ['no owner', 'until=2027-03-01', 'owner= is missing'],
    ['the issue draft separator ;', 'until=2027-03-01;owner=team-x', 'until= is empty or has characters'],
    ['a field without =', 'until=2027-03-01 owner=team-x SEC-123', '"SEC-123" is not one of'],
    ['an unknown field', 'until=2027-03-01 owner=team-x expires=2027-01-01', '"expires=2027-01-01" is not one of'],
    ['a field given twice', 'until=2027-03-01 owner=a owner=b', 'owner= is given twice'],
    ['an empty owner', 'until=2027-03-01 owner=', 'owner= is empty'],
    ['an = inside a value', 'until=2027-03-01 owner=a=b', 'owner= is empty or has characters'],
    ['a comma', 'until=2027-03-01 owner=a,b', 'owner= is empty or has characters'],
    ['a date in another format', 'until=01/03/2027 owner=team-x', 'until=01/03/2027 is not a date YYYY-MM-DD'],
    ['a date that does not exist', 'until=2027-02-30 owner=team-x', 'until=2027-02-30 is not a date YYYY-MM-DD'],
    ['a date with a time', 'until=2027-03-01T00:00:00Z owner=team-x', 'is not a date YYYY-MM-DD'],
    [
      'an end date more than a year away',
      'until=2027-11-24 owner=team-x',
      'until=2027-11-24 is more than 366 days after the audit (latest 2027-11-23)',
    ],
    ['an end date absurdly far away', 'until=9999-12-31 owner=team-x', 'more than 366 days after the audit'],
    ['an owner of 65 characters', `until=2027-03-01 owner=${'o'.repeat(65)}`, 'owner= is longer than 64 characters'],
    ['a ticket of 65 characters', `until=2027-03-01 owner=a ticket=${'t'.repeat(65)}`, 'ticket= is longer than 64'],
    ['a reason of 129 characters', `until=2027-03-01 owner=a reason=${'r'.repeat(129)}`, 'reason= is longer than 128'],
  ])('refuses %s, saying why', (_label, value, problem) => {
    // Act
    const parsed = parseException(TAG, value, OPTIONS);

    // Assess
    expect(parsed).toEqual({ ok: false, problem: expect.stringContaining(problem) });
  });

  it.each([
    ['an unknown rule', 'kms-rotation:exception:rotation-enable'],
    ['a drift rule the audit does not judge', 'kms-rotation:exception:key-deleted'],
    ['no rule', 'kms-rotation:exception:'],
    ['the malformed-exception rule itself', 'kms-rotation:exception:exception-malformed'],
    ['key-unreadable, which the audit could not judge', 'kms-rotation:exception:key-unreadable'],
  ])('refuses %s in the tag key', (_label, tagKey) => {
    expect(parseException(tagKey, 'until=2027-03-01 owner=team-x', OPTIONS)).toEqual({
      ok: false,
      problem: expect.stringContaining('is not an audit rule a key may be excepted from'),
    });
  });
});

describe('Constant: EXCEPTABLE_RULES', () => {
  it('is every audit rule but key-unreadable and exception-malformed', () => {
    expect([...EXCEPTABLE_RULES].sort()).toEqual(
      Object.keys(CONTROLS)
        .filter((rule) => rule !== 'key-unreadable' && rule !== 'exception-malformed')
        .sort(),
    );
    expect(EXCEPTABLE_RULES).toHaveLength(8);
  });
});

describe('Function: hasExpired', () => {
  const exception = { rule: 'rotation-enabled' as const, until: '2026-11-22', owner: 'team-x' };

  it('applies through the whole of its until day (UTC)', () => {
    expect(hasExpired(exception, new Date('2026-11-22T23:59:59.999Z'))).toBe(false);
  });

  it('has expired from the next day', () => {
    expect(hasExpired(exception, new Date('2026-11-23T00:00:00Z'))).toBe(true);
  });
});

describe('Function: readExceptions', () => {
  it('sorts a key exception tags into in force, expired and malformed, ignoring every other tag', () => {
    // Act
    const exceptions = readExceptions(
      {
        keyId: 'k1',
        aliases: ['alias/app'],
        tags: {
          'kms-rotation:managed': 'true',
          'kms-rotation:exception:rotation-enabled': 'until=2026-12-31 owner=team-x ticket=SEC-1',
          'kms-rotation:exception:material-age': 'until=2026-11-21 owner=team-y',
          'kms-rotation:exception:policy-wildcard-principal': 'until=2027-03-01',
          exception: 'until=2020-01-01 owner=nobody',
        },
      },
      OPTIONS,
    );

    // Assess
    expect(exceptions).toEqual({
      active: [{ rule: 'rotation-enabled', until: '2026-12-31', owner: 'team-x', ticket: 'SEC-1' }],
      expired: [{ rule: 'material-age', until: '2026-11-21', owner: 'team-y' }],
      malformed: [
        {
          rule: 'exception-malformed',
          severity: 'WARNING',
          keyId: 'k1',
          aliases: ['alias/app'],
          summary:
            'exception tag kms-rotation:exception:policy-wildcard-principal on k1 is malformed (owner= is missing): it suppresses nothing',
          evidence: {
            tagKey: 'kms-rotation:exception:policy-wildcard-principal',
            tagValue: 'until=2027-03-01',
            problem: 'owner= is missing',
          },
        },
      ],
    });
  });

  it('finds nothing on a key without exception tags', () => {
    expect(readExceptions({ keyId: 'k1', aliases: [], tags: { team: 'x' } }, OPTIONS)).toEqual({
      active: [],
      expired: [],
      malformed: [],
    });
  });
});

describe('Function: applyExceptions', () => {
  it('suppresses the findings of a rule in force, with its exception, and leaves the others open', () => {
    // Prepare
    const active = { rule: 'rotation-enabled' as const, until: '2026-12-31', owner: 'team-x', ticket: 'SEC-1' };

    // Act
    const result = applyExceptions([finding('rotation-enabled'), finding('material-age')], {
      active: [active],
      expired: [],
      malformed: [],
    });

    // Assess
    expect(result).toEqual({
      open: [finding('material-age')],
      suppressed: [{ ...finding('rotation-enabled'), exception: active }],
    });
  });

  it('reopens the finding of an expired exception, naming it in the evidence', () => {
    // Prepare
    const expired = { rule: 'material-age' as const, until: '2026-11-21', owner: 'team-y' };

    // Act
    const result = applyExceptions([finding('material-age')], { active: [], expired: [expired], malformed: [] });

    // Assess
    expect(result).toEqual({
      open: [{ ...finding('material-age'), evidence: { seen: true, expiredException: expired } }],
      suppressed: [],
    });
  });

  it('adds a malformed exception as an open finding and suppresses nothing with it', () => {
    // Prepare
    const malformed = { ...finding('exception-malformed'), summary: 'malformed' };

    // Act
    const result = applyExceptions([finding('rotation-enabled')], { active: [], expired: [], malformed: [malformed] });

    // Assess
    expect(result).toEqual({ open: [finding('rotation-enabled'), malformed], suppressed: [] });
  });
});
