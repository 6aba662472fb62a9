import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { getOctokit } from '@actions/github';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { GitHubStandIn } from '../../test/lab/github.js';
import { loadOperations, toJsonSchema } from '../../test/lab/openapi.js';

const OWNER = 'octo-org';
const REPO = 'octo-repo';
const REPO_RUNNERS = `/repos/${OWNER}/${REPO}/actions/runners`;

let gh: GitHubStandIn;

const octokit = (token = gh.token) => getOctokit(token, { baseUrl: gh.url });
const api = (path: string, init: RequestInit & { auth?: string | null } = {}) =>
  fetch(gh.url + path, {
    ...init,
    headers: {
      'content-type': 'application/json',
      ...(init.auth === null ? {} : { authorization: init.auth ?? `Bearer ${gh.token}` }),
      ...(init.headers as Record<string, string> | undefined),
    },
  });
const lab = (endpoint: string, body: string) => fetch(`${gh.url}/_lab/${endpoint}`, { method: 'POST', body });
const statusOf = async (p: Promise<unknown>) =>
  p.then(
    () => 200,
    (e: { status?: number }) => e.status ?? -1,
  );

async function jitRunner(name: string, labels = ['self-hosted', 'Linux', 'X64', 'spot-1']) {
  const { data } = await octokit().rest.actions.generateRunnerJitconfigForRepo({
    owner: OWNER,
    repo: REPO,
    name,
    runner_group_id: 1,
    labels,
  });
  return data;
}

beforeAll(async () => {
  gh = await GitHubStandIn.start({
    token: 'ghs_labtoken',
    runnerGroups: [{ id: 2, name: 'gpu', visibility: 'selected' }],
  });
});
afterAll(async () => {
  await gh.close();
});
beforeEach(() => gh.reset());
// Tests that provoke violations on purpose remove them; any other violation fails the test.
afterEach(() => gh.assertNoViolations());

describe('the OpenAPI description', () => {
  it('is loaded once per process', () => {
    const ops = loadOperations();
    expect(loadOperations()).toBe(ops);
    expect(ops.map((o) => o.operationId)).toContain('actions/generate-runner-jitconfig-for-org');
  });

  it('translates OpenAPI 3.0 nullable and drops documentation keys', () => {
    expect(toJsonSchema({ type: 'string', nullable: true, example: '2.3', 'x-github': {} })).toEqual({
      type: ['string', 'null'],
    });
    expect(toJsonSchema({ enum: ['a'], nullable: true })).toEqual({ enum: ['a', null] });
    expect(toJsonSchema({ properties: { example: { type: 'integer' } } })).toEqual({
      properties: { example: { type: 'integer' } },
    });
  });
});

