import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { contextOf, invoke, loadHandler } from '../support/handler-loader';
import { useRecordingAws } from '../support/recording-aws';

/** Security Hub's REST paths: GetFindings `POST /findings`, BatchImportFindings `POST /findings/import`. */
const securityHubRequests = <T extends { url: string }>(requests: T[]) =>
  requests.filter((request) => request.url.startsWith('/findings'));

/**
 * The audit handler as deployed, over a fleet of one key that does not exist: with
 * SECURITY_HUB_FINDINGS off nothing is asked of Security Hub; on, the audit reads back its
 * findings there (which the recording endpoint refuses, failing the audit loudly).
 */
describe('Handler: audit, SECURITY_HUB_FINDINGS', () => {
  const recording = useRecordingAws('unknown-key');

  it('asks nothing of Security Hub when unset', async () => {
    const handler = await loadHandler('audit', recording.aws);

    const invocation = await invoke(
      handler,
      { keyIds: ['0badc0de-0000-4000-8000-000000000000'] },
      contextOf('audit'),
      recording.aws,
    );

    expect(invocation.failed).toBe(false);
    expect(invocation.requests.length).toBeGreaterThan(0);
    expect(securityHubRequests(invocation.requests)).toEqual([]);
  });

  it('reads back its findings in Security Hub when "true", and fails the audit when it cannot', async () => {
    vi.stubEnv('SECURITY_HUB_FINDINGS', 'true');
    const handler = await loadHandler('audit', recording.aws);

    const invocation = await invoke(
      handler,
      { keyIds: ['0badc0de-0000-4000-8000-000000000000'] },
      contextOf('audit'),
      recording.aws,
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

/**
 * The drift watch's handler as deployed, on KMS's deletion event of a key the service kept a record
 * of (a CRITICAL drift): with SECURITY_HUB_FINDINGS off nothing is asked of Security Hub; on, after
 * notifying and recording the drift, it reads back the key's findings there (which the recording
 * endpoint refuses, failing the invocation so that Lambda retries it).
 */
describe('Handler: onKeyActivity, SECURITY_HUB_FINDINGS', () => {
  const deletion = JSON.parse(readFileSync(join('events', 'kms-cmk-deletion.json'), 'utf8'));
  const recording = useRecordingAws('deleted-managed-key');

  it('asks nothing of Security Hub when unset', async () => {
    const handler = await loadHandler('onKeyActivity', recording.aws);

    const invocation = await invoke(handler, deletion, contextOf('onKeyActivity'), recording.aws);

    expect(invocation.failed).toBe(false);
    expect(invocation.requests.map((request) => request.operation)).toContain('Publish');
    expect(securityHubRequests(invocation.requests)).toEqual([]);
  });

  it('reads back the key\'s findings in Security Hub when "true", after notifying, and fails when it cannot', async () => {
    vi.stubEnv('SECURITY_HUB_FINDINGS', 'true');
    const handler = await loadHandler('onKeyActivity', recording.aws);

    const invocation = await invoke(handler, deletion, contextOf('onKeyActivity'), recording.aws);

    const operations = invocation.requests.map((request) => request.operation);
    expect(operations.indexOf('Publish')).toBeGreaterThanOrEqual(0);
    expect(operations.indexOf('AmazonSSM.PutParameter')).toBeGreaterThan(operations.indexOf('Publish'));
    expect(operations.indexOf('POST /findings')).toBeGreaterThan(operations.indexOf('AmazonSSM.PutParameter'));
    const filters = JSON.parse(securityHubRequests(invocation.requests)[0]?.body ?? '{}').Filters;
    expect(filters.ResourceId).toEqual([
      {
        Comparison: 'EQUALS',
        Value: `arn:aws:kms:us-east-1:123456789012:key/${deletion.resources[0].split('/').pop()}`,
      },
    ]);
    expect(invocation.failed).toBe(true);
    expect(String((invocation.error as Error).message)).toMatch(
      /^GetFindings on arn:aws:securityhub:us-east-1:123456789012:product\/123456789012\/default failed/,
    );
  });
});
