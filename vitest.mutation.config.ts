import { defineConfig } from 'vitest/config';

/**
 * The unit tests alone, for mutation testing (`npm run mutation`, stryker.config.mjs): the
 * integration project deploys stacks into moto and has no place in a loop that runs the tests
 * once per mutant.
 */
export default defineConfig({
  test: {
    setupFiles: ['tests/setup.ts'],
    pool: 'forks',
    restoreMocks: true,
    include: ['tests/unit/**/*.test.ts'],
    testTimeout: 10_000,
  },
});
