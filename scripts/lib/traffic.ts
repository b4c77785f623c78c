import {
  DecryptCommand,
  EncryptCommand,
  GenerateMacCommand,
  type KMSClient,
  type MacAlgorithmSpec,
  SignCommand,
  type SigningAlgorithmSpec,
  VerifyCommand,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';

/**
 * Client traffic against KMS while keys are rotated: concurrent loops, one per workload, each
 * making data through an alias (a ciphertext, a signature, a MAC), keeping it with the key id
 * KMS says made it, and checking it at once by that key id. Every call and every failure is
 * counted under the phase it was made in; `recheck` later checks all kept data again, both by
 * the kept key id and through the alias. See docs/rotate.md#zero-downtime-proven.
 */

export type WorkloadKind = 'encrypt-decrypt' | 'sign-verify' | 'mac';

export interface Workload {
  /** A name for the report, e.g. `symmetric`. */
  name: string;
  kind: WorkloadKind;
  /** The alias the client names when it makes data. */
  alias: string;
}

/**
 * The calls a client makes, one function per kind of data: `make` through a key (the alias),
 * answering the key id KMS reports; `check` answers whether `proof` is still good under the key
 * named (`true`), or not (`false`: it does not decrypt to `message`, or does not verify). A
 * thrown error is a failed call.
 */
export interface KindCalls {
  make(keyId: string, message: Uint8Array): Promise<{ keyId: string; proof: Uint8Array }>;
  check(keyId: string, message: Uint8Array, proof: Uint8Array): Promise<boolean>;
  /** For data that names its own key (a symmetric ciphertext): the same check, naming no key. */
  checkUnnamed?(message: Uint8Array, proof: Uint8Array): Promise<boolean>;
}

export type TrafficCalls = Record<WorkloadKind, KindCalls>;

/** A piece of data a client made and kept: the ciphertext, signature or MAC, with the key id that made it. */
export interface KeptData {
  workload: string;
  phase: string;
  /** The key id (or ARN) KMS reported in the answer that made it: what a client keeps beside the data. */
  keyId: string;
  message: Uint8Array;
  proof: Uint8Array;
}

export interface LiveCounts {
  workload: string;
  phase: string;
  /** KMS calls made (a make and a check each round). */
  calls: number;
  /** Calls that threw, by error name. */
  failedCalls: number;
  errors: Record<string, number>;
  /** Data that did not check right after it was made, by the key id KMS reported for it. */
  rejectedAtOnce: number;
  /** With `rereadKept`: earlier data checked again by its kept key id (one a round), and how much of it did not check. */
  rereads: number;
  rereadRejected: number;
}

/** What `migrate` did: data re-made through the alias, and data left as it was because it no longer checked. */
export interface MigrationCounts {
  migrated: number;
  notMigrated: number;
}

export interface RecheckCounts {
  workload: string;
  /** The phase the data was made in. */
  phase: string;
  checked: number;
  /** Data that no longer decrypts or verifies by the key id kept beside it. */
  failedByKeptKeyId: number;
  /** Data that no longer decrypts or verifies through the alias. */
  failedThroughAlias: number;
  /** Data checked naming no key (kinds with `checkUnnamed` only), and how much of it failed. */
  checkedUnnamed: number;
  failedUnnamed: number;
  /** Data made by a key other than the one the alias names now (bound to fail through the alias). */
  madeByAnotherKey: number;
  /** Why checks failed (`does-not-verify` for a `false` answer, else the error name), both ways. */
  reasons: Record<string, number>;
}

/** `arn:aws:kms:…:key/<id>` or `<id>` -> `<id>`. */
export const bareKeyId = (keyIdOrArn: string): string => keyIdOrArn.slice(keyIdOrArn.lastIndexOf('/') + 1);

const errorNameOf = (error: unknown): string =>
  error instanceof Error ? error.name : typeof error === 'string' ? error : 'UnknownError';

/** A field KMS always answers; its absence is a failed call, not data kept under no key. */
const required = <T>(value: T | undefined, what: string): T => {
  if (value === undefined) throw Object.assign(new Error(`KMS answered without ${what}`), { name: 'IncompleteAnswer' });
  return value;
};

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array): boolean =>
  a !== undefined && a.length === b.length && a.every((byte, index) => byte === b[index]);

