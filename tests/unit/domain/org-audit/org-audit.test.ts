import { describe, expect, it } from 'vitest';
import type { AuditReport } from '../../../../src/domain/audit-fleet';
import type { Notification } from '../../../../src/domain/model';
import {
  attemptOf,
  combineOrgReport,
  type FinishedItem,
  type ItemCounts,
  itemsOf,
  type OrgAuditItem,
} from '../../../../src/domain/org-audit';
import { fanOut, handleItem, type OrgItemDeps } from '../../../../src/domain/org-audit-run';
import { MemoryOrgAuditRuns } from '../../support/memory-org-audit-runs';

const HOME = { partition: 'aws', account: '999999999999', region: 'us-east-1' };
const at = new Date('2026-12-02T04:00:00Z');
const clock = { now: () => at };
const log = { info: () => {}, warn: () => {}, error: () => {} };

/** An item audit's report with these counts (the rest of the report is not read by the organization audit). */
const reportWith = (keysAudited: number, nonCompliantByRule: Record<string, number>, critical = 0): AuditReport => {
  const nonCompliantKeys = Object.values(nonCompliantByRule).reduce((sum, count) => sum + count, 0);
  return {
    totals: {
      keysAudited,
      byClass: { 'auto-rotatable': keysAudited },
      findingsByRule: nonCompliantByRule,
      bySeverity: { ...(critical > 0 ? { CRITICAL: critical } : {}), WARNING: nonCompliantKeys - critical },
      nonCompliantKeys,
      nonCompliantByRule,
      remediated: 0,
      suppressed: 0,
      suppressedByRule: {},
      expiredExceptions: 0,
      declaredSeen: [],
      reconciled: 0,
      reconcileFailed: 0,
      reconcileUnfinished: 0,
    },
    keysNotFound: [],
    summary: `Audited ${keysAudited} keys`,
  } as unknown as AuditReport;
};

const counts = (keysAudited: number, byRule: Record<string, number>, severity: ItemCounts['severity'] = 'WARNING') =>
  ({
    keysAudited,
    nonCompliantKeys: Object.values(byRule).reduce((sum, count) => sum + count, 0),
    nonCompliantByRule: byRule,
    findingsByRule: byRule,
    bySeverity: {},
    byClass: {},
    remediated: 0,
    severity,
    summary: '',
  }) as ItemCounts;

describe('Function: itemsOf (the fan-out)', () => {
  it('makes one item per account and Region, each account once, in the order given', () => {
    const items = itemsOf(
      'run-1',
      [
        { account: '111111111111', ouPath: 'ou-ab12-cdefgh12' },
        { account: '222222222222', ouPath: 'ou-ab12-cdefgh12/ou-ab12-zzzzzzzz' },
        { account: '111111111111', ouPath: 'r-ab12' },
      ],
      ['eu-west-1', 'us-east-1', 'eu-west-1'],
    );
    expect(items).toEqual([
      { runId: 'run-1', account: '111111111111', region: 'eu-west-1', ouPath: 'ou-ab12-cdefgh12' },
      { runId: 'run-1', account: '111111111111', region: 'us-east-1', ouPath: 'ou-ab12-cdefgh12' },
      { runId: 'run-1', account: '222222222222', region: 'eu-west-1', ouPath: 'ou-ab12-cdefgh12/ou-ab12-zzzzzzzz' },
      { runId: 'run-1', account: '222222222222', region: 'us-east-1', ouPath: 'ou-ab12-cdefgh12/ou-ab12-zzzzzzzz' },
    ]);
  });
});

describe('Function: attemptOf', () => {
  it.each([
    [1, 3, { action: 'audit', attempt: 1 }],
    [3, 3, { action: 'audit', attempt: 3 }],
    [4, 3, { action: 'give-up', attempts: 3 }],
    [9, 3, { action: 'give-up', attempts: 3 }],
    [1, 1, { action: 'audit', attempt: 1 }],
    [2, 1, { action: 'give-up', attempts: 1 }],
  ])('receive %i with %i attempts: %o', (receiveCount, attempts, expected) => {
    expect(attemptOf(receiveCount, attempts)).toEqual(expected);
  });
});

