// A small, strict interpreter for our reusable workflows: it runs the jobs in `needs` order (each once its needs are done),
// evaluates the `${{ … }}` expressions the workflows actually use, and runs each step the way the
// Actions runner would, through a Host that decides what "running" means (the lab, or a fake):
//   - `uses: ACTION_REF`      → host.action() with the evaluated `with:` (+ action.yml defaults);
//   - `uses: spot-runner/spot-runner/<name>@v1` → this repository's composite action <name>/action.yml,
//     expanded in place: its inputs become the caller's `with:` expressions (or its defaults),
//     its step ids are prefixed, and its steps then run like the job's own;
//   - configure-aws-credentials, checkout, upload-artifact → not run (they need real AWS/GitHub),
//     recorded with the reason; their `with:` is still evaluated;
//   - `run:`                  → bash -e for real, with the step's evaluated env, GITHUB_OUTPUT
//     and GITHUB_STEP_SUMMARY files;
//   - a job whose runs-on is an expression (a runner label) → host.runnerJob(): a runner carrying
//     that label must take the job; its steps run while it holds it; a lost runner fails the job.
// Only what the workflows use is implemented. Anything else (an unknown function, operator,
// context, input, output, step id, job key) throws, so a workflow that grows an expression this
// interpreter cannot judge breaks the test instead of passing it by accident.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandFile } from '../lab/action.js';
import {
  ACTION_REF,
  actionInputs,
  callInputs,
  callSecrets,
  callTrigger,
  expandComposites,
  isObj,
  type ActionInputs,
  type Obj,
} from './check.js';

// ---------------------------------------------------------------- expressions

export type Value = string | number | boolean | null;

type Node =
  | { k: 'lit'; v: Value }
  | { k: 'path'; parts: string[] }
  | { k: 'call'; name: string; args: Node[] }
  | { k: 'not'; e: Node }
  | { k: 'bin'; op: '==' | '!=' | '&&' | '||'; l: Node; r: Node };

type Tok = { t: 'str'; v: string } | { t: 'num'; v: number } | { t: 'id'; v: string } | { t: 'op'; v: string };

export class WorkflowError extends Error {}

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const rest = src.slice(i);
    const ws = /^\s+/.exec(rest);
    if (ws) {
      i += ws[0].length;
      continue;
    }
    if (rest[0] === "'") {
      let j = 1;
      let v = '';
      for (;;) {
        if (j >= rest.length) throw new WorkflowError(`unterminated string in '${src}'`);
        if (rest[j] === "'") {
          if (rest[j + 1] === "'") {
            v += "'";
            j += 2;
            continue;
          }
          break;
        }
        v += rest[j];
        j++;
      }
      toks.push({ t: 'str', v });
      i += j + 1;
      continue;
    }
    const num = /^\d+(\.\d+)?/.exec(rest);
    if (num) {
      toks.push({ t: 'num', v: Number(num[0]) });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(rest);
    if (id) {
      toks.push({ t: 'id', v: id[0] });
      i += id[0].length;
      continue;
    }
    const op = /^(==|!=|&&|\|\||!|\(|\)|,|\.)/.exec(rest);
    if (op) {
      toks.push({ t: 'op', v: op[0] });
      i += op[0].length;
      continue;
    }
    throw new WorkflowError(
      `unsupported syntax at '${rest.slice(0, 12)}' in '${src}' (this interpreter knows ==, !=, &&, ||, !, (), literals, contexts and a few functions)`,
    );
  }
  return toks;
}

