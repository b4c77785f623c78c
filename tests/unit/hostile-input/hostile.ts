/**
 * Generated hostile input for the five handlers' input contracts (fast-check).
 *
 * Every property runs with one seed: `FC_SEED` when set, a fresh random one otherwise. A
 * failure names the seed and the command that replays it:
 *
 *   FC_SEED=<seed> npx vitest run tests/unit/hostile-input
 *
 * Each generated input is a valid sample event of `events/` with exactly one mutation at a
 * known path, so a refusal can be required to name that path. Mutations print as
 * `<path> <- <what>` in counterexamples, never as the (possibly 1 MiB) value itself.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, vi } from 'vitest';
import {
  contextOf,
  type FunctionName,
  type Handler,
  type Invocation,
  invoke,
  loadHandler,
} from '../support/handler-loader';
import { type RecordingAws, startRecordingAws } from '../support/recording-aws';

const randomSeed = () => Math.floor(Math.random() * 0x7fffffff);
export const SEED = process.env.FC_SEED ? Number(process.env.FC_SEED) : randomSeed();
/** Generated inputs per refusal property; the issue asks for at least 200 per function per run. */
export const RUNS = 200;
/** Per-test timeout: well above what 200 in-process invocations take. */
export const TIMEOUT_MS = 60_000;

/** `fc.assert` with the run's seed; a failure says how to replay it. */
export const assertProperty = async <T>(property: fc.IAsyncPropertyWithHooks<[T]>, numRuns = RUNS): Promise<void> => {
  try {
    await fc.assert(property, { numRuns, seed: SEED });
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    const cause = error instanceof Error && error.cause instanceof Error ? `\nGot: ${error.cause.message}` : '';
    throw new Error(
      `Property failed with FC_SEED=${SEED}; replay with: FC_SEED=${SEED} npx vitest run tests/unit/hostile-input\n${text.slice(0, 4000)}${cause.slice(0, 2000)}`,
    );
  }
};

/** At most `max` characters of `text`, control characters escaped. */
export const short = (text: string, max = 300): string => {
  const escaped = JSON.stringify(text.length > max ? text.slice(0, max) : text).slice(1, -1);
  return text.length > max ? `${escaped}…(${text.length} chars)` : escaped;
};

/**
 * A valid input naming a key that does not exist must fail, naming the AWS read that found
 * nothing. The first reads run in parallel, so whichever of them answers first is named.
 */
const NOT_FOUND_BY = /\b(?:DescribeKey|ListResourceTags|ListAliases) on \S+ failed: NotFoundException/;
export const failsNamingTheRead = (invocation: { failed: boolean; error?: unknown; result?: unknown }): void => {
  const message = String((invocation.error as Error | undefined)?.message ?? '');
  if (!invocation.failed) throw new Error(`resolved with ${short(JSON.stringify(invocation.result))}`);
  if (!NOT_FOUND_BY.test(message)) throw new Error(`message names no AWS read that found nothing: ${short(message)}`);
};

/** A sample event or payload from `events/`. */
export const sample = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join('events', file), 'utf8'));

export type Path = readonly (string | number)[];
export const pathText = (path: Path) => path.map(String).join('.') || '(payload)';

type Operation =
  | { set: unknown }
  | { delete: true }
  | { addKey: string; value: unknown }
  | { edit: (event: Record<string, unknown>) => void };

/** One change to a valid event, and the field names a refusal may give for it. */
export interface Mutation {
  path: Path;
  label: string;
  operation: Operation;
  names: string[];
  [fc.toStringMethod]: () => string;
}

export const mutation = (path: Path, label: string, operation: Operation, names = [pathText(path)]): Mutation => ({
  path,
  label,
  operation,
  names,
  [fc.toStringMethod]: () => `${pathText(path)} <- ${label}`,
});

