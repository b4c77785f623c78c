import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SNSClient } from '@aws-sdk/client-sns';
import type { ServiceConfig } from '../config';
import { required } from '../config';
import type { ServiceLocation } from '../domain/model';
import type { OrgReportDeps } from '../domain/org-audit-run';
import type { Log } from '../domain/ports';
import { clientOptions } from './aws-clients';
import { DynamoOrgAuditRuns } from './dynamodb-org-audit-runs';
import { auditReportsWhenSet } from './opt-in';
import { systemClock } from './runtime';
import { SnsNotifier } from './sns-notifier';

/** The run table, the topic and the report bucket (when on): what `orgAudit` and `orgAuditItem` both need to report a run. */
export const orgReportDependencies = (config: ServiceConfig, log: Log, productVersion: string) => {
  const sdk = () => clientOptions(config.clientTimeoutMs);
  const runs = new DynamoOrgAuditRuns(new DynamoDBClient(sdk()), required(config.orgAudit.table, 'ORG_AUDIT_TABLE'));
  const notifier = new SnsNotifier(new SNSClient(sdk()), config.topicArn);
  const reportsFor = auditReportsWhenSet(config.audit.reportsBucket, sdk(), productVersion);
  return {
    runs,
    reportDepsFor: async (location: ServiceLocation): Promise<OrgReportDeps> => {
      const reports = await reportsFor;
      return { runs, notifier, clock: systemClock, log, location, ...(reports ? { reports: reports.store } : {}) };
    },
  };
};
