import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { version } from '../package.json';
import { auditDependencies } from '../src/adapters/audit-dependencies';
import { recordAudit } from '../src/adapters/metrics';
import { observedHandler } from '../src/adapters/observed-handler';
import { leaseHolderOf, logTo, serviceLocationOf } from '../src/adapters/runtime';
import { parseAuditRequest } from '../src/adapters/schemas/audit-request';
import { loadConfig } from '../src/config';
import { type AuditReport, auditFleet } from '../src/domain/audit-fleet';

const config = loadConfig(process.env, 'audit');
const logger = new Logger();
const metrics = new Metrics();
const log = logTo(logger);
const { depsFor, securityHubFor, reportsFor } = auditDependencies(config, 'audit', log, version);

/**
 * Daily schedule or manual invoke: every key of the account and Region, judged by the rules of its
 * class; in organization mode, `account` and `region` name a member account-Region to audit instead.
 */
export const handler = observedHandler(
  logger,
  metrics,
  'Audit not completed',
  async (event, context): Promise<AuditReport> => {
    const request = parseAuditRequest(event, config.audit.remediateOnSchedule, config.memberRoleName !== undefined);
    const before = request.checkpoint?.totals.keysAudited ?? 0;
    const own = serviceLocationOf(context, config);
    const member = request.account !== undefined && request.region !== undefined;
    const location = member ? { ...own, account: request.account as string, region: request.region as string } : own;
    const [hubFor, reports] = await Promise.all([securityHubFor, reportsFor]);
    const report = await auditFleet(request, {
      ...depsFor(location, own),
      // Security Hub takes findings of the caller's own account only (docs/org-audit.md): none for a member.
      ...(hubFor && !member ? { securityHub: hubFor(location, log) } : {}),
      ...(reports ? { reports } : {}),
      ...leaseHolderOf(context),
    });
    recordAudit(metrics, report, report.totals.keysAudited - before);
    return report;
  },
);
