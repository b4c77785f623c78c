import { describe, expect, it } from 'vitest';
import type { AuditException } from '../../../src/domain/audit-exceptions';
import { type AuditFinding, type AuditRuleId, CONTROLS } from '../../../src/domain/audit-rules';
import type { ServiceLocation, Severity } from '../../../src/domain/model';
import { ocsfFindingsOf, REMEDIATION, STANDARDS, toOcsf } from '../../../src/domain/ocsf';

const LOCATION: ServiceLocation = { partition: 'aws-us-gov', account: '111122223333', region: 'us-gov-west-1' };
const NOW = new Date('2026-12-01T03:00:00.000Z');
const KEY = '1234abcd-12ab-34cd-56ef-1234567890ab';
const CONTEXT = { location: LOCATION, auditId: 'audit-1', now: NOW, productVersion: '1.2.3' };

const finding = (extra: Partial<AuditFinding> = {}): AuditFinding => ({
  rule: 'rotation-enabled',
  severity: 'WARNING',
  keyId: KEY,
  aliases: ['alias/app/data'],
  summary: `automatic rotation is off on ${KEY}`,
  evidence: { rotationEnabled: false },
  ...extra,
});

const EXCEPTION: AuditException = {
  rule: 'rotation-enabled',
  until: '2026-12-31',
  owner: 'team-x',
  ticket: 'SEC-1',
  reason: 'legacy-client',
};

describe('Function: toOcsf', () => {
  it('maps an open audit finding to an OCSF 1.3.0 Compliance Finding, every field', () => {
    // Act
    const ocsf = toOcsf(finding(), CONTEXT);

    // Assess
    expect(ocsf).toEqual({
      activity_id: 1,
      activity_name: 'Create',
      category_uid: 2,
      category_name: 'Findings',
      class_uid: 2003,
      class_name: 'Compliance Finding',
      type_uid: 200301,
      type_name: 'Compliance Finding: Create',
      severity_id: 3,
      severity: 'Medium',
      status_id: 1,
      status: 'New',
      time: NOW.getTime(),
      message: `automatic rotation is off on ${KEY}`,
      metadata: {
        version: '1.3.0',
        product: { name: 'kms-rotation', vendor_name: 'kms-rotation', version: '1.2.3' },
        correlation_uid: 'audit-1',
      },
      finding_info: {
        uid: `kms-rotation/111122223333/us-gov-west-1/${KEY}/rotation-enabled`,
        title: `KMS key ${KEY}: rotation-enabled`,
        desc: `automatic rotation is off on ${KEY}`,
        types: ['kms-rotation/rotation-enabled'],
        created_time: NOW.getTime(),
        last_seen_time: NOW.getTime(),
      },
      compliance: {
        control: 'rotation-enabled',
        standards: ['CIS AWS Foundations Benchmark', 'AWS Foundational Security Best Practices'],
        requirements: CONTROLS['rotation-enabled'],
        status_id: 3,
        status: 'Fail',
      },
      remediation: { desc: REMEDIATION['rotation-enabled'] },
      resources: [
        {
          uid: `arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/${KEY}`,
          name: KEY,
          type: 'AWS::KMS::Key',
          region: 'us-gov-west-1',
          cloud_partition: 'aws-us-gov',
          data: { aliases: ['alias/app/data'] },
        },
      ],
      cloud: {
        provider: 'AWS',
        region: 'us-gov-west-1',
        account: { uid: '111122223333', type_id: 10, type: 'AWS Account' },
      },
      unmapped: {
        'kms-rotation': { auditId: 'audit-1', rule: 'rotation-enabled', evidence: { rotationEnabled: false } },
      },
    });
  });

  it.each([
    ['INFO', 1, 'Informational'],
    ['WARNING', 3, 'Medium'],
    ['CRITICAL', 5, 'Critical'],
  ] as [Severity, number, string][])('maps severity %s to severity_id %i (%s)', (severity, id, name) => {
    expect(toOcsf(finding({ severity }), CONTEXT)).toMatchObject({ severity_id: id, severity: name });
  });

  it('maps a finding an exception suppresses to status Suppressed, still failing, the exception in unmapped and the status detail', () => {
    const ocsf = toOcsf({ ...finding(), exception: EXCEPTION }, CONTEXT);

    expect(ocsf).toMatchObject({
      activity_id: 1,
      type_uid: 200301,
      status_id: 3,
      status: 'Suppressed',
      compliance: {
        status_id: 3,
        status: 'Fail',
        status_detail: 'suppressed by exception until 2026-12-31, owner team-x, ticket SEC-1, reason legacy-client',
      },
      unmapped: { 'kms-rotation': { exception: EXCEPTION } },
    });
  });

  it('maps a finding this audit remediated to a closed, resolved, passing finding saying what was done', () => {
    const ocsf = toOcsf({ ...finding(), remediation: 'enabled automatic rotation every 365 days' }, CONTEXT);

    expect(ocsf).toMatchObject({
      activity_id: 3,
      activity_name: 'Close',
      type_uid: 200303,
      type_name: 'Compliance Finding: Close',
      status_id: 4,
      status: 'Resolved',
      compliance: {
        status_id: 1,
        status: 'Pass',
        status_detail: 'remediated by this audit: enabled automatic rotation every 365 days',
      },
      unmapped: { 'kms-rotation': { remediation: 'enabled automatic rotation every 365 days' } },
    });
    expect(ocsf.unmapped['kms-rotation']).not.toHaveProperty('exception');
  });

  it('has standards, requirements and a remediation for every rule (compliance.standards is required)', () => {
    for (const rule of Object.keys(CONTROLS) as AuditRuleId[]) {
      const ocsf = toOcsf(finding({ rule }), CONTEXT);
      expect(ocsf.compliance.standards.length, rule).toBeGreaterThan(0);
      expect(ocsf.compliance.standards).toEqual(STANDARDS[rule]);
      expect(ocsf.compliance.requirements).toEqual(CONTROLS[rule]);
      expect(ocsf.remediation.desc.length, rule).toBeGreaterThan(0);
    }
  });
});

describe('Function: ocsfFindingsOf', () => {
  it('makes one finding per key and rule, at the higher severity, saying both, sorted by id', () => {
    const found = [
      finding({ keyId: 'b-key', rule: 'declared-alias', summary: 'alias/x missing', aliases: ['alias/x'] }),
      finding({ keyId: 'a-key' }),
      finding({
        keyId: 'b-key',
        rule: 'declared-alias',
        severity: 'CRITICAL',
        summary: 'alias/y elsewhere',
        aliases: ['alias/y'],
      }),
    ];

    const ocsf = ocsfFindingsOf(found, CONTEXT);

    expect(ocsf.map((item) => item.finding_info.uid.split('/').slice(3).join('/'))).toEqual([
      'a-key/rotation-enabled',
      'b-key/declared-alias',
    ]);
    expect(ocsf[1]).toMatchObject({
      severity: 'Critical',
      message: 'alias/x missing; alias/y elsewhere',
      resources: [{ data: { aliases: ['alias/x', 'alias/y'] } }],
    });
  });
});
