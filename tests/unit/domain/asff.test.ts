import { describe, expect, it } from 'vitest';
import {
  ASFF_LIMITS,
  type AsffFinding,
  asffOf,
  findingIdOf,
  productArnOf,
  resolvedOf,
  securityHubBatch,
  toAsff,
} from '../../../src/domain/asff';
import type { AuditException } from '../../../src/domain/audit-exceptions';
import { type AuditFinding, CONTROLS } from '../../../src/domain/audit-rules';
import type { ServiceLocation } from '../../../src/domain/model';

const LOCATION: ServiceLocation = { partition: 'aws', account: '111122223333', region: 'eu-west-1' };
const NOW = new Date('2026-12-01T03:00:00.000Z');
const KEY = '1234abcd-12ab-34cd-56ef-1234567890ab';

const finding = (extra: Partial<AuditFinding> = {}): AuditFinding => ({
  rule: 'rotation-enabled',
  severity: 'WARNING',
  keyId: KEY,
  aliases: ['alias/app/data'],
  summary: `automatic rotation is off on ${KEY}`,
  evidence: {},
  ...extra,
});

const EXCEPTION: AuditException = { rule: 'rotation-enabled', until: '2026-12-31', owner: 'team-x', ticket: 'SEC-1' };

describe('Function: toAsff', () => {
  it('maps an open audit finding to one ASFF finding of the default product, Id by account, Region, key and rule', () => {
    // Act
    const asff = toAsff(finding(), { location: LOCATION, auditId: 'audit-1', now: NOW });

    // Assess
    expect(asff).toEqual({
      SchemaVersion: '2018-10-08',
      Id: `kms-rotation/111122223333/eu-west-1/${KEY}/rotation-enabled`,
      ProductArn: 'arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default',
      GeneratorId: 'kms-rotation/rotation-enabled',
      AwsAccountId: '111122223333',
      Region: 'eu-west-1',
      Types: ['Software and Configuration Checks/Industry and Regulatory Standards'],
      CreatedAt: NOW.toISOString(),
      UpdatedAt: NOW.toISOString(),
      Severity: { Label: 'MEDIUM' },
      FindingProviderFields: {
        Severity: { Label: 'MEDIUM' },
        Types: ['Software and Configuration Checks/Industry and Regulatory Standards'],
      },
      Title: `KMS key ${KEY}: rotation-enabled`,
      Description: `automatic rotation is off on ${KEY} (aliases: alias/app/data)`,
      ProductFields: {
        'kms-rotation/auditId': 'audit-1',
        'kms-rotation/rule': 'rotation-enabled',
        'kms-rotation/keyId': KEY,
      },
      Resources: [
        {
          Type: 'AwsKmsKey',
          Id: `arn:aws:kms:eu-west-1:111122223333:key/${KEY}`,
          Partition: 'aws',
          Region: 'eu-west-1',
        },
      ],
      Compliance: { Status: 'FAILED', RelatedRequirements: CONTROLS['rotation-enabled'] },
      Workflow: { Status: 'NEW' },
      RecordState: 'ACTIVE',
    });
  });

  it.each([
    ['INFO', 'INFORMATIONAL'],
    ['WARNING', 'MEDIUM'],
    ['CRITICAL', 'CRITICAL'],
  ] as const)('labels severity %s as %s, in Severity and FindingProviderFields', (severity, label) => {
    const asff = toAsff(finding({ severity }), { location: LOCATION, auditId: 'audit-1', now: NOW });
    expect(asff.Severity.Label).toBe(label);
    expect(asff.FindingProviderFields.Severity.Label).toBe(label);
  });

  it('names the partition in the ProductArn and the key ARN', () => {
    const asff = toAsff(finding(), {
      location: { ...LOCATION, partition: 'aws-us-gov', region: 'us-gov-west-1' },
      auditId: 'audit-1',
      now: NOW,
    });
    expect(asff.ProductArn).toBe('arn:aws-us-gov:securityhub:us-gov-west-1:111122223333:product/111122223333/default');
    expect(asff.Resources[0]).toMatchObject({
      Id: `arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/${KEY}`,
      Partition: 'aws-us-gov',
    });
  });

  it('marks a finding suppressed by an exception SUPPRESSED, still ACTIVE and FAILED, naming the exception', () => {
    const asff = toAsff({ ...finding(), exception: EXCEPTION }, { location: LOCATION, auditId: 'audit-1', now: NOW });
    expect(asff.Workflow.Status).toBe('SUPPRESSED');
    expect(asff.RecordState).toBe('ACTIVE');
    expect(asff.Compliance.Status).toBe('FAILED');
    expect(asff.Description).toContain('Suppressed by exception until 2026-12-31, owner team-x, ticket SEC-1');
    expect(JSON.parse(asff.ProductFields['kms-rotation/exception'] as string)).toEqual(EXCEPTION);
  });

  it('keeps the CreatedAt it is given, and bounds Title and Description to the ASFF limits', () => {
    const long = 'x'.repeat(5000);
    const asff = toAsff(finding({ summary: long, keyId: long }), {
      location: LOCATION,
      auditId: 'audit-1',
      now: NOW,
      createdAt: '2026-11-01T03:00:00.000Z',
    });
    expect(asff.CreatedAt).toBe('2026-11-01T03:00:00.000Z');
    expect(asff.UpdatedAt).toBe(NOW.toISOString());
    expect(asff.Title.length).toBe(ASFF_LIMITS.title);
    expect(asff.Description.length).toBe(ASFF_LIMITS.description);
  });
});

