import type { SecurityFindings } from '../domain/asff';
import type { ReportStore } from '../domain/audit-reports';
import type { ServiceLocation } from '../domain/model';
import type { Log } from '../domain/ports';

/**
 * The stack's opt-in outputs (`securityHubFindings`, `auditReports`). When one is off, nothing of
 * its service is loaded, constructed or called: its client and adapter are imported only when on,
 * so that they cost no cold start otherwise. The client is made once, at initialisation, and
 * serves every invocation.
 */

/** Makes this service's Security Hub findings for one invocation's account and Region. */
export type SecurityFindingsFor = (location: ServiceLocation, log: Log) => SecurityFindings;

export const securityHubWhenOn = (on: boolean, clientOptions: object): Promise<SecurityFindingsFor> | undefined =>
  on
    ? Promise.all([import('@aws-sdk/client-securityhub'), import('./security-hub-findings')]).then(
        ([{ SecurityHubClient }, { SecurityHubFindings }]) => {
          const client = new SecurityHubClient(clientOptions);
          return (location, log) => new SecurityHubFindings(client, location, log);
        },
      )
    : undefined;

/** The audit's report objects, written to the stack's bucket when `auditReports` set one. */
export const auditReportsWhenSet = (
  bucket: string | undefined,
  clientOptions: object,
  productVersion: string,
): Promise<{ store: ReportStore; productVersion: string }> | undefined =>
  bucket
    ? Promise.all([import('@aws-sdk/client-s3'), import('./s3-audit-reports')]).then(
        ([{ S3Client }, { S3AuditReports }]) => ({
          store: new S3AuditReports(new S3Client(clientOptions), bucket),
          productVersion,
        }),
      )
    : undefined;
