import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, runContext, type StartConfig, type StopConfig } from '../../src/config.js';
import { makeGitHub, type RateLimit } from '../../src/github/client.js';
import { StateRecorder } from '../../src/state.js';
import { start, type StartDeps } from '../../src/modes/start.js';
import { FakeWorld } from './world.js';
import { NockGitHub } from './github.js';

export const ENV = { GITHUB_REPOSITORY: 'acme/widgets', GITHUB_RUN_ID: '4242', GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: 'start', AWS_REGION: 'us-east-1' };

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

export function rig(extra: Partial<StartDeps> = {}, world?: ConstructorParameters<typeof FakeWorld>[0]): Rig {
  freshStateFile();
  process.env.SPOT_RUNNER_GITHUB_RETRY_BASE_MS = '1';
  process.env.SPOT_RUNNER_GITHUB_WRITE_GAP_MS = '0';
  const w = new FakeWorld(world);
  const github = new NockGitHub();
  const state = new StateRecorder();
  const logs: string[] = [];
  const rate: RateLimit = {};
  const deps: StartDeps = {
    aws: w.clients(),
    gh: makeGitHub('ghs_testtoken', rate),
    rate,
    state,
    log: (l) => logs.push(l),
    wait: { firstExpectedOnlineAt: 0, intervalMs: 5, instanceCheckMs: 5, timeoutMs: 2000 },
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