describe('Function: resolvedOf', () => {
  it('resolves and archives a finding, PASSED, stamped with the audit that no longer found it', () => {
    const open = toAsff(finding(), { location: LOCATION, auditId: 'audit-0', now: new Date('2026-11-30T03:00:00Z') });
    const resolved = resolvedOf(open, { auditId: 'audit-1', now: NOW });
    expect(resolved).toEqual({
      ...open,
      UpdatedAt: NOW.toISOString(),
      ProductFields: { ...open.ProductFields, 'kms-rotation/auditId': 'audit-1' },
      Compliance: { ...open.Compliance, Status: 'PASSED' },
      Workflow: { Status: 'RESOLVED' },
      RecordState: 'ARCHIVED',
    });
  });
  it('sends again only its own fields, not those Security Hub added to the finding it returned', () => {
    const open = toAsff(finding(), { location: LOCATION, auditId: 'audit-0', now: new Date('2026-11-30T03:00:00Z') });
    const returned = {
      ...open,
      ProcessedAt: '2026-11-30T03:00:01.000Z',
      ProductName: 'Default',
      Note: { Text: 'looking into it', UpdatedBy: 'someone', UpdatedAt: '2026-11-30T04:00:00.000Z' },
      ProductFields: { ...open.ProductFields, 'aws/securityhub/FindingId': 'arn:aws:securityhub:...' },
    } as AsffFinding;

    const resolved = resolvedOf(returned, { auditId: 'audit-1', now: NOW });

    expect(resolved).toEqual(resolvedOf(open, { auditId: 'audit-1', now: NOW }));
    expect(Object.keys(resolved.ProductFields)).not.toContain('aws/securityhub/FindingId');
  });
});

/** A finding as the drift watch imports it (no audit id), last updated at `updatedAt`. */
const driftFinding = (rule: string, updatedAt: string): AsffFinding =>
  asffOf(
    {
      rule: rule as AuditFinding['rule'],
      severity: 'CRITICAL',
      keyId: `key-${rule}`,
      aliases: [],
      summary: rule,
      controls: [],
    },
    { location: LOCATION, now: new Date(updatedAt) },
    { 'kms-rotation/driftRule': rule },
  );

