import { defineConfig } from 'vitest/config';

// Tests import the compiled build (dist/), which `npm test` produces first:
// the storage layer runs its I/O in worker threads that load compiled
// JavaScript, and tests should exercise what ships.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The libvirt end-to-end suite runs after this one, alone (vitest.libvirt.config.ts): `npm test`
    // runs both, `npm run test:libvirt` that suite only. Its daemons and timing-sensitive takeovers
    // would compete for the CPU with the rest run in parallel.
    exclude: ['test/libvirt/**', '**/node_modules/**'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
