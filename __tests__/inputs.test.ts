import { describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { offlineGitHub } from '../test/fakes/github.js';
import { parseList } from '../src/config.js';
import { InputError } from '../src/errors.js';
import { start } from '../src/modes/start.js';
import { BASE_START, ENV, config, rig } from '../test/fakes/harness.js';
import type { StartConfig } from '../src/config.js';

offlineGitHub();

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Parses and starts with a fake world; whatever fails, nothing may have been created. */
async function attempt(inputs: Record<string, string>, env: Record<string, string> = ENV, event?: unknown) {
  const r = rig();
  let error: unknown;
  try {
    await start(config(inputs, env, event) as StartConfig, r.deps);
  } catch (e) {
    error = e;
  }
  return { error, r };
}

// [what, inputs (over BASE_START), expected message]
const BAD: [string, Record<string, string>, RegExp][] = [
  ['unknown mode', { mode: 'launch' }, /Input 'mode': 'launch' is not one of start, stop, reap/],
  ['missing token', { 'github-token': ' ' }, /Input 'github-token': neither github-token nor github-app-id/],
  [
    'token and App both',
    {
      'github-app-id': '4242',
      'github-app-private-key': '-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----',
    },
    /Input 'github-token': both github-token and GitHub App inputs .*Fix: give either github-token or github-app-id with github-app-private-key, not both/,
  ],
  [
    'App id without key',
    { 'github-token': '', 'github-app-id': '4242' },
    /Input 'github-app-private-key': it is empty but github-app-id is given/,
  ],
  [
    'App key without id',
    {
      'github-token': '',
      'github-app-private-key': '-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----',
    },
    /Input 'github-app-id': it is empty but github-app-private-key is given/,
  ],
  [
    'App key not PEM',
    { 'github-token': '', 'github-app-id': '4242', 'github-app-private-key': 'hunter2' },
    /Input 'github-app-private-key': it is not a PEM private key/,
  ],
  [
    'App installation not a number',
    {
      'github-token': '',
      'github-app-id': '4242',
      'github-app-private-key': '-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----',
      'github-app-installation-id': 'abc',
    },
    /Input 'github-app-installation-id': 'abc' is not a number/,
  ],
  ['malformed region', { 'aws-region': 'moon-base-1a' }, /Input 'aws-region': 'moon-base-1a' is not a region name/],
  ['missing image', { image: '' }, /Input 'image': it is required for start/],
  [
    'image neither ami nor ssm',
    { image: 'ubuntu-24.04' },
    /Input 'image': 'ubuntu-24.04' is neither an AMI id nor ssm:<name>/,
  ],
  [
    'ssm image with shell characters',
    { image: 'ssm:/x;rm -rf /' },
    /Input 'image': '\/x;rm -rf \/' is not a valid SSM parameter name/,
  ],
  ['no instance types', { 'instance-types': ' , \n' }, /Input 'instance-types': it is required for start/],
  [
    'malformed instance type',
    { 'instance-types': 'c7i.large, big one' },
    /Input 'instance-types': 'big one' is not a valid instance type/,
  ],
  ['count zero', { count: '0' }, /Input 'count': '0' is not a positive whole number/],
  ['count fractional', { count: '1.5' }, /Input 'count': '1.5' is not a positive whole number/],
  ['count above the cap', { count: '101' }, /Input 'count': 101 is above the limit of 100/],
  ['unknown market', { market: 'reserved' }, /Input 'market': 'reserved' is not one of spot, on-demand/],
  [
    'unknown allocation strategy',
    { 'allocation-strategy': 'lowest-price' },
    /Input 'allocation-strategy': 'lowest-price' is not one of price-capacity-optimized, capacity-optimized-prioritized/,
  ],
  [
    'exact-type with two types',
    { 'exact-type': 'true' },
    /Input 'exact-type': it allows one instance type, but instance-types lists 2/,
  ],
  ['fallback not a boolean', { 'on-demand-fallback': 'yes' }, /Input 'on-demand-fallback': 'yes' is not a boolean/],
  ['spot price not a number', { 'max-spot-price': 'cheap' }, /Input 'max-spot-price': 'cheap' is not a price/],
  [
    'malformed subnet',
    { 'subnet-ids': 'subnet-0123abcd, vpc-12345678' },
    /Input 'subnet-ids': 'vpc-12345678' is not a valid subnet id/,
  ],
  [
    'malformed security group',
    { 'security-group-ids': 'default' },
    /Input 'security-group-ids': 'default' is not a valid security group id/,
  ],
  [
    'malformed instance profile',
    { 'instance-profile': 'arn:aws:iam::role/x y' },
    /Input 'instance-profile': .* is neither a profile name nor its ARN/,
  ],
  ['volume too small', { 'volume-size': '4' }, /Input 'volume-size': 4 GiB is too small/],
  ['tag without =', { tags: 'team' }, /Input 'tags': 'team' is not key=value/],
  [
    'reserved tag prefix',
    { tags: 'spot-runner:label=evil' },
    /Input 'tags': key 'spot-runner:label' uses a reserved prefix/,
  ],
  [
    'tag with shell characters',
    { tags: 'owner=$(curl evil)' },
    /Input 'tags': .* has characters EC2 tags do not allow/,
  ],
  ['unknown scope', { 'runner-scope': 'enterprise' }, /Input 'runner-scope': 'enterprise' is not one of repo, org/],
  [
    'runner group on repo scope',
    { 'runner-group': 'gpu' },
    /Input 'runner-group': runner groups exist only for organisation runners/,
  ],
  ['max-lifetime negative', { 'max-lifetime': '-5' }, /Input 'max-lifetime': '-5' is not a positive number/],
  [
    'idle longer than lifetime',
    { 'max-lifetime': '30', 'idle-timeout': '60' },
    /Input 'idle-timeout': 60 is longer than max-lifetime \(30\)/,
  ],
  ['wait-timeout too long', { 'wait-timeout': '500' }, /Input 'wait-timeout': 500 is above the limit of 120/],
  [
    'label with shell characters',
    { labels: 'gpu;reboot' },
    /Input 'labels': label 'gpu;reboot' has characters outside/,
  ],
  ['label with a space', { labels: 'big box' }, /Input 'labels': label 'big box' has characters outside/],
  ['dry-run not a boolean', { 'dry-run': 'maybe' }, /Input 'dry-run': 'maybe' is not a boolean/],
  ['max-running not a number', { 'max-running': 'ten' }, /Input 'max-running': 'ten' is not a positive whole number/],
  ['max-running zero', { 'max-running': '0' }, /Input 'max-running': '0' is not a positive whole number/],
  [
    'max-running below count',
    { 'max-running': '1', count: '2' },
    /Input 'max-running': 1 is below count \(2\): this start could never be admitted/,
  ],
  ['job-imds-access not a boolean', { 'job-imds-access': '1' }, /Input 'job-imds-access': '1' is not a boolean/],
  ['pool name with capitals and a slash', { pool: 'Big/pool' }, /Input 'pool': 'Big\/pool' is not a pool name/],
  // Found only by asking AWS (read-only calls), still before anything is created:
  [
    'unknown instance type',
    { 'instance-types': 'c7i.large, z9.huge' },
    /Input 'instance-types': z9.huge not offered in this region/,
  ],
  [
    'arm64 type for an x86_64 image',
    { 'instance-types': 'c7g.large' },
    /Input 'instance-types': c7g.large cannot run the x86_64 image/,
  ],
  [
    'types of two architectures for {arch}',
    { image: 'ssm:/spot-runner/ami/base/{arch}', 'instance-types': 'c7i.large, c7g.large' },
    /Input 'instance-types': the types do not share one architecture/,
  ],
  [
    'missing SSM image parameter',
    { image: 'ssm:/spot-runner/ami/base/{arch}' },
    /Input 'image': SSM parameter \/spot-runner\/ami\/base\/x86_64 does not exist/,
  ],
  ['AMI not found', { image: 'ami-00000000000000000' }, /Input 'image': AMI ami-00000000000000000 was not found/],
  [
    'subnet not found',
    { 'subnet-ids': 'subnet-0bad0000000000000' },
    /Input 'subnet-ids': The subnet ID 'subnet-0bad0000000000000' does not exist/,
  ],
  [
    'volume smaller than the image',
    { 'volume-size': '10' },
    /Input 'volume-size': 10 GiB is smaller than the image's 16 GiB root snapshot/,
  ],
  [
    'pre-runner-script too large for user-data',
    { 'pre-runner-script': Array.from({ length: 4000 }, (_, i) => `echo ${(i * 7919) % 10007} $RANDOM`).join('\n') },
    /pre-runner-script/,
  ],
];

describe('every bad input fails with its name and a fix, and creates nothing', () => {
  it.each(BAD)('%s', async (_what, over, message) => {
    const { error, r } = await attempt({ ...BASE_START, ...over });
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(message);
    if (error instanceof InputError) expect((error as Error).message).toMatch(/Fix: /);
    expect(r.world.mutating()).toEqual([]);
    expect(r.github.requests.filter((q) => q.method !== 'GET')).toEqual([]);
  });

  it('refuses, in this table or a named test, every input the code names in an InputError', async () => {
    // Read the code, not the table: a new InputError('x', …) without a case here fails this test.
    const named = new Set<string>();
    for (const f of readdirSync(join(ROOT, 'src'), { recursive: true }) as string[]) {
      if (!f.endsWith('.ts')) continue;
      for (const m of readFileSync(join(ROOT, 'src', f), 'utf8').matchAll(/new InputError\(\s*'([^']+)'/g))
        named.add(m[1] as string);
    }
    expect(named.size).toBeGreaterThanOrEqual(10);
    const refused = new Set<string>();
    for (const [, over] of BAD) {
      const { error } = await attempt({ ...BASE_START, ...over });
      if (error instanceof InputError) refused.add(error.input);
    }
    // Inputs of other modes and contexts, refused in the tests named here.
    const elsewhere: Record<string, string> = {
      label: "'stop inputs' below",
      'instance-ids': "'stop inputs' below",
      'allow-forks': "'fork guard' below",
      'aws-region': "'needs a region from the input or the environment' below",
      'max-age': 'reap.test.ts',
      confirm: 'reap.test.ts',
      GITHUB_REPOSITORY: "'the run context' below",
      runners: "'watch inputs' below",
      'max-replacements': "'watch inputs' below",
    };
    expect([...named].filter((n) => !refused.has(n) && !(n in elsewhere)).sort()).toEqual([]);
  });

  it('rejects a token GitHub refuses before launching anything', async () => {
    const r = rig();
    r.github.faults.list = [{ status: 401, body: { message: 'Bad credentials' } }];
    await expect(start(config(BASE_START) as StartConfig, r.deps)).rejects.toThrow(
      /Input 'github-token': GitHub answered 401.*Administration: write/,
    );
    expect(r.world.mutating()).toEqual([]);
  });

  it('needs a region from the input or the environment', () => {
    const { AWS_REGION: _drop, ...noRegion } = ENV;
    expect(() => config(BASE_START, noRegion)).toThrow(
      /Input 'aws-region': no region given and neither AWS_REGION nor AWS_DEFAULT_REGION is set/,
    );
    expect((config(BASE_START, { ...noRegion, AWS_DEFAULT_REGION: 'eu-west-1' }) as StartConfig).region).toBe(
      'eu-west-1',
    );
  });
});

describe('the run context', () => {
  it('needs GITHUB_REPOSITORY', () => {
    const { GITHUB_REPOSITORY: _drop, ...noRepo } = ENV;
    expect(() => config(BASE_START, noRepo)).toThrow(/Input 'GITHUB_REPOSITORY': it is not set/);
  });
});

describe('stop inputs', () => {
  it('needs a label or ids', () => {
    expect(() => config({ mode: 'stop', 'github-token': 't' })).toThrow(/Input 'label': stop needs something to stop/);
  });
  it('accepts the start output JSON array, commas or newlines', () => {
    const a = config({
      mode: 'stop',
      'github-token': 't',
      'instance-ids': '["i-0123456789abcdef0","i-0123456789abcdef1"]',
    });
    const b = config({
      mode: 'stop',
      'github-token': 't',
      'instance-ids': 'i-0123456789abcdef0,\ni-0123456789abcdef1',
    });
    expect(a).toMatchObject({ instanceIds: ['i-0123456789abcdef0', 'i-0123456789abcdef1'] });
    expect(b).toMatchObject({ instanceIds: ['i-0123456789abcdef0', 'i-0123456789abcdef1'] });
  });
  it('rejects a crafted label and malformed ids', () => {
    expect(() => config({ mode: 'stop', 'github-token': 't', label: 'x$(id)' })).toThrow(/Input 'label'/);
    expect(() => config({ mode: 'stop', 'github-token': 't', 'instance-ids': '[1,2]' })).toThrow(
      /Input 'instance-ids': it starts with \[ but is not a JSON array of strings/,
    );
    expect(() => config({ mode: 'stop', 'github-token': 't', 'instance-ids': 'i-nope' })).toThrow(
      /Input 'instance-ids': 'i-nope' is not an instance id/,
    );
  });
});

describe('watch inputs', () => {
  const RUNNERS = JSON.stringify([
    {
      name: 'spot-runner-4242-1-abc123-deadbeef-1',
      id: 7,
      instanceId: 'i-0123456789abcdef0',
      instanceType: 'c7i.large',
      availabilityZone: 'us-east-1a',
      market: 'spot',
    },
  ]);
  const WATCH = { ...BASE_START, mode: 'watch', label: 'spot-runner-4242-1-abc123-deadbeef', runners: RUNNERS };
  it("takes start's inputs, with one machine per replacement, and fills its defaults", () => {
    const c = config(WATCH);
    expect(c).toMatchObject({
      mode: 'watch',
      label: WATCH.label,
      maxReplacements: 2,
      watchTimeoutMinutes: 60,
      runners: [{ name: 'spot-runner-4242-1-abc123-deadbeef-1', id: 7, instanceId: 'i-0123456789abcdef0' }],
    });
    expect(c.mode === 'watch' && c.start).toMatchObject({
      mode: 'start',
      count: 1,
      instanceTypes: ['c7i.large', 'c6i.large'],
      image: { kind: 'ami', id: 'ami-0123456789abcdef0' },
    });
    expect(config({ ...WATCH, 'max-replacements': '0', 'watch-timeout': '1.5' })).toMatchObject({
      maxReplacements: 0,
      watchTimeoutMinutes: 1.5,
    });
  });
  it.each([
    ['no label', { label: '' }, /Input 'label': watch needs the label start returned/],
    ['a crafted label', { label: 'x$(id)' }, /Input 'label': 'x\$\(id\)' has characters outside/],
    [
      'max-replacements negative',
      { 'max-replacements': '-1' },
      /Input 'max-replacements': '-1' is not a whole number from 0 to 20/,
    ],
    [
      'max-replacements fractional',
      { 'max-replacements': '1.5' },
      /Input 'max-replacements': '1.5' is not a whole number/,
    ],
    [
      'max-replacements above the cap',
      { 'max-replacements': '21' },
      /Input 'max-replacements': '21' is not a whole number from 0 to 20/,
    ],
    ['watch-timeout zero', { 'watch-timeout': '0' }, /Input 'watch-timeout': '0' is not a positive number/],
    ['no runners', { runners: '' }, /Input 'runners': watch needs to know which runner each machine holds/],
    ['runners not JSON', { runners: 'i-0123456789abcdef0' }, /Input 'runners': it is not JSON/],
    [
      'runners with a bad instance id',
      { runners: '[{"name":"a","id":1,"instanceId":"i-nope"}]' },
      /Input 'runners': it is not a non-empty JSON array of \{name, id, instanceId\}/,
    ],
    ['runners empty', { runners: '[]' }, /Input 'runners': it is not a non-empty JSON array/],
    ['a start input watch passes on', { 'instance-types': '' }, /Input 'instance-types': it is required for start/],
  ])('refuses %s, naming the input and the fix', (_what, over, message) => {
    let error: unknown;
    try {
      config({ ...WATCH, ...over });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/Fix: /);
  });
});

describe('lists and defaults', () => {
  it('splits on commas and newlines and drops blanks', () => {
    expect(parseList('a, b\nc,,\n d ')).toEqual(['a', 'b', 'c', 'd']);
  });
  it('fills documented defaults', () => {
    const c = config({
      mode: 'start',
      'github-token': 't',
      image: 'ami-0123456789abcdef0',
      'instance-types': 'c7i.large',
    }) as StartConfig;
    expect(c).toMatchObject({
      count: 1,
      market: 'spot',
      onDemandFallback: true,
      scope: 'repo',
      maxLifetimeMinutes: 360,
      idleTimeoutMinutes: 10,
      waitTimeoutMinutes: 5,
      dryRun: false,
      jobImdsAccess: false,
      allowForks: false,
    });
    expect(c.maxRunning).toBeUndefined();
    expect(
      (
        config({
          mode: 'start',
          'github-token': 't',
          image: 'ami-0123456789abcdef0',
          'instance-types': 'c7i.large',
          'max-running': ' 40 ',
        }) as StartConfig
      ).maxRunning,
    ).toBe(40);
  });
});

// The fork guard's cases live in __tests__/fork-guard.test.ts, with real event payloads.
