import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { contextOf, invoke, loadHandler } from '../support/handler-loader';
import { type RecordingAws, startRecordingAws } from '../support/recording-aws';

/** Security Hub's REST paths: GetFindings `POST /findings`, BatchImportFindings `POST /findings/import`. */
const securityHubRequests = (requests: { url: string }[]) =>
  requests.filter((request) => request.url.startsWith('/findings'));

/**
 * The audit handler as deployed, over a fleet of one key that does not exist: with
 * SECURITY_HUB_FINDINGS off nothing is asked of Security Hub; on, the audit reads back its
 * findings there (which the recording endpoint refuses, failing the audit loudly).
 */
describe('Handler: audit, SECURITY_HUB_FINDINGS', () => {
  let aws: RecordingAws;

  beforeAll(async () => {
    aws = await startRecordingAws();
    aws.answers = 'unknown-key';
  });

  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  afterAll(async () => {
    await aws.close();
  });

  it('asks nothing of Security Hub when unset', async () => {
    const handler = await loadHandler('audit', aws);

    const invocation = await invoke(
      handler,
      { keyIds: ['0badc0de-0000-4000-8000-000000000000'] },
      contextOf('audit'),
      aws,
    );

    expect(invocation.failed).toBe(false);
    expect(invocation.requests.length).toBeGreaterThan(0);
    expect(securityHubRequests(invocation.requests)).toEqual([]);
  });

  it('reads back its findings in Security Hub when "true", and fails the audit when it cannot', async () => {
    vi.stubEnv('SECURITY_HUB_FINDINGS', 'true');
    const handler = await loadHandler('audit', aws);

    const invocation = await invoke(
      handler,
      { keyIds: ['0badc0de-0000-4000-8000-000000000000'] },
      contextOf('audit'),
      aws,
    );

    // GetFindings, retried by the SDK on the endpoint's HTTP 500; nothing imported after a failed read.
    expect(new Set(securityHubRequests(invocation.requests).map((request) => request.url))).toEqual(
      new Set(['/findings']),
    );
    expect(invocation.failed).toBe(true);
    expect(String((invocation.error as Error).message)).toMatch(
      /^GetFindings on arn:aws:securityhub:us-east-1:123456789012:product\/123456789012\/default failed/,
    );
  });
});