describe('Function: combineOrgReport', () => {
  const items: FinishedItem[] = [
    {
      account: '111111111111',
      region: 'us-east-1',
      ouPath: 'ou-ab12-cdefgh12',
      attempts: 1,
      outcome: 'audited',
      counts: counts(5, { 'rotation-enabled': 2 }),
    },
    {
      account: '111111111111',
      region: 'eu-west-1',
      ouPath: 'ou-ab12-cdefgh12',
      attempts: 2,
      outcome: 'audited',
      counts: counts(7, { 'rotation-enabled': 1, 'declared-alias': 3 }),
    },
    { account: '222222222222', region: 'us-east-1', attempts: 1, outcome: 'audited', counts: counts(4, {}, 'INFO') },
    { account: '222222222222', region: 'eu-west-1', attempts: 3, outcome: 'failed', error: 'AccessDenied: AssumeRole' },
  ];

  it('totals exactly per account, per Region and per rule, and names each failed item', () => {
    const report = combineOrgReport(
      { runId: 'run-1', startedAt: at.toISOString(), expected: 4 },
      items,
      at.toISOString(),
    );
    expect(report.totals).toEqual({
      items: 4,
      failedItems: 1,
      keysAudited: 16,
      nonCompliantKeys: 6,
      nonCompliantByRule: { 'rotation-enabled': 3, 'declared-alias': 3 },
      findingsByRule: { 'rotation-enabled': 3, 'declared-alias': 3 },
    });
    expect(report.byAccount['111111111111']).toMatchObject({
      items: 2,
      keysAudited: 12,
      nonCompliantKeys: 6,
      ouPath: 'ou-ab12-cdefgh12',
    });
    expect(report.byAccount['222222222222']).toMatchObject({
      items: 2,
      failedItems: 1,
      keysAudited: 4,
      nonCompliantKeys: 0,
    });
    expect(report.byRegion['us-east-1']).toMatchObject({
      items: 2,
      keysAudited: 9,
      nonCompliantByRule: { 'rotation-enabled': 2 },
    });
    expect(report.byRegion['eu-west-1']).toMatchObject({
      items: 2,
      failedItems: 1,
      keysAudited: 7,
      nonCompliantByRule: { 'rotation-enabled': 1, 'declared-alias': 3 },
    });
    expect(report.failedItems).toEqual([
      {
        item: '222222222222/eu-west-1',
        account: '222222222222',
        region: 'eu-west-1',
        attempts: 3,
        error: 'AccessDenied: AssumeRole',
      },
    ]);
    expect(report.severity).toBe('WARNING');
    expect(report.summary).toContain('1 failed, not audited: 222222222222/eu-west-1');
  });

  it('is as bad as its worst item, and never INFO with a failed item', () => {
    const critical = [
      {
        ...items[2],
        outcome: 'audited',
        counts: counts(1, { 'policy-wildcard-principal': 1 }, 'CRITICAL'),
      } as FinishedItem,
    ];
    expect(
      combineOrgReport({ runId: 'r', startedAt: at.toISOString(), expected: 1 }, critical, at.toISOString()).severity,
    ).toBe('CRITICAL');
    const clean = [items[2] as FinishedItem];
    expect(
      combineOrgReport({ runId: 'r', startedAt: at.toISOString(), expected: 1 }, clean, at.toISOString()).severity,
    ).toBe('INFO');
    const failed = [items[3] as FinishedItem];
    expect(
      combineOrgReport({ runId: 'r', startedAt: at.toISOString(), expected: 1 }, failed, at.toISOString()).severity,
    ).toBe('WARNING');
  });

  it('refuses to combine a run with an item missing: a report never reads clean without it', () => {
    expect(() =>
      combineOrgReport({ runId: 'r', startedAt: at.toISOString(), expected: 5 }, items, at.toISOString()),
    ).toThrow(/expects 5 items and has 4/);
  });
});

