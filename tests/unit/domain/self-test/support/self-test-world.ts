import { parseKeyActivityEvent } from '../../../../../src/adapters/schemas/key-activity-event';
import { TAGS } from '../../../../../src/domain/declared-state';
import { AwsServiceError } from '../../../../../src/domain/errors';
import type { SelfTestDeps } from '../../../../../src/domain/self-test';
import { createWorld, type World } from '../../rotate/support/world';

export const ROLE_ARN = 'arn:aws:iam::123456789012:role/kms-rotation-dev-SelfTestRole-ABC123';

/** The rotate world, plus what only `selfTest` needs: throwaway-key calls, the drift watch's directory and schema. */
export interface SelfTestWorld extends World {
  selfTestDeps: SelfTestDeps;
  /** What `remainingMs` answers; a test may shrink it. */
  timeLeft: { ms: number };
}

export const createSelfTestWorld = (): SelfTestWorld => {
  const world = createWorld();
  const timeLeft = { ms: 900_000 };
  const { records: _records, ...rotateDeps } = world.deps;
  const selfTestDeps: SelfTestDeps = {
    ...rotateDeps,
    throwaway: world.kms,
    directory: {
      keysTagged: (tagKey, tagValue) => world.kms.keysTagged(tagKey, tagValue),
      managedKeys: () => world.kms.keysTagged(TAGS.managed, 'true'),
    },
    parseActivity: parseKeyActivityEvent,
    roleArn: ROLE_ARN,
    remainingMs: () => timeLeft.ms,
  };
  return { ...world, selfTestDeps, timeLeft };
};

/** What the KMS adapter throws when IAM or the key policy refuses a call. */
export const accessDenied = (operation: string, subject: string): AwsServiceError =>
  new AwsServiceError(
    operation,
    false,
    `${operation} on ${subject} failed: AccessDeniedException: User: ${ROLE_ARN} is not authorized to perform: kms:${operation}; check the function's IAM role and the key policy`,
    { accessDenied: true },
  );

/** Step name and status of each step of a self-test report. */
export const statuses = (report: { steps: { name: string; status: string }[] }): string[][] =>
  report.steps.map((step) => [step.name, step.status]);
