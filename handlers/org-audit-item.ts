import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse } from 'aws-lambda';
import { version } from '../package.json';
import { auditDependencies } from '../src/adapters/audit-dependencies';
import { observedHandler } from '../src/adapters/observed-handler';
import { orgReportDependencies } from '../src/adapters/org-audit-dependencies';
import { leaseHolderOf, logTo, serviceLocationOf } from '../src/adapters/runtime';
import { parseOrgAuditItemMessage, parseSqsEvent } from '../src/adapters/schemas/org-audit';
import { loadConfig } from '../src/config';
import { auditFleet } from '../src/domain/audit-fleet';
import { describeError } from '../src/domain/errors';
import { handleItem } from '../src/domain/org-audit-run';

const config = loadConfig(process.env, 'orgAuditItem');
const logger = new Logger();
const metrics = new Metrics();
const log = logTo(logger);
// No hand-over: an item is one invocation (docs/org-audit.md#failure-rules); a fleet too large for it fails the attempt.
const { depsFor, reportsFor } = auditDependencies(config, 'orgAuditItem', log, version, {
  continueLater: async () => {
    throw new Error(
      'The account-Region has more keys than one invocation of orgAuditItem audits (15 minutes): audit it with `audit` and its account and region',
    );
  },
});
const { reportDepsFor } = orgReportDependencies(config, log, version);

/**
 * The organization audit's worker (docs/org-audit.md): one account-Region per message, from the
 * org audit queue's event source mapping. A message that fails (malformed, or an attempt that
 * failed) is returned as a batch item failure: the queue delivers it again after its visibility
 * timeout, and a message that cannot even be recorded ends in the queue's dead-letter queue.
 */
export const handler = observedHandler(
  logger,
  metrics,
  'Organization audit item not completed',
  async (event, context): Promise<SQSBatchResponse> => {
    const messages = parseSqsEvent(event);
    const own = serviceLocationOf(context, config);
    const [reports, reportDeps] = await Promise.all([reportsFor, reportDepsFor(own)]);
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    for (const message of messages) {
      try {
        const item = parseOrgAuditItemMessage(message.body);
        const outcome = await handleItem(item, message, {
          ...reportDeps,
          attempts: config.orgAudit.attempts,
          audit: (target) => {
            const location = { ...own, account: target.account, region: target.region };
            return auditFleet(
              { remediate: false },
              {
                ...depsFor(location, own),
                orgItem: true,
                ...(reports ? { reports } : {}),
                ...leaseHolderOf(context),
              },
            );
          },
        });
        log.info('organization audit item', { messageId: message.messageId, ...outcome });
        if (outcome.outcome === 'retry') batchItemFailures.push({ itemIdentifier: message.messageId });
      } catch (error) {
        log.error('organization audit item not recorded', {
          messageId: message.messageId,
          error: describeError(error),
        });
        batchItemFailures.push({ itemIdentifier: message.messageId });
      }
    }
    return { batchItemFailures };
  },
);