export function parseExpression(src: string): Node {
  const toks = tokenize(src);
  let p = 0;
  const peek = (v: string) => toks[p]?.t === 'op' && toks[p]?.v === v;
  const expect = (v: string) => {
    if (!peek(v)) throw new WorkflowError(`expected '${v}' in '${src}'`);
    p++;
  };
  const primary = (): Node => {
    const t = toks[p++];
    if (!t) throw new WorkflowError(`unexpected end of '${src}'`);
    if (t.t === 'str' || t.t === 'num') return { k: 'lit', v: t.v };
    if (t.t === 'op') {
      if (t.v === '(') {
        const e = or();
        expect(')');
        return e;
      }
      throw new WorkflowError(`unexpected '${t.v}' in '${src}'`);
    }
    if (t.v === 'true' || t.v === 'false') return { k: 'lit', v: t.v === 'true' };
    if (t.v === 'null') return { k: 'lit', v: null };
    if (peek('(')) {
      p++;
      const args: Node[] = [];
      while (!peek(')')) {
        args.push(or());
        if (!peek(')')) expect(',');
      }
      p++;
      return { k: 'call', name: t.v, args };
    }
    const parts = [t.v];
    while (peek('.')) {
      p++;
      const n = toks[p++];
      if (n?.t !== 'id') throw new WorkflowError(`expected a property name after '${parts.join('.')}.' in '${src}'`);
      parts.push(n.v);
    }
    return { k: 'path', parts };
  };
  const unary = (): Node => {
    if (peek('!')) {
      p++;
      return { k: 'not', e: unary() };
    }
    return primary();
  };
  const eq = (): Node => {
    let l = unary();
    while (peek('==') || peek('!=')) {
      const op = (toks[p++] as Tok).v as '==' | '!=';
      l = { k: 'bin', op, l, r: unary() };
    }
    return l;
  };
  const and = (): Node => {
    let l = eq();
    while (peek('&&')) {
      p++;
      l = { k: 'bin', op: '&&', l, r: eq() };
    }
    return l;
  };
  const or = (): Node => {
    let l = and();
    while (peek('||')) {
      p++;
      l = { k: 'bin', op: '||', l, r: and() };
    }
    return l;
  };
  const e = or();
  if (p !== toks.length) throw new WorkflowError(`unexpected trailing tokens in '${src}'`);
  return e;
}

const STATUS_FUNCTIONS = ['always', 'success', 'failure', 'cancelled'];

function usesStatus(n: Node): boolean {
  switch (n.k) {
    case 'call':
      return STATUS_FUNCTIONS.includes(n.name) || n.args.some(usesStatus);
    case 'not':
      return usesStatus(n.e);
    case 'bin':
      return usesStatus(n.l) || usesStatus(n.r);
    default:
      return false;
  }
}

export function truthy(v: Value): boolean {
  return !(v === false || v === null || v === '' || v === 0 || (typeof v === 'number' && Number.isNaN(v)));
}

function toNumber(v: Value): number {
  if (v === null) return 0;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return v;
  return v.trim() === '' ? 0 : Number(v);
}

/** GitHub's loose equality: same type compares directly (strings case-insensitively), else both as numbers. */
export function looseEquals(a: Value, b: Value): boolean {
  if (typeof a === 'string' && typeof b === 'string') return a.toLowerCase() === b.toLowerCase();
  if (a === null && b === null) return true;
  if (typeof a === typeof b && a !== null && b !== null) return a === b;
  const x = toNumber(a);
  const y = toNumber(b);
  return !Number.isNaN(x) && !Number.isNaN(y) && x === y;
}

/** The string a value becomes in `with:`, `env:`, outputs and interpolation. */
export function str(v: Value): string {
  if (v === null) return '';
  return typeof v === 'string' ? v : String(v);
}

export interface Scope {
  /** Where the expression sits, for error messages. */
  where: string;
  /** The contexts allowed here: root name → resolver of the rest of the path. */
  contexts: Record<string, (rest: string[]) => Value>;
  /** Status functions; undefined where GitHub allows none (anything but `if:`). */
  status?: { success: () => boolean; failure: () => boolean };
}