describe('runner REST API', () => {
  it('creates a repo JIT runner whose config decodes to a secret', async () => {
    const data = await jitRunner('spot-a');
    expect(data.runner).toMatchObject({
      name: 'spot-a',
      status: 'offline',
      busy: false,
      os: 'unknown',
      ephemeral: true,
    });
    expect(data.runner.labels.map((l) => [l.name, l.type])).toEqual([
      ['self-hosted', 'read-only'],
      ['Linux', 'read-only'],
      ['X64', 'read-only'],
      ['spot-1', 'custom'],
    ]);
    const config = GitHubStandIn.decodeJitConfig(data.encoded_jit_config);
    expect(config).toMatchObject({ runner_id: data.runner.id, url: gh.url });
    expect(config?.secret).toMatch(/^labjit_[0-9a-f]{48}$/);
    expect(gh.issuedSecrets).toEqual(expect.arrayContaining([config?.secret, data.encoded_jit_config]));
    expect(gh.calls['generate-jitconfig']).toBe(1);
  });

  it('creates org JIT runners in a runner group, with 404 for an unknown group and 409 for a taken name', async () => {
    const ok = octokit();
    // plugin-rest-endpoint-methods has no method for this route, so go by the route itself
    const groups = await ok.paginate('GET /orgs/{org}/actions/runner-groups', { org: OWNER, per_page: 1 });
    expect(gh.calls['list-runner-groups']).toBe(2);
    expect(groups.map((g) => [g.id, g.name, g.default])).toEqual([
      [1, 'Default', true],
      [2, 'gpu', false],
    ]);
    const made = await ok.rest.actions.generateRunnerJitconfigForOrg({
      org: OWNER,
      name: 'org-1',
      runner_group_id: 2,
      labels: ['gpu'],
    });
    expect(made.status).toBe(201);
    expect(made.data.runner.runner_group_id).toBe(2);
    expect(
      await statusOf(
        ok.rest.actions.generateRunnerJitconfigForOrg({
          org: OWNER,
          name: 'org-2',
          runner_group_id: 99,
          labels: ['x'],
        }),
      ),
    ).toBe(404);
    expect(
      await statusOf(
        ok.rest.actions.generateRunnerJitconfigForOrg({ org: OWNER, name: 'org-1', runner_group_id: 1, labels: ['x'] }),
      ),
    ).toBe(409);
    // the repo collection is separate from the org's
    const repoList = await ok.rest.actions.listSelfHostedRunnersForRepo({ owner: OWNER, repo: REPO });
    expect(repoList.data.total_count).toBe(0);
    const orgRunner = await ok.rest.actions.getSelfHostedRunnerForOrg({ org: OWNER, runner_id: made.data.runner.id });
    expect(orgRunner.data.name).toBe('org-1');
  });

  it('paginates like GitHub: Link header, total_count, and Octokit paginate across 3 pages', async () => {
    for (let i = 1; i <= 7; i++) gh.seedRunner({ scope: `repos/${OWNER}/${REPO}`, name: `r-${i}` });
    gh.seedRunner({ scope: `repos/${OWNER}/other`, name: 'elsewhere' });

    const first = await api(`${REPO_RUNNERS}?per_page=3`);
    const body = (await first.json()) as { total_count: number; runners: Array<{ name: string }> };
    expect(body.total_count).toBe(7);
    expect(body.runners.map((r) => r.name)).toEqual(['r-1', 'r-2', 'r-3']);
    expect(first.headers.get('link')).toBe(
      `<${gh.url}${REPO_RUNNERS}?per_page=3&page=2>; rel="next", <${gh.url}${REPO_RUNNERS}?per_page=3&page=3>; rel="last"`,
    );
    const middle = await api(`${REPO_RUNNERS}?per_page=3&page=2`);
    expect(middle.headers.get('link')).toContain('rel="prev"');
    expect(middle.headers.get('link')).toContain('rel="first"');

    const all = await octokit().paginate(octokit().rest.actions.listSelfHostedRunnersForRepo, {
      owner: OWNER,
      repo: REPO,
      per_page: 3,
    });
    expect(all.map((r) => r.name)).toEqual(['r-1', 'r-2', 'r-3', 'r-4', 'r-5', 'r-6', 'r-7']);
    expect(gh.calls['list-runners']).toBe(2 + 3);

    const named = await octokit().rest.actions.listSelfHostedRunnersForRepo({ owner: OWNER, repo: REPO, name: 'r-5' });
    expect(named.data.runners.map((r) => r.name)).toEqual(['r-5']);
    expect(named.data.total_count).toBe(1);
  });

  it('gets, lists labels and deletes; 404 once gone; 422 while busy', async () => {
    const ok = octokit();
    const { runner } = await jitRunner('spot-b');
    const got = await ok.rest.actions.getSelfHostedRunnerForRepo({ owner: OWNER, repo: REPO, runner_id: runner.id });
    expect(got.data).toEqual(runner);
    const labels = await ok.rest.actions.listLabelsForSelfHostedRunnerForRepo({
      owner: OWNER,
      repo: REPO,
      runner_id: runner.id,
    });
    expect(labels.data.labels.map((l) => l.name)).toContain('spot-1');

    const busy = gh.seedRunner({ scope: `repos/${OWNER}/${REPO}`, name: 'busy', status: 'online', busy: true });
    const refused = await ok.rest.actions
      .deleteSelfHostedRunnerFromRepo({ owner: OWNER, repo: REPO, runner_id: busy.id })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 422, message: expect.stringContaining('is still running a job') });

    const del = await ok.rest.actions.deleteSelfHostedRunnerFromRepo({
      owner: OWNER,
      repo: REPO,
      runner_id: runner.id,
    });
    expect(del.status).toBe(204);
    expect(
      await statusOf(ok.rest.actions.getSelfHostedRunnerForRepo({ owner: OWNER, repo: REPO, runner_id: runner.id })),
    ).toBe(404);
    expect(
      await statusOf(
        ok.rest.actions.deleteSelfHostedRunnerFromRepo({ owner: OWNER, repo: REPO, runner_id: runner.id }),
      ),
    ).toBe(404);
    expect(gh.calls['delete-runner']).toBe(3);
  });
});

