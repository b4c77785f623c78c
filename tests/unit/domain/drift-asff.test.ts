import { describe, expect, it } from 'vitest';
import { findingIdOf, isAuditRule } from '../../../src/domain/asff';
import { type DriftAsffContext, driftSecurityHubBatch, SECURITY_HUB_RULE } from '../../../src/domain/drift-asff';
import type { DriftRuleId, Finding } from '../../../src/domain/drift-rules';
import type { ServiceLocation, Severity } from '../../../src/domain/model';

const LOCATION: ServiceLocation = { partition: 'aws', account: '111122223333', region: 'eu-west-1' };
const KEY = '1234abcd-12ab-34cd-56ef-1234567890ab';
const CONTEXT: DriftAsffContext = {
  location: LOCATION,
  now: new Date('2026-12-01T10:00:00Z'),
  eventId: 'event-1',
  cause: 'UpdateAlias by arn:aws:iam::111122223333:user/Alice at 2026-12-01T09:59:58.000Z',
  actor: 'arn:aws:iam::111122223333:user/Alice',
  remediated: new Map(),
};

const drift = (rule: DriftRuleId, severity: Severity = 'WARNING', detail = ''): Finding => ({
  rule,
  severity,
  keyId: KEY,
  summary: `${rule}${detail}`,
  evidence: {},
  fingerprint: `${rule}:${KEY}${detail}`,
});

const batch = (findings: Finding[], context: Partial<DriftAsffContext> = {}) =>
  driftSecurityHubBatch([{ keyId: KEY, aliases: ['alias/app/a'], findings, exceptions: [] }], [], {
    ...CONTEXT,
    ...context,
  });

describe('Table: SECURITY_HUB_RULE', () => {
  it("puts the drift rules that judge an audit rule's condition under that rule, and the others under ids of their own", () => {
    const auditRules = Object.fromEntries(
      Object.entries(SECURITY_HUB_RULE).flatMap(([rule, target]) =>
        'auditRule' in target ? [[rule, target.auditRule]] : [],
      ),
    );
    expect(auditRules).toEqual({
      'rotation-enabled': 'rotation-enabled',
      'rotation-period': 'rotation-period',
      'declared-alias-missing': 'declared-alias',
      'declared-alias-elsewhere': 'declared-alias',
      'policy-wildcard-principal': 'policy-wildcard-principal',
    });
    const ownIds = Object.keys(SECURITY_HUB_RULE).filter((rule) => !(rule in auditRules));
    // The audit's end-of-run resolution never takes them for its own.
    expect(ownIds.filter(isAuditRule)).toEqual([]);
  });
});

describe('Function: driftSecurityHubBatch', () => {
  it.each([
    ['WARNING', 'MEDIUM'],
    ['CRITICAL', 'CRITICAL'],
  ] as const)('maps %s drift to ASFF %s, as the audit does', (severity, label) => {
    const { imports } = batch([drift('key-pending-deletion', severity)]);
    expect(
      imports.map((finding) => [finding.Id, finding.Severity.Label, finding.FindingProviderFields.Severity.Label]),
    ).toEqual([[findingIdOf(LOCATION, KEY, 'key-pending-deletion'), label, label]]);
  });

  it('makes one finding of two drifts judged by one audit rule, naming both drift rules', () => {
    const { imports } = batch([
      drift('declared-alias-missing', 'WARNING', ':a'),
      drift('declared-alias-elsewhere', 'WARNING', ':b'),
    ]);
    expect(imports).toHaveLength(1);
    expect(imports[0]).toMatchObject({
      Id: findingIdOf(LOCATION, KEY, 'declared-alias'),
      ProductFields: expect.objectContaining({
        'kms-rotation/rule': 'declared-alias',
        'kms-rotation/driftRule': 'declared-alias-missing,declared-alias-elsewhere',
      }),
    });
  });

  it("resolves only this key's findings it last imported and no longer finds", () => {
    const earlier = batch([drift('undeclared-alias')]).imports[0];
    const otherKey = driftSecurityHubBatch(
      [{ keyId: 'other', aliases: [], findings: [drift('key-disabled')], exceptions: [] }],
      [],
      CONTEXT,
    ).imports[0];
    const fromTheAudit = {
      ...batch([drift('rotation-enabled')]).imports[0],
      ProductFields: { 'kms-rotation/auditId': 'audit-1' },
    };

    const { imports, resolved } = driftSecurityHubBatch(
      [{ keyId: KEY, aliases: [], findings: [], exceptions: [] }],
      [earlier, otherKey, fromTheAudit] as never[],
      CONTEXT,
    );

    expect(imports).toEqual([]);
    expect(resolved.map((finding) => [finding.Id, finding.RecordState, finding.Workflow.Status])).toEqual([
      [findingIdOf(LOCATION, KEY, 'undeclared-alias'), 'ARCHIVED', 'RESOLVED'],
    ]);
  });
});
