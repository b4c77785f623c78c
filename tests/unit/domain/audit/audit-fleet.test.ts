import { beforeEach, describe, expect, it } from 'vitest';
import { type AuditDeps, type AuditRequest, auditFleet } from '../../../../src/domain/audit-fleet';
import type { ReportObject, ReportStore } from '../../../../src/domain/audit-reports';
import { driftSecurityHubBatch } from '../../../../src/domain/drift-asff';
import type { DriftRuleId } from '../../../../src/domain/drift-rules';
import { AwsServiceError, PreconditionFailedError } from '../../../../src/domain/errors';
import type { KeyDescription, Notification, Tags } from '../../../../src/domain/model';
import type { OcsfComplianceFinding } from '../../../../src/domain/ocsf';
import { MemoryKeyLeases } from '../../support/memory-leases';
import { MemorySecurityHub } from '../../support/memory-security-hub';
import { FakeClock, FakeSleeper } from '../rotate/support/world';

const ACCOUNT = '111122223333';
const NOW = new Date('2026-11-22T00:00:00Z');

interface FakeKey {
  key: KeyDescription;
  tags: Tags;
  rotation: boolean;
}

/** A fleet of keys listed in pages, counting every read by API. */
class FakeFleet {
  keys: FakeKey[] = [];
  aliases: { aliasName: string; targetKeyId?: string }[] = [];
  calls: Record<string, number> = {};
  described: string[] = [];
  enabled: string[] = [];

  constructor(private readonly pageSize: number) {}

  add(id: string, overrides: Partial<KeyDescription> = {}, tags: Tags = {}, rotation = true): void {
    this.keys.push({
      key: {
        keyId: id,
        arn: `arn:aws:kms:us-east-1:${ACCOUNT}:key/${id}`,
        keyState: 'Enabled',
        keySpec: 'SYMMETRIC_DEFAULT',
        keyUsage: 'ENCRYPT_DECRYPT',
        origin: 'AWS_KMS',
        keyManager: 'CUSTOMER',
        creationDate: new Date('2026-06-01T00:00:00Z'),
        ...overrides,
      },
      tags,
      rotation,
    });
  }

  private count(api: string): void {
    this.calls[api] = (this.calls[api] ?? 0) + 1;
  }

  get(id: string): FakeKey {
    const found = this.keys.find((item) => item.key.keyId === id);
    if (!found) throw new PreconditionFailedError('key-not-found', `${id} not found`);
    return found;
  }

  fleet = {
    listKeysPage: async (marker?: string) => {
      this.count('ListKeys');
      const start = marker ? Number(marker) : 0;
      const keyIds = this.keys.slice(start, start + this.pageSize).map((item) => item.key.keyId);
      const next = start + this.pageSize;
      return { keyIds, nextMarker: next < this.keys.length ? String(next) : undefined };
    },
    listAllAliases: async () => {
      this.count('ListAliases');
      return this.aliases;
    },
  };

  reader = {
    describeKey: async (id: string) => {
      this.count('DescribeKey');
      this.described.push(id);
      return this.get(id).key;
    },
    listTags: async (id: string) => {
      this.count('ListResourceTags');
      return this.get(id).tags;
    },
    getRotationStatus: async (id: string) => {
      this.count('GetKeyRotationStatus');
      return { enabled: this.get(id).rotation };
    },
    listRotations: async () => {
      this.count('ListKeyRotations');
      return [];
    },
    listAliasesOf: async () => [],
  };

  admin = {
    getKeyPolicy: async () => {
      this.count('GetKeyPolicy');
      return JSON.stringify({ Statement: [] });
    },
    enableKeyRotation: async (id: string) => {
      this.enabled.push(id);
      this.get(id).rotation = true;
    },
  };
}

const MANAGED: Tags = { 'kms-rotation:managed': 'true' };

