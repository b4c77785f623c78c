import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { ListServiceQuotasCommand, ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { CloudWatchKmsUsage, USAGE_MINUTES } from '../../../src/adapters/kms-usage';

const cloudwatch = mockClient(CloudWatchClient);
const quotas = mockClient(ServiceQuotasClient);
const NOW = new Date('2026-12-02T06:07:30Z');

const usage = () =>
  new CloudWatchKmsUsage(
    new CloudWatchClient({ region: 'us-east-1' }),
    new ServiceQuotasClient({ region: 'us-east-1' }),
  );

describe('Class: CloudWatchKmsUsage', () => {
  beforeEach(() => {
    cloudwatch.reset();
    quotas.reset();
  });

  it("asks KMS's AWS/Usage CallCount per API, Sum per minute over the last complete minutes, in one call", async () => {
    cloudwatch.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        { Id: 'q0', Timestamps: [new Date('2026-12-02T06:06:00Z')], Values: [1800] },
        { Id: 'q1', Timestamps: [], Values: [] },
      ],
    });
    quotas.on(ListServiceQuotasCommand).resolves({
      Quotas: [
        { QuotaName: 'ListKeyRotations request rate', Value: 200 },
        { QuotaName: 'Cryptographic operations (symmetric) request rate', Value: 100_000 },
        { QuotaName: 'GetKeyPolicy request rate', Value: 1000 },
      ],
    });

    const read = await usage().read(['ListKeyRotations', 'DescribeKey'], NOW);

    expect(read).toEqual({
      applied: { ListKeyRotations: 200 },
      callsPerMinute: {
        ListKeyRotations: [{ at: new Date('2026-12-02T06:06:00Z'), calls: 1800 }],
        DescribeKey: [],
      },
    });
    const input = cloudwatch.commandCalls(GetMetricDataCommand)[0]?.args[0].input;
    expect(cloudwatch.commandCalls(GetMetricDataCommand)).toHaveLength(1);
    expect(input?.EndTime).toEqual(new Date('2026-12-02T06:07:00Z'));
    expect(input?.StartTime).toEqual(new Date(Date.parse('2026-12-02T06:07:00Z') - USAGE_MINUTES * 60_000));
    expect(input?.MetricDataQueries?.[1]).toEqual({
      Id: 'q1',
      Label: 'DescribeKey',
      ReturnData: true,
      MetricStat: {
        Metric: {
          Namespace: 'AWS/Usage',
          MetricName: 'CallCount',
          Dimensions: [
            { Name: 'Service', Value: 'KMS' },
            { Name: 'Type', Value: 'API' },
            { Name: 'Resource', Value: 'DescribeKey' },
            { Name: 'Class', Value: 'None' },
          ],
        },
        Period: 60,
        Stat: 'Sum',
      },
    });
    expect(quotas.commandCalls(ListServiceQuotasCommand)[0]?.args[0].input).toMatchObject({ ServiceCode: 'kms' });
  });

  it('follows the pages of both answers', async () => {
    cloudwatch
      .on(GetMetricDataCommand)
      .resolvesOnce({
        MetricDataResults: [{ Id: 'q0', Timestamps: [new Date('2026-12-02T06:06:00Z')], Values: [60] }],
        NextToken: 'm2',
      })
      .resolvesOnce({
        MetricDataResults: [{ Id: 'q0', Timestamps: [new Date('2026-12-02T06:05:00Z')], Values: [120] }],
      });
    quotas
      .on(ListServiceQuotasCommand)
      .resolvesOnce({ Quotas: [], NextToken: 'p2' })
      .resolvesOnce({ Quotas: [{ QuotaName: 'ListKeyRotations request rate', Value: 150 }] });

    const read = await usage().read(['ListKeyRotations'], NOW);

    expect(read.callsPerMinute.ListKeyRotations?.map(({ calls }) => calls)).toEqual([60, 120]);
    expect(read.applied).toEqual({ ListKeyRotations: 150 });
    expect(cloudwatch.commandCalls(GetMetricDataCommand)[1]?.args[0].input.NextToken).toBe('m2');
    expect(quotas.commandCalls(ListServiceQuotasCommand)[1]?.args[0].input.NextToken).toBe('p2');
  });

  it('fails when Service Quotas lists none of the request quotas, or a read is refused', async () => {
    cloudwatch.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    quotas.on(ListServiceQuotasCommand).resolves({ Quotas: [{ QuotaName: 'AWS KMS keys', Value: 100_000 }] });
    await expect(usage().read(['ListKeyRotations'], NOW)).rejects.toThrow('listed no KMS request-rate quota');

    quotas
      .on(ListServiceQuotasCommand)
      .resolves({ Quotas: [{ QuotaName: 'ListKeyRotations request rate', Value: 100 }] });
    cloudwatch
      .on(GetMetricDataCommand)
      .rejects(
        Object.assign(new Error('not authorized to perform: cloudwatch:GetMetricData'), { name: 'AccessDenied' }),
      );
    await expect(usage().read(['ListKeyRotations'], NOW)).rejects.toMatchObject({ operation: 'GetMetricData' });
  });
});
