import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../scripts/lib/stack';

const ACCOUNTS = 3;
const REGIONS = 2;
const KEYS = 10;
const LARGE_KEYS = 25;
const CONCURRENCY = 3;

interface OrgRun {
  run: string;
  items: number;
  concurrency: number;
  peakConcurrency: number;
  retried: number;
  auditCompleted: number;
  expectedKeys: number;
  keysAudited: number;
  everyKeyCounted: boolean;
  failedItems: string[];
  aloneKeysAudited: number;
  throttlesMet: number;
  peakRssMiBPerWorkerMax: number;
}

/**
 * `npm run bench:org` at a tiny size, so that CI proves the command works: the packaged organization
 * audit over 3 accounts x 2 Regions, each account-Region answered by the proxy with a fleet of its own
 * (one of them larger), and its results file names one AuditCompleted that totals every key.
 * It checks what was counted, never a time.
 */
describe('Command: npm run bench:org (the organization audit bench)', () => {
  it('audits every account-Region of a tiny organization and writes results in which one AuditCompleted counts every key', async () => {
    const dir = join(PROJECT_ROOT, '.tmp', 'bench-org-test');
    mkdirSync(dir, { recursive: true });
    const resultsPath = join(dir, 'results.json');
    rmSync(resultsPath, { force: true });
    await promisify(execFile)(join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'), ['bench/organization.ts'], {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        BENCH_ORG_ACCOUNTS: String(ACCOUNTS),
        BENCH_ORG_REGIONS: String(REGIONS),
        BENCH_ORG_KEYS: String(KEYS),
        BENCH_ORG_LARGE_KEYS: String(LARGE_KEYS),
        BENCH_ORG_CONCURRENCY: String(CONCURRENCY),
        BENCH_ORG_RESULTS: resultsPath,
      },
      maxBuffer: 50_000_000,
    });
    const results = JSON.parse(readFileSync(resultsPath, 'utf8')) as { concurrency: number; runs: OrgRun[] };

    expect(results.concurrency).toBe(CONCURRENCY);
    const items = ACCOUNTS * REGIONS;
    expect(results.runs.map((run) => run.run)).toEqual(['uniform', 'one large account-Region']);
    const [uniform, large] = results.runs as [OrgRun, OrgRun];
    expect(uniform).toMatchObject({ items, expectedKeys: items * KEYS, keysAudited: items * KEYS });
    // The larger account-Region is counted as its own fleet: the proxy answers per account-Region.
    expect(large).toMatchObject({
      items,
      expectedKeys: (items - 1) * KEYS + LARGE_KEYS,
      keysAudited: (items - 1) * KEYS + LARGE_KEYS,
      aloneKeysAudited: LARGE_KEYS,
    });
    expect(uniform.aloneKeysAudited).toBe(KEYS);
    for (const run of results.runs) {
      expect(run.auditCompleted, run.run).toBe(1);
      expect(run.everyKeyCounted, run.run).toBe(true);
      expect(run.failedItems, run.run).toEqual([]);
      expect(run.peakConcurrency, run.run).toBeLessThanOrEqual(CONCURRENCY);
      expect(run.peakRssMiBPerWorkerMax, run.run).toBeGreaterThan(0);
    }
  }, 240_000);
});
