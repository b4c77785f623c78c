import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { SNSClient } from '@aws-sdk/client-sns';
import { clientOptions } from '../src/adapters/aws-clients';
import { DynamoKeyLeases } from '../src/adapters/dynamodb-key-leases';
import { KmsKeyGateway } from '../src/adapters/kms-key-gateway';
import { KmsThrowawayKeys } from '../src/adapters/kms-throwaway-keys';
import { observedHandler } from '../src/adapters/observed-handler';
import {
  leaseHolderOf,
  localPublicKeyEncryptor,
  logTo,
  realSleeper,
  secureRandom,
  serviceLocationOf,
  sha256,
  systemClock,
  uuidGenerator,
} from '../src/adapters/runtime';
import { parseKeyActivityEvent } from '../src/adapters/schemas/key-activity-event';
import { parseSelfTestRequest } from '../src/adapters/schemas/self-test-request';
import { SnsNotifier } from '../src/adapters/sns-notifier';
import { TaggedKeyDirectory } from '../src/adapters/tagged-key-directory';
import { loadConfig, required } from '../src/config';
import { runSelfTest, type SelfTestReport } from '../src/domain/self-test';
import { roleArnIn } from '../src/domain/service-location';

const config = loadConfig(process.env, 'selfTest');
const roleName = required(config.roleNames.selfTest, 'SELF_TEST_ROLE_NAME');
const sdk = () => clientOptions(config.clientTimeoutMs);
const logger = new Logger();
// No metrics of its own: the self-test's rotations and drift must not count as the service's.
const metrics = new Metrics();
const log = logTo(logger);
const kmsClient = new KMSClient(sdk());
const noRetryKms = new KMSClient({ ...sdk(), maxAttempts: 1 });
const kms = new KmsKeyGateway(kmsClient, noRetryKms);
const directory = new TaggedKeyDirectory(new ResourceGroupsTaggingAPIClient(sdk()));
const deps = {
  keys: kms,
  crypto: kms,
  admin: kms,
  prover: kms,
  directory,
  throwaway: new KmsThrowawayKeys(kmsClient, noRetryKms),
  publicKeys: localPublicKeyEncryptor,
  notifier: new SnsNotifier(new SNSClient(sdk()), config.topicArn),
  parseActivity: parseKeyActivityEvent,
  clock: systemClock,
  random: secureRandom,
  digest: sha256,
  ids: uuidGenerator,
  sleeper: realSleeper,
  log,
  toleranceMs: config.rotationEventToleranceMs,
  onDemandLimit: config.onDemandRotationLimit,
  rotationWaitMs: config.rotationWaitMs,
  recentRotationMs: config.recentRotationMs,
  leases: new DynamoKeyLeases(new DynamoDBClient(sdk()), required(config.leaseTable, 'LEASE_TABLE')),
};

/** Manual invoke after a deploy, no payload: every flow proved on throwaway keys, then cleaned up. */
export const handler = observedHandler(
  logger,
  metrics,
  'Self-test not run',
  async (event, context): Promise<SelfTestReport> => {
    parseSelfTestRequest(event);
    const location = serviceLocationOf(context, config);
    return runSelfTest({
      ...deps,
      location,
      roleArn: roleArnIn(location, roleName),
      ...leaseHolderOf(context),
    });
  },
);
