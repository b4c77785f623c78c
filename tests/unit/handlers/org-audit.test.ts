import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidInputError } from '../../../src/domain/errors';
import { contextOf, type Handler, invoke, loadHandler } from '../support/handler-loader';
import { type RecordingAws, startRecordingAws } from '../support/recording-aws';

/**
 * The organization audit's handlers refuse what is not theirs before any AWS call: `orgAudit` a
 * payload that is not `{}`, `{scheduled: true}` or `{dryRun}`; `orgAuditItem` an event that is not
 * an SQS event of its queue. A malformed message of a valid event is reported as a batch item
 * failure (the queue keeps it, then its dead-letter queue), never dropped.
 */
describe('Handlers: orgAudit and orgAuditItem, refusals', () => {
  let aws: RecordingAws;
  let orgAudit: Handler;
  let orgAuditItem: Handler;

  beforeAll(async () => {
    aws = await startRecordingAws();
    aws.answers = 'fail';
    orgAudit = await loadHandler('orgAudit', aws);
    orgAuditItem = await loadHandler('orgAuditItem', aws);
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await aws.close();
  });

  it.each([
    [{ account: '111111111111' }, /Unrecognized key: "account"/],
    [{ dryRun: 'yes' }, /dryRun/],
    [['scheduled'], /Expected \{\}/],
  ])('orgAudit refuses %o before any AWS call, naming the field', async (payload, message) => {
    const outcome = await invoke(orgAudit, payload, contextOf('orgAudit'), aws);
    expect(outcome.failed).toBe(true);
    expect(outcome.error).toBeInstanceOf(InvalidInputError);
    expect(String((outcome.error as Error).message)).toMatch(message);
    expect(outcome.requests).toEqual([]);
  });

  it('orgAuditItem refuses an event that is not an SQS event, before any AWS call', async () => {
    const outcome = await invoke(orgAuditItem, { scheduled: true }, contextOf('orgAuditItem'), aws);
    expect(outcome.failed).toBe(true);
    expect(String((outcome.error as Error).message)).toMatch(/Invalid orgAuditItem event/);
    expect(outcome.requests).toEqual([]);
  });

  it('orgAuditItem returns a malformed message as a batch item failure, with no AWS call for it', async () => {
    const event = {
      Records: [
        { messageId: 'm-1', body: '{"runId":"r","account":"nope"}', attributes: { ApproximateReceiveCount: '1' } },
      ],
    };
    const outcome = await invoke(orgAuditItem, event, contextOf('orgAuditItem'), aws);
    expect(outcome.failed).toBe(false);
    expect(outcome.result).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-1' }] });
    expect(outcome.requests).toEqual([]);
  });
});
