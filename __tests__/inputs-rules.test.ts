// src/config.ts's rules pinned to exact values: every refusal's whole message, every limit on both
// sides of its edge, trimming, regex anchors, and the parsed fields of each mode. inputs.test.ts
// checks that bad inputs create nothing; this file is what `npm run mutate:config` kills mutants with.
import { describe, expect, it } from '@jest/globals';
import { forkGuard, forkOrigin, parseConfig, runContext, tuning } from '../src/config.js';
import type { PoolConfig, ReapConfig, StartConfig, StopConfig, WatchConfig } from '../src/config.js';
import { InputError } from '../src/errors.js';

// The values of test/fakes/harness.ts (ENV, BASE_START), without importing it: the harness loads the
// fake AWS and GitHub worlds, which would cost every mutant run about a second for nothing.
const ENV: Record<string, string> = {
  GITHUB_REPOSITORY: 'acme/widgets',
  GITHUB_RUN_ID: '4242',
  GITHUB_RUN_ATTEMPT: '1',
  GITHUB_JOB: 'start',
  AWS_REGION: 'us-east-1',
};
const START: Record<string, string> = {
  mode: 'start',
  'github-token': 'ghs_testtoken',
  image: 'ami-0123456789abcdef0',
  'instance-types': 'c7i.large, c6i.large',
  count: '2',
};

function parse(inputs: Record<string, string>, env: Record<string, string> = ENV, event?: unknown) {
  const e = env as NodeJS.ProcessEnv;
  return parseConfig((n) => inputs[n] ?? '', e, runContext(e, event));
}
const start = (over: Record<string, string> = {}) => parse({ ...START, ...over }) as StartConfig;
const stop = (over: Record<string, string>) => parse({ mode: 'stop', 'github-token': 't', ...over }) as StopConfig;
const reap = (over: Record<string, string> = {}) => parse({ mode: 'reap', 'github-token': 't', ...over }) as ReapConfig;
const pool = (over: Record<string, string> = {}) =>
  parse({ ...START, mode: 'pool', pool: 'warm', ...over }) as PoolConfig;

