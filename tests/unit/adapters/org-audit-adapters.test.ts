import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  ListAccountsForParentCommand,
  ListOrganizationalUnitsForParentCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoOrgAuditRuns } from '../../../src/adapters/dynamodb-org-audit-runs';
import { OrganizationAccounts } from '../../../src/adapters/organization-accounts';
import { SEND_ROUNDS, SqsOrgAuditQueue } from '../../../src/adapters/sqs-org-audit-queue';
import { AwsServiceError } from '../../../src/domain/errors';
import type { OrgAuditItem } from '../../../src/domain/org-audit';

const organizations = mockClient(OrganizationsClient);
const sqs = mockClient(SQSClient);
const dynamodb = mockClient(DynamoDBClient);

describe('Class: OrganizationAccounts', () => {
  beforeEach(() => organizations.reset());

  it('lists the ACTIVE accounts under each OU, page by page, and under its child OUs, with their OU path', async () => {
    organizations
      .on(ListAccountsForParentCommand, { ParentId: 'ou-ab12-aaaaaaaa' })
      .resolvesOnce({
        Accounts: [
          { Id: '111111111111', Name: 'one', Status: 'ACTIVE' },
          { Id: '222222222222', Status: 'SUSPENDED' },
        ],
        NextToken: 'page-2',
      })
      .resolvesOnce({
        Accounts: [
          { Id: '333333333333', Status: 'ACTIVE' },
          { Id: '444444444444', Status: 'PENDING_CLOSURE' },
        ],
      });
    organizations
      .on(ListOrganizationalUnitsForParentCommand, { ParentId: 'ou-ab12-aaaaaaaa' })
      .resolvesOnce({ OrganizationalUnits: [{ Id: 'ou-ab12-bbbbbbbb' }], NextToken: 'ou-page-2' })
      .resolvesOnce({ OrganizationalUnits: [{ Id: 'ou-ab12-cccccccc' }] });
    organizations.on(ListAccountsForParentCommand, { ParentId: 'ou-ab12-bbbbbbbb' }).resolves({
      Accounts: [{ Id: '555555555555', Status: 'ACTIVE' }],
    });
    organizations.on(ListAccountsForParentCommand, { ParentId: 'ou-ab12-cccccccc' }).resolves({ Accounts: [] });
    organizations.on(ListOrganizationalUnitsForParentCommand, { ParentId: 'ou-ab12-bbbbbbbb' }).resolves({});
    organizations.on(ListOrganizationalUnitsForParentCommand, { ParentId: 'ou-ab12-cccccccc' }).resolves({});

    const accounts = await new OrganizationAccounts(new OrganizationsClient({})).activeAccountsUnder([
      'ou-ab12-aaaaaaaa',
    ]);

    expect(accounts).toEqual([
      { account: '111111111111', name: 'one', ouPath: 'ou-ab12-aaaaaaaa' },
      { account: '333333333333', ouPath: 'ou-ab12-aaaaaaaa' },
      { account: '555555555555', ouPath: 'ou-ab12-aaaaaaaa/ou-ab12-bbbbbbbb' },
    ]);
    expect(
      organizations
        .commandCalls(ListAccountsForParentCommand)
        .map((call) => [call.args[0].input.ParentId, call.args[0].input.NextToken]),
    ).toEqual([
      ['ou-ab12-aaaaaaaa', undefined],
      ['ou-ab12-aaaaaaaa', 'page-2'],
      ['ou-ab12-bbbbbbbb', undefined],
      ['ou-ab12-cccccccc', undefined],
    ]);
  });

  it('names the API and the parent when Organizations refuses (not the management account nor a delegated administrator)', async () => {
    organizations.on(ListAccountsForParentCommand).rejects(
      Object.assign(new Error('You don’t have permissions to access this resource.'), {
        name: 'AccessDeniedException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    await expect(new OrganizationAccounts(new OrganizationsClient({})).activeAccountsUnder(['r-ab12'])).rejects.toThrow(
      /ListAccountsForParent.*r-ab12/,
    );
  });
});

const items = (count: number): OrgAuditItem[] =>
  Array.from({ length: count }, (_, index) => ({
    runId: 'run-1',
    account: String(100000000000 + index),
    region: 'us-east-1',
  }));

describe('Class: SqsOrgAuditQueue', () => {
  beforeEach(() => sqs.reset());
  const noPause = async () => {};

  it('sends 10 messages per SendMessageBatch, each item as its JSON body', async () => {
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
      Successful: input.Entries.map((entry) => ({ Id: entry.Id, MessageId: `m${entry.Id}`, MD5OfMessageBody: '' })),
    }));
    const outcome = await new SqsOrgAuditQueue(new SQSClient({}), 'https://queue', noPause).sendItems(items(25));
    expect(outcome.sent).toHaveLength(25);
    expect(outcome.unsent).toEqual([]);
    const batches = sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input.Entries ?? []);
    expect(batches.map((batch) => batch.length)).toEqual([10, 10, 5]);
    expect(JSON.parse(batches[0]?.[0]?.MessageBody ?? '')).toEqual(items(1)[0]);
  });

  it('sends every failed entry again, and returns by name what never went', async () => {
    let call = 0;
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string; MessageBody: string }[] }) => {
      call += 1;
      // The first call fails entry 1; entry of account ...002 fails always; a whole call fails once.
      if (call === 2)
        throw Object.assign(new Error('busy'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } });
      const failing = input.Entries.filter(
        (entry) => JSON.parse(entry.MessageBody).account === '100000000002' || (call === 1 && entry.Id === '1'),
      );
      return {
        Successful: input.Entries.filter((entry) => !failing.includes(entry)).map((entry) => ({
          Id: entry.Id,
          MessageId: 'm',
          MD5OfMessageBody: '',
        })),
        Failed: failing.map((entry) => ({
          Id: entry.Id,
          Code: 'KMS.ThrottlingException',
          SenderFault: false,
          Message: 'slow down',
        })),
      };
    });
    const outcome = await new SqsOrgAuditQueue(new SQSClient({}), 'https://queue', noPause).sendItems(items(3));
    expect(outcome.sent.map((item) => item.account).sort()).toEqual(['100000000000', '100000000001']);
    expect(outcome.unsent).toEqual([{ item: items(3)[2], error: 'KMS.ThrottlingException: slow down' }]);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(SEND_ROUNDS);
  });
});

