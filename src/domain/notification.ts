import type { Notification, NotificationType, Severity } from './model';

/** What a notification is about: one key (its ARN when known, its declared aliases), or the whole fleet. */
export type NotificationSubject = { keyId: string; keyArn?: string; aliases?: readonly string[] } | 'fleet';

/**
 * One notification of the SNS contract (docs/architecture.md#notifications): every type carries
 * the same fields, filled here from what it is about, where and when; only its summary and
 * details are its own.
 */
export const notificationOf = (notification: {
  type: NotificationType;
  severity: Severity;
  about: NotificationSubject;
  where: { account: string; region: string };
  at: Date | string;
  summary: string;
  details: Record<string, unknown>;
}): Notification => {
  const { about } = notification;
  return {
    type: notification.type,
    severity: notification.severity,
    keyId: about === 'fleet' ? '*' : about.keyId,
    keyArn: about === 'fleet' ? '*' : (about.keyArn ?? about.keyId),
    aliases: about === 'fleet' ? [] : [...(about.aliases ?? [])],
    account: notification.where.account,
    region: notification.where.region,
    occurredAt: typeof notification.at === 'string' ? notification.at : notification.at.toISOString(),
    summary: notification.summary,
    details: notification.details,
  };
};
