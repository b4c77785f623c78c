// Mutation testing of the domain's rules and steps against the unit tests: `npm run mutation`.
// Outside CI (it takes minutes). Report: reports/mutation/mutation.html, and the summary printed.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts' },
  mutate: process.env.MUTATE ? process.env.MUTATE.split(',') : ['src/domain/**/*.ts'],
  // Stryker rewrites the tsconfig it is pointed at with TypeScript's JavaScript API, which
  // TypeScript 7 no longer has. The sandbox needs no rewrite (vitest compiles with esbuild and no
  // project references), so it is pointed at a file that does not exist, and skips it.
  tsconfigFile: 'no-tsconfig-rewrite.json',
  coverageAnalysis: 'perTest',
  concurrency: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 80, break: null },
  ignorePatterns: ['.tmp', 'reports', '.serverless', 'bench/results*'],
  timeoutMS: 10_000,
};
