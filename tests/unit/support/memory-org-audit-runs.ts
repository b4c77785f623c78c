import type { FinishedItem, OrgAuditItem, OrgAuditRun } from '../../../src/domain/org-audit';
import { itemNameOf } from '../../../src/domain/org-audit';
import type { OrgAuditRuns } from '../../../src/domain/org-audit-run';

interface RunRow extends OrgAuditRun {
  done: number;
  sent?: number;
  reportedBy?: string;
  reportedAt?: string;
}

/** The run table in memory, with DynamoDB's conditional semantics as the adapter writes them. */
export class MemoryOrgAuditRuns implements OrgAuditRuns {
  readonly runs = new Map<string, RunRow>();
  readonly attempts = new Map<string, { attempts: number; lastError: string }>();
  readonly finished = new Map<string, FinishedItem & { runId: string }>();

  private key(runId: string, item: { account: string; region: string }): string {
    return `${runId}|${itemNameOf(item)}`;
  }

  async createRun(run: OrgAuditRun): Promise<void> {
    if (this.runs.has(run.runId)) throw new Error('ConditionalCheckFailedException');
    this.runs.set(run.runId, { ...run, done: 0 });
  }

  async recordSent(runId: string, sent: number): Promise<void> {
    const row = this.runs.get(runId);
    if (!row) throw new Error('ConditionalCheckFailedException');
    row.sent = sent;
  }

  async recordFailedAttempt(item: OrgAuditItem, attempt: number, error: string): Promise<void> {
    if (this.finished.has(this.key(item.runId, item))) return;
    this.attempts.set(this.key(item.runId, item), { attempts: attempt, lastError: error });
  }

  async itemState(item: OrgAuditItem) {
    const state = this.attempts.get(this.key(item.runId, item));
    return {
      finished: this.finished.has(this.key(item.runId, item)),
      ...(state ? { lastError: state.lastError, attempts: state.attempts } : {}),
    };
  }

  async finishItem(runId: string, finished: FinishedItem): Promise<'counted' | 'already'> {
    const row = this.runs.get(runId);
    if (this.finished.has(this.key(runId, finished))) return 'already';
    if (!row) throw new Error(`no run ${runId}`);
    this.finished.set(this.key(runId, finished), { ...finished, runId });
    row.done += 1;
    return 'counted';
  }

  async claimReport(runId: string, claimant: string): Promise<boolean> {
    const row = this.runs.get(runId);
    if (!row || row.done !== row.expected || row.reportedAt) return false;
    if (row.reportedBy !== undefined && row.reportedBy !== claimant) return false;
    row.reportedBy = claimant;
    return true;
  }

  async markReported(runId: string, at: string): Promise<void> {
    const row = this.runs.get(runId);
    if (row) row.reportedAt = at;
  }

  async finishedItems(runId: string): Promise<FinishedItem[]> {
    return [...this.finished.values()]
      .filter((item) => item.runId === runId)
      .map(({ runId: _, ...item }) => item as FinishedItem);
  }

  async run(runId: string) {
    const row = this.runs.get(runId);
    return row
      ? {
          runId,
          startedAt: row.startedAt,
          expected: row.expected,
          done: row.done,
          ...(row.reportedAt ? { reportedAt: row.reportedAt } : {}),
        }
      : undefined;
  }
}
