import { type AwsSecurityFinding, GetFindingsCommand, SecurityHubClient } from '@aws-sdk/client-securityhub';

/**
 * The emulator's Security Hub, read as a security team would. moto's GetFindings ignores its
 * filters (docs/security-hub.md): the findings are read whole and picked here by the key's ARN.
 */
export const emulatorSecurityHub = (endpoint: string, region: string) => {
  const client = new SecurityHubClient({
    endpoint,
    region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  return {
    /** Every finding (any record state) whose resource is the key. */
    findingsOf: async (keyArn: string): Promise<AwsSecurityFinding[]> => {
      const found: AwsSecurityFinding[] = [];
      let NextToken: string | undefined;
      do {
        const page = await client.send(new GetFindingsCommand({ MaxResults: 100, NextToken }));
        found.push(...(page.Findings ?? []));
        NextToken = page.NextToken || undefined;
      } while (NextToken);
      return found.filter((finding) => finding.Resources?.some((resource) => resource.Id === keyArn));
    },
  };
};

/** Generator, record state, workflow and compliance: what tells an open finding from a resolved one. */
export const stateOf = (finding: AwsSecurityFinding | undefined) => [
  finding?.GeneratorId,
  finding?.RecordState,
  finding?.Workflow?.Status,
  finding?.Compliance?.Status,
];
