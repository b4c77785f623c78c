import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../../src/domain/errors';
import {
  handleUseAttempt,
  LONGEST_DELETION_WINDOW_DAYS,
  lineageHolds,
  RetirementFailedError,
  retirePredecessors,
  type UseAttempt,
} from '../../../../src/domain/retire-predecessors';
import { DAY, RetireWorld } from './support';

const OLD = '11111111-1111-4111-8111-111111111111';
const NEW = '22222222-2222-4222-8222-222222222222';

const world = (daysSinceSwap = 0) => {
  const w = new RetireWorld();
  w.swapped(OLD, NEW, daysSinceSwap);
  return w;
};

const attempt = (w: RetireWorld, over: Partial<UseAttempt> = {}): UseAttempt => ({
  eventId: 'ct-1',
  keyId: OLD,
  eventName: 'Decrypt',
  errorCode: 'DisabledException',
  at: new Date(w.now),
  actor: 'arn:aws:sts::111122223333:assumed-role/OrdersService/i-1',
  ...over,
});

describe('retire: which keys', () => {
  it('leaves alone a key whose lineage does not hold both ways, and makes no call that could change it', async () => {
    const cases: [string, (w: RetireWorld) => void][] = [
      ['successor names another predecessor', (w) => (w.key(NEW).tags['kms-rotation:predecessor'] = 'other')],
      ['successor of another rotation', (w) => (w.key(NEW).tags['kms-rotation:rotation-id'] = 'rot-other')],
      ['successor rolled back', (w) => (w.key(NEW).tags['kms-rotation:state'] = 'rolled-back')],
      ['successor has no rotated-at', (w) => delete w.key(NEW).tags['kms-rotation:rotated-at']],
      ['successor gone', (w) => w.keys.delete(NEW)],
      ['predecessor names no rotation id', (w) => delete w.key(OLD).tags['kms-rotation:rotation-id']],
    ];
    for (const [name, spoil] of cases) {
      const w = world(400);
      spoil(w);
      const report = await retirePredecessors({}, w.deps());
      expect(report.keys, name).toEqual([expect.objectContaining({ keyId: OLD, outcome: 'not-ours' })]);
      expect(w.changes, name).toEqual([]);
      expect(w.published, name).toEqual([]);
    }
  });

  it('never takes a key that is not tagged retired, even when asked for it by id', async () => {
    const w = world(400);
    w.key(OLD).tags['kms-rotation:state'] = 'active';
    const report = await retirePredecessors({ keyId: OLD }, w.deps());
    expect(report.keys[0]?.outcome).toBe('not-ours');
    expect(w.changes).toEqual([]);
  });

  it('never disables or deletes a key an alias points at, read just before acting', async () => {
    const w = world(400);
    w.aliases.set('alias/app/legacy', OLD);
    const report = await retirePredecessors({}, w.deps());
    expect(report.keys[0]?.outcome).toBe('aliased');
    expect(w.changes).toEqual([]);
    expect(w.published).toEqual([]);

    // Disabled, then someone points an alias at it: never scheduled for deletion.
    w.aliases.clear();
    await retirePredecessors({}, w.deps());
    expect(w.key(OLD).state).toBe('Disabled');
    w.aliases.set('alias/app/legacy', OLD);
    w.advance(61);
    const later = await retirePredecessors({}, w.deps());
    expect(later.keys[0]?.outcome).toBe('aliased');
    expect(w.key(OLD).state).toBe('Disabled');
    expect(w.changes.filter((change) => change.startsWith('ScheduleKeyDeletion'))).toEqual([]);
  });

  it('says when it examined nothing, rather than reading clean', async () => {
    const w = new RetireWorld();
    const report = await retirePredecessors({}, w.deps());
    expect(report).toMatchObject({ examined: 0, summary: 'no retired predecessor found: no key examined' });
  });
});

