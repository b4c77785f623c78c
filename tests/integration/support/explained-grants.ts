/**
 * Grants of the roles' policies that no recorded call and no service-side check of the
 * authorization test uses, each with the reason it is there anyway. The test fails on any grant
 * that is neither used nor listed here, and on any entry here that no longer names a grant.
 *
 * Key: `<Role logical id>/<policy name>#<statement Sid> <action as written>`, e.g.
 * `AuditRole/audit#ContinueInANewSlice lambda:InvokeFunction`. One line of reason each.
 */
export const EXPLAINED_GRANTS: Record<string, string> = {
  'AuditRole/audit#ContinueInANewSlice lambda:InvokeFunction':
    'the audit hands the rest of a large fleet to a new invocation of itself; the test fleet fits in one slice',
};
