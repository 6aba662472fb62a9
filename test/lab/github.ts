// The lab's GitHub: a real HTTP server that plays GitHub's self-hosted-runner REST API,
// checks every request and response against GitHub's OpenAPI description, and lets the
// instance simulator's fake run.sh bring JIT runners online through `/_lab/...`.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sharedValidator } from './openapi.js';
import { AppRegistry, type TestApp } from '../fakes/github-app.js';

export type LabOperation =
  | 'generate-jitconfig'
  | 'list-runners'
  | 'get-runner'
  | 'delete-runner'
  | 'list-runner-groups'
  | 'list-labels'
  | 'get-installation'
  | 'create-installation-token'
  | 'cancel-run';

// OpenAPI operationId → the stand-in's short name (both scopes share one name).
const OPERATIONS: Record<string, LabOperation> = {
  'actions/generate-runner-jitconfig-for-repo': 'generate-jitconfig',
  'actions/generate-runner-jitconfig-for-org': 'generate-jitconfig',
  'actions/list-self-hosted-runners-for-repo': 'list-runners',
  'actions/list-self-hosted-runners-for-org': 'list-runners',
  'actions/get-self-hosted-runner-for-repo': 'get-runner',
  'actions/get-self-hosted-runner-for-org': 'get-runner',
  'actions/delete-self-hosted-runner-from-repo': 'delete-runner',
  'actions/delete-self-hosted-runner-from-org': 'delete-runner',
  'actions/list-self-hosted-runner-groups-for-org': 'list-runner-groups',
  'actions/list-labels-for-self-hosted-runner-for-repo': 'list-labels',
  'actions/list-labels-for-self-hosted-runner-for-org': 'list-labels',
  'apps/get-repo-installation': 'get-installation',
  'apps/get-org-installation': 'get-installation',
  'apps/create-installation-access-token': 'create-installation-token',
  'actions/cancel-workflow-run': 'cancel-run',
};
// Operations GitHub authenticates with the App's JWT, not with a token.
const JWT_OPERATIONS = new Set<LabOperation>(['get-installation', 'create-installation-token']);
const ALL_OPERATIONS = [...new Set(Object.values(OPERATIONS))];

// Labels GitHub treats as built in; everything else a JIT request names is custom.
const READ_ONLY_LABELS = new Set(['self-hosted', 'linux', 'windows', 'macos', 'x64', 'arm64', 'arm']);
const DOCS = 'https://docs.github.com/rest/actions/self-hosted-runners';
const JIT_MARK = 'spot-runner-github-standin';

/**
 * `lost-answer`: the request is carried out, then the client gets a 502 (a proxy timing out
 * after GitHub acted); `spammed`: DELETE's other 422, "the endpoint has been spammed".
 */
export type FaultStatus = 500 | 502 | 503 | 504 | 422 | 'secondary-rate-limit' | 'lost-answer' | 'spammed';
export interface Fault {
  operation: LabOperation | '*';
  status: FaultStatus;
  /** How many matching requests fail; default 1. */
  times?: number;
  /** retry-after seconds for a secondary rate limit; default 60 as GitHub suggests. */
  retryAfter?: number;
}

export interface RunnerLabel {
  id: number;
  name: string;
  type: 'read-only' | 'custom';
}

export interface LabRunner {
  id: number;
  name: string;
  /** `repos/{owner}/{repo}` or `orgs/{org}`: the collection the runner lives in. */
  scope: string;
  runnerGroupId: number;
  os: string;
  status: 'online' | 'offline';
  busy: boolean;
  ephemeral: boolean;
  labels: RunnerLabel[];
  workFolder: string;
  /** What the fake run.sh proves it holds; only ever inside the encoded JIT config. */
  secret: string;
  encodedJitConfig?: string;
  jobsRun: number;
}

/** The lab's GITHUB_RUN_ID: a queued job belongs to this run unless it names another. */
export const LAB_RUN_ID = 4242;

/** A workflow run: `in_progress` while any of its jobs is unfinished; a cancel ends it `cancelled`. */
export interface LabRun {
  id: number;
  status: 'in_progress' | 'completed';
  conclusion?: 'cancelled' | 'success';
  cancelRequestedAt?: number;
}

export interface LabJob {
  id: number | string;
  /** The workflow run it belongs to. */
  runId: number;
  /** The run was cancelled while this job ran: the runner ends it as cancelled. */
  cancelRequested?: boolean;
  /** Waiting on its `needs` or an approval: part of the run, not yet queued for a runner (release()). */
  pending?: boolean;
  labels: string[];
  queuedAt: number;
  runnerId?: number;
  runnerName?: string;
  startedAt?: number;
  finishedAt?: number;
  result?: string;
}

export interface RunnerGroup {
  id: number;
  name: string;
  visibility?: 'all' | 'selected' | 'private';
}

