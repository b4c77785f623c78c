import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { OrganizationsClient } from '@aws-sdk/client-organizations';
import { SQSClient } from '@aws-sdk/client-sqs';
import { version } from '../package.json';
import { clientOptions } from '../src/adapters/aws-clients';
import { observedHandler } from '../src/adapters/observed-handler';
import { orgReportDependencies } from '../src/adapters/org-audit-dependencies';
import { OrganizationAccounts } from '../src/adapters/organization-accounts';
import { logTo, serviceLocationOf, uuidGenerator } from '../src/adapters/runtime';
import { parseOrgAuditRequest } from '../src/adapters/schemas/org-audit';
import { SqsOrgAuditQueue } from '../src/adapters/sqs-org-audit-queue';
import { ConfigurationError, loadConfig, required } from '../src/config';
import { fanOut, type OrgFanOutResult } from '../src/domain/org-audit-run';

const config = loadConfig(process.env, 'orgAudit');
if (config.orgAudit.organizationUnitIds.length === 0) {
  throw new ConfigurationError('Invalid environment: ORGANIZATION_UNIT_IDS is required by this function');
}
const sdk = () => clientOptions(config.clientTimeoutMs);
const logger = new Logger();
const metrics = new Metrics();
const log = logTo(logger);
// Organizations has one endpoint per partition; us-east-1 serves the commercial one (docs/org-audit.md).
const accounts = new OrganizationsClient({ ...sdk(), region: 'us-east-1' });
// The queue is in this Region: the client's own endpoint, never the host a queue URL names.
const queue = new SqsOrgAuditQueue(
  new SQSClient({ ...sdk(), useQueueUrlAsEndpoint: false }),
  required(config.orgAudit.queueUrl, 'ORG_AUDIT_QUEUE_URL'),
);
const { reportDepsFor } = orgReportDependencies(config, log, version);

/**
 * The organization audit's fan-out (docs/org-audit.md), on its schedule or by hand: every ACTIVE
 * account of the organization units × every Region, recorded as one run, one queue message each.
 */
export const handler = observedHandler(
  logger,
  metrics,
  'Organization audit not started',
  async (event, context): Promise<OrgFanOutResult> => {
    const request = parseOrgAuditRequest(event);
    const location = serviceLocationOf(context, config);
    const result = await fanOut(request, {
      ...(await reportDepsFor(location)),
      accounts: new OrganizationAccounts(accounts),
      queue,
      ids: uuidGenerator,
      organizationUnitIds: config.orgAudit.organizationUnitIds,
      regions: config.orgAudit.regions.length > 0 ? config.orgAudit.regions : [location.region],
    });
    log.info(result.summary, {
      runId: result.runId,
      expected: result.expected,
      sent: result.sent,
      unsent: result.unsent,
    });
    return result;
  },
);
