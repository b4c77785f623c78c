import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { ACCOUNT, type Invocation, REGION, SERVICE_ROLES } from '../support/handler-loader';
import {
  applyMutation,
  assertProperty,
  attack,
  expectNoProblems,
  expectRefused,
  type Field,
  failsNamingTheRead,
  fieldMutations,
  hostileVariants,
  type Mutation,
  mutation,
  type Path,
  sample,
  short,
  TIMEOUT_MS,
  targetOf,
  wrongPayloads,
} from './hostile';

type Event = Record<string, unknown>;
type Detail = Record<string, unknown>;
const detailOf = (event: Event) => event.detail as Detail;

/** Sample events by file name: counterexamples name the file, not the whole event. */
const samples = (files: string[]): Record<string, Event> =>
  Object.fromEntries(files.map((file) => [file, sample(file)]));
const CALLS = samples(readdirSync('events').filter((file) => file.startsWith('cloudtrail-')));
/** The recorded calls that succeeded: no `errorCode`. */
const SUCCEEDED = Object.fromEntries(
  Object.entries(CALLS).filter(([, event]) => detailOf(event).errorCode === undefined),
);
const SERVICE_EVENTS = samples(['kms-cmk-deletion.json', 'kms-imported-key-material-expiration.json']);
const fileOf = (events: Record<string, Event>) => fc.constantFrom(...Object.keys(events));
const ALL_SAMPLES = { ...CALLS, ...SERVICE_EVENTS };
const onSamples = (events: Record<string, Event>, mutations: fc.Arbitrary<Mutation>) =>
  fc.tuple(fileOf(events), mutations);

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const OTHER_ACCOUNT = '210987654321';
const arn = (resource: string, { partition = 'aws', region = REGION, account = ACCOUNT } = {}) =>
  `arn:${partition}:kms:${region}:${account}:${resource}`;
const KEY_ARN = arn(`key/${KEY_ID}`);

const ENVELOPE: Field[] = [
  { path: ['version'], kind: 'string', required: true, max: 16 },
  { path: ['id'], kind: 'string', required: true, max: 128 },
  { path: ['source'], kind: 'enum', required: true, valid: 'aws.kms' },
  { path: ['account'], kind: 'pattern', required: true, valid: ACCOUNT },
  { path: ['time'], kind: 'pattern', required: true, valid: '2026-11-21T10:15:07Z' },
  { path: ['region'], kind: 'pattern', required: true, valid: REGION },
  { path: ['resources'], kind: 'array', required: true },
  { path: ['detail'], kind: 'object', required: true },
];

const CALL_FIELDS: Field[] = [
  ...ENVELOPE,
  { path: ['detail-type'], kind: 'enum', required: true, valid: 'AWS API Call via CloudTrail' },
  { path: ['detail', 'eventSource'], kind: 'enum', required: true, valid: 'kms.amazonaws.com' },
  { path: ['detail', 'eventName'], kind: 'enum', required: true, valid: 'DisableKey' },
  { path: ['detail', 'eventTime'], kind: 'pattern', required: true, valid: '2026-11-21T10:15:07Z' },
  { path: ['detail', 'eventID'], kind: 'string', max: 128 },
  { path: ['detail', 'userIdentity'], kind: 'object' },
  { path: ['detail', 'userIdentity', 'type'], kind: 'string', max: 64 },
  { path: ['detail', 'userIdentity', 'arn'], kind: 'string', max: 2048 },
  { path: ['detail', 'userIdentity', 'invokedBy'], kind: 'string', max: 256 },
  { path: ['detail', 'userIdentity', 'sessionContext'], kind: 'object' },
  { path: ['detail', 'userIdentity', 'sessionContext', 'sessionIssuer'], kind: 'object' },
  { path: ['detail', 'userIdentity', 'sessionContext', 'sessionIssuer', 'arn'], kind: 'string', max: 2048 },
  { path: ['detail', 'sourceIPAddress'], kind: 'string', max: 256 },
  { path: ['detail', 'userAgent'], kind: 'string', max: 1024 },
  { path: ['detail', 'errorCode'], kind: 'string', max: 256 },
  { path: ['detail', 'errorMessage'], kind: 'string', max: 4096 },
  { path: ['detail', 'requestParameters'], kind: 'object', nullable: true },
  { path: ['detail', 'requestParameters', 'keyId'], kind: 'string', max: 2048 },
  { path: ['detail', 'requestParameters', 'aliasName'], kind: 'string', max: 256 },
  { path: ['detail', 'requestParameters', 'targetKeyId'], kind: 'string', max: 2048 },
  { path: ['detail', 'responseElements'], kind: 'object', nullable: true },
  { path: ['detail', 'responseElements', 'keyId'], kind: 'string', max: 2048 },
  { path: ['detail', 'resources'], kind: 'array' },
  { path: ['detail', 'resources', 0], kind: 'object' },
  { path: ['detail', 'resources', 0, 'ARN'], kind: 'string', max: 2048 },
];

