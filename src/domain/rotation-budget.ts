import type { AuditedKey, AuditLimits } from './audit-rules';
import { currentMaterialDate } from './audit-rules';
import type { Notification, ServiceLocation } from './model';
import { notificationOf } from './notification';

/**
 * Per key, what is left of its rotations and when the next one is due: the on-demand rotations
 * used and left of KMS's 25 (the one KMS quota that cannot be raised: docs/kms-facts.md#on-demand-rotation-quota),
 * and the next rotation date. Keys that rotate by themselves have KMS's `NextRotationDate`; keys that
 * never do (alias-swap and imported keys) are due when their current material reaches the
 * audit's maximum age, and get `RotationDue` (INFO) `rotationDueWarningDays` before.
 */

/** RotateKeyOnDemand's per-key quota: 25, not adjustable. */
export const KMS_ON_DEMAND_QUOTA = 25;

const DAY_MS = 86_400_000;

export interface RotationSchedule {
  keyId: string;
  aliases: string[];
  keyClass: AuditedKey['keyClass'];
  /** On-demand rotations used and left of KMS's quota (keys that can rotate on demand). */
  onDemand?: { used: number; left: number; quota: number };
  /**
   * The next rotation: `automatic` (KMS's `NextRotationDate`, with rotation on), `maximum-material-age`
   * (a key that never rotates by itself: when its current material reaches the maximum age), or
   * `none` (automatic rotation off, or KMS reported no date).
   */
  next: { basis: 'automatic' | 'maximum-material-age' | 'none'; date?: string; reason?: string };
  /** When the current material was made, as the audit knows it. */
  materialDate?: string;
}

/** Keys that never rotate by themselves: rotated by hand before their material is too old. */
const NEVER_BY_THEMSELVES = new Set<AuditedKey['keyClass']>(['alias-swap', 'on-demand-only']);

/** The key's rotation budget and next rotation; `undefined` for a key of a class that is not rotated. */
export const rotationScheduleOf = (audited: AuditedKey, limits: AuditLimits): RotationSchedule | undefined => {
  const { keyClass } = audited;
  if (keyClass !== 'auto-rotatable' && !NEVER_BY_THEMSELVES.has(keyClass)) return undefined;
  const since = currentMaterialDate(audited);
  const base = {
    keyId: audited.key.keyId,
    aliases: audited.aliases,
    keyClass,
    ...(since ? { materialDate: since.toISOString() } : {}),
  };
  const onDemand =
    keyClass === 'alias-swap'
      ? undefined
      : (() => {
          const used = (audited.history ?? []).filter((record) => record.rotationType === 'ON_DEMAND').length;
          return { used, left: Math.max(0, KMS_ON_DEMAND_QUOTA - used), quota: KMS_ON_DEMAND_QUOTA };
        })();
  if (keyClass === 'auto-rotatable') {
    const rotation = audited.rotation;
    const next: RotationSchedule['next'] = !rotation?.enabled
      ? { basis: 'none', reason: 'automatic rotation is off' }
      : rotation.nextRotationDate
        ? { basis: 'automatic', date: rotation.nextRotationDate.toISOString() }
        : { basis: 'none', reason: 'KMS reported no next rotation date' };
    return { ...base, ...(onDemand ? { onDemand } : {}), next };
  }
  const next: RotationSchedule['next'] = since
    ? {
        basis: 'maximum-material-age',
        date: new Date(since.getTime() + limits.maxMaterialAgeDays * DAY_MS).toISOString(),
      }
    : { basis: 'none', reason: 'the date of the current material is unknown' };
  return { ...base, ...(onDemand ? { onDemand } : {}), next };
};

/**
 * Whether a managed key that never rotates by itself is due: its material reaches the maximum
 * age within `warningDays` (or has already). Only managed keys: `rotate` rotates nothing else.
 */
export const rotationDueIn = (
  audited: AuditedKey,
  schedule: RotationSchedule | undefined,
  warningDays: number,
  now: Date,
): { dueAt: Date; daysLeft: number; overdue: boolean } | undefined => {
  if (!audited.declared?.managed || !schedule || !NEVER_BY_THEMSELVES.has(schedule.keyClass)) return undefined;
  if (schedule.next.basis !== 'maximum-material-age' || !schedule.next.date) return undefined;
  const dueAt = new Date(schedule.next.date);
  const leftMs = dueAt.getTime() - now.getTime();
  if (leftMs > warningDays * DAY_MS) return undefined;
  return { dueAt, daysLeft: Math.max(0, Math.floor(leftMs / DAY_MS)), overdue: leftMs <= 0 };
};

/** `RotationDue` (INFO): a managed key that never rotates by itself, due for `rotate`. */
export const rotationDue = (notice: {
  audited: AuditedKey;
  schedule: RotationSchedule;
  due: { dueAt: Date; daysLeft: number; overdue: boolean };
  warningDays: number;
  maxMaterialAgeDays: number;
  where: ServiceLocation;
  at: Date;
  auditId: string;
}): Notification => {
  const { audited, schedule, due } = notice;
  const keyId = audited.key.keyId;
  const how =
    schedule.keyClass === 'alias-swap'
      ? `rotate it with rotate (strategy "alias-swap" or "auto")`
      : 'import new key material (PENDING_ROTATION), then rotate it with rotate';
  const when = due.dueAt.toISOString();
  const summary = due.overdue
    ? `${keyId} was due for rotation at ${when} (its material is older than ${notice.maxMaterialAgeDays} days): ${how}`
    : `${keyId} is due for rotation at ${when}, in ${due.daysLeft} day${due.daysLeft === 1 ? '' : 's'} (its material reaches ${notice.maxMaterialAgeDays} days): ${how}`;
  return notificationOf({
    type: 'RotationDue',
    severity: 'INFO',
    about: { keyId, keyArn: audited.key.arn, aliases: audited.declared?.aliases ?? audited.aliases },
    where: notice.where,
    at: notice.at,
    summary,
    details: {
      auditId: notice.auditId,
      keyClass: schedule.keyClass,
      dueAt: when,
      daysLeft: due.daysLeft,
      overdue: due.overdue,
      materialDate: schedule.materialDate,
      maxMaterialAgeDays: notice.maxMaterialAgeDays,
      warningDays: notice.warningDays,
      ...(schedule.onDemand ? { onDemand: schedule.onDemand } : {}),
    },
  });
};
