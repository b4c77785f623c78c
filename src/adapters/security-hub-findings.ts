import {
  type AwsSecurityFinding,
  BatchImportFindingsCommand,
  GetFindingsCommand,
  type SecurityHubClient,
} from '@aws-sdk/client-securityhub';
import { type AsffFinding, GENERATOR_PREFIX, isOwnFinding, productArnOf, type SecurityFindings } from '../domain/asff';
import { AwsServiceError } from '../domain/errors';
import type { ServiceLocation } from '../domain/model';
import type { Log } from '../domain/ports';
import { callAws } from './aws-errors';

/** BatchImportFindings takes at most 100 findings a request (docs/security-hub.md). */
export const IMPORT_BATCH_SIZE = 100;
/** GetFindings returns at most 100 findings a page. */
const PAGE_SIZE = 100;
/** GetFindings takes at most 20 values for one filter field. */
export const FILTER_VALUES = 20;

/** This service's findings in Security Hub: imported to the account's default product, read back by it. */
export class SecurityHubFindings implements SecurityFindings {
  constructor(
    private readonly client: SecurityHubClient,
    private readonly location: ServiceLocation,
    private readonly log: Log,
  ) {}

  /**
   * Imports in batches of 100. A finding Security Hub refuses is logged with its error and fails
   * the call once every batch has been tried: the audit invocation fails rather than leave
   * Security Hub silently behind the report (or the drift watch's record).
   */
  async importFindings(findings: AsffFinding[]): Promise<void> {
    const failed: { Id?: string; ErrorCode?: string; ErrorMessage?: string }[] = [];
    let refusedCount = 0;
    for (let start = 0; start < findings.length; start += IMPORT_BATCH_SIZE) {
      const batch = findings.slice(start, start + IMPORT_BATCH_SIZE);
      const output = await callAws('BatchImportFindings', productArnOf(this.location), () =>
        this.client.send(new BatchImportFindingsCommand({ Findings: batch as AwsSecurityFinding[] })),
      );
      const refused = output.FailedFindings ?? [];
      refusedCount += Math.max(output.FailedCount ?? 0, refused.length);
      if ((output.FailedCount ?? 0) > 0 && refused.length === 0) {
        failed.push({ ErrorCode: 'Unknown', ErrorMessage: `${output.FailedCount} findings refused, none named` });
      }
      failed.push(...refused);
    }
    if (refusedCount > 0) {
      for (const finding of failed) {
        this.log.error('Security Hub refused a finding', {
          findingId: finding.Id,
          errorCode: finding.ErrorCode,
          error: finding.ErrorMessage,
        });
      }
      throw new AwsServiceError(
        'BatchImportFindings',
        false,
        `BatchImportFindings on ${productArnOf(this.location)} refused ${refusedCount} of ${findings.length} findings: ${failed
          .slice(0, 5)
          .map((finding) => `${finding.Id ?? '?'} (${finding.ErrorCode ?? '?'}: ${finding.ErrorMessage ?? ''})`)
          .join('; ')}`,
      );
    }
  }

  /**
   * Every ACTIVE finding of this service, filtered by product, generator prefix and record state
   * (and by resource, the key ARNs, when given); filtered again here, since an emulator may ignore
   * the filters (moto 5 does). GetFindings takes at most 20 values a filter field: key ARNs are
   * asked for 20 at a time.
   */
  async activeFindings(keyArns?: readonly string[]): Promise<AsffFinding[]> {
    if (keyArns === undefined) return this.activeFindingsMatching(undefined);
    const found: AsffFinding[] = [];
    for (let start = 0; start < keyArns.length; start += FILTER_VALUES) {
      found.push(...(await this.activeFindingsMatching(keyArns.slice(start, start + FILTER_VALUES))));
    }
    return found;
  }

  private async activeFindingsMatching(keyArns: readonly string[] | undefined): Promise<AsffFinding[]> {
    const found: AsffFinding[] = [];
    let nextToken: string | undefined;
    do {
      const output = await callAws('GetFindings', productArnOf(this.location), () =>
        this.client.send(
          new GetFindingsCommand({
            Filters: {
              ProductArn: [{ Value: productArnOf(this.location), Comparison: 'EQUALS' }],
              GeneratorId: [{ Value: GENERATOR_PREFIX, Comparison: 'PREFIX' }],
              RecordState: [{ Value: 'ACTIVE', Comparison: 'EQUALS' }],
              AwsAccountId: [{ Value: this.location.account, Comparison: 'EQUALS' }],
              Region: [{ Value: this.location.region, Comparison: 'EQUALS' }],
              ...(keyArns ? { ResourceId: keyArns.map((arn) => ({ Value: arn, Comparison: 'EQUALS' as const })) } : {}),
            },
            MaxResults: PAGE_SIZE,
            NextToken: nextToken,
          }),
        ),
      );
      for (const finding of (output.Findings ?? []) as unknown as AsffFinding[]) {
        if (
          isOwnFinding(finding, this.location) &&
          finding.RecordState === 'ACTIVE' &&
          finding.AwsAccountId === this.location.account &&
          finding.Region === this.location.region &&
          (!keyArns || (finding.Resources ?? []).some((resource) => keyArns.includes(resource.Id)))
        ) {
          found.push(finding);
        }
      }
      nextToken = output.NextToken || undefined;
    } while (nextToken);
    return found;
  }
}
