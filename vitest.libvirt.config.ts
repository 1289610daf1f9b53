import { defineConfig } from 'vitest/config';

// The libvirt end-to-end suite: a real libvirtd and qemu per "host", installed
// and started by test/libvirt/setup.sh (it installs Debian packages with apt-get
// when they are missing). `npm test` runs it after the rest, not in parallel with
// it (fail and host_dead are seconds here, and the daemons need the CPU);
// `npm run test:libvirt` runs it alone. One file at a time, the daemons are
// shared within a file.
export default defineConfig({
  test: {
    include: ['test/libvirt/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 900_000,
  },
});
