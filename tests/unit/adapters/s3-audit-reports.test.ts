import { PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { S3AuditReports } from '../../../src/adapters/s3-audit-reports';
import { AwsServiceError } from '../../../src/domain/errors';

const s3 = mockClient(S3Client);
const OBJECT = {
  key: 'audit-reports/2026/12/01/audit-1/slice-1.csv',
  body: 'finding_uid\r\n',
  contentType: 'text/csv; charset=utf-8; header=present',
};

describe('Class: S3AuditReports', () => {
  beforeEach(() => {
    s3.reset();
  });

  it('puts the object with its content type in the bucket, and returns its s3:// URI', async () => {
    s3.on(PutObjectCommand).resolves({});

    const uri = await new S3AuditReports(new S3Client({}), 'reports-bucket').put(OBJECT);

    expect(uri).toBe('s3://reports-bucket/audit-reports/2026/12/01/audit-1/slice-1.csv');
    expect(s3.commandCalls(PutObjectCommand).map((call) => call.args[0].input)).toEqual([
      {
        Bucket: 'reports-bucket',
        Key: OBJECT.key,
        Body: OBJECT.body,
        ContentType: 'text/csv; charset=utf-8; header=present',
      },
    ]);
  });

  it('fails with the operation and the object named, a denial marked as such', async () => {
    s3.on(PutObjectCommand).rejects(
      new S3ServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        $metadata: { httpStatusCode: 403 },
        message: 'no',
      }),
    );

    const failure = new S3AuditReports(new S3Client({}), 'reports-bucket').put(OBJECT);

    await expect(failure).rejects.toBeInstanceOf(AwsServiceError);
    await expect(failure).rejects.toMatchObject({
      operation: 'PutObject',
      accessDenied: true,
      message: expect.stringMatching(
        /^PutObject on s3:\/\/reports-bucket\/audit-reports\/.*slice-1\.csv failed: AccessDenied/,
      ),
    });
  });
});
