import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeKeyCommand, KMSClient, ListKeyRotationsCommand, RotateKeyOnDemandCommand } from '@aws-sdk/client-kms';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AwsProxy, signedRegionOf, startAwsProxy } from '../../../scripts/lib/aws-proxy';
import { type KeyMaterialGap, keyMaterialGap, materialIdOf } from '../../../scripts/lib/kms-gaps/key-material';

const MRK = 'mrk-0123456789abcdef0123456789abcdef';
const RSA = '1234abcd-12ab-34cd-56ef-1234567890ab';
const arnIn = (region: string, keyId = MRK) => `arn:aws:kms:${region}:111122223333:key/${keyId}`;

/**
 * A stub of moto's KMS as it behaves: DescribeKey with no `CurrentKeyMaterialId`, a multi-Region
 * primary in us-east-1 with a replica in eu-west-1, an RSA key, and RotateKeyOnDemand that only
 * adds a history entry. Driven by real KMS clients through the proxy, one per Region.
 */
describe('Gap: keyMaterialGap, key material ids moto lacks', () => {
  let upstream: Server;
  let proxy: AwsProxy;
  let gap: KeyMaterialGap;
  let rotated: number;

  beforeEach(async () => {
    rotated = 0;
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const api = String(req.headers['x-amz-target']).split('.').pop();
        const region = signedRegionOf(req.headers) ?? 'us-east-1';
        const { KeyId } = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { KeyId: string };
        let body: object = {};
        if (api === 'DescribeKey' && KeyId === RSA) {
          body = { KeyMetadata: { KeyId: RSA, Arn: arnIn(region, RSA), KeySpec: 'RSA_2048', KeyState: 'Enabled' } };
        } else if (api === 'DescribeKey') {
          body = {
            KeyMetadata: {
              KeyId: MRK,
              Arn: arnIn(region),
              KeyState: 'Enabled',
              MultiRegion: true,
              MultiRegionConfiguration: { MultiRegionKeyType: region === 'us-east-1' ? 'PRIMARY' : 'REPLICA' },
            },
          };
        } else if (api === 'RotateKeyOnDemand') {
          rotated += 1;
          body = { KeyId: MRK };
        } else if (api === 'ListKeyRotations') {
          body = {
            Rotations: Array.from({ length: rotated }, (_, n) => ({
              KeyId: MRK,
              RotationDate: 1_780_000_000 + n,
              RotationType: 'ON_DEMAND',
            })),
            Truncated: false,
          };
        }
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    gap = keyMaterialGap();
    proxy = await startAwsProxy({
      target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      gaps: [gap],
    });
  });

  afterEach(async () => {
    await proxy.stop();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  const kmsIn = (region: string) =>
    new KMSClient({ endpoint: proxy.endpoint, region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const currentIn = async (region: string, keyId = MRK) =>
    (await kmsIn(region).send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.CurrentKeyMaterialId;

  it('reports one current material for the primary and its replicas, a new one after each on-demand rotation', async () => {
    const first = await currentIn('us-east-1');
    expect(first).toBe(materialIdOf(MRK, 0));
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(await currentIn('eu-west-1')).toBe(first);

    await kmsIn('us-east-1').send(new RotateKeyOnDemandCommand({ KeyId: MRK }));

    expect(await currentIn('us-east-1')).toBe(materialIdOf(MRK, 1));
    expect(await currentIn('eu-west-1')).toBe(materialIdOf(MRK, 1));
    expect(gap.rotationsOf(MRK)).toBe(1);
  });

  it('keeps a held-back replica on its material while the primary rotates, until the test lets it catch up', async () => {
    gap.holdBack(MRK, 'eu-west-1');
    await kmsIn('us-east-1').send(new RotateKeyOnDemandCommand({ KeyId: MRK }));
    await kmsIn('us-east-1').send(new RotateKeyOnDemandCommand({ KeyId: MRK }));

    expect(await currentIn('us-east-1')).toBe(materialIdOf(MRK, 2));
    expect(await currentIn('eu-west-1')).toBe(materialIdOf(MRK, 0));
    expect(gap.currentIn(MRK, 'eu-west-1')).toBe(materialIdOf(MRK, 0));

    gap.catchUp(MRK, 'eu-west-1');
    expect(await currentIn('eu-west-1')).toBe(materialIdOf(MRK, 2));
  });

  it('names each rotation in the history by the material it made, oldest first, the current one last', async () => {
    await kmsIn('us-east-1').send(new RotateKeyOnDemandCommand({ KeyId: MRK }));
    await kmsIn('us-east-1').send(new RotateKeyOnDemandCommand({ KeyId: MRK }));

    const { Rotations = [] } = await kmsIn('us-east-1').send(new ListKeyRotationsCommand({ KeyId: MRK }));

    expect(Rotations.map((entry) => entry.KeyMaterialId)).toEqual([materialIdOf(MRK, 1), materialIdOf(MRK, 2)]);
    expect(Rotations.at(-1)?.KeyMaterialId).toBe(await currentIn('us-east-1'));
  });

  it('gives rotations made around the proxy (moto lists them) their ids too, and DescribeKey follows', async () => {
    rotated = 2;
    const { Rotations = [] } = await kmsIn('us-east-1').send(
      new ListKeyRotationsCommand({ KeyId: arnIn('us-east-1') }),
    );
    expect(Rotations.map((entry) => entry.KeyMaterialId)).toEqual([materialIdOf(MRK, 1), materialIdOf(MRK, 2)]);
    expect(await currentIn('us-east-1')).toBe(materialIdOf(MRK, 2));
  });

  it('reports no material for keys AWS reports none for (asymmetric), as AWS does', async () => {
    expect(await currentIn('us-east-1', RSA)).toBeUndefined();
  });
});
