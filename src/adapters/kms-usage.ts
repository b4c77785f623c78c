import { type CloudWatchClient, GetMetricDataCommand, type MetricDataResult } from '@aws-sdk/client-cloudwatch';
import { ListServiceQuotasCommand, type ServiceQuota, type ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { callAws } from './aws-errors';
import type { AccountUsage, AccountUsageSource } from './pacing';

/** Complete minutes of `CallCount` read back (docs/kms-facts.md#live-request-rates). */
export const USAGE_MINUTES = 5;

/** Service Quotas names each KMS request quota `<API> request rate` (docs/kms-facts.md#live-request-rates). */
const QUOTA_NAME = /^([A-Za-z]+) request rate$/;

const MINUTE_MS = 60_000;

/**
 * An account-Region's KMS usage, read with one `GetMetricData` (one query per API: namespace
 * `AWS/Usage`, metric `CallCount`, dimensions Service=KMS, Type=API, Resource=<API>, Class=None,
 * Sum per minute over the last complete minutes) and `ListServiceQuotas` for `kms` (the applied
 * quota values, named `<API> request rate`). Either read failing fails the whole read: the
 * pacing then keeps its fixed share.
 */
export class CloudWatchKmsUsage implements AccountUsageSource {
  constructor(
    private readonly cloudwatch: CloudWatchClient,
    private readonly quotas: ServiceQuotasClient,
  ) {}

  async read(apis: readonly string[], now: Date): Promise<AccountUsage> {
    const [callsPerMinute, applied] = await Promise.all([this.callsPerMinute(apis, now), this.applied(apis)]);
    return { applied, callsPerMinute };
  }

  private async callsPerMinute(
    apis: readonly string[],
    now: Date,
  ): Promise<Record<string, { at: Date; calls: number }[]>> {
    const end = Math.floor(now.getTime() / MINUTE_MS) * MINUTE_MS;
    const results: MetricDataResult[] = [];
    let nextToken: string | undefined;
    do {
      const token = nextToken;
      const page = await callAws('GetMetricData', 'AWS/Usage CallCount of KMS', () =>
        this.cloudwatch.send(
          new GetMetricDataCommand({
            StartTime: new Date(end - USAGE_MINUTES * MINUTE_MS),
            EndTime: new Date(end),
            ScanBy: 'TimestampDescending',
            MetricDataQueries: apis.map((api, index) => ({
              Id: `q${index}`,
              Label: api,
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
            })),
            ...(token ? { NextToken: token } : {}),
          }),
        ),
      );
      results.push(...(page.MetricDataResults ?? []));
      nextToken = page.NextToken;
    } while (nextToken);
    const perApi: Record<string, { at: Date; calls: number }[]> = {};
    for (const result of results) {
      const api = apis[Number(result.Id?.slice(1))];
      if (api === undefined) continue;
      const points = (result.Timestamps ?? []).map((at, index) => ({ at, calls: result.Values?.[index] ?? 0 }));
      perApi[api] = [...(perApi[api] ?? []), ...points];
    }
    return perApi;
  }

  private async applied(apis: readonly string[]): Promise<Record<string, number>> {
    const quotas: ServiceQuota[] = [];
    let nextToken: string | undefined;
    do {
      const token = nextToken;
      const page = await callAws('ListServiceQuotas', 'kms', () =>
        this.quotas.send(
          new ListServiceQuotasCommand({ ServiceCode: 'kms', MaxResults: 100, ...(token ? { NextToken: token } : {}) }),
        ),
      );
      quotas.push(...(page.Quotas ?? []));
      nextToken = page.NextToken;
    } while (nextToken);
    const wanted = new Set(apis);
    const applied: Record<string, number> = {};
    for (const quota of quotas) {
      const api = QUOTA_NAME.exec(quota.QuotaName ?? '')?.[1];
      if (api && wanted.has(api) && typeof quota.Value === 'number' && quota.Value > 0) applied[api] = quota.Value;
    }
    if (Object.keys(applied).length === 0) {
      throw new Error('Service Quotas listed no KMS request-rate quota for the APIs the audit calls');
    }
    return applied;
  }
}
