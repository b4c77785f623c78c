import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ReportObject, ReportStore } from '../domain/audit-reports';
import { callAws } from './aws-errors';

/**
 * The audit's reports, written to the stack's bucket (its default encryption applies). A
 * PutObject that fails throws: the audit invocation fails, Lambda retries it, then the
 * dead-letter queue has it; a retried slice writes the same keys again.
 */
export class S3AuditReports implements ReportStore {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  async put(object: ReportObject): Promise<string> {
    const uri = `s3://${this.bucket}/${object.key}`;
    await callAws('PutObject', uri, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: object.key,
          Body: object.body,
          ContentType: object.contentType,
        }),
      ),
    );
    return uri;
  }
}