describe('Class: DynamoOrgAuditRuns', () => {
  beforeEach(() => dynamodb.reset());
  const runs = () => new DynamoOrgAuditRuns(new DynamoDBClient({}), 'runs');
  const FINISHED = {
    account: '111111111111',
    region: 'us-east-1',
    attempts: 1,
    outcome: 'failed' as const,
    error: 'boom',
  };

  it('finishes an item and counts it done in one transaction, both conditional', async () => {
    dynamodb.on(TransactWriteItemsCommand).resolves({});
    expect(await runs().finishItem('run-1', FINISHED)).toBe('counted');
    const [put, update] = dynamodb.commandCalls(TransactWriteItemsCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(put?.Put?.ConditionExpression).toBe('attribute_not_exists(finished)');
    expect(put?.Put?.Item?.item).toEqual({ S: '111111111111/us-east-1' });
    expect(update?.Update?.UpdateExpression).toBe('ADD done :one');
    expect(update?.Update?.Key).toEqual({ runId: { S: 'run-1' }, item: { S: '#run' } });
  });

  it('changes nothing for an item already finished (a redelivered message)', async () => {
    dynamodb.on(TransactWriteItemsCommand).rejects(
      new TransactionCanceledException({
        message: 'cancelled',
        $metadata: {},
        CancellationReasons: [{ Code: 'ConditionalCheckFailed' }, { Code: 'None' }],
      }),
    );
    dynamodb.on(GetItemCommand).resolves({ Item: { finished: { BOOL: true } } });
    expect(await runs().finishItem('run-1', FINISHED)).toBe('already');
  });

  it('fails, naming the item, when the run has no row (the message goes back to the queue, then its DLQ)', async () => {
    dynamodb.on(TransactWriteItemsCommand).rejects(
      new TransactionCanceledException({
        message: 'cancelled',
        $metadata: {},
        CancellationReasons: [{ Code: 'None' }, { Code: 'ConditionalCheckFailed' }],
      }),
    );
    dynamodb.on(GetItemCommand).resolves({});
    await expect(runs().finishItem('run-1', FINISHED)).rejects.toThrow(AwsServiceError);
  });

  it('lets one claimant report a run, only once every item is done', async () => {
    dynamodb
      .on(UpdateItemCommand)
      .resolvesOnce({})
      .rejectsOnce(new ConditionalCheckFailedException({ message: 'no', $metadata: {} }));
    expect(await runs().claimReport('run-1', 'm1')).toBe(true);
    expect(await runs().claimReport('run-1', 'm2')).toBe(false);
    expect(dynamodb.commandCalls(UpdateItemCommand)[0]?.args[0].input.ConditionExpression).toBe(
      'done = expected AND attribute_not_exists(reportedAt) AND (attribute_not_exists(reportedBy) OR reportedBy = :claimant)',
    );
  });
});
