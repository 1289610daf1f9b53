import { defineConfig } from 'vitest/config';

// The libvirt end-to-end suite (`npm run test:libvirt`): a real libvirtd and
// qemu per "host", installed and started by test/libvirt/setup.sh. Not part of
// `npm test`: it installs Debian packages and runs daemons. One file at a time,
// the daemons are shared within a file.
export default defineConfig({
  test: {
    include: ['test/libvirt/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 900_000,
  },
});
