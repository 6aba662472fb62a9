import { afterAll, afterEach, beforeAll } from '@jest/globals';
import nock from 'nock';

export interface FakeRunner {
  id: number;
  name: string;
  status: 'online' | 'offline';
  busy: boolean;
  labels: { id: number; name: string; type: 'read-only' | 'custom' }[];
}

/** null lets one request through untouched, so a fault can be aimed at the n-th call. */
type Fault = { status: number; headers?: Record<string, string>; body?: unknown } | null;

/**
 * GitHub's runner API through nock, for unit tests. Runners live in a map; `faults` queues
 * responses per operation so a test can put a 5xx or a rate limit exactly where it wants.
 */
export class NockGitHub {
  runners = new Map<number, FakeRunner>();
  requests: { method: string; path: string }[] = [];
  faults: Record<string, Fault[]> = {};
  /** What x-ratelimit-remaining says on every answer. */
  rateRemaining = 4000;
  rateResetSeconds = 3600;
  /** Called after a JIT runner is created: tests decide when it comes online. */
  onCreate: (r: FakeRunner) => void = (r) => {
    r.status = 'online';
  };
  private nextId = 100;
  readonly scope: nock.Scope;

  constructor(readonly base = 'https://api.github.com', readonly owner = 'acme', readonly repo = 'widgets') {
    const prefix = `/repos/${owner}/${repo}/actions/runners`;
    const rl = () => ({ 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': String(this.rateRemaining), 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + this.rateResetSeconds), 'x-ratelimit-resource': 'core' });
    const fault = (op: string): nock.ReplyFnResult | undefined => {
      const f = this.faults[op]?.shift();
      return f ? [f.status, f.body ?? { message: `injected ${f.status}` }, { ...rl(), ...(f.headers ?? {}) }] : undefined;
    };
    this.scope = nock(base)
      .persist()
      .post(`${prefix}/generate-jitconfig`)
      .reply((uri: string, body: nock.Body): nock.ReplyFnResult => {
        this.requests.push({ method: 'POST', path: uri });
        const f = fault('jit');
        if (f) return f;
        const b = body as { name: string; labels: string[] };
        if ([...this.runners.values()].some((r) => r.name === b.name)) return [409, { message: 'Already exists' }, rl()];
        const r: FakeRunner = { id: this.nextId++, name: b.name, status: 'offline', busy: false, labels: b.labels.map((name, k) => ({ id: k + 1, name, type: 'custom' })) };
        this.runners.set(r.id, r);
        this.onCreate(r);
        return [201, { runner: r, encoded_jit_config: Buffer.from(`jit-secret-for-${r.id}-${'x'.repeat(40)}`).toString('base64') }, rl()];
      })
      .get(new RegExp(`^${prefix}/(\\d+)$`))
      .reply((uri: string): nock.ReplyFnResult => {
        this.requests.push({ method: 'GET', path: uri });
        const f = fault('get');
        if (f) return f;
        const r = this.runners.get(Number(uri.split('/').pop()));
        return r ? [200, r, rl()] : [404, { message: 'Not Found' }, rl()];
      })
      .get(new RegExp(`^${prefix}(\\?.*)?$`))
      .reply((uri: string): nock.ReplyFnResult => {
        this.requests.push({ method: 'GET', path: uri });
        const f = fault('list');
        if (f) return f;
        const all = [...this.runners.values()];
        return [200, { total_count: all.length, runners: all }, rl()];
      })
      .delete(new RegExp(`^${prefix}/(\\d+)$`))
      .reply((uri: string): nock.ReplyFnResult => {
        this.requests.push({ method: 'DELETE', path: uri });
        const f = fault('delete');
        if (f) return f;
        const id = Number(uri.split('/').pop());
        const r = this.runners.get(id);
        if (!r) return [404, { message: 'Not Found' }, rl()];
        if (r.busy) return [422, { message: 'Bad request - Runner "x" is still running a job"' }, rl()];
        this.runners.delete(id);
        return [204, '', rl()];
      });
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
