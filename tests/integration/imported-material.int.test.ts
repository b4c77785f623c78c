import { CreateAliasCommand, CreateKeyCommand, DecryptCommand, EncryptCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsProxy, startAwsProxy } from '../../scripts/lib/aws-proxy';
import type { Emulator } from '../../scripts/lib/emulator';
import { invokeBundled } from '../../scripts/lib/invoke';
import { type ImportedMaterialGap, importedMaterialGap } from '../../scripts/lib/kms-gaps/imported-material';
import type { EmulatorClients, subscribeQueueToTopic } from '../../scripts/lib/local-aws';
import type { DeployedStack } from '../../scripts/lib/stack';
import { deployTestStack } from './support/deployed-stack';

const DAY = 86_400_000;
const material = (digit: string) => digit.repeat(64);

/**
 * Imported key material and the rotation budget, against the deployed stack in moto. moto has no
 * imported material (no ImportKeyMaterial, no ValidTo, no CurrentKeyMaterialId: docs/kms-facts.md#moto),
 * so the functions reach moto through the proxy with the imported-material gap, which holds the
 * seeded keys' materials; moto holds the keys themselves (created `Origin: EXTERNAL`), their tags,
 * aliases and cryptography.
 *
 * The stage sets `auditMaxMaterialAgeDays` to 20: a key made today is then due for rotation in 20
 * days, inside the 30-day `rotationDueWarningDays`, as a year-old key would be in a real account.
 */