export interface Traffic {
  /** Everything made from now on is counted under `name`. */
  setPhase(name: string): void;
  /** Resolves once every workload has finished `rounds` more rounds (a make and its check) than now. */
  rounds(rounds: number): Promise<void>;
  /** Calls made so far, per workload (all phases). */
  callsSoFar(): Record<string, number>;
  /** Live counts so far, per workload and phase. */
  live(): LiveCounts[];
  kept(): readonly KeptData[];
  /**
   * Migrates a workload's data away from a key, as a client does before that key is retired:
   * each piece kept with `fromKeyId` is checked by that key id and, if good, made again through
   * the workload's alias (for a ciphertext: decrypted and encrypted again under the key the alias
   * names) and replaces the old piece (a new object: copies taken before keep the old one). Its
   * calls are counted under the current phase; a piece that does not check stays as it was.
   */
  migrate(workload: string, fromKeyId: string): Promise<MigrationCounts>;
  /** Stops the loops and waits for the rounds under way; a wait for rounds not done by then is refused. */
  stop(): Promise<void>;
}

/**
 * Starts one loop per workload, without pause between rounds except `pacingMs` (which only keeps
 * the amount of kept data small enough to recheck), until `stop`. With `rereadKept`, each round
 * also checks one piece the workload kept earlier again by its kept key id, in turn: a client
 * still reading old data, which is a use of the key that made it.
 */