describe('OpenAPI enforcement', () => {
  it('flags a request body without name, and labels that are not an array', async () => {
    const noName = await api(`${REPO_RUNNERS}/generate-jitconfig`, {
      method: 'POST',
      body: JSON.stringify({ runner_group_id: 1, labels: ['a'] }),
    });
    expect(noName.status).toBe(500);
    expect(((await noName.json()) as { message: string }).message).toContain("must have required property 'name'");
    const notArray = await api(`${REPO_RUNNERS}/generate-jitconfig`, {
      method: 'POST',
      body: JSON.stringify({ name: 'x', runner_group_id: 1, labels: 'a,b' }),
    });
    expect(notArray.status).toBe(500);
    expect(gh.violations.map((v) => [v.kind, v.errors.join()])).toEqual([
      ['request', expect.stringContaining("required property 'name'")],
      ['request', expect.stringContaining('/labels must be array')],
    ]);
    expect(() => gh.assertNoViolations()).toThrow(/2 OpenAPI violation/);
    expect(gh.runners.size).toBe(0);
    gh.violations.splice(0);
  });

  it('flags bad path and query parameters and routes GitHub does not have', async () => {
    expect((await api(`${REPO_RUNNERS}/abc`)).status).toBe(500); // runner_id must be an integer
    expect((await api(`${REPO_RUNNERS}?labels=gpu`)).status).toBe(500); // no such filter in the API
    expect((await api(`/repos/${OWNER}/${REPO}/actions/runners/registration-token`, { method: 'POST' })).status).toBe(
      404,
    );
    expect((await api('/nope')).status).toBe(404);
    expect(gh.violations.map((v) => v.kind)).toEqual(['request', 'request', 'route', 'route']);
    expect(gh.violations[2]?.errors[0]).toContain('does not implement');
    gh.violations.splice(0);
  });

  it('flags a broken response and answers 500 instead', async () => {
    const { runner } = await jitRunner('spot-c');
    gh.corruptNextResponse('get-runner', (b) => ({ ...(b as object), busy: 'no', labels: undefined }));
    const failed = await octokit()
      .rest.actions.getSelfHostedRunnerForRepo({ owner: OWNER, repo: REPO, runner_id: runner.id })
      .catch((e: unknown) => e);
    expect(failed).toMatchObject({ status: 500 });
    expect(gh.violations).toHaveLength(1);
    expect(gh.violations[0]).toMatchObject({ kind: 'response', operation: 'actions/get-self-hosted-runner-for-repo' });
    expect(gh.violations[0]?.errors.join()).toMatch(/busy must be boolean/);
    expect(gh.violations[0]?.errors.join()).toMatch(/required property 'labels'/);
    gh.violations.splice(0);
    // only one response was corrupted
    expect(
      (await octokit().rest.actions.getSelfHostedRunnerForRepo({ owner: OWNER, repo: REPO, runner_id: runner.id }))
        .status,
    ).toBe(200);
  });

  it('flags an injected 422 where the operation does not document one', async () => {
    const { runner } = await jitRunner('spot-d');
    gh.inject({ operation: 'delete-runner', status: 422 });
    expect(
      await statusOf(
        octokit().rest.actions.deleteSelfHostedRunnerFromRepo({ owner: OWNER, repo: REPO, runner_id: runner.id }),
      ),
    ).toBe(422);
    expect(gh.violations).toHaveLength(0);
    gh.inject({ operation: 'get-runner', status: 422 });
    expect(
      await statusOf(
        octokit().rest.actions.getSelfHostedRunnerForRepo({ owner: OWNER, repo: REPO, runner_id: runner.id }),
      ),
    ).toBe(500);
    expect(gh.violations[0]?.errors[0]).toMatch(/status 422 is not a documented response/);
    gh.violations.splice(0);
  });
});