/** A deep copy of `base` with `change` made. */
export const applyMutation = (base: unknown, change: Mutation): unknown => {
  const { operation, path } = change;
  if ('set' in operation && path.length === 0) return operation.set;
  const event = structuredClone(base) as Record<string, unknown>;
  if ('edit' in operation) {
    operation.edit(event);
    return event;
  }
  const parentPath = 'addKey' in operation ? path : path.slice(0, -1);
  let parent: Record<string | number, unknown> = event;
  for (const segment of parentPath) {
    parent[segment] ??= {};
    parent = parent[segment] as Record<string | number, unknown>;
  }
  if ('addKey' in operation) {
    // defineProperty, so that `__proto__` becomes an own key as JSON.parse would make it.
    Object.defineProperty(parent, operation.addKey, {
      value: operation.value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else if ('delete' in operation) {
    delete parent[path[path.length - 1] as string];
  } else {
    parent[path[path.length - 1] as string] = operation.set;
  }
  return event;
};

// ---------------------------------------------------------------------------------------------
// Hostile values

const MIB = 1 << 20;
const nested = (depth: number, wrap: (inner: unknown) => unknown) => {
  let value: unknown = 'x';
  for (let level = 0; level < depth; level++) value = wrap(value);
  return value;
};
export const HUGE_STRING = 'A'.repeat(MIB);
const DEEP_ARRAY = nested(10_000, (inner) => [inner]);
const DEEP_OBJECT = nested(10_000, (inner) => ({ a: inner }));
const MANY_STRINGS = Array.from({ length: 10_000 }, (_, index) => `${index}`.padEnd(1024, 'x'));

interface Labelled {
  label: string;
  value: unknown;
}
const WRONG_TYPES: Labelled[] = [
  { label: 'number 0', value: 0 },
  { label: 'number -1.5', value: -1.5 },
  { label: 'NaN', value: Number.NaN },
  { label: 'Infinity', value: Number.POSITIVE_INFINITY },
  { label: 'true', value: true },
  { label: 'false', value: false },
  { label: 'null', value: null },
  { label: 'empty array', value: [] },
  { label: 'array of one string', value: ['x'] },
  { label: 'empty object', value: {} },
  { label: 'object with __proto__ key', value: JSON.parse('{"__proto__":{"polluted":true}}') },
  { label: 'string "x"', value: 'x' },
  { label: 'empty string', value: '' },
  { label: '1 MiB string', value: HUGE_STRING },
  { label: 'array nested 10000 deep', value: DEEP_ARRAY },
  { label: 'object nested 10000 deep', value: DEEP_OBJECT },
  { label: '10000 strings of 1 KiB', value: MANY_STRINGS },
];

/** Characters no id, ARN, alias name, account, Region or time may contain. */
export const HOSTILE_CHARS = [
  '\u0000',
  '\n',
  '\r',
  '\t',
  '\u001b',
  '\u007f',
  '\u0085',
  '\u00a0',
  ' ',
  '\u200b',
  '\u200d',
  '\u202e',
  '\u2066',
  '\ufeff',
  '\ud800',
  '"',
  '\\',
  '%',
  '*',
  '\u0430', // Cyrillic a
  '\u0435', // Cyrillic e
  '\uff11', // fullwidth 1
  '\u2215', // division slash
  '\u2010', // hyphen
];

/** Look-alikes: Cyrillic letters, fullwidth digits and colon, a division slash, a Unicode hyphen. */
const LOOKALIKES: Record<string, string> = {
  a: '\u0430',
  c: '\u0441',
  e: '\u0435',
  o: '\u043e',
  p: '\u0440',
  x: '\u0445',
  i: '\u0456',
  '0': '\uff10',
  '1': '\uff11',
  '2': '\uff12',
  '3': '\uff13',
  ':': '\uff1a',
  '/': '\u2215',
  '-': '\u2010',
};

/** Variants of a valid string that no pattern over ids, ARNs, names, accounts, Regions or times accepts. */
export const hostileVariants = (valid: string): fc.Arbitrary<Labelled> =>
  fc.oneof(
    fc.tuple(fc.constantFrom(...HOSTILE_CHARS), fc.nat()).map(([char, at]) => {
      const index = at % (valid.length + 1);
      return {
        label: `${short(char)} inserted at ${index}`,
        value: valid.slice(0, index) + char + valid.slice(index),
      };
    }),
    fc.nat().map((at) => {
      const positions = [...valid].flatMap((char, index) => (LOOKALIKES[char] ? [index] : []));
      if (positions.length === 0) return { label: 'U+202E prefixed', value: `\u202e${valid}` };
      const index = positions[at % positions.length] as number;
      const original = valid[index] as string;
      return {
        label: `look-alike ${short(LOOKALIKES[original] as string)} for "${original}" at ${index}`,
        value: valid.slice(0, index) + LOOKALIKES[original] + valid.slice(index + 1),
      };
    }),
    fc.constantFrom<Labelled>(
      { label: 'empty string', value: '' },
      { label: 'upper-cased', value: valid.toUpperCase() === valid ? `${valid}X` : valid.toUpperCase() },
      { label: 'valid value repeated to 1 MiB', value: valid.repeat(Math.ceil(MIB / valid.length)) },
      { label: 'trailing newline', value: `${valid}\n` },
      { label: 'path traversal', value: `../../${valid}` },
    ),
  );

/** Every field name the strict payloads declare: a generated name must not be one of them. */
const DECLARED = new Set(
  'key strategy dryRun reason action force remediate keyIds scheduled checkpoint auditId startedAt marker slice totals keysAudited byClass findingsByRule bySeverity nonCompliantKeys nonCompliantByRule remediated suppressed suppressedByRule expiredExceptions declaredSeen'.split(
    ' ',
  ),
);

/** Names for fields nobody declared: prototype keys, typos, look-alikes, control characters. */
export const SHORT_EXTRA_KEYS: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'dryrun',
    'Key',
    'key ',
    'k\u0435y',
    'key\u200d',
    '\u202ekey',
    '',
    '\u0000',
  ),
  fc.string({ minLength: 1, maxLength: 64 }).filter((key) => !DECLARED.has(key)),
);

/** Names past 64 characters, up to 1 MiB: a refusal lists at most 64 characters of each (contract item 1). */
export const LONG_EXTRA_KEYS: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('x'.repeat(MIB), `__proto__${'p'.repeat(MIB)}`, 'constructor\n'.repeat(MIB / 12)),
  fc.string({ minLength: 65, maxLength: 300 }),
);