const SERVICE_FIELDS: Field[] = [
  ...ENVELOPE,
  { path: ['detail-type'], kind: 'enum', required: true, valid: 'KMS CMK Deletion' },
  { path: ['detail', 'key-id'], kind: 'pattern', required: true, valid: KEY_ID },
];

/** Event-wide changes with the name a refusal must give (an event for another account or Region). */
const ELSEWHERE: Mutation[] = [
  mutation(['account'], 'another account', { set: OTHER_ACCOUNT }, ['account']),
  mutation(['region'], 'another Region', { set: 'eu-west-1' }, ['region', 'eu-west-1']),
];

/** Contract item 4: fields that must hold a key id, key ARN, alias name or alias ARN of this account and Region. */
const KEY_REF_FIELDS: { path: Path; valid: string[] }[] = [
  { path: ['detail', 'requestParameters', 'keyId'], valid: [KEY_ID, KEY_ARN, 'alias/app/secure-key'] },
  { path: ['detail', 'requestParameters', 'targetKeyId'], valid: [KEY_ID, KEY_ARN] },
  { path: ['detail', 'responseElements', 'keyId'], valid: [KEY_ARN, KEY_ID] },
  { path: ['detail', 'resources', 0, 'ARN'], valid: [KEY_ARN, arn('alias/app/secure-key')] },
];
const FOREIGN_ARNS = [
  arn(`key/${KEY_ID}`, { account: OTHER_ACCOUNT }),
  arn(`key/${KEY_ID}`, { region: 'eu-west-1' }),
  arn(`key/${KEY_ID}`, { partition: 'aws-cn' }),
  arn('alias/app/secure-key', { account: OTHER_ACCOUNT }),
  arn('alias/app/secure-key', { region: 'eu-west-1' }),
  arn('alias/app/secure-key', { partition: 'aws-us-gov' }),
];
/** What a refused call may name (bounded, as the schema requires of any record): anything a caller typed. */
const NAMED_BY_A_FAILED_CALL: fc.Arbitrary<Mutation> = fc
  .tuple(
    fc.constantFrom(...KEY_REF_FIELDS),
    fc.constantFrom(...FOREIGN_ARNS, 'my key', '', 'alias/app/ke\u200dy', arn('key/1234', { partition: 'aws-cn' })),
  )
  .map(([{ path }, value]) => mutation(path, short(value), { set: value }));
const BAD_KEY_REFS: fc.Arbitrary<Mutation> = fc.constantFrom(...KEY_REF_FIELDS).chain(({ path, valid }) =>
  fc.oneof(
    fc
      .constantFrom(...valid)
      .chain(hostileVariants)
      .map(({ label, value }) => mutation(path, label, { set: value })),
    fc.constantFrom(...FOREIGN_ARNS).map((foreign) => mutation(path, foreign, { set: foreign })),
  ),
);

/** Contract item 4: a successful call that names no key and no alias. */
const NOTHING_NAMED = fc
  .constantFrom<[string, unknown]>(['{}', {}], ['null', null], ['{"bucketName":"x"}', { bucketName: 'x' }])
  .map(([label, requestParameters]) =>
    mutation(
      ['detail', 'requestParameters'],
      `${label}, no responseElements, no resources`,
      {
        edit: (event) => {
          const detail = detailOf(event);
          detail.requestParameters = requestParameters;
          detail.responseElements = null;
          detail.resources = [];
        },
      },
      ['detail.requestParameters'],
    ),
  );