describe('Function: securityHubBatch', () => {
  const earlier = (keyId: string, auditId = 'audit-0', rule: AuditFinding['rule'] = 'rotation-enabled') =>
    toAsff(finding({ keyId, rule }), { location: LOCATION, auditId, now: new Date('2026-11-01T03:00:00Z') });
  const context = {
    location: LOCATION,
    auditId: 'audit-1',
    startedAt: NOW.toISOString(),
    now: NOW,
    resolveUnseen: true,
  };

  it('updates the open finding of a key and rule under the same Id, keeping its CreatedAt', () => {
    const { imports, resolved } = securityHubBatch([finding()], [earlier(KEY)], context);
    expect(imports).toHaveLength(1);
    expect(imports[0]).toMatchObject({
      Id: findingIdOf(LOCATION, KEY, 'rotation-enabled'),
      CreatedAt: '2026-11-01T03:00:00.000Z',
      UpdatedAt: NOW.toISOString(),
      ProductFields: expect.objectContaining({ 'kms-rotation/auditId': 'audit-1' }),
    });
    expect(resolved).toEqual([]);
  });

  it('makes one finding of a rule found twice on one key, at the higher severity, saying both', () => {
    const { imports } = securityHubBatch(
      [
        finding({ rule: 'declared-alias', severity: 'WARNING', summary: 'alias/a is missing', aliases: ['alias/a'] }),
        finding({
          rule: 'declared-alias',
          severity: 'CRITICAL',
          summary: 'alias/b is elsewhere',
          aliases: ['alias/b'],
        }),
      ],
      [],
      context,
    );
    expect(imports).toHaveLength(1);
    expect(imports[0]?.Severity.Label).toBe('CRITICAL');
    expect(imports[0]?.Description).toBe('alias/a is missing; alias/b is elsewhere (aliases: alias/a, alias/b)');
  });

  it('resolves the open findings this audit did not find again, and only those', () => {
    const stillOpen = earlier('still-open');
    const fixed = earlier('fixed');
    const seenInAnEarlierSlice = earlier('earlier-slice', 'audit-1');
    const { imports, resolved } = securityHubBatch(
      [finding({ keyId: 'still-open' })],
      [stillOpen, fixed, seenInAnEarlierSlice],
      context,
    );
    expect(imports.map((item) => item.Id)).toEqual([stillOpen.Id]);
    expect(resolved).toEqual([resolvedOf(fixed, context)]);
  });

  it('resolves nothing before the end of a complete audit of the whole fleet', () => {
    const { resolved } = securityHubBatch([], [earlier('fixed')], { ...context, resolveUnseen: false });
    expect(resolved).toEqual([]);
  });

  it("leaves the drift watch's findings of rules the audit does not judge, and findings updated since it started, open", () => {
    // A drift rule with no audit equivalent: only the drift watch can tell it is gone.
    const keyDisabled = driftFinding('key-disabled', '2026-11-01T03:00:00.000Z');
    // Found by the drift watch after this audit started: the audit may have read the key before the drift.
    const newerThanTheAudit = driftFinding('rotation-enabled', '2026-12-01T03:00:00.001Z');
    const olderDrift = driftFinding('declared-alias', '2026-12-01T02:59:59.999Z');

    const { resolved } = securityHubBatch([], [keyDisabled, newerThanTheAudit, olderDrift], {
      ...context,
      now: new Date('2026-12-01T03:10:00Z'),
    });

    expect(resolved.map((item) => item.Id)).toEqual([olderDrift.Id]);
  });

  it('leaves findings of another product, or another generator, alone', () => {
    const foreign: AsffFinding[] = [
      { ...earlier('a'), ProductArn: productArnOf({ ...LOCATION, account: '999988887777' }) },
      { ...earlier('b'), GeneratorId: 'someone-else/rotation-enabled' },
    ];
    expect(securityHubBatch([], foreign, context).resolved).toEqual([]);
  });
});