export interface Violation {
  kind: 'request' | 'response' | 'route';
  method: string;
  path: string;
  operation?: string;
  errors: string[];
}

/** What the encoded JIT config decodes to: base64 of this JSON. */
export interface JitConfig {
  lab: typeof JIT_MARK;
  runner_id: number;
  name: string;
  url: string;
  secret: string;
}

export interface GitHubStandInOptions {
  /** The token clients must send as `Bearer <t>` or `token <t>`. */
  token?: string;
  /** Starting primary rate-limit budget (x-ratelimit-limit). Default 5000. */
  rateLimit?: number;
  /** Seconds until the budget refills. Default 3600. */
  rateLimitWindowSeconds?: number;
  /** Org runner groups besides the default group 1 "Default". */
  runnerGroups?: RunnerGroup[];
  /** Added to every API response, to mimic the network. */
  latencyMs?: number;
  /** The actions_runner_registration bucket generate-jitconfig draws on. Default 10000 an hour. */
  registrationRateLimit?: number;
  /** More DELETEs of runners than this within one second get 422 "endpoint has been spammed". Default 20. */
  deleteSpamPerSecond?: number;
  /**
   * GitHub's secondary rate limit: points per minute for one REST endpoint (a GET costs 1, a
   * POST, PATCH, PUT or DELETE 5), over a sliding minute. Default 900, as GitHub documents it;
   * Infinity turns it off (a test that needs that says why).
   */
  secondaryPointsPerMinute?: number;
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const error = (status: number, message: string, extra: Record<string, unknown> = {}): Reply => ({
  status,
  body: { message, documentation_url: DOCS, ...extra },
});

/** GitHub's secondary-rate-limit refusal: 403 with its message, its docs link and retry-after. */
const secondaryLimitReply = (retryAfterSeconds: number): Reply => ({
  ...error(
    403,
    'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.',
    {
      documentation_url:
        'https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
    },
  ),
  headers: { 'retry-after': String(retryAfterSeconds) },
});
/** DELETE's other 422: too many runner deletes in a second. */
const spammedReply = (): Reply => error(422, 'Validation Failed: the endpoint has been spammed.', { errors: [] });

export class GitHubStandIn {
  readonly token: string;
  readonly violations: Violation[] = [];
  readonly runners = new Map<number, LabRunner>();
  readonly jobs: LabJob[] = [];
  readonly runs = new Map<number, LabRun>();
  /**
   * The job's own GITHUB_TOKEN: it may not manage runners, and cancels a run only with
   * `permissions: actions: write` (setJobTokenPermissions). Default `actions: read`, as a job
   * without a permissions block gets in a repository created after February 2023.
   */
  readonly jobToken = 'lab-job-token';
  private jobTokenActions: 'read' | 'write' = 'read';
  /** Every API request: method, path, operation, status. */
  /** Every API request, with the moment it was answered (`at`, ms since the epoch). */
  readonly requests: Array<{ method: string; path: string; operation?: LabOperation; status: number; at: number }> = [];
  calls = GitHubStandIn.zeroCalls();
  latencyMs: number;
  /** The bucket of the answer being written (x-ratelimit-resource). */
  private lastBucket: 'core' | 'actions_runner_registration' = 'core';

  private readonly validator = sharedValidator();
  private faults: Array<Fault & { times: number }> = [];
  /** Answers carried out at once but sent late (holdAnswer): a slow GitHub, a step killed meanwhile. */
  private holds: Array<{ operation: LabOperation; ms: number; times: number }> = [];
  private corruptions: Array<{ operation: LabOperation; mutate: (body: unknown) => unknown }> = [];
  private readonly groups: RunnerGroup[];
  private readonly issued: string[] = [];
  private readonly labelIds = new Map<string, number>();
  private nextRunnerId = 1;
  private nextJobId = 1;
  private rate: { limit: number; remaining: number; resetAt: number; window: number };
  private registration: { limit: number; remaining: number; resetAt: number; window: number };
  private deletes: number[] = [];
  /** Points spent per endpoint (operation) within the last minute: [when, points]. */
  private points = new Map<LabOperation, [number, number][]>();
  /** Requests refused by the secondary rate limit (points per minute) since the last reset. */
  secondaryLimitHits = 0;
  /** The secondary limit in force (points a minute per endpoint); reset() restores the option's. */
  secondaryPointsPerMinute: number;
  /** After a secondary-limit 403: until when the operation stays refused (its retry-after). */
  private secondaryUntil = new Map<LabOperation, number>();
  /**
   * How long a retry-after second lasts here (1000). A test whose action counts GitHub's seconds
   * in fewer ms (SPOT_RUNNER_GITHUB_RETRY_BASE_MS) sets the same, so both agree on the time.
   */
  retryAfterUnitMs = 1000;
  private closed = false;
  /** GitHub Apps the stand-in knows: JWTs are checked against their keys, their tokens accepted. */
  readonly apps = new AppRegistry();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly opts: GitHubStandInOptions,
  ) {
    this.token = opts.token ?? 'lab-github-token';
    this.latencyMs = opts.latencyMs ?? 0;
    this.groups = [{ id: 1, name: 'Default', visibility: 'all' }, ...(opts.runnerGroups ?? [])];
    this.rate = this.freshBudget();
    this.registration = this.freshBudget(opts.registrationRateLimit ?? 10_000);
    this.secondaryPointsPerMinute = opts.secondaryPointsPerMinute ?? 900;
  }

