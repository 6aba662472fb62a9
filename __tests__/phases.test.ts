// One vocabulary: every phase the bootstrap writes is one of PHASES, and every PHASE is written.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { CONSUMED_PREFIX, FAILED_PHASE_PREFIX, INTERRUPTED_PHASE_PREFIX, PHASES, TAGS } from '../src/tags.js';

// The code, without comment lines (they may mention set_phase in prose).
const script = readFileSync(new URL('../user-data/bootstrap.sh', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => !/^\s*#/.test(l))
  .join('\n');

describe('bootstrap phases', () => {
  it('writes exactly the phases src/tags.ts names', () => {
    const written = new Set([...script.matchAll(/set_phase ([a-z-]+)/g)].map((m) => m[1]));
    written.add(/phase=shutting-down/.test(script) ? 'shutting-down' : 'missing');
    expect([...written].sort()).toEqual([...PHASES].sort());
  });

  it('writes failed: and interrupted: with the prefixes src/tags.ts names', () => {
    expect(script).toContain(`phase=${FAILED_PHASE_PREFIX}$reason`);
    expect(script).toContain(`phase=${INTERRUPTED_PHASE_PREFIX}$phase`);
  });

  it('writes its tags under the keys src/tags.ts names', () => {
    const keys = new Set([...script.matchAll(/tag_now ([a-z-]+) /g)].map((m) => `spot-runner:${m[1]}`));
    expect([...keys].sort()).toEqual([TAGS.fingerprint, TAGS.phase, TAGS.runnerVersion].sort());
    expect(script).toContain('"Tag.1.Key=spot-runner:$1"');
  });

  it("marks a pool machine's read JIT parameter with the prefix src/tags.ts names", () => {
    expect(script).toContain(`MARK="${CONSUMED_PREFIX}$(printf '%s' "$JIT" | sha256sum | cut -d' ' -f1)"`);
  });
});