/** Contract item 4: `resources` of a deletion or expiration event must be exactly the key ARN of `detail.key-id`. */
const BAD_SERVICE_RESOURCES = fc.oneof(
  fc.constantFrom(
    mutation(['resources'], 'no resources', { set: [] }),
    mutation(['resources'], 'the key ARN twice', { set: [KEY_ARN, KEY_ARN] }),
    mutation(['resources'], 'the key ARN and another', {
      set: [KEY_ARN, arn(`key/${KEY_ID}`, { region: 'eu-west-1' })],
    }),
    mutation(['resources', 0], 'ARN of another key', { set: arn('key/0987dcba-09fe-87dc-65ba-ab0987654321') }),
    mutation(['resources', 0], 'alias ARN', { set: arn('alias/app/secure-key') }),
    mutation(['resources', 0], 'key id', { set: KEY_ID }),
    ...FOREIGN_ARNS.slice(0, 3).map((foreign) => mutation(['resources', 0], foreign, { set: foreign })),
  ),
  hostileVariants(KEY_ARN).map(({ label, value }) => mutation(['resources', 0], label, { set: value })),
);

// Identities ------------------------------------------------------------------------------------

const SESSION_NAMES = fc.stringMatching(/^[\w+=,.@-]{2,64}$/);
const nameOf = (role: string) => role.slice(role.lastIndexOf('/') + 1);
const onAccount = (role: string, account: string) => role.replace(`::${ACCOUNT}:`, `::${account}:`);

/** `userIdentity` of a session of `role`, as CloudTrail records it. */
const assumedRole = (role: string, session: string, overrides: { arn?: string; type?: string } = {}) => {
  const account = /::(\d{12}):/.exec(role)?.[1] ?? ACCOUNT;
  return {
    type: overrides.type ?? 'AssumedRole',
    principalId: `AROAEXAMPLEROLEID:${session}`,
    arn: overrides.arn ?? `arn:aws:sts::${account}:assumed-role/${nameOf(role)}/${session}`,
    accountId: account,
    accessKeyId: 'ASIAEXAMPLE',
    sessionContext: {
      sessionIssuer: {
        type: 'Role',
        principalId: 'AROAEXAMPLEROLEID',
        arn: role,
        accountId: account,
        userName: nameOf(role),
      },
      attributes: { creationDate: '2026-11-21T10:00:00Z', mfaAuthenticated: 'false' },
    },
  };
};

const ROLES = fc.constantFrom(...Object.values(SERVICE_ROLES));

/** Identities that look like kms-rotation's own roles but are not (contract item 4), by what they imitate. */
const SPOOFS: [string, (role: string, session: string) => unknown][] = [
  [
    'the role of the same name in another account',
    (role, session) => assumedRole(onAccount(role, OTHER_ACCOUNT), session),
  ],
  [
    'an IAM user at path user/role/<name>',
    (role) => ({ type: 'IAMUser', arn: `arn:aws:iam::${ACCOUNT}:user/role/${nameOf(role)}`, accountId: ACCOUNT }),
  ],
  [
    'an IAM user at path user/:role/<name>',
    (role) => ({ type: 'IAMUser', arn: `arn:aws:iam::${ACCOUNT}:user/:role/${nameOf(role)}`, accountId: ACCOUNT }),
  ],
  ['invokedBy set to the role ARN', (role) => ({ type: 'AWSService', invokedBy: role })],
  [
    'the right sessionIssuer, a session of another role',
    (role, session) => ({
      ...assumedRole(role, session),
      arn: `arn:aws:sts::${ACCOUNT}:assumed-role/someone-else/${session}`,
    }),
  ],
  ['the right sessionIssuer, type IAMUser', (role, session) => assumedRole(role, session, { type: 'IAMUser' })],
  [
    'a session of the role name without sessionIssuer',
    (role, session) => ({
      type: 'AssumedRole',
      arn: `arn:aws:sts::${ACCOUNT}:assumed-role/${nameOf(role)}/${session}`,
      accountId: ACCOUNT,
    }),
  ],
  [
    'a sessionIssuer of the same name at another path',
    (role, session) => assumedRole(`arn:aws:iam::${ACCOUNT}:role/evil/${nameOf(role)}`, session),
  ],
  [
    'a sessionIssuer ARN with a zero-width joiner',
    (role, session) => ({ ...assumedRole(role, session), sessionContext: { sessionIssuer: { arn: `${role}\u200d` } } }),
  ],
  [
    'the right sessionIssuer, a session ARN of another account',
    (role, session) => ({
      ...assumedRole(role, session),
      arn: `arn:aws:sts::${OTHER_ACCOUNT}:assumed-role/${nameOf(role)}/${session}`,
    }),
  ],
  [
    'the right sessionIssuer, the role ARN as identity ARN',
    (role, session) => assumedRole(role, session, { arn: role }),
  ],
  [
    'a federated user of the role name',
    (role) => ({
      type: 'FederatedUser',
      arn: `arn:aws:sts::${ACCOUNT}:federated-user/${nameOf(role)}`,
      accountId: ACCOUNT,
    }),
  ],
];
const ANY_SPOOF = fc
  .tuple(fc.constantFrom(...SPOOFS), ROLES, SESSION_NAMES)
  .map(([[, identity], role, session]) => identity(role, session));

