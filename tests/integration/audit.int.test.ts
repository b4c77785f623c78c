import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyRotationCommand,
  GetKeyRotationStatusCommand,
  type KeySpec,
  type KeyUsageType,
  ListAliasesCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  type OriginType,
  PutKeyPolicyCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../../scripts/lib/emulator';
import { invokeBundled } from '../../scripts/lib/invoke';
import type { EmulatorClients, subscribeQueueToTopic } from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import { keyIdOf } from '../../src/domain/key-ref';
import { deployTestStack, type TestStack } from './support/deployed-stack';
import { rootPolicyWith, WILDCARD_POLICY } from './support/key-policies';
import { emulatorSecurityHub, stateOf } from './support/security-hub';

/** One kind of seeded key, and the findings an auditor would expect of it, written down here, not computed by the audit. */
interface Seed {
  name: string;
  count: number;
  keySpec?: KeySpec;
  keyUsage?: KeyUsageType;
  origin?: OriginType;
  managed?: boolean;
  rotation?: boolean;
  /** Alias: `own` points at the key; `declared-missing` declared but absent; `declared-elsewhere` declared, pointing at another key. */
  alias?: 'own' | 'declared-missing' | 'declared-elsewhere';
  state?: 'Disabled' | 'PendingDeletion';
  wildcardPolicy?: boolean;
  expected: string[];
  expectedClass: string;
}

const SEEDS: Seed[] = [
  { name: 'plain-rotating', count: 40, rotation: true, expected: [], expectedClass: 'auto-rotatable' },
  {
    name: 'plain-not-rotating',
    count: 30,
    rotation: false,
    expected: ['rotation-enabled'],
    expectedClass: 'auto-rotatable',
  },
  {
    name: 'rsa-signing',
    count: 30,
    keySpec: 'RSA_2048',
    keyUsage: 'SIGN_VERIFY',
    expected: [],
    expectedClass: 'alias-swap',
  },
  {
    name: 'hmac',
    count: 20,
    keySpec: 'HMAC_256',
    keyUsage: 'GENERATE_VERIFY_MAC',
    expected: [],
    expectedClass: 'alias-swap',
  },
  { name: 'imported', count: 5, origin: 'EXTERNAL', expected: [], expectedClass: 'on-demand-only' },
  {
    name: 'managed-ok',
    count: 20,
    managed: true,
    rotation: true,
    alias: 'own',
    expected: [],
    expectedClass: 'auto-rotatable',
  },
  {
    name: 'managed-not-rotating',
    count: 10,
    managed: true,
    rotation: false,
    alias: 'own',
    expected: ['rotation-enabled'],
    expectedClass: 'auto-rotatable',
  },
  {
    name: 'managed-alias-missing',
    count: 10,
    managed: true,
    rotation: true,
    alias: 'declared-missing',
    expected: ['declared-alias'],
    expectedClass: 'auto-rotatable',
  },
  {
    name: 'managed-alias-elsewhere',
    count: 5,
    managed: true,
    keySpec: 'ECC_NIST_P256',
    keyUsage: 'SIGN_VERIFY',
    alias: 'declared-elsewhere',
    expected: ['declared-alias'],
    expectedClass: 'alias-swap',
  },
  {
    name: 'managed-wildcard',
    count: 10,
    managed: true,
    rotation: true,
    alias: 'own',
    wildcardPolicy: true,
    expected: ['policy-wildcard-principal'],
    expectedClass: 'auto-rotatable',
  },
  {
    name: 'disabled-in-use',
    count: 10,
    rotation: true,
    alias: 'own',
    state: 'Disabled',
    expected: ['alias-to-unusable-key'],
    expectedClass: 'inactive',
  },
  {
    name: 'deleting-in-use',
    count: 10,
    rotation: true,
    alias: 'own',
    state: 'PendingDeletion',
    expected: ['alias-to-unusable-key'],
    expectedClass: 'inactive',
  },
  { name: 'disabled-unused', count: 10, state: 'Disabled', expected: [], expectedClass: 'inactive' },
];

/** A key policy that denies everyone DescribeKey: the one key-policy check moto makes (docs/kms-facts.md#moto). */
const DENY_DESCRIBE_POLICY = rootPolicyWith({
  Sid: 'NoDescribe',
  Effect: 'Deny',
  Principal: { AWS: '*' },
  Action: 'kms:DescribeKey',
  Resource: '*',
});

