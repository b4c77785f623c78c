import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import { actingLocations } from '../src/adapters/acting-location';
import { clientOptions } from '../src/adapters/aws-clients';
import { DynamoKeyLeases } from '../src/adapters/dynamodb-key-leases';
import { KmsKeyGateway } from '../src/adapters/kms-key-gateway';
import { KmsReplicaReader } from '../src/adapters/kms-replica-reader';
import { recordRotation } from '../src/adapters/metrics';
import { observedHandler } from '../src/adapters/observed-handler';
import { notifierWithOuPathsWhen } from '../src/adapters/organization-notifier';
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
import { parseRotateRequest } from '../src/adapters/schemas/rotate-request';
import { SnsNotifier } from '../src/adapters/sns-notifier';
import { SsmKeyRecordStore } from '../src/adapters/ssm-key-record-store';
import { TaggedKeyDirectory } from '../src/adapters/tagged-key-directory';
import { loadConfig, required } from '../src/config';
import { type RotateReport, RotationFailedError, rotateKey } from '../src/domain/rotate-key';
import { roleArnIn } from '../src/domain/service-location';

const config = loadConfig(process.env, 'rotate');
const sdk = () => clientOptions(config.clientTimeoutMs);
const logger = new Logger();
const metrics = new Metrics();
const log = logTo(logger);
/** KMS and the tagged-key directory where the key is: the function's own account and Region, or (organization mode) a member's. */
const actingIn = actingLocations({
  fn: 'rotate',
  memberRoleName: config.memberRoleName,
  clientOptions: sdk,
  make: (optionsIn) => {
    const kms = new KmsKeyGateway(
      new KMSClient({ ...sdk(), ...optionsIn() }),
      new KMSClient({ ...sdk(), ...optionsIn(), maxAttempts: 1 }),
    );
    return {
      keys: kms,
      crypto: kms,
      admin: kms,
      directory: new TaggedKeyDirectory(new ResourceGroupsTaggingAPIClient({ ...sdk(), ...optionsIn() })),
      prover: kms,
      // After an on-demand rotation of a multi-Region primary: its replicas, in their own Regions.
      replicas: new KmsReplicaReader((region) => new KMSClient({ ...sdk(), ...optionsIn(region) })),
    };
  },
});
const rotateRoleName = required(config.roleNames.rotate, 'ROTATE_ROLE_NAME');
const deps = {
  publicKeys: localPublicKeyEncryptor,
  records: new SsmKeyRecordStore(new SSMClient(sdk()), config.stateParameterPrefix, log),
  // Organization mode: with the account's OU path when Organizations gives it.
  notifier: notifierWithOuPathsWhen(
    config.memberRoleName !== undefined,
    new SnsNotifier(new SNSClient(sdk()), config.topicArn),
    sdk,
    log,
  ),
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
  aliasScope: config.aliasScope,
  leases: new DynamoKeyLeases(new DynamoDBClient(sdk()), required(config.leaseTable, 'LEASE_TABLE')),
};

/** Manual invoke: `{ key, strategy?, dryRun?, reason?, action?, force?, account?, region? }` -> on-demand, alias-swap or rollback. */
export const handler = observedHandler(
  logger,
  metrics,
  'Rotation not done',
  async (event, context): Promise<RotateReport> => {
    const startedAt = Date.now();
    const request = parseRotateRequest(event, config.memberRoleName !== undefined);
    logger.appendKeys({ key: request.key, action: request.action, dryRun: request.dryRun });
    try {
      const where =
        request.account && request.region ? { account: request.account, region: request.region } : undefined;
      const acting = actingIn(serviceLocationOf(context, config), where);
      const report = await rotateKey(request, {
        ...deps,
        ...acting.clients,
        location: acting.location,
        // Named in each alias-swap successor's key policy: the role that creates and finishes it.
        rotateRoleArn: acting.memberRoleArn ?? roleArnIn(acting.own, rotateRoleName),
        ...leaseHolderOf(context),
      });
      recordRotation(metrics, { report, failed: false }, Date.now() - startedAt);
      return report;
    } catch (error) {
      if (error instanceof RotationFailedError) {
        recordRotation(metrics, { report: error.report, failed: true }, Date.now() - startedAt);
      }
      throw error;
    }
  },
);
