import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';

/**
 * The frame every handler shares: the Lambda context on each log line, a failure logged with
 * its stack under `failureMessage` and rethrown (so Lambda retries and the on-failure
 * destination keeps the event), and the metrics flushed however the invocation ends.
 */
export const observedHandler =
  <R>(
    logger: Logger,
    metrics: Metrics,
    failureMessage: string,
    work: (event: unknown, context: Context) => Promise<R>,
  ) =>
  async (event: unknown, context: Context): Promise<R> => {
    logger.addContext(context);
    try {
      return await work(event, context);
    } catch (error) {
      logger.error(failureMessage, error as Error);
      throw error;
    } finally {
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
      logger.resetKeys();
    }
  };
