import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { Notification } from '../domain/model';
import type { Notifier } from '../domain/ports';
import { callAws } from './aws-errors';

/** SNS subjects must be printable ASCII, under 100 characters. */
const subjectOf = (notification: Notification): string => {
  const name = notification.aliases[0] ?? notification.keyId;
  const selfTest = notification.selfTest ? '[self-test] ' : '';
  const subject = `${selfTest}[${notification.severity}] ${notification.type}: ${name}`.replace(/[^\x20-\x7e]/g, '?');
  return subject.length > 99 ? `${subject.slice(0, 96)}...` : subject;
};

/**
 * Publishes the JSON notification (docs/architecture.md#notifications), with `type` and `severity` as message attributes
 * for filtering, and `selfTest` on the notifications of a self-test run (so a subscription can
 * leave them out: `{"selfTest": [{"exists": false}]}`).
 */
export class SnsNotifier implements Notifier {
  constructor(
    private readonly sns: SNSClient,
    private readonly topicArn: string,
  ) {}

  async publish(notification: Notification): Promise<void> {
    await callAws('Publish', this.topicArn, () =>
      this.sns.send(
        new PublishCommand({
          TopicArn: this.topicArn,
          Subject: subjectOf(notification),
          Message: JSON.stringify(notification),
          MessageAttributes: {
            type: { DataType: 'String', StringValue: notification.type },
            severity: { DataType: 'String', StringValue: notification.severity },
            ...(notification.selfTest ? { selfTest: { DataType: 'String', StringValue: 'true' } } : {}),
          },
        }),
      ),
    );
  }
}
