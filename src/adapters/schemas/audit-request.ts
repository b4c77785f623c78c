import { z } from 'zod';
import type { AuditRequest } from '../../domain/audit-fleet';
import { InvalidInputError } from '../../domain/errors';
import { describeIssues } from './issues';
import { KEY_ID_PATTERN } from './rotation-event';

const Count = z.number().int().min(0);
const Counts = z.record(z.string().max(64), Count);

/** The checkpoint one slice hands to the next; only the service writes it, still validated. */
const Checkpoint = z.strictObject({
  auditId: z.string().min(1).max(64),
  startedAt: z.iso.datetime(),
  marker: z.string().min(1).max(1024),
  slice: z.number().int().min(1).max(10_000),
  totals: z.strictObject({
    keysAudited: Count,
    byClass: Counts,
    findingsByRule: Counts,
    bySeverity: Counts,
    nonCompliantKeys: Count,
    nonCompliantByRule: Counts,
    remediated: Count,
    declaredSeen: z.array(z.string().regex(KEY_ID_PATTERN)).max(1000),
  }),
});

/**
 * `audit` payload (all optional): `{ remediate?, keyIds? }` by hand, `{ scheduled: true }`
 * from the daily schedule, `{ remediate, checkpoint }` from the previous slice.
 */
const AuditPayload = z.strictObject({
  remediate: z.boolean().optional(),
  keyIds: z.array(z.string().regex(KEY_ID_PATTERN, 'must be a KMS key id')).min(1).max(1000).optional(),
  scheduled: z.literal(true).optional(),
  checkpoint: Checkpoint.optional(),
});

export const parseAuditRequest = (payload: unknown, remediateOnSchedule: boolean): AuditRequest => {
  const parsed = AuditPayload.safeParse(payload ?? {});
  if (!parsed.success) {
    throw new InvalidInputError(
      `Invalid audit request: ${describeIssues(parsed.error.issues)}. Expected {"remediate"?: true, "keyIds"?: ["<key id>", ...]}`,
    );
  }
  const { remediate, keyIds, scheduled, checkpoint } = parsed.data;
  return {
    remediate: remediate ?? (scheduled === true && remediateOnSchedule),
    keyIds,
    checkpoint: checkpoint as AuditRequest['checkpoint'],
  };
};
