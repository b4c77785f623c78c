import * as z from 'zod/mini';
import { excerpt, InvalidInputError } from '../../domain/errors';
import type { RotateRequest } from '../../domain/rotate-key';
import { describeIssues, matching, noOptions } from './zod';

const KEY_REFERENCE =
  /^(?:alias\/[a-zA-Z0-9/_-]{1,250}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key\/[a-z0-9-]{1,64}|alias\/[a-zA-Z0-9/_-]{1,250}))$/;

/** The `rotate` payload (docs/architecture.md#payloads). Unknown fields are refused: a typo must not silently mean "not a dry run". */
export const RotateRequestSchema = z.strictObject({
  key: matching(KEY_REFERENCE, 'must be an alias name (alias/...), a key id or a key or alias ARN'),
  strategy: z._default(z.enum(['auto', 'on-demand', 'alias-swap']), 'auto'),
  dryRun: z._default(z.boolean(), false),
  reason: z.optional(z.string().check(z.maxLength(256))),
  action: z._default(z.enum(['rotate', 'rollback']), 'rotate'),
  force: z.optional(z.boolean()),
  // Organization mode: where the key is (docs/manual-invoke.md). Both or neither; see `parseRotateRequest`.
  account: z.optional(matching(/^\d{12}$/, 'must be a 12-digit account id')),
  region: z.optional(matching(/^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/, 'must be a Region name')),
});

const EXPECTED =
  'Expected {"key": "alias/...", "strategy"?: "auto"|"on-demand"|"alias-swap", "dryRun"?: true, "reason"?: "...", "action"?: "rotate"|"rollback", "force"?: true, "account"?: "<12 digits>", "region"?: "<Region>"}';

const refuse = (why: string): never => {
  throw new InvalidInputError(`Invalid rotate request: ${why}. ${EXPECTED}`);
};

/**
 * `account` and `region` name a member account's key (organization mode only): both or neither,
 * and a key ARN in the payload must be in them. Outside organization mode either is refused,
 * by name, before any AWS call.
 */
const requireWhereAgrees = (request: RotateRequest, organizationMode: boolean): void => {
  const { account, region } = request;
  if (account === undefined && region === undefined) return;
  if (!organizationMode) {
    refuse(
      `${account !== undefined ? 'account' : 'region'} is accepted in organization mode only (the stack's organizationUnitIds); this stack acts in its own account and Region`,
    );
  }
  if (account === undefined) refuse('account is required with region');
  if (region === undefined) refuse('region is required with account');
  const arn = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):/.exec(request.key);
  if (arn && (arn[1] !== region || arn[2] !== account)) {
    refuse(`key must be in the account and Region given (${account}, ${region}): ${excerpt(request.key)}`);
  }
};

/** `organizationMode`: the function's `memberRoleName` is set, so `account` and `region` may name a member's key. */
export const parseRotateRequest = (payload: unknown, organizationMode = false): RotateRequest => {
  // No payload at all: say what is missing rather than "expected object, received string".
  const parsed = RotateRequestSchema.safeParse(noOptions(payload) ? {} : payload);
  if (!parsed.success) refuse(describeIssues(parsed.error.issues));
  const request = parsed.data as RotateRequest;
  requireWhereAgrees(request, organizationMode);
  return request;
};
