// Stryker only (stryker.config.mjs). Stryker runs each mutant with a test-name filter (the tests
// that cover it), but jest still loads every test file to find those names, and loading one of our
// suites (AWS SDK, Octokit) costs about a second. This sequencer keeps only the files that hold a
// wanted test, using the map environment.cjs wrote in the dry run, and runs the quickest first
// (with the environment's bail, the first failure ends the run). A file the map does not know is
// kept, so the filter can only save time, never drop a covering test.
'use strict';
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const Sequencer = require('@jest/test-sequencer').default;
const { MAP_FILE } = require('./environment.cjs');

class CoveringFilesSequencer extends Sequencer {
  constructor(options) {
    super(options);
    this.globalConfig = options.globalConfig;
  }

  sort(tests) {
    globalThis.__spotRunnerStrykerRun = { failed: false };
    const pattern = this.globalConfig.testNamePattern;
    if (!pattern) return super.sort(tests);
    let map;
    try {
      map = JSON.parse(readFileSync(join(this.globalConfig.rootDir, MAP_FILE), 'utf8'));
    } catch {
      return super.sort(tests);
    }
    const wanted = new RegExp(pattern, 'i'); // as jest-circus applies testNamePattern
    const cost = (t) => (map[t.path] ?? []).filter((x) => wanted.test(x.name)).reduce((sum, x) => sum + x.ms, 0);
    const kept = tests.filter((t) => !(t.path in map) || map[t.path].some((x) => wanted.test(x.name)));
    return kept
      .map((t) => [t, cost(t)])
      .sort((a, b) => a[1] - b[1])
      .map(([t]) => t);
  }
}

module.exports = CoveringFilesSequencer;
