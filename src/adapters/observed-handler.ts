import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { invocationEnded, runInInvocation } from './invocation';

/**
 * The frame every handler shares: the Lambda context on each log line, a failure logged with
 * its stack under `failureMessage` and rethrown (so Lambda retries and the on-failure
 * destination keeps the event), and the metrics flushed however the invocation ends.
 * However it ends, the AWS calls it leaves behind (the siblings of a failed call, their SDK
 * retries) are cancelled: they must not run on, nor resume when Lambda next thaws the
 * environment.
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
    const invocation = new AbortController();
    try {
      return await runInInvocation(invocation.signal, () => work(event, context));
    } catch (error) {
      logger.error(failureMessage, error as Error);
      throw error;
    } finally {
      invocation.abort(invocationEnded());
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
      logger.resetKeys();
    }
  };
