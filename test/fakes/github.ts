import { afterAll, afterEach, beforeAll } from '@jest/globals';
import nock from 'nock';
import { AppRegistry } from './github-app.js';

export interface FakeRunner {
  id: number;
  name: string;
  status: 'online' | 'offline';
  busy: boolean;
  labels: { id: number; name: string; type: 'read-only' | 'custom' }[];
}

/**
 * null lets one request through untouched, so a fault can be aimed at the n-th call.
 * `lose: true` carries the request out and then answers with the status: a lost answer.
 */
type Fault = { status: number; headers?: Record<string, string>; body?: unknown; lose?: boolean } | null;

// GitHub's own labels; config.sh adds them, a JIT runner gets only what its request names.
const READ_ONLY = new Set(['self-hosted', 'linux', 'windows', 'macos', 'x64', 'arm64', 'arm']);
/** Tokens the fake accepts besides the installation tokens it issued. */
export const FAKE_TOKENS = ['ghs_testtoken'];

/**
 * GitHub's runner API through nock, for unit tests. Runners live in a map; `faults` queues
 * responses per operation (jit, get, list, delete, installation, token) so a test can put a 5xx,
 * a rate limit or a lost answer exactly where it wants. A JIT runner is offline until a
 * (simulated) machine connects with its JIT config: `connect()`.
 */
export class NockGitHub {
  runners = new Map<number, FakeRunner>();
  /** Every request as it arrived; a JIT POST keeps its body (name, runner_group_id, labels). */
  requests: { method: string; path: string; body?: unknown }[] = [];
  faults: Record<string, Fault[]> = {};
  /** What x-ratelimit-remaining says on core answers. */
  rateRemaining = 4000;
  rateResetSeconds = 3600;
  /** generate-jitconfig draws on its own bucket, actions_runner_registration. */
  registrationRemaining = 9000;
  /** GitHub's secondary limit: points a minute per endpoint (GET 1, writes 5), sliding. */
  secondaryPointsPerMinute = 900;
  /** Requests refused by the secondary limit. */
  secondaryLimitHits = 0;
  private readonly points = new Map<string, [number, number][]>();
  /** Called after a JIT runner is created; by default nothing happens: it stays offline. */
  onCreate: (r: FakeRunner) => void = () => {};
  readonly apps = new AppRegistry();
  tokens = new Set(FAKE_TOKENS);
  /** Workflow runs (no jobs here: the lab stand-in models those); a cancel completes one as cancelled. */
  runs = new Map<number, { status: 'in_progress' | 'completed'; conclusion?: 'cancelled' }>();
  /** The job's GITHUB_TOKEN: no runner administration; cancels only with actions: write. */
  readonly jobToken = 'ghs_jobtoken';
  jobTokenActions: 'read' | 'write' = 'read';
  private nextId = 100;
  private readonly configs = new Map<string, number>();
  readonly scope: nock.Scope;