export const startTraffic = (opts: {
  calls: TrafficCalls;
  workloads: readonly Workload[];
  phase: string;
  pacingMs?: number;
  rereadKept?: boolean;
}): Traffic => {
  let phase = opts.phase;
  let running = true;
  const kept: KeptData[] = [];
  const liveCounts = new Map<string, LiveCounts>();
  /** Per workload: where its pieces are in `kept`, and which one the next reread takes. */
  const keptAt = new Map<string, number[]>(opts.workloads.map((workload) => [workload.name, []]));
  const rereadCursor = new Map<string, number>();
  const roundsDone = new Map<string, number>(opts.workloads.map((workload) => [workload.name, 0]));
  const waiters: { until: Map<string, number>; resolve: () => void; reject: (error: Error) => void }[] = [];

  const countsOf = (workload: string, phaseName: string): LiveCounts => {
    const id = `${workload}\u0000${phaseName}`;
    let counts = liveCounts.get(id);
    if (!counts) {
      counts = {
        workload,
        phase: phaseName,
        calls: 0,
        failedCalls: 0,
        errors: {},
        rejectedAtOnce: 0,
        rereads: 0,
        rereadRejected: 0,
      };
      liveCounts.set(id, counts);
    }
    return counts;
  };

  const settleWaiters = () => {
    for (const waiter of [...waiters]) {
      if ([...waiter.until].every(([name, target]) => (roundsDone.get(name) ?? 0) >= target)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };

  const call = async <T>(
    counts: LiveCounts,
    run: () => Promise<T>,
  ): Promise<{ ok: true; value: T } | { ok: false }> => {
    counts.calls += 1;
    try {
      return { ok: true, value: await run() };
    } catch (error) {
      counts.failedCalls += 1;
      const name = errorNameOf(error);
      counts.errors[name] = (counts.errors[name] ?? 0) + 1;
      return { ok: false };
    }
  };

  const round = async (workload: Workload, index: number) => {
    const phaseName = phase;
    const counts = countsOf(workload.name, phaseName);
    const kind = opts.calls[workload.kind];
    const message = new TextEncoder().encode(`${workload.name} record ${index} (${phaseName})`);
    const made = await call(counts, () => kind.make(workload.alias, message));
    if (made.ok) {
      const { keyId, proof } = made.value;
      keptAt.get(workload.name)?.push(kept.length);
      kept.push({ workload: workload.name, phase: phaseName, keyId, message, proof });
      const checked = await call(counts, () => kind.check(keyId, message, proof));
      if (checked.ok && !checked.value) counts.rejectedAtOnce += 1;
    }
    if (opts.rereadKept) await reread(workload, counts);
  };

  const reread = async (workload: Workload, counts: LiveCounts) => {
    const at = keptAt.get(workload.name) ?? [];
    if (at.length === 0) return;
    // Walks back from the newest piece to the oldest, then starts again from the newest: every
    // piece is read again once a pass, however much is made meanwhile.
    const before = rereadCursor.get(workload.name) ?? -1;
    const cursor = before >= 0 && before < at.length ? before : at.length - 1;
    rereadCursor.set(workload.name, cursor - 1);
    const data = kept[at[cursor] as number] as KeptData;
    counts.rereads += 1;
    const checked = await call(counts, () => opts.calls[workload.kind].check(data.keyId, data.message, data.proof));
    if (checked.ok && !checked.value) counts.rereadRejected += 1;
  };

  const migrate = async (workloadName: string, fromKeyId: string): Promise<MigrationCounts> => {
    const workload = opts.workloads.find((each) => each.name === workloadName);
    if (!workload) throw new Error(`No workload ${workloadName} to migrate`);
    const kind = opts.calls[workload.kind];
    const result: MigrationCounts = { migrated: 0, notMigrated: 0 };
    for (const index of [...(keptAt.get(workloadName) ?? [])]) {
      const data = kept[index] as KeptData;
      if (bareKeyId(data.keyId) !== bareKeyId(fromKeyId)) continue;
      const counts = countsOf(workloadName, phase);
      const checked = await call(counts, () => kind.check(data.keyId, data.message, data.proof));
      const remade =
        checked.ok && checked.value ? await call(counts, () => kind.make(workload.alias, data.message)) : undefined;
      if (!remade?.ok) {
        result.notMigrated += 1;
        continue;
      }
      kept[index] = { ...data, keyId: remade.value.keyId, proof: remade.value.proof };
      result.migrated += 1;
    }
    return result;
  };

  const loop = async (workload: Workload) => {
    for (let index = 0; running; index += 1) {
      await round(workload, index);
      roundsDone.set(workload.name, (roundsDone.get(workload.name) ?? 0) + 1);
      settleWaiters();
      if (opts.pacingMs) await new Promise((resolve) => setTimeout(resolve, opts.pacingMs));
    }
  };

  const loops = opts.workloads.map(loop);

  return {
    setPhase: (name) => {
      phase = name;
    },
    rounds: (rounds) =>
      new Promise<void>((resolve, reject) => {
        if (!running) {
          reject(new Error('traffic is stopped'));
          return;
        }
        const until = new Map([...roundsDone].map(([name, done]) => [name, done + rounds]));
        waiters.push({ until, resolve, reject });
        settleWaiters();
      }),
    callsSoFar: () => {
      const totals: Record<string, number> = {};
      for (const counts of liveCounts.values()) totals[counts.workload] = (totals[counts.workload] ?? 0) + counts.calls;
      return totals;
    },
    live: () => [...liveCounts.values()].map((counts) => ({ ...counts, errors: { ...counts.errors } })),
    kept: () => kept,
    migrate,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      settleWaiters();
      for (const waiter of waiters.splice(0)) waiter.reject(new Error('traffic stopped before the rounds were done'));
    },
  };
};

/**
 * Checks every piece of kept data again: by the key id kept beside it, through the alias its
 * workload names, and, for data that names its own key (a symmetric ciphertext), naming no key. `targets` are the key ids the aliases name now; data made by another
 * key is counted as `madeByAnotherKey`. At most `parallel` checks at once.
 */
export const recheck = async (opts: {
  calls: TrafficCalls;
  workloads: readonly Workload[];
  kept: readonly KeptData[];
  targets: Record<string, string>;
  parallel?: number;
}): Promise<RecheckCounts[]> => {
  const byName = new Map(opts.workloads.map((workload) => [workload.name, workload]));
  const counts = new Map<string, RecheckCounts>();
  const countsOf = (workload: string, phase: string) => {
    const id = `${workload}\u0000${phase}`;
    let entry = counts.get(id);
    if (!entry) {
      entry = {
        workload,
        phase,
        checked: 0,
        failedByKeptKeyId: 0,
        failedThroughAlias: 0,
        checkedUnnamed: 0,
        failedUnnamed: 0,
        madeByAnotherKey: 0,
        reasons: {},
      };
      counts.set(id, entry);
    }
    return entry;
  };
  const good = async (entry: RecheckCounts, run: () => Promise<boolean>): Promise<boolean> => {
    let reason: string;
    try {
      if (await run()) return true;
      reason = 'does-not-verify';
    } catch (error) {
      reason = errorNameOf(error);
    }
    entry.reasons[reason] = (entry.reasons[reason] ?? 0) + 1;
    return false;
  };

  const one = async (data: KeptData) => {
    const workload = byName.get(data.workload);
    if (!workload) throw new Error(`Kept data of an unknown workload ${data.workload}`);
    const target = opts.targets[workload.alias];
    if (target === undefined) throw new Error(`No target given for ${workload.alias}`);
    const kind = opts.calls[workload.kind];
    const entry = countsOf(data.workload, data.phase);
    entry.checked += 1;
    if (bareKeyId(data.keyId) !== bareKeyId(target)) entry.madeByAnotherKey += 1;
    if (!(await good(entry, () => kind.check(data.keyId, data.message, data.proof)))) entry.failedByKeptKeyId += 1;
    if (!(await good(entry, () => kind.check(workload.alias, data.message, data.proof)))) entry.failedThroughAlias += 1;
    const { checkUnnamed } = kind;
    if (checkUnnamed) {
      entry.checkedUnnamed += 1;
      if (!(await good(entry, () => checkUnnamed(data.message, data.proof)))) entry.failedUnnamed += 1;
    }
  };

  const queue = [...opts.kept];
  const worker = async () => {
    for (let data = queue.shift(); data !== undefined; data = queue.shift()) await one(data);
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.parallel ?? 8) }, worker));
  return [...counts.values()];
};

