import { createHash } from 'node:crypto';
import { keyIdOf } from '../../../src/domain/key-ref';
import type { ApiGap, GapCall } from '../aws-proxy';

/**
 * Key material ids, which moto lacks (docs/kms-facts.md#moto): it reports no `CurrentKeyMaterialId`
 * and changes no material on rotation. This gap keeps, per key id, the chain of its materials
 * (the first, then one more for each successful RotateKeyOnDemand seen through the proxy, or each
 * rotation moto lists that the gap had not seen), and per Region where each key of that id stands:
 * on the newest material, unless a test holds a Region back (a replica lagging behind its primary)
 * until it lets it catch up. It amends:
 *
 * - DescribeKey: `CurrentKeyMaterialId` of the key in the Region the call is signed for, for
 *   symmetric encryption keys with KMS material (the keys AWS reports it for);
 * - ListKeyRotations: each entry's `KeyMaterialId`, the n-th rotation's being the chain's n-th
 *   material after the first (moto lists them oldest first).
 *
 * Multi-Region keys share their key id (and their material) across Regions: that is the chain.
 */
export interface KeyMaterialGap extends ApiGap {
  /** The Region's key of this id stays on the material it has now, whatever the primary does. */
  holdBack(keyId: string, region: string): void;
  /** The Region's key of this id takes the newest material. */
  catchUp(keyId: string, region: string): void;
  /** The material id DescribeKey reports for the key of this id in the Region. */
  currentIn(keyId: string, region: string): string;
  /** How many rotations the gap has seen for the key id. */
  rotationsOf(keyId: string): number;
}

/** A 64-hex-digit id, as KMS's, distinct per key and position in the chain. */
export const materialIdOf = (keyId: string, index: number): string =>
  createHash('sha256').update(`kms-rotation-test-material:${keyId}:${index}`).digest('hex');

const parse = (text: string): Record<string, unknown> | undefined => {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
};

export const keyMaterialGap = (): KeyMaterialGap => {
  /** Key id -> rotations seen (the chain is the first material and one per rotation). */
  const rotations = new Map<string, number>();
  /** `<keyId> <region>` -> the chain index that Region is held at. */
  const held = new Map<string, number>();
  const heldKey = (keyId: string, region: string) => `${keyId} ${region}`;
  const latest = (keyId: string) => rotations.get(keyId) ?? 0;
  const indexIn = (keyId: string, region: string) => held.get(heldKey(keyId, region)) ?? latest(keyId);
  const requestKeyId = (call: GapCall): string | undefined => {
    const keyId = parse(call.body)?.KeyId;
    return typeof keyId === 'string' ? keyIdOf(keyId) : undefined;
  };

  return {
    holdBack(keyId, region) {
      held.set(heldKey(keyId, region), indexIn(keyId, region));
    },
    catchUp(keyId, region) {
      held.delete(heldKey(keyId, region));
    },
    currentIn(keyId, region) {
      return materialIdOf(keyId, indexIn(keyId, region));
    },
    rotationsOf(keyId) {
      return latest(keyId);
    },
    amend(call, answer) {
      if (answer.status !== undefined && answer.status !== 200) return undefined;
      if (call.api === 'RotateKeyOnDemand') {
        const keyId = requestKeyId(call);
        if (keyId) rotations.set(keyId, latest(keyId) + 1);
        return undefined;
      }
      const body = parse(answer.body);
      if (!body) return undefined;
      if (call.api === 'DescribeKey') {
        const metadata = body.KeyMetadata as Record<string, unknown> | undefined;
        const keyId = metadata?.KeyId;
        if (typeof keyId !== 'string' || !call.region) return undefined;
        const symmetric = (metadata?.KeySpec ?? 'SYMMETRIC_DEFAULT') === 'SYMMETRIC_DEFAULT';
        const kmsMaterial = (metadata?.Origin ?? 'AWS_KMS') === 'AWS_KMS';
        if (!symmetric || !kmsMaterial) return undefined;
        return JSON.stringify({
          ...body,
          KeyMetadata: { ...metadata, CurrentKeyMaterialId: materialIdOf(keyId, indexIn(keyId, call.region)) },
        });
      }
      if (call.api === 'ListKeyRotations') {
        const keyId = requestKeyId(call);
        const entries = body.Rotations;
        if (!keyId || !Array.isArray(entries)) return undefined;
        // Rotations made around the proxy (moto lists them) still get ids, in their order.
        if (entries.length > latest(keyId)) rotations.set(keyId, entries.length);
        const amended = entries.map((entry, index) => ({
          ...(entry as object),
          KeyMaterialId: materialIdOf(keyId, index + 1),
        }));
        return JSON.stringify({ ...body, Rotations: amended });
      }
      return undefined;
    },
  };
};
