import { describe, expect, it } from 'vitest';
import { keyPolicyAsJoinedString, kmsKeyTagsForMoto, templateForMoto } from '../../../scripts/lib/stack';

/**
 * moto needs a CloudFormation key policy as a string; the deploy helper turns the policy object
 * into an Fn::Join of its JSON text. What CloudFormation makes of that join, once the intrinsic
 * functions are resolved, must be exactly the policy it would have made of the object.
 */

type Resolve = (intrinsic: Record<string, unknown>) => string;

/** A stand-in for CloudFormation: a sample value per intrinsic function, by its JSON text. */
const SAMPLES: Record<string, string> = {
  '{"Ref":"AWS::AccountId"}': '123456789012',
  '{"Ref":"AWS::Region"}': 'eu-west-3',
  '{"Fn::Sub":"arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}': 'arn:aws:iam::123456789012:root',
  '{"Fn::Sub":"sns.${AWS::Region}.amazonaws.com"}': 'sns.eu-west-3.amazonaws.com',
  '{"Fn::Sub":"sqs.${AWS::Region}.amazonaws.com"}': 'sqs.eu-west-3.amazonaws.com',
  '{"Fn::Sub":"arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"}':
    'arn:aws:cloudwatch:eu-west-3:123456789012:alarm:*',
  '{"Fn::GetAtt":["OnRotationRole","Arn"]}': 'arn:aws:iam::123456789012:role/on-rotation',
  '{"Fn::GetAtt":["RotateRole","Arn"]}': 'arn:aws:iam::123456789012:role/rotate',
  '{"Fn::GetAtt":["OnKeyActivityRole","Arn"]}': 'arn:aws:iam::123456789012:role/on-key-activity',
  '{"Fn::Sub":["arn:aws:iam::${Account}:role/${Name}",{"Account":{"Ref":"AWS::AccountId"},"Name":"ops"}]}':
    'arn:aws:iam::123456789012:role/ops',
  '{"Fn::Join":["",["arn:aws:iam::",{"Ref":"AWS::AccountId"},":user/a"]]}': 'arn:aws:iam::123456789012:user/a',
};

const resolveSample: Resolve = (intrinsic) => {
  const value = SAMPLES[JSON.stringify(intrinsic)];
  if (value === undefined) throw new Error(`no sample value for ${JSON.stringify(intrinsic)}`);
  return value;
};

const isIntrinsic = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  Object.keys(value).length === 1 &&
  /^(Ref|Fn::.+)$/.test(Object.keys(value)[0] as string);

/** The policy object with each intrinsic replaced by its sample value. */
const substitute = (value: unknown, resolve: Resolve): unknown => {
  if (isIntrinsic(value)) return resolve(value);
  if (Array.isArray(value)) return value.map((item) => substitute(item, resolve));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, substitute(inner, resolve)]));
  }
  return value;
};