describe('retire: the steps', () => {
  it('waits until the key has been unused for retireDisableAfterDays since the swap, then disables it and notifies PredecessorDisabled', async () => {
    const w = world(29);
    expect((await retirePredecessors({}, w.deps())).keys[0]?.outcome).toBe('waiting');
    expect(w.changes).toEqual([]);

    w.advance(1);
    const report = await retirePredecessors({}, w.deps());
    expect(report.keys[0]).toMatchObject({ outcome: 'disabled' });
    expect(w.key(OLD).state).toBe('Disabled');
    expect(w.changes[0]).toBe(`DisableKey ${OLD}`);
    expect(w.key(OLD).tags).toMatchObject({
      'kms-rotation:retirement': 'disabled',
      'kms-rotation:retirement-at': w.now.toISOString(),
      // The lineage stays: IAM keys every grant of the retirement on state=retired.
      'kms-rotation:state': 'retired',
    });
    expect(w.published).toHaveLength(1);
    expect(w.published[0]).toMatchObject({
      type: 'PredecessorDisabled',
      severity: 'INFO',
      keyId: OLD,
      keyArn: `arn:aws:kms:eu-west-1:111122223333:key/${OLD}`,
      aliases: [],
      account: '111122223333',
      region: 'eu-west-1',
      occurredAt: w.now.toISOString(),
      details: { successor: NEW, rotationId: `rot-${OLD}` },
    });
  });

  it('counts unused time from the latest of the swap, the start of KMS tracking and the last recorded use', async () => {
    const trackedLate = world(100);
    trackedLate.key(OLD).usage = { trackingStartDate: new Date(trackedLate.now.getTime() - 10 * DAY) };
    expect((await retirePredecessors({}, trackedLate.deps())).keys[0]?.outcome).toBe('waiting');
    expect(trackedLate.changes).toEqual([]);

    const usedLately = world(100);
    usedLately.usedAt(OLD, new Date(usedLately.now.getTime() - 5 * DAY));
    const report = await retirePredecessors({}, usedLately.deps());
    expect(report.keys[0]?.steps.at(-1)?.detail).toMatch(/unused for 5 of 30 days/);
    expect(usedLately.changes).toEqual([]);
  });

  it('schedules the deletion with the longest window after retireDeleteAfterDays more without use, and notifies PredecessorDeletionScheduled', async () => {
    const w = world(30);
    await retirePredecessors({}, w.deps());
    w.advance(59);
    await retirePredecessors({}, w.deps());
    expect(w.key(OLD).state).toBe('Disabled');
    w.advance(1);
    const report = await retirePredecessors({}, w.deps());
    expect(report.keys[0]?.outcome).toBe('deletion-scheduled');
    expect(LONGEST_DELETION_WINDOW_DAYS).toBe(30);
    expect(w.changes).toContain(`ScheduleKeyDeletion ${OLD} 30`);
    expect(w.key(OLD).tags['kms-rotation:retirement']).toBe('deletion-scheduled');
    expect(w.published.map((n) => [n.type, n.severity])).toEqual([
      ['PredecessorDisabled', 'INFO'],
      ['PredecessorDeletionScheduled', 'WARNING'],
    ]);
    expect(w.published[1]?.details).toMatchObject({
      pendingWindowDays: 30,
      deletionDate: w.key(OLD).deletionDate?.toISOString(),
    });
  });

  it('is idempotent: a second run the same day changes and tells nothing', async () => {
    const w = world(30);
    await retirePredecessors({}, w.deps());
    const changes = [...w.changes];
    const again = await retirePredecessors({}, w.deps());
    expect(again.keys[0]?.steps.at(-1)?.status).toBe('skipped');
    expect(w.changes).toEqual(changes);
    expect(w.published).toHaveLength(1);
  });

  it('never records a step without its notification: a run that dies after DisableKey is finished (tag, notification) by the next', async () => {
    const w = world(30);
    w.failNextPublish = true;
    await expect(retirePredecessors({}, w.deps())).rejects.toBeInstanceOf(RetirementFailedError);
    expect(w.key(OLD).state).toBe('Disabled');
    expect(w.key(OLD).tags['kms-rotation:retirement']).toBeUndefined();
    const report = await retirePredecessors({}, w.deps());
    expect(report.keys[0]?.steps.at(-1)).toMatchObject({
      status: 'done',
      detail: expect.stringMatching(/found disabled/),
    });
    expect(w.changes.filter((change) => change.startsWith('DisableKey'))).toHaveLength(1);
    expect(w.published.map((n) => n.type)).toEqual(['PredecessorDisabled']);
    expect(w.key(OLD).tags['kms-rotation:retirement']).toBe('disabled');
  });
});

describe('retire: keys disabled by someone else', () => {
  it('does not take into the retirement a key someone else disabled before it was due', async () => {
    const w = world(3);
    w.key(OLD).state = 'Disabled';
    const report = await retirePredecessors({}, w.deps());
    expect(report.keys[0]?.outcome).toBe('waiting');
    expect(w.changes).toEqual([]);
    expect(w.published).toEqual([]);
  });
});

