import {
  AccessDeniedException,
  BatchImportFindingsCommand,
  GetFindingsCommand,
  SecurityHubClient,
} from '@aws-sdk/client-securityhub';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { SecurityHubFindings } from '../../../src/adapters/security-hub-findings';
import { type AsffFinding, toAsff } from '../../../src/domain/asff';
import { AwsServiceError } from '../../../src/domain/errors';
import type { ServiceLocation } from '../../../src/domain/model';

const LOCATION: ServiceLocation = { partition: 'aws', account: '111122223333', region: 'us-east-1' };
const PRODUCT = 'arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default';
const securityHub = mockClient(SecurityHubClient);

const findings = (count: number, auditId = 'audit-1'): AsffFinding[] =>
  Array.from({ length: count }, (_, index) =>
    toAsff(
      {
        rule: 'rotation-enabled',
        severity: 'WARNING',
        keyId: `key-${index}`,
        aliases: [],
        summary: 'off',
        evidence: {},
      },
      { location: LOCATION, auditId, now: new Date('2026-12-01T03:00:00Z') },
    ),
  );

describe('Class: SecurityHubFindings', () => {
  let errors: { message: string; attributes?: Record<string, unknown> }[];
  const adapter = () =>
    new SecurityHubFindings(new SecurityHubClient({}), LOCATION, {
      info: () => undefined,
      warn: () => undefined,
      error: (message, attributes) => void errors.push({ message, attributes }),
    });

  beforeEach(() => {
    securityHub.reset();
    errors = [];
  });

  describe('Method: importFindings', () => {
    it('imports in batches of at most 100 findings', async () => {
      securityHub.on(BatchImportFindingsCommand).resolves({ FailedCount: 0, SuccessCount: 100, FailedFindings: [] });

      await adapter().importFindings(findings(250));

      const sizes = securityHub
        .commandCalls(BatchImportFindingsCommand)
        .map((call) => call.args[0].input.Findings?.length);
      expect(sizes).toEqual([100, 100, 50]);
      const ids = securityHub
        .commandCalls(BatchImportFindingsCommand)
        .flatMap((call) => call.args[0].input.Findings?.map((finding) => finding.Id));
      expect(new Set(ids).size).toBe(250);
    });

    it('makes no call for no findings', async () => {
      await adapter().importFindings([]);
      expect(securityHub.commandCalls(BatchImportFindingsCommand)).toHaveLength(0);
    });

    it('logs every refused finding and fails once every batch has been tried', async () => {
      securityHub
        .on(BatchImportFindingsCommand)
        .resolvesOnce({
          FailedCount: 1,
          SuccessCount: 99,
          FailedFindings: [{ Id: 'kms-rotation/x', ErrorCode: 'InvalidInput', ErrorMessage: 'bad Title' }],
        })
        .resolves({ FailedCount: 0, SuccessCount: 20, FailedFindings: [] });

      const result = adapter().importFindings(findings(120));

      await expect(result).rejects.toThrow(AwsServiceError);
      await expect(result).rejects.toThrow(/refused 1 of 120 findings: kms-rotation\/x \(InvalidInput: bad Title\)/);
      expect(securityHub.commandCalls(BatchImportFindingsCommand)).toHaveLength(2);
      expect(errors).toEqual([
        {
          message: 'Security Hub refused a finding',
          attributes: { findingId: 'kms-rotation/x', errorCode: 'InvalidInput', error: 'bad Title' },
        },
      ]);
    });

    it('fails on a FailedCount even when no refused finding is named', async () => {
      securityHub.on(BatchImportFindingsCommand).resolves({ FailedCount: 2, SuccessCount: 0 });
      await expect(adapter().importFindings(findings(2))).rejects.toThrow(/refused 2 of 2 findings/);
    });

    it('translates an SDK error, naming the operation and the product', async () => {
      securityHub
        .on(BatchImportFindingsCommand)
        .rejects(new AccessDeniedException({ message: 'not authorized', $metadata: {} }));
      const result = adapter().importFindings(findings(1));
      await expect(result).rejects.toMatchObject({ operation: 'BatchImportFindings', accessDenied: true });
      await expect(result).rejects.toThrow(`BatchImportFindings on ${PRODUCT} failed`);
    });
  });

  describe('Method: activeFindings', () => {
    it('asks for ACTIVE findings of this product and generator, page by page', async () => {
      const [first, second] = findings(2);
      securityHub
        .on(GetFindingsCommand)
        .resolvesOnce({ Findings: [first as never], NextToken: 'page-2' })
        .resolves({ Findings: [second as never] });

      const found = await adapter().activeFindings();

      expect(found.map((finding) => finding.Id)).toEqual([first?.Id, second?.Id]);
      const calls = securityHub.commandCalls(GetFindingsCommand).map((call) => call.args[0].input);
      expect(calls[0]).toEqual({
        Filters: {
          ProductArn: [{ Value: PRODUCT, Comparison: 'EQUALS' }],
          GeneratorId: [{ Value: 'kms-rotation/', Comparison: 'PREFIX' }],
          RecordState: [{ Value: 'ACTIVE', Comparison: 'EQUALS' }],
          AwsAccountId: [{ Value: '111122223333', Comparison: 'EQUALS' }],
          Region: [{ Value: 'us-east-1', Comparison: 'EQUALS' }],
        },
        MaxResults: 100,
        NextToken: undefined,
      });
      expect(calls[1]?.NextToken).toBe('page-2');
    });

    it('filters again itself, for an emulator that ignores the filters', async () => {
      const [own, archived, foreign, otherGenerator] = findings(4);
      securityHub.on(GetFindingsCommand).resolves({
        Findings: [
          own,
          { ...archived, RecordState: 'ARCHIVED' },
          { ...foreign, ProductArn: 'arn:aws:securityhub:us-east-1::product/aws/guardduty' },
          { ...otherGenerator, GeneratorId: 'other/rotation-enabled' },
        ] as never[],
      });

      const found = await adapter().activeFindings();

      expect(found.map((finding) => finding.Id)).toEqual([own?.Id]);
    });

    it("asks only for the given keys' findings, by resource, at most 20 key ARNs a request, and keeps only theirs", async () => {
      const all = findings(25);
      const arnOf = (index: number) => `arn:aws:kms:us-east-1:111122223333:key/key-${index}`;
      const asked = Array.from({ length: 21 }, (_, index) => arnOf(index));
      // An emulator ignoring the filters answers every finding, each time.
      securityHub.on(GetFindingsCommand).resolves({ Findings: all as never[] });

      const found = await adapter().activeFindings(asked);

      const calls = securityHub.commandCalls(GetFindingsCommand).map((call) => call.args[0].input);
      expect(calls.map((call) => call.Filters?.ResourceId?.map((filter) => filter.Value))).toEqual([
        asked.slice(0, 20),
        asked.slice(20),
      ]);
      expect(calls[0]?.Filters?.ResourceId?.[0]).toEqual({ Value: arnOf(0), Comparison: 'EQUALS' });
      expect(calls[0]?.Filters?.RecordState).toEqual([{ Value: 'ACTIVE', Comparison: 'EQUALS' }]);
      expect(found.map((finding) => finding.Resources[0]?.Id).sort()).toEqual([...asked].sort());
    });
  });
});
