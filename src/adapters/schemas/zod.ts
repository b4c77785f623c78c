/**
 * zod's tree-shakable "mini" build with English messages: a schema costs a few KiB of bundle
 * and a few milliseconds of cold start, where the full build costs ~450 KiB and ~20 ms.
 * Import `* as z from 'zod/mini'` directly where schemas are written (a re-exported namespace
 * defeats tree-shaking); import this module once for the messages and the helpers.
 */
import * as z from 'zod/mini';
import { en } from 'zod/v4/locales';

z.config(en());

/** A string of at most `max` characters. */
export const text = (max: number) => z.string().check(z.maxLength(max));

/** A string matching `pattern`, with the message a person reads when it does not. */
export const matching = (pattern: RegExp, message: string) => z.string().check(z.regex(pattern, message));

/** The first few schema issues, each as "<path> <message>", for an error a person reads. */
export const describeIssues = (issues: readonly z.core.$ZodIssue[]): string =>
  issues
    .slice(0, 5)
    .map((issue) => `${issue.path.map(String).join('.') || '(payload)'} ${issue.message}`)
    .join('; ');
