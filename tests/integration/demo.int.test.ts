import { beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from './support/run-command';

/** What `npm run demo` printed, and how it ended. */
const runDemo = async (): Promise<{ exitCode: number; output: string }> => {
  const { exitCode, stdout, stderr } = await runCommand('npx', ['tsx', 'scripts/demo.ts']);
  return { exitCode, output: `${stdout}${stderr}` };
};

/**
 * Issue 13, "A demo of every function": `npm run demo` (the README's first command, after
 * `npm ci`) shows the whole service on the emulator. Run as a newcomer runs it; each step must
 * end as it says.
 */
describe('npm run demo', () => {
  let demo: { exitCode: number; output: string };

  beforeAll(async () => {
    demo = await runDemo();
  }, 600_000);

  it('ends well, stopping the emulator', () => {
    expect(demo.exitCode, demo.output.slice(-4000)).toBe(0);
    expect(demo.output).toContain('✓ moto server stopped');
  });

  it('shows each function at work, in order', () => {
    const headings = demo.output.split('\n').filter((line) => line.startsWith('== '));
    expect(headings).toEqual([
      '== Local AWS ==',
      '== 1. An on-demand rotation, validated ==',
      '== 2. An alias-swap of a signing key (KMS cannot rotate asymmetric keys itself) ==',
      '== 3. A drift: someone switches rotation off ==',
      '== 4. An audit of a small mixed fleet ==',
      '== Notifications (SNS -> subscribed queue) ==',
      '== Metrics (CloudWatch embedded metric format, from the function logs) ==',
      '== Timeline ==',
    ]);
  });

  it('validates the on-demand rotation twice (rotate, then onRotation), and old data still decrypts', () => {
    expect(demo.output).toMatch(/✓ rotate: Rotated [0-9a-f-]+ on demand and validated the new key material/);
    expect(demo.output).toMatch(/✓ onRotation: Rotation of alias\/app\/secure-key validated/);
    expect(demo.output).toContain('still decrypts: "order #1042: card ending 4242"');
  });

  it('swaps the signing key; the old signature verifies by its key id, not through the alias', () => {
    expect(demo.output).toMatch(/✓ rotate: Rotated [0-9a-f-]+ by alias-swap to [0-9a-f-]+/);
    expect(demo.output).toMatch(/verifies with its key id [0-9a-f-]+: true/);
    expect(demo.output).toMatch(/it does not \((false|KMSInvalidSignatureException)\)/);
  });

  it('tells the drift with who made it, then puts it back in remediate mode', () => {
    expect(demo.output).toMatch(/✓ onKeyActivity: DisableKeyRotation: automatic rotation is disabled/);
    expect(demo.output).toContain('user/Alice');
    expect(demo.output).toMatch(/in remediate mode: \[\{.*"status":"remediated"/);
    expect(demo.output).toContain('is on again: true');
  });

  it("audits the fleet: the team's key is reported, the excepted key suppressed with its owner, both in Security Hub", () => {
    expect(demo.output).toMatch(/WARNING\s+rotation-enabled\s+automatic rotation is off/);
    expect(demo.output).toMatch(/SUPPRESSED rotation-enabled .*"owner":"team-x"/);
    expect(demo.output).toMatch(/\[(INFO|WARNING|CRITICAL)\] AuditCompleted/);
    expect(demo.output).toContain('✓ Security Hub holds 2 open finding(s) of the audit, one per key and rule (ASFF)');
    expect(demo.output).toContain('✓ and 1 resolved: the drift of step 3');
    expect(demo.output).toMatch(/MEDIUM\s+RESOLVED\s+.*\/rotation-enabled\)/);
    expect(demo.output).toMatch(
      /MEDIUM\s+NEW\s+.*\(kms-rotation\/123456789012\/us-east-1\/[0-9a-f-]+\/rotation-enabled\)/,
    );
    expect(demo.output).toMatch(/MEDIUM\s+SUPPRESSED\s+.*\/rotation-enabled\)/);
  });
});
