// One contract for the two GitHub worlds: the nock fake the unit tests use (test/fakes/github.ts)
// and the lab's OpenAPI-checked stand-in (test/lab/github.ts). Each assertion runs in both, so
// they cannot drift apart; each is a GitHub behaviour listed in docs/platform-behaviours.md.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import nock from 'nock';
import { makeGitHub, connectGitHub, recordRateLimit, type GitHub, type RateLimit } from '../../src/github/client.js';
import { createJitRunner, deleteRunner, getRunner, isBusyRefusal, listRunners } from '../../src/github/runners.js';
import { cancelRun } from '../../src/modes/watch.js';
import { makeTestApp, type TestApp } from '../../test/fakes/github-app.js';
import { NockGitHub } from '../../test/fakes/github.js';
import { GitHubStandIn } from '../../test/lab/github.js';

const T = { scope: 'repo' as const, owner: 'acme', repo: 'widgets' };

interface GitHubWorld {
  readonly baseUrl: string;
  readonly token: string;
  open(): Promise<void>;
  reset(): Promise<void>;
  close(): Promise<void>;
  /** A runner registered the old way (not JIT): for pagination, 404 and 422 checks. */
  seed(name: string, o?: { busy?: boolean; status?: 'online' | 'offline' }): number;
  /** The machine holding this JIT config starts its runner. */
  connect(encodedJitConfig: string): Promise<void>;
  loseNextAnswer(): void;
  spamNextDelete(): void;
  registerApp(app: TestApp): void;
  runnerNames(): string[];
  /** A workflow run with one queued job (the job, where the world models jobs). */
  startRun(id: number): void;
  runState(id: number): { status: string; conclusion?: string; queuedJobCancelled?: boolean };
  /** The job's GITHUB_TOKEN, with the given actions permission. */
  jobToken(actions: 'read' | 'write'): string;
  /** Lowers GitHub's secondary limit (900 points a minute per endpoint) for a short test. */
  setSecondaryLimit(points: number): void;
  secondaryLimitHits(): number;
}

class NockWorld implements GitHubWorld {
  readonly baseUrl = 'https://api.github.com';
  readonly token = 'ghs_testtoken';
  private gh?: NockGitHub;
  private seq = 5000;
  async open() {
    nock.disableNetConnect();
  }
  async reset() {
    nock.cleanAll();
    this.gh = new NockGitHub(this.baseUrl);
  }
  async close() {
    nock.cleanAll();
    nock.enableNetConnect();
  }
  private get g(): NockGitHub {
    if (!this.gh) throw new Error('reset() first');
    return this.gh;
  }
  seed(name: string, o: { busy?: boolean; status?: 'online' | 'offline' } = {}) {
    const id = this.seq++;
    this.g.runners.set(id, {
      id,
      name,
      status: o.status ?? 'offline',
      busy: o.busy ?? false,
      labels: [{ id: 1, name: 'self-hosted', type: 'read-only' }],
    });
    return id;
  }
  async connect(encoded: string) {
    if (!this.g.connect(encoded)) throw new Error('no runner holds that JIT config');
  }
  loseNextAnswer() {
    this.g.faults.jit = [{ status: 502, lose: true }];
  }
  spamNextDelete() {
    this.g.faults.delete = [
      { status: 422, body: { message: 'Validation Failed: the endpoint has been spammed.', errors: [] } },
    ];
  }
  registerApp(app: TestApp) {
    this.g.apps.register(app);
  }
  runnerNames() {
    return [...this.g.runners.values()].map((r) => r.name);
  }
  startRun(id: number) {
    this.g.runs.set(id, { status: 'in_progress' });
  }
  runState(id: number) {
    const r = this.g.runs.get(id);
    return { status: r?.status ?? 'unknown', conclusion: r?.conclusion };
  }
  jobToken(actions: 'read' | 'write') {
    this.g.jobTokenActions = actions;
    return this.g.jobToken;
  }
  setSecondaryLimit(points: number) {
    this.g.secondaryPointsPerMinute = points;
  }
  secondaryLimitHits() {
    return this.g.secondaryLimitHits;
  }
}

