/**
 * `npm run bench`: what the service costs, measured on this machine, against moto server
 * behind the loopback AWS proxy. Prints a table and writes bench/results.json. Reports only;
 * never fails the build on a figure.
 *
 *   BENCH_INIT_RUNS       fresh Node processes per bundle for the init-time median (default 15)
 *   BENCH_LATENCY_MS      injected per-call latency for the round-trip counts (default 50)
 *   BENCH_AUDIT_SIZES     fleet sizes for the audit benchmark (default "1000,10000"; "none" skips it)
 *   BENCH_QUOTA_SCALE     scale of the KMS quotas the proxy enforces (default 1 = the real quotas)
 *   BENCH_THROTTLE_KEYS   fleet size for the audit paced at and above the quotas (default 1000; "none" skips it)
 *   BENCH_THROTTLE_PACES  the paces of those audits, as multiples of each quota (default "1,1.2"): 1 is
 *                         auditQuotaShare=1; above 1 goes through auditRateLimits, since the share stops at 1
 *   BENCH_OTHERS_SHARE    share of each KMS quota simulated other callers take in the proxy (default 0.3)
 *   BENCH_OTHERS_SIZES    fleet sizes audited beside those other callers, one run each (default
 *                         "1000,1000,1000,10000"; "none" skips them)
 *   BENCH_RESULTS         where to write the results (default bench/results.json), e.g. for a trial run
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DisableKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyRotationCommand,
  PutKeyPolicyCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { build } from 'esbuild';
import { type AwsProxy, kmsQuotaLimits, startAwsProxy } from '../scripts/lib/aws-proxy';
import { startMoto } from '../scripts/lib/emulator';
import { invokeBundled } from '../scripts/lib/invoke';
import { serviceQuotasGap } from '../scripts/lib/kms-gaps/service-quotas';
import { kmsUsage, usageMetricsGap } from '../scripts/lib/kms-gaps/usage-metrics';
import { emulatorClients, rotationEvent } from '../scripts/lib/local-aws';
import {
  type DeployedStack,
  deployToMoto,
  type PackagedService,
  PROJECT_ROOT,
  packageService,
} from '../scripts/lib/stack';

const INIT_RUNS = Number(process.env.BENCH_INIT_RUNS ?? 15);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 50);
const AUDIT_SIZES = (process.env.BENCH_AUDIT_SIZES ?? '1000,10000')
  .split(',')
  .map(Number)
  .filter((size) => size > 0);
const QUOTA_SCALE = Number(process.env.BENCH_QUOTA_SCALE ?? 1);
const THROTTLE_KEYS = Number(process.env.BENCH_THROTTLE_KEYS ?? 1000) || 0;
const THROTTLE_PACES = (process.env.BENCH_THROTTLE_PACES ?? '1,1.2')
  .split(',')
  .map(Number)
  .filter((pace) => pace > 0);
const OTHERS_SHARE = Number(process.env.BENCH_OTHERS_SHARE ?? 0.3);
const OTHERS_SIZES = (process.env.BENCH_OTHERS_SIZES ?? '1000,1000,1000,10000')
  .split(',')
  .map(Number)
  .filter((size) => size > 0);
const REGION = 'us-east-1';
const WORK = join(PROJECT_ROOT, '.tmp', 'bench');
const RESULTS = resolve(PROJECT_ROOT, process.env.BENCH_RESULTS ?? join('bench', 'results.json'));

/** What each function's module scope constructs: the baseline is a bundle that does only that. */
const BASELINE_IMPORTS: Record<string, string[]> = {
  onRotation: [
    'client-kms:KMSClient',
    'client-sns:SNSClient',
    'client-ssm:SSMClient',
    'client-dynamodb:DynamoDBClient',
  ],
  rotate: [
    'client-kms:KMSClient',
    'client-kms:KMSClient',
    'client-resource-groups-tagging-api:ResourceGroupsTaggingAPIClient',
    'client-sns:SNSClient',
    'client-ssm:SSMClient',
    'client-dynamodb:DynamoDBClient',
  ],
  onKeyActivity: [
    'client-kms:KMSClient',
    'client-resource-groups-tagging-api:ResourceGroupsTaggingAPIClient',
    'client-sns:SNSClient',
    'client-ssm:SSMClient',
    'client-dynamodb:DynamoDBClient',
  ],
  audit: [
    'client-kms:KMSClient',
    'client-lambda:LambdaClient',
    'client-sns:SNSClient',
    'client-ssm:SSMClient',
    'client-dynamodb:DynamoDBClient',
  ],
  selfTest: [
    'client-kms:KMSClient',
    'client-kms:KMSClient',
    'client-resource-groups-tagging-api:ResourceGroupsTaggingAPIClient',
    'client-sns:SNSClient',
    'client-dynamodb:DynamoDBClient',
  ],
};

