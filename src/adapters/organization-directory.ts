import {
  DescribeOrganizationalUnitCommand,
  ListParentsCommand,
  type OrganizationsClient,
} from '@aws-sdk/client-organizations';
import { AwsServiceError, excerpt } from '../domain/errors';
import type { Notification } from '../domain/model';
import type { Log, Notifier } from '../domain/ports';
import { callAws } from './aws-errors';

/** Organizations nests OUs five deep under the root: a longer chain of parents is not followed. */
const MAX_DEPTH = 6;

/**
 * An account's OU path, from AWS Organizations (docs/notifications.md#organization-mode): its
 * parents up to the root (`ListParents`), each OU by name (`DescribeOrganizationalUnit`), as
 * `<root id>/<OU name>/.../<OU name>`. Called with the central account's own credentials; only
 * the management account or a delegated administrator may call these APIs. Optional: when
 * Organizations refuses, the path is left out for the rest of the process and that is logged
 * once; any other failure leaves it out of this notification only. It never fails a caller.
 * Paths are cached per account for the process.
 */
export class OrganizationDirectory {
  private readonly paths = new Map<string, Promise<string | undefined>>();
  private denied = false;

  constructor(
    private readonly organizations: OrganizationsClient,
    private readonly log: Log,
  ) {}

  pathOf(account: string): Promise<string | undefined> {
    if (this.denied) return Promise.resolve(undefined);
    const cached = this.paths.get(account);
    if (cached) return cached;
    const path = this.read(account);
    this.paths.set(account, path);
    return path;
  }

  private async read(account: string): Promise<string | undefined> {
    try {
      const names: string[] = [];
      let child = account;
      for (let depth = 0; depth < MAX_DEPTH; depth += 1) {
        const parent = await this.parentOf(child);
        if (parent === undefined) return undefined;
        if (parent.type === 'ROOT') return [parent.id, ...names].join('/');
        names.unshift(await this.nameOf(parent.id));
        child = parent.id;
      }
      return undefined;
    } catch (error) {
      this.paths.delete(account);
      const refused = error instanceof AwsServiceError && error.accessDenied;
      if (refused && !this.denied) {
        this.denied = true;
        this.log.warn(
          'Notifications leave out the OU path: Organizations refused (only the management account or a delegated administrator may read it)',
          { error: excerpt(String((error as Error).message), 300) },
        );
      } else if (!refused) {
        this.log.warn('OU path not read; this notification leaves it out', {
          account,
          error: excerpt(String((error as Error).message), 300),
        });
      }
      return undefined;
    }
  }

  private async parentOf(childId: string): Promise<{ id: string; type: string } | undefined> {
    const answer = await callAws('ListParents', childId, () =>
      this.organizations.send(new ListParentsCommand({ ChildId: childId })),
    );
    const parent = answer.Parents?.[0];
    return parent?.Id && parent.Type ? { id: parent.Id, type: parent.Type } : undefined;
  }

  private async nameOf(ouId: string): Promise<string> {
    const answer = await callAws('DescribeOrganizationalUnit', ouId, () =>
      this.organizations.send(new DescribeOrganizationalUnitCommand({ OrganizationalUnitId: ouId })),
    );
    // A name with a slash would read as two levels.
    return excerpt(answer.OrganizationalUnit?.Name ?? ouId, 128).replaceAll('/', '%2F');
  }
}

/**
 * A notifier that adds the account's OU path to each notification's
 * `details.organizationalUnitPath` when Organizations gives it, and publishes it as is otherwise.
 */
export const withOrganizationalUnitPaths = (
  notifier: Notifier,
  directory: Pick<OrganizationDirectory, 'pathOf'>,
): Notifier => ({
  publish: async (notification: Notification) => {
    const path = await directory.pathOf(notification.account);
    await notifier.publish(
      path === undefined
        ? notification
        : { ...notification, details: { ...notification.details, organizationalUnitPath: path } },
    );
  },
});
