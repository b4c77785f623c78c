import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import type { StoredRecord } from './managed-key';

/** A sample event or payload from `events/`, as EventBridge or a person would send it. */
export const sampleEvent = (file: string) => JSON.parse(readFileSync(join('events', file), 'utf8'));

/** One CloudWatch EMF blob, as Powertools Metrics prints it. */
export interface EmfBlob {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[];
  };
  [field: string]: unknown;
}

/** The EMF blobs among the lines printed through a spied `console.log` (Powertools dev mode prints there). */
export const emfBlobs = (consoleLog: { mock: { calls: unknown[][] } }): EmfBlob[] =>
  consoleLog.mock.calls.flatMap(([line]) => {
    try {
      const parsed = JSON.parse(String(line));
      return Array.isArray(parsed?._aws?.CloudWatchMetrics) ? [parsed as EmfBlob] : [];
    } catch {
      return [];
    }
  });

/** Each SNS Publish: the JSON message, its attributes and subject. */
export const publishedNotifications = (sns: AwsClientStub<SNSClient>) =>
  sns.commandCalls(PublishCommand).map((call) => ({
    topicArn: call.args[0].input.TopicArn,
    subject: call.args[0].input.Subject,
    message: JSON.parse(call.args[0].input.Message ?? 'null'),
    attributes: call.args[0].input.MessageAttributes,
  }));

/** Each key record the service wrote to SSM, parsed. */
export const savedRecords = (ssm: AwsClientStub<SSMClient>): StoredRecord[] =>
  ssm.commandCalls(PutParameterCommand).map((call) => JSON.parse(call.args[0].input.Value ?? 'null'));
