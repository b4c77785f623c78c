import { request } from 'node:http';

/**
 * One KMS call straight to moto, as a gap reads what moto holds (a key's state, its creation date).
 * moto checks no signature: the Authorization header only tells it the Region.
 */
export const motoKms = (
  target: string,
  region: string,
  api: string,
  body: object,
): Promise<{ status: number; body: Record<string, unknown> }> =>
  new Promise((resolve, reject) => {
    const url = new URL(target);
    const payload = JSON.stringify(body);
    const call = request(
      {
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: '/',
        headers: {
          'content-type': 'application/x-amz-json-1.1',
          'x-amz-target': `TrentService.${api}`,
          authorization: `AWS4-HMAC-SHA256 Credential=kms-gap/20260101/${region}/kms/aws4_request, SignedHeaders=host, Signature=0`,
          'content-length': Buffer.byteLength(payload),
        },
      },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('error', reject);
        answer.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: Record<string, unknown> = {};
          try {
            parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
          } catch {
            parsed = { message: text };
          }
          resolve({ status: answer.statusCode ?? 0, body: parsed });
        });
      },
    );
    call.on('error', reject);
    call.end(payload);
  });

/** A key id from a key id or key ARN; undefined for anything else (an alias). */
export const keyIdFrom = (ref: unknown): string | undefined => {
  if (typeof ref !== 'string') return undefined;
  const match = /(?:^|:key\/)([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/.exec(
    ref,
  );
  return match?.[1];
};

/** moto's symmetric ciphertext starts with the key id (36 bytes, moto/kms/utils.py): Decrypt without a KeyId names it there. */
export const keyIdInMotoCiphertext = (blob: unknown): string | undefined => {
  if (typeof blob !== 'string') return undefined;
  try {
    return keyIdFrom(Buffer.from(blob, 'base64').subarray(0, 36).toString('utf8'));
  } catch {
    return undefined;
  }
};

/**
 * The key a cryptographic request is about, as moto would resolve it: its `KeyId` (id, ARN,
 * alias name or alias ARN, resolved through moto's DescribeKey), else (Decrypt) the ciphertext's;
 * ReEncrypt's destination is `DestinationKeyId`.
 */
export const keyOfCryptoCall = async (
  target: string,
  region: string,
  body: string,
): Promise<{ keyId: string; arn?: string; keyState?: string; creationDate?: number } | undefined> => {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(body) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const ref = parsed.KeyId ?? parsed.SourceKeyId ?? keyIdInMotoCiphertext(parsed.CiphertextBlob);
  if (typeof ref !== 'string') return undefined;
  const described = await motoKms(target, region, 'DescribeKey', { KeyId: ref });
  const metadata = described.body.KeyMetadata as
    | { KeyId?: string; Arn?: string; KeyState?: string; CreationDate?: number }
    | undefined;
  if (described.status !== 200 || !metadata?.KeyId) return undefined;
  return { keyId: metadata.KeyId, arn: metadata.Arn, keyState: metadata.KeyState, creationDate: metadata.CreationDate };
};
