import { defineConfig } from 'vitest/config';

// Tests import the compiled build (dist/), which `npm test` produces first:
// the storage layer runs its I/O in worker threads that load compiled
// JavaScript, and tests should exercise what ships.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
