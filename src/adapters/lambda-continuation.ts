import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { AuditRequest, Continuation } from '../domain/audit-fleet';
import { callAws } from './aws-errors';

/** The next slice of an audit runs as an asynchronous invocation of the same function. */
export class LambdaContinuation implements Continuation {
  constructor(
    private readonly lambda: LambdaClient,
    private readonly functionName: string,
  ) {}

  async continueLater(request: AuditRequest): Promise<void> {
    await callAws('Invoke', this.functionName, () =>
      this.lambda.send(
        new InvokeCommand({
          FunctionName: this.functionName,
          InvocationType: 'Event',
          Payload: new TextEncoder().encode(JSON.stringify(request)),
        }),
      ),
    );
  }
}
