import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from './support/run-command';

const STAGE = 'itinvoke';
const READY = 'Press Ctrl-C to stop moto.';
const DEPLOY_TIMEOUT_MS = 240_000;

/** What one printed command did: its exit status, and the JSON it printed last (a report, or an error). */
interface CommandOutcome {
  command: string;
  exitCode: number;
  result?: Record<string, unknown>;
  output: string;
}

/** The pretty-printed JSON `serverless invoke local` ends with, after the function's own log lines. */
const lastJsonBlock = (stdout: string): Record<string, unknown> | undefined => {
  const lines = stdout.split('\n');
  const start = lines.lastIndexOf('{');
  if (start < 0) return undefined;
  try {
    return JSON.parse(lines.slice(start).join('\n'));
  } catch {
    return undefined;
  }
};

/** Runs one printed line in bash, in a shell that ran the printed `export` line first, as ops would. */
const runPrinted = async (exportLine: string, command: string): Promise<CommandOutcome> => {
  const { exitCode, stdout, stderr } = await runCommand('bash', ['-c', `${exportLine}\n${command}`]);
  return { command, exitCode, result: lastJsonBlock(stdout), output: `${stdout}\n${stderr}` };
};

/**
 * Issue 13, "Manual invoke, wherever ops try it": `npm run emulator` deploys the stack into moto
 * and prints the commands that invoke each function against it with `serverless invoke local`.
 * This test starts the emulator script itself, reads what it prints, and runs every printed
 * command in bash, as printed, in the printed order: each must end as its step says.
 */
