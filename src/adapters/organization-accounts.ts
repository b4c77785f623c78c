import {
  ListAccountsForParentCommand,
  ListOrganizationalUnitsForParentCommand,
  type OrganizationsClient,
} from '@aws-sdk/client-organizations';
import type { OrgAccount } from '../domain/org-audit';
import { callAws } from './aws-errors';

/**
 * The ACTIVE accounts under organization units (or roots), recursively: ListAccountsForParent and
 * ListOrganizationalUnitsForParent, page by page (docs/org-audit.md#listing-the-accounts). These
 * APIs answer only the management account or a delegated administrator of the organization.
 * Each account keeps the path of OUs it was found under.
 */
export class OrganizationAccounts {
  constructor(private readonly client: OrganizationsClient) {}

  async activeAccountsUnder(parentIds: readonly string[]): Promise<OrgAccount[]> {
    const accounts: OrgAccount[] = [];
    for (const parentId of parentIds) await this.walk(parentId, parentId, accounts);
    return accounts;
  }

  private async walk(parentId: string, path: string, into: OrgAccount[]): Promise<void> {
    let token: string | undefined;
    do {
      const page = await callAws('ListAccountsForParent', parentId, () =>
        this.client.send(new ListAccountsForParentCommand({ ParentId: parentId, NextToken: token })),
      );
      for (const account of page.Accounts ?? []) {
        // SUSPENDED and PENDING_CLOSURE accounts are not audited: nothing can be assumed into them.
        if (account.Id && account.Status === 'ACTIVE') {
          into.push({ account: account.Id, ...(account.Name ? { name: account.Name } : {}), ouPath: path });
        }
      }
      token = page.NextToken;
    } while (token);
    const children: string[] = [];
    do {
      const page = await callAws('ListOrganizationalUnitsForParent', parentId, () =>
        this.client.send(new ListOrganizationalUnitsForParentCommand({ ParentId: parentId, NextToken: token })),
      );
      for (const unit of page.OrganizationalUnits ?? []) if (unit.Id) children.push(unit.Id);
      token = page.NextToken;
    } while (token);
    for (const child of children) await this.walk(child, `${path}/${child}`, into);
  }
}