/**
 * The fleet audit against a few hundred keys of mixed kinds, states, aliases and tags in
 * moto server. Expected findings come from the seed table above, never from the audit code.
 */
describe('Function: audit against the local AWS emulator', () => {
  const region = 'us-east-1';
  let emulator: Emulator;
  let stack: DeployedStack;
  let clients: EmulatorClients;
  let inbox: Awaited<ReturnType<typeof subscribeQueueToTopic>>;
  const expected = new Map<string, string[]>();
  const expectedClasses = new Map<string, number>();
  const missingKeyId = '0badc0de-0000-4000-8000-000000000000';

  beforeAll(async () => {
    ({ emulator, stack, clients, inbox } = await deployTestStack('itaudit'));

    // The stack's own keys: the managed one (rotating, alias in place) and the topic's (rotating,
    // not managed) -> compliant.
    expected.set(stack.outputs.KeyId as string, []);
    expected.set(keyIdOf(stack.outputs.NotificationKeyArn as string), []);
    expectedClasses.set('auto-rotatable', 2);
    const elsewhere = stack.outputs.KeyId as string;
    for (const seed of SEEDS) {
      for (let index = 0; index < seed.count; index += 1) {
        const alias = `alias/audit/${seed.name}/${index}`;
        const tags = seed.managed
          ? [
              { TagKey: 'kms-rotation:managed', TagValue: 'true' },
              { TagKey: 'kms-rotation:aliases', TagValue: alias },
            ]
          : [{ TagKey: 'team', TagValue: seed.name }];
        const { KeyMetadata } = await clients.kms.send(
          new CreateKeyCommand({ KeySpec: seed.keySpec, KeyUsage: seed.keyUsage, Origin: seed.origin, Tags: tags }),
        );
        const keyId = KeyMetadata?.KeyId as string;
        if (seed.rotation) await clients.kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
        if (seed.alias === 'own')
          await clients.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
        if (seed.alias === 'declared-elsewhere') {
          await clients.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: elsewhere }));
        }
        if (seed.wildcardPolicy) {
          await clients.kms.send(
            new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: WILDCARD_POLICY }),
          );
        }
        if (seed.state === 'Disabled') await clients.kms.send(new DisableKeyCommand({ KeyId: keyId }));
        if (seed.state === 'PendingDeletion') {
          await clients.kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
        }
        expected.set(keyId, seed.expected);
        expectedClasses.set(seed.expectedClass, (expectedClasses.get(seed.expectedClass) ?? 0) + 1);
      }
    }
    // A key the service has a record of, which no longer exists.
    await clients.ssm.send(
      new PutParameterCommand({
        Name: `/kms-rotation/itaudit/keys/${missingKeyId}`,
        Value: '{"managed":true}',
        Type: 'String',
      }),
    );
    expected.set(missingKeyId, ['declared-key-missing']);
  }, 600_000);

  afterAll(async () => {
    await emulator?.stop();
  });

  const runAudit = async (payload: unknown) => {
    const outcome = await invokeBundled({
      endpoint: emulator.endpoint,
      region,
      fn: stack.functions.audit as DeployedStack['functions'][string],
      event: payload,
    });
    expect(outcome.ok, JSON.stringify(outcome.ok ? '' : outcome.error)).toBe(true);
    return { report: (outcome as { result: AuditReport }).result, emf: outcome.emf };
  };

  interface AuditReport {
    complete: boolean;
    totals: { keysAudited: number; byClass: Record<string, number>; nonCompliantKeys: number; remediated: number };
    findings: {
      keyId: string;
      rule: string;
      controls: string[];
      remediated?: boolean;
      evidence: Record<string, unknown>;
    }[];
    suppressed: { keyId: string; rule: string; exception: Record<string, string> }[];
    expiredExceptions: Record<string, unknown>[];
    findingsOmitted: number;
    remediations: { keyId: string }[];
    keysNotFound: string[];
    summary: string;
  }

  /** Keys (state, rotation, tags) and aliases: everything remediation could touch. */
  const inventory = async () => {
    const { Keys = [] } = await clients.kms.send(new ListKeysCommand({}));
    const keys = await Promise.all(
      Keys.map(async ({ KeyId }) => {
        const [{ KeyMetadata }, { KeyRotationEnabled }, { Tags = [] }] = await Promise.all([
          clients.kms.send(new DescribeKeyCommand({ KeyId })),
          clients.kms.send(new GetKeyRotationStatusCommand({ KeyId })),
          clients.kms.send(new ListResourceTagsCommand({ KeyId })),
        ]);
        return [KeyId as string, `${KeyMetadata?.KeyState}:${KeyRotationEnabled}:${JSON.stringify(Tags)}`] as const;
      }),
    );
    const { Aliases = [] } = await clients.kms.send(new ListAliasesCommand({}));
    return {
      keys: Object.fromEntries(keys),
      aliases: Aliases.map((alias) => `${alias.AliasName}->${alias.TargetKeyId}`).sort(),
    };
  };

  it('finds exactly the non-compliance the seed table predicts, mapped to controls, without false positives', async () => {
    const { report, emf } = await runAudit({});

    expect(report.complete).toBe(true);
    expect(report.findingsOmitted).toBe(0);
    const actual = report.findings.map((finding) => `${finding.keyId}:${finding.rule}`).sort();
    const predicted = [...expected.entries()]
      .flatMap(([keyId, rules]) => rules.map((rule) => `${keyId}:${rule}`))
      .sort();
    expect(actual).toEqual(predicted);
    expect(report.totals.keysAudited).toBe(expected.size - 1);
    expect(report.totals.byClass).toEqual(Object.fromEntries(expectedClasses));
    expect(report.totals.nonCompliantKeys).toBe([...expected.values()].filter((rules) => rules.length > 0).length);
    expect(report.findings.find((finding) => finding.rule === 'rotation-enabled')?.controls).toEqual(
      expect.arrayContaining([expect.stringContaining('Security Hub KMS.4')]),
    );

    const [notification] = await inbox.drain();
    expect(notification?.attributes).toEqual({ type: 'AuditCompleted', severity: 'CRITICAL' });
    expect(notification?.body.summary).toContain(`Audited ${expected.size - 1} keys`);
    expect(emf).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ KeysAudited: expected.size - 1, NonCompliantKeys: report.totals.nonCompliantKeys }),
        expect.objectContaining({ rule: 'rotation-enabled', NonCompliantKeys: 40 }),
      ]),
    );
  });

  it('in remediate mode enables rotation on managed keys only, and changes nothing else', async () => {
    const before = await inventory();

    const { report } = await runAudit({ remediate: true });

    const after = await inventory();
    const managedNotRotating = report.remediations.map((remediation) => remediation.keyId).sort();
    const seededManagedNotRotating = [...expected.entries()]
      .filter(
        ([keyId, rules]) => rules.includes('rotation-enabled') && before.keys[keyId]?.includes('kms-rotation:managed'),
      )
      .map(([keyId]) => keyId)
      .sort();
    expect(managedNotRotating).toEqual(seededManagedNotRotating);
    expect(managedNotRotating).toHaveLength(10);
    for (const [keyId, state] of Object.entries(before.keys)) {
      const changed = managedNotRotating.includes(keyId);
      expect(after.keys[keyId], keyId).toBe(changed ? state.replace(':false:', ':true:') : state);
    }
    expect(after.aliases).toEqual(before.aliases);
    expect(report.totals.remediated).toBe(10);
    await inbox.drain();
  });

  it('audits keys asked for by id once each, and names the ones that do not exist instead of dropping them', async () => {
    const keyId = stack.outputs.KeyId as string;

    const { report } = await runAudit({ keyIds: [keyId, missingKeyId, keyId] });

    expect(report.totals.keysAudited).toBe(1);
    expect(report.keysNotFound).toEqual([missingKeyId]);
    expect(report.summary).toContain(`asked for but not found (${missingKeyId})`);
    const [notification] = await inbox.drain();
    expect(notification?.attributes).toEqual({ type: 'AuditCompleted', severity: 'WARNING' });
  });

  it('suppresses an excepted finding without remediating it, reopens and remediates an expired one, and reports a malformed exception', async () => {
    // Prepare: dates relative to today (moto keeps real time), tags as ops would write them
    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    const seed = async (tags: Record<string, string>) => {
      const { KeyMetadata } = await clients.kms.send(
        new CreateKeyCommand({ Tags: Object.entries(tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })) }),
      );
      return KeyMetadata?.KeyId as string;
    };
    const rotationOf = async (KeyId: string) =>
      (await clients.kms.send(new GetKeyRotationStatusCommand({ KeyId }))).KeyRotationEnabled;
    const valid = `until=${day(30)} owner=team-x ticket=SEC-123 reason=legacy-client`;
    const lapsed = `until=${day(-10)} owner=team-y ticket=SEC-9`;
    const excepted = await seed({ 'kms-rotation:managed': 'true', 'kms-rotation:exception:rotation-enabled': valid });
    const expired = await seed({ 'kms-rotation:managed': 'true', 'kms-rotation:exception:rotation-enabled': lapsed });
    const malformed = await seed({ 'kms-rotation:exception:rotation-enabled': 'until=2099-01-01 owner=team-z' });

    // Act
    const { report, emf } = await runAudit({ remediate: true, keyIds: [excepted, expired, malformed] });

    // Assess: the report
    expect(report.totals).toMatchObject({
      keysAudited: 3,
      nonCompliantKeys: 1,
      nonCompliantByRule: { 'rotation-enabled': 1, 'exception-malformed': 1 },
      suppressed: 1,
      suppressedByRule: { 'rotation-enabled': 1 },
      expiredExceptions: 1,
      remediated: 1,
    });
    expect(report.suppressed).toEqual([
      expect.objectContaining({
        keyId: excepted,
        rule: 'rotation-enabled',
        exception: {
          rule: 'rotation-enabled',
          until: day(30),
          owner: 'team-x',
          ticket: 'SEC-123',
          reason: 'legacy-client',
        },
      }),
    ]);
    const expiredException = { rule: 'rotation-enabled', until: day(-10), owner: 'team-y', ticket: 'SEC-9' };
    expect(
      report.findings.map(({ keyId, rule, remediated }) => `${keyId}:${rule}:${remediated ?? false}`).sort(),
    ).toEqual(
      [
        `${expired}:rotation-enabled:true`,
        `${malformed}:exception-malformed:false`,
        `${malformed}:rotation-enabled:false`,
      ].sort(),
    );
    expect(report.findings.find((finding) => finding.keyId === expired)?.evidence).toEqual({
      rotationEnabled: false,
      expiredException,
    });
    expect(report.findings.find((finding) => finding.rule === 'exception-malformed')?.evidence).toMatchObject({
      problem: expect.stringContaining('until=2099-01-01 is more than 366 days after the audit'),
    });
    expect(report.expiredExceptions).toEqual([{ ...expiredException, keyId: expired, reopened: true }]);
    expect(report.summary).toContain('1 finding suppressed by exception (rotation-enabled 1); 1 exception expired');
    // Remediation left the excepted key alone and put rotation back on the one whose exception lapsed.
    expect(await rotationOf(excepted)).toBe(false);
    expect(await rotationOf(expired)).toBe(true);
    expect(await rotationOf(malformed)).toBe(false);

    // Assess: the notification and the metrics
    const [notification] = await inbox.drain();
    expect(notification?.attributes).toEqual({ type: 'AuditCompleted', severity: 'WARNING' });
    expect(notification?.body.details).toMatchObject({
      totals: { suppressed: 1, suppressedByRule: { 'rotation-enabled': 1 }, expiredExceptions: 1 },
      expiredExceptions: [{ ...expiredException, keyId: expired, reopened: true }],
    });
    expect(emf).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ SuppressedFindings: 1 }),
        expect.objectContaining({ rule: 'rotation-enabled', SuppressedFindings: 1 }),
      ]),
    );
  });

  // Last: moto then answers the test's own DescribeKey of that key with AccessDenied too.
  it('reports a key whose policy denies it DescribeKey as unreadable, and still audits the rest', async () => {
    const keyId = stack.outputs.KeyId as string;
    const { KeyMetadata } = await clients.kms.send(
      new CreateKeyCommand({ Tags: [{ TagKey: 'team', TagValue: 'locked-down' }] }),
    );
    const locked = KeyMetadata?.KeyId as string;
    await clients.kms.send(new CreateAliasCommand({ AliasName: 'alias/audit/locked', TargetKeyId: locked }));
    await clients.kms.send(
      new PutKeyPolicyCommand({ KeyId: locked, PolicyName: 'default', Policy: DENY_DESCRIBE_POLICY }),
    );

    const { report } = await runAudit({ keyIds: [locked, keyId] });

    expect(report.complete).toBe(true);
    expect(report.totals.keysAudited).toBe(2);
    expect(report.totals.byClass).toEqual({ 'auto-rotatable': 1, unreadable: 1 });
    expect(report.findings).toEqual([
      expect.objectContaining({
        keyId: locked,
        rule: 'key-unreadable',
        severity: 'WARNING',
        aliases: ['alias/audit/locked'],
        summary: expect.stringContaining('DescribeKey was denied'),
      }),
    ]);
    const [notification] = await inbox.drain();
    expect(notification?.attributes).toEqual({ type: 'AuditCompleted', severity: 'WARNING' });
  });

  it('refuses a malformed request without touching anything', async () => {
    const outcome = await invokeBundled({
      endpoint: emulator.endpoint,
      region,
      fn: stack.functions.audit as DeployedStack['functions'][string],
      event: { remediate: 'yes', keyIds: ['../../etc'] },
    });

    expect(outcome).toMatchObject({ ok: false, error: { name: 'InvalidInputError' } });
    expect(await inbox.drain()).toEqual([]);
  });
});

