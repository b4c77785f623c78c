import { DeleteItemCommand, type DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { KeyLease, KeyLeases } from '../domain/ports';
import { callAws, translateAwsError } from './aws-errors';

const seconds = (date: Date) => String(Math.ceil(date.getTime() / 1000));

/**
 * Key leases in one DynamoDB table, one item per key being changed. Taking a lease is one
 * conditional PutItem: it succeeds only when no item exists, the item's lease has ended, or
 * the item is the caller's own; DynamoDB applies the condition and the write atomically
 * (docs/concurrency.md). `expiresAt` (epoch seconds) is also the table's TTL attribute, so
 * ended leases are removed by themselves; until then the condition ignores them.
 */
export class DynamoKeyLeases implements KeyLeases {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async acquire(lease: KeyLease, retried = false): Promise<KeyLease | undefined> {
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: {
            keyId: { S: lease.keyId },
            holder: { S: lease.holder },
            purpose: { S: lease.purpose },
            expiresAt: { N: seconds(lease.until) },
          },
          ConditionExpression: 'attribute_not_exists(keyId) OR expiresAt < :now OR holder = :holder',
          ExpressionAttributeValues: { ':now': { N: seconds(this.now()) }, ':holder': { S: lease.holder } },
        }),
      );
      return undefined;
    } catch (error) {
      if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') {
        throw translateAwsError('PutItem', `the lease of ${lease.keyId}`, error);
      }
    }
    const other = await this.current(lease.keyId);
    // Released between our write and our read: take it now.
    if (!other && !retried) return this.acquire(lease, true);
    return other ?? { ...lease, holder: 'another run', purpose: 'released and taken again just now' };
  }

  async release(keyId: string, holder: string): Promise<void> {
    try {
      await this.db.send(
        new DeleteItemCommand({
          TableName: this.table,
          Key: { keyId: { S: keyId } },
          ConditionExpression: 'holder = :holder',
          ExpressionAttributeValues: { ':holder': { S: holder } },
        }),
      );
    } catch (error) {
      // Ended and taken by another run meanwhile: that lease is not ours to give back.
      if ((error as { name?: string }).name === 'ConditionalCheckFailedException') return;
      throw translateAwsError('DeleteItem', `the lease of ${keyId}`, error);
    }
  }

  /** The lease that refused us, read strongly consistent; gone if it ended since. */
  private async current(keyId: string): Promise<KeyLease | undefined> {
    const { Item } = await callAws('GetItem', `the lease of ${keyId}`, () =>
      this.db.send(new GetItemCommand({ TableName: this.table, Key: { keyId: { S: keyId } }, ConsistentRead: true })),
    );
    if (!Item) return undefined;
    return {
      keyId,
      holder: Item.holder?.S ?? 'another run',
      purpose: Item.purpose?.S ?? 'unknown',
      until: new Date(Number(Item.expiresAt?.N ?? 0) * 1000),
    };
  }
}