function evalNode(n: Node, s: Scope): Value {
  switch (n.k) {
    case 'lit':
      return n.v;
    case 'not':
      return !truthy(evalNode(n.e, s));
    case 'bin': {
      if (n.op === '&&') {
        const l = evalNode(n.l, s);
        return truthy(l) ? evalNode(n.r, s) : l;
      }
      if (n.op === '||') {
        const l = evalNode(n.l, s);
        return truthy(l) ? l : evalNode(n.r, s);
      }
      const eq = looseEquals(evalNode(n.l, s), evalNode(n.r, s));
      return n.op === '==' ? eq : !eq;
    }
    case 'call': {
      if (!STATUS_FUNCTIONS.includes(n.name))
        throw new WorkflowError(`${s.where}: function ${n.name}() is not supported by this interpreter`);
      if (n.args.length) throw new WorkflowError(`${s.where}: ${n.name}() takes no arguments`);
      if (!s.status) throw new WorkflowError(`${s.where}: ${n.name}() is only allowed in if:`);
      if (n.name === 'always') return true;
      if (n.name === 'cancelled') return false; // the interpreter never cancels
      return n.name === 'success' ? s.status.success() : s.status.failure();
    }
    case 'path': {
      const [root, ...rest] = n.parts as [string, ...string[]];
      const resolve = s.contexts[root];
      if (!resolve)
        throw new WorkflowError(
          `${s.where}: context '${root}' is not available here (allowed: ${Object.keys(s.contexts).join(', ')})`,
        );
      return resolve(rest);
    }
  }
}

export function evaluate(src: string, s: Scope): Value {
  return evalNode(parseExpression(src), s);
}

/** Splits text into literal parts and `${{ … }}` expressions (quotes respected inside). */
function splitTemplate(text: string, where: string): Array<{ lit: string } | { expr: string }> {
  const parts: Array<{ lit: string } | { expr: string }> = [];
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('${{', i);
    if (open < 0) {
      parts.push({ lit: text.slice(i) });
      break;
    }
    if (open > i) parts.push({ lit: text.slice(i, open) });
    let j = open + 3;
    let inStr = false;
    for (; j < text.length; j++) {
      if (text[j] === "'") inStr = !inStr;
      else if (!inStr && text.startsWith('}}', j)) break;
    }
    if (j >= text.length) throw new WorkflowError(`${where}: unterminated \${{ in '${text}'`);
    parts.push({ expr: text.slice(open + 3, j) });
    i = j + 2;
  }
  return parts;
}

/** A YAML value with `${{ }}` in it: one whole expression keeps its type, else a string. */
export function evalTemplate(v: unknown, s: Scope): Value {
  if (typeof v === 'number' || typeof v === 'boolean') return v;
  if (typeof v !== 'string') throw new WorkflowError(`${s.where}: expected a scalar, got ${JSON.stringify(v)}`);
  const parts = splitTemplate(v, s.where);
  const only = parts.length === 1 ? parts[0] : undefined;
  if (only && 'expr' in only) return evaluate(only.expr, s);
  return parts.map((p) => ('lit' in p ? p.lit : str(evaluate(p.expr, s)))).join('');
}

/** An `if:`: an expression with or without `${{ }}`; without a status function it means success() && (…). */
export function evalCondition(v: unknown, s: Scope): boolean {
  if (v === undefined) return s.status ? s.status.success() : true;
  if (typeof v === 'boolean') return v;
  if (typeof v !== 'string') throw new WorkflowError(`${s.where}: if: must be a string, got ${JSON.stringify(v)}`);
  const m = /^\s*\$\{\{([\s\S]*)\}\}\s*$/.exec(v);
  const node = parseExpression(m ? (m[1] as string) : v);
  const value = truthy(evalNode(node, s));
  return usesStatus(node) ? value : (s.status?.success() ?? true) && value;
}

// ---------------------------------------------------------------- workflows

export interface WorkflowCall {
  /** The caller's `with:`. */
  inputs: Record<string, string | number | boolean>;
  secrets: Record<string, string>;
  vars?: Record<string, string>;
  /** The github context: event_name, repository, run_id, run_attempt, event, … */
  github: Obj;
}

export interface ActionRun {
  exitCode: number | null;
  outputs: Record<string, string>;
  summary: string;
  log: string;
}

export interface Host {
  /** Runs the action (main, and post when the runner would) with these INPUT_* and GITHUB_* env. */
  action(o: {
    job: string;
    step: string;
    inputs: Record<string, string>;
    env: Record<string, string>;
  }): Promise<ActionRun>;
  /**
   * A job for a self-hosted runner label: a runner carrying `label` takes it and runSteps() runs
   * its steps while it holds the job. Resolves with `lost` (the job's failure as GitHub records
   * it) if the machine went away during the job, else with nothing.
   */
  runnerJob(o: { job: string; label: string; runSteps: () => Promise<void> }): Promise<{ lost?: string }>;
}

