import { defineConfig } from 'vitest/config';

// Under CI a JSON report is written as well, so `.ci/run` can count results across runs.
const reportFile = process.env['PARLEY_TEST_REPORT'] ?? '.tmp/vitest-report.json';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: process.env['CI'] ? ['default', 'json'] : ['default'],
    outputFile: { json: reportFile },
  },
});