describe('Imported key material and rotation budget against the local AWS emulator (through the imported-material gap)', () => {
  const region = 'us-east-1';
  let emulator: Emulator;
  let stack: DeployedStack;
  let clients: EmulatorClients;
  let inbox: Awaited<ReturnType<typeof subscribeQueueToTopic>>;
  let proxy: AwsProxy;
  let gap: ImportedMaterialGap;

  beforeAll(async () => {
    ({ emulator, stack, clients, inbox } = await deployTestStack('itimport', {
      region,
      params: { auditMaxMaterialAgeDays: '20', importExpiryWarningDays: '30', rotationDueWarningDays: '30' },
    }));
    gap = importedMaterialGap();
    proxy = await startAwsProxy({ target: emulator.endpoint, gaps: [gap] });
  }, 600_000);

  afterAll(async () => {
    await proxy?.stop();
    await emulator?.stop();
  });

  const invoke = (name: string, event: unknown) =>
    invokeBundled({
      endpoint: proxy.endpoint,
      region,
      fn: stack.functions[name] as DeployedStack['functions'][string],
      event,
    });

  /** A key made in moto, as an operator would: `EXTERNAL` for imported material; managed keys declare and get `alias`. */
  const createKey = async (opts: {
    origin?: 'EXTERNAL';
    keySpec?: 'RSA_2048';
    managed?: boolean;
    alias?: string;
  }): Promise<string> => {
    const tags: Record<string, string> = opts.managed
      ? { 'kms-rotation:managed': 'true', ...(opts.alias ? { 'kms-rotation:aliases': opts.alias } : {}) }
      : {};
    const { KeyMetadata } = await clients.kms.send(
      new CreateKeyCommand({
        ...(opts.origin ? { Origin: opts.origin } : {}),
        ...(opts.keySpec ? { KeySpec: opts.keySpec, KeyUsage: 'SIGN_VERIFY' } : {}),
        Tags: Object.entries(tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })),
      }),
    );
    const keyId = KeyMetadata?.KeyId as string;
    if (opts.alias) await clients.kms.send(new CreateAliasCommand({ AliasName: opts.alias, TargetKeyId: keyId }));
    return keyId;
  };

  it('audit: notifies imported material expiring (CRITICAL within 7 days, WARNING within 30) and a due alias-swap key, and reports each key budget and next rotation', async () => {
    const now = Date.now();
    const expiring = await createKey({ origin: 'EXTERNAL' });
    gap.seed(expiring, [{ keyMaterialId: material('1'), state: 'CURRENT', validTo: new Date(now + 5 * DAY) }]);
    const warned = await createKey({ origin: 'EXTERNAL' });
    gap.seed(warned, [{ keyMaterialId: material('2'), state: 'CURRENT', validTo: new Date(now + 20 * DAY) }]);
    const forever = await createKey({ origin: 'EXTERNAL' });
    gap.seed(forever, [{ keyMaterialId: material('3'), state: 'CURRENT' }]);
    const later = await createKey({ origin: 'EXTERNAL' });
    gap.seed(later, [{ keyMaterialId: material('4'), state: 'CURRENT', validTo: new Date(now + 60 * DAY) }]);
    const signing = await createKey({ keySpec: 'RSA_2048', managed: true, alias: 'alias/app/it-signing' });
    await inbox.drain();

    const stackKey = stack.outputs.KeyId as string;
    const outcome = await invoke('audit', { keyIds: [expiring, warned, forever, later, signing, stackKey] });

    expect(outcome.ok, JSON.stringify(outcome.ok ? '' : outcome.error)).toBe(true);
    const report = (outcome as { result: Record<string, unknown> }).result as {
      schedules: { keyId: string; keyClass: string; onDemand?: object; next: { basis: string; date?: string } }[];
      totals: { keyNotifications?: Record<string, number> };
    };
    const notified = (await inbox.drain()).map((item) => ({
      type: item.attributes.type,
      severity: item.attributes.severity,
      keyId: item.body.keyId,
      details: item.body.details as Record<string, unknown>,
    }));
    const perKey = notified.filter((item) => item.type !== 'AuditCompleted');
    expect(perKey.map(({ type, severity, keyId }) => ({ type, severity, keyId }))).toEqual(
      expect.arrayContaining([
        { type: 'ImportedMaterialExpiring', severity: 'CRITICAL', keyId: expiring },
        { type: 'ImportedMaterialExpiring', severity: 'WARNING', keyId: warned },
        { type: 'RotationDue', severity: 'INFO', keyId: signing },
      ]),
    );
    expect(perKey).toHaveLength(3);
    expect(perKey.find((item) => item.keyId === expiring)?.details).toMatchObject({
      daysLeft: 4,
      expired: false,
      expirationModel: 'KEY_MATERIAL_EXPIRES',
      currentKeyMaterialId: material('1'),
    });
    expect(perKey.find((item) => item.keyId === signing)?.details).toMatchObject({
      keyClass: 'alias-swap',
      daysLeft: 19,
      overdue: false,
      maxMaterialAgeDays: 20,
    });
    expect(notified.filter((item) => item.type === 'AuditCompleted')).toHaveLength(1);
    expect(report.totals.keyNotifications).toEqual({ ImportedMaterialExpiring: 2, RotationDue: 1 });
    const byKey = new Map(report.schedules.map((schedule) => [schedule.keyId, schedule]));
    for (const keyId of [expiring, warned, forever, later]) {
      expect(byKey.get(keyId)).toMatchObject({
        keyClass: 'on-demand-only',
        onDemand: { used: 0, left: 25, quota: 25 },
        next: { basis: 'maximum-material-age' },
      });
    }
    expect(byKey.get(signing)).toMatchObject({ keyClass: 'alias-swap', next: { basis: 'maximum-material-age' } });
    expect(byKey.get(signing)?.onDemand).toBeUndefined();
    // The stack's key rotates by itself; moto reports no NextRotationDate (docs/kms-facts.md#moto), and the report says so.
    expect(byKey.get(stackKey)).toMatchObject({
      keyClass: 'auto-rotatable',
      onDemand: { used: 0, left: 25, quota: 25 },
      next: { basis: 'none', reason: 'KMS reported no next rotation date' },
    });
    // Through the gap, never from moto: the audit read the materials' expiry with DescribeKey alone.
    expect(
      proxy.calls().filter((call) => call.api === 'DescribeKey' && call.keyId === expiring).length,
    ).toBeGreaterThan(0);
  });

  it('rotate: rotates an imported key whose new material waits as PENDING_ROTATION, and reports the current material id and import state', async () => {
    const alias = 'alias/app/it-imported';
    const keyId = await createKey({ origin: 'EXTERNAL', managed: true, alias });
    const validTo = new Date(Date.now() + 200 * DAY);
    gap.seed(keyId, [
      { keyMaterialId: material('a'), state: 'CURRENT', validTo },
      { keyMaterialId: material('b'), state: 'PENDING_ROTATION', validTo },
    ]);
    // Data encrypted before the rotation, as an application would.
    const { CiphertextBlob } = await clients.kms.send(
      new EncryptCommand({ KeyId: alias, Plaintext: new TextEncoder().encode('before the rotation') }),
    );
    await inbox.drain();

    const outcome = await invoke('rotate', { key: alias });

    expect(outcome.ok, JSON.stringify(outcome.ok ? '' : outcome.error)).toBe(true);
    const report = (outcome as { result: Record<string, unknown> }).result;
    expect(report).toMatchObject({
      outcome: 'completed',
      strategy: 'on-demand',
      keyId,
      keyMaterial: {
        current: {
          keyMaterialId: material('b'),
          keyMaterialState: 'CURRENT',
          importState: 'IMPORTED',
          expirationModel: 'KEY_MATERIAL_EXPIRES',
          validTo: validTo.toISOString(),
        },
        pendingRotation: [],
      },
    });
    expect(report.summary).toContain(`current material ${material('b')}, IMPORTED`);
    expect(gap.materialsOf(keyId).map((item) => [item.keyMaterialId, item.state, item.rotationType])).toEqual([
      [material('a'), 'NON_CURRENT', undefined],
      [material('b'), 'CURRENT', 'ON_DEMAND'],
    ]);
    const [notification] = await inbox.drain();
    expect(notification?.attributes).toEqual({ type: 'RotationCompleted', severity: 'INFO' });
    expect((notification?.body.details as { keyMaterial?: unknown } | undefined)?.keyMaterial).toEqual(
      report.keyMaterial,
    );
    const { Plaintext } = await clients.kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob }));
    expect(new TextDecoder().decode(Plaintext)).toBe('before the rotation');
  });

  it('rotate: refuses an imported key with no material waiting as PENDING_ROTATION, before any change', async () => {
    const alias = 'alias/app/it-imported-none';
    const keyId = await createKey({ origin: 'EXTERNAL', managed: true, alias });
    gap.seed(keyId, [{ keyMaterialId: material('c'), state: 'CURRENT' }]);
    await inbox.drain();
    proxy.reset();

    const outcome = await invoke('rotate', { key: alias });

    expect(outcome.ok).toBe(false);
    const error = (outcome as { error: { name: string; message: string } }).error;
    expect(error.name).toBe('PreconditionFailedError');
    expect(error.message).toBe(
      `${keyId} has imported key material and none is waiting for rotation: import new key material (state PENDING_ROTATION) first`,
    );
    expect(proxy.calls().filter((call) => call.api === 'RotateKeyOnDemand')).toEqual([]);
    expect(gap.materialsOf(keyId)).toEqual([{ keyMaterialId: material('c'), state: 'CURRENT' }]);
    expect(await inbox.drain()).toEqual([]);
  });
});