describe('authorization and rate limits', () => {
  it('answers 401 without a token or with a wrong one, and accepts Bearer and token', async () => {
    const none = await api(REPO_RUNNERS, { auth: null });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ message: 'Requires authentication' });
    const wrong = await api(REPO_RUNNERS, { auth: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ message: 'Bad credentials' });
    expect(
      await statusOf(octokit('ghs_wrong').rest.actions.listSelfHostedRunnersForRepo({ owner: OWNER, repo: REPO })),
    ).toBe(401);
    expect((await api(REPO_RUNNERS, { auth: `token ${gh.token}` })).status).toBe(200);
    expect((await api(REPO_RUNNERS, { auth: `Bearer ${gh.token}` })).status).toBe(200);
  });

  it('sends decreasing rate-limit headers and answers 403 with remaining 0 when the budget is spent', async () => {
    const a = await api(REPO_RUNNERS);
    const b = await api(REPO_RUNNERS);
    for (const h of [
      'x-ratelimit-limit',
      'x-ratelimit-remaining',
      'x-ratelimit-used',
      'x-ratelimit-reset',
      'x-ratelimit-resource',
    ]) {
      expect(a.headers.get(h)).not.toBeNull();
    }
    expect(a.headers.get('x-ratelimit-resource')).toBe('core');
    expect(Number(b.headers.get('x-ratelimit-remaining'))).toBe(Number(a.headers.get('x-ratelimit-remaining')) - 1);
    expect(Number(b.headers.get('x-ratelimit-used'))).toBe(Number(a.headers.get('x-ratelimit-used')) + 1);
    expect(Number(a.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);

    gh.setRateLimit({ remaining: 1 });
    expect((await api(REPO_RUNNERS)).status).toBe(200);
    const spent = await api(REPO_RUNNERS);
    expect(spent.status).toBe(403);
    expect(spent.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(((await spent.json()) as { message: string }).message).toMatch(/^API rate limit exceeded/);
  });

  it("enforces GitHub's secondary limit by default: 900 points a minute per endpoint, GET 1 point, POST 5", async () => {
    for (let i = 0; i < 900; i++) expect((await api(`${REPO_RUNNERS}?per_page=1`)).status).toBe(200);
    const over = await api(REPO_RUNNERS);
    expect(over.status).toBe(403);
    expect(over.headers.get('retry-after')).toBe('60');
    expect(((await over.json()) as { message: string }).message).toMatch(/secondary rate limit/);
    expect(gh.secondaryLimitHits).toBe(1);
    // Another endpoint has its own minute.
    const { runner } = await jitRunner('spot-secondary-0');
    expect((await api(`${REPO_RUNNERS}/${runner.id}`)).status).toBe(200);
    // 1 JIT above + 179 = 180 × 5 = 900 points, all allowed; the next would make 905.
    for (let i = 1; i <= 179; i++) await jitRunner(`spot-secondary-${i}`);
    expect(await statusOf(jitRunner('spot-secondary-180'))).toBe(403);
    expect(gh.secondaryLimitHits).toBe(2);
  });

  it('refills at x-ratelimit-reset, which the throttling plugin waits for', async () => {
    gh.setRateLimit({ remaining: 0, resetInSeconds: 1 });
    const onRateLimit = jest.fn(() => true);
    const client = getOctokit(
      gh.token,
      { baseUrl: gh.url, throttle: { onRateLimit, onSecondaryRateLimit: () => false } },
      throttling,
    );
    const res = await client.rest.actions.listSelfHostedRunnersForRepo({ owner: OWNER, repo: REPO });
    expect(res.status).toBe(200);
    expect(onRateLimit).toHaveBeenCalledTimes(1);
  });
});

