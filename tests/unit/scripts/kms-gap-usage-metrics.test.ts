import { describe, expect, it } from 'vitest';
import { serviceQuotasGap } from '../../../scripts/lib/kms-gaps/service-quotas';
import { kmsUsage, usageMetricsGap } from '../../../scripts/lib/kms-gaps/usage-metrics';

const MINUTE = 60_000;
const T0 = Date.parse('2026-12-02T06:00:00Z');

const kmsCallCount = (api: string, id = 'q0') => ({
  Id: id,
  ReturnData: true,
  MetricStat: {
    Metric: {
      Namespace: 'AWS/Usage',
      MetricName: 'CallCount',
      Dimensions: [
        { Name: 'Service', Value: 'KMS' },
        { Name: 'Type', Value: 'API' },
        { Name: 'Resource', Value: api },
        { Name: 'Class', Value: 'None' },
      ],
    },
    Period: 60,
    Stat: 'Sum',
  },
});

const call = (api: string, input: object) => ({
  api,
  body: JSON.stringify(input),
  region: 'us-east-1',
  target: 'http://moto',
});

describe('Function: kmsUsage', () => {
  it("counts the calls recorded in a window plus the other callers' steady share of the limit", () => {
    const usage = kmsUsage({ ListKeyRotations: 100, DescribeKey: 2000 }, 0.3);
    usage.record('ListKeyRotations', T0 + 500);
    usage.record('ListKeyRotations', T0 + 61_000);

    expect(usage.othersPerSecond('ListKeyRotations')).toBe(30);
    expect(usage.callsIn('ListKeyRotations', T0, T0 + MINUTE)).toBe(1 + 30 * 60);
    expect(usage.callsIn('ListKeyRotations', T0 + MINUTE, T0 + 2 * MINUTE)).toBe(1 + 30 * 60);
    expect(usage.callsIn('DescribeKey', T0, T0 + 1000)).toBe(600);
    // An API with no limit has no other callers.
    expect(usage.callsIn('ListAliases', T0, T0 + MINUTE)).toBe(0);
  });
});

