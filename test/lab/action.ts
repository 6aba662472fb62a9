// Runs the bundled action exactly as the Actions runner does: inputs as INPUT_* variables,
// outputs and state through the GITHUB_OUTPUT / GITHUB_STATE files, the post step with STATE_*
// variables, and a cancel as SIGINT then SIGTERM.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DIST = join(ROOT, 'dist', 'index.js');

/** The runner's own rule: spaces become underscores, then upper case; hyphens stay. */
export function inputEnvName(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

/** Parses the `name<<DELIM\nvalue\nDELIM` records @actions/core writes to GITHUB_OUTPUT / GITHUB_STATE. */
export function parseCommandFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const m = /^([^<=]+)<<(.+)$/.exec(line);
    if (m) {
      const [, name, delim] = m as unknown as [string, string, string];
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) value.push(lines[i] ?? '');
      out[name] = value.join('\n');
    } else if (line.includes('=')) {
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return out;
}

export interface StepResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  outputs: Record<string, string>;
  state: Record<string, string>;
  summary: string;
  stdout: string;
  stderr: string;
  ms: number;
  /** ::error:: lines, as the runner would annotate them. */
  errors: string[];
}

export interface StepOptions {
  inputs: Record<string, string>;
  env: Record<string, string>;
  /** STATE_* for a post step. */
  state?: Record<string, string>;
  post?: boolean;
  /**
   * Cancel like the runner (ProcessInvoker in actions/runner): SIGINT at this moment, SIGTERM
   * 7.5 s later (cancelGraceMs), SIGKILL 2.5 s after that (killGraceMs).
   */
  cancelAfterMs?: number;
  cancelGraceMs?: number;
  killGraceMs?: number;
  /** SIGKILL outright when this resolves: the runner's kill token, a crashed runner, an OOM kill. */
  killWhen?: Promise<unknown>;
  /** Resolves when the step should be cancelled (alternative to cancelAfterMs). */
  cancelWhen?: Promise<unknown>;
  timeoutMs?: number;
  dist?: string;
  node?: string;
}

export async function runStep(o: StepOptions): Promise<StepResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sr-step-'));
  const files = {
    GITHUB_OUTPUT: join(dir, 'output'),
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary'),
  };
  for (const f of Object.values(files)) writeFileSync(f, '');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    GITHUB_ACTIONS: 'true',
    RUNNER_TEMP: dir,
    ...files,
    ...o.env,
  };
  for (const [k, v] of Object.entries(o.inputs)) env[inputEnvName(k)] = v;
  for (const [k, v] of Object.entries(o.state ?? {})) env[`STATE_${k}`] = v;
  const t0 = Date.now();
  const child = spawn(o.node ?? process.execPath, [o.dist ?? DIST], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timers: NodeJS.Timeout[] = [];
  const cancel = () => {
    child.kill('SIGINT');
    timers.push(
      setTimeout(() => {
        child.kill('SIGTERM');
        timers.push(setTimeout(() => child.kill('SIGKILL'), o.killGraceMs ?? 2500));
      }, o.cancelGraceMs ?? 7500),
    );
  };
  if (o.cancelAfterMs !== undefined) timers.push(setTimeout(cancel, o.cancelAfterMs));
  if (o.cancelWhen) void o.cancelWhen.then(cancel);
  if (o.killWhen) void o.killWhen.then(() => child.kill('SIGKILL'));
  timers.push(setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 120_000));
  const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) =>
    child.on('exit', (c, s) => res([c, s])),
  );
  for (const t of timers) clearTimeout(t);
  const read = (f: string) => readFileSync(f, 'utf8');
  return {
    exitCode,
    signal,
    outputs: parseCommandFile(read(files.GITHUB_OUTPUT)),
    state: parseCommandFile(read(files.GITHUB_STATE)),
    summary: read(files.GITHUB_STEP_SUMMARY),
    stdout,
    stderr,
    ms: Date.now() - t0,
    errors: stdout.split('\n').filter((l) => l.startsWith('::error')),
  };
}

/** main, then post when `post-if: failure() || cancelled()` holds, carrying state across. */
export async function runWithPost(o: StepOptions): Promise<{ main: StepResult; post?: StepResult }> {
  const main = await runStep(o);
  const failedOrCancelled =
    main.exitCode !== 0 || o.cancelAfterMs !== undefined || o.cancelWhen !== undefined || o.killWhen !== undefined;
  if (!failedOrCancelled) return { main };
  const post = await runStep({
    ...o,
    cancelAfterMs: undefined,
    cancelWhen: undefined,
    killWhen: undefined,
    state: main.state,
    post: true,
  });
  return { main, post };
}
