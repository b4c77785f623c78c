import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { ServiceConfig } from '../config';
import { required } from '../config';
import type { AuditDeps, Continuation } from '../domain/audit-fleet';
import { EVENT_LEASE_WAIT_MS } from '../domain/key-lease';
import type { ServiceLocation } from '../domain/model';
import type { Log } from '../domain/ports';
import { actingLocations } from './acting-location';
import { clientOptions } from './aws-clients';
import { DynamoKeyLeases } from './dynamodb-key-leases';
import { KmsKeyGateway } from './kms-key-gateway';
import { KmsReplicaReader } from './kms-replica-reader';
import { LambdaContinuation } from './lambda-continuation';
import { auditReportsWhenSet, securityHubWhenOn } from './opt-in';
import { accountUsageVia, pacedKmsClient } from './pacing';
import { realSleeper, secureRandom, sha256, systemClock, uuidGenerator } from './runtime';
import { SnsNotifier } from './sns-notifier';
import { SsmKeyRecordStore } from './ssm-key-record-store';

/** The audit's dependencies for one invocation, apart from its lease holder and clock of remaining time. */
export type AuditDepsFor = (target: ServiceLocation, own: ServiceLocation) => Omit<AuditDeps, 'holder' | 'remainingMs'>;

/**
 * Everything the audit needs, built once per cold start and shared by `audit` and `orgAuditItem`:
 * central clients (SSM records, SNS, key leases, Lambda for the continuation) and, per account and
 * Region audited, one KMS client paced to that account's quotas (a KMS client of the function's own
 * role for its own account and Region; through the member role for any other, docs/org-audit.md).
 */
export const auditDependencies = (
  config: ServiceConfig,
  functionName: 'audit' | 'orgAuditItem',
  log: Log,
  productVersion: string,
  continuation?: Continuation,
) => {
  const sdk = () => clientOptions(config.clientTimeoutMs);
  // Where the audit acts, and its clients there (the one decision of every acting function,
  // acting-location.ts): its own account and Region with its own role, any other through the
  // member role. Each account-Region's KMS client is paced to that account's own headroom (its
  // AWS/Usage and Service Quotas, read there), else to the fixed share of the documented quotas;
  // a throttle slows only its API (docs/audit.md, "Pacing").
  const acting = actingLocations({
    fn: functionName,
    memberRoleName: config.memberRoleName,
    clientOptions: sdk,
    make: (optionsIn) => {
      const options = () => ({ ...sdk(), ...optionsIn() });
      return {
        kms: new KmsKeyGateway(
          pacedKmsClient(options(), {
            overrides: config.audit.rateLimits,
            share: config.audit.quotaShare,
            usage: accountUsageVia(options),
            log,
          }),
        ),
        replicas: new KmsReplicaReader(
          (region) => new KMSClient({ ...sdk(), ...optionsIn(region), retryMode: 'adaptive', maxAttempts: 8 }),
        ),
      };
    },
  });
  const records = new SsmKeyRecordStore(new SSMClient(sdk()), config.stateParameterPrefix, log);
  const shared = {
    continuation:
      continuation ??
      new LambdaContinuation(new LambdaClient(sdk()), process.env.AWS_LAMBDA_FUNCTION_NAME ?? functionName),
    notifier: new SnsNotifier(new SNSClient(sdk()), config.topicArn),
    clock: systemClock,
    ids: uuidGenerator,
    log,
    limits: {
      maxRotationPeriodDays: config.audit.maxRotationPeriodDays,
      maxMaterialAgeDays: config.audit.maxMaterialAgeDays,
    },
    schedule: {
      importExpiryWarningDays: config.audit.importExpiryWarningDays,
      rotationDueWarningDays: config.audit.rotationDueWarningDays,
    },
    concurrency: config.audit.concurrency,
    handOverBelowMs: 120_000,
    maxFindingsListed: 500,
    // A remediation waits a little for a key another run holds, then leaves the finding open, saying so.
    leases: new DynamoKeyLeases(new DynamoDBClient(sdk()), required(config.leaseTable, 'LEASE_TABLE')),
    leaseWait: { ms: EVENT_LEASE_WAIT_MS, sleeper: realSleeper },
  };
  const depsFor: AuditDepsFor = (target, ownLocation) => {
    const { location, inMember, clients } = acting(ownLocation, target);
    return {
      ...shared,
      location,
      fleet: clients.kms,
      keys: clients.kms,
      admin: clients.kms,
      // The records name keys by id only: the declared keys are this stack's own account and Region's
      // (docs/org-audit.md#what-a-member-audit-does-not-check).
      records: inMember ? { declaredKeyIds: async () => [] } : records,
      // Reconciling rotations whose event was lost (onRotation's validation), and multi-Region primaries' replicas.
      rotations: {
        store: records,
        crypto: clients.kms,
        random: secureRandom,
        digest: sha256,
        replicas: clients.replicas,
      },
    };
  };
  return {
    depsFor,
    // Opt-in: loaded only when the stack's securityHubFindings is on, or its auditReports set a bucket.
    securityHubFor: securityHubWhenOn(config.securityHubFindings, sdk()),
    reportsFor: auditReportsWhenSet(config.audit.reportsBucket, sdk(), productVersion),
  };
};