export type StepKind = 'action' | 'run' | 'not-run';
export type Result = 'success' | 'failure' | 'skipped';

export interface StepRecord {
  index: number;
  name: string;
  id?: string;
  kind: StepKind;
  /** false when its if: was false. */
  ran: boolean;
  /** Why a step with `uses:` other than the action was not run. */
  reason?: string;
  uses?: string;
  outcome: Result;
  conclusion: Result;
  outputs: Record<string, string>;
  with?: Record<string, string>;
  env?: Record<string, string>;
  workingDirectory?: string;
  /** Where a run: step ran. */
  cwd?: string;
  exitCode?: number | null;
  summary: string;
  log: string;
}

export interface JobRecord {
  id: string;
  /** What needs.<id>.result says (continue-on-error turns failure into success). */
  result: Result;
  /** The job failed, whatever continue-on-error made of it. */
  failed: boolean;
  runsOn?: string;
  /** The runner label it was dispatched to, for jobs on a self-hosted runner. */
  runnerLabel?: string;
  lost?: string;
  timeoutMinutes?: number;
  outputs: Record<string, string>;
  steps: StepRecord[];
  summary: string;
}

export interface WorkflowRun {
  order: string[];
  jobs: Record<string, JobRecord>;
  outputs: Record<string, string>;
  result: 'success' | 'failure';
  /** Every job's step summaries, in run order. */
  summary: string;
}

const HOSTED = ['ubuntu-latest', 'ubuntu-24.04', 'ubuntu-22.04'];
const WORKFLOW_KEYS = ['name', 'on', 'run-name', 'permissions', 'concurrency', 'jobs'];
const JOB_KEYS = [
  'name',
  'needs',
  'if',
  'runs-on',
  'timeout-minutes',
  'continue-on-error',
  'permissions',
  'outputs',
  'steps',
  'concurrency',
];
const STEP_KEYS = ['name', 'id', 'if', 'uses', 'with', 'run', 'env', 'working-directory', 'continue-on-error'];

/** Steps this interpreter does not run, and why. Their `with:` is evaluated all the same. */
const NOT_RUN: Array<[RegExp, string]> = [
  [
    /^aws-actions\/configure-aws-credentials@[0-9a-f]{40}$/,
    'configures real AWS credentials; the lab gives the action its AWS endpoint and keys in the env',
  ],
  [/^actions\/checkout@[0-9a-f]{40}$/, 'needs a real GitHub repository; the workspace is an empty directory'],
  [/^actions\/upload-artifact@[0-9a-f]{40}$/, 'needs the GitHub artifact service'],
];

const asObj = (v: unknown): Obj => (isObj(v) ? v : {});

const asList = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

function checkKeys(o: Obj, allowed: string[], where: string): void {
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) throw new WorkflowError(`${where}: '${k}' is not supported by this interpreter`);
}

/** The jobs in `needs` order, ties in file order. */
export function jobOrder(wf: Obj): string[] {
  const jobs = asObj(wf.jobs);
  const ids = Object.keys(jobs);
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (id: string, from: string) => {
    if (order.includes(id)) return;
    if (!(id in jobs)) throw new WorkflowError(`job '${from}' needs '${id}', which does not exist`);
    if (visiting.has(id)) throw new WorkflowError(`needs cycle through '${id}'`);
    visiting.add(id);
    for (const n of asList(asObj(jobs[id]).needs)) visit(n, id);
    order.push(id);
  };
  for (const id of ids) visit(id, id);
  return order;
}

/** A Node-side bash run of a `run:` step (async: the lab serves requests from this process). */
function bash(script: string, cwd: string, env: Record<string, string>): Promise<{ code: number | null; log: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-e', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, log }));
  });
}

export interface RunOptions {
  /** action.yml, for the action's input names, required ones and defaults. */
  actionYml: Obj;
}

