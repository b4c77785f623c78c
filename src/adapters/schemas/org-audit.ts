import * as z from 'zod/mini';
import { excerpt, InvalidInputError } from '../../domain/errors';
import type { OrgAuditItem } from '../../domain/org-audit';
import { ACCOUNT_PATTERN, REGION_PATTERN } from './audit-request';
import { describeIssues, matching, noOptions } from './zod';

/** `orgAudit` payload: `{}` by hand, `{ scheduled: true }` from its schedule, `{ dryRun: true }` to list the items only. */
const OrgAuditPayload = z.strictObject({
  scheduled: z.optional(z.literal(true)),
  dryRun: z.optional(z.boolean()),
});

export interface OrgAuditRequest {
  /** List the accounts and Regions the run would cover; record nothing, send nothing. */
  dryRun: boolean;
}

export const parseOrgAuditRequest = (payload: unknown): OrgAuditRequest => {
  const parsed = OrgAuditPayload.safeParse(noOptions(payload) ? {} : payload);
  if (!parsed.success) {
    throw new InvalidInputError(
      `Invalid orgAudit request: ${describeIssues(parsed.error.issues)}. Expected {} or {"dryRun": true} (the schedule sends {"scheduled": true})`,
    );
  }
  return { dryRun: parsed.data.dryRun === true };
};

/** An OU path as `orgAudit` writes it: root or OU ids joined by `/`. */
const OU_PATH = /^(?:r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})(?:\/ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}){0,20}$/;

/** One item's message on the queue: only `orgAudit` writes it, still validated. */
const ItemMessage = z.strictObject({
  runId: matching(/^[\w-]{1,64}$/, 'must be a run id'),
  account: matching(ACCOUNT_PATTERN, 'must be a 12-digit AWS account id'),
  region: matching(REGION_PATTERN, 'must be a Region name like eu-west-1'),
  ouPath: z.optional(matching(OU_PATH, 'must be a path of organization unit ids')),
});

/** Longest message body read: an item's message is a few hundred bytes. */
const MAX_BODY_CHARS = 4_096;

export const parseOrgAuditItemMessage = (body: unknown): OrgAuditItem => {
  if (typeof body !== 'string' || body.length > MAX_BODY_CHARS) {
    throw new InvalidInputError(
      `Invalid orgAuditItem message: the body must be JSON text of at most ${MAX_BODY_CHARS} characters`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new InvalidInputError(`Invalid orgAuditItem message: the body is not JSON: ${excerpt(body, 100)}`);
  }
  const parsed = ItemMessage.safeParse(json);
  if (!parsed.success) {
    throw new InvalidInputError(
      `Invalid orgAuditItem message: ${describeIssues(parsed.error.issues)}. Expected {"runId", "account", "region", "ouPath"?}`,
    );
  }
  return parsed.data;
};

/** The SQS event's records, each with the message id, body and receive count the worker needs. */
const SqsEvent = z.object({
  Records: z
    .array(
      z.object({
        messageId: z.string().check(z.minLength(1), z.maxLength(128)),
        body: z.string(),
        attributes: z.object({ ApproximateReceiveCount: matching(/^\d{1,6}$/, 'must be a count') }),
      }),
    )
    .check(z.minLength(1), z.maxLength(10)),
});

export interface ReceivedMessage {
  messageId: string;
  body: string;
  receiveCount: number;
}

/** The event the SQS event source mapping sends; anything else is refused before any AWS call. */
export const parseSqsEvent = (event: unknown): ReceivedMessage[] => {
  const parsed = SqsEvent.safeParse(event);
  if (!parsed.success) {
    throw new InvalidInputError(
      `Invalid orgAuditItem event: ${describeIssues(parsed.error.issues)}. Expected an SQS event from the org audit queue`,
    );
  }
  return parsed.data.Records.map((record) => ({
    messageId: record.messageId,
    body: record.body,
    receiveCount: Number(record.attributes.ApproximateReceiveCount),
  }));
};
