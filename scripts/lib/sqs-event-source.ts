import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  type QueueAttributeName,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { InvokeResult } from './invoke';

/**
 * What Lambda's SQS event source mapping does, against the real (moto) queue: moto cannot run the
 * mapping itself. Receives with `ApproximateReceiveCount`, invokes the worker with the SQS event
 * shape, one message per event (the mapping's BatchSize 1), never more than `maxConcurrency`
 * invocations at once (the mapping's ScalingConfig.MaximumConcurrency, read from the template),
 * deletes a message its invocation succeeded with, and makes visible again at once a message the
 * invocation named in `batchItemFailures` or that failed as a whole (Lambda waits for the queue's
 * visibility timeout; the test does not). moto's redrive policy moves a message to the
 * dead-letter queue after `maxReceiveCount` receives, as SQS does.
 */
export interface EventSourceRun {
  /** Invocations, in the order they were made. */
  invocations: { messageId: string; receiveCount: number; outcome: 'deleted' | 'returned'; result: InvokeResult }[];
  /** The most invocations that were running at once. */
  peakConcurrency: number;
}

/** The event Lambda's SQS event source mapping gives a function for one received message (BatchSize 1). */
export const sqsEventOf = (message: Message) => ({
  Records: [
    {
      messageId: message.MessageId,
      receiptHandle: message.ReceiptHandle,
      body: message.Body,
      attributes: {
        ApproximateReceiveCount: String(Number(message.Attributes?.ApproximateReceiveCount ?? '0')),
        SentTimestamp: String(Date.now()),
        SenderId: 'AIDAEXAMPLE',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: message.MD5OfBody,
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:org-audit',
      awsRegion: 'us-east-1',
    },
  ],
});

export const drainQueue = async (opts: {
  sqs: SQSClient;
  queueUrl: string;
  maxConcurrency: number;
  invoke: (event: unknown) => Promise<InvokeResult>;
  /** Stop after this many receive rounds that found nothing (the queue is drained). */
  emptyRounds?: number;
  /** A bound on invocations: a worker that never settles an item must not loop forever. */
  maxInvocations?: number;
}): Promise<EventSourceRun> => {
  const run: EventSourceRun = { invocations: [], peakConcurrency: 0 };
  let running = 0;
  let empty = 0;
  const maxInvocations = opts.maxInvocations ?? 200;
  const handle = async (message: Message): Promise<void> => {
    const receiveCount = Number(message.Attributes?.ApproximateReceiveCount ?? '0');
    const event = sqsEventOf(message);
    const result = await opts.invoke(event);
    const failures =
      result.ok && typeof result.result === 'object' && result.result !== null
        ? ((result.result as { batchItemFailures?: { itemIdentifier: string }[] }).batchItemFailures ?? [])
        : undefined;
    const succeeded =
      failures !== undefined && !failures.some((failure) => failure.itemIdentifier === message.MessageId);
    if (succeeded) {
      await opts.sqs.send(new DeleteMessageCommand({ QueueUrl: opts.queueUrl, ReceiptHandle: message.ReceiptHandle }));
    } else {
      await opts.sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: opts.queueUrl,
          ReceiptHandle: message.ReceiptHandle,
          VisibilityTimeout: 0,
        }),
      );
    }
    run.invocations.push({
      messageId: message.MessageId ?? '',
      receiveCount,
      outcome: succeeded ? 'deleted' : 'returned',
      result,
    });
  };
  const inFlight = new Set<Promise<void>>();
  while (empty < (opts.emptyRounds ?? 2) && run.invocations.length + inFlight.size < maxInvocations) {
    const room = opts.maxConcurrency - running;
    if (room <= 0) {
      await Promise.race(inFlight);
      continue;
    }
    const { Messages = [] } = await opts.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: opts.queueUrl,
        MaxNumberOfMessages: Math.min(10, room),
        // The current name and the older one (which moto may read): the receive count either way.
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        AttributeNames: ['ApproximateReceiveCount' as QueueAttributeName],
        WaitTimeSeconds: 0,
      }),
    );
    if (Messages.length === 0) {
      if (inFlight.size > 0) {
        await Promise.race(inFlight);
        continue;
      }
      empty += 1;
      continue;
    }
    empty = 0;
    for (const message of Messages) {
      running += 1;
      run.peakConcurrency = Math.max(run.peakConcurrency, running);
      const work: Promise<void> = handle(message).finally(() => {
        running -= 1;
        inFlight.delete(work);
      });
      inFlight.add(work);
    }
  }
  await Promise.all(inFlight);
  return run;
};
