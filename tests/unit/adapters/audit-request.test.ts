import { describe, expect, it } from 'vitest';
import { parseAuditRequest } from '../../../src/adapters/schemas/audit-request';
import type { AuditCheckpoint, AuditTotals } from '../../../src/domain/audit-fleet';
import { InvalidInputError } from '../../../src/domain/errors';

describe('Function: parseAuditRequest', () => {
  it.each([undefined, null, '', {}])('reads no payload (%s) as no options: a report, not a remediation', (payload) => {
    expect(parseAuditRequest(payload, true)).toEqual({ remediate: false, keyIds: undefined, checkpoint: undefined });
  });

  it('remediates on schedule only when the stack says so', () => {
    expect(parseAuditRequest({ scheduled: true }, true).remediate).toBe(true);
    expect(parseAuditRequest({ scheduled: true }, false).remediate).toBe(false);
  });

  it.each([
    ['a string with content', 'remediate'],
    ['an unknown field', { remediat: true }],
  ])('refuses %s, naming what it expects', (_, payload) => {
    expect(() => parseAuditRequest(payload, false)).toThrow(InvalidInputError);
    expect(() => parseAuditRequest(payload, false)).toThrow(/Expected \{"remediate"\?: true/);
  });

  it('accepts the checkpoint a slice hands over with every total the audit keeps (a new total must be added to the schema too)', () => {
    // Required<>: a total added to AuditTotals and not listed here fails the typecheck.
    const totals: Required<AuditTotals> = {
      keysAudited: 3,
      byClass: { 'auto-rotatable': 3 },
      findingsByRule: { 'rotation-enabled': 1 },
      bySeverity: { WARNING: 1 },
      nonCompliantKeys: 1,
      nonCompliantByRule: { 'rotation-enabled': 1 },
      remediated: 0,
      suppressed: 0,
      suppressedByRule: {},
      expiredExceptions: 0,
      declaredSeen: ['1234abcd-12ab-34cd-56ef-1234567890ab'],
      reconciled: 1,
      reconcileFailed: 0,
      reconcileUnfinished: 0,
      keyNotifications: { ImportedMaterialExpiring: 1, RotationDue: 2 },
    };
    const checkpoint: AuditCheckpoint = {
      auditId: 'audit-1',
      startedAt: '2026-12-02T03:00:00.000Z',
      marker: 'next-page',
      slice: 2,
      totals,
    };

    expect(parseAuditRequest({ remediate: false, checkpoint }, false).checkpoint).toEqual(checkpoint);
  });
});