/** What CloudFormation makes of `{ "Fn::Join": ["", parts] }`. */
const evaluateJoin = (joined: unknown, resolve: Resolve): string => {
  const join = (joined as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
  expect(join[0]).toBe('');
  return join[1].map((part) => (typeof part === 'string' ? part : resolve(part as Record<string, unknown>))).join('');
};

const roundTrip = (policy: unknown): unknown =>
  JSON.parse(evaluateJoin(keyPolicyAsJoinedString(policy), resolveSample));

/** The policy config/stack.cjs builds for serverless.yml, with the given stage parameters. */
const productPolicy = async (params: Record<string, string>): Promise<unknown> => {
  const { keyPolicy } = require('../../../config/stack.cjs') as {
    keyPolicy: (ctx: { resolveVariable: (name: string) => Promise<string> }) => Promise<unknown>;
  };
  return keyPolicy({ resolveVariable: async (name) => params[name.replace(/^param:/, '')] ?? '' });
};

describe('Script: keyPolicyAsJoinedString (moto deploy workaround)', () => {
  it('joins the product key policy into JSON text that parses back to the policy, intrinsics resolved', async () => {
    const policy = await productPolicy({
      keyAdministrators: 'arn:aws:iam::123456789012:role/admin',
      keyUsers: 'arn:aws:iam::123456789012:role/app, arn:aws:iam::123456789012:user/batch',
      keyViaServices: 'sns sqs',
    });

    const joined = keyPolicyAsJoinedString(policy);

    expect(roundTrip(policy)).toEqual(substitute(policy, resolveSample));
    expect(Object.keys(joined as object)).toEqual(['Fn::Join']);
  });

  it('handles the default parameters, where the policy has fewer statements', async () => {
    const policy = await productPolicy({});

    expect(roundTrip(policy)).toEqual(substitute(policy, resolveSample));
  });

  it('keeps each intrinsic function as one join element, as it was, between literal text only', () => {
    const getAtt = { 'Fn::GetAtt': ['OnRotationRole', 'Arn'] };
    const policy = { Statement: [{ Principal: { AWS: [getAtt, { Ref: 'AWS::AccountId' }] }, Resource: '*' }] };

    const [separator, parts] = (keyPolicyAsJoinedString(policy) as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];

    expect(separator).toBe('');
    expect(parts).toEqual([
      '{"Statement":[{"Principal":{"AWS":["',
      getAtt,
      '","',
      { Ref: 'AWS::AccountId' },
      '"]},"Resource":"*"}]}',
    ]);
    expect(parts[1]).toBe(getAtt);
    parts.forEach((part, index) => {
      if (index > 0) expect(typeof part === 'string' && typeof parts[index - 1] === 'string').toBe(false);
    });
  });

  it('keeps intrinsics with nested intrinsics (Fn::Sub with a variable map, Fn::Join) whole', () => {
    const policy = {
      Statement: [
        {
          Principal: {
            AWS: [
              {
                'Fn::Sub': [
                  // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub syntax
                  'arn:aws:iam::${Account}:role/${Name}',
                  { Account: { Ref: 'AWS::AccountId' }, Name: 'ops' },
                ],
              },
              { 'Fn::Join': ['', ['arn:aws:iam::', { Ref: 'AWS::AccountId' }, ':user/a']] },
            ],
          },
        },
      ],
    };

    expect(roundTrip(policy)).toEqual(substitute(policy, resolveSample));
  });

  it('escapes literal text exactly as JSON does: quotes, backslashes, unicode, text that looks like a marker', () => {
    const policy = {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'Quote " backslash \\ newline \n tab \t émoji 🔑 @@cfn-intrinsic-0@@',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, literal text here
          Condition: { StringLike: { 'aws:PrincipalTag/team': ['a"b', '${aws:username}'] } },
          Resource: { Ref: 'AWS::Region' },
        },
      ],
    };

    expect(roundTrip(policy)).toEqual(substitute(policy, resolveSample));
  });

  it('keeps numbers, booleans, null, empty objects and arrays, and drops undefined members as JSON does', () => {
    const policy = {
      Statement: [
        {
          Condition: { NumericLessThan: { 'kms:X': 3.5 }, Bool: { 'aws:SecureTransport': false } },
          Nothing: null,
          Empty: {},
          List: [],
          Gone: undefined,
        },
      ],
    };

    expect(roundTrip(policy)).toEqual(JSON.parse(JSON.stringify(policy)));
  });

  it('gives a policy without intrinsics as one JSON string in the join', () => {
    const policy = { Version: '2012-10-17', Statement: [] };

    expect(keyPolicyAsJoinedString(policy)).toEqual({ 'Fn::Join': ['', [JSON.stringify(policy)]] });
  });

  it('returns a policy that is already a string, or is itself an intrinsic, unchanged', () => {
    const asString = '{"Version":"2012-10-17"}';
    const asIntrinsic = { 'Fn::If': ['Cond', { Version: '2012-10-17' }, { Ref: 'AWS::NoValue' }] };

    expect(keyPolicyAsJoinedString(asString)).toBe(asString);
    expect(keyPolicyAsJoinedString(asIntrinsic)).toBe(asIntrinsic);
  });

  it('refuses intrinsics that return lists, which cannot be join elements', () => {
    const policy = { Statement: [{ Resource: { 'Fn::Split': [',', 'a,b'] } }] };

    expect(() => keyPolicyAsJoinedString(policy)).toThrow(/Fn::Split returns a list/);
  });

  it('does not change its input', () => {
    const policy = { Statement: [{ Principal: { AWS: { Ref: 'AWS::AccountId' } } }] };
    const before = structuredClone(policy);

    keyPolicyAsJoinedString(policy);

    expect(policy).toEqual(before);
  });
});

describe('Script: the template as moto can take it', () => {
  it("gives KMS key tags moto's TagKey/TagValue shape", () => {
    expect(kmsKeyTagsForMoto([{ Key: 'kms-rotation:managed', Value: 'true' }])).toEqual([
      { TagKey: 'kms-rotation:managed', TagValue: 'true' },
    ]);
  });

  it('rewrites only AWS::KMS::Key resources, and leaves the product template untouched', () => {
    const template = {
      Resources: {
        Key: {
          Type: 'AWS::KMS::Key',
          Properties: {
            KeyPolicy: { Statement: [{ Principal: { AWS: { Ref: 'AWS::AccountId' } } }] },
            Tags: [{ Key: 'a', Value: 'b' }],
          },
        },
        Topic: { Type: 'AWS::SNS::Topic', Properties: { Tags: [{ Key: 'a', Value: 'b' }] } },
      },
    };
    const before = structuredClone(template);

    const forMoto = templateForMoto(template);

    expect(template).toEqual(before);
    expect(forMoto.Resources.Topic).toBe(template.Resources.Topic);
    expect(forMoto.Resources.Key?.Properties).toEqual({
      KeyPolicy: { 'Fn::Join': ['', ['{"Statement":[{"Principal":{"AWS":"', { Ref: 'AWS::AccountId' }, '"}}]}']] },
      Tags: [{ TagKey: 'a', TagValue: 'b' }],
    });
  });
});
