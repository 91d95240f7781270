import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // e2e tests build namespaces; run files one at a time so they never compete for the 2 cores.
    fileParallelism: false,
    reporters: ['default'],
  },
});
