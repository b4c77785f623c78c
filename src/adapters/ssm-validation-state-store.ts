import {
  GetParameterCommand,
  PutParameterCommand,
  paginateGetParametersByPath,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { z } from 'zod';
import type { DeclaredKeyRegistry } from '../domain/audit-fleet';
import type { Log, ValidationState, ValidationStateStore } from '../domain/ports';
import { callAws, translateAwsError } from './aws-errors';

const StoredState = z.object({
  managed: z.boolean().optional(),
  canary: z
    .object({
      ciphertext: z.string().max(2048),
      plaintextSha256: z.string().regex(/^[a-f0-9]{64}$/),
      createdAt: z.string().max(64),
    })
    .optional(),
  notifiedFailures: z.array(z.string().max(256)).max(100).optional(),
  openDrift: z.record(z.string().max(300), z.string().max(64)).optional(),
});

/**
 * One SSM String parameter per key, `<prefix>/<keyId>`, holding ciphertext and digests only.
 * The stack provisions the parameter of its own key; others are created on first save.
 */
export class SsmValidationStateStore implements ValidationStateStore, DeclaredKeyRegistry {
  constructor(
    private readonly ssm: SSMClient,
    private readonly prefix: string,
    private readonly log: Log,
  ) {}

  private nameOf(keyId: string): string {
    return `${this.prefix}/${keyId}`;
  }

  async load(keyId: string): Promise<ValidationState> {
    const name = this.nameOf(keyId);
    let value: string | undefined;
    try {
      const response = await this.ssm.send(new GetParameterCommand({ Name: name }));
      value = response.Parameter?.Value;
    } catch (error) {
      if ((error as { name?: string }).name === 'ParameterNotFound') return {};
      throw translateAwsError('GetParameter', name, error);
    }
    const parsed = StoredState.safeParse(safeJson(value));
    if (!parsed.success) {
      this.log.warn('Validation state is unreadable; starting afresh', { parameter: name });
      return {};
    }
    return parsed.data;
  }

  /** Keys with a record that says the service looked after them. */
  async declaredKeyIds(): Promise<string[]> {
    return callAws('GetParametersByPath', this.prefix, async () => {
      const ids: string[] = [];
      for await (const page of paginateGetParametersByPath(
        { client: this.ssm },
        { Path: this.prefix, Recursive: false },
      )) {
        for (const parameter of page.Parameters ?? []) {
          const state = StoredState.safeParse(safeJson(parameter.Value));
          const keyId = parameter.Name?.slice(this.prefix.length + 1);
          if (keyId && state.success && (state.data.managed || state.data.canary)) ids.push(keyId);
        }
      }
      return ids;
    });
  }

  async save(keyId: string, state: ValidationState): Promise<void> {
    const name = this.nameOf(keyId);
    await callAws('PutParameter', name, () =>
      this.ssm.send(
        new PutParameterCommand({ Name: name, Value: JSON.stringify(state), Type: 'String', Overwrite: true }),
      ),
    );
  }
}

const safeJson = (text: string | undefined): unknown => {
  try {
    return text === undefined ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
};