const ENV = {
  AWS_REGION: REGION,
  TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:bench',
  STATE_PARAMETER_PREFIX: '/kms-rotation/bench/keys',
  SELF_TEST_ROLE_NAME: 'kms-rotation-bench-SelfTestRole',
  ROTATE_ROLE_NAME: 'kms-rotation-bench-RotateRole',
  LEASE_TABLE: 'kms-rotation-bench-key-leases',
  ALIAS_SCOPE: 'alias/app/*,alias/bench/*',
  POWERTOOLS_SERVICE_NAME: 'kms-rotation',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
};

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

const node22 = join(PROJECT_ROOT, 'node_modules', '.bin', 'node');

/**
 * Median time to load each of two bundles (module initialisation) in fresh Node processes, the
 * samples taken in turns after one discarded warm-up each, so that a machine growing busier or
 * quieter during the measurement weighs on both alike.
 */
const initMsPair = (bundle: string, baseline: string, deployedEnv: Record<string, string>): [number, number] => {
  const probe = (file: string) =>
    Number(
      execFileSync(
        node22,
        [
          '-e',
          `const t=process.hrtime.bigint();require(${JSON.stringify(file)});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`,
        ],
        { env: { ...process.env, ...ENV, ...deployedEnv }, encoding: 'utf8' },
      ),
    );
  probe(bundle);
  probe(baseline);
  const own: number[] = [];
  const base: number[] = [];
  for (let run = 0; run < INIT_RUNS; run += 1) {
    own.push(probe(bundle));
    base.push(probe(baseline));
  }
  return [median(own), median(base)];
};

/**
 * The function's environment as deployed, where it changes how Node loads the bundle: the
 * template's literal variables that Node reads (`NODE_OPTIONS`). The bundle and its baseline
 * are both loaded with them, as Lambda would load each.
 */
const nodeEnvironmentOf = (pkg: PackagedService, fn: string): Record<string, string> => {
  const logicalId = pkg.functions[fn]?.logicalId as string;
  const resource = (pkg.template.Resources as Record<string, { Properties?: Record<string, unknown> }>)[logicalId];
  const variables = (resource?.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)
    ?.Variables;
  return Object.fromEntries(
    Object.entries(variables ?? {}).filter(
      (entry): entry is [string, string] => entry[0].startsWith('NODE_') && typeof entry[1] === 'string',
    ),
  );
};

const baselineBundle = async (fn: string): Promise<string> => {
  const lines = (BASELINE_IMPORTS[fn] ?? []).map((spec, index) => {
    const [pkg, name] = spec.split(':');
    return `const { ${name}: C${index} } = require('@aws-sdk/${pkg}'); new C${index}({ requestHandler: { requestTimeout: 5000 } });`;
  });
  const entry = join(WORK, `baseline-${fn}.js`);
  writeFileSync(
    entry,
    [
      ...lines,
      "const { Logger } = require('@aws-lambda-powertools/logger'); new Logger();",
      "const { Metrics } = require('@aws-lambda-powertools/metrics'); new Metrics();",
      'exports.handler = async () => ({});',
    ].join('\n'),
  );
  const outfile = join(WORK, `baseline-${fn}.bundle.js`);
  await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    outfile,
    logLevel: 'silent',
  });
  return outfile;
};

const unzipBundle = (zip: string, fn: string): string => {
  const dir = join(WORK, `bundle-${fn}`);
  execFileSync('python3', ['-m', 'zipfile', '-e', zip, dir]);
  return dir;
};

interface FlowFigure {
  flow: string;
  awsCalls: number;
  /** The longest chain of calls each of which started after the previous one answered. */
  sequentialRoundTrips: number;
  wallMs: number;
  wallOverLatency: number;
  /** What the run found, where that is the point of the flow (the drift rules). */
  found?: string;
}