describe('Manual invoke: the commands the emulator prints, run as printed', () => {
  let emulator: ChildProcess;
  let printed = '';
  let exportLine: string;
  let commands: string[];
  const outcomes: CommandOutcome[] = [];

  beforeAll(async () => {
    // Its own process group, so that Ctrl-C reaches the script (which stops moto) through npx.
    emulator = spawn('npx', ['tsx', 'scripts/emulator.ts', 'deploy', '--stage', STAGE], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    emulator.stdout?.on('data', (chunk: Buffer) => {
      printed += chunk.toString();
    });
    emulator.stderr?.on('data', (chunk: Buffer) => {
      printed += chunk.toString();
    });
    const deadline = Date.now() + DEPLOY_TIMEOUT_MS;
    while (!printed.includes(READY)) {
      if (emulator.exitCode !== null || Date.now() > deadline) {
        throw new Error(`the emulator did not get ready:\n${printed.slice(-4000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const lines = printed.split('\n').map((line) => line.trim());
    exportLine = lines.find((line) => line.startsWith('export AWS_ENDPOINT_URL=')) as string;
    const tryIt = lines.findIndex((line) => line.startsWith('Try each function'));
    const describe = lines.find((line) => line.startsWith('aws kms describe-key')) as string;
    commands = [describe, ...lines.slice(tryIt + 1, lines.indexOf(READY)).filter(Boolean)];
    for (const command of commands) outcomes.push(await runPrinted(exportLine, command));
  }, 900_000);

  afterAll(async () => {
    if (emulator && emulator.exitCode === null) {
      const exited = new Promise((resolve) => emulator.once('exit', resolve));
      process.kill(-(emulator.pid as number), 'SIGINT');
      await exited;
    }
  });

  const outcomeOf = (start: string): CommandOutcome => {
    const found = outcomes.find((outcome) => outcome.command.includes(start));
    if (!found) throw new Error(`the emulator printed no command with "${start}":\n${commands.join('\n')}`);
    return found;
  };
  const shown = (outcome: CommandOutcome) =>
    `${outcome.command}\nexit ${outcome.exitCode}\n${outcome.output.slice(-3000)}`;

  it('prints the environment and one command per function, each against this stack', () => {
    expect(exportLine).toMatch(/^export AWS_ENDPOINT_URL=http:\/\/127\.0\.0\.1:\d+ AWS_REGION=us-east-1 /);
    expect(commands.map((command) => command.replace(/ --(data|path) .*$/, ''))).toEqual([
      'aws kms describe-key --key-id alias/app/secure-key',
      `npx serverless invoke local --stage ${STAGE} --region us-east-1 -f rotate`,
      `npx serverless invoke local --stage ${STAGE} --region us-east-1 -f onRotation`,
      expect.stringMatching(/^aws kms disable-key-rotation --key-id [0-9a-f-]{36}$/),
      `npx serverless invoke local --stage ${STAGE} --region us-east-1 -f onKeyActivity`,
      `npx serverless invoke local --stage ${STAGE} --region us-east-1 -f audit`,
      `npx serverless invoke local --stage ${STAGE} --region us-east-1 -f audit`,
      `npx serverless invoke local --stage ${STAGE} --region us-east-1 -f selfTest`,
    ]);
  });

  it("the AWS CLI reaches the stack's key with the printed environment", () => {
    const outcome = outcomeOf('aws kms describe-key');
    expect(outcome.exitCode, shown(outcome)).toBe(0);
    expect(JSON.parse(outcome.output.trim().split('\n\n')[0] ?? '{}')).toMatchObject({
      KeyMetadata: { KeyManager: 'CUSTOMER', KeyState: 'Enabled' },
    });
  });

  it('rotate: a dry run plans the rotation of the stack key, changing nothing', () => {
    const outcome = outcomeOf('-f rotate');
    expect(outcome.exitCode, shown(outcome)).toBe(0);
    expect(outcome.result).toMatchObject({ dryRun: true, requestedKey: 'alias/app/secure-key' });
    expect(['planned', 'nothing-to-do']).toContain(outcome.result?.outcome);
  });

  it("onRotation: validates the stack key's rotation", () => {
    const outcome = outcomeOf('-f onRotation');
    expect(outcome.exitCode, shown(outcome)).toBe(0);
    expect(outcome.result).toMatchObject({ outcome: 'validated', rotationType: 'ON_DEMAND' });
  });

  it('onKeyActivity: tells the drift someone made, naming them', () => {
    expect(outcomeOf('aws kms disable-key-rotation').exitCode, shown(outcomeOf('aws kms'))).toBe(0);
    const outcome = outcomeOf('-f onKeyActivity');
    expect(outcome.exitCode, shown(outcome)).toBe(0);
    expect(outcome.result).toMatchObject({
      outcome: 'drift',
      actor: { type: 'IAMUser', arn: 'arn:aws:iam::123456789012:user/Alice' },
      findings: [expect.objectContaining({ rule: 'rotation-enabled' })],
    });
  });

  it('audit: remediates the drift, then finds the fleet compliant, with no payload meaning no options', () => {
    const [remediating, plain] = outcomes.filter((outcome) => outcome.command.includes('-f audit'));
    expect(remediating?.exitCode, remediating && shown(remediating)).toBe(0);
    expect(remediating?.result).toMatchObject({ remediate: true, totals: { remediated: 1 } });
    expect(plain?.exitCode, plain && shown(plain)).toBe(0);
    expect(plain?.result).toMatchObject({ remediate: false, complete: true, totals: { nonCompliantKeys: 0 } });
  });

  it('selfTest: passes', () => {
    const outcome = outcomeOf('-f selfTest');
    expect(outcome.exitCode, shown(outcome)).toBe(0);
    expect(outcome.result).toMatchObject({ passed: true });
  });

  /**
   * The `serverless invoke` commands the README and docs/ show, each run with `serverless invoke
   * local` against this stack: the same function, the same payload, in the order they are read.
   * (`serverless invoke` without `local` needs Lambda, which moto cannot run here; what differs is
   * the transport, not what the function does with the payload.) Each must answer as the table
   * below says, and every documented command must be in the table.
   */
  it('the invoke commands the README and docs/ show do what they say, run against this stack', async () => {
    const documented = ['README.md', ...readdirSync('docs').map((name) => `docs/${name}`)]
      .filter((file) => file.endsWith('.md'))
      .flatMap((file) =>
        readFileSync(file, 'utf8')
          .split('\n')
          .map((line) => line.replace(/\s+#.*$/, '').trim())
          .filter((line) => /^npx serverless invoke (local )?-f \w+ --stage prod\b/.test(line)),
      );
    const asLocal = (line: string) =>
      line
        .replace(/^npx serverless invoke (local )?/, 'npx serverless invoke local ')
        .replace('--stage prod', `--stage ${STAGE} --region us-east-1`);
    const EXPECTED: [string, (outcome: CommandOutcome) => void][] = [
      [
        '-f rotate --stage prod --data \'{"key":"alias/app/secure-key"}\'',
        (outcome) => {
          expect(outcome.exitCode, shown(outcome)).toBe(0);
          expect(outcome.result).toMatchObject({ strategy: 'on-demand', outcome: 'completed' });
        },
      ],
      [
        '-f rotate --stage prod --data \'{"key":"alias/app/secure-key","strategy":"alias-swap"}\'',
        (outcome) => {
          expect(outcome.exitCode, shown(outcome)).toBe(0);
          expect(outcome.result).toMatchObject({ strategy: 'alias-swap', outcome: 'completed' });
        },
      ],
      ...[
        '{"key":"alias/app/signing-key","reason":"annual rotation"}',
        '{"key":"alias/app/signing-key","dryRun":true}',
        '{"key":"alias/app/signing-key","action":"rollback"}',
      ].map((data): [string, (outcome: CommandOutcome) => void] => [
        `-f rotate --stage prod --data '${data}'`,
        // This stack has no signing key: the request is read, and fails naming what is missing.
        (outcome) => {
          expect(outcome.exitCode, shown(outcome)).toBe(1);
          expect(String(outcome.result?.errorMessage)).toMatch(/alias\/app\/signing-key/);
          expect(String(outcome.result?.errorMessage)).toMatch(/not ?found|does not exist/i);
        },
      ]),
      [
        '-f audit --stage prod',
        (outcome) => {
          expect(outcome.exitCode, shown(outcome)).toBe(0);
          expect(outcome.result).toMatchObject({ remediate: false, complete: true });
        },
      ],
      [
        '-f audit --stage prod --data \'{"remediate":true}\'',
        (outcome) => {
          expect(outcome.exitCode, shown(outcome)).toBe(0);
          expect(outcome.result).toMatchObject({ remediate: true, complete: true });
        },
      ],
      [
        '-f audit --stage prod --data \'{"keyIds":["1234abcd-..."]}\'',
        // A placeholder to fill in: as written it is refused, naming the field, before any AWS call.
        (outcome) => {
          expect(outcome.exitCode, shown(outcome)).toBe(1);
          expect(outcome.result).toMatchObject({
            errorType: 'InvalidInputError',
            errorMessage: expect.stringMatching(/keyIds\.0/),
          });
        },
      ],
      [
        '-f rotate --stage prod --data \'{"key": "alias/app/payments", "account": "111111111111", "region": "eu-west-1"}\'',
        // Organization mode only: this stack is single-account, so account is refused, by name, before any AWS call.
        (outcome) => {
          expect(outcome.exitCode, shown(outcome)).toBe(1);
          expect(outcome.result).toMatchObject({
            errorType: 'InvalidInputError',
            errorMessage: expect.stringMatching(
              /^Invalid rotate request: account is accepted in organization mode only/,
            ),
          });
        },
      ],
      [
        '-f onRotation --stage prod -p events/rotation-on-demand.json',
        // The sample names a key this account does not have ("edit key id / ARN ... first").
        (outcome) => {
          expect(outcome.exitCode, shown(outcome)).toBe(1);
          expect(String(outcome.result?.errorMessage)).toMatch(/1234abcd-12ab-34cd-56ef-1234567890ab/);
        },
      ],
      [
        '-f onRotation --stage prod -p events/rotation-legacy-minimal.json',
        (outcome) => {
          expect(outcome.exitCode, shown(outcome)).toBe(1);
          expect(String(outcome.result?.errorMessage)).toMatch(/1234abcd-12ab-34cd-56ef-1234567890ab/);
        },
      ],
      [
        '-f retire --stage prod --data \'{"dryRun":true}\'',
        // The stage's default retireMode (dry-run): a plan of the predecessors the documented
        // alias-swap retired, changing nothing.
        (outcome) => {
          expect(outcome.exitCode, shown(outcome)).toBe(0);
          expect(outcome.result).toMatchObject({ mode: 'dry-run', dryRun: true, examined: expect.any(Number) });
        },
      ],
      [
        '-f retire --stage prod --data \'{"keyId":"1234abcd-..."}\'',
        // A placeholder to fill in: as written it is refused, naming the field, before any AWS call.
        (outcome) => {
          expect(outcome.exitCode, shown(outcome)).toBe(1);
          expect(outcome.result).toMatchObject({
            errorType: 'InvalidInputError',
            errorMessage: expect.stringMatching(/keyId/),
          });
        },
      ],
      [
        '-f selfTest --stage prod',
        (outcome) => {
          expect(outcome.exitCode, shown(outcome)).toBe(0);
          expect(outcome.result).toMatchObject({ passed: true });
        },
      ],
    ];
    const expectationOf = (line: string) => EXPECTED.find(([shape]) => line.endsWith(shape))?.[1];
    expect(
      documented.filter((line) => !expectationOf(line)),
      'documented commands with no expectation here',
    ).toEqual([]);
    expect(documented.length).toBeGreaterThanOrEqual(EXPECTED.length);
    for (const line of new Set(documented)) {
      const outcome = await runPrinted(exportLine, asLocal(line));
      (expectationOf(line) as (outcome: CommandOutcome) => void)(outcome);
    }
  }, 600_000);

  it('an error keeps its class name in the bundle: a rotate without a payload is an InvalidInputError naming key', async () => {
    const outcome = await runPrinted(
      exportLine,
      `npx serverless invoke local --stage ${STAGE} --region us-east-1 -f rotate`,
    );
    expect(outcome.exitCode).toBe(1);
    expect(outcome.result).toMatchObject({
      errorType: 'InvalidInputError',
      errorMessage: expect.stringMatching(/^Invalid rotate request: key /),
    });
  });
});
