/**
 * Grants of the roles' policies that no recorded call and no service-side check of the
 * authorization test uses, each with the reason it is there anyway. The test fails on any grant
 * that is neither used nor listed here, and on any entry here that no longer names a grant.
 *
 * Key: `<Role logical id>/<policy name>#<statement Sid> <action as written>`, e.g.
 * `AuditRole/audit#ContinueInANewSlice lambda:InvokeFunction`. One line of reason each.
 */
export const EXPLAINED_GRANTS: Record<string, string> = {
  'RotateRole/rotate#HoldKeyLeases dynamodb:GetItem':
    'the lease is read only when another run holds it, to name that run in the refusal; tests/integration/concurrency.int.test.ts makes that happen',
  'OnKeyActivityRole/on-key-activity#HoldKeyLeases dynamodb:GetItem':
    'the lease is read only when another run holds the key, to name that run when the wait ends; tests/integration/concurrency.int.test.ts makes that happen',
  'OnRotationRole/on-rotation#HoldKeyLeases dynamodb:GetItem':
    'the lease is read only when another run holds the key, to name that run when the wait ends; tests/unit/handlers/on-rotation.test.ts makes that happen',
  'AuditRole/audit#HoldKeyLeases dynamodb:GetItem':
    'the lease is read only when another run holds a key the audit would remediate, to name that run in the finding; tests/unit/domain/audit/audit-fleet.test.ts makes that happen',
  'SelfTestRole/self-test#HoldKeyLeases dynamodb:GetItem':
    "the lease is read only when another run holds it; a self-test's throwaway keys are its own alone",
  'OnRotationRole/on-rotation#ReadReplicasInTheirRegions kms:DescribeKey':
    "moto names a multi-Region key mrk-<uuid>, not AWS's mrk-<32 hex>, so no rotation event can name one here; the same read by rotate and audit is evaluated, and tests/unit/domain/rotate/replicas-after-rotation.test.ts covers onRotation's",
  'RotateRole/rotate#ReadReplicasInTheirRegions kms:DescribeKey':
    "moto cannot decrypt under a multi-Region key (its ciphertext header holds a 36-character key id; an mrk- id has 40), so no on-demand rotation of one validates here; the audit's same read is evaluated, and tests/unit/domain/rotate/replicas-after-rotation.test.ts covers rotate's",
  'RetireRole/retire#HoldKeyLeases dynamodb:GetItem':
    'the lease is read only when another run holds the retired key, to name that run; tests/unit/domain/retire/retire-predecessors.test.ts makes that happen',
  'AuditRole/audit#ContinueInANewSlice lambda:InvokeFunction':
    'the audit hands the rest of a large fleet to a new invocation of itself; the test fleet fits in one slice',
  'RotateRole/rotate#RotateManagedKeys kms:CreateAlias':
    're-running a rollback re-creates a declared alias deleted meanwhile on the predecessor, managed again by then',
  'RotateRole/rotate#RotateManagedKeys kms:GenerateMac':
    're-running the rollback of an HMAC swap verifies the predecessor again, managed by then (the test re-runs an RSA one)',
  'RotateRole/rotate#RotateManagedKeys kms:VerifyMac':
    're-running the rollback of an HMAC swap verifies the predecessor again, managed by then (the test re-runs an RSA one)',
  'RotateRole/rotate#RotateManagedKeys kms:GetPublicKey':
    'asymmetric ENCRYPT_DECRYPT keys are verified by encrypting locally with their public key; no flow here uses one',
  'RotateRole/rotate#RollBackToRetiredPredecessors kms:CreateAlias':
    'a rollback re-creates a declared alias that was deleted after the swap; the test deletes none',
  'RotateRole/rotate#RollBackToRetiredPredecessors kms:GetPublicKey':
    'the rollback of an asymmetric ENCRYPT_DECRYPT swap verifies the predecessor through its public key; no flow here uses one',
  'RotateRole/rotate#MoveAliasesInScope kms:CreateAlias':
    'a declared alias that does not exist yet is created on the successor (promoteAliases) or predecessor (rollback)',
  'OnKeyActivityRemediationPolicy/on-key-activity-remediation#PutBackRotationAndAliasesOfManagedKeys kms:Sign':
    'an alias of a managed signing key is re-pointed only after the key signs and verifies; the drift flows use a symmetric key',
  'OnKeyActivityRemediationPolicy/on-key-activity-remediation#PutBackRotationAndAliasesOfManagedKeys kms:Verify':
    'an alias of a managed signing key is re-pointed only after the key signs and verifies; the drift flows use a symmetric key',
  'OnKeyActivityRemediationPolicy/on-key-activity-remediation#PutBackRotationAndAliasesOfManagedKeys kms:GenerateMac':
    'an alias of a managed HMAC key is re-pointed only after the key proves its MACs; the drift flows use a symmetric key',
  'OnKeyActivityRemediationPolicy/on-key-activity-remediation#PutBackRotationAndAliasesOfManagedKeys kms:VerifyMac':
    'an alias of a managed HMAC key is re-pointed only after the key proves its MACs; the drift flows use a symmetric key',
  'OnKeyActivityRemediationPolicy/on-key-activity-remediation#PutBackRotationAndAliasesOfManagedKeys kms:GetPublicKey':
    'an alias of a managed asymmetric ENCRYPT_DECRYPT key is re-pointed only after it decrypts what its public key encrypted',
};