/** The two kinds of unknown field name a strict payload refuses, as `it.each` rows. */
export const UNKNOWN_FIELD_NAMES: [string, fc.Arbitrary<string>][] = [
  ['a name of at most 64 characters, named whole', SHORT_EXTRA_KEYS],
  ['a name of 65 characters to 1 MiB, of which at most 64 are listed', LONG_EXTRA_KEYS],
];

const EXTRA_VALUES = fc.constantFrom<unknown>(true, 1, 'x', {}, null, [], DEEP_OBJECT, HUGE_STRING);

// ---------------------------------------------------------------------------------------------
// Fields

export type Kind = 'string' | 'pattern' | 'enum' | 'boolean' | 'int' | 'true' | 'array' | 'object';

/** A field the schema checks: what type it has, whether it must be there, how long it may be. */
export interface Field {
  path: Path;
  kind: Kind;
  required?: boolean;
  nullable?: boolean;
  /** Longest valid string. */
  max?: number;
  /** A valid value, for `pattern` and `enum` fields. */
  valid?: string;
}

const isWrongType = (kind: Kind, nullable: boolean | undefined, value: unknown): boolean => {
  if (value === null) return !nullable;
  switch (kind) {
    case 'string':
    case 'pattern':
    case 'enum':
      return typeof value !== 'string';
    case 'boolean':
      return typeof value !== 'boolean';
    case 'true':
      return value !== true;
    case 'int':
      return typeof value !== 'number' || !Number.isInteger(value) || value < 0;
    case 'array':
      return !Array.isArray(value);
    case 'object':
      return typeof value !== 'object' || Array.isArray(value);
  }
};

/** Every structural mutation of one field: wrong type, missing, hostile or look-alike text, too long. */
export const mutationsOf = (field: Field): fc.Arbitrary<Mutation> => {
  const { path } = field;
  const wrong = WRONG_TYPES.filter(({ value }) => isWrongType(field.kind, field.nullable, value));
  const options: fc.Arbitrary<Mutation>[] = [
    fc.constantFrom(...wrong).map(({ label, value }) => mutation(path, label, { set: value })),
  ];
  if (field.required) options.push(fc.constant(mutation(path, 'missing', { delete: true })));
  if ((field.kind === 'pattern' || field.kind === 'enum') && field.valid !== undefined) {
    options.push(hostileVariants(field.valid).map(({ label, value }) => mutation(path, label, { set: value })));
  }
  if (field.max !== undefined) {
    options.push(
      fc.constant(
        mutation(path, `string of ${(field.max as number) + 1} characters`, { set: 'b'.repeat(field.max + 1) }),
      ),
    );
  }
  return fc.oneof(...options);
};

export const fieldMutations = (fields: readonly Field[]): fc.Arbitrary<Mutation> =>
  fc.constantFrom(...fields).chain(mutationsOf);

/** An undeclared key added to a strict object at `path`. */
export const extraKeyMutations = (paths: readonly Path[], keys = SHORT_EXTRA_KEYS): fc.Arbitrary<Mutation> =>
  fc
    .tuple(fc.constantFrom(...paths), keys, EXTRA_VALUES)
    .map(([path, key, value]) =>
      mutation(path, `extra key ${short(key, 40)}`, { addKey: key, value }, ['Unrecognized key']),
    );

/** The whole payload replaced by something of the wrong type. */
export const wrongPayloads = (valid: (value: unknown) => boolean = () => false): fc.Arbitrary<Mutation> =>
  fc
    .constantFrom(
      ...WRONG_TYPES.filter(
        ({ value }) => !valid(value) && (typeof value !== 'object' || value === null || Array.isArray(value)),
      ),
      { label: 'array of a valid-looking object', value: [{}] },
      { label: 'number 42', value: 42 },
    )
    .map(({ label, value }) => mutation([], label, { set: value }));