/** Length of the longest chain of calls where each starts only after the one before it ended. */
const longestSequentialChain = (calls: readonly { startedAt: number; endedAt: number }[]): number => {
  const sorted = [...calls].sort((a, b) => a.startedAt - b.startedAt);
  const depth = sorted.map(() => 1);
  for (let i = 0; i < sorted.length; i += 1) {
    for (let j = 0; j < i; j += 1) {
      if ((sorted[j] as { endedAt: number }).endedAt <= (sorted[i] as { startedAt: number }).startedAt) {
        depth[i] = Math.max(depth[i] as number, (depth[j] as number) + 1);
      }
    }
  }
  return Math.max(0, ...depth);
};

/** AWS calls made, their sequential round trips, and wall time from the first call to the last answer. */
const measureFlow = async (
  proxy: AwsProxy,
  flow: string,
  run: () => Promise<{ ok: boolean; result?: unknown }>,
  found?: (result: unknown) => string,
): Promise<FlowFigure> => {
  proxy.reset();
  const outcome = await run();
  const calls = proxy.calls();
  const wallMs =
    calls.length === 0
      ? 0
      : Math.max(...calls.map((call) => call.endedAt)) - Math.min(...calls.map((call) => call.startedAt));
  if (!outcome.ok) throw new Error(`flow ${flow} failed: ${JSON.stringify(outcome)}`);
  return {
    flow,
    awsCalls: calls.length,
    sequentialRoundTrips: longestSequentialChain(calls),
    wallMs: Math.round(wallMs),
    wallOverLatency: Math.round((wallMs / LATENCY_MS) * 10) / 10,
    ...(found ? { found: found(outcome.ok ? outcome.result : undefined) } : {}),
  };
};

