import { defineConfig } from 'vitest/config';

// One config for every suite; scripts/test.mjs picks the folders. Native work is heavy and
// the CI machines have two cores, so files run in forked workers with generous timeouts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 300_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
});