/**
 * The same, for organization mode (tests/integration/authorization-organization.int.test.ts): the
 * member role's grants (member/member-stack.yml, as deployed in a member account and Region), the
 * forwarding role's, and the central `MemberAccessPolicy` (resources/organization.yml).
 */
export const EXPLAINED_ORGANIZATION_GRANTS: Record<string, string> = {
  'OrgAuditRole/org-audit#WriteOwnLogs logs:CreateLogStream':
    "Lambda's runtime writes the function's logs with its role; no call of the code",
  'OrgAuditRole/org-audit#WriteOwnLogs logs:PutLogEvents':
    "Lambda's runtime writes the function's logs with its role; no call of the code",
  'OrgAuditRole/org-audit#FailedEventsToDeadLetterQueue sqs:SendMessage':
    "Lambda's on-failure destination of a failed scheduled run, sent with the function's role; no call of the code",
  'OrgAuditRole/org-audit#RecordRuns dynamodb:GetItem':
    'orgAudit combines the run itself only when the items it could not send were the last ones (docs/org-audit.md); every send succeeds here',
  'OrgAuditRole/org-audit#RecordRuns dynamodb:Query':
    'orgAudit combines the run itself only when the items it could not send were the last ones (docs/org-audit.md); every send succeeds here',
  'OrgAuditRole/org-audit#Notify sns:Publish':
    "orgAudit sends the run's AuditCompleted only when it combines the run itself (unsent last items); every send succeeds here",
  'OrgAuditRole/org-audit#PublishToEncryptedTopic kms:GenerateDataKey*':
    "the topic's key, used by SNS on orgAudit's Publish, made only when it combines the run itself",
  'OrgAuditRole/org-audit#PublishToEncryptedTopic kms:Decrypt':
    "the topic's key, used by SNS on orgAudit's Publish, made only when it combines the run itself",
  'OrgAuditItemRole/org-audit-item#WriteOwnLogs logs:CreateLogStream':
    "Lambda's runtime writes the function's logs with its role; no call of the code",
  'OrgAuditItemRole/org-audit-item#WriteOwnLogs logs:PutLogEvents':
    "Lambda's runtime writes the function's logs with its role; no call of the code",
  'OrgAuditItemRole/org-audit-item#ReadOwnQueue sqs:ReceiveMessage':
    "Lambda's SQS event source mapping polls the queue with the function's role; the test hands the items over itself (moto cannot run the mapping)",
  'OrgAuditItemRole/org-audit-item#ReadOwnQueue sqs:DeleteMessage':
    "Lambda's SQS event source mapping deletes a handled message with the function's role; the test does it itself",
  'OrgAuditItemRole/org-audit-item#ReadOwnQueue sqs:GetQueueAttributes':
    "Lambda's SQS event source mapping reads the queue's attributes with the function's role",
  'OrgAuditItemRole/org-audit-item#HoldKeyLeases dynamodb:PutItem':
    "a lease is taken only to check a managed multi-Region primary's replicas or to reconcile a lost rotation of a managed key; the member here has neither",
  'OrgAuditItemRole/org-audit-item#HoldKeyLeases dynamodb:GetItem':
    "a lease is taken only to check a managed multi-Region primary's replicas or to reconcile a lost rotation of a managed key; the member here has neither",
  'OrgAuditItemRole/org-audit-item#HoldKeyLeases dynamodb:DeleteItem':
    "a lease is taken only to check a managed multi-Region primary's replicas or to reconcile a lost rotation of a managed key; the member here has neither",
  'OrgAuditItemRole/org-audit-item#ListingsHaveNoResourceScope kms:ListKeys':
    "the central account's own account-Region, audited by the worker with its own role when an OU the stage lists holds the central account; the test's OU holds member accounts only. The same statement of the audit role is evaluated by the single-account authorization test",
  'OrgAuditItemRole/org-audit-item#ListingsHaveNoResourceScope kms:ListAliases':
    "the central account's own account-Region, audited by the worker with its own role when an OU the stage lists holds the central account; the test's OU holds member accounts only. The same statement of the audit role is evaluated by the single-account authorization test",
  'OrgAuditItemRole/org-audit-item#ReadEveryOwnKey kms:DescribeKey':
    "the central account's own account-Region, audited by the worker with its own role when an OU the stage lists holds the central account; the test's OU holds member accounts only. The same statement of the audit role is evaluated by the single-account authorization test",
  'OrgAuditItemRole/org-audit-item#ReadEveryOwnKey kms:ListResourceTags':
    "the central account's own account-Region, audited by the worker with its own role when an OU the stage lists holds the central account; the test's OU holds member accounts only. The same statement of the audit role is evaluated by the single-account authorization test",
  'OrgAuditItemRole/org-audit-item#ReadEveryOwnKey kms:GetKeyRotationStatus':
    "the central account's own account-Region, audited by the worker with its own role when an OU the stage lists holds the central account; the test's OU holds member accounts only. The same statement of the audit role is evaluated by the single-account authorization test",
  'OrgAuditItemRole/org-audit-item#ReadEveryOwnKey kms:ListKeyRotations':
    "the central account's own account-Region, audited by the worker with its own role when an OU the stage lists holds the central account; the test's OU holds member accounts only. The same statement of the audit role is evaluated by the single-account authorization test",
  'OrgAuditItemRole/org-audit-item#JudgeManagedKeysOnly kms:GetKeyPolicy':
    "the central account's own account-Region, audited by the worker with its own role when an OU the stage lists holds the central account; the test's OU holds member accounts only. The same statement of the audit role is evaluated by the single-account authorization test",
  'OrgAuditItemRole/org-audit-item#ReconcileManagedKeysOnly kms:Encrypt':
    "the central account's own account-Region, audited by the worker with its own role when an OU the stage lists holds the central account; the test's OU holds member accounts only. The same statement of the audit role is evaluated by the single-account authorization test",
  'OrgAuditItemRole/org-audit-item#ReconcileManagedKeysOnly kms:Decrypt':
    "the central account's own account-Region, audited by the worker with its own role when an OU the stage lists holds the central account; the test's OU holds member accounts only. The same statement of the audit role is evaluated by the single-account authorization test",
  'OrgAuditItemRole/org-audit-item#ReadReplicasInTheirRegions kms:DescribeKey':
    "the central account's own account-Region, audited by the worker with its own role when an OU the stage lists holds the central account; the test's OU holds member accounts only. The same statement of the audit role is evaluated by the single-account authorization test",
  'OrgAuditItemRole/org-audit-item#KeepKeyRecords ssm:PutParameter':
    "a reconciled rotation's record, written after it is validated; no member key here has a lost rotation to reconcile",
  'OrgAuditItemRole/org-audit-item#ReadDeclaredKeyRecords ssm:GetParametersByPath':
    "the central account's own account-Region, audited by the worker with its own role when an OU the stage lists holds the central account; the test's OU holds member accounts only. The same statement of the audit role is evaluated by the single-account authorization test",
  'MemberRole/kms-rotation-member#ActOnManagedKeysOnly kms:GenerateMac':
    're-running the rollback of an HMAC swap verifies the predecessor again, managed by then (the test re-runs an RSA one)',
  'MemberRole/kms-rotation-member#ActOnManagedKeysOnly kms:VerifyMac':
    're-running the rollback of an HMAC swap verifies the predecessor again, managed by then (the test re-runs an RSA one)',
  'MemberRole/kms-rotation-member#ActOnManagedKeysOnly kms:GetPublicKey':
    'asymmetric ENCRYPT_DECRYPT keys are verified by encrypting locally with their public key; no flow here uses one',
  'MemberRole/kms-rotation-member#RollBackToRetiredPredecessors kms:CreateAlias':
    'a rollback re-creates a declared alias that was deleted after the swap; the test deletes none',
  'MemberRole/kms-rotation-member#RollBackToRetiredPredecessors kms:GetPublicKey':
    'the rollback of an asymmetric ENCRYPT_DECRYPT swap verifies the predecessor through its public key; no flow here uses one',
};