describe('fault injection', () => {
  it('fails twice with 503, and plugin-retry gets through on the third call', async () => {
    const { runner } = await jitRunner('spot-e');
    gh.inject({ operation: 'get-runner', status: 503, times: 2 });
    // plugin-retry overwrites request.retryAfter with (n+1)^2; retryAfterBaseValue scales it down to ms
    const client = getOctokit(
      gh.token,
      { baseUrl: gh.url, request: { retries: 3 }, retry: { retryAfterBaseValue: 5 } },
      retry,
    );
    const res = await client.rest.actions.getSelfHostedRunnerForRepo({
      owner: OWNER,
      repo: REPO,
      runner_id: runner.id,
    });
    expect(res.data.id).toBe(runner.id);
    expect(gh.calls['get-runner']).toBe(3);
    expect(gh.requests.filter((r) => r.operation === 'get-runner').map((r) => r.status)).toEqual([503, 503, 200]);
  });

  it('keeps an outage up until cleared', async () => {
    gh.injectOutage('generate-jitconfig', 502);
    const client = getOctokit(
      gh.token,
      { baseUrl: gh.url, request: { retries: 2 }, retry: { retryAfterBaseValue: 5 } },
      retry,
    );
    const make = () =>
      client.rest.actions.generateRunnerJitconfigForRepo({
        owner: OWNER,
        repo: REPO,
        name: 'x',
        runner_group_id: 1,
        labels: ['a'],
      });
    expect(await statusOf(make())).toBe(502);
    expect(gh.calls['generate-jitconfig']).toBe(3);
    gh.clearFaults();
    expect((await make()).status).toBe(201);
  });

  it('sends a secondary rate limit with retry-after, which the throttling plugin honours', async () => {
    gh.inject({ operation: '*', status: 'secondary-rate-limit', retryAfter: 1 });
    const raw = await api(REPO_RUNNERS);
    expect(raw.status).toBe(403);
    expect(raw.headers.get('retry-after')).toBe('1');
    expect(((await raw.json()) as { message: string }).message).toMatch(/^You have exceeded a secondary rate limit/);
    // The fault fired once; asked again at once, before the retry-after has passed, GitHub still refuses.
    const again = await api(REPO_RUNNERS);
    expect(again.status).toBe(403);
    expect(again.headers.get('retry-after')).toBe('1');

    gh.inject({ operation: 'generate-jitconfig', status: 'secondary-rate-limit', retryAfter: 1 });
    const onSecondaryRateLimit = jest.fn(
      (_after: number, _opts: unknown, _o: unknown, retryCount: number) => retryCount === 0,
    );
    const client = getOctokit(
      gh.token,
      { baseUrl: gh.url, throttle: { onSecondaryRateLimit, onRateLimit: () => false } },
      throttling,
    );
    const made = await client.rest.actions.generateRunnerJitconfigForRepo({
      owner: OWNER,
      repo: REPO,
      name: 'y',
      runner_group_id: 1,
      labels: ['a'],
    });
    expect(made.status).toBe(201);
    expect(onSecondaryRateLimit).toHaveBeenCalledTimes(1);
    expect(onSecondaryRateLimit.mock.calls[0]?.[0]).toBe(1);
    // The stand-in refuses a retry sent before retry-after has passed (and the handler would then
    // say no): two calls and one refusal mean the client waited.
    expect(gh.calls['generate-jitconfig']).toBe(2);
  });
});

