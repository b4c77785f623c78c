import { AssumeRoleCommand, type AssumeRoleCommandOutput, type STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { AwsServiceError } from '../domain/errors';
import type { ServiceLocation } from '../domain/model';
import { memberRoleArnIn } from '../domain/service-location';
import { translateAwsError } from './aws-errors';

/** Credentials are renewed this long before they expire, so that no call goes out with credentials about to lapse. */
export const RENEW_BEFORE_EXPIRY_MS = 5 * 60_000;

/** How long each assumed-role session lasts: one hour, the most a role allows by default (docs/organization.md). */
export const SESSION_SECONDS = 3_600;

/**
 * Credentials in member accounts (docs/organization.md): the central function assumes the member
 * stack's role of the account and Region it acts in (`<memberRoleName>-<region>`), once, and keeps
 * the credentials until five minutes before they expire. Callers at the same time share one
 * AssumeRole. A refusal names the role, the account and the Region, and says what to check.
 */
export class MemberCredentials {
  private readonly sessions = new Map<string, Promise<AwsCredentialIdentity>>();

  constructor(
    private readonly sts: STSClient,
    private readonly memberRoleName: string,
    private readonly sessionName: string,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** The member role of `location`'s account and Region. */
  roleArnIn(location: ServiceLocation): string {
    return memberRoleArnIn(location, this.memberRoleName);
  }

  /** A credential provider for the SDK clients that act in `location` (`credentials:` client option). */
  providerFor(location: ServiceLocation): AwsCredentialIdentityProvider {
    return () => this.credentialsFor(location);
  }

  credentialsFor(location: ServiceLocation): Promise<AwsCredentialIdentity> {
    const roleArn = this.roleArnIn(location);
    const cached = this.sessions.get(roleArn);
    if (cached) {
      return cached.then((credentials) =>
        (credentials.expiration?.getTime() ?? 0) - this.now() > RENEW_BEFORE_EXPIRY_MS
          ? credentials
          : this.assume(roleArn, location),
      );
    }
    return this.assume(roleArn, location);
  }

  private assume(roleArn: string, location: ServiceLocation): Promise<AwsCredentialIdentity> {
    const session = this.assumeRole(roleArn, location);
    this.sessions.set(roleArn, session);
    // A failed AssumeRole is not kept: the next call tries again.
    session.catch(() => {
      if (this.sessions.get(roleArn) === session) this.sessions.delete(roleArn);
    });
    return session;
  }

  private async assumeRole(roleArn: string, location: ServiceLocation): Promise<AwsCredentialIdentity> {
    let answer: AssumeRoleCommandOutput;
    try {
      answer = await this.sts.send(
        new AssumeRoleCommand({
          RoleArn: roleArn,
          RoleSessionName: this.sessionName,
          DurationSeconds: SESSION_SECONDS,
        }),
      );
    } catch (error) {
      const translated = translateAwsError('AssumeRole', roleArn, error);
      if (translated instanceof AwsServiceError && translated.accessDenied) {
        throw new AwsServiceError(
          'AssumeRole',
          false,
          `${translated.message}. Is the member stack deployed in account ${location.account}, Region ${location.region}, and does its role trust this function's role?`,
          { cause: error, accessDenied: true },
        );
      }
      throw translated;
    }
    const credentials = answer.Credentials;
    if (!credentials?.AccessKeyId || !credentials.SecretAccessKey || !credentials.SessionToken) {
      throw new AwsServiceError('AssumeRole', true, `AssumeRole on ${roleArn} answered no credentials`);
    }
    return {
      accessKeyId: credentials.AccessKeyId,
      secretAccessKey: credentials.SecretAccessKey,
      sessionToken: credentials.SessionToken,
      expiration: credentials.Expiration ?? new Date(this.now() + SESSION_SECONDS * 1000),
    };
  }
}

/**
 * One value per account and Region (SDK clients, gateways over them), made on first use and kept
 * for the invocations after it.
 */
export const perLocation = <T>(make: (location: ServiceLocation) => T) => {
  const made = new Map<string, T>();
  return (location: ServiceLocation): T => {
    const key = `${location.partition}/${location.account}/${location.region}`;
    let value = made.get(key);
    if (value === undefined) {
      value = make(location);
      made.set(key, value);
    }
    return value;
  };
};