class StandInWorld implements GitHubWorld {
  private s?: GitHubStandIn;
  private get g(): GitHubStandIn {
    if (!this.s) throw new Error('open() first');
    return this.s;
  }
  get baseUrl() {
    return this.g.url;
  }
  get token() {
    return this.g.token;
  }
  async open() {
    this.s = await GitHubStandIn.start();
  }
  async reset() {
    this.g.assertNoViolations();
    this.g.reset();
  }
  async close() {
    await this.s?.close();
  }
  seed(name: string, o: { busy?: boolean; status?: 'online' | 'offline' } = {}) {
    return this.g.seedRunner({ scope: 'repos/acme/widgets', name, busy: o.busy, status: o.status }).id;
  }
  async connect(encoded: string) {
    const res = await fetch(`${this.g.url}/_lab/connect`, { method: 'POST', body: encoded });
    if (res.status !== 200) throw new Error(`connect: ${res.status} ${await res.text()}`);
  }
  loseNextAnswer() {
    this.g.inject({ operation: 'generate-jitconfig', status: 'lost-answer' });
  }
  spamNextDelete() {
    this.g.inject({ operation: 'delete-runner', status: 'spammed' });
  }
  registerApp(app: TestApp) {
    this.g.registerApp(app);
  }
  runnerNames() {
    return [...this.g.runners.values()].map((r) => r.name);
  }
  private readonly queued = new Map<number, ReturnType<GitHubStandIn['queueJob']>>();
  startRun(id: number) {
    this.queued.set(id, this.g.queueJob({ labels: ['spot-runner-nobody-has-this'], runId: id }));
  }
  runState(id: number) {
    const r = this.g.runs.get(id);
    return {
      status: r?.status ?? 'unknown',
      conclusion: r?.conclusion,
      queuedJobCancelled: this.queued.get(id)?.result === 'cancelled',
    };
  }
  jobToken(actions: 'read' | 'write') {
    this.g.setJobTokenPermissions({ actions });
    return this.g.jobToken;
  }
  setSecondaryLimit(points: number) {
    this.g.secondaryPointsPerMinute = points;
  }
  secondaryLimitHits() {
    return this.g.secondaryLimitHits;
  }
}

