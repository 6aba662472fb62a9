// npm run mutate: StrykerJS over the unit suites, for the files where a wrong branch leaks money
// or machines. Not part of npm test (it takes tens of minutes); the score is in docs/testing.md.
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  testRunnerNodeArgs: ['--experimental-vm-modules'],
  jest: {
    projectType: 'custom',
    configFile: 'jest.config.js',
    // The unit suites only: the lab and moto suites run the bundle, not the mutated sources.
    config: {
      testPathIgnorePatterns: [
        '/node_modules/',
        '<rootDir>/.stryker-tmp/',
        '/__tests__/lab/',
        'integration\\.moto',
        'moto-harness',
        'ami\\.test',
        'packer\\.test',
        'workflows\\.test',
        'readme\\.test',
        'userdata-render',
      ],
      // Speed (docs/testing.md, "Making it fast"): the dry run records which file holds which
      // test, and each mutant then loads only the files whose tests cover it.
      testEnvironment: './test/stryker/environment.cjs',
      testSequencer: '<rootDir>/test/stryker/sequencer.cjs',
    },
    // The dry run loads only the suites that import a mutated file.
    enableFindRelatedTests: true,
  },
  mutate: ['src/teardown.ts', 'src/waiter.ts', 'src/aws/fleet.ts', 'src/modes/*.ts', 'src/config.ts'],
  coverageAnalysis: 'perTest',
  ignoreStatic: true,
  concurrency: 2,
  timeoutMS: 10_000,
  // Re-runs test only the mutants whose code or covering tests changed since the last run.
  // The file (reports/stryker-incremental.json) is not committed: see docs/testing.md.
  incremental: true,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  ignorePatterns: ['dist', '.lab', 'reports', 'deploy/cdk.out'],
  tempDirName: '.stryker-tmp',
};
