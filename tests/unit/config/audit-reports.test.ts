import { describe, expect, it } from 'vitest';
import { ConfigurationError, loadConfig } from '../../../src/config';
import { MINIMAL_ENV } from '../support/minimal-env';

const ENV = MINIMAL_ENV;

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
