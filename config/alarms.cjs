'use strict';
/**
 * The stack's CloudWatch alarms, from one table: every alarm fires on the first period above
 * zero, treats missing data as fine, and notifies the topic. Each row names what differs: the
 * alarm's name suffix, what it tells the person paged, and the metric it watches.
 *
 * Used from serverless.yml as `- Resources: ${file(./config/alarms.cjs):alarms}`. The runbook of
 * each alarm is docs/alarms.md.
 */

/** The service's own metrics carry one dimension, `service`. */
const serviceMetric = (metric, statistic, period) => ({ namespace: 'service', metric, statistic, period });
/** A function's `Errors` (AWS/Lambda), by the logical id serverless gives the function. */
const functionErrors = (functionResource) => ({
  namespace: 'AWS/Lambda',
  metric: 'Errors',
  dimension: { Name: 'FunctionName', Value: { Ref: functionResource } },
  statistic: 'Sum',
  period: 300,
});

const ALARMS = [
  {
    id: 'RotateErrorsAlarm',
    suffix: 'rotation-failed',
    description:
      "A manual rotation failed or was refused; see the rotate function's logs and the RotationFailed notification",
    ...serviceMetric('RotationFailed', 'Sum', 60),
  },
  {
    id: 'RotationValidationFailedAlarm',
    suffix: 'rotation-validation-failed',
    description: 'New key material failed validation after a rotation; data encrypted with the key may be at risk',
    ...serviceMetric('RotationValidationFailed', 'Sum', 60),
  },
  {
    id: 'CriticalDriftAlarm',
    suffix: 'critical-drift',
    description:
      'A managed key was disabled, scheduled for deletion while in use, deleted, lost its imported material, or its policy was opened up; read the DriftDetected notification',
    ...serviceMetric('CriticalDrift', 'Sum', 60),
  },
  {
    id: 'NonCompliantKeysAlarm',
    suffix: 'non-compliant-keys',
    description:
      'The last fleet audit found non-compliant keys; read the AuditCompleted notification or invoke audit for the report',
    ...serviceMetric('NonCompliantKeys', 'Maximum', 86400),
  },
  {
    id: 'OnRotationErrorsAlarm',
    suffix: 'onRotation-errors',
    description: 'onRotation failed an invocation (validation failure, bad event or AWS error); see its logs',
    ...functionErrors('OnRotationLambdaFunction'),
  },
  {
    id: 'OnKeyActivityErrorsAlarm',
    suffix: 'onKeyActivity-errors',
    description:
      'onKeyActivity failed an invocation (bad event or AWS error); failed events are retried, then kept in the dead-letter queue',
    ...functionErrors('OnKeyActivityLambdaFunction'),
  },
  {
    id: 'DeadLetterQueueAlarm',
    suffix: 'dlq-not-empty',
    description: 'Events that could not be delivered or processed are waiting in the dead-letter queue',
    namespace: 'AWS/SQS',
    metric: 'ApproximateNumberOfMessagesVisible',
    dimension: { Name: 'QueueName', Value: { 'Fn::GetAtt': ['DeadLetterQueue', 'QueueName'] } },
    statistic: 'Maximum',
    period: 300,
  },
];

const alarms = async ({ resolveVariable }) => {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const metricsNamespace = await resolveVariable('param:metricsNamespace');
  return Object.fromEntries(
    ALARMS.map((alarm) => [
      alarm.id,
      {
        Type: 'AWS::CloudWatch::Alarm',
        Properties: {
          AlarmName: `${service}-${stage}-${alarm.suffix}`,
          AlarmDescription: alarm.description,
          Namespace: alarm.namespace === 'service' ? metricsNamespace : alarm.namespace,
          MetricName: alarm.metric,
          Dimensions: [alarm.dimension ?? { Name: 'service', Value: service }],
          Statistic: alarm.statistic,
          Period: alarm.period,
          EvaluationPeriods: 1,
          Threshold: 0,
          ComparisonOperator: 'GreaterThanThreshold',
          TreatMissingData: 'notBreaching',
          AlarmActions: [{ Ref: 'NotificationTopic' }],
        },
      },
    ]),
  );
};

module.exports = { alarms, ALARMS };
