import { describe, expect, it } from 'vitest';
import { PreconditionFailedError } from '../../../src/domain/errors';
import {
  KEY_POLICY_MAX_BYTES,
  SUCCESSOR_ACTIONS,
  SUCCESSOR_STATEMENT_SID,
  successorPolicy,
} from '../../../src/domain/successor-policy';

const ROLE = 'arn:aws:iam::111122223333:role/kms-rotation-prod-rotate';
const KEY = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ROOT = {
  Sid: 'EnableIamPoliciesOfThisAccount',
  Effect: 'Allow',
  Principal: { AWS: 'arn:aws:iam::111122223333:root' },
  Action: 'kms:*',
  Resource: '*',
};
const OURS = {
  Sid: SUCCESSOR_STATEMENT_SID,
  Effect: 'Allow',
  Principal: { AWS: ROLE },
  Action: [...SUCCESSOR_ACTIONS],
  Resource: '*',
};

describe('Function: successorPolicy', () => {
  it("keeps every statement of the predecessor's policy and adds the rotate role's, which allows PutKeyPolicy for the lockout safety check", () => {
    // Act
    const policy = JSON.parse(successorPolicy(KEY, JSON.stringify({ Version: '2012-10-17', Statement: [ROOT] }), ROLE));

    // Assess
    expect(policy).toEqual({ Version: '2012-10-17', Statement: [ROOT, OURS] });
    expect(OURS.Action).toContain('kms:PutKeyPolicy');
  });

  it('replaces the statement an earlier rotation added instead of adding a second, when the predecessor was itself a successor', () => {
    // Prepare
    const earlier = { ...OURS, Principal: { AWS: 'arn:aws:iam::111122223333:role/old-rotate' }, Action: ['kms:Sign'] };

    // Act
    const policy = JSON.parse(successorPolicy(KEY, JSON.stringify({ Statement: [ROOT, earlier] }), ROLE));

    // Assess
    expect(policy.Statement).toEqual([ROOT, OURS]);
  });

  it('reads a policy whose Statement is a single object', () => {
    // Act
    const policy = JSON.parse(successorPolicy(KEY, JSON.stringify({ Statement: ROOT }), ROLE));

    // Assess
    expect(policy.Statement).toEqual([ROOT, OURS]);
  });

  it.each([
    ['is not JSON', 'not a policy', /is not JSON/],
    ['is not a document', '[1,2]', /is not a policy document/],
    [
      'leaves no room for the statement',
      JSON.stringify({ Statement: [{ ...ROOT, Sid: 'x'.repeat(KEY_POLICY_MAX_BYTES) }] }),
      /leaves no room/,
    ],
  ])('refuses a policy that %s, naming the key', (_, policy, message) => {
    // Act
    const attempt = () => successorPolicy(KEY, policy, ROLE);

    // Assess
    expect(attempt).toThrow(PreconditionFailedError);
    expect(attempt).toThrow(message);
    expect(attempt).toThrow(KEY);
  });
});
