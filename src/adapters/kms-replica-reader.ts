import { DescribeKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import type { KeyDescription } from '../domain/model';
import type { ReplicaReader } from '../domain/ports';
import { callAws } from './aws-errors';
import { toKeyDescription } from './kms-key-gateway';

/**
 * DescribeKey of a multi-Region primary's replicas, each in its own Region: one KMS client per
 * Region, created on first use with the options the handler gives every client (`clientFor`), and
 * reused by the invocations after it. Errors are translated like every other KMS call's.
 */
export class KmsReplicaReader implements ReplicaReader {
  private readonly clients = new Map<string, KMSClient>();

  constructor(private readonly clientFor: (region: string) => KMSClient) {}

  private clientIn(region: string): KMSClient {
    let client = this.clients.get(region);
    if (!client) {
      client = this.clientFor(region);
      this.clients.set(region, client);
    }
    return client;
  }

  async describeReplica(replicaArn: string, region: string): Promise<KeyDescription> {
    const client = this.clientIn(region);
    const response = await callAws('DescribeKey', replicaArn, () =>
      client.send(new DescribeKeyCommand({ KeyId: replicaArn })),
    );
    return toKeyDescription(response.KeyMetadata, replicaArn);
  }
}
