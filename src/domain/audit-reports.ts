import { csvOf } from './csv';
import {
  type OcsfComplianceFinding,
  type OcsfContext,
  ocsfFindingsOf,
  type ReportedFinding,
  UNMAPPED_NAMESPACE,
} from './ocsf';

/**
 * The audit's reports in the stack's bucket (the stack's `auditReports`; docs/audit-reports.md):
 * each slice's findings as OCSF JSON and CSV, and at the end of the audit a summary of its totals.
 * Every object of one audit is under one folder named by the day it started and its id; a slice's
 * objects by its number, so that slices never overwrite each other and a retried slice overwrites
 * its own. No SDK here: the adapter writes these objects as they are.
 */

/** Every report object's key starts with this (the audit role may write nothing else). */
export const REPORT_PREFIX = 'audit-reports';

export const CONTENT_TYPE = {
  json: 'application/json',
  csv: 'text/csv; charset=utf-8; header=present',
} as const;

export interface ReportObject {
  key: string;
  body: string;
  contentType: string;
}

/** Where the audit writes its reports. */
export interface ReportStore {
  /** Writes one object, replacing any of the same key; fails if it is not written. Returns its `s3://` URI. */
  put(object: ReportObject): Promise<string>;
}

/** `audit-reports/<yyyy>/<mm>/<dd>/<auditId>`: the day (UTC) the audit started, the same for all its slices. */
export const reportFolderOf = (auditId: string, startedAt: string): string => {
  const day = new Date(startedAt).toISOString().slice(0, 10).split('-').join('/');
  return `${REPORT_PREFIX}/${day}/${auditId}`;
};

export const sliceKeysOf = (folder: string, slice: number) => ({
  ocsf: `${folder}/slice-${slice}.ocsf.json`,
  csv: `${folder}/slice-${slice}.csv`,
});

export const summaryKeyOf = (folder: string): string => `${folder}/summary.json`;

const iso = (millis: number): string => new Date(millis).toISOString();
const own = (finding: OcsfComplianceFinding) => finding.unmapped[UNMAPPED_NAMESPACE];

/** The CSV's columns, in order (docs/audit-reports.md lists them): one row per OCSF finding. */
export const CSV_COLUMNS: readonly { name: string; value: (finding: OcsfComplianceFinding) => string }[] = [
  { name: 'finding_uid', value: (finding) => finding.finding_info.uid },
  { name: 'audit_id', value: (finding) => finding.metadata.correlation_uid },
  { name: 'time', value: (finding) => iso(finding.time) },
  { name: 'account', value: (finding) => finding.cloud.account.uid },
  { name: 'region', value: (finding) => finding.cloud.region },
  { name: 'key_id', value: (finding) => finding.resources[0]?.name ?? '' },
  { name: 'key_arn', value: (finding) => finding.resources[0]?.uid ?? '' },
  { name: 'aliases', value: (finding) => (finding.resources[0]?.data.aliases ?? []).join(' ') },
  { name: 'rule', value: (finding) => finding.compliance.control },
  { name: 'severity', value: (finding) => finding.severity },
  { name: 'status', value: (finding) => finding.status },
  { name: 'compliance_status', value: (finding) => finding.compliance.status },
  { name: 'requirements', value: (finding) => finding.compliance.requirements.join(' | ') },
  { name: 'summary', value: (finding) => finding.message },
  { name: 'exception_until', value: (finding) => own(finding).exception?.until ?? '' },
  { name: 'exception_owner', value: (finding) => own(finding).exception?.owner ?? '' },
  { name: 'exception_ticket', value: (finding) => own(finding).exception?.ticket ?? '' },
  { name: 'exception_reason', value: (finding) => own(finding).exception?.reason ?? '' },
  { name: 'remediation', value: (finding) => own(finding).remediation ?? '' },
];

/** One slice's findings (every one, uncapped) as an OCSF JSON array and as CSV. */
export const sliceReportObjects = (
  found: readonly ReportedFinding[],
  context: OcsfContext & { startedAt: string; slice: number },
): ReportObject[] => {
  const findings = ocsfFindingsOf(found, context);
  const keys = sliceKeysOf(reportFolderOf(context.auditId, context.startedAt), context.slice);
  return [
    { key: keys.ocsf, body: `${JSON.stringify(findings, null, 2)}\n`, contentType: CONTENT_TYPE.json },
    { key: keys.csv, body: csvOf(CSV_COLUMNS, findings), contentType: CONTENT_TYPE.csv },
  ];
};

/** The end of an audit: its totals, and the keys of every slice's objects. */
export const summaryReportObject = (summary: {
  auditId: string;
  startedAt: string;
  finishedAt: string;
  slices: number;
  [field: string]: unknown;
}): ReportObject => {
  const folder = reportFolderOf(summary.auditId, summary.startedAt);
  const sliceObjects = Array.from({ length: summary.slices }, (_, index) =>
    Object.values(sliceKeysOf(folder, index + 1)),
  ).flat();
  return {
    key: summaryKeyOf(folder),
    body: `${JSON.stringify({ ...summary, sliceObjects }, null, 2)}\n`,
    contentType: CONTENT_TYPE.json,
  };
};
