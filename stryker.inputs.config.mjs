// npm run mutate:config: src/config.ts against the suites written for it. Every unit suite
// imports the config, so the main run would spend hours re-running start suites per mutant
// (docs/testing.md). A mutant only a start suite would kill counts as survived here.
import base from './stryker.config.mjs';

export default {
  ...base,
  jest: {
    ...base.jest,
    config: {
      ...base.jest.config,
      testMatch: [
        '**/__tests__/inputs.test.ts',
        '**/__tests__/inputs-rules.test.ts',
        '**/__tests__/fork-guard.test.ts',
        '**/__tests__/watch.test.ts',
      ],
    },
  },
  mutate: ['src/config.ts'],
  incrementalFile: 'reports/stryker-incremental-config.json',
  jsonReporter: { fileName: 'reports/mutation/config.json' },
};
