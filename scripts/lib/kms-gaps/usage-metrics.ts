import type { ApiGap } from '../aws-proxy';

/**
 * The KMS calls of one simulated account-Region: the callers the proxy answered (the service's
 * own) and simulated other callers, who take a fixed number of calls of each API every second
 * (a steady load: they take them in every second, before and after the proxy started).
 */
export interface KmsUsage {
  /** Calls per second the other callers take of `api`'s limit. */
  othersPerSecond(api: string): number;
  /** One call of `api` answered at `atMs` (epoch ms) for a caller through the proxy. */
  record(api: string, atMs: number): void;
  /** Calls of `api` in [fromMs, toMs): those recorded plus the other callers'. */
  callsIn(api: string, fromMs: number, toMs: number): number;
}

/**
 * Other callers taking `otherCallersShare` of each per-API limit in `rateLimits` every second
 * (e.g. 0.3 of ListKeyRotations' 100: 30 calls a second), and the calls the proxy answers.
 */
export const kmsUsage = (rateLimits: Readonly<Record<string, number>> = {}, otherCallersShare = 0): KmsUsage => {
  const perSecond = new Map<string, Map<number, number>>();
  return {
    othersPerSecond: (api) => (rateLimits[api] ?? 0) * otherCallersShare,
    record(api, atMs) {
      const second = Math.floor(atMs / 1000);
      const counts = perSecond.get(api) ?? new Map<number, number>();
      counts.set(second, (counts.get(second) ?? 0) + 1);
      perSecond.set(api, counts);
    },
    callsIn(api, fromMs, toMs) {
      let own = 0;
      for (const [second, count] of perSecond.get(api) ?? []) {
        if (second * 1000 >= fromMs && second * 1000 < toMs) own += count;
      }
      return own + Math.round(((toMs - fromMs) / 1000) * (rateLimits[api] ?? 0) * otherCallersShare);
    },
  };
};

interface MetricQuery {
  Id?: string;
  Label?: string;
  ReturnData?: boolean;
  MetricStat?: {
    Metric?: { Namespace?: string; MetricName?: string; Dimensions?: { Name?: string; Value?: string }[] };
    Period?: number;
    Stat?: string;
  };
}

const dimension = (query: MetricQuery, name: string): string | undefined =>
  query.MetricStat?.Metric?.Dimensions?.find((item) => item.Name === name)?.Value;

/** A query for KMS's API CallCount in AWS/Usage, summed per period (docs/kms-facts.md#live-request-rates). */
const isKmsCallCount = (query: MetricQuery): boolean =>
  query.MetricStat?.Metric?.Namespace === 'AWS/Usage' &&
  query.MetricStat.Metric.MetricName === 'CallCount' &&
  query.MetricStat.Stat === 'Sum' &&
  dimension(query, 'Service') === 'KMS' &&
  dimension(query, 'Type') === 'API' &&
  dimension(query, 'Class') === 'None' &&
  dimension(query, 'Resource') !== undefined;

/** awsJson dates: epoch seconds (numbers); strings are taken as ISO dates. */
const epochMs = (value: unknown): number =>
  typeof value === 'number' ? value * 1000 : typeof value === 'string' ? Date.parse(value) : Number.NaN;

/**
 * CloudWatch GetMetricData for `AWS/Usage` `CallCount` of KMS, which moto answers empty
 * (docs/kms-facts.md#moto): each query's Sum per period from `usage` (the other callers' and
 * the audit's own calls), newest period first unless `ScanBy` asks otherwise, a period with no
 * call left out as CloudWatch leaves it out. A request with any other query is forwarded.
 */
export const usageMetricsGap = (usage: KmsUsage): ApiGap => ({
  answer({ api, body }) {
    if (api !== 'GetMetricData') return undefined;
    const input = JSON.parse(body || '{}') as {
      StartTime?: unknown;
      EndTime?: unknown;
      ScanBy?: string;
      MetricDataQueries?: MetricQuery[];
    };
    const queries = input.MetricDataQueries ?? [];
    if (queries.length === 0 || !queries.every(isKmsCallCount)) return undefined;
    const start = epochMs(input.StartTime);
    const end = epochMs(input.EndTime);
    if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) {
      return {
        status: 400,
        body: { __type: 'InvalidParameterValueException', message: 'StartTime must be before EndTime' },
      };
    }
    return {
      body: {
        MetricDataResults: queries
          .filter((query) => query.ReturnData !== false)
          .map((query) => {
            const resource = dimension(query, 'Resource') as string;
            const periodMs = (query.MetricStat?.Period ?? 60) * 1000;
            const points: { at: number; value: number }[] = [];
            for (let at = Math.floor(start / periodMs) * periodMs; at < end; at += periodMs) {
              const value = usage.callsIn(resource, at, at + periodMs);
              if (value > 0) points.push({ at, value });
            }
            if (input.ScanBy !== 'TimestampAscending') points.reverse();
            return {
              Id: query.Id,
              Label: query.Label ?? resource,
              Timestamps: points.map((point) => point.at / 1000),
              Values: points.map((point) => point.value),
              StatusCode: 'Complete',
            };
          }),
        Messages: [],
      },
    };
  },
});
