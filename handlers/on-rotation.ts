import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import { actingLocations } from '../src/adapters/acting-location';
import { clientOptions } from '../src/adapters/aws-clients';
import { DynamoKeyLeases } from '../src/adapters/dynamodb-key-leases';
import { KmsKeyGateway } from '../src/adapters/kms-key-gateway';
import { KmsReplicaReader } from '../src/adapters/kms-replica-reader';
import { recordRotationValidation } from '../src/adapters/metrics';
import { observedHandler } from '../src/adapters/observed-handler';
import { notifierWithOuPathsWhen } from '../src/adapters/organization-notifier';
import {
  leaseHolderOf,
  logTo,
  realSleeper,
  secureRandom,
  serviceLocationOf,
  sha256,
  systemClock,
} from '../src/adapters/runtime';
import { parseRotationEvent } from '../src/adapters/schemas/rotation-event';
import { SnsNotifier } from '../src/adapters/sns-notifier';
import { SsmKeyRecordStore } from '../src/adapters/ssm-key-record-store';
import { loadConfig, required } from '../src/config';
import { rotationEventLeaseWaitMs } from '../src/domain/key-lease';
import { failureOf, type RotationValidationReport, validateRotation } from '../src/domain/validate-rotation';

const config = loadConfig(process.env, 'onRotation');
const sdk = () => clientOptions(config.clientTimeoutMs);
const logger = new Logger();
const metrics = new Metrics();
const log = logTo(logger);
/** KMS where the event's key is: the function's own account and Region, or (organization mode) a member's. */
const actingIn = actingLocations({
  fn: 'onRotation',
  memberRoleName: config.memberRoleName,
  clientOptions: sdk,
  make: (optionsIn) => {
    const keys = new KmsKeyGateway(new KMSClient({ ...sdk(), ...optionsIn() }));
    return {
      keys,
      crypto: keys,
      // A multi-Region primary's replicas, read in their own Regions with the same client options.
      replicas: new KmsReplicaReader((region) => new KMSClient({ ...sdk(), ...optionsIn(region) })),
    };
  },
});
const deps = {
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
  log,
  toleranceMs: config.rotationEventToleranceMs,
  leases: new DynamoKeyLeases(new DynamoDBClient(sdk()), required(config.leaseTable, 'LEASE_TABLE')),
};

/** `KMS CMK Rotation` -> validate the new key material and the aliases, record, notify. */
export const handler = observedHandler(
  logger,
  metrics,
  'Rotation event not processed',
  async (event, context): Promise<RotationValidationReport> => {
    const startedAt = Date.now();
    const rotation = parseRotationEvent(event);
    logger.appendKeys({ keyId: rotation.keyId, eventId: rotation.eventId });
    const acting = actingIn(serviceLocationOf(context, config), rotation);
    const report = await validateRotation(rotation, {
      ...deps,
      ...acting.clients,
      location: acting.location,
      ...leaseHolderOf(context),
      leaseWait: { ms: rotationEventLeaseWaitMs(context.getRemainingTimeInMillis()), sleeper: realSleeper },
    });
    recordRotationValidation(metrics, report, Date.now() - startedAt);
    const failure = failureOf(report);
    if (failure) throw failure;
    logger.info(report.summary, { outcome: report.outcome });
    return report;
  },
);