describe('Function: auditFleet', () => {
  let fleet: FakeFleet;
  let published: Notification[];
  let continuations: AuditRequest[];
  let remaining: number[];
  let declared: string[];
  let clock: FakeClock;
  let leases: MemoryKeyLeases;

  const deps = (): AuditDeps => ({
    fleet: fleet.fleet,
    keys: fleet.reader,
    admin: fleet.admin as unknown as AuditDeps['admin'],
    records: { declaredKeyIds: async () => declared },
    continuation: { continueLater: async (request) => void continuations.push(request) },
    notifier: { publish: async (notification) => void published.push(notification) },
    clock,
    ids: { newId: () => 'audit-1' },
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    location: { partition: 'aws', account: ACCOUNT, region: 'us-east-1' },
    limits: { maxRotationPeriodDays: 365, maxMaterialAgeDays: 400 },
    concurrency: 4,
    remainingMs: () => remaining.shift() ?? 900_000,
    handOverBelowMs: 120_000,
    maxFindingsListed: 500,
    leases,
    holder: 'kms-rotation-test-audit request-1',
    leaseWait: { ms: 10_000, sleeper: new FakeSleeper(clock) },
  });

  beforeEach(() => {
    fleet = new FakeFleet(10);
    clock = new FakeClock(NOW);
    leases = new MemoryKeyLeases(clock);
    published = [];
    continuations = [];
    remaining = [];
    declared = [];
  });

  it('pages through every key once, reads the aliases once, and makes only the calls each class needs', async () => {
    for (let index = 0; index < 25; index += 1) fleet.add(`sym-${index}`);
    fleet.add('rsa', { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' });
    fleet.add('aws', { keyManager: 'AWS' });
    fleet.add('disabled', { keyState: 'Disabled' });

    const report = await auditFleet({ remediate: false }, deps());

    expect(report.complete).toBe(true);
    expect(report.totals.keysAudited).toBe(28);
    expect(new Set(fleet.described).size).toBe(28);
    expect(fleet.calls).toEqual({
      ListKeys: 3,
      ListAliases: 1,
      DescribeKey: 28,
      ListResourceTags: 27, // not the AWS managed key
      GetKeyRotationStatus: 25, // symmetric keys only
      ListKeyRotations: 25,
    });
    expect(report.totals.byClass).toEqual({ 'auto-rotatable': 25, 'alias-swap': 1, 'aws-managed': 1, inactive: 1 });
  });

  it('hands the rest to a further invocation when time runs short, and the slices add up with no key lost or counted twice', async () => {
    for (let index = 0; index < 35; index += 1) fleet.add(`k-${index}`, {}, {}, index % 5 !== 0);
    remaining = [500_000, 60_000];

    const first = await auditFleet({ remediate: false }, deps());

    expect(first.complete).toBe(false);
    expect(published).toEqual([]);
    expect(continuations).toHaveLength(1);
    expect(continuations[0]?.checkpoint).toMatchObject({ auditId: 'audit-1', marker: '20', slice: 1 });
    expect(first.totals.keysAudited).toBe(20);

    const second = await auditFleet(continuations[0] as AuditRequest, deps());

    expect(second).toMatchObject({ complete: true, auditId: 'audit-1', slice: 2 });
    expect(second.totals.keysAudited).toBe(35);
    expect(fleet.described.sort()).toEqual(fleet.keys.map((item) => item.key.keyId).sort());
    expect(second.totals.nonCompliantKeys).toBe(7);
    expect(second.totals.nonCompliantByRule).toEqual({ 'rotation-enabled': 7 });
    expect(published).toEqual([
      expect.objectContaining({
        type: 'AuditCompleted',
        severity: 'WARNING',
        summary: expect.stringContaining('Audited 35 keys'),
      }),
    ]);
  });

  it('remediates only managed keys, only by enabling rotation, and counts them compliant afterwards', async () => {
    fleet.add('managed-off', {}, { ...MANAGED, 'kms-rotation:period-days': '180' }, false);
    fleet.add('unmanaged-off', {}, {}, false);

    const report = await auditFleet({ remediate: true }, deps());

    expect(fleet.enabled).toEqual(['managed-off']);
    expect(report.remediations).toEqual([
      { keyId: 'managed-off', detail: 'enabled automatic rotation every 180 days' },
    ]);
    expect(report.findings.map((finding) => [finding.keyId, finding.remediated ?? false]).sort()).toEqual([
      ['managed-off', true],
      ['unmanaged-off', false],
    ]);
    expect(report.totals.nonCompliantKeys).toBe(1);
  });

  it('remediates holding the key, and gives it back', async () => {
    fleet.add('managed-off', {}, MANAGED, false);

    const report = await auditFleet({ remediate: true }, deps());

    expect(report.remediations).toEqual([{ keyId: 'managed-off', detail: 'enabled automatic rotation' }]);
    expect(leases.calls).toEqual(['acquire managed-off', 'release managed-off']);
    expect(leases.taken).toEqual([expect.objectContaining({ holder: 'kms-rotation-test-audit request-1' })]);
    expect(leases.held.size).toBe(0);
  });

  it('reads the rotation again once it holds the key, and leaves alone what another run put back meanwhile', async () => {
    // Prepare: the drift watch enables rotation between the audit's read and its lease
    fleet.add('managed-off', {}, MANAGED, false);
    leases.meanwhile = async () => {
      fleet.get('managed-off').rotation = true;
    };

    // Act
    const report = await auditFleet({ remediate: true }, deps());

    // Assess: not enabled a second time, not counted as this audit's remediation, and compliant
    expect(fleet.enabled).toEqual([]);
    expect(report.remediations).toEqual([]);
    expect(report.findings.filter((finding) => finding.keyId === 'managed-off')).toEqual([]);
    expect(report.totals).toMatchObject({ remediated: 0, nonCompliantKeys: 0 });
  });

  it('leaves the finding open, naming the run that holds the key, when it stays held past the wait; audits the rest', async () => {
    // Prepare
    fleet.add('managed-off', {}, MANAGED, false);
    fleet.add('other-off', {}, MANAGED, false);
    const until = new Date(NOW.getTime() + 120_000);
    leases.held.set('managed-off', {
      keyId: 'managed-off',
      holder: 'kms-rotation-test-rotate request-9',
      purpose: 'rotate',
      until,
    });

    // Act
    const report = await auditFleet({ remediate: true }, deps());

    // Assess
    expect(fleet.enabled).toEqual(['other-off']);
    expect(report.findings.find((finding) => finding.keyId === 'managed-off')).toMatchObject({
      rule: 'rotation-enabled',
      evidence: {
        remediationSkipped: `managed-off is being changed by another run: kms-rotation-test-rotate request-9 holds it until ${until.toISOString()} (rotate); waited 10 s and changed nothing`,
      },
    });
    expect(report.findings.find((finding) => finding.keyId === 'managed-off')?.remediated).toBeUndefined();
    expect(report.totals).toMatchObject({ remediated: 1, nonCompliantKeys: 1 });
  });

  it('logs each remediation as it is made, so that a run failing afterwards leaves it on record', async () => {
    fleet.add('managed-off', {}, MANAGED, false);
    for (let index = 0; index < 10; index += 1) fleet.add(`filler-${index}`);
    fleet.add('unreadable-on-page-2');
    const read = fleet.reader.getRotationStatus;
    fleet.reader.getRotationStatus = async (id: string) => {
      if (id === 'unreadable-on-page-2') throw new AwsServiceError('GetKeyRotationStatus', true, 'outage');
      return read(id);
    };
    const logged: [string, Record<string, unknown> | undefined][] = [];
    const withLog = {
      ...deps(),
      log: {
        ...deps().log,
        info: (message: string, data?: Record<string, unknown>) => void logged.push([message, data]),
      },
    };

    await expect(auditFleet({ remediate: true }, withLog)).rejects.toThrow('outage');

    expect(fleet.enabled).toEqual(['managed-off']);
    expect(logged).toContainEqual([
      'remediated',
      { auditId: 'audit-1', keyId: 'managed-off', detail: 'enabled automatic rotation' },
    ]);
  });

  it('is dry by default', async () => {
    fleet.add('managed-off', {}, MANAGED, false);

    await auditFleet({ remediate: false }, deps());

    expect(fleet.enabled).toEqual([]);
  });

  it('reports a declared key that is gone, disabled or no longer managed, but not a retired predecessor', async () => {
    fleet.add('disabled', { keyState: 'Disabled' }, MANAGED);
    fleet.add('untagged', {}, {});
    fleet.add('retired', {}, { 'kms-rotation:state': 'retired' });
    declared = ['gone', 'disabled', 'untagged', 'retired'];

    const report = await auditFleet({ remediate: false }, deps());

    const missing = report.findings.filter((finding) => finding.rule === 'declared-key-missing');
    expect(missing.map((finding) => [finding.keyId, finding.summary])).toEqual([
      ['disabled', 'managed key disabled is Disabled'],
      ['untagged', 'managed key untagged is no longer tagged kms-rotation:managed=true'],
      ['gone', 'managed key gone does not exist in this account and Region'],
    ]);
    expect(published[0]?.severity).toBe('CRITICAL');
  });

  it('audits only the keys asked for, without judging the declared keys it did not look at', async () => {
    fleet.add('a', {}, {}, false);
    fleet.add('b');
    declared = ['elsewhere'];

    const report = await auditFleet({ remediate: false, keyIds: ['a'] }, deps());

    expect(fleet.described).toEqual(['a']);
    expect(report.findings.map((finding) => finding.rule)).toEqual(['rotation-enabled']);
    expect(fleet.calls.ListKeys).toBeUndefined();
  });

  it('skips a key deleted between listing and reading, without reporting it as not found', async () => {
    fleet.add('present');
    const listed = fleet.fleet.listKeysPage;
    fleet.fleet.listKeysPage = async (marker) => {
      const page = await listed(marker);
      return { ...page, keyIds: [...page.keyIds, 'deleted-meanwhile'] };
    };

    const report = await auditFleet({ remediate: false }, deps());

    expect(report.totals.keysAudited).toBe(1);
    expect(report.keysNotFound).toEqual([]);
    expect(published[0]?.severity).toBe('INFO');
  });

  it('reports a key asked for by id that does not exist, instead of dropping it from the report', async () => {
    fleet.add('a', {}, {}, false);

    const report = await auditFleet({ remediate: false, keyIds: ['a', 'typo'] }, deps());

    expect(report.totals.keysAudited).toBe(1);
    expect(report.keysNotFound).toEqual(['typo']);
    expect(report.summary).toContain('1 asked for but not found (typo)');
    expect(published).toEqual([
      expect.objectContaining({
        severity: 'WARNING',
        summary: expect.stringContaining('not found (typo)'),
        details: expect.objectContaining({ keysNotFound: ['typo'] }),
      }),
    ]);
  });

  it('makes the notification a WARNING when the only key asked for does not exist', async () => {
    const report = await auditFleet({ remediate: false, keyIds: ['gone'] }, deps());

    expect(report.totals.keysAudited).toBe(0);
    expect(report.keysNotFound).toEqual(['gone']);
    expect(published[0]?.severity).toBe('WARNING');
  });

  it('audits and counts a key asked for twice once', async () => {
    fleet.add('a', {}, {}, false);

    const report = await auditFleet({ remediate: false, keyIds: ['a', 'a'] }, deps());

    expect(fleet.described).toEqual(['a']);
    expect(report.totals.keysAudited).toBe(1);
    expect(report.totals.nonCompliantKeys).toBe(1);
    expect(report.findings).toHaveLength(1);
  });

  it('fails, without a report or a notification, when a key cannot be read: it is never counted compliant or left out', async () => {
    fleet.add('readable');
    fleet.add('unreadable');
    const read = fleet.reader.getRotationStatus;
    fleet.reader.getRotationStatus = async (id: string) => {
      if (id === 'unreadable') {
        throw new AwsServiceError(
          'GetKeyRotationStatus',
          true,
          'GetKeyRotationStatus on unreadable failed: ThrottlingException',
        );
      }
      return read(id);
    };

    await expect(auditFleet({ remediate: false }, deps())).rejects.toThrow(/GetKeyRotationStatus on unreadable/);
    expect(published).toEqual([]);
    expect(continuations).toEqual([]);
  });

  describe('when IAM or a key policy denies the audit a read', () => {
    const denied = (operation: string, id: string) =>
      new AwsServiceError(operation, false, `${operation} on ${id} failed: AccessDeniedException`, {
        accessDenied: true,
      });
    const deny = (api: 'describeKey' | 'listTags' | 'getRotationStatus', deniedId: string) => {
      const read = fleet.reader[api] as (id: string) => Promise<unknown>;
      (fleet.reader as Record<string, unknown>)[api] = async (id: string) => {
        if (id === deniedId) throw denied(api, id);
        return read(id);
      };
    };

    it('reports the key it may not describe as unreadable, counted once, and audits the rest of the fleet', async () => {
      fleet.add('ok');
      fleet.add('locked');
      fleet.add('off', {}, {}, false);
      fleet.aliases = [{ aliasName: 'alias/locked', targetKeyId: 'locked' }];
      deny('describeKey', 'locked');

      const report = await auditFleet({ remediate: false }, deps());

      expect(report.complete).toBe(true);
      expect(report.totals.keysAudited).toBe(3);
      expect(report.totals.byClass).toEqual({ 'auto-rotatable': 2, unreadable: 1 });
      expect(report.findings.map(({ keyId, rule, severity }) => `${keyId}:${rule}:${severity}`).sort()).toEqual([
        'locked:key-unreadable:WARNING',
        'off:rotation-enabled:WARNING',
      ]);
      expect(report.findings.find((item) => item.keyId === 'locked')).toMatchObject({
        aliases: ['alias/locked'],
        evidence: { operation: 'describeKey' },
        controls: [expect.stringContaining('CA-7'), expect.stringContaining('audit coverage')],
      });
      expect(report.totals.nonCompliantKeys).toBe(2);
      expect(published).toEqual([expect.objectContaining({ severity: 'WARNING' })]);
    });

    it('keeps the class it found, and makes the finding CRITICAL, for a managed key whose later reads are denied', async () => {
      fleet.add('managed', {}, MANAGED);
      deny('getRotationStatus', 'managed');

      const report = await auditFleet({ remediate: false }, deps());

      expect(report.totals.byClass).toEqual({ 'auto-rotatable': 1 });
      expect(report.findings).toEqual([
        expect.objectContaining({ keyId: 'managed', rule: 'key-unreadable', severity: 'CRITICAL' }),
      ]);
      expect(published[0]?.severity).toBe('CRITICAL');
    });

    it('reports a declared key it may not read as unreadable (CRITICAL), not as missing', async () => {
      fleet.add('ours', {}, MANAGED);
      declared = ['ours'];
      deny('listTags', 'ours');

      const report = await auditFleet({ remediate: false }, deps());

      expect(report.findings.map(({ rule, severity }) => `${rule}:${severity}`)).toEqual(['key-unreadable:CRITICAL']);
      expect(report.totals.findingsByRule).toEqual({ 'key-unreadable': 1 });
    });

    it('leaves the finding open, saying the remediation was denied, and still completes the audit', async () => {
      fleet.add('managed-off', {}, MANAGED, false);
      fleet.add('other-off', {}, MANAGED, false);
      fleet.admin.enableKeyRotation = async (id: string) => {
        if (id === 'managed-off') throw denied('EnableKeyRotation', id);
        fleet.enabled.push(id);
      };

      const report = await auditFleet({ remediate: true }, deps());

      expect(report.complete).toBe(true);
      expect(report.remediations.map((item) => item.keyId)).toEqual(['other-off']);
      expect(report.totals).toMatchObject({ remediated: 1, nonCompliantKeys: 1 });
      const open = report.findings.find((item) => item.keyId === 'managed-off');
      expect(open).toMatchObject({
        rule: 'rotation-enabled',
        evidence: { remediationDenied: expect.stringContaining('AccessDenied') },
      });
      expect(open?.remediated).toBeUndefined();
    });
  });

  describe('with exceptions that expire (kms-rotation:exception:<rule>)', () => {
    const EXCEPTED: Tags = {
      ...MANAGED,
      'kms-rotation:exception:rotation-enabled': 'until=2026-12-31 owner=team-x ticket=SEC-123',
    };
    const LAPSED: Tags = {
      ...MANAGED,
      'kms-rotation:exception:rotation-enabled': 'until=2026-11-21 owner=team-y ticket=SEC-9',
    };

    it('reports an excepted finding as suppressed, with its exception, counted apart and not as non-compliance', async () => {
      // Prepare
      fleet.add('excepted', {}, EXCEPTED, false);
      fleet.add('open', {}, {}, false);

      // Act
      const report = await auditFleet({ remediate: false }, deps());

      // Assess
      expect(report.findings.map(({ keyId, rule }) => `${keyId}:${rule}`)).toEqual(['open:rotation-enabled']);
      expect(report.suppressed).toEqual([
        expect.objectContaining({
          keyId: 'excepted',
          rule: 'rotation-enabled',
          severity: 'WARNING',
          exception: { rule: 'rotation-enabled', until: '2026-12-31', owner: 'team-x', ticket: 'SEC-123' },
          controls: [expect.stringContaining('CIS'), expect.stringContaining('Security Hub KMS.4')],
        }),
      ]);
      expect(report.totals).toMatchObject({
        keysAudited: 2,
        findingsByRule: { 'rotation-enabled': 1 },
        bySeverity: { WARNING: 1 },
        nonCompliantKeys: 1,
        nonCompliantByRule: { 'rotation-enabled': 1 },
        suppressed: 1,
        suppressedByRule: { 'rotation-enabled': 1 },
        expiredExceptions: 0,
      });
      expect(report.expiredExceptions).toEqual([]);
      expect(report.summary).toContain('1 finding suppressed by exception (rotation-enabled 1)');
    });

    it('sends an INFO notification when the only finding is suppressed', async () => {
      // Prepare
      fleet.add('excepted', {}, EXCEPTED, false);

      // Act
      const report = await auditFleet({ remediate: false }, deps());

      // Assess
      expect(report.totals).toMatchObject({ nonCompliantKeys: 0, suppressed: 1 });
      expect(published).toEqual([
        expect.objectContaining({
          severity: 'INFO',
          details: expect.objectContaining({
            totals: expect.objectContaining({ suppressed: 1, suppressedByRule: { 'rotation-enabled': 1 } }),
          }),
        }),
      ]);
      expect(published[0]?.details).not.toHaveProperty('expiredExceptions');
    });

    it('does not remediate a rule the key is excepted from', async () => {
      // Prepare
      fleet.add('excepted', {}, EXCEPTED, false);

      // Act
      const report = await auditFleet({ remediate: true }, deps());

      // Assess
      expect(fleet.enabled).toEqual([]);
      expect(leases.calls).toEqual([]);
      expect(report.remediations).toEqual([]);
      expect(report.totals).toMatchObject({ remediated: 0, suppressed: 1 });
    });

    it('reopens the finding of an expired exception, naming it, and lists it in a WARNING notification', async () => {
      // Prepare
      fleet.add('lapsed', {}, LAPSED, false);

      // Act
      const report = await auditFleet({ remediate: false }, deps());

      // Assess
      const lapsed = { rule: 'rotation-enabled', until: '2026-11-21', owner: 'team-y', ticket: 'SEC-9' };
      expect(report.findings).toEqual([
        expect.objectContaining({
          keyId: 'lapsed',
          rule: 'rotation-enabled',
          evidence: { rotationEnabled: false, expiredException: lapsed },
        }),
      ]);
      expect(report.suppressed).toEqual([]);
      expect(report.expiredExceptions).toEqual([{ ...lapsed, keyId: 'lapsed', reopened: true }]);
      expect(report.totals).toMatchObject({ nonCompliantKeys: 1, suppressed: 0, expiredExceptions: 1 });
      expect(report.summary).toContain('1 exception expired');
      expect(published).toEqual([
        expect.objectContaining({
          severity: 'WARNING',
          details: expect.objectContaining({ expiredExceptions: [{ ...lapsed, keyId: 'lapsed', reopened: true }] }),
        }),
      ]);
    });

    it('remediates the finding of an expired exception as usual', async () => {
      // Prepare
      fleet.add('lapsed', {}, LAPSED, false);

      // Act
      const report = await auditFleet({ remediate: true }, deps());

      // Assess
      expect(fleet.enabled).toEqual(['lapsed']);
      expect(report.findings).toEqual([expect.objectContaining({ keyId: 'lapsed', remediated: true })]);
      expect(report.totals).toMatchObject({ remediated: 1, nonCompliantKeys: 0, expiredExceptions: 1 });
    });

    it('makes the notification a WARNING for an expired exception even when its key is compliant now', async () => {
      // Prepare: rotation back on, the lapsed exception tag still there
      fleet.add('lapsed', {}, LAPSED, true);

      // Act
      const report = await auditFleet({ remediate: false }, deps());

      // Assess
      expect(report.findings).toEqual([]);
      expect(report.totals.nonCompliantKeys).toBe(0);
      expect(report.expiredExceptions).toEqual([expect.objectContaining({ keyId: 'lapsed', reopened: false })]);
      expect(published[0]?.severity).toBe('WARNING');
    });

    it('reports a malformed exception tag as a finding of its own, which suppresses nothing', async () => {
      // Prepare: `;` is not a character AWS allows in a tag value, and not the grammar's separator
      fleet.add(
        'malformed',
        {},
        { ...MANAGED, 'kms-rotation:exception:rotation-enabled': 'until=2026-12-31;owner=team-x' },
        false,
      );

      // Act
      const report = await auditFleet({ remediate: true }, deps());

      // Assess
      expect(report.findings.map(({ rule, severity, remediated }) => [rule, severity, remediated ?? false])).toEqual([
        ['rotation-enabled', 'WARNING', true],
        ['exception-malformed', 'WARNING', false],
      ]);
      expect(report.findings[1]).toMatchObject({
        keyId: 'malformed',
        evidence: { tagKey: 'kms-rotation:exception:rotation-enabled', tagValue: 'until=2026-12-31;owner=team-x' },
        controls: [expect.stringContaining('CA-5'), expect.stringContaining('kms-rotation:exception')],
      });
      expect(fleet.enabled).toEqual(['malformed']);
      expect(report.suppressed).toEqual([]);
      expect(report.totals).toMatchObject({
        findingsByRule: { 'rotation-enabled': 1, 'exception-malformed': 1 },
        nonCompliantKeys: 1,
        nonCompliantByRule: { 'exception-malformed': 1 },
        suppressed: 0,
      });
      expect(published[0]?.severity).toBe('WARNING');
    });

    it('adds up suppressed findings and expired exceptions over the slices of one audit', async () => {
      // Prepare
      for (let index = 0; index < 15; index += 1) fleet.add(`excepted-${index}`, {}, EXCEPTED, false);
      fleet.add('lapsed', {}, LAPSED, false);
      remaining = [60_000];

      // Act
      const first = await auditFleet({ remediate: false }, deps());
      const second = await auditFleet(continuations[0] as AuditRequest, deps());

      // Assess
      expect(first.totals).toMatchObject({ suppressed: 10, expiredExceptions: 0 });
      expect(second.totals).toMatchObject({
        keysAudited: 16,
        suppressed: 15,
        suppressedByRule: { 'rotation-enabled': 15 },
        expiredExceptions: 1,
        nonCompliantKeys: 1,
      });
      expect(published).toEqual([expect.objectContaining({ severity: 'WARNING' })]);
    });

    it('resumes a checkpoint written before exceptions existed, counting them from zero', async () => {
      // Prepare
      fleet.add('excepted', {}, EXCEPTED, false);
      const checkpoint = {
        auditId: 'audit-0',
        startedAt: NOW.toISOString(),
        marker: '0',
        slice: 1,
        totals: {
          keysAudited: 3,
          byClass: { 'auto-rotatable': 3 },
          findingsByRule: {},
          bySeverity: {},
          nonCompliantKeys: 0,
          nonCompliantByRule: {},
          remediated: 0,
          declaredSeen: [],
        },
      } as unknown as AuditRequest['checkpoint'];

      // Act
      const report = await auditFleet({ remediate: false, checkpoint }, deps());

      // Assess
      expect(report.totals).toMatchObject({
        keysAudited: 4,
        suppressed: 1,
        suppressedByRule: { 'rotation-enabled': 1 },
        expiredExceptions: 0,
      });
    });

    it('lists suppressed findings within maxFindingsListed, and counts the rest as omitted', async () => {
      // Prepare
      for (let index = 0; index < 4; index += 1) fleet.add(`excepted-${index}`, {}, EXCEPTED, false);
      for (let index = 0; index < 3; index += 1) fleet.add(`off-${index}`, {}, {}, false);

      // Act
      const report = await auditFleet({ remediate: false }, { ...deps(), maxFindingsListed: 5 });

      // Assess
      expect(report.suppressed.length + report.findings.length).toBe(5);
      expect(report.findingsOmitted).toBe(2);
      expect(report.totals).toMatchObject({ suppressed: 4, findingsByRule: { 'rotation-enabled': 3 } });
    });
  });

  it('lists at most maxFindingsListed findings and counts the rest', async () => {
    for (let index = 0; index < 7; index += 1) fleet.add(`off-${index}`, {}, {}, false);

    const report = await auditFleet({ remediate: false }, { ...deps(), maxFindingsListed: 5 });

    expect(report.findings).toHaveLength(5);
    expect(report.findingsOmitted).toBe(2);
    expect(report.totals.findingsByRule).toEqual({ 'rotation-enabled': 7 });
  });

  describe('with audit reports (auditReports on)', () => {
    /** The bucket as PutObject behaves: one object per key, the last write wins. */
    class MemoryReportStore implements ReportStore {
      readonly objects = new Map<string, ReportObject>();
      readonly writes: string[] = [];
      failOn?: RegExp;
      async put(object: ReportObject): Promise<string> {
        if (this.failOn?.test(object.key))
          throw new AwsServiceError('PutObject', false, `PutObject on ${object.key} failed`);
        this.writes.push(object.key);
        this.objects.set(object.key, object);
        return `s3://reports-bucket/${object.key}`;
      }
      ocsf(key: string): OcsfComplianceFinding[] {
        return JSON.parse(this.objects.get(key)?.body ?? 'null');
      }
    }
    let store: MemoryReportStore;
    let auditIds: string[];
    const withReports = (): AuditDeps => ({
      ...deps(),
      reports: { store, productVersion: '9.9.9' },
      ids: { newId: () => auditIds.shift() ?? 'audit-x' },
    });
    const FOLDER = 'audit-reports/2026/11/22/audit-1';

    beforeEach(() => {
      store = new MemoryReportStore();
      auditIds = ['audit-1', 'audit-2'];
    });

    it("writes the slice's findings as OCSF JSON and CSV, then the summary, and lists them in the report", async () => {
      fleet.add('off', {}, {}, false);
      fleet.add('on', {}, {}, true);

      const report = await auditFleet({ remediate: false }, withReports());

      expect(store.writes).toEqual([`${FOLDER}/slice-1.ocsf.json`, `${FOLDER}/slice-1.csv`, `${FOLDER}/summary.json`]);
      expect(report.reportObjects).toEqual(store.writes.map((key) => `s3://reports-bucket/${key}`));
      expect([...store.objects.values()].map((object) => object.contentType)).toEqual([
        'application/json',
        'text/csv; charset=utf-8; header=present',
        'application/json',
      ]);
      expect(store.ocsf(`${FOLDER}/slice-1.ocsf.json`).map((finding) => finding.finding_info.uid)).toEqual([
        `kms-rotation/${ACCOUNT}/us-east-1/off/rotation-enabled`,
      ]);
      expect(store.ocsf(`${FOLDER}/slice-1.ocsf.json`)[0]?.metadata.product.version).toBe('9.9.9');
      expect(JSON.parse(store.objects.get(`${FOLDER}/summary.json`)?.body ?? '')).toEqual({
        auditId: 'audit-1',
        startedAt: NOW.toISOString(),
        finishedAt: NOW.toISOString(),
        slices: 1,
        remediate: false,
        limits: { maxRotationPeriodDays: 365, maxMaterialAgeDays: 400 },
        totals: { ...report.totals, declaredSeen: undefined },
        keysNotFound: [],
        summary: report.summary,
        sliceObjects: [`${FOLDER}/slice-1.ocsf.json`, `${FOLDER}/slice-1.csv`],
      });
    });

    it('writes nothing, and says nothing of reports, when they are off', async () => {
      fleet.add('off', {}, {}, false);

      const report = await auditFleet({ remediate: false }, deps());

      expect(report).not.toHaveProperty('reportObjects');
    });

    it('writes every finding, not only those the report lists', async () => {
      for (let index = 0; index < 7; index += 1) fleet.add(`off-${index}`, {}, {}, false);

      const report = await auditFleet({ remediate: false }, { ...withReports(), maxFindingsListed: 5 });

      expect(report.findings).toHaveLength(5);
      expect(store.ocsf(`${FOLDER}/slice-1.ocsf.json`)).toHaveLength(7);
      expect(store.objects.get(`${FOLDER}/slice-1.csv`)?.body.trim().split('\r\n')).toHaveLength(8);
    });

    it('writes a suppressed finding as Suppressed and a remediated one as Resolved, each once', async () => {
      fleet.add('excepted', {}, { 'kms-rotation:exception:rotation-enabled': 'until=2026-12-31 owner=team-x' }, false);
      fleet.add('managed-off', {}, MANAGED, false);

      await auditFleet({ remediate: true }, withReports());

      expect(
        store.ocsf(`${FOLDER}/slice-1.ocsf.json`).map((finding) => `${finding.resources[0]?.name} ${finding.status}`),
      ).toEqual(['excepted Suppressed', 'managed-off Resolved']);
    });

    it('writes each slice before handing over, under its own number, and the summary only at the end', async () => {
      for (let index = 0; index < 15; index += 1) fleet.add(`k-${index}`, {}, {}, false);
      remaining = [60_000];

      const first = await auditFleet({ remediate: false }, withReports());

      expect(first.complete).toBe(false);
      expect(store.writes).toEqual([`${FOLDER}/slice-1.ocsf.json`, `${FOLDER}/slice-1.csv`]);
      expect(first.reportObjects).toHaveLength(2);
      expect(continuations).toHaveLength(1);

      clock.advance(86_400_000); // the next slice runs the next day: still the folder of the day the audit started
      const last = await auditFleet(continuations[0] as AuditRequest, withReports());

      expect(store.writes.slice(2)).toEqual([
        `${FOLDER}/slice-2.ocsf.json`,
        `${FOLDER}/slice-2.csv`,
        `${FOLDER}/summary.json`,
      ]);
      expect(last.reportObjects).toHaveLength(3);
      const ids = (slice: number) =>
        store.ocsf(`${FOLDER}/slice-${slice}.ocsf.json`).map((finding) => finding.finding_info.uid.split('/')[3]);
      expect(ids(1)).toHaveLength(10);
      expect(ids(2)).toHaveLength(5);
      expect(new Set([...ids(1), ...ids(2)]).size).toBe(15);
      expect(JSON.parse(store.objects.get(`${FOLDER}/summary.json`)?.body ?? '')).toMatchObject({
        slices: 2,
        totals: { keysAudited: 15, findingsByRule: { 'rotation-enabled': 15 } },
        sliceObjects: [
          `${FOLDER}/slice-1.ocsf.json`,
          `${FOLDER}/slice-1.csv`,
          `${FOLDER}/slice-2.ocsf.json`,
          `${FOLDER}/slice-2.csv`,
        ],
      });
    });

    it('overwrites its own objects when a slice is retried from the same checkpoint', async () => {
      for (let index = 0; index < 15; index += 1) fleet.add(`k-${index}`, {}, {}, false);
      remaining = [60_000];
      await auditFleet({ remediate: false }, withReports());
      const checkpoint = continuations[0] as AuditRequest;

      await auditFleet(checkpoint, withReports());
      const afterFirst = new Map(store.objects);
      clock.advance(180_000); // Lambda retries the failed invocation minutes later
      await auditFleet(checkpoint, withReports());

      expect(store.writes.filter((key) => key.endsWith('slice-2.csv'))).toHaveLength(2);
      expect([...store.objects.keys()].sort()).toEqual([...afterFirst.keys()].sort());
      // The retry's findings replaced the first attempt's, under the same key.
      expect(store.ocsf(`${FOLDER}/slice-2.ocsf.json`).map((finding) => finding.time)).toEqual(
        Array(5).fill(NOW.getTime() + 180_000),
      );
    });

    it('fails the invocation, handing nothing over, when a report cannot be written', async () => {
      for (let index = 0; index < 15; index += 1) fleet.add(`k-${index}`, {}, {}, false);
      remaining = [60_000];
      store.failOn = /slice-1\.csv$/;

      await expect(auditFleet({ remediate: false }, withReports())).rejects.toThrow(/PutObject/);

      expect(continuations).toEqual([]);
    });

    it('fails the invocation, publishing nothing, when the summary cannot be written', async () => {
      fleet.add('off', {}, {}, false);
      store.failOn = /summary\.json$/;

      await expect(auditFleet({ remediate: false }, withReports())).rejects.toThrow(/PutObject/);

      expect(published).toEqual([]);
    });
  });

  describe('with Security Hub findings (securityHubFindings on)', () => {
    let hub: MemorySecurityHub;
    let auditIds: string[];
    const withHub = (): AuditDeps => ({
      ...deps(),
      securityHub: hub,
      ids: { newId: () => auditIds.shift() ?? 'audit-x' },
    });

    beforeEach(() => {
      hub = new MemorySecurityHub();
      auditIds = ['audit-1', 'audit-2', 'audit-3'];
    });

    it('imports one finding per key and rule, and updates it on the next audit rather than adding one', async () => {
      fleet.add('off', {}, {}, false);
      fleet.add('on', {}, {}, true);

      await auditFleet({ remediate: false }, withHub());
      clock.advance(86_400_000);
      await auditFleet({ remediate: false }, withHub());

      expect(hub.state()).toEqual({ 'off/rotation-enabled': 'ACTIVE NEW FAILED' });
      const finding = hub.stored.get(`kms-rotation/${ACCOUNT}/us-east-1/off/rotation-enabled`);
      expect(finding).toMatchObject({
        CreatedAt: NOW.toISOString(),
        UpdatedAt: new Date(NOW.getTime() + 86_400_000).toISOString(),
        ProductFields: expect.objectContaining({ 'kms-rotation/auditId': 'audit-2' }),
      });
    });

    it('resolves and archives the finding of a key compliant again, at the end of the next complete audit', async () => {
      fleet.add('off', {}, {}, false);
      await auditFleet({ remediate: false }, withHub());
      fleet.get('off').rotation = true;

      await auditFleet({ remediate: false }, withHub());

      expect(hub.state()).toEqual({ 'off/rotation-enabled': 'ARCHIVED RESOLVED PASSED' });
    });

    it('says in the report what it sent, and nothing of Security Hub when it is off', async () => {
      fleet.add('off', {}, {}, false);
      fleet.add('excepted', {}, { 'kms-rotation:exception:rotation-enabled': 'until=2026-12-31 owner=team-x' }, false);
      const first = await auditFleet({ remediate: false }, withHub());
      fleet.get('off').rotation = true;

      const second = await auditFleet({ remediate: false }, withHub());
      const off = await auditFleet({ remediate: false }, deps());

      expect(first.securityHub).toEqual({ imported: 2, resolved: 0 });
      expect(second.securityHub).toEqual({ imported: 1, resolved: 1 });
      expect(off).not.toHaveProperty('securityHub');
    });

    it("leaves open the drift watch's finding of a rule the audit does not judge, and one found after the audit started", async () => {
      fleet.add('fixed', {}, MANAGED, true);
      fleet.add('fixed-later', {}, MANAGED, true);
      const driftFound = (keyId: string, rule: DriftRuleId, at: Date) =>
        driftSecurityHubBatch(
          [
            {
              keyId,
              aliases: [],
              exceptions: [],
              findings: [{ rule, severity: 'WARNING', keyId, summary: rule, evidence: {}, fingerprint: rule }],
            },
          ],
          [],
          {
            location: { partition: 'aws', account: ACCOUNT, region: 'us-east-1' },
            now: at,
            eventId: 'event-1',
            cause: 'a call',
            actor: 'someone',
            remediated: new Map(),
          },
        ).imports;
      const before = new Date(NOW.getTime() - 60_000);
      await hub.importFindings([
        ...driftFound('fixed', 'key-disabled', before),
        ...driftFound('fixed', 'rotation-enabled', before),
        ...driftFound('fixed-later', 'rotation-enabled', new Date(NOW.getTime() + 1_000)),
      ]);

      await auditFleet({ remediate: false }, withHub());

      expect(hub.state()).toEqual({
        'fixed/key-disabled': 'ACTIVE NEW FAILED',
        'fixed/rotation-enabled': 'ARCHIVED RESOLVED PASSED',
        'fixed-later/rotation-enabled': 'ACTIVE NEW FAILED',
      });
    });

    it('resolves the finding of a key the audit remediated', async () => {
      fleet.add('managed-off', {}, MANAGED, false);
      await auditFleet({ remediate: false }, withHub());

      await auditFleet({ remediate: true }, withHub());

      expect(fleet.enabled).toEqual(['managed-off']);
      expect(hub.state()).toEqual({ 'managed-off/rotation-enabled': 'ARCHIVED RESOLVED PASSED' });
    });

    it('sends every finding, not only those the report lists', async () => {
      for (let index = 0; index < 7; index += 1) fleet.add(`off-${index}`, {}, {}, false);

      const report = await auditFleet({ remediate: false }, { ...withHub(), maxFindingsListed: 5 });

      expect(report.findings).toHaveLength(5);
      expect(hub.stored.size).toBe(7);
    });

    it('imports a suppressed finding as SUPPRESSED, and keeps it open while the exception holds', async () => {
      fleet.add('excepted', {}, { 'kms-rotation:exception:rotation-enabled': 'until=2026-12-31 owner=team-x' }, false);

      await auditFleet({ remediate: false }, withHub());
      await auditFleet({ remediate: false }, withHub());

      expect(hub.state()).toEqual({ 'excepted/rotation-enabled': 'ACTIVE SUPPRESSED FAILED' });
    });

    it('imports each slice before handing over, and resolves only at the end of the last slice', async () => {
      for (let index = 0; index < 15; index += 1) fleet.add(`k-${index}`, {}, {}, false);
      await auditFleet({ remediate: false }, withHub());
      for (const key of fleet.keys) key.rotation = key.key.keyId !== 'k-0' && key.key.keyId !== 'k-14';
      remaining = [60_000];

      const first = await auditFleet({ remediate: false }, withHub());

      expect(first.complete).toBe(false);
      expect(first.securityHub).toEqual({ imported: 1, resolved: 0 });
      expect(Object.values(hub.state()).filter((state) => state.startsWith('ARCHIVED'))).toEqual([]);
      expect(hub.stored.get(`kms-rotation/${ACCOUNT}/us-east-1/k-0/rotation-enabled`)?.ProductFields).toMatchObject({
        'kms-rotation/auditId': 'audit-2',
      });

      const last = await auditFleet(continuations[0] as AuditRequest, withHub());

      expect(last.securityHub).toEqual({ imported: 1, resolved: 13 });
      const state = hub.state();
      expect(state['k-0/rotation-enabled']).toBe('ACTIVE NEW FAILED');
      expect(state['k-14/rotation-enabled']).toBe('ACTIVE NEW FAILED');
      expect(Object.values(state).filter((value) => value.startsWith('ARCHIVED'))).toHaveLength(13);
    });

    it('resolves nothing after an audit of keys asked for by id: the rest of the fleet was not looked at', async () => {
      fleet.add('off', {}, {}, false);
      fleet.add('other-off', {}, {}, false);
      await auditFleet({ remediate: false }, withHub());
      fleet.get('off').rotation = true;

      await auditFleet({ remediate: false, keyIds: ['other-off'] }, withHub());

      expect(hub.state()).toEqual({
        'off/rotation-enabled': 'ACTIVE NEW FAILED',
        'other-off/rotation-enabled': 'ACTIVE NEW FAILED',
      });
    });

    it('fails the audit, and notifies nothing, when Security Hub refuses the findings', async () => {
      fleet.add('off', {}, {}, false);
      hub.importFindings = async () => {
        throw new AwsServiceError('BatchImportFindings', false, 'refused 1 of 1 findings');
      };

      await expect(auditFleet({ remediate: false }, withHub())).rejects.toThrow('refused 1 of 1 findings');
      expect(published).toEqual([]);
    });
  });
});
