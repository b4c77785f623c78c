import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, vi } from 'vitest';

/** One request an SDK client sent to the local endpoint. */
export interface RecordedRequest {
  method: string;
  url: string;
  /** `TrentService.DescribeKey`, `AmazonSSM.GetParameter`, `Publish`, ... */
  operation: string;
  body: string;
}

/**
 * How the endpoint answers:
 * - `fail`: every request HTTP 500 (a refused input must not get this far: any request is a finding);
 * - `unknown-key`: like AWS for a key and a parameter that do not exist (KMS NotFoundException,
 *   SSM ParameterNotFound, no aliases, no tagged keys, no parameters under a path; SNS Publish,
 *   SSM PutParameter, the key lease's DynamoDB PutItem and DeleteItem, and STS AssumeRole succeed),
 *   anything else HTTP 500;
 * - `deleted-managed-key`: like `unknown-key`, except that the service has a record of every key
 *   (SSM GetParameter answers `{"managed":true}`): a key it managed that has since been deleted.
 */
export type AwsAnswers = 'fail' | 'unknown-key' | 'deleted-managed-key';

export interface RecordingAws {
  /** For `AWS_ENDPOINT_URL`. */
  readonly url: string;
  readonly requests: RecordedRequest[];
  answers: AwsAnswers;
  close(): Promise<void>;
}

const JSON_11 = 'application/x-amz-json-1.1';

const operationOf = (request: IncomingMessage, body: string): string => {
  const target = request.headers['x-amz-target'];
  if (typeof target === 'string') return target;
  const action = new URLSearchParams(body).get('Action');
  if (action) return action;
  return `${request.method} ${request.url}`;
};

interface Answer {
  status: number;
  contentType: string;
  body: string;
}
const json = (status: number, payload: unknown): Answer => ({
  status,
  contentType: JSON_11,
  body: JSON.stringify(payload),
});
const INTERNAL_FAILURE = (message: string) => json(500, { __type: 'InternalFailure', message });
const SNS_PUBLISHED: Answer = {
  status: 200,
  contentType: 'text/xml',
  body: '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>m-1</MessageId></PublishResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>',
};

/** STS AssumeRole (a member role, organization mode): credentials of the role asked for. */
const ASSUMED_ROLE: Answer = {
  status: 200,
  contentType: 'text/xml',
  body: '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>ASIAMEMBEREXAMPLE</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::111111111111:assumed-role/member/session</Arn><AssumedRoleId>AROAEXAMPLE:session</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></AssumeRoleResponse>',
};

const MANAGED_RECORD = json(200, { Parameter: { Value: JSON.stringify({ managed: true }), Version: 1 } });

const answerUnknownKey = (operation: string, body: string): Answer => {
  const [service, call] = operation.split('.');
  if (service === 'TrentService') {
    if (call === 'ListAliases') return json(200, { Aliases: [], Truncated: false });
    let keyId = '';
    try {
      keyId = String(JSON.parse(body).KeyId ?? '');
    } catch {}
    return json(400, { __type: 'NotFoundException', message: `Key '${keyId}' does not exist` });
  }
  if (operation === 'AmazonSSM.GetParameter') return json(400, { __type: 'ParameterNotFound' });
  if (operation === 'AmazonSSM.GetParametersByPath') return json(200, { Parameters: [] });
  if (operation === 'AmazonSSM.PutParameter') return json(200, { Version: 1, Tier: 'Standard' });
  if (operation === 'ResourceGroupsTaggingAPI_20170126.GetResources') return json(200, { ResourceTagMappingList: [] });
  if (operation === 'Publish') return SNS_PUBLISHED;
  if (operation === 'AssumeRole') return ASSUMED_ROLE;
  // Key leases: free, and given back.
  if (operation === 'DynamoDB_20120810.PutItem' || operation === 'DynamoDB_20120810.DeleteItem') return json(200, {});
  return INTERNAL_FAILURE(`not emulated: ${operation}`);
};

/** A local HTTP endpoint standing in for every AWS service: records each request, answers as `answers` says. */
export const startRecordingAws = async (): Promise<RecordingAws> => {
  const requests: RecordedRequest[] = [];
  const state = { answers: 'fail' as AwsAnswers };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const operation = operationOf(request, body);
      requests.push({ method: request.method ?? '', url: request.url ?? '', operation, body });
      const answer =
        state.answers === 'fail'
          ? INTERNAL_FAILURE('recording endpoint')
          : state.answers === 'deleted-managed-key' && operation === 'AmazonSSM.GetParameter'
            ? MANAGED_RECORD
            : answerUnknownKey(operation, body);
      response.writeHead(answer.status, { 'content-type': answer.contentType });
      response.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get answers() {
      return state.answers;
    },
    set answers(value: AwsAnswers) {
      state.answers = value;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
};

/**
 * A recording endpoint for one `describe`, answering as `answers` says: started before its tests,
 * closed after them; each test's stubbed environment and loaded modules undone after it.
 */
export const useRecordingAws = (answers: AwsAnswers): { aws: RecordingAws } => {
  const holder = {} as { aws: RecordingAws };
  beforeAll(async () => {
    holder.aws = await startRecordingAws();
    holder.aws.answers = answers;
  });
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });
  afterAll(async () => {
    await holder.aws.close();
  });
  return holder;
};
