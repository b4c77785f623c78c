import type { KeyDescription, Notification, RotationRecord, ServiceLocation, Severity } from './model';
import { notificationOf } from './notification';

/**
 * Imported key material (`Origin: EXTERNAL`) that expires: KMS deletes it at its `ValidTo` and
 * the key becomes unusable until the same material is imported again
 * (docs/kms-facts.md#imported-key-material). The audit warns `warningDays` ahead, and calls it
 * CRITICAL within the last `CRITICAL_WITHIN_DAYS`.
 */

export const CRITICAL_WITHIN_DAYS = 7;
export const KEY_MATERIAL_EXPIRES = 'KEY_MATERIAL_EXPIRES';

const DAY_MS = 86_400_000;

export interface MaterialExpiry {
  validTo: Date;
  /** Whole days left (0 on the last day, and once expired). */
  daysLeft: number;
  expired: boolean;
  severity: Extract<Severity, 'WARNING' | 'CRITICAL'>;
}

/**
 * When the key's imported material expires, if that is `warningDays` or less away (or past):
 * CRITICAL at `CRITICAL_WITHIN_DAYS` or less, WARNING otherwise. Nothing for KMS material, for
 * material that does not expire, or for a key KMS reports no `ValidTo` of.
 */
export const importedMaterialExpiry = (
  key: KeyDescription,
  warningDays: number,
  now: Date,
): MaterialExpiry | undefined => {
  if (key.origin !== 'EXTERNAL' || key.expirationModel !== KEY_MATERIAL_EXPIRES || !key.validTo) return undefined;
  const leftMs = key.validTo.getTime() - now.getTime();
  if (leftMs > warningDays * DAY_MS) return undefined;
  return {
    validTo: key.validTo,
    daysLeft: Math.max(0, Math.floor(leftMs / DAY_MS)),
    expired: leftMs <= 0,
    severity: leftMs <= CRITICAL_WITHIN_DAYS * DAY_MS ? 'CRITICAL' : 'WARNING',
  };
};

/** `ImportedMaterialExpiring`: one key's expiring (or expired) imported material, and what to do. */
export const importedMaterialExpiring = (notice: {
  key: KeyDescription;
  aliases: readonly string[];
  expiry: MaterialExpiry;
  warningDays: number;
  where: ServiceLocation;
  at: Date;
  auditId: string;
}): Notification => {
  const { key, expiry } = notice;
  const when = expiry.validTo.toISOString();
  const summary = expiry.expired
    ? `imported key material of ${key.keyId} expired at ${when}: the key is unusable until the same material is imported again`
    : `imported key material of ${key.keyId} expires at ${when}, in ${expiry.daysLeft} day${expiry.daysLeft === 1 ? '' : 's'}: import it again with a later ValidTo, or import new material and rotate on demand`;
  return notificationOf({
    type: 'ImportedMaterialExpiring',
    severity: expiry.severity,
    about: { keyId: key.keyId, keyArn: key.arn, aliases: notice.aliases },
    where: notice.where,
    at: notice.at,
    summary,
    details: {
      auditId: notice.auditId,
      validTo: when,
      daysLeft: expiry.daysLeft,
      expired: expiry.expired,
      expirationModel: key.expirationModel,
      currentKeyMaterialId: key.currentKeyMaterialId,
      keyState: key.keyState,
      warningDays: notice.warningDays,
      criticalWithinDays: CRITICAL_WITHIN_DAYS,
    },
  });
};

/** One key material as `rotate` reports it (ListKeyRotations with `IncludeKeyMaterial`). */
export interface MaterialReport {
  keyMaterialId?: string;
  keyMaterialState?: string;
  importState?: string;
  expirationModel?: string;
  validTo?: string;
}

/** One entry of ListKeyRotations (with `IncludeKeyMaterial`) as `rotate` reports it. */
export const materialReportOf = (entry: RotationRecord): MaterialReport => ({
  keyMaterialId: entry.keyMaterialId,
  keyMaterialState: entry.keyMaterialState,
  ...(entry.importState ? { importState: entry.importState } : {}),
  ...(entry.expirationModel ? { expirationModel: entry.expirationModel } : {}),
  ...(entry.validTo ? { validTo: entry.validTo.toISOString() } : {}),
});

/**
 * The key's current material, from its materials (ListKeyRotations with `IncludeKeyMaterial`):
 * the entry `CURRENT`, else the one DescribeKey names; `undefined` when neither says.
 */
export const currentMaterialOf = (
  materials: readonly RotationRecord[],
  currentKeyMaterialId: string | undefined,
): MaterialReport | undefined => {
  const entry =
    materials.find((record) => record.keyMaterialState === 'CURRENT') ??
    (currentKeyMaterialId ? materials.find((record) => record.keyMaterialId === currentKeyMaterialId) : undefined);
  if (entry) return materialReportOf(entry);
  return currentKeyMaterialId ? { keyMaterialId: currentKeyMaterialId } : undefined;
};
