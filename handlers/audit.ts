import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import { version } from '../package.json';
import { clientOptions } from '../src/adapters/aws-clients';
import { DynamoKeyLeases } from '../src/adapters/dynamodb-key-leases';
import { KmsKeyGateway } from '../src/adapters/kms-key-gateway';
import { KmsReplicaReader } from '../src/adapters/kms-replica-reader';
import { LambdaContinuation } from '../src/adapters/lambda-continuation';
import { recordAudit } from '../src/adapters/metrics';
import { observedHandler } from '../src/adapters/observed-handler';
import { auditReportsWhenSet, securityHubWhenOn } from '../src/adapters/opt-in';
import { accountUsageVia, pacedKmsClient } from '../src/adapters/pacing';
import {
  leaseHolderOf,
  logTo,
  realSleeper,
  secureRandom,
  serviceLocationOf,
  sha256,
  systemClock,
  uuidGenerator,
} from '../src/adapters/runtime';
import { parseAuditRequest } from '../src/adapters/schemas/audit-request';
import { SnsNotifier } from '../src/adapters/sns-notifier';
import { SsmKeyRecordStore } from '../src/adapters/ssm-key-record-store';
import { loadConfig, required } from '../src/config';
import { type AuditReport, auditFleet } from '../src/domain/audit-fleet';
import { EVENT_LEASE_WAIT_MS } from '../src/domain/key-lease';

const config = loadConfig(process.env, 'audit');
const sdk = () => clientOptions(config.clientTimeoutMs);
const logger = new Logger();
const metrics = new Metrics();
const log = logTo(logger);
// Paced to the account's headroom (else the fixed share of the documented quotas); throttles slow their API only.
const kmsClient = pacedKmsClient(sdk(), {
  overrides: config.audit.rateLimits,
  share: config.audit.quotaShare,
  usage: accountUsageVia(sdk),
  log,
});
const kms = new KmsKeyGateway(kmsClient);
const records = new SsmKeyRecordStore(new SSMClient(sdk()), config.stateParameterPrefix, log);
const deps = {
  fleet: kms,
  keys: kms,
  admin: kms,
  records,
  // Reconciling rotations whose event was lost (onRotation's validation), and multi-Region primaries' replicas.
  rotations: {
    store: records,
    crypto: kms,
    random: secureRandom,
    digest: sha256,
    replicas: new KmsReplicaReader(
      (region) => new KMSClient({ ...sdk(), region, retryMode: 'adaptive', maxAttempts: 8 }),
    ),
  },
  continuation: new LambdaContinuation(new LambdaClient(sdk()), process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'audit'),
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

// Opt-in: loaded only when the stack's securityHubFindings is on, or its auditReports set a bucket.
const securityHubFor = securityHubWhenOn(config.securityHubFindings, sdk());

const reportsFor = auditReportsWhenSet(config.audit.reportsBucket, sdk(), version);

/** Daily schedule or manual invoke: every key of the account and Region, judged by the rules of its class. */
export const handler = observedHandler(
  logger,
  metrics,
  'Audit not completed',
  async (event, context): Promise<AuditReport> => {
    const request = parseAuditRequest(event, config.audit.remediateOnSchedule);
    const before = request.checkpoint?.totals.keysAudited ?? 0;
    const location = serviceLocationOf(context, config);
    const [hubFor, reports] = await Promise.all([securityHubFor, reportsFor]);
    const report = await auditFleet(request, {
      ...deps,
      location,
      ...(hubFor ? { securityHub: hubFor(location, log) } : {}),
      ...(reports ? { reports } : {}),
      ...leaseHolderOf(context),
    });
    recordAudit(metrics, report, report.totals.keysAudited - before);
    return report;
  },
);