/**
 * With securityHubFindings on, the audit's findings in the emulator's Security Hub: one per key
 * and rule, updated by each audit, resolved and archived once the key is compliant again.
 */
describe("Function: audit with securityHubFindings on, against the emulator's Security Hub", () => {
  const region = 'us-east-1';
  let deployed: TestStack;
  let findingsOf: ReturnType<typeof emulatorSecurityHub>['findingsOf'];

  beforeAll(async () => {
    deployed = await deployTestStack('itaudsh', { region, params: { securityHubFindings: 'true' } });
    ({ findingsOf } = emulatorSecurityHub(deployed.emulator.endpoint, region));
  });

  afterAll(async () => {
    await deployed?.stop();
  });

  const runAudit = async () => {
    const outcome = await invokeBundled({
      endpoint: deployed.emulator.endpoint,
      region,
      fn: deployed.stack.functions.audit as DeployedStack['functions'][string],
      event: {},
    });
    expect(outcome.ok, JSON.stringify(outcome.ok ? '' : outcome.error)).toBe(true);
  };

  it('keeps one finding for a managed key with rotation off, updates it on the next audit, and resolves it once rotation is on', async () => {
    // Prepare: a managed key, its declared alias in place, automatic rotation off.
    const alias = 'alias/audit/security-hub/0';
    const created = await deployed.clients.kms.send(
      new CreateKeyCommand({
        Tags: [
          { TagKey: 'kms-rotation:managed', TagValue: 'true' },
          { TagKey: 'kms-rotation:aliases', TagValue: alias },
        ],
      }),
    );
    const keyId = created.KeyMetadata?.KeyId as string;
    const keyArn = created.KeyMetadata?.Arn as string;
    await deployed.clients.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));

    // Act 1
    await runAudit();

    // Assess 1: one ACTIVE finding of its key and rule, with the rule's controls.
    const [first, ...moreFirst] = await findingsOf(keyArn);
    expect(moreFirst).toEqual([]);
    expect(stateOf(first)).toEqual(['kms-rotation/rotation-enabled', 'ACTIVE', 'NEW', 'FAILED']);
    expect(first).toMatchObject({
      Id: `kms-rotation/${deployed.stack.outputs.KeyArn?.split(':')[4]}/${region}/${keyId}/rotation-enabled`,
      Severity: { Label: 'MEDIUM' },
      Compliance: { RelatedRequirements: expect.arrayContaining([expect.stringContaining('Security Hub KMS.4')]) },
      Resources: [{ Type: 'AwsKmsKey', Id: keyArn, Partition: 'aws', Region: region }],
    });

    // Act 2
    await runAudit();

    // Assess 2: still one, updated in place: same Id and CreatedAt, a later audit's id.
    const [second, ...moreSecond] = await findingsOf(keyArn);
    expect(moreSecond).toEqual([]);
    expect(stateOf(second)).toEqual(['kms-rotation/rotation-enabled', 'ACTIVE', 'NEW', 'FAILED']);
    expect(second?.Id).toBe(first?.Id);
    expect(second?.CreatedAt).toBe(first?.CreatedAt);
    expect(second?.ProductFields?.['kms-rotation/auditId']).not.toBe(first?.ProductFields?.['kms-rotation/auditId']);
    expect(Date.parse(second?.UpdatedAt as string)).toBeGreaterThanOrEqual(Date.parse(first?.UpdatedAt as string));

    // Act 3: the key is fixed.
    await deployed.clients.kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
    await runAudit();

    // Assess 3: the same finding, resolved and archived.
    const [third, ...moreThird] = await findingsOf(keyArn);
    expect(moreThird).toEqual([]);
    expect(third?.Id).toBe(first?.Id);
    expect(stateOf(third)).toEqual(['kms-rotation/rotation-enabled', 'ARCHIVED', 'RESOLVED', 'PASSED']);
  });
});