const withIdentity = (event: Event, identity: unknown): Event => ({
  ...event,
  detail: { ...detailOf(event), userIdentity: identity },
});

const AWS_OPERATION = /\b(?:DescribeKey|ListAliases|ListResourceTags|GetParameter|GetResources|Publish|PutParameter)\b/;

/** A call the watch must look into: not ignored, AWS asked (or a failure naming what AWS was asked). */
const lookedInto = (invocation: Invocation): string[] => {
  const error = invocation.error as { name?: string; message?: string; operation?: string } | undefined;
  if (invocation.failed) {
    if (error?.name === 'InvalidInputError') return [`refused: ${short(String(error.message))}`];
    if (!error?.operation && !AWS_OPERATION.test(String(error?.message))) {
      return [`rejected without naming an AWS operation: ${short(String(error?.message))}`];
    }
    return [];
  }
  const outcome = (invocation.result as { outcome?: string } | undefined)?.outcome;
  const problems: string[] = [];
  if (outcome === 'ignored') problems.push(`ignored: ${short(JSON.stringify(invocation.result))}`);
  if (invocation.requests.length === 0) problems.push('no AWS request');
  return problems;
};

/** Ignored as kms-rotation's own change or a failed call: `outcome: 'ignored'` and no AWS request. */
const ignored = (invocation: Invocation): string[] => {
  const problems: string[] = [];
  if (invocation.failed) problems.push(`rejected: ${short(String((invocation.error as Error)?.message))}`);
  const outcome = (invocation.result as { outcome?: string } | undefined)?.outcome;
  if (!invocation.failed && outcome !== 'ignored') problems.push(`outcome ${String(outcome)}, not ignored`);
  if (invocation.requests.length > 0) {
    problems.push(
      `${invocation.requests.length} AWS request(s): ${invocation.requests.map((r) => r.operation).join(', ')}`,
    );
  }
  return problems;
};

