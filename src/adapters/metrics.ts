import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AuditReport } from '../domain/audit-fleet';
import type { RotateReport } from '../domain/rotate-key';
import type { RotationValidationReport } from '../domain/validate-rotation';
import type { DriftReport } from '../domain/watch-key-activity';

/**
 * Metrics of one rotation event. Dimensions stay `service` only (alarms match on it);
 * key and event ids go to metadata, never to dimensions.
 */
export const recordRotationValidation = (
  metrics: Metrics,
  report: RotationValidationReport,
  latencyMs: number,
): void => {
  metrics.addMetadata('keyId', report.keyId);
  metrics.addMetadata('eventId', report.eventId);
  switch (report.outcome) {
    case 'validated':
      metrics.addMetric('RotationValidated', MetricUnit.Count, 1);
      metrics.addMetric('AliasDrift', MetricUnit.Count, report.aliases?.drift.length ?? 0);
      break;
    case 'failed':
      // Once per event: a retry of an already-reported failure does not count again.
      if (report.firstReport) metrics.addMetric('RotationValidationFailed', MetricUnit.Count, 1);
      if (report.aliases) metrics.addMetric('AliasDrift', MetricUnit.Count, report.aliases.drift.length);
      break;
    case 'skipped':
      metrics.addMetric('RotationEventsSkipped', MetricUnit.Count, 1);
      break;
  }
  metrics.addMetric('RotationValidationLatency', MetricUnit.Milliseconds, latencyMs);
};

/** Metrics of one `rotate` invocation; the key id and strategy are metadata. */
export const recordRotation = (
  metrics: Metrics,
  outcome: { report?: RotateReport; failed: boolean; keyId?: string },
  latencyMs: number,
): void => {
  if (outcome.report) {
    metrics.addMetadata('keyId', outcome.report.keyId);
    if (outcome.report.strategy) metrics.addMetadata('strategy', outcome.report.strategy);
    if (outcome.report.rotationId) metrics.addMetadata('rotationId', outcome.report.rotationId);
  }
  if (outcome.failed) metrics.addMetric('RotationFailed', MetricUnit.Count, 1);
  else if (outcome.report?.outcome === 'completed') metrics.addMetric('RotationCompleted', MetricUnit.Count, 1);
  metrics.addMetric('RotationLatency', MetricUnit.Milliseconds, latencyMs);
};

/**
 * Metrics of one drift event: `DriftDetected` per new finding with its `rule` as a dimension
 * (a separate EMF blob per rule), `CriticalDrift` for the alarm, `DriftRemediated`.
 */
export const recordDrift = (metrics: Metrics, report: DriftReport): void => {
  metrics.addMetadata('eventId', report.eventId);
  metrics.addMetadata('call', report.activity);
  const byRule = new Map<string, number>();
  for (const finding of report.newFindings) byRule.set(finding.rule, (byRule.get(finding.rule) ?? 0) + 1);
  for (const [rule, count] of byRule) {
    const single = metrics.singleMetric();
    single.addDimension('rule', rule);
    single.addMetric('DriftDetected', MetricUnit.Count, count);
  }
  const critical = report.newFindings.filter((finding) => finding.severity === 'CRITICAL').length;
  metrics.addMetric('CriticalDrift', MetricUnit.Count, critical);
  metrics.addMetric(
    'DriftRemediated',
    MetricUnit.Count,
    report.remediations.filter((remediation) => remediation.status === 'remediated').length,
  );
};

/**
 * Metrics of one audit slice: `KeysAudited` for this slice's keys (slices add up), and on the
 * completing slice `NonCompliantKeys` in total (for the alarm) and per `rule`, and
 * `SuppressedFindings` (findings an exception in force suppressed) in total and per `rule`.
 */
export const recordAudit = (metrics: Metrics, report: AuditReport, keysThisSlice: number): void => {
  metrics.addMetadata('auditId', report.auditId);
  metrics.addMetric('KeysAudited', MetricUnit.Count, keysThisSlice);
  if (!report.complete) return;
  metrics.addMetric('NonCompliantKeys', MetricUnit.Count, report.totals.nonCompliantKeys);
  for (const [rule, count] of Object.entries(report.totals.nonCompliantByRule)) {
    const single = metrics.singleMetric();
    single.addDimension('rule', rule);
    single.addMetric('NonCompliantKeys', MetricUnit.Count, count ?? 0);
  }
  metrics.addMetric('SuppressedFindings', MetricUnit.Count, report.totals.suppressed);
  for (const [rule, count] of Object.entries(report.totals.suppressedByRule)) {
    const single = metrics.singleMetric();
    single.addDimension('rule', rule);
    single.addMetric('SuppressedFindings', MetricUnit.Count, count ?? 0);
  }
};
