import { defineConfig } from 'vitest/config';

// Tests that spawn the native helper, mount overlays or touch cgroups run in forked workers
// (never threads: namespace work must not share a process with other tests).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    clearMocks: true,
    restoreMocks: true,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
