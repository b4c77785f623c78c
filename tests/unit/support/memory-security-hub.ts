import type { AsffFinding, SecurityFindings } from '../../../src/domain/asff';

/**
 * Security Hub as BatchImportFindings and GetFindings behave: upsert by Id, read back what is
 * ACTIVE (only the given keys' findings, when asked by key ARN).
 */
export class MemorySecurityHub implements SecurityFindings {
  readonly stored = new Map<string, AsffFinding>();
  readonly imports: AsffFinding[][] = [];
  /** The key ARNs of each read, `undefined` for a read of every finding. */
  readonly reads: (readonly string[] | undefined)[] = [];
  /** The next import fails with this, once. */
  failNext?: Error;

  async importFindings(findings: AsffFinding[]): Promise<void> {
    if (this.failNext) {
      const error = this.failNext;
      this.failNext = undefined;
      throw error;
    }
    this.imports.push(findings);
    for (const finding of findings) this.stored.set(finding.Id, structuredClone(finding));
  }

  async activeFindings(keyArns?: readonly string[]): Promise<AsffFinding[]> {
    this.reads.push(keyArns);
    return [...this.stored.values()]
      .filter((finding) => finding.RecordState === 'ACTIVE')
      .filter((finding) => !keyArns || finding.Resources.some((resource) => keyArns.includes(resource.Id)))
      .map((finding) => structuredClone(finding));
  }

  /** `<keyId>/<rule>` -> `<RecordState> <Workflow> <Compliance>` of every finding stored. */
  state(): Record<string, string> {
    return Object.fromEntries(
      [...this.stored.values()].map((finding) => [
        finding.Id.split('/').slice(3).join('/'),
        `${finding.RecordState} ${finding.Workflow.Status} ${finding.Compliance.Status}`,
      ]),
    );
  }
}