const main = async (): Promise<void> => {
  mkdirSync(WORK, { recursive: true });
  const results: Record<string, unknown> = {
    measuredAt: new Date().toISOString(),
    node: process.version,
    machine: `${execFileSync('nproc').toString().trim()} cores`,
  };

  // 1. Bundles: size and module initialisation against a baseline that only constructs the same clients.
  const pkg = await packageService({
    stage: 'bench',
    region: REGION,
    outDir: join('.tmp', 'bench', 'package'),
    params: { aliasScope: 'alias/app/*,alias/bench/*' },
  });
  const bundles: Record<string, unknown>[] = [];
  for (const [fn, zip] of Object.entries(pkg.functionZips)) {
    const handlerFile = join(
      unzipBundle(zip, fn),
      'handlers',
      `${fn.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}.js`,
    );
    const code = readFileSync(handlerFile);
    const baseline = await baselineBundle(fn);
    const deployedEnv = nodeEnvironmentOf(pkg, fn);
    const [own, base] = initMsPair(handlerFile, baseline, deployedEnv);
    // Measured again without them only when there are any: otherwise it is the same measurement.
    const [bareOwn, bareBase] =
      Object.keys(deployedEnv).length > 0 ? initMsPair(handlerFile, baseline, {}) : [own, base];
    bundles.push({
      function: fn,
      rawKiB: Math.round(code.length / 1024),
      gzipKiB: Math.round(gzipSync(code).length / 1024),
      baselineRawKiB: Math.round(readFileSync(baseline).length / 1024),
      deployedNodeEnv: Object.entries(deployedEnv)
        .map(([name, value]) => `${name}=${value}`)
        .join(' '),
      initMs: Math.round(own * 10) / 10,
      baselineInitMs: Math.round(base * 10) / 10,
      ratio: Math.round((own / base) * 100) / 100,
      ratioWithoutNodeEnv: Math.round((bareOwn / bareBase) * 100) / 100,
    });
  }
  results.bundles = bundles;
  console.log(
    "\nBundles (module initialisation: median of fresh Node processes, with each function's deployed NODE_ environment; then without it)",
  );
  console.table(bundles);

  // 2. Flows: calls and sequential round trips at the injected latency.
  const emulator = await startMoto();
  try {
    const stack: DeployedStack = await deployToMoto({
      endpoint: emulator.endpoint,
      region: REGION,
      stackName: 'kms-rotation-bench',
      pkg,
    });
    const clients = emulatorClients(emulator.endpoint, REGION);
    const proxy = await startAwsProxy({ target: emulator.endpoint, latencyMs: LATENCY_MS });
    const invoke = (fn: string, event: unknown) =>
      invokeBundled({
        endpoint: proxy.endpoint,
        region: REGION,
        fn: stack.functions[fn] as DeployedStack['functions'][string],
        event,
      });
    const keyId = stack.outputs.KeyId as string;
    const keyArn = stack.outputs.KeyArn as string;
    const managed = async (keySpec: 'RSA_2048' | 'SYMMETRIC_DEFAULT', alias: string) => {
      const { KeyMetadata } = await clients.kms.send(
        new CreateKeyCommand({
          KeySpec: keySpec,
          KeyUsage: keySpec === 'RSA_2048' ? 'SIGN_VERIFY' : 'ENCRYPT_DECRYPT',
          Tags: [
            { TagKey: 'kms-rotation:managed', TagValue: 'true' },
            { TagKey: 'kms-rotation:aliases', TagValue: alias },
          ],
        }),
      );
      await clients.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: KeyMetadata?.KeyId }));
      return KeyMetadata?.KeyId as string;
    };
    const flows: FlowFigure[] = [];
    await clients.kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    flows.push(
      await measureFlow(proxy, 'onRotation', () =>
        invoke('onRotation', rotationEvent({ keyId, keyArn, time: new Date(), rotationType: 'ON_DEMAND' })),
      ),
    );
    flows.push(
      await measureFlow(proxy, 'rotate on-demand', () =>
        invoke('rotate', { key: 'alias/app/secure-key', force: true }),
      ),
    );
    await managed('RSA_2048', 'alias/bench/rsa');
    flows.push(
      await measureFlow(proxy, 'rotate alias-swap (RSA, named by alias)', () =>
        invoke('rotate', { key: 'alias/bench/rsa' }),
      ),
    );
    const rsaById = await managed('RSA_2048', 'alias/bench/rsa-by-id');
    flows.push(
      await measureFlow(proxy, 'rotate alias-swap (RSA, named by key id)', () => invoke('rotate', { key: rsaById })),
    );
    // The successor in turn: its lineage is read first, to tell a finished rotation from one to resume.
    flows.push(
      await measureFlow(proxy, 'rotate alias-swap (RSA, rotated before)', () =>
        invoke('rotate', { key: 'alias/bench/rsa', force: true }),
      ),
    );
    const trail = (eventName: string, requestParameters: Record<string, unknown>) => ({
      version: '0',
      id: crypto.randomUUID(),
      'detail-type': 'AWS API Call via CloudTrail',
      source: 'aws.kms',
      account: '123456789012',
      time: new Date().toISOString(),
      region: REGION,
      resources: [],
      detail: {
        eventSource: 'kms.amazonaws.com',
        eventName,
        eventTime: new Date().toISOString(),
        eventID: crypto.randomUUID(),
        userIdentity: { type: 'IAMUser', arn: 'arn:aws:iam::123456789012:user/Alice' },
        requestParameters,
      },
    });
    const rulesFound = (result: unknown) =>
      [...new Set((result as { findings: { rule: string }[] }).findings.map((item) => item.rule))].join(', ') || 'none';
    // One drift per rule, each on a key of its own: the change made for real, then its CloudTrail event.
    const drifts: { rule: string; drift: (keyId: string, alias: string) => Promise<Record<string, unknown>> }[] = [
      {
        rule: 'rotation disabled',
        drift: async (keyId) => {
          await clients.kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));
          return trail('DisableKeyRotation', { keyId });
        },
      },
      {
        rule: 'declared alias re-pointed',
        drift: async (_keyId, alias) => {
          await clients.kms.send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
          return trail('UpdateAlias', { aliasName: alias, targetKeyId: keyId });
        },
      },
      {
        rule: 'undeclared alias',
        drift: async (target, alias) => {
          const aliasName = `${alias}-sneaky`;
          await clients.kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: target }));
          return trail('CreateAlias', { aliasName, targetKeyId: target });
        },
      },
      {
        rule: 'key disabled',
        drift: async (target) => {
          await clients.kms.send(new DisableKeyCommand({ KeyId: target }));
          return trail('DisableKey', { keyId: target });
        },
      },
      {
        rule: 'key scheduled for deletion',
        drift: async (target) => {
          await clients.kms.send(new ScheduleKeyDeletionCommand({ KeyId: target, PendingWindowInDays: 7 }));
          return trail('ScheduleKeyDeletion', { keyId: target, pendingWindowInDays: 7 });
        },
      },
      {
        rule: 'policy opened to everyone',
        drift: async (target) => {
          const policy = {
            Version: '2012-10-17',
            Statement: [
              { Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::123456789012:root' }, Action: 'kms:*', Resource: '*' },
              { Effect: 'Allow', Principal: { AWS: '*' }, Action: 'kms:Decrypt', Resource: '*' },
            ],
          };
          await clients.kms.send(
            new PutKeyPolicyCommand({ KeyId: target, PolicyName: 'default', Policy: JSON.stringify(policy) }),
          );
          return trail('PutKeyPolicy', { keyId: target, policyName: 'default' });
        },
      },
    ];
    for (const [index, { rule, drift }] of drifts.entries()) {
      const alias = `alias/bench/drift-${index}`;
      const drifting = await managed('SYMMETRIC_DEFAULT', alias);
      await clients.kms.send(new EnableKeyRotationCommand({ KeyId: drifting }));
      const event = await drift(drifting, alias);
      flows.push(await measureFlow(proxy, `onKeyActivity: ${rule}`, () => invoke('onKeyActivity', event), rulesFound));
    }
    flows.push(await measureFlow(proxy, 'audit (a few keys)', () => invoke('audit', {})));
    results.flows = flows;
    console.log(
      `\nFlows (AWS calls; sequential round trips; wall time, also over the ${LATENCY_MS} ms injected latency)`,
    );
    console.table(flows);
    await proxy.stop();

    // 3. The audit at fleet scale: synthetic keys answered by the proxy (moto cannot serve KMS's
    //    rates), KMS's request quotas enforced by the proxy, the audit's own pacing as deployed.
    const quotas = kmsQuotaLimits(QUOTA_SCALE);
    /**
     * One audit of `size` synthetic keys through a fresh proxy that enforces the quotas. With
     * `othersShare`, simulated other callers take that share of each quota every second, and the
     * proxy answers the audit's reads of the account's usage (AWS/Usage CallCount) and quotas
     * (Service Quotas); without, those reads reach moto, which cannot answer them, and the audit
     * paces to its fixed share.
     */
    const auditFleetOf = async (size: number, env?: Record<string, string>, othersShare?: number) => {
      const usage = othersShare === undefined ? undefined : kmsUsage(quotas, othersShare);
      const fleet = await startAwsProxy({
        target: emulator.endpoint,
        rateLimits: quotas,
        latencyMs: 5,
        syntheticKeys: size,
        ...(usage ? { usage, gaps: [usageMetricsGap(usage), serviceQuotasGap(quotas)] } : {}),
      });
      try {
        const started = performance.now();
        const outcome = await invokeBundled({
          endpoint: fleet.endpoint,
          region: REGION,
          fn: stack.functions.audit as DeployedStack['functions'][string],
          event: {},
          ...(env ? { env } : {}),
          timeoutMs: 900_000,
        });
        const seconds = (performance.now() - started) / 1000;
        // Until the first KMS call: the process's start, its init, and the reads of the account's usage.
        // From it to the last KMS answer: the keys/s the audit kept while auditing.
        const kmsCalls = fleet.calls().filter((call) => call.api in quotas);
        const firstKmsCall = Math.min(...kmsCalls.map((call) => call.startedAt));
        const lastKmsAnswer = Math.max(...kmsCalls.map((call) => call.endedAt));
        const report = outcome.ok
          ? (outcome.result as { complete: boolean; totals: { keysAudited: number; nonCompliantKeys: number } })
          : undefined;
        const keysAudited = report?.totals.keysAudited ?? 0;
        // Every synthetic key is symmetric, so each needs one ListKeyRotations: its quota is the
        // ceiling, less what the other callers take of it.
        const ceiling = (quotas.ListKeyRotations as number) * (1 - (othersShare ?? 0));
        const keysPerSecond = keysAudited / seconds;
        return {
          outcome,
          report,
          keysAudited,
          counts: fleet.counts(),
          figures: {
            seconds: Math.round(seconds * 10) / 10,
            untilFirstKmsCallSeconds: Math.round((firstKmsCall - started) / 100) / 10,
            keysPerSecondWhileAuditing: Math.round(keysAudited / ((lastKmsAnswer - firstKmsCall) / 1000)),
            keysPerSecond: Math.round(keysPerSecond),
            ceilingKeysPerSecond: ceiling,
            ofCeiling: `${Math.round((keysPerSecond / ceiling) * 100)}%`,
          },
          throttles: fleet.throttled(),
          peakRssMiB: outcome.maxRssKb ? Math.round(outcome.maxRssKb / 1024) : 'n/a',
        };
      } finally {
        await fleet.stop();
      }
    };

    const audits: Record<string, unknown>[] = [];
    for (const size of AUDIT_SIZES) {
      const run = await auditFleetOf(size);
      if (!run.outcome.ok) throw new Error(`audit of ${size} keys failed: ${run.outcome.error.message}`);
      audits.push({
        keys: size,
        audited: run.keysAudited,
        describedOnce: run.counts.DescribeKey === size,
        nonCompliant: run.report?.totals.nonCompliantKeys,
        complete: run.report?.complete,
        ...run.figures,
        throttlesAbsorbed: run.throttles,
        peakRssMiB: run.peakRssMiB,
      });
    }
    if (audits.length > 0) {
      results.audit = audits;
      console.log(`\nAudit with KMS request quotas enforced (scale ${QUOTA_SCALE})`);
      console.table(audits);
    }

    // 3b. The audit beside other callers that take a share of every quota: it reads what they
    //     leave (AWS/Usage CallCount, Service Quotas) and takes its share of that.
    const besideOthers: Record<string, unknown>[] = [];
    for (const size of OTHERS_SIZES) {
      const run = await auditFleetOf(size, undefined, OTHERS_SHARE);
      besideOthers.push({
        keys: size,
        othersTake: `${Math.round(OTHERS_SHARE * 100)}%`,
        audited: run.keysAudited,
        failedKeys: size - run.keysAudited,
        complete: run.report?.complete,
        ...(run.outcome.ok ? {} : { error: run.outcome.error.message }),
        ...run.figures,
        throttlesMet: run.throttles,
        usageReads: run.counts.GetMetricData ?? 0,
        quotaReads: run.counts.ListServiceQuotas ?? 0,
        peakRssMiB: run.peakRssMiB,
      });
    }
    if (besideOthers.length > 0) {
      results.auditBesideOthers = besideOthers;
      console.log(
        `\nAudit beside other callers taking ${OTHERS_SHARE} of each quota (scale ${QUOTA_SCALE}; of ceiling = of what they leave)`,
      );
      console.table(besideOthers);
    }

    // 4. The audit paced at the full quota and above it, so that the proxy throttles it: the
    //    throttles it meets must be absorbed (each API's bucket slows, the SDK retries) without a
    //    failed key. No other callers and no usage gaps: the audit paces to its fixed share.
    const atQuota: Record<string, unknown>[] = [];
    for (const pace of THROTTLE_KEYS > 0 ? THROTTLE_PACES : []) {
      // auditQuotaShare (AUDIT_QUOTA_SHARE) is the deployed knob, at most 1; a pace above the quota
      // is set through auditRateLimits (AUDIT_RATE_LIMITS), the per-API overrides, as pace x quota.
      const env: Record<string, string> = { AUDIT_QUOTA_SHARE: String(Math.min(pace, 1)) };
      if (pace > 1 || QUOTA_SCALE !== 1) {
        env.AUDIT_RATE_LIMITS = Object.entries(quotas)
          .map(([api, rate]) => `${api}=${Math.round(rate * Math.max(pace, 1) * 1000) / 1000}`)
          .join(',');
      }
      const run = await auditFleetOf(THROTTLE_KEYS, env);
      atQuota.push({
        keys: THROTTLE_KEYS,
        pace: `${pace}x quota`,
        audited: run.keysAudited,
        allAudited: run.keysAudited === THROTTLE_KEYS && run.report?.complete === true,
        // The audit reports on every key or fails: keys it did not report on are failed keys.
        failedKeys: THROTTLE_KEYS - run.keysAudited,
        ...(run.outcome.ok ? {} : { error: run.outcome.error.message }),
        ...run.figures,
        throttlesMet: run.throttles,
        listKeyRotationsCalls: run.counts.ListKeyRotations ?? 0,
        describeKeyCalls: run.counts.DescribeKey ?? 0,
        peakRssMiB: run.peakRssMiB,
      });
    }
    if (atQuota.length > 0) {
      results.auditAtQuota = atQuota;
      console.log(`\nAudit paced at and above the KMS request quotas the proxy enforces (scale ${QUOTA_SCALE})`);
      console.table(atQuota);
    }
  } finally {
    await emulator.stop();
  }
  writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nWrote ${relative(PROJECT_ROOT, RESULTS)}`);
};

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