/** The whole message of the InputError fn throws; any other outcome fails the test. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputError) return e.message;
    throw e;
  }
  throw new Error('expected an InputError, but the input was accepted');
}

const PEM = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----';
const APP = { 'github-token': '', 'github-app-id': '4242', 'github-app-private-key': PEM };
const NOT_PEM =
  "Input 'github-app-private-key': it is not a PEM private key. Fix: paste the whole .pem " +
  "file the App's settings page generated, BEGIN and END lines included";
const NOT_APP_ID = (id: string) =>
  `Input 'github-app-id': '${id}' is neither an App id nor a client id. Fix: give the App's ` +
  `numeric id (or its client id, Iv…) from the App's settings page`;

describe('booleans', () => {
  it('reads true and false in their three spellings, trimmed, and the default when empty', () => {
    expect(start({ 'dry-run': ' true ' }).dryRun).toBe(true);
    expect(start({ 'dry-run': 'TRUE' }).dryRun).toBe(true);
    // dry-run defaults to false and on-demand-fallback to true: 'false' must really give false for both.
    expect(start({ 'dry-run': 'false' }).dryRun).toBe(false);
    expect(start({ 'on-demand-fallback': 'False' }).onDemandFallback).toBe(false);
    expect(start({ 'on-demand-fallback': ' FALSE ' }).onDemandFallback).toBe(false);
    expect(start({ 'on-demand-fallback': '  ' }).onDemandFallback).toBe(true);
  });
  it.each(['xtrue', 'truex', 'xfalse', 'falsex'])('refuses %j: the whole value must be the word', (v) => {
    expect(refusal(() => start({ 'job-imds-access': v }))).toBe(
      `Input 'job-imds-access': '${v}' is not a boolean. Fix: use 'true' or 'false'`,
    );
  });
});

describe('numbers', () => {
  it('trims, and takes the maximum itself', () => {
    expect(start({ count: ' 3 ' }).count).toBe(3);
    expect(start({ count: '100' }).count).toBe(100);
    expect(start({ 'wait-timeout': '120' }).waitTimeoutMinutes).toBe(120);
  });
  it('refuses one above the maximum', () => {
    expect(refusal(() => start({ 'wait-timeout': '121' }))).toBe(
      "Input 'wait-timeout': 121 is above the limit of 120. Fix: give at most 120",
    );
  });
  it('says "whole" only for the inputs that must be whole', () => {
    expect(refusal(() => start({ count: '-3' }))).toBe(
      "Input 'count': '-3' is not a positive whole number. Fix: give a whole number above 0, at most 100",
    );
    expect(refusal(() => start({ 'max-lifetime': 'soon' }))).toBe(
      "Input 'max-lifetime': 'soon' is not a positive number. Fix: give a number above 0, at most 10080",
    );
  });
});

describe('choices and lists', () => {
  it('trims a choice', () => {
    expect(start({ market: ' on-demand ' }).market).toBe('on-demand');
  });
  it('lists the allowed values in the fix', () => {
    expect(refusal(() => start({ market: 'dedicated' }))).toBe(
      "Input 'market': 'dedicated' is not one of spot, on-demand. Fix: set it to 'spot' or 'on-demand'",
    );
  });
  it('refuses an empty mode (it has no default)', () => {
    expect(refusal(() => parse({ ...START, mode: ' ' }))).toBe(
      "Input 'mode': '' is not one of start, stop, reap, watch, pool. Fix: set it to 'start' or " +
        "'stop' or 'reap' or 'watch' or 'pool'",
    );
  });
  it('names the item and the kind of list in the fix', () => {
    expect(refusal(() => start({ 'security-group-ids': 'sg-0123abcd, sg-xyz' }))).toBe(
      "Input 'security-group-ids': 'sg-xyz' is not a valid security group id. Fix: list " +
        'security group ids separated by commas or newlines',
    );
  });
  it('keeps valid extra labels, once each, in order', () => {
    expect(start({ labels: 'gpu, big\nbig' }).extraLabels).toEqual(['gpu', 'big']);
  });
  it('refuses a label outside the alphabet, with the fix', () => {
    expect(refusal(() => start({ labels: 'gpu, a/b' }))).toBe(
      "Input 'labels': label 'a/b' has characters outside [A-Za-z0-9._-] or is longer than 64. " +
        'Fix: use only letters, digits, dot, underscore and hyphen',
    );
  });
});

describe('tags', () => {
  it('trims lines, keys and values, skips blank lines, and allows aws: inside a key', () => {
    expect(start({ tags: 'team = platform \n\n   \ncost-centre=  42\nmy-aws:x=1' }).tags).toEqual({
      team: 'platform',
      'cost-centre': '42',
      'my-aws:x': '1',
    });
  });
  it('takes 30 tags and refuses 31', () => {
    const lines = (n: number) => Array.from({ length: n }, (_, i) => `k${i + 1}=v`).join('\n');
    expect(Object.keys(start({ tags: lines(30) }).tags)).toHaveLength(30);
    expect(refusal(() => start({ tags: lines(31) }))).toBe(
      "Input 'tags': more than 30 tags. Fix: give at most 30 tags (EC2 allows 50 and spot-runner uses up to 12)",
    );
  });
  it('refuses an empty key (a line starting with =)', () => {
    expect(refusal(() => start({ tags: '=value' }))).toBe(
      "Input 'tags': '=value' is not key=value. Fix: write one key=value per line",
    );
  });
  it('refuses a reserved prefix, with the fix', () => {
    expect(refusal(() => start({ tags: 'aws:createdBy=me' }))).toBe(
      "Input 'tags': key 'aws:createdBy' uses a reserved prefix. Fix: pick a key that does not " +
        "start with 'aws:' or 'spot-runner:'",
    );
  });
  it.each(['owner=a;b', 'a;b=owner'])('refuses %j (bad value, then bad key)', (line) => {
    expect(refusal(() => start({ tags: line }))).toBe(
      `Input 'tags': '${line}' has characters EC2 tags do not allow or is too long. Fix: use ` +
        `letters, digits, spaces and _ . : / = + - @; keys ≤ 128, values ≤ 256`,
    );
  });
});

describe('image and region', () => {
  it('trims the image', () => {
    expect(start({ image: ' ami-0123456789abcdef0 ' }).image).toEqual({ kind: 'ami', id: 'ami-0123456789abcdef0' });
  });
  it('refuses a missing image, a bad SSM name and an AMI id with junk, each with its fix', () => {
    expect(refusal(() => start({ image: '  ' }))).toBe(
      "Input 'image': it is required for start. Fix: give an AMI id (ami-…) or 'ssm:<parameter name>'",
    );
    expect(refusal(() => start({ image: 'ssm:a b' }))).toBe(
      "Input 'image': 'a b' is not a valid SSM parameter name. Fix: use 'ssm:/path/to/param', " +
        'where the name may contain {arch}',
    );
    expect(refusal(() => start({ image: 'ami-0123456789abcdef0x' }))).toBe(
      "Input 'image': 'ami-0123456789abcdef0x' is neither an AMI id nor ssm:<name>. Fix: give " +
        "'ami-0123456789abcdef0' or 'ssm:/spot-runner/ami/base/{arch}'",
    );
  });
  it('trims the region input, which wins over the environment', () => {
    expect(start({ 'aws-region': ' eu-west-1 ' }).region).toBe('eu-west-1');
  });
  it('refuses no region and a malformed one, each with its fix', () => {
    const { AWS_REGION: _drop, ...noRegion } = ENV;
    expect(refusal(() => parse(START, noRegion))).toBe(
      "Input 'aws-region': no region given and neither AWS_REGION nor AWS_DEFAULT_REGION is " +
        "set. Fix: set 'aws-region', e.g. us-east-1",
    );
    expect(refusal(() => start({ 'aws-region': 'mars-1' }))).toBe(
      "Input 'aws-region': 'mars-1' is not a region name. Fix: use a name such as us-east-1",
    );
  });
});

describe('the run context', () => {
  it('fills defaults for what the environment leaves out', () => {
    expect(runContext({ GITHUB_REPOSITORY: 'acme/widgets' }, undefined)).toEqual({
      owner: 'acme',
      repo: 'widgets',
      runId: '0',
      runAttempt: '1',
      job: 'job',
      eventName: '',
      origin: undefined,
    });
  });
  it('takes what the environment gives', () => {
    const env = {
      ...ENV,
      GITHUB_RUN_ID: '99',
      GITHUB_RUN_ATTEMPT: '3',
      GITHUB_JOB: 'build',
      GITHUB_EVENT_NAME: 'push',
    };
    expect(runContext(env, { ref: 'refs/heads/main' })).toEqual({
      owner: 'acme',
      repo: 'widgets',
      runId: '99',
      runAttempt: '3',
      job: 'build',
      eventName: 'push',
      origin: undefined,
    });
  });
  it.each([[undefined], ['acme'], ['/widgets'], ['acme/']])('refuses GITHUB_REPOSITORY %j', (repository) => {
    const env = repository === undefined ? {} : { GITHUB_REPOSITORY: repository };
    expect(refusal(() => runContext(env, undefined))).toBe(
      "Input 'GITHUB_REPOSITORY': it is not set. Fix: run the action inside GitHub Actions, or " +
        'set GITHUB_REPOSITORY=owner/name',
    );
  });
});

describe('GitHub credentials', () => {
  it('keeps a token as a token', () => {
    expect(start().githubAuth).toEqual({ kind: 'token', token: 'ghs_testtoken' });
  });
  it('refuses no credentials at all, with the whole fix', () => {
    expect(refusal(() => start({ 'github-token': '' }))).toBe(
      "Input 'github-token': neither github-token nor github-app-id with github-app-private-key " +
        'is given. Fix: pass a token that may manage self-hosted runners (e.g. ' +
        'secrets.RUNNER_ADMIN_TOKEN), or a GitHub App: github-app-id and github-app-private-key',
    );
  });
  it('counts an installation id alone as App input', () => {
    expect(refusal(() => start({ 'github-token': '', 'github-app-installation-id': '99' }))).toBe(
      "Input 'github-app-id': it is empty but github-app-private-key is given. Fix: give the " +
        "App's numeric id (or its client id, Iv…) from the App's settings page",
    );
    expect(refusal(() => start({ 'github-app-installation-id': '99' }))).toBe(
      "Input 'github-token': both github-token and GitHub App inputs (github-app-id, " +
        'github-app-private-key) are given. Fix: give either github-token or github-app-id with ' +
        'github-app-private-key, not both',
    );
  });
  it('trims the App inputs and parses the installation id to a number', () => {
    const c = start({
      ...APP,
      'github-app-id': ' 4242 ',
      'github-app-private-key': `  ${PEM}\n`,
      'github-app-installation-id': ' 99 ',
    });
    expect(c.githubAuth).toEqual({ kind: 'app', appId: '4242', privateKey: PEM, installationId: 99 });
  });
  it('leaves the installation id undefined when empty (looked up later), not 0', () => {
    expect(start(APP).githubAuth).toStrictEqual({
      kind: 'app',
      appId: '4242',
      privateKey: PEM,
      installationId: undefined,
    });
  });
  it('turns the two characters \\n into newlines (a key pasted on one line)', () => {
    const oneLine = PEM.replace(/\n/g, '\\n');
    expect(start({ ...APP, 'github-app-private-key': oneLine }).githubAuth).toMatchObject({ privateKey: PEM });
  });
  it('takes a PKCS#8 key (BEGIN PRIVATE KEY, no RSA)', () => {
    const pkcs8 = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----';
    expect(start({ ...APP, 'github-app-private-key': pkcs8 }).githubAuth).toMatchObject({ privateKey: pkcs8 });
  });
  it.each([
    ['text before BEGIN', `key: ${PEM}`],
    ['text after END', `${PEM}\nthat was the key`],
  ])('refuses a key with %s', (_what, key) => {
    expect(refusal(() => start({ ...APP, 'github-app-private-key': key }))).toBe(NOT_PEM);
  });
  it.each(['123456789012', 'Iv12345678', 'Iv1.0123456789abcdef', `Iv${'a'.repeat(40)}`])('takes App id %j', (id) => {
    expect(start({ ...APP, 'github-app-id': id }).githubAuth).toMatchObject({ kind: 'app', appId: id });
  });
  it.each(['4242x', 'x4242', '1234567890123', 'Iv1234567', `Iv${'a'.repeat(41)}`, 'Iv12345678!'])(
    'refuses App id %j',
    (id) => {
      expect(refusal(() => start({ ...APP, 'github-app-id': id }))).toBe(NOT_APP_ID(id));
    },
  );
  it('takes a 15-digit installation id', () => {
    expect(start({ ...APP, 'github-app-installation-id': '123456789012345' }).githubAuth).toMatchObject({
      installationId: 123456789012345,
    });
  });
  it.each(['99x', 'x99', '1234567890123456'])('refuses installation id %j', (inst) => {
    expect(refusal(() => start({ ...APP, 'github-app-installation-id': inst }))).toBe(
      `Input 'github-app-installation-id': '${inst}' is not a number. Fix: give the ` +
        `installation's numeric id, or leave it empty to look it up for this repository or ` +
        `organisation`,
    );
  });
});

describe('runner group', () => {
  const G64 = 'g'.repeat(64);
  it('trims it and takes names, ids and 64 characters for org runners', () => {
    expect(start({ 'runner-scope': ' org ', 'runner-group': ' GPU runners.1_a-b ' })).toMatchObject({
      scope: 'org',
      org: 'acme',
      runnerGroup: 'GPU runners.1_a-b',
    });
    expect(start({ 'runner-scope': 'org', 'runner-group': '42' }).runnerGroup).toBe('42');
    expect(start({ 'runner-scope': 'org', 'runner-group': G64 }).runnerGroup).toBe(G64);
    expect(start({ 'runner-scope': 'org' }).runnerGroup).toBeUndefined();
  });
  it('refuses a group for repository runners, with the fix', () => {
    expect(refusal(() => start({ 'runner-group': 'gpu' }))).toBe(
      "Input 'runner-group': runner groups exist only for organisation runners. Fix: set " +
        'runner-scope: org, or remove runner-group',
    );
  });
  it.each(['!gpu', 'gpu!', 'gpu$(id)', `${G64}g`])('refuses group %j', (group) => {
    expect(refusal(() => start({ 'runner-scope': 'org', 'runner-group': group }))).toBe(
      `Input 'runner-group': '${group}' is not a valid group name or id. Fix: use the group name or its numeric id`,
    );
  });
});

describe('stop inputs', () => {
  it('trims the label and the JSON ids, and drops repeated ids', () => {
    expect(stop({ label: ' spot-runner-1-1-aaaaaa-00000000 ' })).toMatchObject({
      mode: 'stop',
      label: 'spot-runner-1-1-aaaaaa-00000000',
      instanceIds: [],
    });
    expect(stop({ 'instance-ids': ' ["i-0123456789abcdef0","i-0123456789abcdef0"] ' })).toMatchObject({
      label: undefined,
      instanceIds: ['i-0123456789abcdef0'],
    });
  });
  it('refuses a label outside the alphabet, with the fix', () => {
    expect(refusal(() => stop({ label: 'a b' }))).toBe(
      "Input 'label': 'a b' has characters outside [A-Za-z0-9._-]. Fix: pass the 'label' output " +
        'of the start step unchanged',
    );
  });
  it('refuses a malformed id, with the fix', () => {
    expect(refusal(() => stop({ 'instance-ids': 'i-0123456789abcdef0, i-xyz' }))).toBe(
      "Input 'instance-ids': 'i-xyz' is not an instance id. Fix: pass the 'instance-ids' output " +
        'of the start step (a JSON array) or ids separated by commas',
    );
  });
  it('refuses nothing to stop, with the fix', () => {
    expect(refusal(() => stop({ label: ' ', 'instance-ids': ' ' }))).toBe(
      "Input 'label': stop needs something to stop. Fix: pass 'label' (the start step's label " +
        "output) and/or 'instance-ids'",
    );
  });
  it.each(['["i-0123456789abcdef0", 7]', '["i-0123456789abcdef0"'])('refuses JSON ids %j', (ids) => {
    expect(refusal(() => stop({ 'instance-ids': ids }))).toBe(
      "Input 'instance-ids': it starts with [ but is not a JSON array of strings. Fix: pass the " +
        "start step's instance-ids output unchanged",
    );
  });
});

describe('reap inputs', () => {
  it('defaults max-age to max-lifetime + 30 and confirm to empty', () => {
    const c = reap();
    expect(c).toMatchObject({ mode: 'reap', maxAgeMinutes: 390, confirm: '', region: 'us-east-1', dryRun: false });
    expect(reap({ 'max-lifetime': '60' }).maxAgeMinutes).toBe(90);
    expect(reap({ 'max-age': '   ' }).maxAgeMinutes).toBe(390);
  });
  it('takes max-age, fractions included, without confirm when above 0', () => {
    expect(reap({ 'max-age': '45' })).toMatchObject({ maxAgeMinutes: 45, confirm: '' });
    expect(reap({ 'max-age': ' 0.5 ' }).maxAgeMinutes).toBe(0.5);
  });
  it.each(['abc', '-1', 'Infinity'])('refuses max-age %j', (age) => {
    expect(refusal(() => reap({ 'max-age': age }))).toBe(
      `Input 'max-age': '${age}' is not a number of minutes ≥ 0. Fix: give minutes, e.g. 390`,
    );
  });
  it.each([[''], ['yes'], ['Everything']])('refuses max-age 0 with confirm %j', (confirm) => {
    expect(refusal(() => reap({ 'max-age': '0', confirm }))).toBe(
      "Input 'confirm': max-age 0 would remove every spot-runner resource in the region. Fix: " +
        'set confirm: everything if that is what you want, or raise max-age',
    );
  });
  it('takes max-age 0 with confirm: everything (trimmed)', () => {
    expect(reap({ 'max-age': '0', confirm: ' everything ' })).toMatchObject({
      mode: 'reap',
      maxAgeMinutes: 0,
      confirm: 'everything',
    });
  });
});

describe('instance types and subnets', () => {
  const types = (n: number) => Array.from({ length: n }, (_, i) => `t${i + 1}.large`).join(',');
  const subnets = (n: number) => Array.from({ length: n }, (_, i) => `subnet-${String(i).padStart(8, '0')}`).join(',');
  it('refuses none, with the fix', () => {
    expect(refusal(() => start({ 'instance-types': ' ' }))).toBe(
      "Input 'instance-types': it is required for start. Fix: list one or more types in order " +
        'of preference, e.g. c7i.xlarge, c6i.xlarge',
    );
  });
  it('takes 20 types and refuses 21', () => {
    expect(start({ 'instance-types': types(20) }).instanceTypes).toHaveLength(20);
    expect(refusal(() => start({ 'instance-types': types(21) }))).toBe(
      "Input 'instance-types': 21 types given. Fix: list at most 20",
    );
  });
  it('takes types × subnets = 300 and refuses 301 (7 × 43)', () => {
    expect(start({ 'instance-types': types(20), 'subnet-ids': subnets(15) }).subnetIds).toHaveLength(15);
    expect(refusal(() => start({ 'instance-types': types(7), 'subnet-ids': subnets(43) }))).toBe(
      "Input 'subnet-ids': instance-types × subnet-ids exceeds the 300 overrides one fleet " +
        'allows. Fix: list fewer types or subnets',
    );
  });
  it('takes exact-type with one type', () => {
    expect(start({ 'instance-types': 'c7i.large', 'exact-type': 'true' })).toMatchObject({
      exactType: true,
      instanceTypes: ['c7i.large'],
    });
  });
  it('refuses exact-type with two, listing them', () => {
    expect(refusal(() => start({ 'exact-type': 'true' }))).toBe(
      "Input 'exact-type': it allows one instance type, but instance-types lists 2 (c7i.large, " +
        'c6i.large). Fix: list exactly one type, or set exact-type: false to let EC2 fall back to ' +
        'the others',
    );
  });
});

describe('max-spot-price', () => {
  it('is undefined when empty, and kept as given (trimmed) otherwise', () => {
    expect(start().maxSpotPrice).toBeUndefined();
    expect(start({ 'max-spot-price': ' 0.25 ' }).maxSpotPrice).toBe('0.25');
  });
  it.each(['1', '12', '10.5', '0.125'])('takes %j', (price) => {
    expect(start({ 'max-spot-price': price }).maxSpotPrice).toBe(price);
  });
  it.each(['0', '0.0', '-1', '+1', '.5', '1.', '1e3', 'abc', '1.2.3'])('refuses %j', (price) => {
    expect(refusal(() => start({ 'max-spot-price': price }))).toBe(
      `Input 'max-spot-price': '${price}' is not a price. Fix: give USD per hour, e.g. 0.25, or leave it empty`,
    );
  });
});

describe('instance profile and volume', () => {
  it('tells an ARN from a name, trimmed', () => {
    expect(
      start({ 'instance-profile': ' arn:aws:iam::123456789012:instance-profile/ci/runner ' }).instanceProfile,
    ).toEqual({ arn: 'arn:aws:iam::123456789012:instance-profile/ci/runner' });
    expect(start({ 'instance-profile': ' spot-runner-ci ' }).instanceProfile).toEqual({ name: 'spot-runner-ci' });
    expect(start().instanceProfile).toBeUndefined();
  });
  it('refuses neither, with the fix', () => {
    expect(refusal(() => start({ 'instance-profile': 'a b' }))).toBe(
      "Input 'instance-profile': 'a b' is neither a profile name nor its ARN. Fix: give the " +
        'instance profile name, or arn:aws:iam::<account>:instance-profile/<name>',
    );
  });
  it('takes 8 GiB to 16384 GiB, trimmed, and no size when blank', () => {
    expect(start({ 'volume-size': ' 8 ' }).volumeSize).toBe(8);
    expect(start({ 'volume-size': '16384' }).volumeSize).toBe(16384);
    expect(start({ 'volume-size': '   ' }).volumeSize).toBeUndefined();
  });
  it('refuses 7 GiB, 16385 GiB and a fraction', () => {
    expect(refusal(() => start({ 'volume-size': '7' }))).toBe(
      "Input 'volume-size': 7 GiB is too small for a runner. Fix: give at least 8 (GiB)",
    );
    expect(refusal(() => start({ 'volume-size': '16385' }))).toBe(
      "Input 'volume-size': 16385 is above the limit of 16384. Fix: give at most 16384",
    );
    expect(refusal(() => start({ 'volume-size': '8.5' }))).toBe(
      "Input 'volume-size': '8.5' is not a positive whole number. Fix: give a whole number above 0, at most 16384",
    );
  });
});

describe('timeouts and admission', () => {
  it('takes idle-timeout equal to max-lifetime, refuses one more', () => {
    expect(start({ 'max-lifetime': '30', 'idle-timeout': '30' })).toMatchObject({
      maxLifetimeMinutes: 30,
      idleTimeoutMinutes: 30,
    });
    expect(refusal(() => start({ 'max-lifetime': '30', 'idle-timeout': '31' }))).toBe(
      "Input 'idle-timeout': 31 is longer than max-lifetime (30). Fix: make idle-timeout shorter than max-lifetime",
    );
  });
  it('takes max-running equal to count, and no cap when blank', () => {
    expect(start({ count: '4', 'max-running': '4' }).maxRunning).toBe(4);
    expect(start({ 'max-running': '   ' }).maxRunning).toBeUndefined();
  });
  it('refuses max-running below count, with the fix', () => {
    expect(refusal(() => start({ count: '4', 'max-running': '3' }))).toBe(
      "Input 'max-running': 3 is below count (4): this start could never be admitted. Fix: " +
        'raise max-running to at least count, lower count, or leave max-running empty for no cap',
    );
  });
});

describe('warm pool inputs', () => {
  it('start: trims pool and claims from it; no pool field without one', () => {
    expect(start({ pool: ' warm-1 ' })).toMatchObject({ mode: 'start', pool: 'warm-1', market: 'spot' });
    expect(start()).not.toHaveProperty('pool');
  });
  it('refuses a pool name outside the alphabet, with the fix', () => {
    expect(refusal(() => start({ pool: '-warm' }))).toBe(
      "Input 'pool': '-warm' is not a pool name. Fix: use 1-32 lower-case letters, digits and " +
        'hyphens, starting with a letter or digit',
    );
  });
  it('mode pool: on-demand without fallback whatever market says, size 1 and a day of ttl by default', () => {
    const c = pool({ market: 'spot', 'on-demand-fallback': 'true' });
    expect(c).toMatchObject({
      mode: 'pool',
      pool: 'warm',
      size: 1,
      poolTtlMinutes: 1440,
      market: 'on-demand',
      onDemandFallback: false,
      instanceTypes: ['c7i.large', 'c6i.large'],
    });
  });
  it('mode pool: reads size (up to 100) and pool-ttl', () => {
    expect(pool({ size: '5', 'pool-ttl': '60' })).toMatchObject({ size: 5, poolTtlMinutes: 60 });
    expect(pool({ size: '100' }).size).toBe(100);
  });
  it('mode pool: refuses a fractional size and 101', () => {
    expect(refusal(() => pool({ size: '1.5' }))).toBe(
      "Input 'size': '1.5' is not a positive whole number. Fix: give a whole number above 0, at most 100",
    );
    expect(refusal(() => pool({ size: '101' }))).toBe(
      "Input 'size': 101 is above the limit of 100. Fix: give at most 100",
    );
  });
  it('mode pool: refuses no pool name, with the fix', () => {
    expect(refusal(() => pool({ pool: ' ' }))).toBe(
      "Input 'pool': mode pool needs the name of the pool to fill. Fix: set pool: NAME (and the " +
        'same pool: NAME on the starts that should claim from it)',
    );
  });
});

describe('watch inputs', () => {
  const RUNNER = { name: 'spot-runner-4242-1-abc123-deadbeef-1', id: 7, instanceId: 'i-0123456789abcdef0' };
  const WATCH = {
    ...START,
    mode: 'watch',
    label: 'spot-runner-4242-1-abc123-deadbeef',
    runners: JSON.stringify([RUNNER]),
  };
  const watch = (over: Record<string, string>) => parse({ ...WATCH, ...over }) as WatchConfig;
  const NOT_RUNNERS =
    "Input 'runners': it is not a non-empty JSON array of {name, id, instanceId}. Fix: pass " +
    "the start step's 'runners' output unchanged (needs.start.outputs.runners)";

  it('trims label, max-replacements and cancel-token', () => {
    expect(
      watch({ label: ' spot-runner-4242-1-abc123-deadbeef ', 'max-replacements': ' 3 ', 'cancel-token': ' ghs_c ' }),
    ).toMatchObject({ label: 'spot-runner-4242-1-abc123-deadbeef', maxReplacements: 3, cancelToken: 'ghs_c' });
  });
  it('defaults max-replacements to 2 when blank, and takes 20', () => {
    expect(watch({ 'max-replacements': '   ' }).maxReplacements).toBe(2);
    expect(watch({ 'max-replacements': '20' }).maxReplacements).toBe(20);
  });
  it.each([[''], ['   ']])('leaves cancel-token %j undefined (github-token is used)', (token) => {
    expect(watch({ 'cancel-token': token }).cancelToken).toBeUndefined();
  });
  it.each(['21', 'x3'])('refuses max-replacements %j, with the fix', (max) => {
    expect(refusal(() => watch({ 'max-replacements': max }))).toBe(
      `Input 'max-replacements': '${max}' is not a whole number from 0 to 20. Fix: give how ` +
        `many replacement machines watch may start in all, 0 to 20 (0: cancel the run at the ` +
        `first loss)`,
    );
  });
  it('refuses a missing or crafted label, with the fix', () => {
    expect(refusal(() => watch({ label: ' ' }))).toBe(
      "Input 'label': watch needs the label start returned. Fix: pass the start step's 'label' " +
        'output (needs.start.outputs.label)',
    );
    expect(refusal(() => watch({ label: 'a b' }))).toBe(
      "Input 'label': 'a b' has characters outside [A-Za-z0-9._-]. Fix: pass the 'label' output " +
        'of the start step unchanged',
    );
  });
  it('refuses blank runners as missing, not as bad JSON', () => {
    expect(refusal(() => watch({ runners: '   ' }))).toBe(
      "Input 'runners': watch needs to know which runner each machine holds. Fix: pass the " +
        "start step's 'runners' output unchanged (needs.start.outputs.runners)",
    );
  });
  const { name: _n, ...noName } = RUNNER;
  const { id: _i, ...noId } = RUNNER;
  const { instanceId: _d, ...noInstance } = RUNNER;
  it.each([
    ['not an array', RUNNER],
    ['a null entry', [null]],
    ['a string entry', ['spot-runner-1']],
    ['no name', [noName]],
    ['a numeric name', [{ ...RUNNER, name: 123 }]],
    ['a name outside the alphabet', [{ ...RUNNER, name: 'a b' }]],
    ['no id', [noId]],
    ['a string id', [{ ...RUNNER, id: '7' }]],
    ['a fractional id', [{ ...RUNNER, id: 1.5 }]],
    ['no instance id', [noInstance]],
    ['an instance id in an array', [{ ...RUNNER, instanceId: ['i-0123456789abcdef0'] }]],
    ['one good entry and one bad', [RUNNER, { ...RUNNER, id: 'x' }]],
  ])('refuses runners with %s', (_what, runners) => {
    expect(refusal(() => watch({ runners: JSON.stringify(runners) }))).toBe(NOT_RUNNERS);
  });
});

describe('fork origin', () => {
  const SELF = { id: 1296269, full_name: 'acme/widgets' };
  const FORK = { id: 5550001, full_name: 'mallory/widgets' };
  const pr = (head: object | null) => ({ pull_request: { head: { repo: head } }, repository: SELF });
  const run = (event: string, head: object | null, repository: object | undefined = SELF) => ({
    workflow_run: { event, head_repository: head, repository },
    repository: SELF,
  });

  it('reads every pull_request* event, not others that happen to carry a pull request', () => {
    expect(forkOrigin('pull_request_review', pr(FORK))).toEqual({
      route: 'pull_request_review',
      foreign: true,
      head: 'mallory/widgets',
    });
    expect(forkOrigin('pull_request_target', pr(SELF))).toEqual({
      route: 'pull_request_target',
      foreign: false,
      head: 'acme/widgets',
    });
    expect(forkOrigin('push', pr(FORK))).toBeUndefined();
    expect(forkOrigin('', pr(FORK))).toBeUndefined();
  });
  it('treats a pull request without head as from a deleted repository', () => {
    expect(forkOrigin('pull_request', { pull_request: {}, repository: SELF })).toEqual({
      route: 'pull_request',
      foreign: true,
      head: 'a deleted repository (head.repo is null)',
    });
  });
  it('treats ids it cannot compare as foreign, and names a head without full_name by id', () => {
    expect(forkOrigin('pull_request', { pull_request: { head: { repo: { full_name: 'acme/widgets' } } } })).toEqual({
      route: 'pull_request',
      foreign: true,
      head: 'acme/widgets',
    });
    expect(forkOrigin('pull_request', pr({ id: 5550001 }))).toEqual({
      route: 'pull_request',
      foreign: true,
      head: 'repository id 5550001',
    });
  });
  it('reads workflow_run of any pull_request* run, naming its event', () => {
    expect(forkOrigin('workflow_run', run('pull_request_target', FORK))).toEqual({
      route: 'workflow_run of a pull_request_target run',
      foreign: true,
      head: 'mallory/widgets',
    });
  });
  it('ignores workflow_run of a push (even from elsewhere), and a workflow_run payload under another event', () => {
    expect(forkOrigin('workflow_run', run('push', FORK))).toBeUndefined();
    expect(forkOrigin('push', run('pull_request', FORK))).toBeUndefined();
    expect(forkOrigin('workflow_run', { repository: SELF })).toBeUndefined();
  });
  it("compares workflow_run's head with its own repository, else the event's", () => {
    const { repository: _r, ...onlyRun } = run('pull_request', SELF);
    expect(forkOrigin('workflow_run', onlyRun)).toEqual({
      route: 'workflow_run of a pull_request run',
      foreign: false,
      head: 'acme/widgets',
    });
    expect(forkOrigin('workflow_run', run('pull_request', SELF, undefined))).toEqual({
      route: 'workflow_run of a pull_request run',
      foreign: false,
      head: 'acme/widgets',
    });
  });
  it('treats issue_comment on a pull request as foreign, naming the number or ? without one', () => {
    expect(forkOrigin('issue_comment', { issue: { number: 42, pull_request: {} }, repository: SELF })).toEqual({
      route: 'issue_comment on a pull request',
      foreign: true,
      head: 'pull request #42 (the comment payload does not name its head repository)',
    });
    expect(forkOrigin('issue_comment', { issue: { pull_request: {} } })).toEqual({
      route: 'issue_comment on a pull request',
      foreign: true,
      head: 'pull request #? (the comment payload does not name its head repository)',
    });
  });
  it('ignores an issue_comment without an issue, and an issue payload under another event', () => {
    expect(forkOrigin('issue_comment', { repository: SELF })).toBeUndefined();
    expect(forkOrigin('push', { issue: { number: 42, pull_request: {} } })).toBeUndefined();
  });
  it('the guard refuses a foreign origin with the whole reason and fix', () => {
    const ctx = runContext({ ...ENV, GITHUB_EVENT_NAME: 'pull_request' }, pr(FORK));
    expect(refusal(() => forkGuard(ctx, false))).toBe(
      "Input 'allow-forks': refusing to start runners for pull_request from mallory/widgets: a " +
        'self-hosted runner would run code from outside the repository with access to your AWS ' +
        'network and instance role. Fix: run it from a branch of this repository, or set ' +
        "allow-forks: true only if the job never checks out or runs the pull request's code",
    );
  });
});

describe('tuning', () => {
  it.each([
    [undefined, 2],
    ['', 2],
    ['0', 0],
    ['5', 5],
    ['0.5', 0.5],
    ['-1', 2],
    ['abc', 2],
    ['Infinity', 2],
  ])('SPOT_RUNNER_SSM_PUTS_PER_SECOND=%j → %d puts a second', (raw, puts) => {
    const env = raw === undefined ? {} : { SPOT_RUNNER_SSM_PUTS_PER_SECOND: raw };
    expect(tuning(env).ssmPutsPerSecond).toBe(puts);
  });
  it('reads process.env by default', () => {
    const saved = process.env.SPOT_RUNNER_SSM_PUTS_PER_SECOND;
    process.env.SPOT_RUNNER_SSM_PUTS_PER_SECOND = '7';
    try {
      expect(tuning().ssmPutsPerSecond).toBe(7);
    } finally {
      if (saved === undefined) delete process.env.SPOT_RUNNER_SSM_PUTS_PER_SECOND;
      else process.env.SPOT_RUNNER_SSM_PUTS_PER_SECOND = saved;
    }
  });
});