describe('retire: a use stops it', () => {
  it('a use recorded after the key was disabled re-enables it, notifies PredecessorInUse (WARNING) and stops the retirement for good', async () => {
    const w = world(30);
    await retirePredecessors({}, w.deps());
    w.advance(3);
    w.usedAt(OLD, new Date(w.now.getTime() - DAY));
    const report = await retirePredecessors({}, w.deps());
    expect(report.keys[0]?.outcome).toBe('stopped');
    expect(w.key(OLD).state).toBe('Enabled');
    expect(w.key(OLD).tags['kms-rotation:retirement']).toBe('stopped');
    expect(w.published.at(-1)).toMatchObject({ type: 'PredecessorInUse', severity: 'WARNING', keyId: OLD });

    const before = [...w.changes];
    w.advance(400);
    const later = await retirePredecessors({}, w.deps());
    expect(later.keys[0]?.outcome).toBe('stopped');
    expect(w.changes).toEqual(before);
  });

  it('a refused use (CloudTrail) of a key pending deletion cancels the deletion, enables the key, notifies and stops', async () => {
    const w = world(30);
    await retirePredecessors({}, w.deps());
    w.advance(60);
    await retirePredecessors({}, w.deps());
    expect(w.key(OLD).state).toBe('PendingDeletion');
    const report = await handleUseAttempt(attempt(w, { errorCode: 'KMSInvalidStateException' }), w.deps());
    expect(report.outcome).toBe('stopped');
    expect(w.changes.slice(-3)).toEqual([
      `CancelKeyDeletion ${OLD}`,
      `EnableKey ${OLD}`,
      expect.stringMatching(/^TagResource .*kms-rotation:retirement=stopped/),
    ]);
    expect(w.key(OLD).state).toBe('Enabled');
    expect(w.published.at(-1)).toMatchObject({
      type: 'PredecessorInUse',
      severity: 'WARNING',
      details: { eventId: 'ct-1', wasState: 'PendingDeletion' },
    });
    expect(w.key(OLD).tags['kms-rotation:retirement-stopped-by']).toBe('use-attempt ct-1');
  });

  it('a refused use of a key we did not retire, or whose retirement has not disabled it, changes nothing', async () => {
    const ours = world(1);
    ours.key(OLD).state = 'Disabled'; // disabled by someone else
    expect((await handleUseAttempt(attempt(ours), ours.deps())).outcome).toBe('waiting');

    const foreign = world(400);
    foreign.key(NEW).tags['kms-rotation:predecessor'] = 'someone-else';
    foreign.key(OLD).tags['kms-rotation:retirement'] = 'disabled';
    expect((await handleUseAttempt(attempt(foreign), foreign.deps())).outcome).toBe('not-ours');
    for (const w of [ours, foreign]) {
      expect(w.changes).toEqual([]);
      expect(w.published).toEqual([]);
    }
  });
});

describe('retire: modes and dry runs', () => {
  it('in a dry run reports the plan and changes and tells nothing', async () => {
    const w = world(400);
    const report = await retirePredecessors({}, w.deps({ mode: 'dry-run' }));
    expect(report).toMatchObject({ dryRun: true, examined: 1 });
    expect(report.keys[0]).toMatchObject({ outcome: 'disabled' });
    expect(report.keys[0]?.steps.at(-1)?.status).toBe('planned');
    expect(w.changes).toEqual([]);
    expect(w.published).toEqual([]);
    expect((await handleUseAttempt(attempt(w), w.deps({ mode: 'dry-run' }))).outcome).toBe('waiting');
  });

  it('refuses "dryRun": false unless the stage is in enforce mode, before any call', async () => {
    const w = world(400);
    const deps = w.deps({ mode: 'dry-run' });
    deps.keys = new Proxy(w, { get: () => () => Promise.reject(new Error('no call expected')) }) as never;
    await expect(retirePredecessors({ dryRun: false }, deps)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(retirePredecessors({ dryRun: false }, w.deps({ mode: 'off' }))).rejects.toBeInstanceOf(
      InvalidInputError,
    );
  });

  it('with retireMode off examines nothing unless a dry run is asked for', async () => {
    const w = world(400);
    expect(await retirePredecessors({ scheduled: true }, w.deps({ mode: 'off' }))).toMatchObject({
      examined: 0,
      summary: 'retireMode is off: no key examined',
    });
    const planned = await retirePredecessors({ dryRun: true }, w.deps({ mode: 'off' }));
    expect(planned.examined).toBe(1);
    expect(w.changes).toEqual([]);
  });

  it('holds the key lease while it acts, and is refused a key another run holds', async () => {
    const w = world(400);
    const deps = w.deps();
    await deps.leases.acquire({
      keyId: OLD,
      holder: 'rotate other',
      purpose: 'rollback',
      until: new Date(w.now.getTime() + DAY),
    });
    await expect(retirePredecessors({}, deps)).rejects.toThrow(/being changed by another run/);
    expect(w.changes).toEqual([]);
  });
});

describe('lineageHolds', () => {
  it('holds only when both keys name each other under one rotation id, the successor active with its rotated-at', () => {
    const retired = { 'kms-rotation:state': 'retired', 'kms-rotation:successor': NEW, 'kms-rotation:rotation-id': 'r' };
    const active = {
      'kms-rotation:state': 'active',
      'kms-rotation:predecessor': OLD,
      'kms-rotation:rotation-id': 'r',
      'kms-rotation:rotated-at': '2026-01-01T00:00:00.000Z',
    };
    expect(lineageHolds(OLD, retired, active)).toEqual({ holds: true, swappedAt: new Date('2026-01-01T00:00:00Z') });
    expect(lineageHolds(OLD, { ...retired, 'kms-rotation:state': 'rotating' }, active).holds).toBe(false);
    expect(lineageHolds(OLD, retired, { ...active, 'kms-rotation:rotated-at': 'yesterday' }).holds).toBe(false);
    expect(lineageHolds(OLD, retired, undefined).holds).toBe(false);
  });
});
