import { type AuditFinding, type AuditRuleId, CONTROLS } from './audit-rules';
import { TAG_PREFIX } from './declared-state';
import type { Tags } from './model';

/**
 * Exceptions that expire (docs/audit-exceptions.md): a key may be excepted from one audit rule
 * by a tag `kms-rotation:exception:<rule>` = `until=YYYY-MM-DD owner=<who> [ticket=<id>] [reason=<text>]`.
 * Fields are separated by spaces: AWS tag values do not allow `;` or `,`.
 */
export const EXCEPTION_TAG_PREFIX = `${TAG_PREFIX}exception:`;

/** The rule a finding is reported under when an exception tag cannot be understood. */
export const EXCEPTION_MALFORMED: AuditRuleId = 'exception-malformed';

/**
 * The rules a key may be excepted from: every rule judged from the key's own reads. Not
 * `key-unreadable` (the audit could not judge the key at all) nor `exception-malformed` itself.
 */
export const EXCEPTABLE_RULES: readonly AuditRuleId[] = (Object.keys(CONTROLS) as AuditRuleId[]).filter(
  (rule) => rule !== 'key-unreadable' && rule !== EXCEPTION_MALFORMED,
);

/** Longest field values, well inside AWS's 256-character tag value. */
export const EXCEPTION_FIELD_MAX = { owner: 64, ticket: 64, reason: 128 } as const;

/** An exception may end at most this many days after the audit that reads it. */
export const EXCEPTION_MAX_DAYS_AHEAD = 366;

/** Letters, digits and the punctuation AWS allows in tag values, less the grammar's own `=` and space. */
const FIELD_VALUE = /^[\p{L}\p{N}_.:/+@-]+$/u;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAY_MS = 86_400_000;

export interface AuditException {
  rule: AuditRuleId;
  /** Last day (UTC, inclusive) the exception applies, `YYYY-MM-DD`. */
  until: string;
  owner: string;
  ticket?: string;
  reason?: string;
}

export type ParsedException = { ok: true; exception: AuditException } | { ok: false; problem: string };

export interface ExceptionOptions {
  /** Rules a key may be excepted from. */
  exceptableRules: readonly AuditRuleId[];
  /** The audit's clock: an end date is judged against it. */
  now: Date;
}

/** A calendar date `YYYY-MM-DD` as midnight UTC, or undefined if it is not one (2027-02-30 is not). */
const calendarDate = (text: string): Date | undefined => {
  const match = DATE.exec(text);
  if (!match) return undefined;
  const [, year, month, day] = match.map(Number) as [number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day
    ? date
    : undefined;
};

const startOfDay = (now: Date): number => Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());

/**
 * One exception tag, key and value. Never guesses: a tag it cannot fully understand is a
 * problem, reported as such, and suppresses nothing.
 */
export const parseException = (tagKey: string, tagValue: string, options: ExceptionOptions): ParsedException => {
  const rule = tagKey.slice(EXCEPTION_TAG_PREFIX.length);
  if (!options.exceptableRules.includes(rule as AuditRuleId)) {
    return { ok: false, problem: `"${rule.slice(0, 64)}" is not an audit rule a key may be excepted from` };
  }
  const fields = new Map<string, string>();
  for (const field of tagValue.trim().split(/\s+/).filter(Boolean)) {
    const separator = field.indexOf('=');
    const name = separator > 0 ? field.slice(0, separator) : '';
    const value = field.slice(separator + 1);
    if (!['until', 'owner', 'ticket', 'reason'].includes(name)) {
      return { ok: false, problem: `"${field.slice(0, 32)}" is not one of until=, owner=, ticket=, reason=` };
    }
    if (fields.has(name)) return { ok: false, problem: `${name}= is given twice` };
    if (!FIELD_VALUE.test(value)) {
      return { ok: false, problem: `${name}= is empty or has characters other than letters, digits and _.:/+@-` };
    }
    fields.set(name, value);
  }
  for (const [name, max] of Object.entries(EXCEPTION_FIELD_MAX)) {
    if ((fields.get(name)?.length ?? 0) > max)
      return { ok: false, problem: `${name}= is longer than ${max} characters` };
  }
  const until = fields.get('until');
  const owner = fields.get('owner');
  if (until === undefined) return { ok: false, problem: 'until= (the last day, YYYY-MM-DD) is missing' };
  if (owner === undefined) return { ok: false, problem: 'owner= is missing' };
  const end = calendarDate(until);
  if (!end) return { ok: false, problem: `until=${until.slice(0, 16)} is not a date YYYY-MM-DD` };
  const latest = startOfDay(options.now) + EXCEPTION_MAX_DAYS_AHEAD * DAY_MS;
  if (end.getTime() > latest) {
    return {
      ok: false,
      problem: `until=${until} is more than ${EXCEPTION_MAX_DAYS_AHEAD} days after the audit (latest ${new Date(latest).toISOString().slice(0, 10)})`,
    };
  }
  const ticket = fields.get('ticket');
  const reason = fields.get('reason');
  return {
    ok: true,
    exception: {
      rule: rule as AuditRuleId,
      until,
      owner,
      ...(ticket !== undefined ? { ticket } : {}),
      ...(reason !== undefined ? { reason } : {}),
    },
  };
};