/** Sums counts over phases, per workload. */
export const totalsByWorkload = <T extends { workload: string }>(
  rows: readonly T[],
  fields: readonly (keyof T & string)[],
): Record<string, Record<string, number>> => {
  const totals: Record<string, Record<string, number>> = {};
  for (const row of rows) {
    const total = totals[row.workload] ?? Object.fromEntries(fields.map((field) => [field, 0]));
    totals[row.workload] = total;
    for (const field of fields) total[field] = (total[field] ?? 0) + Number(row[field]);
  }
  return totals;
};

/**
 * The calls through the AWS SDK. A signature or MAC that does not verify is `false`, whether KMS
 * says so with `KMSInvalidSignatureException` / `KMSInvalidMacException` (as KMS does) or with
 * `SignatureValid: false` (as moto does); every other error is a failed call.
 */
export const kmsTrafficCalls = (
  kms: KMSClient,
  algorithms: { signing: SigningAlgorithmSpec; mac: MacAlgorithmSpec } = {
    signing: 'RSASSA_PSS_SHA_256',
    mac: 'HMAC_SHA_256',
  },
): TrafficCalls => {
  const context = { purpose: 'zero-downtime' };
  const falseOn = (names: readonly string[]) => (error: unknown) => {
    if (names.includes(errorNameOf(error))) return false;
    throw error;
  };
  return {
    'encrypt-decrypt': {
      make: async (keyId, message) => {
        const answer = await kms.send(
          new EncryptCommand({ KeyId: keyId, Plaintext: message, EncryptionContext: context }),
        );
        return { keyId: required(answer.KeyId, 'KeyId'), proof: required(answer.CiphertextBlob, 'CiphertextBlob') };
      },
      check: async (keyId, message, proof) => {
        const answer = await kms.send(
          new DecryptCommand({ KeyId: keyId, CiphertextBlob: proof, EncryptionContext: context }),
        );
        return sameBytes(answer.Plaintext, message);
      },
      checkUnnamed: async (message, proof) => {
        const answer = await kms.send(new DecryptCommand({ CiphertextBlob: proof, EncryptionContext: context }));
        return sameBytes(answer.Plaintext, message);
      },
    },
    'sign-verify': {
      make: async (keyId, message) => {
        const answer = await kms.send(
          new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: algorithms.signing }),
        );
        return { keyId: required(answer.KeyId, 'KeyId'), proof: required(answer.Signature, 'Signature') };
      },
      check: (keyId, message, proof) =>
        kms
          .send(
            new VerifyCommand({
              KeyId: keyId,
              Message: message,
              Signature: proof,
              SigningAlgorithm: algorithms.signing,
            }),
          )
          .then((answer) => answer.SignatureValid === true, falseOn(['KMSInvalidSignatureException'])),
    },
    mac: {
      make: async (keyId, message) => {
        const answer = await kms.send(
          new GenerateMacCommand({ KeyId: keyId, Message: message, MacAlgorithm: algorithms.mac }),
        );
        return { keyId: required(answer.KeyId, 'KeyId'), proof: required(answer.Mac, 'Mac') };
      },
      check: (keyId, message, proof) =>
        kms
          .send(new VerifyMacCommand({ KeyId: keyId, Message: message, Mac: proof, MacAlgorithm: algorithms.mac }))
          .then((answer) => answer.MacValid === true, falseOn(['KMSInvalidMacException'])),
    },
  };
};
