import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const { alarms, ALARMS } = require('../../../config/alarms.cjs') as {
  alarms: (ctx: {
    resolveVariable: (name: string) => Promise<string>;
  }) => Promise<Record<string, { Type: string; Properties: Record<string, unknown> }>>;
  ALARMS: { id: string; suffix: string }[];
};

const VARIABLES: Record<string, string> = {
  'self:service': 'kms-rotation',
  'sls:stage': 'prod',
  'param:metricsNamespace': 'KmsRotation',
};
const resolveVariable = async (name: string) => {
  const value = VARIABLES[name];
  if (value === undefined) throw new Error(`unexpected variable ${name}`);
  return value;
};

/** The alarm names of docs/alarms.md's runbook table. */
const runbookAlarms = (): string[] =>
  [...readFileSync('docs/alarms.md', 'utf8').matchAll(/^\| `kms-rotation-<stage>-([\w-]+)`/gm)].map(
    (match) => match[1] as string,
  );

/**
 * The alarms are one table (config/alarms.cjs); the template test checks the generated template.
 * Here: each row becomes an alarm that pages through the topic on the first period above zero, and
 * the runbook has exactly one entry per row.
 */
describe('Config: alarms', () => {
  it('makes one alarm per row, each notifying the topic on the first breach, named after the service and stage', async () => {
    const made = await alarms({ resolveVariable });

    expect(Object.keys(made).sort()).toEqual(ALARMS.map((alarm) => alarm.id).sort());
    for (const row of ALARMS) {
      const alarm = made[row.id];
      expect(alarm?.Type).toBe('AWS::CloudWatch::Alarm');
      expect(alarm?.Properties).toMatchObject({
        AlarmName: `kms-rotation-prod-${row.suffix}`,
        EvaluationPeriods: 1,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: 'NotificationTopic' }],
      });
    }
    // The service's own metrics are in the stage's namespace, with the `service` dimension.
    expect(made.RotationValidationFailedAlarm?.Properties).toMatchObject({
      Namespace: 'KmsRotation',
      MetricName: 'RotationValidationFailed',
      Dimensions: [{ Name: 'service', Value: 'kms-rotation' }],
    });
    expect(made.OnRotationErrorsAlarm?.Properties).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'OnRotationLambdaFunction' } }],
    });
  });

  it('has a runbook entry in docs/alarms.md for every alarm, and none for an alarm that does not exist', () => {
    expect(runbookAlarms().sort()).toEqual(ALARMS.map((alarm) => alarm.suffix).sort());
  });
});