/** An exception applies through the whole of its `until` day (UTC), and has expired from the next. */
export const hasExpired = (exception: AuditException, now: Date): boolean =>
  startOfDay(now) > (calendarDate(exception.until) as Date).getTime();

export interface KeyExceptions {
  /** In force: findings of these rules are suppressed. */
  active: AuditException[];
  /** Past their date: findings of these rules are open again, naming the exception. */
  expired: AuditException[];
  /** Tags that could not be understood, as findings of their own. */
  malformed: AuditFinding[];
}

/** Every exception tag of one key, sorted into those in force, those expired, and those malformed. */
export const readExceptions = (
  target: { keyId: string; aliases: string[]; tags: Tags },
  options: ExceptionOptions,
): KeyExceptions => {
  const result: KeyExceptions = { active: [], expired: [], malformed: [] };
  for (const [tagKey, tagValue] of Object.entries(target.tags)) {
    if (!tagKey.startsWith(EXCEPTION_TAG_PREFIX)) continue;
    const parsed = parseException(tagKey, tagValue, options);
    if (!parsed.ok) result.malformed.push(exceptionMalformed(target, tagKey, tagValue, parsed.problem));
    else if (hasExpired(parsed.exception, options.now)) result.expired.push(parsed.exception);
    else result.active.push(parsed.exception);
  }
  return result;
};

/** A malformed exception tag: WARNING, since someone meant to except a finding and it is open after all. */
export const exceptionMalformed = (
  target: { keyId: string; aliases: string[] },
  tagKey: string,
  tagValue: string,
  problem: string,
): AuditFinding => ({
  rule: EXCEPTION_MALFORMED,
  severity: 'WARNING',
  keyId: target.keyId,
  aliases: target.aliases,
  summary: `exception tag ${tagKey.slice(0, 128)} on ${target.keyId} is malformed (${problem}): it suppresses nothing`,
  evidence: { tagKey: tagKey.slice(0, 128), tagValue: tagValue.slice(0, 256), problem },
});

export type SuppressedFinding = AuditFinding & { exception: AuditException };

/**
 * Splits one key's findings by its exceptions: those of an excepted rule are suppressed (with
 * the exception); those of a rule whose exception expired stay open, naming it in their
 * evidence; malformed exception tags are added as open findings. Nothing is dropped.
 */
export const applyExceptions = (
  found: readonly AuditFinding[],
  exceptions: KeyExceptions,
): { open: AuditFinding[]; suppressed: SuppressedFinding[] } => {
  const open: AuditFinding[] = [];
  const suppressed: SuppressedFinding[] = [];
  for (const item of found) {
    const active = exceptions.active.find((exception) => exception.rule === item.rule);
    if (active) {
      suppressed.push({ ...item, exception: active });
      continue;
    }
    const expired = exceptions.expired.find((exception) => exception.rule === item.rule);
    open.push(expired ? { ...item, evidence: { ...item.evidence, expiredException: expired } } : item);
  }
  return { open: [...open, ...exceptions.malformed], suppressed };
};
