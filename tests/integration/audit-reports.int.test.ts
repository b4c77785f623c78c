import {
  CreateAliasCommand,
  CreateKeyCommand,
  EnableKeyRotationCommand,
  PutKeyPolicyCommand,
} from '@aws-sdk/client-kms';
import { GetBucketEncryptionCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { version } from '../../package.json';
import { invokeBundled } from '../../scripts/lib/invoke';
import type { DeployedStack } from '../../scripts/lib/stack';
import { csvRecords } from '../unit/support/parse-csv';
import { deployTestStack, type TestStack } from './support/deployed-stack';
import { WILDCARD_POLICY } from './support/key-policies';

interface AuditReport {
  auditId: string;
  startedAt: string;
  complete: boolean;
  slice: number;
  totals: Record<string, unknown> & {
    findingsByRule: Record<string, number>;
    suppressedByRule: Record<string, number>;
  };
  findings: { keyId: string; rule: string; severity: string; remediated?: boolean }[];
  suppressed: { keyId: string; rule: string; exception: Record<string, string> }[];
  reportObjects?: string[];
  summary: string;
}

interface Ocsf {
  class_uid: number;
  metadata: { version: string; product: { name: string; version: string }; correlation_uid: string };
  type_uid: number;
  severity: string;
  status: string;
  status_id: number;
  finding_info: { uid: string };
  compliance: { control: string; status: string };
  resources: { uid: string; type: string }[];
  cloud: { account: { uid: string } };
  unmapped: { 'kms-rotation': { auditId: string; exception?: Record<string, string> } };
}

/**
 * The audit with auditReports on, against moto: its report objects read back from the stack's
 * bucket with the S3 client, and compared with the report the invocation returned. The expected
 * findings come from the seeded keys, written down here.
 */
describe('Function: audit with auditReports on, against the emulator', () => {
  const region = 'us-east-1';
  let deployed: TestStack;
  let s3: S3Client;
  let bucket: string;
  let account: string;
  const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
  const seeded = { notRotating: [] as string[], wildcard: '', excepted: '', remediable: '' };

  beforeAll(async () => {
    deployed = await deployTestStack('itaudrep', { region, params: { auditReports: 'true' } });
    s3 = new S3Client({
      endpoint: deployed.emulator.endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    bucket = deployed.stack.outputs.AuditReportsBucketName as string;
    account = (deployed.stack.outputs.KeyArn as string).split(':')[4] as string;
    const kms = deployed.clients.kms;
    const create = async (tags: Record<string, string>) =>
      (
        await kms.send(
          new CreateKeyCommand({ Tags: Object.entries(tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })) }),
        )
      ).KeyMetadata?.KeyId as string;
    for (let index = 0; index < 3; index += 1) seeded.notRotating.push(await create({ team: 'reports' }));
    seeded.wildcard = await create({ 'kms-rotation:managed': 'true', 'kms-rotation:aliases': 'alias/reports/open' });
    await kms.send(new EnableKeyRotationCommand({ KeyId: seeded.wildcard }));
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/reports/open', TargetKeyId: seeded.wildcard }));
    await kms.send(new PutKeyPolicyCommand({ KeyId: seeded.wildcard, PolicyName: 'default', Policy: WILDCARD_POLICY }));
    // An owner a spreadsheet would take for a formula: the CSV must defuse it.
    seeded.excepted = await create({
      'kms-rotation:managed': 'true',
      'kms-rotation:exception:rotation-enabled': `until=${day(30)} owner=@team-x ticket=SEC-1`,
    });
    seeded.remediable = await create({ 'kms-rotation:managed': 'true' });
  }, 600_000);

  afterAll(async () => {
    await deployed?.stop();
  });

  const runAudit = async (payload: unknown): Promise<AuditReport> => {
    const outcome = await invokeBundled({
      endpoint: deployed.emulator.endpoint,
      region,
      fn: deployed.stack.functions.audit as DeployedStack['functions'][string],
      event: payload,
    });
    expect(outcome.ok, JSON.stringify(outcome.ok ? '' : outcome.error)).toBe(true);
    return (outcome as { result: AuditReport }).result;
  };

  const read = async (key: string) => {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return {
      contentType: object.ContentType,
      encryption: object.ServerSideEncryption,
      body: await (object.Body as { transformToString(): Promise<string> }).transformToString(),
    };
  };

  const idOf = (keyId: string, rule: string) => `kms-rotation/${account}/${region}/${keyId}/${rule}`;

  it('writes every finding of the audit as OCSF JSON and CSV, and its totals as a summary, matching the report', async () => {
    // Act
    const report = await runAudit({ remediate: true });

    // Assess: the objects the report names, and only those, are in the bucket
    expect(report.complete).toBe(true);
    const folder = `audit-reports/${report.startedAt.slice(0, 10).replaceAll('-', '/')}/${report.auditId}`;
    expect(report.reportObjects).toEqual([
      `s3://${bucket}/${folder}/slice-1.ocsf.json`,
      `s3://${bucket}/${folder}/slice-1.csv`,
      `s3://${bucket}/${folder}/summary.json`,
    ]);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${folder}/` }));
    expect((listed.Contents ?? []).map((object) => object.Key).sort()).toEqual(
      [`${folder}/slice-1.csv`, `${folder}/slice-1.ocsf.json`, `${folder}/summary.json`].sort(),
    );

    // Assess: OCSF JSON, one Compliance Finding per finding of the report, by status
    const ocsfObject = await read(`${folder}/slice-1.ocsf.json`);
    expect(ocsfObject.contentType).toBe('application/json');
    expect(ocsfObject.encryption).toBe('AES256');
    const ocsf = JSON.parse(ocsfObject.body) as Ocsf[];
    const byStatus = (status: string) =>
      ocsf
        .filter((finding) => finding.status === status)
        .map((finding) => finding.finding_info.uid)
        .sort();
    expect(byStatus('New')).toEqual(
      report.findings
        .filter((finding) => !finding.remediated)
        .map((finding) => idOf(finding.keyId, finding.rule))
        .sort(),
    );
    expect(byStatus('Resolved')).toEqual([idOf(seeded.remediable, 'rotation-enabled')]);
    expect(byStatus('Suppressed')).toEqual([idOf(seeded.excepted, 'rotation-enabled')]);
    expect(ocsf).toHaveLength(report.findings.length + report.suppressed.length);
    // The seeded non-compliance, written down: three keys with rotation off, one open policy.
    expect(byStatus('New')).toEqual(
      [
        ...seeded.notRotating.map((keyId) => idOf(keyId, 'rotation-enabled')),
        idOf(seeded.wildcard, 'policy-wildcard-principal'),
      ].sort(),
    );
    // Counts per rule: the report's totals (open and remediated, then suppressed).
    const countByRule = (findings: Ocsf[]) => {
      const counts: Record<string, number> = {};
      for (const finding of findings)
        counts[finding.compliance.control] = (counts[finding.compliance.control] ?? 0) + 1;
      return counts;
    };
    expect(countByRule(ocsf.filter((finding) => finding.status !== 'Suppressed'))).toEqual(
      report.totals.findingsByRule,
    );
    expect(countByRule(ocsf.filter((finding) => finding.status === 'Suppressed'))).toEqual(
      report.totals.suppressedByRule,
    );
    const wildcard = ocsf.find(
      (finding) => finding.finding_info.uid === idOf(seeded.wildcard, 'policy-wildcard-principal'),
    );
    expect(wildcard).toMatchObject({
      class_uid: 2003,
      type_uid: 200301,
      metadata: { version: '1.3.0', product: { name: 'kms-rotation', version }, correlation_uid: report.auditId },
      severity: 'Critical',
      status_id: 1,
      compliance: { control: 'policy-wildcard-principal', status: 'Fail' },
      resources: [{ uid: `arn:aws:kms:${region}:${account}:key/${seeded.wildcard}`, type: 'AWS::KMS::Key' }],
      cloud: { account: { uid: account } },
      unmapped: { 'kms-rotation': { auditId: report.auditId } },
    });
    const excepted = ocsf.find((finding) => finding.status === 'Suppressed');
    expect(excepted?.unmapped['kms-rotation'].exception).toEqual({
      rule: 'rotation-enabled',
      until: day(30),
      owner: '@team-x',
      ticket: 'SEC-1',
    });

    // Assess: CSV, one row per OCSF finding, the same ids and statuses, the owner defused
    const csvObject = await read(`${folder}/slice-1.csv`);
    expect(csvObject.contentType).toBe('text/csv; charset=utf-8; header=present');
    const rows = csvRecords(csvObject.body);
    expect(rows.map((row) => `${row.finding_uid} ${row.status} ${row.severity}`).sort()).toEqual(
      ocsf.map((finding) => `${finding.finding_info.uid} ${finding.status} ${finding.severity}`).sort(),
    );
    expect(rows.find((row) => row.status === 'Suppressed')).toMatchObject({
      key_id: seeded.excepted,
      rule: 'rotation-enabled',
      exception_owner: "'@team-x",
      exception_until: day(30),
      audit_id: report.auditId,
    });
    expect(rows.find((row) => row.status === 'Resolved')?.remediation).toContain('enabled automatic rotation');

    // Assess: the summary, the report's totals over the whole audit
    const summaryObject = await read(`${folder}/summary.json`);
    expect(summaryObject.contentType).toBe('application/json');
    const { declaredSeen: _seen, ...totals } = report.totals;
    expect(JSON.parse(summaryObject.body)).toMatchObject({
      auditId: report.auditId,
      startedAt: report.startedAt,
      slices: 1,
      remediate: true,
      totals,
      summary: report.summary,
      sliceObjects: [`${folder}/slice-1.ocsf.json`, `${folder}/slice-1.csv`],
    });
  });
  // moto 5.2's CloudFormation applies only BucketEncryption (and Tags) of an AWS::S3::Bucket, and
  // no AWS::S3::BucketPolicy: the bucket's other settings are asserted on the template only
  // (tests/template/template.test.ts).
  it('deploys the bucket encrypted with SSE-S3 by default', async () => {
    const encryption = await s3.send(new GetBucketEncryptionCommand({ Bucket: bucket }));
    expect(
      encryption.ServerSideEncryptionConfiguration?.Rules?.map((rule) => rule.ApplyServerSideEncryptionByDefault),
    ).toEqual([expect.objectContaining({ SSEAlgorithm: 'AES256' })]);
  });
});
