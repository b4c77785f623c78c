import { excerpt, InvalidInputError } from './errors';
import { isAwsManagedAlias, parseArn } from './key-ref';
import type { ServiceLocation } from './model';

/** Events name their account and Region; the service only acts on its own. */
export const requireEventForThisService = (
  event: { eventId: string; account: string; region: string },
  location: ServiceLocation,
): void => {
  if (event.account !== location.account || event.region !== location.region) {
    throw new InvalidInputError(
      `Event ${excerpt(event.eventId, 128)} is for account ${event.account} in ${event.region}; this function serves account ${location.account} in ${location.region}`,
    );
  }
};

/** Why an ARN is not one of a KMS resource where this function runs, or undefined when it is. */
const outsideOf = (ref: string, location: ServiceLocation): string | undefined => {
  const arn = parseArn(ref);
  if (arn?.service !== 'kms') return 'must be a KMS key or alias ARN';
  const here = `${location.partition}, ${location.account}, ${location.region}`;
  return arn.partition === location.partition && arn.account === location.account && arn.region === location.region
    ? undefined
    : `must be in this function's partition, account and Region (${here})`;
};

const refuse = (field: string, why: string, ref: string): never => {
  throw new InvalidInputError(`${field} ${why}: ${excerpt(ref)}`);
};

/** Refuses, before any AWS call, an ARN of another partition, account or Region than the function's. */
export const requireLocalArn = (arn: string, location: ServiceLocation, field: string): void => {
  const why = outsideOf(arn, location);
  if (why) refuse(field, why, arn);
};

/**
 * Refuses, before any AWS call, a key or alias reference that kms-rotation must not follow:
 * an AWS managed alias, or an ARN of another partition, account or Region than the
 * function's. Key ids and alias names are local by definition.
 */
export const requireLocalKeyRef = (ref: string, location: ServiceLocation, field: string): void => {
  if (isAwsManagedAlias(ref)) {
    refuse(field, 'names an AWS managed key (alias/aws/...), which AWS rotates and kms-rotation never touches', ref);
  }
  if (ref.startsWith('arn:')) requireLocalArn(ref, location, field);
};

/**
 * The ARN of one of the stack's roles, from its name, in the partition and account the function
 * serves. The stack's roles have no path, so the ARN is `arn:<partition>:iam::<account>:role/<name>`.
 */
export const roleArnIn = (location: ServiceLocation, roleName: string): string =>
  `arn:${location.partition}:iam::${location.account}:role/${roleName}`;

/**
 * The member stack's role in an account and Region (docs/organization.md): one role per Region,
 * named `<memberRoleName>-<region>`, because a role name is unique in its account and a StackSet
 * deploys the member stack once per Region.
 */
export const memberRoleArnIn = (location: ServiceLocation, memberRoleName: string): string =>
  `arn:${location.partition}:iam::${location.account}:role/${memberRoleName}-${location.region}`;