/** Runs a workflow_call workflow's jobs, in needs order, through the host. */
export async function runWorkflow(wf: Obj, call: WorkflowCall, host: Host, o: RunOptions): Promise<WorkflowRun> {
  checkKeys(wf, WORKFLOW_KEYS, 'workflow');
  if (!callTrigger(wf)) throw new WorkflowError('the workflow has no workflow_call trigger');
  const action: ActionInputs = actionInputs(o.actionYml);

  // inputs: declared, typed, required ones given; defaults as GitHub fills them
  const declared = callInputs(wf);
  const inputs: Record<string, Value> = {};
  for (const [k, v] of Object.entries(call.inputs)) {
    const d = declared[k];
    if (!d) throw new WorkflowError(`the caller passes input '${k}', which the workflow does not declare`);
    if (typeof v !== d.type)
      throw new WorkflowError(`input '${k}' is declared ${d.type} but the caller passes ${typeof v}`);
  }
  for (const [k, d] of Object.entries(declared)) {
    if (d.required && d.default === undefined && !(k in call.inputs))
      throw new WorkflowError(`required input '${k}' is missing`);
    const v = k in call.inputs ? call.inputs[k] : d.default;
    inputs[k] = v === undefined ? null : (v as Value);
  }
  const secretsDeclared = callSecrets(wf);
  for (const k of Object.keys(call.secrets))
    if (!(k in secretsDeclared))
      throw new WorkflowError(`the caller passes secret '${k}', which the workflow does not declare`);

  const jobsYml = asObj(wf.jobs);
  const order = jobOrder(wf);
  const records: Record<string, JobRecord> = {};
  const runId = String(call.github.run_id ?? '1');

  const leaf = (name: string, rest: string[], value: Value | undefined, where: string): Value => {
    if (rest.length !== 1)
      throw new WorkflowError(`${where}: '${[name, ...rest].join('.')}' is not a <context>.<name> reference`);
    if (value === undefined) throw new WorkflowError(`${where}: ${name}.${rest[0]} is not declared`);
    return value;
  };
  const ctx = {
    inputs: (where: string) => (rest: string[]) => leaf('inputs', rest, inputs[rest[0] ?? ''], where),
    secrets: (where: string) => (rest: string[]) =>
      leaf(
        'secrets',
        rest,
        rest[0] !== undefined && rest[0] in secretsDeclared ? (call.secrets[rest[0]] ?? '') : undefined,
        where,
      ),
    vars: (where: string) => (rest: string[]) => leaf('vars', rest, call.vars?.[rest[0] ?? ''], where),
    github: (where: string) => (rest: string[]) => {
      const [first, ...deeper] = rest;
      if (first === undefined || !(first in call.github))
        throw new WorkflowError(
          `${where}: github.${first ?? ''} is not in the github context given to the interpreter`,
        );
      // below the first level, a missing property is null (event payloads are sparse)
      let v: unknown = call.github[first];
      for (const p of deeper) v = isObj(v) ? v[p] : undefined;
      if (v === undefined) return null;
      if (isObj(v) || Array.isArray(v))
        throw new WorkflowError(`${where}: github.${rest.join('.')} is an object; this interpreter has no toJSON()`);
      return v as Value;
    },
    /** needs.X.outputs.Y / needs.X.result, X in the job's needs, Y declared by X. */
    needs: (where: string, needs: string[]) => (rest: string[]) => {
      const [dep, what, out, ...more] = rest;
      if (dep === undefined || !needs.includes(dep))
        throw new WorkflowError(
          `${where}: needs.${dep ?? ''}: '${dep ?? ''}' is not in this job's needs (${needs.join(', ')})`,
        );
      const rec = records[dep] as JobRecord;
      if (what === 'result' && out === undefined) return rec.result;
      if (what !== 'outputs' || out === undefined || more.length)
        throw new WorkflowError(
          `${where}: needs.${rest.join('.')} is neither needs.<job>.outputs.<name> nor needs.<job>.result`,
        );
      if (!(out in asObj(asObj(jobsYml[dep]).outputs)))
        throw new WorkflowError(`${where}: needs.${dep}.outputs.${out}: job '${dep}' declares no output '${out}'`);
      return rec.outputs[out] ?? '';
    },
    /** steps.S.outputs.Y / outcome / conclusion, S an earlier step of this job. */
    steps: (where: string, done: StepRecord[]) => (rest: string[]) => {
      const [sid, what, out, ...more] = rest;
      const st = done.find((s) => s.id === sid);
      if (!st) throw new WorkflowError(`${where}: steps.${sid ?? ''}: no earlier step has id '${sid ?? ''}'`);
      if ((what === 'outcome' || what === 'conclusion') && out === undefined) return st[what];
      if (what !== 'outputs' || out === undefined || more.length)
        throw new WorkflowError(
          `${where}: steps.${rest.join('.')} is not steps.<id>.outputs.<name>, .outcome or .conclusion`,
        );
      return st.outputs[out] ?? '';
    },
  };

  const ancestors = (id: string): string[] => {
    const out = new Set<string>();
    const walk = (j: string) => {
      for (const n of asList(asObj(jobsYml[j]).needs)) {
        if (out.has(n)) continue;
        out.add(n);
        walk(n);
      }
    };
    walk(id);
    return [...out];
  };

  // Jobs run as GitHub runs them: each starts once its needs are done, so a watch job runs next
  // to the work job it watches.
  const running: Record<string, Promise<void>> = {};
  for (const id of order) {
    running[id] = (async () => {
      await Promise.all(asList(asObj(jobsYml[id]).needs).map((n) => running[n]));
      const job = asObj(jobsYml[id]);
      const jw = `jobs.${id}`;
      checkKeys(job, JOB_KEYS, jw);
      const needs = asList(job.needs);
      const anc = ancestors(id);
      const rec: JobRecord = { id, result: 'skipped', failed: false, outputs: {}, steps: [], summary: '' };
      records[id] = rec;
      // The contexts every job-level field has; steps and outputs add theirs after these.
      const jobContexts = (where: string): Scope['contexts'] => ({
        inputs: ctx.inputs(where),
        needs: ctx.needs(where, needs),
        github: ctx.github(where),
        vars: ctx.vars(where),
      });
      const jobScope = (where: string, withStatus = false): Scope => ({
        where,
        contexts: jobContexts(where),
        status: withStatus
          ? {
              success: () => anc.every((a) => records[a]?.result === 'success'),
              failure: () => anc.some((a) => records[a]?.result === 'failure'),
            }
          : undefined,
      });
      if (!evalCondition(job.if, jobScope(`${jw}.if`, true))) return;

      const rawRunsOn = job['runs-on'];
      if (typeof rawRunsOn !== 'string') throw new WorkflowError(`${jw}.runs-on: only a single label is supported`);
      const runsOn = str(evalTemplate(rawRunsOn, jobScope(`${jw}.runs-on`)));
      rec.runsOn = runsOn;
      const selfHosted = rawRunsOn.includes('${{');
      if (!selfHosted && !HOSTED.includes(runsOn))
        throw new WorkflowError(`${jw}.runs-on: '${runsOn}' is neither a hosted label nor an expression`);
      if (selfHosted && runsOn === '') throw new WorkflowError(`${jw}.runs-on evaluates to an empty label`);
      if (job['timeout-minutes'] !== undefined) {
        const t = evalTemplate(job['timeout-minutes'], jobScope(`${jw}.timeout-minutes`));
        if (typeof t !== 'number' || !(t > 0))
          throw new WorkflowError(`${jw}.timeout-minutes evaluates to ${JSON.stringify(t)}, not a positive number`);
        rec.timeoutMinutes = t;
      }
      const idToken = asObj(job.permissions)['id-token'] === 'write';
      const workspace = mkdtempSync(join(tmpdir(), `wf-${id}-`));
      const baseEnv: Record<string, string> = {
        CI: 'true',
        GITHUB_ACTIONS: 'true',
        GITHUB_JOB: id,
        GITHUB_REPOSITORY: String(call.github.repository ?? ''),
        GITHUB_EVENT_NAME: String(call.github.event_name ?? ''),
        GITHUB_RUN_ID: runId,
        GITHUB_RUN_ATTEMPT: String(call.github.run_attempt ?? '1'),
        GITHUB_WORKSPACE: workspace,
        // GitHub hands a job the OIDC request URL only when it is granted id-token: write.
        ...(idToken && !selfHosted ? { ACTIONS_ID_TOKEN_REQUEST_URL: 'https://oidc.invalid/token' } : {}),
      };

      const runSteps = async () => {
        let steps: Obj[];
        try {
          steps = expandComposites(Array.isArray(job.steps) ? job.steps.map(asObj) : [], jw);
        } catch (e) {
          throw new WorkflowError((e as Error).message);
        }
        for (const [index, step] of steps.entries()) {
          const name = String(step.name ?? step.uses ?? step.run ?? `step ${index + 1}`);
          const sw = `${jw}.steps[${index}] '${name}'`;
          checkKeys(step, STEP_KEYS, sw);
          const done = rec.steps;
          const stepScope = (field: string, withSecrets: boolean, withStatus = false): Scope => {
            const where = `${sw}.${field}`;
            const contexts: Scope['contexts'] = { ...jobContexts(where), steps: ctx.steps(where, done) };
            if (withSecrets) contexts.secrets = ctx.secrets(where);
            const failed = () => done.some((s) => s.conclusion === 'failure');
            return { where, contexts, status: withStatus ? { success: () => !failed(), failure: failed } : undefined };
          };
          const stepId = typeof step.id === 'string' ? step.id : undefined;
          const sr: StepRecord = {
            index,
            name,
            id: stepId,
            kind: 'run',
            ran: false,
            outcome: 'skipped',
            conclusion: 'skipped',
            outputs: {},
            summary: '',
            log: '',
          };
          const evalMap = (m: unknown, field: string) =>
            Object.fromEntries(
              Object.entries(asObj(m)).map(([k, v]) => [k, str(evalTemplate(v, stepScope(`${field}.${k}`, true)))]),
            );
          if (typeof step.uses === 'string') {
            sr.uses = step.uses;
            sr.with = evalMap(step.with, 'with');
            if (step.uses === ACTION_REF) sr.kind = 'action';
            else {
              const reason = NOT_RUN.find(([re]) => re.test(step.uses as string))?.[1];
              if (!reason)
                throw new WorkflowError(`${sw}: uses '${step.uses}', which this interpreter can neither run nor skip`);
              sr.kind = 'not-run';
              sr.reason = reason;
            }
          } else if (typeof step.run === 'string') {
            sr.env = evalMap(step.env, 'env');
            sr.workingDirectory =
              step['working-directory'] === undefined
                ? '.'
                : str(evalTemplate(step['working-directory'], stepScope('working-directory', false)));
          } else throw new WorkflowError(`${sw}: neither uses: nor run:`);
          // with:, env: and working-directory are evaluated even for a step its if: skips: stricter.
          const cond = evalCondition(step.if, stepScope('if', false, true));
          done.push(sr);
          if (!cond) continue;
          sr.ran = true;
          let ok = true;
          if (sr.kind === 'action') {
            const given = sr.with ?? {};
            for (const k of Object.keys(given))
              if (!(k in action)) throw new WorkflowError(`${sw}: with.${k} is not an input of the action`);
            const all: Record<string, string> = {};
            for (const [k, d] of Object.entries(action)) {
              if (k in given) all[k] = given[k] as string;
              else if (d.required) throw new WorkflowError(`${sw}: the action's required input '${k}' is missing`);
              else if (d.default !== undefined) all[k] = String(d.default); // the runner fills action.yml defaults
            }
            const r = await host.action({ job: id, step: name, inputs: all, env: baseEnv });
            Object.assign(sr, { outputs: r.outputs, summary: r.summary, log: r.log, exitCode: r.exitCode, with: all });
            ok = r.exitCode === 0;
          } else if (sr.kind === 'not-run') {
            ok = true; // assumed to succeed; it has no outputs the workflow reads
          } else {
            const cwd = join(workspace, sr.workingDirectory ?? '.');
            sr.cwd = cwd;
            mkdirSync(cwd, { recursive: true }); // checkout would have made it
            const dir = mkdtempSync(join(tmpdir(), 'wf-step-'));
            const files = {
              GITHUB_OUTPUT: join(dir, 'output'),
              GITHUB_STEP_SUMMARY: join(dir, 'summary'),
              GITHUB_ENV: join(dir, 'env'),
              GITHUB_PATH: join(dir, 'path'),
            };
            for (const f of Object.values(files)) writeFileSync(f, '');
            writeFileSync(join(dir, 'step.sh'), step.run as string);
            const env = {
              PATH: process.env.PATH ?? '/usr/bin:/bin',
              HOME: process.env.HOME ?? '/tmp',
              RUNNER_TEMP: dir,
              ...baseEnv,
              ...files,
              ...sr.env,
            };
            const r = await bash(join(dir, 'step.sh'), cwd, env);
            if (readFileSync(files.GITHUB_ENV, 'utf8') || readFileSync(files.GITHUB_PATH, 'utf8'))
              throw new WorkflowError(
                `${sw}: writes GITHUB_ENV/GITHUB_PATH, which this interpreter does not carry to later steps`,
              );
            Object.assign(sr, {
              outputs: parseCommandFile(readFileSync(files.GITHUB_OUTPUT, 'utf8')),
              summary: readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
              log: r.log,
              exitCode: r.code,
            });
            ok = r.code === 0;
          }
          sr.outcome = ok ? 'success' : 'failure';
          const coe =
            step['continue-on-error'] === undefined
              ? false
              : truthy(evalTemplate(step['continue-on-error'], stepScope('continue-on-error', false)));
          sr.conclusion = ok || coe ? 'success' : 'failure';
          rec.summary += sr.summary;
        }
      };

      if (selfHosted) {
        rec.runnerLabel = runsOn;
        const r = await host.runnerJob({ job: id, label: runsOn, runSteps });
        rec.lost = r.lost;
      } else {
        await runSteps();
      }
      rec.failed = rec.lost !== undefined || rec.steps.some((s) => s.conclusion === 'failure');
      const coe =
        job['continue-on-error'] === undefined
          ? false
          : truthy(evalTemplate(job['continue-on-error'], jobScope(`${jw}.continue-on-error`)));
      rec.result = rec.failed && !coe ? 'failure' : 'success';
      // A lost runner never reports the job's outputs.
      if (rec.lost === undefined) {
        for (const [k, v] of Object.entries(asObj(job.outputs))) {
          const where = `${jw}.outputs.${k}`;
          rec.outputs[k] = str(
            evalTemplate(v, {
              where,
              contexts: { ...jobContexts(where), secrets: ctx.secrets(where), steps: ctx.steps(where, rec.steps) },
            }),
          );
        }
      }
    })();
  }
  await Promise.all(Object.values(running));

  // the workflow's outputs: jobs.J.outputs.Y
  const outputs: Record<string, string> = {};
  for (const [k, d] of Object.entries(asObj(callTrigger(wf)?.outputs))) {
    const where = `on.workflow_call.outputs.${k}`;
    const jobsCtx = (rest: string[]): Value => {
      const [j, what, out, ...more] = rest;
      if (j === undefined || !(j in records)) throw new WorkflowError(`${where}: jobs.${j ?? ''} is not a job`);
      if (what === 'result' && out === undefined) return (records[j] as JobRecord).result;
      if (what !== 'outputs' || out === undefined || more.length)
        throw new WorkflowError(`${where}: jobs.${rest.join('.')} is not jobs.<job>.outputs.<name>`);
      if (!(out in asObj(asObj(jobsYml[j]).outputs)))
        throw new WorkflowError(`${where}: job '${j}' declares no output '${out}'`);
      return (records[j] as JobRecord).outputs[out] ?? '';
    };
    outputs[k] = str(
      evalTemplate(asObj(d).value, {
        where,
        contexts: { jobs: jobsCtx, inputs: ctx.inputs(where), github: ctx.github(where), vars: ctx.vars(where) },
      }),
    );
  }
  const ran = order.map((j) => records[j] as JobRecord);
  return {
    order,
    jobs: records,
    outputs,
    result: ran.some((j) => j.result === 'failure') ? 'failure' : 'success',
    summary: ran.map((j) => j.summary).join(''),
  };
}
