import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import { type Acting, actingLocations } from '../src/adapters/acting-location';
import { clientOptions } from '../src/adapters/aws-clients';
import { DynamoKeyLeases } from '../src/adapters/dynamodb-key-leases';
import { KmsKeyGateway } from '../src/adapters/kms-key-gateway';
import { recordDrift } from '../src/adapters/metrics';
import { observedHandler } from '../src/adapters/observed-handler';
import { type SecurityFindingsFor, securityHubWhenOn } from '../src/adapters/opt-in';
import { notifierWithOuPathsWhen } from '../src/adapters/organization-notifier';
import {
  leaseHolderOf,
  localPublicKeyEncryptor,
  logTo,
  realSleeper,
  secureRandom,
  serviceLocationOf,
  systemClock,
} from '../src/adapters/runtime';
import { parseKeyActivityEvent } from '../src/adapters/schemas/key-activity-event';
import { SnsNotifier } from '../src/adapters/sns-notifier';
import { SsmKeyRecordStore } from '../src/adapters/ssm-key-record-store';
import { TaggedKeyDirectory } from '../src/adapters/tagged-key-directory';
import { loadConfig, required } from '../src/config';
import { EVENT_LEASE_WAIT_MS } from '../src/domain/key-lease';
import { roleArnIn } from '../src/domain/service-location';
import { type DriftReport, watchKeyActivity } from '../src/domain/watch-key-activity';

const config = loadConfig(process.env, 'onKeyActivity');
const sdk = () => clientOptions(config.clientTimeoutMs);
const logger = new Logger();
const metrics = new Metrics();
const log = logTo(logger);
/** KMS and the tagged-key directory where the event happened: the function's own account and Region, or a member's. */
const actingIn = actingLocations({
  fn: 'onKeyActivity',
  memberRoleName: config.memberRoleName,
  clientOptions: sdk,
  make: (optionsIn) => {
    const kms = new KmsKeyGateway(new KMSClient({ ...sdk(), ...optionsIn() }));
    return {
      keys: kms,
      admin: kms,
      crypto: kms,
      prover: kms,
      directory: new TaggedKeyDirectory(new ResourceGroupsTaggingAPIClient({ ...sdk(), ...optionsIn() })),
    };
  },
});
/** The stack's function roles: their calls are the service's own, never drift. */
const serviceRoleNames = Object.values(config.roleNames).filter((name): name is string => name !== undefined);
const deps = {
  publicKeys: localPublicKeyEncryptor,
  random: secureRandom,
  records: new SsmKeyRecordStore(new SSMClient(sdk()), config.stateParameterPrefix, log),
  // Organization mode: with the account's OU path when Organizations gives it.
  notifier: notifierWithOuPathsWhen(
    config.memberRoleName !== undefined,
    new SnsNotifier(new SNSClient(sdk()), config.topicArn),
    sdk,
    log,
  ),
  clock: systemClock,
  log,
  mode: config.driftMode,
  remediateRules: config.driftRemediateRules,
  aliasScope: config.aliasScope,
  leases: new DynamoKeyLeases(new DynamoDBClient(sdk()), required(config.leaseTable, 'LEASE_TABLE')),
  leaseWait: { ms: EVENT_LEASE_WAIT_MS, sleeper: realSleeper },
};

// Opt-in: loaded only when the stack's securityHubFindings is on.
const securityHubFor = securityHubWhenOn(config.securityHubFindings, sdk());

/**
 * Security Hub stays central, and BatchImportFindings takes only findings of the calling account
 * (docs/on-key-activity.md#organization-mode): a member's drift is notified, not imported. Said once.
 */
let toldNoHubInMembers = false;
const securityHubOf = (hubFor: SecurityFindingsFor, acting: Acting<unknown>) => {
  if (!acting.inMember) return { securityHub: hubFor(acting.location, log) };
  if (!toldNoHubInMembers) {
    toldNoHubInMembers = true;
    logger.warn(
      'Drift in member accounts is not imported into Security Hub: it takes findings of its own account only',
      {
        account: acting.location.account,
      },
    );
  }
  return {};
};

/** CloudTrail records of KMS management calls, and KMS deletion/expiration events -> drift, notified, optionally put back. */
export const handler = observedHandler(
  logger,
  metrics,
  'Key activity not processed',
  async (event, context): Promise<DriftReport> => {
    const activity = parseKeyActivityEvent(event);
    logger.appendKeys({ eventId: activity.eventId, call: activity.name });
    const acting = actingIn(serviceLocationOf(context, config), activity);
    const hubFor = await securityHubFor;
    const report = await watchKeyActivity(activity, {
      ...deps,
      ...acting.clients,
      location: acting.location,
      ...(hubFor ? securityHubOf(hubFor, acting) : {}),
      // The stack's own roles are in its own account; in a member, its changes are the member role's sessions.
      serviceRoleArns: serviceRoleNames.map((name) => roleArnIn(acting.own, name)),
      ...(acting.memberRoleArn ? { memberRole: { roleArn: acting.memberRoleArn } } : {}),
      ...leaseHolderOf(context),
    });
    recordDrift(metrics, report);
    return report;
  },
);
