/**
 * `npm run bench:org`: the organization audit (docs/org-audit.md) as it runs, at organization
 * scale, on this machine. The stage is packaged in organization mode and deployed into moto; an
 * organization with accounts in an OU is made in moto Organizations; the packaged `orgAudit`
 * queues one message per account-Region on the deployed queue, and the SQS event-source stand-in
 * (scripts/lib/sqs-event-source.ts) drives the packaged `orgAuditItem` from it, a fresh process
 * per invocation, never more at once than the template's MaximumConcurrency. Every call goes
 * through the proxy, which answers each account-Region's KMS reads with a synthetic fleet of its
 * own and enforces KMS's quotas per account and Region (scripts/lib/kms-gaps/synthetic-accounts.ts).
 * Reports only; never fails on a figure. Writes bench/organization-results.json.
 *
 *   BENCH_ORG_ACCOUNTS     member accounts in the OU (default 12)
 *   BENCH_ORG_REGIONS      Regions of the stage, the first n of a fixed list (default 2)
 *   BENCH_ORG_KEYS         synthetic keys per account-Region (default 100)
 *   BENCH_ORG_CONCURRENCY  the stage's orgAuditConcurrency, the mapping's MaximumConcurrency (default 4)
 *   BENCH_ORG_LARGE_KEYS   a second run where one account-Region holds this many keys, the others
 *                          BENCH_ORG_KEYS (default 10 x BENCH_ORG_KEYS; 0 skips it)
 *   BENCH_QUOTA_SCALE      scale of the KMS quotas the proxy enforces, and the audit paces to (default 0.1)
 *   BENCH_ORG_RESULTS      where to write the results (default bench/organization-results.json)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { LambdaClient, ListEventSourceMappingsCommand, UpdateEventSourceMappingCommand } from '@aws-sdk/client-lambda';
import {
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  DescribeCreateAccountStatusCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';
import { kmsQuotaLimits, startAwsProxy } from '../scripts/lib/aws-proxy';
import { startMoto } from '../scripts/lib/emulator';
import { type InvokeResult, invokeBundled } from '../scripts/lib/invoke';
import { type AccountRegion, syntheticAccounts } from '../scripts/lib/kms-gaps/synthetic-accounts';
import { emulatorClients, subscribeQueueToTopic } from '../scripts/lib/local-aws';
import { drainQueue } from '../scripts/lib/sqs-event-source';
import { type DeployedStack, deployToMoto, PROJECT_ROOT, packageService } from '../scripts/lib/stack';

const ALL_REGIONS = ['us-east-1', 'eu-west-1', 'us-west-2', 'ap-southeast-2', 'eu-central-1', 'ap-northeast-1'];
const positive = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number >= 0, got ${process.env[name]}`);
  return value;
};
const ACCOUNTS = positive('BENCH_ORG_ACCOUNTS', 12);
const REGIONS = ALL_REGIONS.slice(0, positive('BENCH_ORG_REGIONS', 2));
const KEYS = positive('BENCH_ORG_KEYS', 100);
const CONCURRENCY = positive('BENCH_ORG_CONCURRENCY', 4);
const LARGE_KEYS = positive('BENCH_ORG_LARGE_KEYS', 10 * KEYS);
const QUOTA_SCALE = positive('BENCH_QUOTA_SCALE', 0.1);
const RESULTS = resolve(PROJECT_ROOT, process.env.BENCH_ORG_RESULTS ?? join('bench', 'organization-results.json'));
const CENTRAL_REGION = 'us-east-1';
const CENTRAL_ACCOUNT = '123456789012';
const STAGE = 'benchorg';
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

if (ACCOUNTS < 1 || REGIONS.length < 1 || KEYS < 1)
  throw new Error('BENCH_ORG_ACCOUNTS, _REGIONS and _KEYS must be >= 1');
if (REGIONS.length > ALL_REGIONS.length) throw new Error(`BENCH_ORG_REGIONS: at most ${ALL_REGIONS.length}`);
if (CONCURRENCY < 2 || CONCURRENCY > 1000) throw new Error('BENCH_ORG_CONCURRENCY: 2..1000, as orgAuditConcurrency');

const round1 = (value: number) => Math.round(value * 10) / 10;
const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

interface AuditCompletedDetails {
  totals: { items: number; failedItems: number; keysAudited: number; nonCompliantKeys: number };
  failedItems: { item: string; error: string }[];
}

const main = async (): Promise<void> => {
  const results: Record<string, unknown> = {
    measuredAt: new Date().toISOString(),
    node: process.version,
    machine: `${execFileSync('nproc').toString().trim()} cores`,
    loadAverageAtStart: execFileSync('cat', ['/proc/loadavg']).toString().trim(),
    accounts: ACCOUNTS,
    regions: REGIONS,
    keysPerAccountRegion: KEYS,
    quotaScale: QUOTA_SCALE,
  };
  mkdirSync(join(PROJECT_ROOT, '.tmp', 'bench-org'), { recursive: true });
  const pkg = await packageService({
    stage: STAGE,
    region: CENTRAL_REGION,
    outDir: join('.tmp', 'bench-org', 'package'),
    params: {
      // Packaged for an OU id moto has not made yet: the real one is given at invoke time.
      organizationUnitIds: 'ou-ab12-cdefgh12',
      organizationId: 'o-abcdef1234',
      organizationRegions: REGIONS.join(','),
      orgAuditConcurrency: String(CONCURRENCY),
    },
  });
  const mapping = Object.values(
    pkg.template.Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>,
  ).find((resource) => resource.Type === 'AWS::Lambda::EventSourceMapping');
  if (!mapping) throw new Error('The organization stage has no event source mapping for orgAuditItem');
  const maxConcurrency = (mapping.Properties.ScalingConfig as { MaximumConcurrency: number }).MaximumConcurrency;
  results.concurrency = maxConcurrency;

  const emulator = await startMoto();
  try {
    const stack = await deployToMoto({
      endpoint: emulator.endpoint,
      region: CENTRAL_REGION,
      stackName: `kms-rotation-${STAGE}`,
      pkg,
    });
    const fn = (name: string) => stack.functions[name] as DeployedStack['functions'][string];
    const clients = emulatorClients(emulator.endpoint, CENTRAL_REGION);
    const inbox = await subscribeQueueToTopic(clients, stack.outputs.TopicArn as string, `${STAGE}-inbox`);
    const config = { endpoint: emulator.endpoint, region: CENTRAL_REGION, credentials };

    // The organization: member accounts in one OU.
    const organizations = new OrganizationsClient(config);
    await organizations.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }));
    const { Roots = [] } = await organizations.send(new ListRootsCommand({}));
    const root = Roots[0]?.Id as string;
    const { OrganizationalUnit } = await organizations.send(
      new CreateOrganizationalUnitCommand({ ParentId: root, Name: 'workloads' }),
    );
    const ouId = OrganizationalUnit?.Id as string;
    const members: string[] = [];
    for (let index = 0; index < ACCOUNTS; index += 1) {
      const { CreateAccountStatus } = await organizations.send(
        new CreateAccountCommand({ AccountName: `member-${index}`, Email: `member-${index}@example.com` }),
      );
      const { CreateAccountStatus: status } = await organizations.send(
        new DescribeCreateAccountStatusCommand({ CreateAccountRequestId: CreateAccountStatus?.Id }),
      );
      const account = status?.AccountId as string;
      await organizations.send(
        new MoveAccountCommand({ AccountId: account, SourceParentId: root, DestinationParentId: ouId }),
      );
      members.push(account);
    }
    organizations.destroy();

    // moto runs a mapping only by invoking the function in Docker: the stand-in drives the queue instead.
    const lambda = new LambdaClient(config);
    const { EventSourceMappings = [] } = await lambda.send(new ListEventSourceMappingsCommand({}));
    for (const deployed of EventSourceMappings.filter((candidate) =>
      candidate.EventSourceArn?.endsWith('-org-audit'),
    )) {
      await lambda.send(new UpdateEventSourceMappingCommand({ UUID: deployed.UUID, Enabled: false }));
    }
    lambda.destroy();

    // Each account-Region's fleet size, set per run; KMS's quotas per account-Region, scaled.
    let sizes = new Map<string, number>();
    const organization = syntheticAccounts({
      centralAccount: CENTRAL_ACCOUNT,
      defaultRegion: CENTRAL_REGION,
      keysIn: (location: AccountRegion) => sizes.get(`${location.account}/${location.region}`) ?? 0,
    });
    const quotas = kmsQuotaLimits(QUOTA_SCALE);
    const proxy = await startAwsProxy({
      target: emulator.endpoint,
      rateLimits: quotas,
      latencyMs: 5,
      syntheticAccounts: organization,
    });
    // The audit paces itself to the documented quotas: at a scale other than 1, to the scaled ones.
    const paced: Record<string, string> =
      QUOTA_SCALE === 1
        ? {}
        : {
            AUDIT_RATE_LIMITS: Object.entries(quotas)
              .map(([api, rate]) => `${api}=${Math.round(rate * 1000) / 1000}`)
              .join(','),
          };

    /** One organization audit with `largest` keys in the first member's first Region, KEYS elsewhere. */
    const organizationRun = async (label: string, largest: number) => {
      sizes = new Map(members.flatMap((account) => REGIONS.map((region) => [`${account}/${region}`, KEYS] as const)));
      const largeItem = `${members[0]}/${REGIONS[0]}`;
      sizes.set(largeItem, largest);
      const expectedKeys = [...sizes.values()].reduce((sum, count) => sum + count, 0);
      await inbox.drain();
      proxy.reset();

      const started = performance.now();
      const fanOut = await invokeBundled({
        endpoint: proxy.endpoint,
        region: CENTRAL_REGION,
        fn: fn('orgAudit'),
        event: {},
        env: { ORGANIZATION_UNIT_IDS: ouId },
        timeoutMs: 300_000,
      });
      if (!fanOut.ok) throw new Error(`orgAudit failed: ${fanOut.error.message}\n${fanOut.logs.join('\n')}`);
      const fanOutSeconds = (performance.now() - started) / 1000;
      const timings: { seconds: number; maxRssKb?: number; ok: boolean }[] = [];
      const run = await drainQueue({
        sqs: clients.sqs,
        queueUrl: stack.resources.OrgAuditQueue as string,
        maxConcurrency,
        maxInvocations: 4 * sizes.size + 10,
        invoke: async (event): Promise<InvokeResult> => {
          const at = performance.now();
          const outcome = await invokeBundled({
            endpoint: proxy.endpoint,
            region: CENTRAL_REGION,
            fn: fn('orgAuditItem'),
            event,
            env: paced,
            timeoutMs: 900_000,
          });
          timings.push({ seconds: (performance.now() - at) / 1000, maxRssKb: outcome.maxRssKb, ok: outcome.ok });
          if (timings.length % 10 === 0) console.error(`${label}: ${timings.length} of ${sizes.size} items done`);
          return outcome;
        },
      });
      const wallSeconds = (performance.now() - started) / 1000;
      const throttles = proxy.throttled();
      const completed = (await inbox.drain()).filter((notification) => notification.body.type === 'AuditCompleted');
      const details = completed[0]?.body.details as AuditCompletedDetails | undefined;

      // The largest account-Region alone: `audit` of it through its member role, same keys, same pacing.
      proxy.reset();
      const [account, region] = largeItem.split('/') as [string, string];
      const aloneAt = performance.now();
      const alone = await invokeBundled({
        endpoint: proxy.endpoint,
        region: CENTRAL_REGION,
        fn: fn('audit'),
        event: { account, region },
        env: paced,
        timeoutMs: 900_000,
      });
      const aloneSeconds = (performance.now() - aloneAt) / 1000;
      const aloneKeys = alone.ok ? (alone.result as { totals: { keysAudited: number } }).totals.keysAudited : undefined;
      await inbox.drain();

      const itemSeconds = timings.map((timing) => timing.seconds);
      const rss = timings.flatMap((timing) => (timing.maxRssKb ? [timing.maxRssKb / 1024] : []));
      const items = sizes.size;
      const rounds = Math.ceil(items / maxConcurrency);
      const medianItem = median(itemSeconds);
      const largestItem = Math.max(...itemSeconds);
      const sumOfItems = itemSeconds.reduce((sum, seconds) => sum + seconds, 0);
      // What the claim predicts: rounds of the typical item, unless one item outlasts them all.
      const predicted = Math.max(largestItem, rounds * medianItem);
      return {
        run: label,
        items,
        keysPerItem: largest === KEYS ? KEYS : `${KEYS} (one: ${largest})`,
        concurrency: maxConcurrency,
        peakConcurrency: run.peakConcurrency,
        invocations: run.invocations.length,
        retried: run.invocations.filter((invocation) => invocation.outcome === 'returned').length,
        wallSeconds: round1(wallSeconds),
        fanOutSeconds: round1(fanOutSeconds),
        itemSecondsMedian: round1(medianItem),
        itemSecondsLargest: round1(largestItem),
        aloneSeconds: round1(aloneSeconds),
        aloneKeysAudited: aloneKeys ?? (alone.ok ? 'n/a' : `failed: ${alone.error.message}`),
        roundsCeilItemsOverConcurrency: rounds,
        predictedSeconds: round1(predicted),
        wallOverPredicted: Math.round((wallSeconds / predicted) * 100) / 100,
        // The items' part of the wall time: from the fan-out's end to the queue drained.
        drainOverPredicted: Math.round(((wallSeconds - fanOutSeconds) / predicted) * 100) / 100,
        sumOfItemSeconds: round1(sumOfItems),
        // The items' time shared out over the slots: the least any scheduler could do with them.
        sumOverConcurrencySeconds: round1(sumOfItems / maxConcurrency),
        wallOverSumOfItems: Math.round((wallSeconds / sumOfItems) * 100) / 100,
        throttlesMet: throttles,
        peakRssMiBPerWorkerMax: rss.length ? Math.round(Math.max(...rss)) : 'n/a',
        peakRssMiBPerWorkerMedian: rss.length ? Math.round(median(rss)) : 'n/a',
        auditCompleted: completed.length,
        expectedKeys,
        keysAudited: details?.totals.keysAudited,
        everyKeyCounted: details?.totals.keysAudited === expectedKeys && details?.totals.failedItems === 0,
        failedItems: details?.failedItems.map((item) => `${item.item}: ${item.error}`) ?? [],
      };
    };

    const runs: Record<string, unknown>[] = [];
    runs.push(await organizationRun('uniform', KEYS));
    if (LARGE_KEYS > 0 && LARGE_KEYS !== KEYS) runs.push(await organizationRun('one large account-Region', LARGE_KEYS));
    results.runs = runs;
    results.loadAverageAtEnd = execFileSync('cat', ['/proc/loadavg']).toString().trim();
    console.log(
      `\nOrganization audit: ${ACCOUNTS} accounts x ${REGIONS.length} Regions, quotas x${QUOTA_SCALE} per account-Region, MaximumConcurrency ${maxConcurrency}`,
    );
    console.table(runs);
    await proxy.stop();
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
