import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { FinishedItem, ItemCounts, OrgAuditItem, OrgAuditRun } from '../domain/org-audit';
import { itemNameOf } from '../domain/org-audit';
import { callAws, translateAwsError } from './aws-errors';

/** The sort key of a run's own row; item rows are `<account>/<region>`. */
export const RUN_ROW = '#run';

/** Rows are removed by the table's TTL this long after their run started. */
export const RUN_TTL_DAYS = 30;

const isConditionFailure = (error: unknown): boolean =>
  (error as { name?: string }).name === 'ConditionalCheckFailedException';

/** A transaction cancelled only because a condition failed (the item was finished already). */
const cancelledByCondition = (error: unknown): boolean =>
  (error as { name?: string }).name === 'TransactionCanceledException' &&
  ((error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? []).some(
    (reason) => reason.Code === 'ConditionalCheckFailed',
  );

const s = (value: string): AttributeValue => ({ S: value });
const n = (value: number): AttributeValue => ({ N: String(value) });

/**
 * The organization audit's runs in one DynamoDB table (docs/org-audit.md#the-run-table): key
 * `runId` + `item`; the run's row (`#run`: expected, done, startedAt, reportedBy) and one row per
 * item. Every write that counts is conditional, so a redelivered message changes nothing.
 */
export class DynamoOrgAuditRuns {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
  ) {}

  private expiresAt(startedAt: string): AttributeValue {
    return n(Math.ceil(new Date(startedAt).getTime() / 1000) + RUN_TTL_DAYS * 86_400);
  }

  /** The run's row, once: expected items, none done yet. */
  async createRun(run: OrgAuditRun): Promise<void> {
    await callAws('PutItem', `run ${run.runId}`, () =>
      this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: {
            runId: s(run.runId),
            item: s(RUN_ROW),
            startedAt: s(run.startedAt),
            expected: n(run.expected),
            done: n(0),
            expiresAt: this.expiresAt(run.startedAt),
          },
          ConditionExpression: 'attribute_not_exists(runId)',
        }),
      ),
    );
  }

  /** How many items `orgAudit` sent to the queue (the rest it recorded failed). */
  async recordSent(runId: string, sent: number): Promise<void> {
    await callAws('UpdateItem', `run ${runId}`, () =>
      this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { runId: s(runId), item: s(RUN_ROW) },
          UpdateExpression: 'SET sent = :sent',
          ConditionExpression: 'attribute_exists(runId)',
          ExpressionAttributeValues: { ':sent': n(sent) },
        }),
      ),
    );
  }

  async run(runId: string): Promise<(OrgAuditRun & { done: number; reportedAt?: string }) | undefined> {
    const answer = await callAws('GetItem', `run ${runId}`, () =>
      this.db.send(
        new GetItemCommand({ TableName: this.table, Key: { runId: s(runId), item: s(RUN_ROW) }, ConsistentRead: true }),
      ),
    );
    const row = answer.Item;
    if (!row) return undefined;
    return {
      runId,
      startedAt: row.startedAt?.S ?? '',
      expected: Number(row.expected?.N ?? 0),
      done: Number(row.done?.N ?? 0),
      ...(row.reportedAt?.S ? { reportedAt: row.reportedAt.S } : {}),
    };
  }

  /** A failed attempt: its number and error on the item's row, unless the item is finished already. */
  async recordFailedAttempt(item: OrgAuditItem, attempt: number, error: string): Promise<void> {
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { runId: s(item.runId), item: s(itemNameOf(item)) },
          UpdateExpression:
            'SET attempts = :attempt, lastError = :error, expiresAt = if_not_exists(expiresAt, :expires)',
          ConditionExpression: 'attribute_not_exists(finished)',
          ExpressionAttributeValues: {
            ':attempt': n(attempt),
            ':error': s(error),
            ':expires': n(Math.ceil(Date.now() / 1000) + RUN_TTL_DAYS * 86_400),
          },
        }),
      );
    } catch (error_) {
      if (!isConditionFailure(error_)) throw translateAwsError('UpdateItem', `item ${itemNameOf(item)}`, error_);
    }
  }

  /** The item's row as the attempts left it: its last error, and whether it is finished. */
  async itemState(item: OrgAuditItem): Promise<{ finished: boolean; lastError?: string; attempts?: number }> {
    const answer = await callAws('GetItem', `item ${itemNameOf(item)}`, () =>
      this.db.send(
        new GetItemCommand({
          TableName: this.table,
          Key: { runId: s(item.runId), item: s(itemNameOf(item)) },
          ConsistentRead: true,
        }),
      ),
    );
    const row = answer.Item;
    return {
      finished: row?.finished?.BOOL === true,
      ...(row?.lastError?.S ? { lastError: row.lastError.S } : {}),
      ...(row?.attempts?.N ? { attempts: Number(row.attempts.N) } : {}),
    };
  }

  /**
   * Finishes the item and counts it done, in one transaction: the item's row is written only if it
   * was not finished, and the run's `done` goes up by one with it, or neither happens. `already`:
   * the item was finished before (a redelivered message), nothing changed.
   */
  async finishItem(runId: string, finished: FinishedItem): Promise<'counted' | 'already'> {
    const row: Record<string, AttributeValue> = {
      runId: s(runId),
      item: s(itemNameOf(finished)),
      finished: { BOOL: true },
      account: s(finished.account),
      region: s(finished.region),
      attempts: n(finished.attempts),
      outcome: s(finished.outcome),
      expiresAt: n(Math.ceil(Date.now() / 1000) + RUN_TTL_DAYS * 86_400),
      ...(finished.ouPath ? { ouPath: s(finished.ouPath) } : {}),
      ...(finished.outcome === 'audited'
        ? { counts: s(JSON.stringify(finished.counts)) }
        : { error: s(finished.error) }),
    };
    try {
      await this.db.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.table,
                Item: row,
                ConditionExpression: 'attribute_not_exists(finished)',
              },
            },
            {
              Update: {
                TableName: this.table,
                Key: { runId: s(runId), item: s(RUN_ROW) },
                UpdateExpression: 'ADD done :one',
                ConditionExpression: 'attribute_exists(runId)',
                ExpressionAttributeValues: { ':one': n(1) },
              },
            },
          ],
        }),
      );
      return 'counted';
    } catch (error) {
      if (cancelledByCondition(error)) {
        // The run's row missing is a different failure from the item being finished already.
        const state = await this.itemState({ runId, account: finished.account, region: finished.region });
        if (state.finished) return 'already';
      }
      throw translateAwsError('TransactWriteItems', `item ${itemNameOf(finished)} of run ${runId}`, error);
    }
  }

  /**
   * Claims the run's report for `claimant` (a message id): only when every item is done and no other
   * claimant has it. The same claimant may claim again (its message redelivered after a crash).
   */
  async claimReport(runId: string, claimant: string): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { runId: s(runId), item: s(RUN_ROW) },
          UpdateExpression: 'SET reportedBy = :claimant',
          ConditionExpression:
            'done = expected AND attribute_not_exists(reportedAt) AND (attribute_not_exists(reportedBy) OR reportedBy = :claimant)',
          ExpressionAttributeValues: { ':claimant': s(claimant) },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw translateAwsError('UpdateItem', `report of run ${runId}`, error);
    }
  }

  async markReported(runId: string, at: string): Promise<void> {
    await callAws('UpdateItem', `run ${runId}`, () =>
      this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { runId: s(runId), item: s(RUN_ROW) },
          UpdateExpression: 'SET reportedAt = :at',
          ExpressionAttributeValues: { ':at': s(at) },
        }),
      ),
    );
  }

  /** Every finished item of the run (consistent reads, page by page). */
  async finishedItems(runId: string): Promise<FinishedItem[]> {
    const items: FinishedItem[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await callAws('Query', `run ${runId}`, () =>
        this.db.send(
          new QueryCommand({
            TableName: this.table,
            KeyConditionExpression: 'runId = :run',
            ExpressionAttributeValues: { ':run': s(runId) },
            ConsistentRead: true,
            ExclusiveStartKey: start,
          }),
        ),
      );
      for (const row of page.Items ?? []) {
        if (row.item?.S === RUN_ROW || row.finished?.BOOL !== true) continue;
        const base = {
          account: row.account?.S ?? '',
          region: row.region?.S ?? '',
          attempts: Number(row.attempts?.N ?? 0),
          ...(row.ouPath?.S ? { ouPath: row.ouPath.S } : {}),
        };
        items.push(
          row.outcome?.S === 'audited'
            ? { ...base, outcome: 'audited', counts: JSON.parse(row.counts?.S ?? '{}') as ItemCounts }
            : { ...base, outcome: 'failed', error: row.error?.S ?? 'unknown' },
        );
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }
}
