import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { SNSClient } from '@aws-sdk/client-sns';
import { clientOptions } from '../src/adapters/aws-clients';
import { DynamoKeyLeases } from '../src/adapters/dynamodb-key-leases';
import { KmsKeyGateway } from '../src/adapters/kms-key-gateway';
import { KmsKeyRetirement } from '../src/adapters/kms-key-retirement';
import { observedHandler } from '../src/adapters/observed-handler';
import { leaseHolderOf, logTo, realSleeper, serviceLocationOf, systemClock } from '../src/adapters/runtime';
import { parseRetireInput } from '../src/adapters/schemas/retire-request';
import { SnsNotifier } from '../src/adapters/sns-notifier';
import { TaggedKeyDirectory } from '../src/adapters/tagged-key-directory';
import { loadConfig, required } from '../src/config';
import { EVENT_LEASE_WAIT_MS } from '../src/domain/key-lease';
import {
  handleUseAttempt,
  type RetiredKeyReport,
  type RetireReport,
  retirePredecessors,
} from '../src/domain/retire-predecessors';
import { requireEventForThisService } from '../src/domain/service-location';

const config = loadConfig(process.env, 'retire');
const sdk = () => clientOptions(config.clientTimeoutMs);
const logger = new Logger();
const metrics = new Metrics();
const log = logTo(logger);
const kmsClient = new KMSClient(sdk());
const deps = {
  keys: new KmsKeyGateway(kmsClient),
  retirement: new KmsKeyRetirement(kmsClient),
  directory: new TaggedKeyDirectory(new ResourceGroupsTaggingAPIClient(sdk())),
  notifier: new SnsNotifier(new SNSClient(sdk()), config.topicArn),
  clock: systemClock,
  log,
  settings: config.retire,
  leases: new DynamoKeyLeases(new DynamoDBClient(sdk()), required(config.leaseTable, 'LEASE_TABLE')),
};

/**
 * The daily schedule (`{"scheduled": true}`), a manual invoke (`{"dryRun"?, "keyId"?}`), or a
 * CloudTrail record of a use KMS refused on a key the retirement disabled -> docs/retire.md.
 */
export const handler = observedHandler(
  logger,
  metrics,
  'Retirement not done',
  async (event, context): Promise<RetireReport | RetiredKeyReport> => {
    const input = parseRetireInput(event);
    const location = serviceLocationOf(context, config);
    if (input.kind === 'use-attempt') {
      requireEventForThisService(
        { eventId: input.attempt.eventId, account: input.account, region: input.region },
        location,
      );
      logger.appendKeys({ eventId: input.attempt.eventId, keyId: input.attempt.keyId });
      return handleUseAttempt(input.attempt, {
        ...deps,
        location,
        ...leaseHolderOf(context),
        leaseWait: { ms: EVENT_LEASE_WAIT_MS, sleeper: realSleeper },
      });
    }
    logger.appendKeys({ mode: config.retire.mode, dryRun: input.request.dryRun, keyId: input.request.keyId });
    const report = await retirePredecessors(input.request, { ...deps, location, ...leaseHolderOf(context) });
    logger.info('Retirement run', { summary: report.summary });
    return report;
  },
);