  /** Starts the stand-in on a free loopback port. */
  static async start(opts: GitHubStandInOptions = {}): Promise<GitHubStandIn> {
    const server = createServer();
    // port 0: the kernel picks a free port at bind time, so there is no window for a race
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const standin = new GitHubStandIn(server, `http://127.0.0.1:${port}`, opts);
    server.on('request', (req, res) => {
      standin.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: `stand-in crashed: ${String(e)}` }));
      });
    });
    return standin;
  }

  private static zeroCalls(): Record<LabOperation, number> {
    return Object.fromEntries(ALL_OPERATIONS.map((o) => [o, 0])) as Record<LabOperation, number>;
  }

  private freshBudget(limit = this.opts.rateLimit ?? 5000) {
    const window = this.opts.rateLimitWindowSeconds ?? 3600;
    return { limit, remaining: limit, window, resetAt: Math.ceil(Date.now() / 1000) + window };
  }

  // ---- test controls -------------------------------------------------------------

  /** Fail the next `times` requests of an operation ('*' = any) with the given status. */
  inject(fault: Fault): void {
    this.faults.push({ times: 1, ...fault });
  }

  /**
   * The next `times` requests of `operation` are carried out at once (a JIT runner is registered),
   * but their answers are sent `ms` later: the window in which a step killed mid-request never
   * learns what GitHub created.
   */
  holdAnswer(operation: LabOperation, ms: number, times = 1): void {
    this.holds.push({ operation, ms, times });
  }

  /** Fail every request of an operation until `clearFaults()`. */
  injectOutage(operation: LabOperation | '*', status: FaultStatus = 503): void {
    this.inject({ operation, status, times: Infinity });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Test hook: garble the next response of an operation, to prove response validation bites. */
  corruptNextResponse(operation: LabOperation, mutate: (body: unknown) => unknown = () => ({ corrupted: true })): void {
    this.corruptions.push({ operation, mutate });
  }

  /** Sets the primary rate-limit budget; `remaining: 0` makes the next API request a 403. */
  setRateLimit(r: { limit?: number; remaining?: number; resetInSeconds?: number }): void {
    if (r.limit !== undefined) this.rate.limit = r.limit;
    this.rate.remaining = r.remaining ?? this.rate.limit;
    if (r.resetInSeconds !== undefined) this.rate.resetAt = Math.ceil(Date.now() / 1000 + r.resetInSeconds);
  }

  /** Sets the actions_runner_registration bucket (generate-jitconfig). */
  setRegistrationRateLimit(r: { remaining: number; resetInSeconds?: number }): void {
    this.registration.remaining = r.remaining;
    if (r.resetInSeconds !== undefined) this.registration.resetAt = Math.ceil(Date.now() / 1000 + r.resetInSeconds);
  }

  /** A GitHub App installed on the scopes it names (repos/{o}/{r}, orgs/{org}). */
  registerApp(app: TestApp): void {
    this.apps.register(app);
  }

  get rateLimit(): { limit: number; remaining: number; used: number; reset: number } {
    return {
      limit: this.rate.limit,
      remaining: this.rate.remaining,
      used: this.rate.limit - this.rate.remaining,
      reset: this.rate.resetAt,
    };
  }

  /** Queues a job (in run LAB_RUN_ID unless given); an online runner whose labels include all of `labels` takes it. */
  queueJob(job: { labels: string[]; id?: number | string; runId?: number; pending?: boolean }): LabJob {
    const runId = job.runId ?? LAB_RUN_ID;
    const run = this.runs.get(runId);
    if (!run) this.runs.set(runId, { id: runId, status: 'in_progress' });
    const j: LabJob = {
      id: job.id ?? this.nextJobId++,
      runId,
      labels: [...job.labels],
      queuedAt: Date.now(),
      ...(job.pending ? { pending: true } : {}),
    };
    // A job of a cancelled run is never queued: it ends cancelled.
    if (run?.status === 'completed') Object.assign(j, { finishedAt: Date.now(), result: 'cancelled' });
    this.jobs.push(j);
    return j;
  }

  /** A pending job's needs (or its approval) are met: it is queued for a runner, unless its run was cancelled. */
  release(job: LabJob): void {
    job.pending = false;
    job.queuedAt = Date.now();
  }

  /** What the workflow's `permissions:` block grants the job's GITHUB_TOKEN (jobToken). */
  setJobTokenPermissions(p: { actions: 'read' | 'write' }): void {
    this.jobTokenActions = p.actions;
  }

  setRunnerStatus(id: number, status: 'online' | 'offline'): void {
    const r = this.runners.get(id);
    if (!r) throw new Error(`no runner ${id}`);
    r.status = status;
  }

  /** Registers a runner directly (ghosts for reap, or many for pagination); it has no JIT config. */
  seedRunner(r: {
    scope: string;
    name: string;
    labels?: string[];
    status?: 'online' | 'offline';
    busy?: boolean;
    ephemeral?: boolean;
    runnerGroupId?: number;
    os?: string;
  }): LabRunner {
    const runner = this.register(r.scope, r.name, r.labels ?? ['self-hosted'], r.runnerGroupId ?? 1, '_work');
    Object.assign(runner, {
      status: r.status ?? 'offline',
      busy: r.busy ?? false,
      ephemeral: r.ephemeral ?? false,
      os: r.os ?? 'Linux',
    });
    return runner;
  }

  runnerByName(name: string): LabRunner | undefined {
    return [...this.runners.values()].find((r) => r.name === name);
  }

  /** Every secret handed out so far (per-runner secrets and encoded JIT configs), for leak checks. */
  get issuedSecrets(): readonly string[] {
    return this.issued;
  }

  static decodeJitConfig(encoded: string): JitConfig | undefined {
    try {
      const c = JSON.parse(Buffer.from(encoded.trim(), 'base64').toString('utf8')) as JitConfig;
      return c.lab === JIT_MARK && typeof c.runner_id === 'number' && typeof c.secret === 'string' ? c : undefined;
    } catch {
      return undefined;
    }
  }

  /** Throws with every recorded OpenAPI violation. Call it in afterEach. */
  assertNoViolations(): void {
    if (this.violations.length === 0) return;
    const lines = this.violations.map(
      (v) => `${v.kind} ${v.method} ${v.path}${v.operation ? ` (${v.operation})` : ''}: ${v.errors.join('; ')}`,
    );
    throw new Error(`GitHub stand-in saw ${lines.length} OpenAPI violation(s):\n${lines.join('\n')}`);
  }

  /** Back to an empty GitHub: no runners, jobs, faults, violations or counts; a full budget. */
  reset(): void {
    this.runners.clear();
    this.jobs.length = 0;
    this.runs.clear();
    this.jobTokenActions = 'read';
    this.violations.length = 0;
    this.requests.length = 0;
    this.issued.length = 0;
    this.faults = [];
    this.holds = [];
    this.corruptions = [];
    this.calls = GitHubStandIn.zeroCalls();
    this.rate = this.freshBudget();
    this.registration = this.freshBudget(this.opts.registrationRateLimit ?? 10_000);
    this.deletes = [];
    this.points.clear();
    this.secondaryUntil.clear();
    this.retryAfterUnitMs = 1000;
    this.secondaryLimitHits = 0;
    this.secondaryPointsPerMinute = this.opts.secondaryPointsPerMinute ?? 900;
    this.apps.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ---- HTTP ----------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = (req.method ?? 'GET').toUpperCase();
    const raw = await readBody(req);
    if (url.pathname.startsWith('/_lab/')) return this.write(res, await this.labRoute(url, raw), false);

    if (this.latencyMs > 0) await sleep(this.latencyMs);
    const { reply, operation } = this.apiRoute(url, method, raw, req.headers.authorization);
    const hold = this.holds.find((h) => h.times > 0 && h.operation === operation);
    if (hold) {
      hold.times--;
      await sleep(hold.ms);
    }
    this.write(res, reply, true);
    this.requests.push({ method, path: url.pathname, operation, status: reply.status, at: Date.now() });
  }

  /** GitHub's order: route → auth → primary rate limit → request checks → (faults) → handler; then response checks. */
  private apiRoute(
    url: URL,
    method: string,
    raw: string,
    authorization: string | undefined,
  ): { reply: Reply; operation?: LabOperation } {
    const path = url.pathname;
    const match = this.validator.match(method, path);
    const operation = match ? OPERATIONS[match.op.operationId] : undefined;
    if (!match || !operation) {
      const why = match
        ? `${match.op.operationId} is in GitHub's API but the stand-in does not implement it`
        : this.validator.knowsPath(path)
          ? `method ${method} is not allowed on this path`
          : "no such path in GitHub's API";
      this.violations.push({ kind: 'route', method, path, errors: [why] });
      return { reply: error(404, 'Not Found') };
    }
    this.calls[operation]++;
    const op = match.op;
    const flag = (kind: Violation['kind'], errors: string[]) =>
      this.violations.push({ kind, method, path, operation: op.operationId, errors });

    const given = /^(?:bearer|token)\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (given === undefined) return { reply: error(401, 'Requires authentication', { status: '401' }), operation };
    let app: TestApp | undefined;
    if (JWT_OPERATIONS.has(operation)) {
      // GitHub wants the App's JWT here; a token (even a valid one) is refused.
      const v = this.apps.verifyJwt(authorization);
      if (!v.ok) return { reply: error(401, v.message, { status: '401' }), operation };
      app = v.app;
    } else if (given === this.jobToken) {
      // GITHUB_TOKEN is an installation token of the Actions app: no runner administration, and
      // actions: write only when the workflow grants it.
      if (operation !== 'cancel-run' || this.jobTokenActions !== 'write') {
        return { reply: error(403, 'Resource not accessible by integration', { status: '403' }), operation };
      }
    } else if (given !== this.token && !this.apps.tokenValid(given)) {
      return { reply: error(401, 'Bad credentials', { status: '401' }), operation };
    }

    // generate-jitconfig draws on its own bucket; everything else here on core.
    const bucket = operation === 'generate-jitconfig' ? this.registration : this.rate;
    if (Date.now() / 1000 >= bucket.resetAt)
      Object.assign(bucket, { remaining: bucket.limit, resetAt: Math.ceil(Date.now() / 1000) + bucket.window });
    this.lastBucket = operation === 'generate-jitconfig' ? 'actions_runner_registration' : 'core';
    if (bucket.remaining <= 0) {
      return {
        reply: error(
          403,
          'API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.',
          {
            documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api',
          },
        ),
        operation,
      };
    }
    bucket.remaining--;
    const secondary = this.secondaryLimit(operation, method);
    if (secondary) return { reply: secondary, operation };

    let body: unknown;
    if (raw.trim() !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        flag('request', ['body is not JSON']);
        return { reply: error(400, 'Problems parsing JSON'), operation };
      }
    }
    const query = Object.fromEntries(url.searchParams);
    const problems = this.validator.validateRequest(op, match.params, query, body);
    if (problems.length > 0) {
      flag('request', problems);
      // 500, not GitHub's 422: a client that breaks the published contract is a bug the test must see
      return {
        reply: error(
          500,
          `spot-runner lab: request violates GitHub's OpenAPI description (${op.operationId}): ${problems.join('; ')}`,
        ),
        operation,
      };
    }

    const act = () =>
      app
        ? this.appRoute(operation, app, match.params)
        : this.dispatch(operation, path, match.params, query, body as Record<string, unknown>);
    let reply = this.fault(operation, act) ?? this.spamGuard(operation) ?? act();
    const corrupt = this.corruptions.findIndex((c) => c.operation === operation);
    if (corrupt >= 0) {
      const [c] = this.corruptions.splice(corrupt, 1);
      reply = { ...reply, body: c?.mutate(reply.body) };
    }
    const bad = this.validator.validateResponse(op, reply.status, reply.body);
    if (bad.length > 0) {
      flag('response', bad);
      return {
        reply: error(
          500,
          `spot-runner lab: response violates GitHub's OpenAPI description (${op.operationId}): ${bad.join('; ')}`,
        ),
        operation,
      };
    }
    return { reply, operation };
  }

  /** GET .../installation and POST /app/installations/{id}/access_tokens, for a verified App. */
  private appRoute(operation: LabOperation, app: TestApp, params: Record<string, string>): Reply {
    if (operation === 'get-installation') {
      const scope = params.org !== undefined ? `orgs/${params.org}` : `repos/${params.owner}/${params.repo}`;
      if (this.apps.installationFor(app, scope) === undefined) return error(404, 'Not Found', { status: '404' });
      const owner = params.org ?? params.owner ?? '';
      return {
        status: 200,
        body: AppRegistry.installationBody(app, this.url, owner, params.org !== undefined ? 'Organization' : 'User'),
      };
    }
    const issued = this.apps.issueToken(app, Number(params.installation_id));
    if (!issued) return error(404, 'Not Found', { status: '404' });
    this.issued.push(issued.token);
    return {
      status: 201,
      body: {
        token: issued.token,
        expires_at: issued.expiresAt,
        permissions: { administration: 'write', organization_self_hosted_runners: 'write' },
        repository_selection: 'selected',
      },
    };
  }

  /**
   * The secondary rate limit GitHub documents ("Rate limits for the REST API", About secondary
   * rate limits): no more than 900 points a minute for one REST endpoint; most GET requests
   * cost 1 point, most POST/PATCH/PUT/DELETE 5. Refused requests spend nothing.
   */
  private secondaryLimit(operation: LabOperation, method: string): Reply | undefined {
    const now = Date.now();
    // A request sent before the retry-after has passed is refused again ("you should not retry
    // your request until after that many seconds has elapsed").
    const until = this.secondaryUntil.get(operation) ?? 0;
    if (until > now) return secondaryLimitReply(Math.ceil((until - now) / this.retryAfterUnitMs));
    const limit = this.secondaryPointsPerMinute;
    if (!Number.isFinite(limit)) return undefined;
    const cost = ['GET', 'HEAD', 'OPTIONS'].includes(method) ? 1 : 5;
    const spent = (this.points.get(operation) ?? []).filter(([t]) => now - t < 60_000);
    this.points.set(operation, spent);
    if (spent.reduce((a, [, p]) => a + p, 0) + cost > limit) {
      this.secondaryLimitHits++;
      return secondaryLimitReply(60);
    }
    spent.push([now, cost]);
    return undefined;
  }

  /** Too many runner DELETEs in one second: GitHub's other 422. */
  private spamGuard(operation: LabOperation): Reply | undefined {
    if (operation !== 'delete-runner') return undefined;
    const now = Date.now();
    this.deletes = this.deletes.filter((t) => now - t < 1000);
    this.deletes.push(now);
    if (this.deletes.length > (this.opts.deleteSpamPerSecond ?? 20)) return spammedReply();
    return undefined;
  }

  private fault(operation: LabOperation, act: () => Reply): Reply | undefined {
    const f = this.faults.find((x) => x.times > 0 && (x.operation === '*' || x.operation === operation));
    if (!f) return undefined;
    f.times--;
    if (f.status === 'lost-answer') {
      act();
      return error(502, 'Server Error');
    }
    if (f.status === 'spammed') return spammedReply();
    if (f.status === 'secondary-rate-limit') {
      const after = f.retryAfter ?? 60;
      this.secondaryUntil.set(operation, Date.now() + after * this.retryAfterUnitMs);
      return secondaryLimitReply(after);
    }
    if (f.status === 422) return error(422, 'Validation Failed', { errors: ['injected by the spot-runner lab'] });
    return error(f.status, f.status === 500 ? 'Server Error' : 'Service Unavailable');
  }

  private dispatch(
    operation: LabOperation,
    path: string,
    params: Record<string, string>,
    query: Record<string, string>,
    body: Record<string, unknown>,
  ): Reply {
    const scope = params.org !== undefined ? `orgs/${params.org}` : `repos/${params.owner}/${params.repo}`;
    const runner = params.runner_id !== undefined ? this.runners.get(Number(params.runner_id)) : undefined;
    const mine = runner && runner.scope === scope ? runner : undefined;
    switch (operation) {
      case 'generate-jitconfig':
        return this.generateJitConfig(scope, body);
      case 'list-runners': {
        const all = [...this.runners.values()].filter(
          (r) => r.scope === scope && (query.name === undefined || r.name === query.name),
        );
        return this.page(path, all, query, (items, total) => ({
          total_count: total,
          runners: items.map((r) => this.toApi(r)),
        }));
      }
      case 'get-runner':
        return mine ? { status: 200, body: this.toApi(mine) } : error(404, 'Not Found', { status: '404' });
      case 'list-labels':
        return mine
          ? { status: 200, body: { total_count: mine.labels.length, labels: mine.labels } }
          : error(404, 'Not Found', { status: '404' });
      case 'delete-runner':
        if (!mine) return error(404, 'Not Found', { status: '404' });
        if (mine.busy) return error(422, `Bad request - Runner "${mine.name}" is still running a job"`);
        this.runners.delete(mine.id);
        return { status: 204 };
      case 'list-runner-groups':
        return this.page(path, this.groups, query, (items, total) => ({
          total_count: total,
          runner_groups: items.map((g) => ({
            id: g.id,
            name: g.name,
            visibility: g.visibility ?? 'all',
            default: g.id === 1,
            runners_url: `${this.url}/orgs/${params.org}/actions/runner-groups/${g.id}/runners`,
            inherited: false,
            allows_public_repositories: false,
            restricted_to_workflows: false,
            selected_workflows: [],
            workflow_restrictions_read_only: false,
          })),
        }));
      case 'cancel-run':
        return this.cancelRun(Number(params.run_id));
      case 'get-installation':
      case 'create-installation-token':
        // Reached only without a verified App (apiRoute routes those to appRoute).
        return error(401, 'A JSON web token could not be decoded', { status: '401' });
    }
  }

  /**
   * POST …/actions/runs/{run_id}/cancel: 202 with an empty object; the run's queued jobs are
   * cancelled at once (no runner takes them), a running job is told to stop and ends cancelled;
   * 409 once the run is completed.
   */
  private cancelRun(runId: number): Reply {
    const run = this.runs.get(runId);
    if (!run) return error(404, 'Not Found', { status: '404' });
    if (run.status === 'completed')
      return error(409, 'Cannot cancel a workflow run that is completed.', { status: '409' });
    run.cancelRequestedAt ??= Date.now();
    for (const j of this.jobs) {
      if (j.runId !== runId || j.finishedAt !== undefined) continue;
      if (j.runnerId === undefined) Object.assign(j, { finishedAt: Date.now(), result: 'cancelled' });
      else j.cancelRequested = true;
    }
    this.settleRun(run);
    return { status: 202, body: {} };
  }

  /** A run ends once none of its jobs is unfinished: cancelled if a cancel was asked for. */
  settleRun(run: LabRun | undefined): void {
    if (!run || run.status === 'completed') return;
    if (this.jobs.some((j) => j.runId === run.id && j.finishedAt === undefined)) return;
    if (run.cancelRequestedAt === undefined) return;
    Object.assign(run, { status: 'completed', conclusion: 'cancelled' });
  }

  private generateJitConfig(scope: string, body: Record<string, unknown>): Reply {
    const name = String(body.name);
    const labels = body.labels as string[];
    const groupId = body.runner_group_id as number;
    const problems = [
      ...(name.trim() === '' || name.length > 64 ? ['name must be 1 to 64 characters'] : []),
      ...(labels.some((l) => l.trim() === '') ? ['labels must not be empty'] : []),
    ];
    if (problems.length > 0) return error(422, 'Validation Failed', { errors: problems });
    if (!this.groups.some((g) => g.id === groupId)) return error(404, 'Not Found', { status: '404' });
    if ([...this.runners.values()].some((r) => r.scope === scope && r.name === name)) {
      return error(409, `Already exists - A runner with the name ${name} already exists.`, { status: '409' });
    }
    const runner = this.register(scope, name, labels, groupId, String(body.work_folder ?? '_work'));
    const config: JitConfig = { lab: JIT_MARK, runner_id: runner.id, name, url: this.url, secret: runner.secret };
    runner.encodedJitConfig = Buffer.from(JSON.stringify(config)).toString('base64');
    this.issued.push(runner.secret, runner.encodedJitConfig);
    return { status: 201, body: { runner: this.toApi(runner), encoded_jit_config: runner.encodedJitConfig } };
  }

  /** GitHub's pagination: per_page (≤ 100, default 30), page, and a Link header with first/prev/next/last. */
  private page<T>(
    path: string,
    all: T[],
    query: Record<string, string>,
    render: (items: T[], total: number) => unknown,
  ): Reply {
    const perPage = Math.min(Math.max(Number(query.per_page ?? 30) || 30, 1), 100);
    const page = Math.max(Number(query.page ?? 1) || 1, 1);
    const last = Math.max(Math.ceil(all.length / perPage), 1);
    const link = (n: number, rel: string) => {
      const u = new URL(this.url + path);
      for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
      u.searchParams.set('per_page', String(perPage));
      u.searchParams.set('page', String(n));
      return `<${u.toString()}>; rel="${rel}"`;
    };
    const links = [
      ...(page > 1 ? [link(page - 1, 'prev')] : []),
      ...(page < last ? [link(page + 1, 'next'), link(last, 'last')] : []),
      ...(page > 1 ? [link(1, 'first')] : []),
    ];
    return {
      status: 200,
      body: render(all.slice((page - 1) * perPage, page * perPage), all.length),
      headers: links.length > 0 ? { link: links.join(', ') } : {},
    };
  }

  private toApi(r: LabRunner): Record<string, unknown> {
    return {
      id: r.id,
      // repository runners have no group to speak of; GitHub's repo examples omit it
      ...(r.scope.startsWith('orgs/') ? { runner_group_id: r.runnerGroupId } : {}),
      name: r.name,
      os: r.os,
      status: r.status,
      busy: r.busy,
      ephemeral: r.ephemeral,
      labels: r.labels.map((l) => ({ ...l })),
    };
  }

  private write(res: ServerResponse, reply: Reply, api: boolean): void {
    const headers: Record<string, string> = { ...reply.headers };
    if (api) {
      headers['x-github-request-id'] = randomUUID().toUpperCase();
      headers['x-github-api-version-selected'] = '2022-11-28';
      const b = this.lastBucket === 'core' ? this.rate : this.registration;
      headers['x-ratelimit-limit'] = String(b.limit);
      headers['x-ratelimit-remaining'] = String(b.remaining);
      headers['x-ratelimit-used'] = String(b.limit - b.remaining);
      headers['x-ratelimit-reset'] = String(b.resetAt);
      headers['x-ratelimit-resource'] = this.lastBucket;
    }
    if (reply.body === undefined) {
      res.writeHead(reply.status, headers).end();
    } else {
      headers['content-type'] = 'application/json; charset=utf-8';
      res.writeHead(reply.status, headers).end(JSON.stringify(reply.body));
    }
  }

  private register(scope: string, name: string, labels: string[], groupId: number, workFolder: string): LabRunner {
    const runner: LabRunner = {
      id: this.nextRunnerId++,
      name,
      scope,
      runnerGroupId: groupId,
      os: 'unknown', // GitHub reports "unknown" until the runner first connects
      status: 'offline',
      busy: false,
      ephemeral: true,
      labels: labels.map((l) => this.label(l)),
      workFolder,
      secret: `labjit_${randomBytes(24).toString('hex')}`,
      jobsRun: 0,
    };
    this.runners.set(runner.id, runner);
    return runner;
  }

  private label(name: string): RunnerLabel {
    const key = name.toLowerCase();
    if (!this.labelIds.has(key)) this.labelIds.set(key, this.labelIds.size + 1);
    return { id: this.labelIds.get(key) as number, name, type: READ_ONLY_LABELS.has(key) ? 'read-only' : 'custom' };
  }

  // ---- /_lab: what the fake run.sh speaks (not GitHub's API, so not validated) -----------

  /**
   * The body is the encoded JIT config as plain text (so `curl --data-binary @file` keeps it
   * out of argv), or JSON `{"jit_config": "...", "os"?: "Linux", "result"?: "succeeded"}`.
   */
  private async labRoute(url: URL, raw: string): Promise<Reply> {
    let fields: Record<string, unknown> = {};
    let encoded = raw.trim();
    if (encoded.startsWith('{')) {
      try {
        fields = JSON.parse(encoded) as Record<string, unknown>;
      } catch {
        return error(400, 'body is neither a JIT config nor JSON');
      }
      encoded = String(fields.jit_config ?? '');
    }
    const config = GitHubStandIn.decodeJitConfig(encoded);
    if (!config) return error(401, 'not a JIT config issued by this stand-in');
    const runner = this.runners.get(config.runner_id);
    // a deleted runner is what a real one sees as "runner removed": the process should exit
    if (!runner) return error(404, `runner ${config.runner_id} is not registered`);
    if (runner.secret !== config.secret) return error(401, 'JIT config secret does not match');

    switch (url.pathname) {
      case '/_lab/connect':
        if (runner.status === 'online') return error(409, `runner ${runner.name} is already connected`);
        runner.status = 'online';
        runner.os = typeof fields.os === 'string' ? fields.os : 'Linux';
        return { status: 200, body: { runner: this.toApi(runner) } };
      case '/_lab/take-job':
        return this.takeJob(runner, Number(url.searchParams.get('wait') ?? 0));
      case '/_lab/job-done': {
        const job = this.jobs.find((j) => j.runnerId === runner.id && j.finishedAt === undefined);
        if (!runner.busy || !job) return error(409, `runner ${runner.name} has no job in progress`);
        job.finishedAt = Date.now();
        job.result = job.cancelRequested
          ? 'cancelled'
          : typeof fields.result === 'string'
            ? fields.result
            : 'succeeded';
        runner.busy = false;
        runner.jobsRun++;
        this.settleRun(this.runs.get(job.runId));
        return { status: 200, body: { job } };
      }
      case '/_lab/disconnect': {
        runner.status = 'offline';
        runner.busy = false;
        // GitHub removes an ephemeral runner once its one job is done; one that never ran a
        // job stays registered (offline) until someone deletes it, which stop/reap must do.
        const deleted = runner.ephemeral && runner.jobsRun > 0;
        if (deleted) this.runners.delete(runner.id);
        return { status: 200, body: { deleted } };
      }
      default:
        return error(404, `unknown lab endpoint ${url.pathname}`);
    }
  }

  /** Gives the runner the oldest queued job whose labels it all carries; waits up to `waitMs` for one. */
  private async takeJob(runner: LabRunner, waitMs: number): Promise<Reply> {
    if (runner.status !== 'online') return error(409, `runner ${runner.name} is not connected`);
    if (runner.busy) return error(409, `runner ${runner.name} is already busy`);
    if (runner.ephemeral && runner.jobsRun > 0)
      return error(409, `ephemeral runner ${runner.name} already ran its job`);
    const have = new Set(runner.labels.map((l) => l.name.toLowerCase()));
    const deadline = Date.now() + (Number.isFinite(waitMs) ? waitMs : 0);
    for (;;) {
      // the runner may have been deleted or taken offline while we waited
      if (this.closed || this.runners.get(runner.id) !== runner || runner.status !== 'online') return { status: 204 };
      const job = this.jobs.find(
        (j) =>
          j.runnerId === undefined &&
          !j.pending &&
          j.finishedAt === undefined &&
          j.labels.every((l) => have.has(l.toLowerCase())),
      );
      if (job) {
        Object.assign(job, { runnerId: runner.id, runnerName: runner.name, startedAt: Date.now() });
        runner.busy = true;
        return { status: 200, body: { job: { id: job.id, labels: job.labels } } };
      }
      if (Date.now() >= deadline) return { status: 204 };
      await sleep(Math.min(25, deadline - Date.now()));
    }
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 1 << 20) throw new Error('request body over 1 MiB');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