// ---------------------------------------------------------------------------------------------
// The refusal contract

const MAX_MESSAGE = 2048;
const MAX_QUOTED = 256;
const MAX_KEY_LISTED = 64;
const MAX_LOG_LINE = 8 * 1024;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** `name` as a field name in the message, not as part of another word. */
const namesField = (message: string, name: string) =>
  new RegExp(`(?:^|[\\s:;(,"'])${escapeRegExp(name)}(?=$|[\\s:;),."'=])`).test(message);

const keyListed = (message: string, key: string) => {
  const head = key.slice(0, MAX_KEY_LISTED);
  const escaped = JSON.stringify(head).slice(1, -1);
  return (
    message.includes(head) ||
    message.includes(escaped) ||
    message.includes(JSON.stringify(key).slice(1, MAX_KEY_LISTED + 1))
  );
};

/**
 * What is wrong with how the handler met a structurally invalid input: it must reject with
 * `InvalidInputError`, a message of at most 2048 characters naming the field (quoting no value
 * past ~200 characters, no unknown key past 64), no AWS request, no log line over 8 KiB.
 */
export const refusalProblems = (invocation: Invocation, change: Mutation): string[] => {
  const problems: string[] = [];
  if (!invocation.failed) problems.push(`resolved with ${short(JSON.stringify(invocation.result) ?? 'undefined')}`);
  const error = invocation.error as { name?: unknown; kind?: unknown; message?: unknown } | undefined;
  const message = typeof error?.message === 'string' ? error.message : '';
  if (invocation.failed) {
    if (error?.name !== 'InvalidInputError' || error?.kind !== 'invalid-input') {
      problems.push(`rejected with ${String(error?.name)} (kind ${String(error?.kind)}): ${short(message)}`);
    }
    if (message.length > MAX_MESSAGE) problems.push(`message of ${message.length} characters: ${short(message, 200)}`);
    if (!change.names.some((name) => namesField(message, name))) {
      problems.push(`message does not name ${change.names.join(' or ')}: ${short(message)}`);
    }
    const { operation } = change;
    if ('addKey' in operation && !keyListed(message, operation.addKey)) {
      problems.push(`message does not list the key ${short(operation.addKey, 64)}: ${short(message)}`);
    }
    if ('addKey' in operation && operation.addKey.length > MAX_KEY_LISTED) {
      if (message.includes(operation.addKey.slice(0, MAX_KEY_LISTED + 1))) {
        problems.push(`message lists more than ${MAX_KEY_LISTED} characters of the key`);
      }
    }
    const quoted = 'set' in operation && typeof operation.set === 'string' ? operation.set : undefined;
    if (quoted && quoted.length > MAX_QUOTED && message.includes(quoted.slice(0, MAX_QUOTED))) {
      problems.push(`message quotes more than ${MAX_QUOTED} characters of the value`);
    }
  }
  if (invocation.requests.length > 0) {
    problems.push(
      `${invocation.requests.length} AWS request(s): ${invocation.requests.map((request) => request.operation).join(', ')}`,
    );
  }
  const longest = Math.max(0, ...invocation.logLines.map((line) => line.length));
  if (longest > MAX_LOG_LINE) problems.push(`a log line of ${longest} characters`);
  return problems;
};

/** Throws the problems as one short error, for fast-check to report (and shrink). */
export const expectNoProblems = (problems: string[]): void => {
  if (problems.length > 0) throw new Error(problems.join('\n'));
};

/** The function one test file attacks: its real handler, against a recording endpoint of its own. */
export interface Target {
  fn: FunctionName;
  aws: RecordingAws;
  handler: Handler;
  context: Context;
}

/** Loads `fn`'s handler before the file's tests and closes its endpoint after them. */
export const targetOf = (fn: FunctionName): Target => {
  const target = { fn, context: contextOf(fn) } as Target;
  beforeAll(async () => {
    target.aws = await startRecordingAws();
    target.handler = await loadHandler(fn, target.aws);
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await target.aws.close();
  });
  return target;
};

/** Invokes the target once with `input`. */
export const attack = (target: Target, input: unknown): Promise<Invocation> =>
  invoke(target.handler, input, target.context, target.aws);

/** The target must refuse `input` (a valid input with `change` applied) as `refusalProblems` requires. */
export const expectRefused = async (target: Target, input: unknown, change: Mutation): Promise<void> =>
  expectNoProblems(refusalProblems(await attack(target, input), change));
