import type { KeyDescription } from '../../../src/domain/model';
import type { ReplicaReader } from '../../../src/domain/ports';

/**
 * Replicas of one multi-Region primary, each in its Region: its current material (or none
 * reported), or the error its Region answers DescribeKey with. Every read is recorded.
 */
export class FakeReplicas implements ReplicaReader {
  readonly reads: { arn: string; region: string }[] = [];
  constructor(public answers: Record<string, string | undefined | Error>) {}
  async describeReplica(arn: string, region: string): Promise<KeyDescription> {
    this.reads.push({ arn, region });
    const answer = this.answers[region];
    if (answer instanceof Error) throw answer;
    const keyId = arn.slice(arn.lastIndexOf('/') + 1);
    return {
      keyId,
      arn,
      keyState: 'Enabled',
      multiRegion: true,
      multiRegionKeyType: 'REPLICA',
      currentKeyMaterialId: answer,
    };
  }
}

export const MRK_ID = 'mrk-0123456789abcdef0123456789abcdef';
export const replicaArn = (region: string, account = '123456789012') =>
  `arn:aws:kms:${region}:${account}:key/${MRK_ID}`;
