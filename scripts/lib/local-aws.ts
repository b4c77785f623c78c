import { KMSClient } from '@aws-sdk/client-kms';
import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

/** SDK clients pointed at the local emulator. */
export const emulatorClients = (endpoint: string, region = 'us-east-1') => {
  const config = { endpoint, region, credentials };
  return {
    kms: new KMSClient(config),
    sns: new SNSClient(config),
    sqs: new SQSClient(config),
    ssm: new SSMClient(config),
  };
};

export type EmulatorClients = ReturnType<typeof emulatorClients>;

export interface ReceivedNotification {
  subject?: string;
  attributes: Record<string, string>;
  body: Record<string, unknown>;
}

/** Subscribes a fresh queue to the topic, the way a person's mailbox would be, and returns a reader of it. */
export const subscribeQueueToTopic = async (clients: EmulatorClients, topicArn: string, queueName: string) => {
  const { QueueUrl } = await clients.sqs.send(new CreateQueueCommand({ QueueName: queueName }));
  if (!QueueUrl) throw new Error(`CreateQueue ${queueName} returned no URL`);
  const { Attributes } = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  await clients.sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: Attributes?.QueueArn }));
  return {
    queueUrl: QueueUrl,
    /** Every notification delivered so far, removed from the queue. */
    drain: async (): Promise<ReceivedNotification[]> => {
      const received: ReceivedNotification[] = [];
      for (;;) {
        const { Messages = [] } = await clients.sqs.send(
          new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
        );
        if (Messages.length === 0) return received;
        for (const message of Messages) {
          const envelope = JSON.parse(message.Body ?? '{}') as {
            Subject?: string;
            Message: string;
            MessageAttributes?: Record<string, { Value: string }>;
          };
          received.push({
            subject: envelope.Subject,
            attributes: Object.fromEntries(
              Object.entries(envelope.MessageAttributes ?? {}).map(([name, attribute]) => [name, attribute.Value]),
            ),
            body: JSON.parse(envelope.Message) as Record<string, unknown>,
          });
        }
        await clients.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl,
            Entries: Messages.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })),
          }),
        );
      }
    },
  };
};

/** A `KMS CMK Rotation` event as KMS sends it (docs/kms-facts.md#kms-cmk-rotation). */
export const rotationEvent = (opts: {
  keyId: string;
  keyArn: string;
  time: Date;
  rotationType?: 'AUTOMATIC' | 'ON_DEMAND';
  id?: string;
  account?: string;
  region?: string;
}) => ({
  version: '0',
  id: opts.id ?? crypto.randomUUID(),
  'detail-type': 'KMS CMK Rotation',
  source: 'aws.kms',
  account: opts.account ?? '123456789012',
  time: opts.time.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  region: opts.region ?? 'us-east-1',
  resources: [opts.keyArn],
  detail: opts.rotationType
    ? { 'key-id': opts.keyId, 'key-origin': 'AWS_KMS', 'rotation-type': opts.rotationType }
    : { 'key-id': opts.keyId },
});

/**
 * A CloudTrail record of a successful KMS management call by a person (an IAM user), as
 * EventBridge delivers it (`AWS API Call via CloudTrail`). `resourceArns` are the key and alias
 * ARNs CloudTrail lists for the call.
 */
export const kmsCallRecord = (opts: {
  eventName: string;
  requestParameters: Record<string, string>;
  resourceArns: readonly string[];
  account?: string;
  region?: string;
  user?: string;
  id?: string;
}) => {
  const account = opts.account ?? '123456789012';
  const region = opts.region ?? 'us-east-1';
  const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const id = opts.id ?? crypto.randomUUID();
  return {
    version: '0',
    id,
    'detail-type': 'AWS API Call via CloudTrail',
    source: 'aws.kms',
    account,
    time: at,
    region,
    resources: [],
    detail: {
      eventVersion: '1.11',
      userIdentity: {
        type: 'IAMUser',
        arn: `arn:aws:iam::${account}:user/${opts.user ?? 'Alice'}`,
        accountId: account,
      },
      eventTime: at,
      eventSource: 'kms.amazonaws.com',
      eventName: opts.eventName,
      awsRegion: region,
      sourceIPAddress: '198.51.100.24',
      requestParameters: opts.requestParameters,
      responseElements: null,
      eventID: id,
      resources: opts.resourceArns.map((ARN) => ({
        accountId: account,
        type: ARN.includes(':alias/') ? 'AWS::KMS::Alias' : 'AWS::KMS::Key',
        ARN,
      })),
      eventType: 'AwsApiCall',
      managementEvent: true,
      recipientAccountId: account,
    },
  };
};
