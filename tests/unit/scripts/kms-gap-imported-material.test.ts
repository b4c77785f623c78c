import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KMSClient } from '@aws-sdk/client-kms';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AwsProxy, startAwsProxy } from '../../../scripts/lib/aws-proxy';
import { importedMaterialGap } from '../../../scripts/lib/kms-gaps/imported-material';
import { KmsKeyGateway } from '../../../src/adapters/kms-key-gateway';
import { PreconditionFailedError } from '../../../src/domain/errors';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const OTHER_ID = '9999abcd-12ab-34cd-56ef-1234567890ab';
const ARN = (keyId: string) => `arn:aws:kms:us-east-1:111122223333:key/${keyId}`;
const NOW = new Date('2026-11-22T00:00:00Z');
const DAY = 86_400_000;
const [M1, M2, M3] = ['1', '2', '3'].map((digit) => digit.repeat(64)) as [string, string, string];

/**
 * The imported-material gap in the proxy, in front of a stub moto that knows every key as an
 * EXTERNAL key (DescribeKey) and answers every other call with `{}`; read through the service's
 * own gateway, so that what the gap answers is read as the functions read it.
 */
describe('Gap: imported key material (scripts/lib/kms-gaps/imported-material.ts)', () => {
  let upstream: Server;
  let reached: string[];
  let proxy: AwsProxy | undefined;

  beforeEach(async () => {
    reached = [];
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const target = String(req.headers['x-amz-target']);
        reached.push(target.split('.').pop() as string);
        const { KeyId } = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { KeyId?: string };
        const keyId = KeyId?.split('/').pop() ?? KEY_ID;
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(
          target.endsWith('DescribeKey')
            ? JSON.stringify({
                KeyMetadata: { KeyId: keyId, Arn: ARN(keyId), KeyState: 'Enabled', Origin: 'EXTERNAL' },
              })
            : '{}',
        );
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  const gatewayThrough = async () => {
    const gap = importedMaterialGap(() => NOW);
    proxy = await startAwsProxy({
      target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      gaps: [gap],
    });
    const kms = new KMSClient({
      endpoint: proxy.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    return { gap, gateway: new KmsKeyGateway(kms), proxy };
  };

  it('amends DescribeKey with the current material, and ValidTo the earliest expiry of the permanent materials (not the pending one)', async () => {
    const { gap, gateway } = await gatewayThrough();
    gap.seed(KEY_ID, [
      { keyMaterialId: M1, state: 'NON_CURRENT', validTo: new Date(NOW.getTime() + 40 * DAY) },
      {
        keyMaterialId: M2,
        state: 'CURRENT',
        validTo: new Date(NOW.getTime() + 60 * DAY),
        rotationDate: new Date(NOW.getTime() - DAY),
        rotationType: 'ON_DEMAND',
      },
      { keyMaterialId: M3, state: 'PENDING_ROTATION', validTo: new Date(NOW.getTime() + 5 * DAY) },
    ]);

    const key = await gateway.describeKey(ARN(KEY_ID));

    expect(key).toMatchObject({
      keyId: KEY_ID,
      origin: 'EXTERNAL',
      currentKeyMaterialId: M2,
      expirationModel: 'KEY_MATERIAL_EXPIRES',
      validTo: new Date(NOW.getTime() + 40 * DAY),
    });
  });

  it('says KEY_MATERIAL_DOES_NOT_EXPIRE and no ValidTo when no permanent material expires, and leaves keys not seeded as moto has them', async () => {
    const { gap, gateway } = await gatewayThrough();
    gap.seed(KEY_ID, [{ keyMaterialId: M1, state: 'CURRENT' }]);

    const seeded = await gateway.describeKey(KEY_ID);
    const other = await gateway.describeKey(OTHER_ID);

    expect(seeded.expirationModel).toBe('KEY_MATERIAL_DOES_NOT_EXPIRE');
    expect(seeded.validTo).toBeUndefined();
    expect(other).toEqual({ keyId: OTHER_ID, arn: ARN(OTHER_ID), keyState: 'Enabled', origin: 'EXTERNAL' });
  });

  it('answers ListKeyRotations from the materials: rotations only by default, every material with IncludeKeyMaterial', async () => {
    const { gap, gateway } = await gatewayThrough();
    const rotated = new Date(NOW.getTime() - DAY);
    const validTo = new Date(NOW.getTime() + 60 * DAY);
    gap.seed(KEY_ID, [
      { keyMaterialId: M1, state: 'NON_CURRENT' },
      { keyMaterialId: M2, state: 'CURRENT', validTo, rotationDate: rotated, rotationType: 'ON_DEMAND' },
      { keyMaterialId: M3, state: 'PENDING_ROTATION' },
    ]);

    const rotations = await gateway.listRotations(KEY_ID);
    const all = await gateway.listRotations(KEY_ID, { includeKeyMaterial: true });

    expect(rotations).toEqual([
      {
        keyMaterialId: M2,
        rotationDate: rotated,
        rotationType: 'ON_DEMAND',
        importState: 'IMPORTED',
        expirationModel: 'KEY_MATERIAL_EXPIRES',
        validTo,
      },
    ]);
    expect(all.map((record) => [record.keyMaterialId, record.keyMaterialState, record.importState])).toEqual([
      [M1, 'NON_CURRENT', 'IMPORTED'],
      [M2, 'CURRENT', 'IMPORTED'],
      [M3, 'PENDING_ROTATION', 'IMPORTED'],
    ]);
    expect(reached).toEqual([]);
  });

  it('rotates a seeded key on demand by promoting its PENDING_ROTATION material, and refuses one with none pending', async () => {
    const { gap, gateway, proxy } = await gatewayThrough();
    gap.seed(KEY_ID, [
      { keyMaterialId: M1, state: 'CURRENT' },
      { keyMaterialId: M2, state: 'PENDING_ROTATION' },
    ]);

    await gateway.rotateKeyOnDemand(KEY_ID);

    expect(gap.materialsOf(KEY_ID)).toEqual([
      { keyMaterialId: M1, state: 'NON_CURRENT' },
      { keyMaterialId: M2, state: 'CURRENT', rotationDate: NOW, rotationType: 'ON_DEMAND' },
    ]);
    expect((await gateway.describeKey(KEY_ID)).currentKeyMaterialId).toBe(M2);
    const again = gateway.rotateKeyOnDemand(KEY_ID);
    await expect(again).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(again).rejects.toMatchObject({ reason: 'wrong-key-type' });
    expect(
      proxy
        .calls()
        .filter((call) => call.api === 'RotateKeyOnDemand')
        .map((call) => [call.outcome, call.status]),
    ).toEqual([
      ['filled', 200],
      ['filled', 400],
    ]);
    expect(reached).toEqual(['DescribeKey']);
  });

  it('passes calls on keys not seeded through to moto', async () => {
    const { gateway } = await gatewayThrough();
    await gateway.listRotations(OTHER_ID);
    await gateway.rotateKeyOnDemand(OTHER_ID);
    expect(reached).toEqual(['ListKeyRotations', 'RotateKeyOnDemand']);
  });
});
