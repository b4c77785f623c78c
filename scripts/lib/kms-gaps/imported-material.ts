import { keyIdOf } from '../../../src/domain/key-ref';
import type { ApiGap, GapCall } from '../aws-proxy';

/**
 * Imported key material, which moto lacks (no ImportKeyMaterial, no CurrentKeyMaterialId, no
 * ValidTo: docs/kms-facts.md#moto), filled in the proxy for keys a test seeds: moto holds the
 * key (created with `Origin: EXTERNAL`), this gap holds its materials, as KMS would report them
 * (docs/kms-facts.md#imported-key-material):
 *
 * - DescribeKey is amended with `CurrentKeyMaterialId`, `ExpirationModel` and `ValidTo` (the
 *   earliest expiry of the materials permanently associated with the key: current and earlier,
 *   never one waiting as `PENDING_ROTATION`);
 * - ListKeyRotations is answered from the materials: the rotated ones, or with
 *   `IncludeKeyMaterial: ALL_KEY_MATERIAL` every one, with its state, import state and expiry;
 * - RotateKeyOnDemand of a seeded key promotes its `PENDING_ROTATION` material to `CURRENT` (the
 *   rotation completes at once); without one it is refused (`UnsupportedOperationException`:
 *   which error KMS returns then is not documented; the service refuses before the call).
 *
 * Keys not seeded pass through untouched.
 */

export type SeededMaterialState = 'CURRENT' | 'NON_CURRENT' | 'PENDING_ROTATION';

export interface SeededMaterial {
  keyMaterialId: string;
  state: SeededMaterialState;
  /** When it expires; absent: it does not expire. */
  validTo?: Date;
  /** When a rotation made it current; absent for the first material and one still pending. */
  rotationDate?: Date;
  rotationType?: 'AUTOMATIC' | 'ON_DEMAND';
}

export interface ImportedMaterialGap extends ApiGap {
  /** The key's materials from now on (replacing any seeded before). */
  seed(keyId: string, materials: SeededMaterial[]): void;
  /** The key's materials as the gap holds them now. */
  materialsOf(keyId: string): SeededMaterial[];
}

const epochSeconds = (date: Date): number => date.getTime() / 1000;

const requestOf = (call: GapCall): { KeyId?: string; IncludeKeyMaterial?: string } => {
  try {
    return JSON.parse(call.body) as { KeyId?: string; IncludeKeyMaterial?: string };
  } catch {
    return {};
  }
};

const permanent = (material: SeededMaterial): boolean => material.state !== 'PENDING_ROTATION';

/** The imported-material gap; `now` dates the rotations it makes. */
export const importedMaterialGap = (now: () => Date = () => new Date()): ImportedMaterialGap => {
  const seeded = new Map<string, SeededMaterial[]>();

  const seededOf = (call: GapCall): { keyId: string; materials: SeededMaterial[] } | undefined => {
    const ref = requestOf(call).KeyId;
    if (!ref) return undefined;
    const keyId = keyIdOf(ref);
    const materials = seeded.get(keyId);
    return materials ? { keyId, materials } : undefined;
  };

  const entryOf = (keyId: string, material: SeededMaterial, withState: boolean) => ({
    KeyId: keyId,
    KeyMaterialId: material.keyMaterialId,
    ImportState: 'IMPORTED',
    ExpirationModel: material.validTo ? 'KEY_MATERIAL_EXPIRES' : 'KEY_MATERIAL_DOES_NOT_EXPIRE',
    ...(material.validTo ? { ValidTo: epochSeconds(material.validTo) } : {}),
    ...(withState ? { KeyMaterialState: material.state } : {}),
    ...(material.rotationDate ? { RotationDate: epochSeconds(material.rotationDate) } : {}),
    ...(material.rotationType ? { RotationType: material.rotationType } : {}),
  });

  return {
    seed(keyId, materials) {
      seeded.set(
        keyIdOf(keyId),
        materials.map((material) => ({ ...material })),
      );
    },

    materialsOf(keyId) {
      return (seeded.get(keyIdOf(keyId)) ?? []).map((material) => ({ ...material }));
    },

    answer(call) {
      const found = seededOf(call);
      if (!found) return undefined;
      const { keyId, materials } = found;
      if (call.api === 'ListKeyRotations') {
        const all = requestOf(call).IncludeKeyMaterial === 'ALL_KEY_MATERIAL';
        return {
          body: {
            Rotations: materials
              .filter((material) => all || material.rotationDate !== undefined)
              .map((material) => entryOf(keyId, material, all)),
            Truncated: false,
          },
        };
      }
      if (call.api === 'RotateKeyOnDemand') {
        const pending = materials.find((material) => material.state === 'PENDING_ROTATION');
        if (!pending) {
          return {
            status: 400,
            body: {
              __type: 'UnsupportedOperationException',
              message: `${keyId} has no imported key material waiting for rotation (PENDING_ROTATION)`,
            },
          };
        }
        for (const material of materials) if (material.state === 'CURRENT') material.state = 'NON_CURRENT';
        pending.state = 'CURRENT';
        pending.rotationDate = now();
        pending.rotationType = 'ON_DEMAND';
        return { body: { KeyId: keyId } };
      }
      return undefined;
    },

    amend(call, answer) {
      if (call.api !== 'DescribeKey' || answer.status !== 200) return undefined;
      const body = JSON.parse(answer.body) as { KeyMetadata?: Record<string, unknown> };
      const keyId = body.KeyMetadata?.KeyId;
      const materials = typeof keyId === 'string' ? seeded.get(keyId) : undefined;
      if (!body.KeyMetadata || !materials) return undefined;
      const current = materials.find((material) => material.state === 'CURRENT');
      const expiries = materials
        .filter(permanent)
        .map((material) => material.validTo)
        .filter((date): date is Date => date !== undefined);
      const earliest = expiries.reduce<Date | undefined>((min, date) => (!min || date < min ? date : min), undefined);
      return JSON.stringify({
        ...body,
        KeyMetadata: {
          ...body.KeyMetadata,
          ...(current ? { CurrentKeyMaterialId: current.keyMaterialId } : {}),
          ExpirationModel: earliest ? 'KEY_MATERIAL_EXPIRES' : 'KEY_MATERIAL_DOES_NOT_EXPIRE',
          ...(earliest ? { ValidTo: epochSeconds(earliest) } : {}),
        },
      });
    },
  };
};
