import {
  AccessDeniedException,
  DescribeOrganizationalUnitCommand,
  ListParentsCommand,
  OrganizationsClient,
  ServiceException,
} from '@aws-sdk/client-organizations';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { OrganizationDirectory, withOrganizationalUnitPaths } from '../../../src/adapters/organization-directory';
import { notifierWithOuPathsWhen } from '../../../src/adapters/organization-notifier';
import type { Notification } from '../../../src/domain/model';
import type { Log } from '../../../src/domain/ports';

const organizations = mockClient(OrganizationsClient);

const recordingLog = () => {
  const warnings: string[] = [];
  const log: Log = { info: () => {}, warn: (message) => warnings.push(message), error: () => {} };
  return { log, warnings };
};

/** 111111111111 in Root r-ab12 > Workloads (ou-ab12-11111111) > Prod (ou-ab12-22222222). */
const seedTree = () => {
  organizations.on(ListParentsCommand, { ChildId: '111111111111' }).resolves({
    Parents: [{ Id: 'ou-ab12-22222222', Type: 'ORGANIZATIONAL_UNIT' }],
  });
  organizations.on(ListParentsCommand, { ChildId: 'ou-ab12-22222222' }).resolves({
    Parents: [{ Id: 'ou-ab12-11111111', Type: 'ORGANIZATIONAL_UNIT' }],
  });
  organizations.on(ListParentsCommand, { ChildId: 'ou-ab12-11111111' }).resolves({
    Parents: [{ Id: 'r-ab12', Type: 'ROOT' }],
  });
  organizations.on(DescribeOrganizationalUnitCommand, { OrganizationalUnitId: 'ou-ab12-22222222' }).resolves({
    OrganizationalUnit: { Id: 'ou-ab12-22222222', Name: 'Prod' },
  });
  organizations.on(DescribeOrganizationalUnitCommand, { OrganizationalUnitId: 'ou-ab12-11111111' }).resolves({
    OrganizationalUnit: { Id: 'ou-ab12-11111111', Name: 'Workloads' },
  });
};

const denied = () =>
  new AccessDeniedException({ message: 'You don’t have permissions to access this resource.', $metadata: {} });

const notification = (account: string): Notification => ({
  type: 'RotationValidated',
  severity: 'INFO',
  keyId: 'k',
  keyArn: `arn:aws:kms:eu-west-1:${account}:key/k`,
  aliases: [],
  account,
  region: 'eu-west-1',
  occurredAt: '2026-12-02T00:00:00.000Z',
  summary: 's',
  details: { rotationId: 'r' },
});

