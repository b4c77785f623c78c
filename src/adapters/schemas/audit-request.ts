import * as z from 'zod/mini';
import type { AuditRequest } from '../../domain/audit-fleet';
import { InvalidInputError } from '../../domain/errors';
import { KEY_ID_PATTERN } from './rotation-event';
import { describeIssues, matching, noOptions, text } from './zod';

/** An AWS account id, and a Region name (as `AWS_REGION` is checked in src/config.ts). */
export const ACCOUNT_PATTERN = /^\d{12}$/;
export const REGION_PATTERN = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;

const Count = z.int().check(z.minimum(0));
const Counts = z.record(text(64), Count);

/** The checkpoint one slice hands to the next; only the service writes it, still validated. */
const Checkpoint = z.strictObject({
  auditId: z.string().check(z.minLength(1), z.maxLength(64)),
  startedAt: z.iso.datetime(),
  marker: z.string().check(z.minLength(1), z.maxLength(1024)),
  slice: z.int().check(z.minimum(1), z.maximum(10_000)),
  totals: z.strictObject({
    keysAudited: Count,
    byClass: Counts,
    findingsByRule: Counts,
    bySeverity: Counts,
    nonCompliantKeys: Count,
    nonCompliantByRule: Counts,
    remediated: Count,
    // Optional: a checkpoint written before exceptions existed has none of these.
    suppressed: z.optional(Count),
    suppressedByRule: z.optional(Counts),
    expiredExceptions: z.optional(Count),
    // Optional: a checkpoint written before reconciliation existed has none of these.
    reconciled: z.optional(Count),
    reconcileFailed: z.optional(Count),
    reconcileUnfinished: z.optional(Count),
    // Optional: per-key notifications sent (ImportedMaterialExpiring, RotationDue), by type.
    keyNotifications: z.optional(Counts),
    declaredSeen: z.array(z.string().check(z.regex(KEY_ID_PATTERN))).check(z.maxLength(1000)),
  }),
});

/**
 * `audit` payload (all optional): `{ remediate?, keyIds? }` by hand, `{ scheduled: true }`
 * from the daily schedule, `{ remediate, checkpoint }` from the previous slice.
 */
const AuditPayload = z.strictObject({
  remediate: z.optional(z.boolean()),
  keyIds: z.optional(
    z.array(matching(KEY_ID_PATTERN, 'must be a KMS key id')).check(z.minLength(1), z.maxLength(1000)),
  ),
  scheduled: z.optional(z.literal(true)),
  checkpoint: z.optional(Checkpoint),
  account: z.optional(matching(ACCOUNT_PATTERN, 'must be a 12-digit AWS account id')),
  region: z.optional(matching(REGION_PATTERN, 'must be a Region name like eu-west-1')),
});

const EXPECTED = `Expected {"remediate"?: true, "keyIds"?: ["<key id>", ...], "account"?: "<12 digits>", "region"?: "<Region>"}`;

/**
 * `organizationMode`: the stack has a member role (`config.memberRoleName`); only then may a payload
 * name an `account` and `region` (both or neither) of the organization to audit.
 */
export const parseAuditRequest = (
  payload: unknown,
  remediateOnSchedule: boolean,
  organizationMode = false,
): AuditRequest => {
  const parsed = AuditPayload.safeParse(noOptions(payload) ? {} : payload);
  if (!parsed.success) {
    throw new InvalidInputError(`Invalid audit request: ${describeIssues(parsed.error.issues)}. ${EXPECTED}`);
  }
  const { remediate, keyIds, scheduled, checkpoint, account, region } = parsed.data;
  if ((account === undefined) !== (region === undefined)) {
    throw new InvalidInputError(
      `Invalid audit request: ${account === undefined ? 'account' : 'region'} is missing: "account" and "region" go together, or neither. ${EXPECTED}`,
    );
  }
  if (account !== undefined && !organizationMode) {
    throw new InvalidInputError(
      "Invalid audit request: account and region are accepted only in organization mode (the stage's organizationUnitIds): this stack audits its own account and Region",
    );
  }
  return {
    remediate: remediate ?? (scheduled === true && remediateOnSchedule),
    keyIds,
    checkpoint: checkpoint as AuditRequest['checkpoint'],
    ...(account !== undefined && region !== undefined ? { account, region } : {}),
  };
};
