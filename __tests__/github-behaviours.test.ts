// The product against GitHub's documented behaviours, in the unit world (nock, test/fakes/github.ts):
// JIT labels, a lost answer (409 on the resend), the two kinds of 422 on DELETE, rate-limit
// buckets, and GitHub App authentication. The lab (__tests__/lab/github-faithful.test.ts) runs
// the same through dist/ against the stand-in; __tests__/contract holds the two worlds together.
import { describe, expect, it } from '@jest/globals';
import { recordRateLimit, type RateLimit, makeGitHub, connectGitHub } from '../src/github/client.js';
import { deleteRunner } from '../src/github/runners.js';
import { makeTestApp } from '../test/fakes/github-app.js';
import { NockGitHub, offlineGitHub } from '../test/fakes/github.js';
import { rig, runStart } from '../test/fakes/harness.js';

offlineGitHub();
const T = { scope: 'repo' as const, owner: 'acme', repo: 'widgets' };
const HOME = /^sr-home-[0-9a-f]{8}$/;

describe('JIT labels', () => {
  it('registers self-hosted, Linux and X64 next to the unique, home and extra labels (x86_64 image)', async () => {
    const r = rig();
    const res = await runStart(r, { count: '1', labels: 'spot, kani' });
    const names = [...r.github.runners.values()][0]?.labels.map((l) => l.name) ?? [];
    expect(names.slice(0, 4)).toEqual(['self-hosted', 'Linux', 'X64', res.label]);
    expect(names[4]).toMatch(HOME);
    expect(names.slice(5)).toEqual(['spot', 'kani']);
  });
  it('registers ARM64 for an arm64 image, and never repeats a built-in label given as extra', async () => {
    const r = rig();
    await runStart(r, {
      count: '1',
      image: 'ami-0a0a0a0a0a0a0a0a0',
      'instance-types': 'c7g.large',
      labels: 'self-hosted, linux, ARM64, gpu',
    });
    const names = [...r.github.runners.values()][0]?.labels.map((l) => l.name) ?? [];
    expect(names.filter((n) => !HOME.test(n) && !n.startsWith('spot-runner-'))).toEqual([
      'self-hosted',
      'Linux',
      'ARM64',
      'gpu',
    ]);
  });
});

