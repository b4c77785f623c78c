/**
 * zod's tree-shakable "mini" build with English messages: a schema costs a few KiB of bundle
 * and a few milliseconds of cold start, where the full build costs ~450 KiB and ~20 ms.
 * Import `* as z from 'zod/mini'` directly where schemas are written (a re-exported namespace
 * defeats tree-shaking); import this module once for the messages and the helpers.
 */
import * as z from 'zod/mini';
import { en } from 'zod/v4/locales';
import { excerpt } from '../../domain/errors';

z.config(en());

/** A string of at most `max` characters. */
export const text = (max: number) => z.string().check(z.maxLength(max));

/** A string matching `pattern`, with the message a person reads when it does not. */
export const matching = (pattern: RegExp, message: string) => z.string().check(z.regex(pattern, message));

/** Field names come from input: one is quoted with at most this many characters. */
const MAX_NAME_CHARS = 64;
const MAX_NAMES_LISTED = 5;

const pathOf = (issue: z.core.$ZodIssue): string =>
  issue.path.map((segment) => excerpt(String(segment), MAX_NAME_CHARS)).join('.') || '(payload)';

/** zod lists unknown keys in full; a hostile payload's keys may be megabytes long, or thousands. */
const messageOf = (issue: z.core.$ZodIssue): string => {
  if (issue.code !== 'unrecognized_keys') return excerpt(issue.message, 300);
  const names = issue.keys.slice(0, MAX_NAMES_LISTED).map((key) => JSON.stringify(excerpt(key, MAX_NAME_CHARS)));
  const more = issue.keys.length > MAX_NAMES_LISTED ? ` and ${issue.keys.length - MAX_NAMES_LISTED} more` : '';
  return `Unrecognized key${issue.keys.length > 1 ? 's' : ''}: ${names.join(', ')}${more}`;
};

/** The first few schema issues, each as "<path> <message>", bounded, for an error a person reads. */
export const describeIssues = (issues: readonly z.core.$ZodIssue[]): string =>
  issues
    .slice(0, 5)
    .map((issue) => `${pathOf(issue)} ${messageOf(issue)}`)
    .join('; ');

/**
 * A manual invoke with no payload: Lambda's console and `aws lambda invoke` send nothing or
 * `null`, and `serverless invoke` / `serverless invoke local` without `--data` send an empty string.
 * Each means "no options".
 */
export const noOptions = (payload: unknown): payload is undefined | null | '' =>
  payload === undefined || payload === null || payload === '';
