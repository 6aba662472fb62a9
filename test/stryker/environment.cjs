// Stryker only (stryker.config.mjs): the node test environment, plus two things that make a
// mutation run affordable on two shared cores (docs/testing.md, "Making it fast"):
// - the dry run records which test file holds which test, and how long each took; sequencer.cjs
//   reads that to load, for each mutant, only the files whose tests cover it, fastest first;
// - in a mutant run, once one test has failed the mutant is killed, so the remaining tests are
//   skipped (jest has no programmatic bail; Stryker only needs the first failure).
// CommonJS because Stryker's environment wrapper require()s it.
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { TestEnvironment } = require('jest-environment-node');

const MAP_FILE = '.stryker-test-files.json';
// One jest run (one mutant) at a time per process (Stryker runs jest in band); sequencer.cjs
// resets this at the start of each run.
const run = () => (globalThis.__spotRunnerStrykerRun ??= { failed: false });

// Jest's (and Stryker's) full test name: the describe titles and the test title, space-joined.
function fullName(test) {
  const names = [];
  for (let b = test; b && b.parent; b = b.parent) names.unshift(b.name);
  return names.join(' ');
}

class StrykerRunEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.testPath = context.testPath;
    this.mapFile = join(config.globalConfig.rootDir, MAP_FILE);
    // Mutant runs filter by test name; only an unfiltered run (the dry run) sees every test.
    this.dryRun = !config.globalConfig.testNamePattern;
    this.tests = [];
  }

  async handleTestEvent(event) {
    if (this.dryRun) {
      if (event.name === 'test_done') this.tests.push({ name: fullName(event.test), ms: event.test.duration ?? 0 });
      return;
    }
    if (event.name === 'test_start' && run().failed) event.test.mode = 'skip';
    if (event.name === 'test_done' && event.test.errors.length > 0) run().failed = true;
  }

  async teardown() {
    if (this.dryRun && this.tests.length > 0) {
      let map = {};
      try {
        map = JSON.parse(readFileSync(this.mapFile, 'utf8'));
      } catch {
        // the first test file of the dry run
      }
      map[this.testPath] = this.tests;
      writeFileSync(this.mapFile, JSON.stringify(map));
    }
    await super.teardown();
  }
}

module.exports = StrykerRunEnvironment;
module.exports.MAP_FILE = MAP_FILE;