describe('a lost answer of generate-jitconfig', () => {
  it('recovers from 409 on the resend: finds the runner by name, deletes it, creates it again; nothing stays behind', async () => {
    const r = rig();
    // GitHub creates the runner, the answer is lost (502), the retry plugin resends and gets 409.
    r.github.faults.jit = [{ status: 502, lose: true }];
    const res = await runStart(r, { count: '1' });
    expect(res.runners).toHaveLength(1);
    const posts = r.github.requests.filter((q) => q.method === 'POST');
    expect(posts).toHaveLength(3); // lost, 409, re-created
    expect(r.github.requests.filter((q) => q.method === 'DELETE')).toHaveLength(1);
    expect(
      r.github.requests.some(
        (q) => q.method === 'GET' && q.path.includes(`name=${encodeURIComponent(res.runners[0]?.name ?? '')}`),
      ),
    ).toBe(true);
    expect([...r.github.runners.values()].map((x) => x.name)).toEqual([res.runners[0]?.name]);
    expect(r.logs.join('\n')).toMatch(/already exists \(a lost answer/);
  });
  it('gives up after a bounded number of attempts and rolls back, leaving no runner registered', async () => {
    const r = rig();
    r.github.faults.jit = [
      { status: 502, lose: true },
      { status: 502, lose: true },
      { status: 502, lose: true },
      { status: 502, lose: true },
      { status: 502, lose: true },
      { status: 502, lose: true },
      { status: 502, lose: true },
      { status: 502, lose: true },
    ];
    process.env.SPOT_RUNNER_GITHUB_RETRIES = '1';
    try {
      await expect(runStart(r, { count: '1' })).rejects.toThrow(/still exists after 3 attempts|502/);
    } finally {
      delete process.env.SPOT_RUNNER_GITHUB_RETRIES;
    }
    expect(r.github.runners.size).toBe(0);
  });
});

describe('DELETE runner: 422 means busy, or the endpoint has been spammed', () => {
  it('reports a busy runner as busy, without retrying', async () => {
    const gh = new NockGitHub();
    gh.runners.set(1, { id: 1, name: 'r-1', status: 'online', busy: true, labels: [] });
    process.env.SPOT_RUNNER_GITHUB_RETRY_BASE_MS = '1';
    expect(await deleteRunner(makeGitHub('ghs_testtoken'), T, 1)).toBe('busy');
    expect(gh.requests.filter((q) => q.method === 'DELETE')).toHaveLength(1);
  });
  it('retries a "spammed" 422 after a pause and then deletes', async () => {
    const gh = new NockGitHub();
    gh.runners.set(1, { id: 1, name: 'r-1', status: 'offline', busy: false, labels: [] });
    gh.faults.delete = [
      { status: 422, body: { message: 'Validation Failed: the endpoint has been spammed', errors: [] } },
    ];
    const slept: number[] = [];
    expect(await deleteRunner(makeGitHub('ghs_testtoken'), T, 1, { sleep: async (ms) => void slept.push(ms) })).toBe(
      'deleted',
    );
    expect(slept).toHaveLength(1);
    expect(gh.runners.size).toBe(0);
  });
  it('fails with the message when the spam refusal does not end', async () => {
    const gh = new NockGitHub();
    gh.runners.set(1, { id: 1, name: 'r-1', status: 'offline', busy: false, labels: [] });
    gh.faults.delete = Array.from({ length: 10 }, () => ({
      status: 422,
      body: { message: 'endpoint has been spammed' },
    }));
    await expect(
      deleteRunner(makeGitHub('ghs_testtoken'), T, 1, { spamRetries: 2, sleep: async () => {} }),
    ).rejects.toThrow(/Deleting runner 1 failed: .*spammed/);
  });
});

describe('rate-limit buckets (x-ratelimit-resource)', () => {
  it('keeps the core bucket apart from actions_runner_registration', () => {
    const rate: RateLimit = {};
    recordRateLimit(rate, {
      'x-ratelimit-remaining': '4000',
      'x-ratelimit-reset': '100',
      'x-ratelimit-resource': 'core',
    });
    recordRateLimit(rate, {
      'x-ratelimit-remaining': '3',
      'x-ratelimit-reset': '200',
      'x-ratelimit-resource': 'actions_runner_registration',
    });
    expect(rate).toMatchObject({
      remaining: 4000,
      resetEpochSeconds: 100,
      buckets: { actions_runner_registration: { remaining: 3, resetEpochSeconds: 200 } },
    });
  });
  it('does not pause the waiter when only the registration bucket is nearly spent', async () => {
    const r = rig();
    r.github.registrationRemaining = 1;
    r.github.rateResetSeconds = 3600;
    const slept: number[] = [];
    r.deps.sleep = async (ms) => {
      slept.push(ms);
      await new Promise((res) => setTimeout(res, 2));
    };
    await runStart(r, { count: '1' });
    expect(slept.length).toBeGreaterThan(0);
    expect(Math.max(...slept)).toBeLessThan(60_000);
  });
  it('honours retry-after on a secondary rate limit', async () => {
    const r = rig();
    r.github.faults.jit = [
      {
        status: 403,
        headers: { 'retry-after': '7' },
        body: { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' },
      },
    ];
    const warnings: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => {
      warnings.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    try {
      await runStart(r, { count: '1' });
    } finally {
      process.stdout.write = write;
    }
    expect(warnings.join('')).toMatch(/secondary rate limit on POST .*retrying in 7s/);
    expect(r.github.requests.filter((q) => q.method === 'POST')).toHaveLength(2);
  });
});

describe('GitHub App authentication', () => {
  it('mints an installation token (looking the installation up) and uses it for the runner API', async () => {
    const gh = new NockGitHub();
    const app = makeTestApp();
    gh.apps.register(app);
    const octokit = await connectGitHub({ kind: 'app', appId: String(app.appId), privateKey: app.privateKey }, T);
    const res = await octokit.request('GET /repos/{owner}/{repo}/actions/runners', { owner: 'acme', repo: 'widgets' });
    expect(res.status).toBe(200);
    expect(gh.requests.map((q) => `${q.method} ${q.path.split('?')[0]}`)).toEqual([
      'GET /repos/acme/widgets/installation',
      `POST /app/installations/${app.installationId}/access_tokens`,
      'GET /repos/acme/widgets/actions/runners',
    ]);
    expect(gh.apps.tokens.size).toBe(1);
  });
  it('refuses a JWT signed with another key, naming the input', async () => {
    const gh = new NockGitHub();
    const app = makeTestApp();
    gh.apps.register(app);
    const other = makeTestApp();
    await expect(
      connectGitHub({ kind: 'app', appId: String(app.appId), privateKey: other.privateKey }, T),
    ).rejects.toThrow(/Input 'github-app-private-key': GitHub refused the App's JWT \(401\)/);
  });
  it('says the App is not installed, naming the input and the fix', async () => {
    const gh = new NockGitHub();
    const app = makeTestApp({ scopes: ['repos/other/repo'] });
    gh.apps.register(app);
    await expect(
      connectGitHub({ kind: 'app', appId: String(app.appId), privateKey: app.privateKey }, T),
    ).rejects.toThrow(
      /Input 'github-app-id': GitHub App 4242 is not installed on the repository acme\/widgets.*Fix: install the App/,
    );
  });
  it('rejects an unknown token', async () => {
    new NockGitHub();
    await expect(
      makeGitHub('ghs_stolen').request('GET /repos/{owner}/{repo}/actions/runners', { owner: 'acme', repo: 'widgets' }),
    ).rejects.toMatchObject({ status: 401 });
  });
});