describe('Function: handleItem (the worker) and fanOut', () => {
  const setup = (attempts: number, audit: (item: OrgAuditItem) => Promise<AuditReport>) => {
    const runs = new MemoryOrgAuditRuns();
    const published: Notification[] = [];
    const deps: OrgItemDeps = {
      runs,
      notifier: { publish: async (notification) => void published.push(notification) },
      clock,
      log,
      location: HOME,
      attempts,
      audit,
    };
    return { runs, published, deps };
  };
  const item = (account: string, region: string): OrgAuditItem => ({
    runId: 'run-1',
    account,
    region,
    ouPath: 'ou-ab12-cdefgh12',
  });

  it('counts each audited item once and sends one AuditCompleted, from the item that completes the run', async () => {
    const { runs, published, deps } = setup(3, async (target) =>
      target.account === '111111111111' ? reportWith(3, { 'rotation-enabled': 1 }) : reportWith(2, {}),
    );
    await runs.createRun({ runId: 'run-1', startedAt: at.toISOString(), expected: 2 });
    const first = await handleItem(item('111111111111', 'us-east-1'), { messageId: 'm1', receiveCount: 1 }, deps);
    expect(first).toEqual({ item: '111111111111/us-east-1', outcome: 'audited', counted: true, reported: false });
    expect(published).toEqual([]);
    const last = await handleItem(item('222222222222', 'us-east-1'), { messageId: 'm2', receiveCount: 1 }, deps);
    expect(last.outcome === 'audited' && last.reported).toBe(true);
    expect(published).toHaveLength(1);
    const [notification] = published as [Notification];
    expect(notification).toMatchObject({
      type: 'AuditCompleted',
      severity: 'WARNING',
      account: HOME.account,
      region: HOME.region,
    });
    expect(notification.details).toMatchObject({
      organization: true,
      runId: 'run-1',
      totals: { items: 2, keysAudited: 5, nonCompliantKeys: 1, nonCompliantByRule: { 'rotation-enabled': 1 } },
      byRule: { 'rotation-enabled': 1 },
      failedItems: [],
    });
    // Redelivered after it was counted: nothing changes, no second notification.
    const again = await handleItem(item('222222222222', 'us-east-1'), { messageId: 'm2', receiveCount: 2 }, deps);
    expect(again).toMatchObject({ counted: false, reported: false });
    expect((await runs.run('run-1'))?.done).toBe(2);
    expect(published).toHaveLength(1);
  });

  it('records a failed attempt and has the queue retry it; after the last attempt it is failed with its last error, and counted', async () => {
    let calls = 0;
    const { runs, published, deps } = setup(2, async () => {
      calls += 1;
      throw new Error(`AssumeRole refused (${calls})`);
    });
    await runs.createRun({ runId: 'run-1', startedAt: at.toISOString(), expected: 1 });
    const target = item('333333333333', 'eu-west-1');
    expect(await handleItem(target, { messageId: 'm', receiveCount: 1 }, deps)).toMatchObject({ outcome: 'retry' });
    expect(await handleItem(target, { messageId: 'm', receiveCount: 2 }, deps)).toMatchObject({ outcome: 'retry' });
    expect((await runs.run('run-1'))?.done).toBe(0);
    const given = await handleItem(target, { messageId: 'm', receiveCount: 3 }, deps);
    expect(given).toEqual({ item: '333333333333/eu-west-1', outcome: 'failed', counted: true, reported: true });
    expect(calls).toBe(2);
    expect(published).toHaveLength(1);
    expect((published[0] as Notification).details.failedItems).toEqual([
      {
        item: '333333333333/eu-west-1',
        account: '333333333333',
        region: 'eu-west-1',
        ouPath: 'ou-ab12-cdefgh12',
        attempts: 2,
        error: 'Error: AssumeRole refused (2)',
      },
    ]);
    expect((published[0] as Notification).details.totals).toMatchObject({ items: 1, failedItems: 1 });
  });

  it('fails the message (the queue keeps it, then its DLQ) when the run has no row to record it in', async () => {
    const { deps } = setup(1, async () => reportWith(1, {}));
    await expect(
      handleItem(item('111111111111', 'us-east-1'), { messageId: 'm', receiveCount: 1 }, deps),
    ).rejects.toThrow(/no run run-1/);
  });

  const fanOutDeps = (
    setupResult: ReturnType<typeof setup>,
    unsent: (item: OrgAuditItem) => boolean,
    accounts = [
      { account: '111111111111', ouPath: 'ou-ab12-cdefgh12' },
      { account: '222222222222', ouPath: 'ou-ab12-cdefgh12' },
    ],
  ) => {
    const queued: OrgAuditItem[] = [];
    return {
      queued,
      deps: {
        ...setupResult.deps,
        accounts: { activeAccountsUnder: async () => accounts },
        queue: {
          sendItems: async (items: readonly OrgAuditItem[]) => {
            queued.push(...items.filter((candidate) => !unsent(candidate)));
            return {
              sent: items.filter((candidate) => !unsent(candidate)),
              unsent: items
                .filter(unsent)
                .map((candidate) => ({ item: candidate, error: 'KMS.AccessDenied: queue key' })),
            };
          },
        },
        ids: { newId: () => 'run-1' },
        organizationUnitIds: ['ou-ab12-cdefgh12'],
        regions: ['us-east-1', 'eu-west-1'],
      },
    };
  };

  it('records the run with its expected count, then queues every account × Region', async () => {
    const context = setup(3, async () => reportWith(1, {}));
    const { deps, queued } = fanOutDeps(context, () => false);
    const result = await fanOut({ dryRun: false }, deps);
    expect(result).toMatchObject({ runId: 'run-1', accounts: 2, expected: 4, sent: 4, unsent: [] });
    expect(queued).toHaveLength(4);
    expect(context.runs.runs.get('run-1')).toMatchObject({ expected: 4, done: 0, sent: 4 });
  });

  it('records items it could not send as failed, by name, and says so: the run still completes', async () => {
    const context = setup(3, async () => reportWith(1, {}));
    const { deps } = fanOutDeps(context, (candidate) => candidate.region === 'eu-west-1');
    const result = await fanOut({ dryRun: false }, deps);
    expect(result.unsent).toEqual(['111111111111/eu-west-1', '222222222222/eu-west-1']);
    expect(result.summary).toContain('2 could not be sent and are reported failed');
    expect(context.runs.runs.get('run-1')).toMatchObject({ expected: 4, done: 2, sent: 2 });
    await handleItem(item('111111111111', 'us-east-1'), { messageId: 'a', receiveCount: 1 }, context.deps);
    await handleItem(item('222222222222', 'us-east-1'), { messageId: 'b', receiveCount: 1 }, context.deps);
    expect(context.published).toHaveLength(1);
    expect((context.published[0] as Notification).details.failedItems).toHaveLength(2);
  });

  it('reports the run itself when every item failed to send', async () => {
    const context = setup(3, async () => reportWith(1, {}));
    const { deps } = fanOutDeps(context, () => true);
    await fanOut({ dryRun: false }, deps);
    expect(context.published).toHaveLength(1);
    expect((context.published[0] as Notification).details.totals).toMatchObject({ items: 4, failedItems: 4 });
  });

  it('records and sends nothing in a dry run, and nothing (no clean report) with no ACTIVE account', async () => {
    const context = setup(3, async () => reportWith(1, {}));
    const dry = fanOutDeps(context, () => false);
    expect(await fanOut({ dryRun: true }, dry.deps)).toMatchObject({
      dryRun: true,
      expected: 4,
      items: expect.any(Array),
    });
    expect(dry.queued).toEqual([]);
    expect(context.runs.runs.size).toBe(0);
    const none = fanOutDeps(context, () => false, []);
    const result = await fanOut({ dryRun: false }, none.deps);
    expect(result.summary).toMatch(/No ACTIVE account under ou-ab12-cdefgh12/);
    expect(context.runs.runs.size).toBe(0);
    expect(context.published).toEqual([]);
  });
});
