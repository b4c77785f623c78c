import { describe, expect, it } from 'vitest';
import { multiRegionKeyTypeGap } from '../../../scripts/lib/kms-gaps/multi-region-key-type';

const KEY = 'mrk-f39bcaa1-25ce-4efd-b6d5-95946027cc32';
const arnIn = (region: string) => `arn:aws:kms:${region}:123456789012:key/${KEY}`;
/** DescribeKey as moto answers it once the replica was read: the primary, too, says REPLICA. */
const answer = (type: string) =>
  JSON.stringify({
    KeyMetadata: {
      KeyId: KEY,
      MultiRegion: true,
      MultiRegionConfiguration: {
        MultiRegionKeyType: type,
        PrimaryKey: { Arn: arnIn('us-east-1'), Region: 'us-east-1' },
        ReplicaKeys: [{ Arn: arnIn('eu-west-1'), Region: 'eu-west-1' }],
      },
    },
  });
const call = (region: string) => ({ api: 'DescribeKey', body: `{"KeyId":"${KEY}"}`, region, target: 'http://moto' });
const typeIn = (amended: string | undefined) =>
  (JSON.parse(amended as string) as { KeyMetadata: { MultiRegionConfiguration: { MultiRegionKeyType: string } } })
    .KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType;

describe('Gap: multiRegionKeyTypeGap, each multi-Region key its own type', () => {
  const gap = multiRegionKeyTypeGap();

  it("says PRIMARY in the primary's Region, whatever moto says, and keeps the rest of the answer", () => {
    const amended = gap.amend?.(call('us-east-1'), { status: 200, body: answer('REPLICA') }) as string;
    expect(typeIn(amended)).toBe('PRIMARY');
    expect(JSON.parse(amended).KeyMetadata.MultiRegionConfiguration.ReplicaKeys).toEqual([
      { Arn: arnIn('eu-west-1'), Region: 'eu-west-1' },
    ]);
  });

  it('says REPLICA in any other Region', () => {
    expect(typeIn(gap.amend?.(call('eu-west-1'), { status: 200, body: answer('PRIMARY') }) as string)).toBe('REPLICA');
  });

  it('leaves a right answer, a single-Region key, an error and other APIs alone', () => {
    expect(gap.amend?.(call('us-east-1'), { status: 200, body: answer('PRIMARY') })).toBeUndefined();
    expect(gap.amend?.(call('us-east-1'), { status: 200, body: '{"KeyMetadata":{"KeyId":"k"}}' })).toBeUndefined();
    expect(gap.amend?.(call('us-east-1'), { status: 400, body: answer('REPLICA') })).toBeUndefined();
    expect(
      gap.amend?.({ ...call('us-east-1'), api: 'ListKeys' }, { status: 200, body: answer('REPLICA') }),
    ).toBeUndefined();
  });
});