describe('onKeyActivity: generated hostile input', () => {
  const target = targetOf('onKeyActivity');
  const refused = (cases: fc.Arbitrary<[string, Mutation]>) =>
    fc.asyncProperty(cases, async ([file, change]) => {
      const event = applyMutation(ALL_SAMPLES[file], change);
      await expectRefused(target, event, change);
    });

  it(
    'refuses every structurally invalid event, or one for another account or Region, with a bounded InvalidInputError naming the field, asking AWS nothing',
    async () => {
      target.aws.answers = 'fail';
      await assertProperty(
        refused(
          fc.oneof(
            onSamples(CALLS, fc.oneof(fieldMutations(CALL_FIELDS), fc.constantFrom(...ELSEWHERE), wrongPayloads())),
            onSamples(SERVICE_EVENTS, fc.oneof(fieldMutations(SERVICE_FIELDS), fc.constantFrom(...ELSEWHERE))),
          ),
        ),
      );
    },
    TIMEOUT_MS,
  );

  it(
    'refuses a successful call whose key id, key ARN, alias or resource ARN field is not one of this account and Region, naming it',
    async () => {
      target.aws.answers = 'fail';
      await assertProperty(refused(onSamples(SUCCEEDED, BAD_KEY_REFS)), 100);
    },
    TIMEOUT_MS,
  );

  it(
    'refuses a successful call that names no key and no alias, naming detail.requestParameters',
    async () => {
      target.aws.answers = 'fail';
      await assertProperty(refused(onSamples(SUCCEEDED, NOTHING_NAMED)), 20);
    },
    TIMEOUT_MS,
  );

  it(
    'refuses a deletion or expiration event whose resources are not exactly the key ARN of detail.key-id',
    async () => {
      target.aws.answers = 'fail';
      await assertProperty(refused(onSamples(SERVICE_EVENTS, BAD_SERVICE_RESOURCES)), 60);
    },
    TIMEOUT_MS,
  );

  it(
    'ignores every failed call (errorCode), whoever made it and whatever it names, asking AWS nothing',
    async () => {
      target.aws.answers = 'fail';
      const errorCodes = fc.oneof(
        fc.constantFrom('AccessDenied', 'LimitExceededException', 'NotFoundException', 'KMSInvalidStateException'),
        fc.stringMatching(/^[A-Za-z.]{1,64}$/),
      );
      const identities = fc.oneof(
        ANY_SPOOF,
        fc.tuple(ROLES, SESSION_NAMES).map(([role, session]) => assumedRole(role, session)),
      );
      await assertProperty(
        fc.asyncProperty(
          fc.tuple(fileOf(CALLS), errorCodes, identities, fc.option(NAMED_BY_A_FAILED_CALL)),
          async ([file, errorCode, identity, named]) => {
            // KMS refused the call: what it names may be anything a caller typed, even another account's key.
            const event = withIdentity((named ? applyMutation(CALLS[file], named) : CALLS[file]) as Event, identity);
            (event.detail as Detail).errorCode = errorCode;
            expectNoProblems(ignored(await attack(target, event)));
          },
        ),
        100,
      );
    },
    TIMEOUT_MS,
  );

  it(
    "ignores, asking AWS nothing, a successful call made in a session of one of kms-rotation's own roles",
    async () => {
      target.aws.answers = 'fail';
      await assertProperty(
        fc.asyncProperty(fc.tuple(fileOf(SUCCEEDED), ROLES, SESSION_NAMES), async ([file, role, session]) => {
          const event = withIdentity(SUCCEEDED[file] as Event, assumedRole(role, session));
          expectNoProblems(ignored(await attack(target, event)));
        }),
        60,
      );
    },
    TIMEOUT_MS,
  );

  it.each(Object.entries(SERVICE_ROLES))(
    'ignores UpdateAlias made by the %s role in its Lambda session',
    async (fn, role) => {
      target.aws.answers = 'fail';
      const update = sample('cloudtrail-update-alias.json');
      const session = `kms-rotation-test-${fn}`;
      expectNoProblems(ignored(await attack(target, withIdentity(update, assumedRole(role, session)))));
    },
  );

  it.each(SPOOFS)(
    "looks into a call (never ignores it as kms-rotation's own) whose identity is %s",
    async (_name, identity) => {
      target.aws.answers = 'unknown-key';
      await assertProperty(
        fc.asyncProperty(fc.tuple(fileOf(SUCCEEDED), ROLES, SESSION_NAMES), async ([file, role, session]) => {
          const event = withIdentity(SUCCEEDED[file] as Event, identity(role, session));
          expectNoProblems(lookedInto(await attack(target, event)));
        }),
        20,
      );
    },
    TIMEOUT_MS,
  );

  it(
    'fails loudly naming the AWS read that found nothing, never as success, when a successful call names a key that does not exist',
    async () => {
      target.aws.answers = 'unknown-key';
      await assertProperty(
        fc.asyncProperty(fc.tuple(fileOf(SUCCEEDED), fc.uuid({ version: 4 })), async ([file, keyId]) => {
          const event = JSON.parse(JSON.stringify(SUCCEEDED[file]).replaceAll(KEY_ID, keyId));
          const invocation = await attack(target, event);
          failsNamingTheRead(invocation);
        }),
        30,
      );
    },
    TIMEOUT_MS,
  );
});
