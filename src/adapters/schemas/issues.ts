import type { z } from 'zod';

/** The first few schema issues, each as "<path> <message>", for an error a person reads. */
export const describeIssues = (issues: readonly z.core.$ZodIssue[]): string =>
  issues
    .slice(0, 5)
    .map((issue) => `${issue.path.map(String).join('.') || '(payload)'} ${issue.message}`)
    .join('; ');
