import { STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { excerpt, InvalidInputError } from '../domain/errors';
import type { ServiceLocation } from '../domain/model';
import { memberRoleArnIn } from '../domain/service-location';
import { MemberCredentials, perLocation } from './member-access';

/**
 * SDK client options that make a client act in the acting account, in `region` (the acting Region
 * when omitted): nothing more for the function's own account and Region, the member role's
 * credentials otherwise.
 */
export type OptionsIn = (region?: string) => { region?: string; credentials?: AwsCredentialIdentityProvider };

/** Where one invocation acts, and the clients that act there. */
export interface Acting<C> {
  /** The account and Region acted in: the function's own, or (organization mode) the event's or payload's. */
  location: ServiceLocation;
  /** The function's own partition, account and Region: its records, leases and topic stay there. */
  own: ServiceLocation;
  /** Whether it acts through the member role (another account or Region of the organization). */
  inMember: boolean;
  /** The member role it acts through, when `inMember`. */
  memberRoleArn?: string;
  /** The session name of that role's sessions: `kms-rotation-<function>`. */
  sessionName: string;
  clients: C;
}

const ACCOUNT = /^\d{12}$/;
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;

/**
 * The one decision of every handler that acts on a key (docs/trust-boundaries.md): where it acts,
 * and with which clients. Outside organization mode (`memberRoleName` undefined) it is always the
 * function's own account and Region, with its own clients: a foreign event or payload is then
 * refused by the domain (`requireEventForThisService`, `requireLocalKeyRef`) before any AWS call.
 * In organization mode, another account or Region of the function's partition is acted in through
 * that account's member role (`<memberRoleName>-<region>`), with one client set per account and
 * Region, made on first use; the function's own account and Region keep its own clients.
 */
export const actingLocations = <C>(options: {
  /** The function's name, for the member role's session name `kms-rotation-<fn>`. */
  fn: string;
  memberRoleName: string | undefined;
  /** Makes the clients of one location from the options that act there. */
  make: (optionsIn: OptionsIn) => C;
  /** STS client of the function's own credentials; one per process, made on first member use when not given. */
  sts?: () => STSClient;
  clientOptions?: () => object;
}) => {
  const sessionName = `kms-rotation-${options.fn}`;
  const own = options.make((region) => (region === undefined ? {} : { region }));
  const { memberRoleName } = options;
  let credentials: MemberCredentials | undefined;
  const credentialsOf = (roleName: string): MemberCredentials => {
    credentials ??= new MemberCredentials(
      options.sts?.() ?? new STSClient(options.clientOptions?.() ?? {}),
      roleName,
      sessionName,
    );
    return credentials;
  };
  const inMember = perLocation((location) => {
    const member = credentialsOf(memberRoleName as string);
    return options.make((region = location.region) => ({
      region,
      credentials: member.providerFor({ ...location, region }),
    }));
  });

  return (ownLocation: ServiceLocation, target?: { account: string; region: string }): Acting<C> => {
    const here = { location: ownLocation, own: ownLocation, inMember: false, sessionName, clients: own };
    if (memberRoleName === undefined || target === undefined) return here;
    if (target.account === ownLocation.account && target.region === ownLocation.region) return here;
    // The event's or payload's schema has checked both; checked again here, where they pick a role.
    if (!ACCOUNT.test(target.account)) {
      throw new InvalidInputError(`account must be a 12-digit account id: ${excerpt(target.account)}`);
    }
    if (!REGION.test(target.region)) {
      throw new InvalidInputError(`region must be a Region name: ${excerpt(target.region)}`);
    }
    const location = { partition: ownLocation.partition, account: target.account, region: target.region };
    return {
      location,
      own: ownLocation,
      inMember: true,
      memberRoleArn: memberRoleArnIn(location, memberRoleName),
      sessionName,
      clients: inMember(location),
    };
  };
};