describe('Function: usageMetricsGap', () => {
  it('answers AWS/Usage CallCount of KMS per minute from the usage, newest minute first, as GetMetricData does', async () => {
    const usage = kmsUsage({ ListKeyRotations: 100 }, 0.3);
    for (let index = 0; index < 5; index += 1) usage.record('ListKeyRotations', T0 + 2 * MINUTE + index);
    const gap = usageMetricsGap(usage);

    const answer = await gap.answer?.(
      call('GetMetricData', {
        StartTime: T0 / 1000,
        EndTime: (T0 + 3 * MINUTE) / 1000,
        MetricDataQueries: [kmsCallCount('ListKeyRotations', 'q0'), kmsCallCount('ListKeys', 'q1')],
      }),
    );

    expect(answer).toEqual({
      body: {
        MetricDataResults: [
          {
            Id: 'q0',
            Label: 'ListKeyRotations',
            Timestamps: [(T0 + 2 * MINUTE) / 1000, (T0 + MINUTE) / 1000, T0 / 1000],
            Values: [1805, 1800, 1800],
            StatusCode: 'Complete',
          },
          // No limit, no other callers, no call: CloudWatch gives no datapoint.
          { Id: 'q1', Label: 'ListKeys', Timestamps: [], Values: [], StatusCode: 'Complete' },
        ],
        Messages: [],
      },
    });
  });

  it('orders oldest first when ScanBy asks for it, and refuses a window that ends before it starts', async () => {
    const gap = usageMetricsGap(kmsUsage({ ListKeyRotations: 100 }, 0.5));
    const ascending = (await gap.answer?.(
      call('GetMetricData', {
        StartTime: T0 / 1000,
        EndTime: (T0 + 2 * MINUTE) / 1000,
        ScanBy: 'TimestampAscending',
        MetricDataQueries: [kmsCallCount('ListKeyRotations')],
      }),
    )) as { body: { MetricDataResults: { Timestamps: number[] }[] } };
    expect(ascending.body.MetricDataResults[0]?.Timestamps).toEqual([T0 / 1000, (T0 + MINUTE) / 1000]);

    expect(
      await gap.answer?.(
        call('GetMetricData', {
          StartTime: T0 / 1000,
          EndTime: T0 / 1000,
          MetricDataQueries: [kmsCallCount('ListKeys')],
        }),
      ),
    ).toMatchObject({ status: 400, body: { __type: 'InvalidParameterValueException' } });
  });

  it('forwards anything else: another API, another namespace, a query of another service or statistic', async () => {
    const gap = usageMetricsGap(kmsUsage({ ListKeyRotations: 100 }, 0.3));
    const window = { StartTime: T0 / 1000, EndTime: (T0 + MINUTE) / 1000 };
    const other = kmsCallCount('ListKeys');

    expect(await gap.answer?.(call('ListMetrics', {}))).toBeUndefined();
    expect(
      await gap.answer?.(
        call('GetMetricData', {
          ...window,
          MetricDataQueries: [
            {
              ...other,
              MetricStat: { ...other.MetricStat, Metric: { ...other.MetricStat.Metric, Namespace: 'AWS/KMS' } },
            },
          ],
        }),
      ),
    ).toBeUndefined();
    expect(
      await gap.answer?.(
        call('GetMetricData', {
          ...window,
          MetricDataQueries: [
            {
              ...other,
              MetricStat: {
                ...other.MetricStat,
                Metric: {
                  ...other.MetricStat.Metric,
                  Dimensions: other.MetricStat.Metric.Dimensions.map((item) =>
                    item.Name === 'Service' ? { ...item, Value: 'CloudWatch' } : item,
                  ),
                },
              },
            },
          ],
        }),
      ),
    ).toBeUndefined();
    expect(
      await gap.answer?.(
        call('GetMetricData', {
          ...window,
          MetricDataQueries: [
            {
              ...other,
              MetricStat: {
                ...other.MetricStat,
                Metric: {
                  ...other.MetricStat.Metric,
                  Dimensions: other.MetricStat.Metric.Dimensions.filter((item) => item.Name !== 'Class'),
                },
              },
            },
          ],
        }),
      ),
    ).toBeUndefined();
    expect(
      await gap.answer?.(
        call('GetMetricData', {
          ...window,
          MetricDataQueries: [{ ...other, MetricStat: { ...other.MetricStat, Stat: 'Average' } }],
        }),
      ),
    ).toBeUndefined();
  });
});

describe('Function: serviceQuotasGap', () => {
  it('lists each quota as KMS names its request quotas in Service Quotas, `<API> request rate`', async () => {
    const gap = serviceQuotasGap({ ListKeyRotations: 100, DescribeKey: 2000 });

    const answer = (await gap.answer?.(call('ListServiceQuotas', { ServiceCode: 'kms' }))) as {
      body: { Quotas: { QuotaName: string; Value: number; ServiceCode: string }[] };
    };

    expect(answer.body.Quotas.map(({ QuotaName, Value, ServiceCode }) => ({ QuotaName, Value, ServiceCode }))).toEqual([
      { QuotaName: 'ListKeyRotations request rate', Value: 100, ServiceCode: 'kms' },
      { QuotaName: 'DescribeKey request rate', Value: 2000, ServiceCode: 'kms' },
    ]);
  });

  it("forwards another service's quotas and other APIs", async () => {
    const gap = serviceQuotasGap({ ListKeyRotations: 100 });
    expect(await gap.answer?.(call('ListServiceQuotas', { ServiceCode: 'lambda' }))).toBeUndefined();
    expect(await gap.answer?.(call('GetServiceQuota', { ServiceCode: 'kms', QuotaCode: 'L-1' }))).toBeUndefined();
  });
});