describe.each([
  ['the nock fake', () => new NockWorld()],
  ['the lab stand-in', () => new StandInWorld()],
] as const)('GitHub contract: %s', (_name, make) => {
  const w: GitHubWorld = make();
  let gh: GitHub;
  const prev = { ...process.env };
  beforeAll(async () => {
    await w.open();
  });
  beforeEach(async () => {
    await w.reset();
    process.env.GITHUB_API_URL = w.baseUrl;
    process.env.SPOT_RUNNER_GITHUB_RETRY_BASE_MS = '1';
    process.env.SPOT_RUNNER_GITHUB_WRITE_GAP_MS = '0';
    gh = makeGitHub(w.token);
  });
  afterEach(() => {
    process.env = { ...prev };
  });
  afterAll(async () => {
    await w.close();
  });

  // The raw cancel call (not cancelRun), so each world's status code is seen as GitHub sends it.
  const cancelRequest = (runId: number, client: GitHub = gh, options: { request?: { retries: number } } = {}) =>
    client.request('POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel', {
      owner: 'acme',
      repo: 'widgets',
      run_id: runId,
      ...options,
    });

  // The raw DELETE (not deleteRunner): what it rejects with, so both kinds of 422 are seen as sent.
  const deleteRequestError = (runnerId: number) =>
    gh
      .request('DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}', {
        owner: 'acme',
        repo: 'widgets',
        runner_id: runnerId,
      })
      .catch((x: unknown) => x);

  it('cancels a workflow run: 202 with an empty object, the run ends cancelled (its queued job too), a second cancel gets 409', async () => {
    w.startRun(777);
    const r = await cancelRequest(777);
    expect(r.status).toBe(202);
    expect(r.data).toEqual({});
    expect(w.runState(777)).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
    if (w instanceof StandInWorld) expect(w.runState(777).queuedJobCancelled).toBe(true);
    await expect(cancelRequest(777)).rejects.toMatchObject({ status: 409 });
    expect(await cancelRun(gh, { owner: 'acme', repo: 'widgets', runId: '777' })).toMatch(/already completed/);
    await expect(cancelRequest(778)).rejects.toMatchObject({ status: 404 });
  });

  it("refuses the cancel to a job's GITHUB_TOKEN without actions: write (403), and lets it through with it", async () => {
    w.startRun(779);
    const readOnly = makeGitHub(w.jobToken('read'));
    await expect(cancelRequest(779, readOnly, { request: { retries: 0 } })).rejects.toMatchObject({ status: 403 });
    await expect(cancelRun(readOnly, { owner: 'acme', repo: 'widgets', runId: '779' })).rejects.toThrow(
      /permissions: actions: write/,
    );
    expect(w.runState(779).status).toBe('in_progress');
    const writer = makeGitHub(w.jobToken('write'));
    expect(await cancelRun(writer, { owner: 'acme', repo: 'widgets', runId: '779' })).toBe(
      'cancelled workflow run 779',
    );
    expect(w.runState(779)).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
  });

  it('secondary limit: over the points a minute of one endpoint (GET 1, POST 5) is a 403 with retry-after; another endpoint has its own', async () => {
    w.setSecondaryLimit(5);
    const list = () =>
      fetch(`${w.baseUrl}/repos/acme/widgets/actions/runners?per_page=1`, {
        headers: { authorization: `Bearer ${w.token}` },
      });
    for (let i = 0; i < 5; i++) expect((await list()).status).toBe(200);
    const over = await list();
    expect(over.status).toBe(403);
    expect(over.headers.get('retry-after')).toBe('60');
    expect(((await over.json()) as { message: string }).message).toMatch(/secondary rate limit/);
    const jit = (name: string) =>
      fetch(`${w.baseUrl}/repos/acme/widgets/actions/runners/generate-jitconfig`, {
        method: 'POST',
        headers: { authorization: `Bearer ${w.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name, runner_group_id: 1, labels: ['spot-x'] }),
      });
    expect((await jit('spot-secondary-1')).status).toBe(201);
    expect((await jit('spot-secondary-2')).status).toBe(403);
    expect(w.secondaryLimitHits()).toBe(2);
  });

  it('answers 404 for an unknown runner, on GET and DELETE', async () => {
    expect(await getRunner(gh, T, 987654)).toBeUndefined();
    await expect(
      gh.request('GET /repos/{owner}/{repo}/actions/runners/{runner_id}', {
        owner: 'acme',
        repo: 'widgets',
        runner_id: 987654,
      }),
    ).rejects.toMatchObject({ status: 404 });
    expect(await deleteRunner(gh, T, 987654)).toBe('gone');
  });

  it('answers 422 "still running a job" to DELETE of a busy runner', async () => {
    const id = w.seed('spot-runner-1-1-aaaaaa-00000001-1', { busy: true, status: 'online' });
    const e = await deleteRequestError(id);
    expect(e).toMatchObject({ status: 422 });
    expect(isBusyRefusal(e)).toBe(true);
    expect(await deleteRunner(gh, T, id)).toBe('busy');
  });

  it('answers the other 422, "the endpoint has been spammed", which is not busy and passes after a pause', async () => {
    const id = w.seed('spot-runner-1-1-aaaaaa-00000001-2');
    w.spamNextDelete();
    const e = await deleteRequestError(id);
    expect(e).toMatchObject({ status: 422 });
    expect(isBusyRefusal(e)).toBe(false);
    w.spamNextDelete();
    expect(await deleteRunner(gh, T, id, { sleep: async () => {} })).toBe('deleted');
    expect(w.runnerNames()).toEqual([]);
  });

  it('keeps a JIT runner offline until its machine connects', async () => {
    const jit = await createJitRunner(
      gh,
      T,
      'spot-runner-1-1-aaaaaa-00000002-1',
      ['spot-runner-1-1-aaaaaa-00000002'],
      1,
    );
    expect((await getRunner(gh, T, jit.runner.id))?.status).toBe('offline');
    expect(jit.runner.status).toBe('offline');
    await w.connect(jit.encodedJitConfig);
    expect((await getRunner(gh, T, jit.runner.id))?.status).toBe('online');
  });

  it('gives a JIT runner exactly the labels of the request: no self-hosted, OS or architecture added', async () => {
    const jit = await createJitRunner(
      gh,
      T,
      'spot-runner-1-1-aaaaaa-00000003-1',
      ['spot-runner-1-1-aaaaaa-00000003', 'kani'],
      1,
    );
    expect((await getRunner(gh, T, jit.runner.id))?.labels).toEqual(['spot-runner-1-1-aaaaaa-00000003', 'kani']);
    const full = await createJitRunner(
      gh,
      T,
      'spot-runner-1-1-aaaaaa-00000003-2',
      ['self-hosted', 'Linux', 'X64', 'kani'],
      1,
    );
    expect((await getRunner(gh, T, full.runner.id))?.labels).toEqual(['self-hosted', 'Linux', 'X64', 'kani']);
  });

  it('pages the runner list (per_page, Link rel="next") and filters it by name', async () => {
    for (let k = 1; k <= 130; k++) w.seed(`spot-runner-9-1-cccccc-0000000${k % 10}-${k}`);
    const page = await gh.request('GET /repos/{owner}/{repo}/actions/runners', {
      owner: 'acme',
      repo: 'widgets',
      per_page: 50,
    });
    expect(page.data.runners).toHaveLength(50);
    expect(page.data.total_count).toBe(130);
    expect(page.headers.link).toMatch(/rel="next"/);
    expect(await listRunners(gh, T)).toHaveLength(130);
    expect((await listRunners(gh, T, 'spot-runner-9-1-cccccc-00000007-17')).map((r) => r.name)).toEqual([
      'spot-runner-9-1-cccccc-00000007-17',
    ]);
  });

  it('answers 409 Already exists to a second runner of the same name', async () => {
    await createJitRunner(gh, T, 'spot-runner-1-1-aaaaaa-00000004-1', ['x'], 1);
    const body = {
      owner: 'acme',
      repo: 'widgets',
      name: 'spot-runner-1-1-aaaaaa-00000004-1',
      runner_group_id: 1,
      labels: ['x'],
    };
    await expect(
      gh.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', body),
    ).rejects.toMatchObject({ status: 409, message: expect.stringMatching(/Already exists/) });
  });

  it('can lose the answer of a request it carried out; the resend then gets 409, and createJitRunner recovers', async () => {
    w.loseNextAnswer();
    const body = {
      owner: 'acme',
      repo: 'widgets',
      name: 'spot-runner-1-1-aaaaaa-00000005-1',
      runner_group_id: 1,
      labels: ['x'],
      request: { retries: 0 },
    };
    await expect(
      gh.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', body),
    ).rejects.toMatchObject({ status: 502 });
    expect(w.runnerNames()).toEqual(['spot-runner-1-1-aaaaaa-00000005-1']);

    w.loseNextAnswer();
    const jit = await createJitRunner(gh, T, 'spot-runner-1-1-aaaaaa-00000006-1', ['x'], 1);
    expect(w.runnerNames().filter((n) => n.endsWith('00000006-1'))).toEqual(['spot-runner-1-1-aaaaaa-00000006-1']);
    expect((await getRunner(gh, T, jit.runner.id))?.name).toBe('spot-runner-1-1-aaaaaa-00000006-1');
  });

  it('names the rate-limit bucket of each answer: generate-jitconfig draws on actions_runner_registration, the rest on core', async () => {
    const jit = await gh.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', {
      owner: 'acme',
      repo: 'widgets',
      name: 'spot-runner-1-1-aaaaaa-00000008-1',
      runner_group_id: 1,
      labels: ['x'],
    });
    const list = await gh.request('GET /repos/{owner}/{repo}/actions/runners', { owner: 'acme', repo: 'widgets' });
    for (const h of [jit.headers, list.headers])
      for (const k of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'])
        expect(h[k]).toMatch(/^\d+$/);
    expect(jit.headers['x-ratelimit-resource']).toBe('actions_runner_registration');
    expect(list.headers['x-ratelimit-resource']).toBe('core');
    const rate: RateLimit = {};
    recordRateLimit(rate, list.headers as Record<string, string>);
    recordRateLimit(rate, jit.headers as Record<string, string>);
    expect(rate.remaining).toBe(Number(list.headers['x-ratelimit-remaining']));
    expect(rate.buckets?.actions_runner_registration?.remaining).toBe(Number(jit.headers['x-ratelimit-remaining']));
  });

  it('authenticates a GitHub App: JWT → installation → one-hour token; unknown tokens and foreign keys are refused', async () => {
    const app = makeTestApp();
    w.registerApp(app);
    const appGh = await connectGitHub({ kind: 'app', appId: String(app.appId), privateKey: app.privateKey }, T);
    const { token, expiresAt } = (await appGh.auth({ type: 'installation' })) as { token: string; expiresAt: string };
    expect(token).toMatch(/^ghs_/);
    const hours = (Date.parse(expiresAt) - Date.now()) / 3_600_000;
    expect(hours).toBeGreaterThan(0.95);
    expect(hours).toBeLessThanOrEqual(1.0);
    expect((await listRunners(appGh, T)).length).toBe(0);
    await expect(
      makeGitHub('ghs_unknown').request('GET /repos/{owner}/{repo}/actions/runners', {
        owner: 'acme',
        repo: 'widgets',
      }),
    ).rejects.toMatchObject({ status: 401 });
    const stranger = makeTestApp();
    await expect(
      connectGitHub({ kind: 'app', appId: String(app.appId), privateKey: stranger.privateKey }, T),
    ).rejects.toThrow(/github-app-private-key/);
  });
});
