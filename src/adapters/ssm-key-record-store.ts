import {
  GetParameterCommand,
  PutParameterCommand,
  paginateGetParametersByPath,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import * as z from 'zod/mini';
import type { KeyRecordIndex } from '../domain/audit-fleet';
import type { KeyRecord, KeyRecordStore, Log } from '../domain/ports';
import { callAws, translateAwsError } from './aws-errors';
import { matching, text } from './schemas/zod';

const StoredRecord = z.object({
  managed: z.optional(z.boolean()),
  canary: z.optional(
    z.object({
      ciphertext: text(2048),
      plaintextSha256: matching(/^[a-f0-9]{64}$/, 'must be a SHA-256 digest'),
      createdAt: text(64),
    }),
  ),
  notifiedFailures: z.optional(z.array(text(256)).check(z.maxLength(100))),
  openDrift: z.optional(z.record(text(300), text(64))),
  lastValidatedRotation: z.optional(z.object({ keyMaterialId: z.optional(text(128)), rotationDate: text(64) })),
  replicaLag: z.optional(
    z.record(
      text(64),
      z.object({ firstSeen: text(64), primaryMaterialId: text(128), replicaMaterialId: z.optional(text(128)) }),
    ),
  ),
});

/**
 * The keys' records: one SSM String parameter per key, `<prefix>/<keyId>`, holding ciphertext and
 * digests only. The parameter names and the JSON field names are the persisted format: unchanged.
 * The stack provisions the parameter of its own key; others are created on first save.
 */
export class SsmKeyRecordStore implements KeyRecordStore, KeyRecordIndex {
  constructor(
    private readonly ssm: SSMClient,
    private readonly prefix: string,
    private readonly log: Log,
  ) {}

  private nameOf(keyId: string): string {
    return `${this.prefix}/${keyId}`;
  }

  async load(keyId: string): Promise<KeyRecord> {
    const name = this.nameOf(keyId);
    let value: string | undefined;
    try {
      const response = await this.ssm.send(new GetParameterCommand({ Name: name }));
      value = response.Parameter?.Value;
    } catch (error) {
      if ((error as { name?: string }).name === 'ParameterNotFound') return {};
      throw translateAwsError('GetParameter', name, error);
    }
    const parsed = StoredRecord.safeParse(safeJson(value));
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
          const state = StoredRecord.safeParse(safeJson(parameter.Value));
          const keyId = parameter.Name?.slice(this.prefix.length + 1);
          if (keyId && state.success && (state.data.managed || state.data.canary)) ids.push(keyId);
        }
      }
      return ids;
    });
  }

  async save(keyId: string, record: KeyRecord): Promise<void> {
    const name = this.nameOf(keyId);
    await callAws('PutParameter', name, () =>
      this.ssm.send(
        new PutParameterCommand({ Name: name, Value: JSON.stringify(record), Type: 'String', Overwrite: true }),
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
