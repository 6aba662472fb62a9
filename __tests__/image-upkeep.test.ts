// Issue 13 §3: the image and the runner stay current, and nothing test-only reaches an image.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { runnerVersionWarnings } from '../src/summary.js';

const ROOT = join(new URL('.', import.meta.url).pathname, '..');
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

describe('runner self-update is reported', () => {
  it('warns once per version that differs from the image pin, naming the instances', () => {
    const w = runnerVersionWarnings('2.330.0', [
      { instanceId: 'i-1', runnerVersion: '2.331.0' },
      { instanceId: 'i-2', runnerVersion: '2.331.0' },
      { instanceId: 'i-3', runnerVersion: '2.330.0' },
      { instanceId: 'i-4' },
    ]);
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/pinned 2\.330\.0 to 2\.331\.0 on i-1, i-2/);
  });
  it('says nothing when the versions match or one side is unknown', () => {
    expect(runnerVersionWarnings('2.330.0', [{ instanceId: 'i-1', runnerVersion: '2.330.0' }])).toEqual([]);
    expect(runnerVersionWarnings(undefined, [{ instanceId: 'i-1', runnerVersion: '2.331.0' }])).toEqual([]);
  });
  it('the pinned runner can still register (GitHub requires >= 2.329.0)', () => {
    const v = /runner_version\s*=\s*"(\d+)\.(\d+)\.(\d+)"/.exec(read('packer/runner.auto.pkrvars.hcl'));
    expect(v).not.toBeNull();
    const [maj, min] = [Number(v?.[1]), Number(v?.[2])];
    expect(maj > 2 || (maj === 2 && min >= 329)).toBe(true);
  });
});

describe('workflows keep images current', () => {
  it('bump-runner runs weekly and opens the bump pull request', () => {
    const wf = read('.github/workflows/bump-runner.yml');
    expect(wf).toMatch(/schedule:\s*\n\s*- cron: '\d+ \d+ \* \* \d'/);
    expect(wf).toContain('gh pr create');
  });
  it('a scheduled build-ami run always builds (inputs.force is null on a schedule)', () => {
    expect(read('.github/workflows/build-ami.yml')).toContain(
      "FORCE: ${{ inputs.force == true || github.event_name == 'schedule' }}",
    );
  });
});

describe('benchmark-grade hardware', () => {
  it('the benchmark workflow uploads the machine fingerprint next to the results', () => {
    const wf = read('.github/workflows/benchmarks.yml');
    expect(wf).toContain('cp /run/spot-runner/fingerprint "$META_DIR/fingerprint"');
    expect(wf).toMatch(/path: \|\n\s+\$\{\{ inputs.results-path \}\}\n\s+\$\{\{ runner.temp \}\}\/bench-meta/);
  });
});

describe('image hygiene', () => {
  it('no test shims in the image: the provisioner removes user-data/test and checks', () => {
    const s = read('packer/scripts/bootstrap.sh');
    expect(s).toContain('rm -rf "$DEST/test"');
    expect(s).toMatch(/\[\[ ! -e \$DEST\/test \]\] \|\| die/);
  });
  it('test-only files are not in the content hash; the bootstrap is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'upkeep-'));
    cpSync(join(ROOT, 'packer'), join(dir, 'packer'), { recursive: true });
    cpSync(join(ROOT, 'user-data'), join(dir, 'user-data'), { recursive: true });
    const hash = () => execFileSync('bash', [join(dir, 'packer/hash.sh')], { encoding: 'utf8' }).trim();
    const h = hash();
    writeFileSync(join(dir, 'user-data/test/shims/aws'), '#!/bin/bash\necho changed\n');
    expect(hash()).toBe(h);
    writeFileSync(join(dir, 'user-data/bootstrap.sh'), '#!/bin/bash\necho changed\n');
    expect(hash()).not.toBe(h);
  });
  it('Packer refuses to build without a subnet or a subnet filter', () => {
    const t = read('packer/runner.pkr.hcl');
    expect(t).toMatch(
      /subnet_id = var\.subnet_id != "" \? var\.subnet_id : \(length\(var\.subnet_filter\) > 0 \? null : file\("ERROR: set subnet_id or subnet_filter/,
    );
    expect(t).toContain('dynamic "subnet_filter"');
  });
  it('apt waits for the dpkg lock instead of failing the build', () => {
    expect(read('packer/scripts/lib.sh')).toMatch(/APT_LOCK_WAIT='-o DPkg::Lock::Timeout=\d+'/);
    expect(read('packer/scripts/lib.sh')).toMatch(/apt-get install -y --no-install-recommends \$APT_LOCK_WAIT/);
    expect(read('packer/scripts/base.sh')).toMatch(/apt-get -y \$APT_LOCK_WAIT .*dist-upgrade/);
  });
  it('unattended-upgrades is not masked (only the periodic timers are off)', () => {
    const h = read('packer/scripts/harden.sh');
    expect(h).not.toMatch(/for unit in [^\n]*unattended-upgrades\.service/);
    expect(h).toContain('systemctl unmask unattended-upgrades.service');
  });
});
