/** The least environment `loadConfig` accepts: every other variable takes its default. */
export const MINIMAL_ENV = {
  AWS_REGION: 'us-east-1',
  TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:kms-rotation-dev-notifications',
  STATE_PARAMETER_PREFIX: '/kms-rotation/dev/keys',
};
