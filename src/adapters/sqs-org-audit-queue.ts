import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { describeError } from '../domain/errors';
import type { OrgAuditItem } from '../domain/org-audit';
import { itemNameOf } from '../domain/org-audit';
import { callAws } from './aws-errors';

/** SendMessageBatch takes at most 10 entries. */
export const SQS_BATCH_SIZE = 10;

/** How many times a batch's failed entries are sent again before they are given up. */
export const SEND_ROUNDS = 5;

export interface SendOutcome {
  sent: OrgAuditItem[];
  /** Items still not sent after every round, each with the last reason. */
  unsent: { item: OrgAuditItem; error: string }[];
}

/**
 * The organization audit's queue: one message per item, 10 per SendMessageBatch. A batch can
 * succeed for some entries and fail for others (its `Failed` list); every failed entry, and every
 * entry of a call that failed as a whole, is sent again, up to `SEND_ROUNDS` rounds; what is still
 * not sent is returned by name, never dropped silently.
 */
export class SqsOrgAuditQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
    private readonly pause: (round: number) => Promise<void> = (round) =>
      new Promise((resolve) => setTimeout(resolve, 200 * 2 ** round)),
  ) {}

  async sendItems(items: readonly OrgAuditItem[]): Promise<SendOutcome> {
    const sent: OrgAuditItem[] = [];
    let pending = items.map((item) => ({ item, error: 'not sent' }));
    for (let round = 0; round < SEND_ROUNDS && pending.length > 0; round++) {
      if (round > 0) await this.pause(round);
      const failed: typeof pending = [];
      for (let start = 0; start < pending.length; start += SQS_BATCH_SIZE) {
        const batch = pending.slice(start, start + SQS_BATCH_SIZE);
        try {
          const answer = await callAws('SendMessageBatch', this.queueUrl, () =>
            this.client.send(
              new SendMessageBatchCommand({
                QueueUrl: this.queueUrl,
                Entries: batch.map(({ item }, index) => ({ Id: String(index), MessageBody: JSON.stringify(item) })),
              }),
            ),
          );
          const failedIds = new Map((answer.Failed ?? []).map((entry) => [entry.Id, entry]));
          const okIds = new Set((answer.Successful ?? []).map((entry) => entry.Id));
          batch.forEach((entry, index) => {
            const failure = failedIds.get(String(index));
            if (okIds.has(String(index)) && !failure) sent.push(entry.item);
            else
              failed.push({
                item: entry.item,
                error: failure ? `${failure.Code}: ${failure.Message ?? ''}` : 'no answer for the entry',
              });
          });
        } catch (error) {
          failed.push(...batch.map(({ item }) => ({ item, error: describeError(error) })));
        }
      }
      pending = failed;
    }
    return { sent, unsent: pending };
  }
}

export const unsentNames = (outcome: SendOutcome): string[] => outcome.unsent.map(({ item }) => itemNameOf(item));
