import type { Log, Notifier } from '../domain/ports';

/**
 * The functions' notifier: in organization mode (`memberRoleName` set), each notification gets
 * its account's OU path (`OrganizationDirectory`, docs/notifications.md#organization-mode). The
 * Organizations client and its adapter are loaded on the first notification, and only in
 * organization mode: a single-account stack never loads them (as src/adapters/opt-in.ts does).
 * One directory, and its cache, per process.
 */
export const notifierWithOuPathsWhen = (
  organizationMode: boolean,
  notifier: Notifier,
  clientOptions: () => object,
  log: Log,
): Notifier => {
  if (!organizationMode) return notifier;
  let withPaths: Promise<Notifier> | undefined;
  const withPathsOnce = () => {
    withPaths ??= Promise.all([import('@aws-sdk/client-organizations'), import('./organization-directory')]).then(
      ([{ OrganizationsClient }, { OrganizationDirectory, withOrganizationalUnitPaths }]) =>
        withOrganizationalUnitPaths(notifier, new OrganizationDirectory(new OrganizationsClient(clientOptions()), log)),
    );
    return withPaths;
  };
  return { publish: async (notification) => (await withPathsOnce()).publish(notification) };
};
