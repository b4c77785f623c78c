import { describeError } from './errors';
import type { KeyDescription, Notification, ServiceLocation, Severity } from './model';
import { notificationOf } from './notification';
import type { Clock, KeyRecord, Notifier, ReplicaLagSighting, ReplicaReader } from './ports';

/**
 * Multi-Region keys: after a rotation of a primary key, each replica must carry the same current
 * key material (docs/kms-facts.md#multi-region-keys). Each replica is read in its own Region and
 * its `CurrentKeyMaterialId` compared with the primary's. A replica that cannot be read, or whose
 * material KMS does not report, is neither lagging nor in step: it is said to be unknown.
 */

/** What one look at one replica found. */
export type ReplicaStatus = 'in-step' | 'lagging' | 'unreadable' | 'unknown';

export interface ReplicaCheck {
  region: string;
  arn: string;
  status: ReplicaStatus;
  primaryMaterialId?: string;
  replicaMaterialId?: string;
  detail: string;
}

/** A lagging replica, judged: WARNING at its first sighting, CRITICAL when an earlier one is still on record at an audit. */
export interface LaggingReplica extends ReplicaCheck {
  status: 'lagging';
  severity: Severity;
  firstSeen: string;
  /** No sighting of this lag was on record before this look. */
  newSighting: boolean;
}

export interface ReplicaJudgement {
  checks: ReplicaCheck[];
  lagging: LaggingReplica[];
  /** Replicas whose material could not be compared (unreadable, or not reported): never taken for fine. */
  unknown: ReplicaCheck[];
  /** The key's record's `replicaLag` after this look. */
  replicaLag: Record<string, ReplicaLagSighting>;
}

/** Only a multi-Region primary has replicas to check; a replica is judged at its primary. */
export const isMultiRegionPrimary = (key: KeyDescription): boolean =>
  key.multiRegion === true && key.multiRegionKeyType === 'PRIMARY';

/** The replica's material against the primary's: in step, lagging, or unknown when either is not reported. */
export const compareMaterial = (
  primary: KeyDescription,
  replica: { region: string; arn: string },
  described: KeyDescription,
): ReplicaCheck => {
  const primaryMaterialId = primary.currentKeyMaterialId;
  const replicaMaterialId = described.currentKeyMaterialId;
  const base = { region: replica.region, arn: replica.arn, primaryMaterialId, replicaMaterialId };
  if (!primaryMaterialId || !replicaMaterialId) {
    const which = primaryMaterialId ? `the replica in ${replica.region}` : 'the primary';
    return { ...base, status: 'unknown', detail: `KMS did not report the current key material of ${which}` };
  }
  if (primaryMaterialId === replicaMaterialId) {
    return {
      ...base,
      status: 'in-step',
      detail: `replica in ${replica.region} has the current material ${replicaMaterialId}`,
    };
  }
  return {
    ...base,
    status: 'lagging',
    detail: `replica in ${replica.region} has material ${replicaMaterialId}, the primary ${primaryMaterialId}`,
  };
};

/**
 * Reads every replica the primary's DescribeKey lists, each in its Region, at once. A read that
 * fails for any reason (denied, throttled past every retry, the Region unreachable) makes that
 * replica `unreadable`, never lagging nor in step; the other replicas are still compared.
 */
export const checkReplicas = async (primary: KeyDescription, reader: ReplicaReader): Promise<ReplicaCheck[]> =>
  Promise.all(
    (primary.replicaKeys ?? []).map(async (replica): Promise<ReplicaCheck> => {
      try {
        return compareMaterial(primary, replica, await reader.describeReplica(replica.arn, replica.region));
      } catch (error) {
        return {
          region: replica.region,
          arn: replica.arn,
          status: 'unreadable',
          primaryMaterialId: primary.currentKeyMaterialId,
          detail: `DescribeKey of the replica in ${replica.region} failed (${describeError(error)}): its material is unknown`,
        };
      }
    }),
  );

/**
 * Judges the lagging replicas against the sightings on record. A lag is WARNING when first seen
 * (by `onRotation`, `rotate` or an audit); an audit that finds a sighting from before it began
 * still lagging makes it CRITICAL. A replica seen in step drops its sighting; one that could not
 * be compared keeps it as it was (nothing was learned); a Region no longer listed drops it.
 */
