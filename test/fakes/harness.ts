import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TAGS } from '../../src/tags.js';
import { parseConfig, runContext, type StartConfig, type StopConfig } from '../../src/config.js';
import { makeGitHub, type RateLimit } from '../../src/github/client.js';
import { StateRecorder } from '../../src/state.js';
import { start, type StartDeps } from '../../src/modes/start.js';
import { FakeWorld } from './world.js';
import { NockGitHub } from './github.js';

export const ENV = {
  GITHUB_REPOSITORY: 'acme/widgets',
  GITHUB_RUN_ID: '4242',
  GITHUB_RUN_ATTEMPT: '1',
  GITHUB_JOB: 'start',
  AWS_REGION: 'us-east-1',
};

/** Every test gets its own GITHUB_STATE file, like a fresh step. */
export function freshStateFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sr-state-'));
  const f = join(dir, 'state');
  writeFileSync(f, '');
  process.env.GITHUB_STATE = f;
  process.env.GITHUB_OUTPUT = join(dir, 'output');
  writeFileSync(process.env.GITHUB_OUTPUT, '');
  return f;
}

export const BASE_START: Record<string, string> = {
  mode: 'start',
  'github-token': 'ghs_testtoken',
  image: 'ami-0123456789abcdef0',
  'instance-types': 'c7i.large, c6i.large',
  count: '2',
};

export function config(inputs: Record<string, string>, env: Record<string, string> = ENV, event?: unknown) {
  const get = (n: string) => inputs[n] ?? '';
  return parseConfig(get, env as NodeJS.ProcessEnv, runContext(env as NodeJS.ProcessEnv, event));
}

export function startConfig(overrides: Record<string, string> = {}): StartConfig {
  return config({ ...BASE_START, ...overrides }) as StartConfig;
}

export function stopConfig(overrides: Record<string, string>): StopConfig {
  return config({ mode: 'stop', 'github-token': 'ghs_testtoken', ...overrides }) as StopConfig;
}

export interface Rig {
  world: FakeWorld;
  github: NockGitHub;
  state: StateRecorder;
  logs: string[];
  deps: StartDeps;
}

/** A real (1 ms) pause: the code's backoff runs, counted in calls rather than seconds. */
export const tick = () => new Promise<void>((r) => setTimeout(r, 1));

/** Waits (really, in 5 ms steps, at most 10 s) until cond holds: for a moment of start's flow, not a fixed delay. */
export async function until(cond: () => boolean, what = 'the condition'): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`until: ${what} did not hold within 10 s`);
}

/**
 * The machines of the unit world: once a JIT config is parked in SSM, its instance "boots" and
 * its runner connects after `bootMs`, unless the test drives the machines itself (`machines: false`).
 * Until then the runner is offline, as at GitHub, so the happy path really waits; once it is
 * connected, the machine tags phase `listening`, as the bootstrap does. It wraps the
 * world's own PutParameter, so throttling and lost answers still apply.
 */
function simulateMachines(world: FakeWorld, github: NockGitHub, bootMs: number): void {
  const put = world.handlerOf('PutParameter');
  const booted = new Set<string>();
  world.on('PutParameter', async (input, call) => {
    try {
      return await put(input, call);
    } finally {
      const name = String(input.Name);
      const instanceId = name.split('/').pop() ?? '';
      // A fill's or reap's claim holds no JIT config ("claim:…"): the machine never reads it.
      if (world.params.has(name) && !booted.has(instanceId) && !String(input.Value).startsWith('claim:')) {
        booted.add(instanceId);
        // A pool machine's JIT config (its claim) is written before StartInstances: boot once started.
        let tries = 0;
        const boot = () => {
          const state = world.instances.get(instanceId)?.State.Name;
          if (state === 'stopped' && tries++ < 20) return void setTimeout(boot, bootMs).unref();
          if (state !== 'running' && state !== 'pending') return;
          world.setPhase(instanceId, 'runner-started');
          github.connect(String(world.params.get(name)?.value ?? input.Value));
          // Like the bootstrap: `listening` once the listener has its session, after connecting.
          world.setPhase(instanceId, 'listening');
        };
        setTimeout(boot, bootMs).unref();
      }
    }
  });
}

export function rig(
  extra: Partial<StartDeps> = {},
  o: ConstructorParameters<typeof FakeWorld>[0] & { machines?: boolean; bootMs?: number } = {},
): Rig {
  freshStateFile();
  process.env.SPOT_RUNNER_GITHUB_RETRY_BASE_MS = '1';
  process.env.SPOT_RUNNER_GITHUB_WRITE_GAP_MS = '0';
  const w = new FakeWorld(o);
  const github = new NockGitHub();
  if (o.machines ?? true) simulateMachines(w, github, o.bootMs ?? 15);
  const state = new StateRecorder();
  const logs: string[] = [];
  const rate: RateLimit = {};
  const deps: StartDeps = {
    aws: w.clients(),
    gh: makeGitHub('ghs_testtoken', rate),
    rate,
    state,
    log: (l) => logs.push(l),
    wait: { intervalMs: 5, fastIntervalMs: 5, githubRetryMs: 5, timeoutMs: 2000 },
    // The eventual-consistency retries run for real; only their sleeps are shortened.
    retry: { sleep: tick, templateBudgetMs: 30_000 },
    terminate: { sleep: tick, notFoundBudgetMs: 60_000 },
    ...extra,
  };
  return { world: w, github, state, logs, deps };
}

export async function runStart(r: Rig, overrides: Record<string, string> = {}) {
  return start(startConfig(overrides), r.deps);
}

export interface SeededRun {
  label: string;
  templateId: string;
  instanceIds: string[];
  parameterNames: string[];
  runnerIds: number[];
}

/**
 * What one start leaves in the world when nothing removed it (killed mid-wait): a template, its
 * machines, their JIT parameters and runners, all carrying the label. Planted directly, as a
 * start a while ago left them (so already visible to EC2), not through start, so teardown and
 * post tests do not depend on start's flow.
 */
export async function seedRun(
  world: FakeWorld,
  gh: NockGitHub,
  label: string,
  o: { count?: number; firstRunnerId?: number } = {},
): Promise<SeededRun> {
  const count = o.count ?? 2;
  const launched = new Date(Date.now() - 60_000);
  const templateId = world.addTemplate(label, launched);
  const instanceIds = Array.from({ length: count }, () =>
    world.addInstance(label, launched, {}, { State: { Name: 'pending' } }),
  );
  const parameterNames = instanceIds.map((id) => `/spot-runner/jit/${label}/${id}`);
  for (const name of parameterNames)
    world.addParameter(name, launched, 'jit-secret', { [TAGS.managed]: 'true', [TAGS.label]: label });
  const runnerIds = instanceIds.map((_, k) => {
    const id = (o.firstRunnerId ?? 500) + k;
    gh.runners.set(id, {
      id,
      name: `${label}-${k + 1}`,
      status: 'offline',
      busy: false,
      labels: [{ id: 1, name: label, type: 'custom' }],
    });
    return id;
  });
  return { label, templateId, instanceIds, parameterNames, runnerIds };
}
