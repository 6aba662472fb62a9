// ESM jest over TypeScript sources: ts-jest compiles, node's vm modules load.
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { ignoreCodes: ['TS151001'] } }],
  },
  testMatch: ['**/__tests__/**/*.test.ts'],
  // Stryker's sandboxes hold copies of the suites; never run those from the real tree.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/.stryker-tmp/'],
  modulePathIgnorePatterns: ['<rootDir>/.stryker-tmp/'],
  testTimeout: 60000,
  // ESM in jest's VM keeps each file's module graph alive (~50 MB a file here): one process for
  // the whole suite reached node's 4 GB heap on CI's 2 cores. A worker past 1 GB is replaced
  // between files (it also forces a worker when jest would otherwise run in band).
  workerIdleMemoryLimit: '1GB',
  verbose: false,
};
