import { afterEach, describe, expect, it, vi } from 'vitest';
import { contextOf, invoke, loadHandler } from '../support/handler-loader';
import { useRecordingAws } from '../support/recording-aws';

/** How many times the S3 client module was loaded: only when the bucket is set (a lazy import). */
const loaded = vi.hoisted(() => ({ s3Client: 0 }));
vi.mock('@aws-sdk/client-s3', async (importOriginal) => {
  loaded.s3Client += 1;
  return importOriginal();
});

/** S3 PutObject, path style on the recording endpoint: `PUT /<bucket>/<key>`. */
const reportRequests = (requests: { url: string }[]) =>
  requests.filter((request) => request.url.startsWith('/reports-bucket/'));

/**
 * The audit handler as deployed, over a fleet of one key that does not exist: with
 * AUDIT_REPORTS_BUCKET unset nothing is asked of S3; set, the audit writes its reports there
 * (which the recording endpoint refuses, failing the audit loudly).
 */
describe('Handler: audit, AUDIT_REPORTS_BUCKET', () => {
  const recording = useRecordingAws('unknown-key');

  afterEach(() => {
    loaded.s3Client = 0;
  });

  it('neither loads the S3 client nor asks anything of S3 when unset', async () => {
    const handler = await loadHandler('audit', recording.aws);

    const invocation = await invoke(
      handler,
      { keyIds: ['0badc0de-0000-4000-8000-000000000000'] },
      contextOf('audit'),
      recording.aws,
    );

    expect(invocation.failed).toBe(false);
    expect(invocation.requests.length).toBeGreaterThan(0);
    expect(reportRequests(invocation.requests)).toEqual([]);
    expect(invocation.result).not.toHaveProperty('reportObjects');
    expect(loaded.s3Client).toBe(0);
  });

  it('writes the slice report to the bucket when set, and fails the audit when it cannot', async () => {
    vi.stubEnv('AUDIT_REPORTS_BUCKET', 'reports-bucket');
    const handler = await loadHandler('audit', recording.aws);

    const invocation = await invoke(
      handler,
      { keyIds: ['0badc0de-0000-4000-8000-000000000000'] },
      contextOf('audit'),
      recording.aws,
    );

    // The first object, retried by the SDK on the endpoint's refusal; nothing after a failed write.
    const urls = new Set(reportRequests(invocation.requests).map((request) => request.url));
    expect([...urls]).toHaveLength(1);
    expect([...urls][0]).toMatch(/^\/reports-bucket\/audit-reports\/\d{4}\/\d{2}\/\d{2}\/[\w-]+\/slice-1\.ocsf\.json/);
    expect(loaded.s3Client).toBe(1);
    expect(invocation.failed).toBe(true);
    expect(String((invocation.error as Error).message)).toMatch(
      /^PutObject on s3:\/\/reports-bucket\/audit-reports\/.*\/slice-1\.ocsf\.json failed/,
    );
  });
});