describe('/_lab: the fake runner', () => {
  it('connects, takes a job, finishes it, disconnects, and is deleted as an ephemeral runner', async () => {
    const { runner, encoded_jit_config: jit } = await jitRunner('spot-f', ['self-hosted', 'Linux', 'X64', 'spot-f']);
    const get = () =>
      octokit().rest.actions.getSelfHostedRunnerForRepo({ owner: OWNER, repo: REPO, runner_id: runner.id });

    expect((await lab('connect', jit)).status).toBe(200);
    expect((await get()).data).toMatchObject({ status: 'online', busy: false, os: 'Linux' });
    expect((await lab('take-job', jit)).status).toBe(204);

    gh.queueJob({ id: 'other', labels: ['gpu'] }); // not this runner's
    gh.queueJob({ id: 42, labels: ['self-hosted', 'spot-f'] });
    const take = await lab('take-job', jit);
    expect(take.status).toBe(200);
    expect(await take.json()).toEqual({ job: { id: 42, labels: ['self-hosted', 'spot-f'] } });
    expect((await get()).data.busy).toBe(true);
    expect(
      await statusOf(
        octokit().rest.actions.deleteSelfHostedRunnerFromRepo({ owner: OWNER, repo: REPO, runner_id: runner.id }),
      ),
    ).toBe(422);

    expect((await lab('job-done', JSON.stringify({ jit_config: jit, result: 'succeeded' }))).status).toBe(200);
    expect((await get()).data.busy).toBe(false);
    expect(await (await lab('disconnect', jit)).json()).toEqual({ deleted: true });
    expect(await statusOf(get())).toBe(404);
    expect(gh.jobs.find((j) => j.id === 42)).toMatchObject({
      runnerId: runner.id,
      runnerName: 'spot-f',
      result: 'succeeded',
    });
    expect(gh.jobs.find((j) => j.id === 'other')?.runnerId).toBeUndefined();
    // a removed runner's config no longer works
    expect((await lab('connect', jit)).status).toBe(404);
  });

  it('long-polls for a job, rejects forged configs, and keeps a runner that never ran a job', async () => {
    const { runner, encoded_jit_config: jit } = await jitRunner('spot-g');
    await lab('connect', jit);
    setTimeout(() => gh.queueJob({ labels: ['spot-1'] }), 100);
    const waited = await fetch(`${gh.url}/_lab/take-job?wait=3000`, { method: 'POST', body: jit });
    expect(waited.status).toBe(200);
    await lab('job-done', jit);
    expect((await lab('take-job', jit)).status).toBe(409); // an ephemeral runner takes one job

    const config = GitHubStandIn.decodeJitConfig(jit);
    const forged = Buffer.from(JSON.stringify({ ...config, secret: 'labjit_guess' })).toString('base64');
    expect((await lab('connect', forged)).status).toBe(401);
    expect((await lab('connect', 'not-a-config')).status).toBe(401);

    const idle = await jitRunner('spot-idle');
    await lab('connect', idle.encoded_jit_config);
    expect(await (await lab('disconnect', idle.encoded_jit_config)).json()).toEqual({ deleted: false });
    expect(gh.runners.get(idle.runner.id)?.status).toBe('offline');
    expect(gh.runners.has(runner.id)).toBe(true);
  });

  it('serves a curl-based run.sh that keeps the JIT config out of argv', async () => {
    const { runner, encoded_jit_config: jit } = await jitRunner('spot-h');
    gh.queueJob({ id: 7, labels: ['spot-1'] });
    const dir = mkdtempSync(join(tmpdir(), 'standin-'));
    try {
      writeFileSync(join(dir, '.jit'), jit, { mode: 0o600 });
      const script = [
        'set -eu',
        'post() { curl -sf -o /dev/null -w "%{http_code}\\n" -X POST --data-binary @"$DIR/.jit" "$URL/_lab/$1"; }',
        'post connect',
        'post "take-job?wait=1000"',
        'post job-done',
        'post disconnect',
      ].join('\n');
      const { stdout } = await promisify(execFile)('bash', ['-c', script], {
        env: { ...process.env, DIR: dir, URL: gh.url },
      });
      expect(stdout.trim().split('\n')).toEqual(['200', '200', '200', '200']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(gh.jobs[0]).toMatchObject({ id: 7, runnerId: runner.id, result: 'succeeded' });
    expect(gh.runners.has(runner.id)).toBe(false);
  });
});
