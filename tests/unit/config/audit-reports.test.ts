import { describe, expect, it } from 'vitest';
import { ConfigurationError, loadConfig } from '../../../src/config';

const ENV = {
  AWS_REGION: 'us-east-1',
  TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:kms-rotation-dev-notifications',
  STATE_PARAMETER_PREFIX: '/kms-rotation/dev/keys',
};

describe('Function: loadConfig, AUDIT_REPORTS_BUCKET', () => {
  it('writes no reports unless set, or set empty', () => {
    expect(loadConfig(ENV).audit.reportsBucket).toBeUndefined();
    expect(loadConfig({ ...ENV, AUDIT_REPORTS_BUCKET: '' }).audit.reportsBucket).toBeUndefined();
  });

  it('reads a bucket name', () => {
    expect(
      loadConfig({ ...ENV, AUDIT_REPORTS_BUCKET: 'kms-rotation-dev-auditreportsbucket-1a2b3c4d5e6f' }).audit
        .reportsBucket,
    ).toBe('kms-rotation-dev-auditreportsbucket-1a2b3c4d5e6f');
  });

  it.each(['Upper-Case', 'ab', 'arn:aws:s3:::bucket', 's3://bucket', '-starts-with-dash', `${'a'.repeat(64)}`])(
    'refuses %s, naming the variable',
    (value) => {
      expect(() => loadConfig({ ...ENV, AUDIT_REPORTS_BUCKET: value })).toThrow(ConfigurationError);
      expect(() => loadConfig({ ...ENV, AUDIT_REPORTS_BUCKET: value })).toThrow(/AUDIT_REPORTS_BUCKET/);
    },
  );
});
