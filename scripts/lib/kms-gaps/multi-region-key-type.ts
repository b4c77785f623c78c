import type { ApiGap } from '../aws-proxy';

/**
 * moto keeps one `MultiRegionConfiguration` object for a primary and its replicas, and reading the
 * replica (DescribeKey in its Region) rewrites it: from then on the primary, too, reads as
 * `REPLICA` (docs/kms-facts.md#moto). In AWS each key reports its own type, and the configuration
 * names the primary's Region. This gap amends DescribeKey's `MultiRegionKeyType` from that:
 * `PRIMARY` in the primary's Region, `REPLICA` elsewhere.
 */
export const multiRegionKeyTypeGap = (): ApiGap => ({
  amend(call, answer) {
    if (call.api !== 'DescribeKey' || !call.region || (answer.status !== undefined && answer.status !== 200)) {
      return undefined;
    }
    let body: {
      KeyMetadata?: { MultiRegionConfiguration?: { MultiRegionKeyType?: string; PrimaryKey?: { Region?: string } } };
    };
    try {
      body = JSON.parse(answer.body);
    } catch {
      return undefined;
    }
    const configuration = body.KeyMetadata?.MultiRegionConfiguration;
    const primaryRegion = configuration?.PrimaryKey?.Region;
    if (!configuration || !primaryRegion) return undefined;
    const type = primaryRegion === call.region ? 'PRIMARY' : 'REPLICA';
    if (configuration.MultiRegionKeyType === type) return undefined;
    return JSON.stringify({
      ...body,
      KeyMetadata: { ...body.KeyMetadata, MultiRegionConfiguration: { ...configuration, MultiRegionKeyType: type } },
    });
  },
});