export const judgeReplicas = (
  checks: readonly ReplicaCheck[],
  onRecord: KeyRecord['replicaLag'],
  at: { now: Date; auditStartedAt?: Date },
): ReplicaJudgement => {
  const replicaLag: Record<string, ReplicaLagSighting> = {};
  const lagging: LaggingReplica[] = [];
  const unknown: ReplicaCheck[] = [];
  for (const check of checks) {
    const earlier = onRecord?.[check.region];
    if (check.status === 'lagging') {
      const firstSeen = earlier?.firstSeen ?? at.now.toISOString();
      const stillBehind =
        earlier !== undefined &&
        at.auditStartedAt !== undefined &&
        Date.parse(earlier.firstSeen) < at.auditStartedAt.getTime();
      lagging.push({
        ...check,
        status: 'lagging',
        severity: stillBehind ? 'CRITICAL' : 'WARNING',
        firstSeen,
        newSighting: earlier === undefined,
      });
      replicaLag[check.region] = {
        firstSeen,
        primaryMaterialId: check.primaryMaterialId as string,
        ...(check.replicaMaterialId ? { replicaMaterialId: check.replicaMaterialId } : {}),
      };
    } else if (check.status !== 'in-step') {
      unknown.push(check);
      if (earlier) replicaLag[check.region] = earlier;
    }
  }
  return { checks: [...checks], lagging, unknown, replicaLag };
};

const SEVERITY_RANK: Record<Severity, number> = { INFO: 0, WARNING: 1, CRITICAL: 2 };
export const highestSeverity = (severities: readonly Severity[]): Severity =>
  severities.reduce<Severity>((max, s) => (SEVERITY_RANK[s] > SEVERITY_RANK[max] ? s : max), 'INFO');

/** What asked for the look: the event or the audit it is told under. */
export type ReplicaWatchSource =
  | { kind: 'onRotation'; eventId: string }
  | { kind: 'rotate'; eventId: string }
  | { kind: 'audit'; auditId: string };

/** `ReplicaMaterialLagging`, about the primary key: every lagging replica, with when it was first seen behind. */
export const replicaLaggingNotification = (
  primary: KeyDescription,
  aliases: readonly string[],
  lagging: readonly LaggingReplica[],
  source: ReplicaWatchSource,
  where: ServiceLocation,
  at: Date,
): Notification => {
  const severity = highestSeverity(lagging.map((replica) => replica.severity));
  const name = aliases[0] ?? primary.keyId;
  const regions = lagging.map((replica) => `${replica.region} (since ${replica.firstSeen})`).join(', ');
  const summary =
    severity === 'CRITICAL'
      ? `Replicas of ${name} still behind the primary's key material at this audit: ${regions}`
      : `Replicas of ${name} behind the primary's key material: ${regions}`;
  const { kind, ...ids } = source;
  return notificationOf({
    type: 'ReplicaMaterialLagging',
    severity,
    about: { keyId: primary.keyId, keyArn: primary.arn, aliases },
    where,
    at,
    summary,
    details: {
      ...ids,
      source: kind,
      primaryMaterialId: primary.currentKeyMaterialId,
      replicas: lagging.map(({ region, arn, replicaMaterialId, firstSeen, severity: replicaSeverity }) => ({
        region,
        arn,
        replicaMaterialId,
        firstSeen,
        severity: replicaSeverity,
      })),
    },
  });
};

export interface ReplicaWatchDeps {
  replicas: ReplicaReader;
  notifier: Notifier;
  clock: Clock;
  location: ServiceLocation;
}

/**
 * One look at a primary's replicas: read, compare, judge against the record, and tell. After an
 * event (`onRotation`, `rotate`) only a new sighting is told (the same lag, seen again by the next
 * event, waits for the audit); an audit tells every lag it finds. Returns the judgement: the
 * caller keeps `replicaLag` in the key's record, with the rest of what it writes there.
 */
export const watchReplicas = async (
  primary: KeyDescription,
  aliases: readonly string[],
  record: KeyRecord,
  source: ReplicaWatchSource,
  deps: ReplicaWatchDeps,
  auditStartedAt?: Date,
): Promise<ReplicaJudgement & { notified?: Severity }> => {
  const now = deps.clock.now();
  const judgement = judgeReplicas(await checkReplicas(primary, deps.replicas), record.replicaLag, {
    now,
    auditStartedAt,
  });
  const tell = source.kind === 'audit' ? judgement.lagging : judgement.lagging.filter((replica) => replica.newSighting);
  if (tell.length === 0) return judgement;
  const notification = replicaLaggingNotification(primary, aliases, judgement.lagging, source, deps.location, now);
  await deps.notifier.publish(notification);
  return { ...judgement, notified: notification.severity };
};
