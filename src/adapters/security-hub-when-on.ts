import type { SecurityFindings } from '../domain/asff';
import type { ServiceLocation } from '../domain/model';
import type { Log } from '../domain/ports';

/** Makes this service's Security Hub findings for one invocation's account and Region. */
export type SecurityFindingsFor = (location: ServiceLocation, log: Log) => SecurityFindings;

/**
 * Opt-in (the stack's `securityHubFindings`): when off, nothing of Security Hub is loaded,
 * constructed or called. Its client and adapter are imported only when on, so that they cost no
 * cold start otherwise; the client is made once, at initialisation, and serves every invocation.
 */
export const securityHubWhenOn = (on: boolean, clientOptions: object): Promise<SecurityFindingsFor> | undefined =>
  on
    ? Promise.all([import('@aws-sdk/client-securityhub'), import('./security-hub-findings')]).then(
        ([{ SecurityHubClient }, { SecurityHubFindings }]) => {
          const client = new SecurityHubClient(clientOptions);
          return (location, log) => new SecurityHubFindings(client, location, log);
        },
      )
    : undefined;