describe('OrganizationDirectory', () => {
  beforeEach(() => organizations.reset());

  it("reads the account's parents up to the root and names each OU, root first", async () => {
    seedTree();
    const directory = new OrganizationDirectory(new OrganizationsClient({}), recordingLog().log);

    expect(await directory.pathOf('111111111111')).toBe('r-ab12/Workloads/Prod');
  });

  it('reads each account once per process', async () => {
    seedTree();
    const directory = new OrganizationDirectory(new OrganizationsClient({}), recordingLog().log);

    await Promise.all([directory.pathOf('111111111111'), directory.pathOf('111111111111')]);
    await directory.pathOf('111111111111');

    expect(organizations.commandCalls(ListParentsCommand)).toHaveLength(3);
    expect(organizations.commandCalls(DescribeOrganizationalUnitCommand)).toHaveLength(2);
  });

  it('an account directly under the root has the root alone as its path', async () => {
    organizations.on(ListParentsCommand).resolves({ Parents: [{ Id: 'r-ab12', Type: 'ROOT' }] });
    const directory = new OrganizationDirectory(new OrganizationsClient({}), recordingLog().log);

    expect(await directory.pathOf('222222222222')).toBe('r-ab12');
  });

  it('denied (not the management account nor a delegated administrator): no path, said once, never asked again, never failing', async () => {
    organizations.on(ListParentsCommand).rejects(denied());
    const { log, warnings } = recordingLog();
    const directory = new OrganizationDirectory(new OrganizationsClient({}), log);

    expect(await directory.pathOf('111111111111')).toBeUndefined();
    expect(await directory.pathOf('222222222222')).toBeUndefined();

    expect(warnings).toEqual([
      'Notifications leave out the OU path: Organizations refused (only the management account or a delegated administrator may read it)',
    ]);
    expect(organizations.commandCalls(ListParentsCommand)).toHaveLength(1);
  });

  it('denied on DescribeOrganizationalUnit alone: no path either', async () => {
    seedTree();
    organizations.on(DescribeOrganizationalUnitCommand).rejects(denied());
    const { log, warnings } = recordingLog();
    const directory = new OrganizationDirectory(new OrganizationsClient({}), log);

    expect(await directory.pathOf('111111111111')).toBeUndefined();
    expect(warnings).toHaveLength(1);
  });

  it('another failure leaves this path out and is asked again next time', async () => {
    organizations
      .on(ListParentsCommand)
      .rejectsOnce(new ServiceException({ $metadata: {}, message: 'down' }))
      .resolves({ Parents: [{ Id: 'r-ab12', Type: 'ROOT' }] });
    const { log, warnings } = recordingLog();
    const directory = new OrganizationDirectory(new OrganizationsClient({ maxAttempts: 1 }), log);

    expect(await directory.pathOf('111111111111')).toBeUndefined();
    expect(await directory.pathOf('111111111111')).toBe('r-ab12');
    expect(warnings).toEqual(['OU path not read; this notification leaves it out']);
  });

  it('stops after the deepest nesting Organizations allows, with no path, on a chain of parents that never ends', async () => {
    organizations
      .on(ListParentsCommand)
      .resolves({ Parents: [{ Id: 'ou-ab12-33333333', Type: 'ORGANIZATIONAL_UNIT' }] });
    organizations.on(DescribeOrganizationalUnitCommand).resolves({ OrganizationalUnit: { Name: 'Loop' } });
    const directory = new OrganizationDirectory(new OrganizationsClient({}), recordingLog().log);

    expect(await directory.pathOf('111111111111')).toBeUndefined();
    expect(organizations.commandCalls(ListParentsCommand)).toHaveLength(6);
  });
});

describe('withOrganizationalUnitPaths', () => {
  beforeEach(() => organizations.reset());

  it("adds the notification's account's OU path to its details", async () => {
    seedTree();
    const published: Notification[] = [];
    const notifier = withOrganizationalUnitPaths(
      { publish: async (n) => void published.push(n) },
      new OrganizationDirectory(new OrganizationsClient({}), recordingLog().log),
    );

    await notifier.publish(notification('111111111111'));

    expect(published[0]?.details).toEqual({ rotationId: 'r', organizationalUnitPath: 'r-ab12/Workloads/Prod' });
    expect(published[0]?.account).toBe('111111111111');
  });

  it('publishes the notification unchanged, without the field, when Organizations refuses', async () => {
    organizations.on(ListParentsCommand).rejects(denied());
    const published: Notification[] = [];
    const notifier = withOrganizationalUnitPaths(
      { publish: async (n) => void published.push(n) },
      new OrganizationDirectory(new OrganizationsClient({}), recordingLog().log),
    );

    await notifier.publish(notification('111111111111'));

    expect(published).toEqual([notification('111111111111')]);
    expect(published[0]?.details).not.toHaveProperty('organizationalUnitPath');
  });
});

describe('notifierWithOuPathsWhen', () => {
  beforeEach(() => organizations.reset());

  it('outside organization mode is the notifier itself: Organizations is never called', async () => {
    const inner = { publish: async () => {} };
    expect(notifierWithOuPathsWhen(false, inner, () => ({}), recordingLog().log)).toBe(inner);
  });

  it('in organization mode adds the path', async () => {
    seedTree();
    const published: Notification[] = [];
    const notifier = notifierWithOuPathsWhen(
      true,
      { publish: async (n) => void published.push(n) },
      () => ({}),
      recordingLog().log,
    );

    await notifier.publish(notification('111111111111'));

    expect(published[0]?.details.organizationalUnitPath).toBe('r-ab12/Workloads/Prod');
  });
});