  constructor(
    readonly base = 'https://api.github.com',
    readonly owner = 'acme',
    readonly repo = 'widgets',
  ) {
    const prefix = `/repos/${owner}/${repo}/actions/runners`;
    const rl = (resource = 'core') => ({
      'x-ratelimit-limit': resource === 'core' ? '5000' : '10000',
      'x-ratelimit-remaining': String(resource === 'core' ? this.rateRemaining : this.registrationRemaining),
      'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + this.rateResetSeconds),
      'x-ratelimit-resource': resource,
    });
    const unauthorized = (auth: string | undefined): nock.ReplyFnResult | undefined => {
      const t = /^(?:token|bearer)\s+(\S+)$/i.exec(auth ?? '')?.[1] ?? '';
      return this.tokens.has(t) || this.apps.tokenValid(t)
        ? undefined
        : [401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' }, rl()];
    };
    // Runs `act` unless a fault says otherwise; a lost answer runs it and still fails.
    const guarded = (
      op: string,
      req: { headers: Record<string, string | string[]> },
      act: () => nock.ReplyFnResult,
      resource = 'core',
    ): nock.ReplyFnResult => {
      const bad = unauthorized(req.headers.authorization as string | undefined);
      if (bad) return bad;
      const limited = this.secondaryLimit(op, rl(resource));
      if (limited) return limited;
      const f = this.faults[op]?.shift();
      if (!f) return act();
      if (f.lose) act();
      return [f.status, f.body ?? { message: `injected ${f.status}` }, { ...rl(resource), ...(f.headers ?? {}) }];
    };
    const runnerOf = (uri: string) => this.runners.get(Number(new URL(uri, base).pathname.split('/').pop()));
    this.scope = nock(base)
      .persist()
      .post(`${prefix}/generate-jitconfig`)
      .reply(function (this: nock.ReplyFnContext, uri: string, body: nock.Body): nock.ReplyFnResult {
        return self.jit(this.req, uri, body, guarded, rl);
      })
      .get(new RegExp(`^${prefix}/(\\d+)$`))
      .reply(function (this: nock.ReplyFnContext, uri: string): nock.ReplyFnResult {
        self.requests.push({ method: 'GET', path: uri });
        return guarded('get', this.req, () => {
          const r = runnerOf(uri);
          return r ? [200, r, rl()] : [404, { message: 'Not Found' }, rl()];
        });
      })
      .get(new RegExp(`^${prefix}(\\?.*)?$`))
      .reply(function (this: nock.ReplyFnContext, uri: string): nock.ReplyFnResult {
        self.requests.push({ method: 'GET', path: uri });
        return guarded('list', this.req, () => self.page(uri, rl()));
      })
      .delete(new RegExp(`^${prefix}/(\\d+)$`))
      .reply(function (this: nock.ReplyFnContext, uri: string): nock.ReplyFnResult {
        self.requests.push({ method: 'DELETE', path: uri });
        return guarded('delete', this.req, () => {
          const r = runnerOf(uri);
          if (!r) return [404, { message: 'Not Found' }, rl()];
          if (r.busy) return [422, { message: `Bad request - Runner "${r.name}" is still running a job"` }, rl()];
          self.runners.delete(r.id);
          return [204, '', rl()];
        });
      })
      .post(new RegExp(`^/repos/${owner}/${repo}/actions/runs/(\\d+)/cancel$`))
      .reply(function (this: nock.ReplyFnContext, uri: string): nock.ReplyFnResult {
        self.requests.push({ method: 'POST', path: uri });
        const t = /^(?:token|bearer)\s+(\S+)$/i.exec((this.req.headers.authorization as string | undefined) ?? '')?.[1];
        if (t === self.jobToken) {
          if (self.jobTokenActions !== 'write')
            return [403, { message: 'Resource not accessible by integration' }, rl()];
          self.tokens.add(t);
        }
        return guarded('cancel', this.req, () => {
          const run = self.runs.get(Number(uri.split('/')[6]));
          if (!run) return [404, { message: 'Not Found' }, rl()];
          if (run.status === 'completed')
            return [409, { message: 'Cannot cancel a workflow run that is completed.' }, rl()];
          Object.assign(run, { status: 'completed', conclusion: 'cancelled' });
          return [202, {}, rl()];
        });
      })
      .get(`/repos/${owner}/${repo}/installation`)
      .reply(function (this: nock.ReplyFnContext, uri: string): nock.ReplyFnResult {
        self.requests.push({ method: 'GET', path: uri });
        return self.installation(this.req, `repos/${owner}/${repo}`, rl());
      })
      .get(`/orgs/${owner}/installation`)
      .reply(function (this: nock.ReplyFnContext, uri: string): nock.ReplyFnResult {
        self.requests.push({ method: 'GET', path: uri });
        return self.installation(this.req, `orgs/${owner}`, rl());
      })
      .post(/^\/app\/installations\/(\d+)\/access_tokens$/)
      .reply(function (this: nock.ReplyFnContext, uri: string): nock.ReplyFnResult {
        self.requests.push({ method: 'POST', path: uri });
        const v = self.apps.verifyJwt(this.req.headers.authorization as string | undefined);
        if (!v.ok) return [401, { message: v.message }, rl()];
        const issued = self.apps.issueToken(v.app, Number(uri.split('/')[3]));
        if (!issued) return [404, { message: 'Not Found' }, rl()];
        return [
          201,
          {
            token: issued.token,
            expires_at: issued.expiresAt,
            permissions: { administration: 'write' },
            repository_selection: 'selected',
          },
          rl(),
        ];
      });
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
  }

  /** As the lab stand-in (test/lab/github.ts): over 900 points in a minute on one endpoint is a 403 with retry-after. */
  private secondaryLimit(op: string, headers: Record<string, string>): nock.ReplyFnResult | undefined {
    const now = Date.now();
    const cost = op === 'jit' || op === 'delete' ? 5 : 1;
    const spent = (this.points.get(op) ?? []).filter(([t]) => now - t < 60_000);
    this.points.set(op, spent);
    if (spent.reduce((a, [, p]) => a + p, 0) + cost > this.secondaryPointsPerMinute) {
      this.secondaryLimitHits++;
      return [
        403,
        {
          message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
          documentation_url:
            'https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
        },
        { ...headers, 'retry-after': '60' },
      ];
    }
    spent.push([now, cost]);
    return undefined;
  }

  private jit(
    req: { headers: Record<string, string | string[]> },
    uri: string,
    body: nock.Body,
    guarded: (
      op: string,
      req: { headers: Record<string, string | string[]> },
      act: () => nock.ReplyFnResult,
      resource?: string,
    ) => nock.ReplyFnResult,
    rl: (resource?: string) => Record<string, string>,
  ): nock.ReplyFnResult {
    this.requests.push({ method: 'POST', path: uri, body });
    return guarded(
      'jit',
      req,
      () => {
        const b = body as { name: string; labels: string[] };
        if ([...this.runners.values()].some((r) => r.name === b.name))
          return [
            409,
            { message: `Already exists - A runner with the name ${b.name} already exists.` },
            rl('actions_runner_registration'),
          ];
        const r: FakeRunner = {
          id: this.nextId++,
          name: b.name,
          status: 'offline',
          busy: false,
          labels: b.labels.map((name, k) => ({
            id: k + 1,
            name,
            type: READ_ONLY.has(name.toLowerCase()) ? 'read-only' : 'custom',
          })),
        };
        this.runners.set(r.id, r);
        const encoded = Buffer.from(`jit-secret-for-${r.id}-${'x'.repeat(40)}`).toString('base64');
        this.configs.set(encoded, r.id);
        this.onCreate(r);
        return [201, { runner: r, encoded_jit_config: encoded }, rl('actions_runner_registration')];
      },
      'actions_runner_registration',
    );
  }

  /** GitHub's pagination: per_page (≤ 100, default 30), page, a Link header; `name` filters. */
  private page(uri: string, headers: Record<string, string>): nock.ReplyFnResult {
    const u = new URL(uri, this.base);
    const name = u.searchParams.get('name');
    const all = [...this.runners.values()].filter((r) => name === null || r.name === name);
    const perPage = Math.min(Math.max(Number(u.searchParams.get('per_page') ?? 30) || 30, 1), 100);
    const page = Math.max(Number(u.searchParams.get('page') ?? 1) || 1, 1);
    const last = Math.max(Math.ceil(all.length / perPage), 1);
    const link = (n: number, rel: string) => {
      const l = new URL(u.toString());
      l.searchParams.set('per_page', String(perPage));
      l.searchParams.set('page', String(n));
      return `<${l.toString()}>; rel="${rel}"`;
    };
    const links = [
      ...(page < last ? [link(page + 1, 'next'), link(last, 'last')] : []),
      ...(page > 1 ? [link(1, 'first'), link(page - 1, 'prev')] : []),
    ];
    return [
      200,
      { total_count: all.length, runners: all.slice((page - 1) * perPage, page * perPage) },
      { ...headers, ...(links.length ? { link: links.join(', ') } : {}) },
    ];
  }

  private installation(
    req: { headers: Record<string, string | string[]> },
    scope: string,
    headers: Record<string, string>,
  ): nock.ReplyFnResult {
    const f = this.faults.installation?.shift();
    if (f) return [f.status, f.body ?? { message: `injected ${f.status}` }, headers];
    const v = this.apps.verifyJwt(req.headers.authorization as string | undefined);
    if (!v.ok) return [401, { message: v.message }, headers];
    if (this.apps.installationFor(v.app, scope) === undefined) return [404, { message: 'Not Found' }, headers];
    return [
      200,
      AppRegistry.installationBody(v.app, this.base, this.owner, scope.startsWith('orgs/') ? 'Organization' : 'User'),
      headers,
    ];
  }

  /** The machine holding this JIT config connects: its runner goes online. */
  connect(encodedJitConfig: string): FakeRunner | undefined {
    const id = this.configs.get(encodedJitConfig.trim());
    const r = id === undefined ? undefined : this.runners.get(id);
    if (r) r.status = 'online';
    return r;
  }

  done(): void {
    nock.cleanAll();
  }
}

/**
 * nock patches Node's http for the whole jest worker, and a worker runs several test files:
 * forbid real connections for this file's tests only, and hand the worker back afterwards, so
 * a later file's loopback servers (moto, the stand-in) are not refused.
 */
export function offlineGitHub(): void {
  beforeAll(() => nock.disableNetConnect());
  afterEach(() => nock.cleanAll());
  afterAll(() => {
    nock.cleanAll();
    nock.enableNetConnect();
  });
}
