import { defineConfig } from 'vitest/config';

// Browser end-to-end tests: each test starts its own `jamuna serve` and drives
// Debian's Chromium with playwright-core. One at a time (two cores).
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    environment: 'node',
    pool: 'forks',
    fileParallelism: false,
    maxConcurrency: 1,
    testTimeout: 180_000,
    hookTimeout: 120_000,
    reporters: ['verbose'],
  },
});
