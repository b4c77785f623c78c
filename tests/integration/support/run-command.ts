import { spawn } from 'node:child_process';

/**
 * Runs a command from the project root as a person would at a terminal, with nothing piped in
 * (serverless reads a payload from stdin when stdin is not a terminal and no --data is given),
 * and resolves with how it ended and what it printed.
 */
export const runCommand = (
  command: string,
  args: readonly string[],
): Promise<{ exitCode: number; stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ exitCode: code ?? -1, stdout, stderr }));
  });
