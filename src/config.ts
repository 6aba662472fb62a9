import { InputError } from './errors.js';
import type { GitHubAuth } from './github/client.js';

// Every input is parsed and validated here, once, into a typed config. Nothing else reads inputs.

export type Mode = 'start' | 'stop' | 'reap' | 'watch' | 'pool';
export type Market = 'spot' | 'on-demand';
export type Scope = 'repo' | 'org';
export type Arch = 'x86_64' | 'arm64';

export type ImageRef = { kind: 'ami'; id: string } | { kind: 'ssm'; name: string };

export interface RunContext {
  owner: string;
  repo: string;
  runId: string;
  runAttempt: string;
  job: string;
  eventName: string;
  /** Where the code the job would run comes from, read from the event payload (see forkOrigin). */
  origin?: Origin;
}

/**
 * The event's pull request, if any: `foreign` when its head repository is not this repository
 * (compared by id: `head.repo.fork` is also true for a branch PR inside a repository that is
 * itself a fork) or is gone (`head.repo` null: the fork was deleted).
 */
export interface Origin {
  route: string;
  foreign: boolean;
  /** The head repository's name, or why it is unknown. */
  head: string;
}

interface Common {
  githubAuth: GitHubAuth;
  region: string;
  scope: Scope;
  /** org scope: the organisation; repo scope: the owner. */
  org: string;
  runnerGroup?: string;
  dryRun: boolean;
  run: RunContext;
}

export interface StartConfig extends Common {
  mode: 'start';
  image: ImageRef;
  instanceTypes: string[];
  count: number;
  extraLabels: string[];
  market: Market;
  onDemandFallback: boolean;
  maxSpotPrice?: string;
  subnetIds: string[];
  securityGroupIds: string[];
  instanceProfile?: { name?: string; arn?: string };
  volumeSize?: number;
  tags: Record<string, string>;
  maxLifetimeMinutes: number;
  idleTimeoutMinutes: number;
  waitTimeoutMinutes: number;
  preRunnerScript: string;
  jobImdsAccess: boolean;
  allowForks: boolean;
  /** Spot allocation strategy; on-demand always honours the order (prioritized). */
  allocationStrategy: AllocationStrategy;
  /** Only the one listed type, never another type or family, on-demand fallback included. */
  exactType: boolean;
  /** Admission control: at most this many live managed machines in the region, this start's included (none: no cap). */
  maxRunning?: number;
  /** Warm pool to claim stopped machines from before launching cold ones (issue 16). */
  pool?: string;
}

/** mode pool: fill a named warm pool with never-used machines stopped at their checkpoint. */
export interface PoolConfig extends Omit<StartConfig, 'mode'> {
  mode: 'pool';
  pool: string;
  /** How many stopped, healthy machines the pool should hold. */
  size: number;
  /** Pool machines older than this are terminated by reap (and not claimed). */
  poolTtlMinutes: number;
}

export const ALLOCATION_STRATEGIES = ['price-capacity-optimized', 'capacity-optimized-prioritized'] as const;
export type AllocationStrategy = (typeof ALLOCATION_STRATEGIES)[number];

export interface StopConfig extends Common {
  mode: 'stop';
  label?: string;
  instanceIds: string[];
}

export interface ReapConfig extends Common {
  mode: 'reap';
  maxAgeMinutes: number;
  confirm: string;
}

/**
 * mode watch: the same inputs as the start it watches (a replacement is that start's machine
 * again), plus the label start returned and how many replacements it may launch.
 */
export interface WatchConfig extends Common {
  mode: 'watch';
  label: string;
  /** The start settings a replacement is launched with (count is 1 per replacement). */
  start: StartConfig;
  maxReplacements: number;
  watchTimeoutMinutes: number;
  /** Cancels the run (POST …/actions/runs/{run_id}/cancel): needs `actions: write`. Default: github-token. */
  cancelToken?: string;
  /** start's `runners` output: which runner each machine holds (nothing else pairs them). */
  runners: WatchedRunner[];
}

export interface WatchedRunner {
  name: string;
  id: number;
  instanceId: string;
}

export const MAX_REPLACEMENTS = 20;

export type Config = StartConfig | StopConfig | ReapConfig | WatchConfig | PoolConfig;

export type InputGetter = (name: string) => string;

/** Commas or newlines separate items; blanks are dropped. */
export function parseList(raw: string): string[] {
  return raw
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

// Labels and names reach shell scripts and tags: keep them to a small, inert alphabet.
export const SAFE_LABEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const REGION = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d{1,2}$/;
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9-]+$/;
const AMI = /^ami-[0-9a-f]{8,17}$/;
const SSM_NAME = /^\/?[A-Za-z0-9_.\-/{}]{1,1011}$/;
const SUBNET = /^subnet-[0-9a-f]{8,17}$/;
const SG = /^sg-[0-9a-f]{8,17}$/;
const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
const PROFILE_NAME = /^[\w+=,.@-]{1,128}$/;
const PROFILE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:instance-profile\/[\w+=,.@/-]{1,512}$/;
const TAG_KEY = /^[A-Za-z0-9 _.:/=+@-]{1,128}$/;
const TAG_VALUE = /^[A-Za-z0-9 _.:/=+@-]{0,256}$/;

export const MAX_COUNT = 100;

function bool(get: InputGetter, name: string, dflt: boolean): boolean {
  const v = get(name).trim();
  if (v === '') return dflt;
  if (/^(true|True|TRUE)$/.test(v)) return true;
  if (/^(false|False|FALSE)$/.test(v)) return false;
  throw new InputError(name, `'${v}' is not a boolean`, "use 'true' or 'false'");
}

function positiveNumber(get: InputGetter, name: string, dflt: number, max: number, integer = false): number {
  const v = get(name).trim();
  if (v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new InputError(
      name,
      `'${v}' is not a positive ${integer ? 'whole ' : ''}number`,
      `give a ${integer ? 'whole ' : ''}number above 0, at most ${max}`,
    );
  }
  if (n > max) throw new InputError(name, `${v} is above the limit of ${max}`, `give at most ${max}`);
  return n;
}

function oneOf<T extends string>(get: InputGetter, name: string, allowed: readonly T[], dflt: T): T {
  const v = get(name).trim() || dflt;
  if (!(allowed as readonly string[]).includes(v)) {
    throw new InputError(
      name,
      `'${v}' is not one of ${allowed.join(', ')}`,
      `set it to ${allowed.map((a) => `'${a}'`).join(' or ')}`,
    );
  }
  return v as T;
}

function matchingList(get: InputGetter, name: string, re: RegExp, what: string): string[] {
  const items = parseList(get(name));
  for (const item of items) {
    if (!re.test(item))
      throw new InputError(name, `'${item}' is not a valid ${what}`, `list ${what}s separated by commas or newlines`);
  }
  return [...new Set(items)];
}

export function parseLabels(get: InputGetter, name: string): string[] {
  const labels = parseList(get(name));
  for (const l of labels) {
    if (!SAFE_LABEL.test(l)) {
      throw new InputError(
        name,
        `label '${l}' has characters outside [A-Za-z0-9._-] or is longer than 64`,
        'use only letters, digits, dot, underscore and hyphen',
      );
    }
  }
  return [...new Set(labels)];
}

function parseTags(raw: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const line of raw
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)) {
    const eq = line.indexOf('=');
    if (eq <= 0) throw new InputError('tags', `'${line}' is not key=value`, 'write one key=value per line');
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (/^(aws:|spot-runner:)/i.test(key)) {
      throw new InputError(
        'tags',
        `key '${key}' uses a reserved prefix`,
        "pick a key that does not start with 'aws:' or 'spot-runner:'",
      );
    }
    if (!TAG_KEY.test(key) || !TAG_VALUE.test(value)) {
      throw new InputError(
        'tags',
        `'${line}' has characters EC2 tags do not allow or is too long`,
        'use letters, digits, spaces and _ . : / = + - @; keys ≤ 128, values ≤ 256',
      );
    }
    tags[key] = value;
  }
  if (Object.keys(tags).length > 30)
    throw new InputError(
      'tags',
      'more than 30 tags',
      'give at most 30 tags (EC2 allows 50 and spot-runner uses up to 12)',
    );
  return tags;
}

export function parseImage(raw: string): ImageRef {
  const v = raw.trim();
  if (v === '')
    throw new InputError('image', 'it is required for start', "give an AMI id (ami-…) or 'ssm:<parameter name>'");
  if (v.startsWith('ssm:')) {
    const name = v.slice(4);
    if (!SSM_NAME.test(name))
      throw new InputError(
        'image',
        `'${name}' is not a valid SSM parameter name`,
        "use 'ssm:/path/to/param', where the name may contain {arch}",
      );
    return { kind: 'ssm', name };
  }
  if (!AMI.test(v))
    throw new InputError(
      'image',
      `'${v}' is neither an AMI id nor ssm:<name>`,
      "give 'ami-0123456789abcdef0' or 'ssm:/spot-runner/ami/base/{arch}'",
    );
  return { kind: 'ami', id: v };
}

function region(get: InputGetter, env: NodeJS.ProcessEnv): string {
  const v = get('aws-region').trim() || env.AWS_REGION || env.AWS_DEFAULT_REGION || '';
  if (v === '')
    throw new InputError(
      'aws-region',
      'no region given and neither AWS_REGION nor AWS_DEFAULT_REGION is set',
      "set 'aws-region', e.g. us-east-1",
    );
  if (!REGION.test(v))
    throw new InputError('aws-region', `'${v}' is not a region name`, 'use a name such as us-east-1');
  return v;
}

type RepoRef = { id?: number; full_name?: string; fork?: boolean } | null | undefined;
interface EventPayload {
  repository?: RepoRef;
  pull_request?: { head?: { repo?: RepoRef } };
  workflow_run?: { event?: string; head_repository?: RepoRef; repository?: RepoRef };
  issue?: { number?: number; pull_request?: unknown };
}

/** Reads where the job's code comes from, for the events that can carry code from outside the repository. */
export function forkOrigin(eventName: string, event: unknown): Origin | undefined {
  const ev = (event ?? {}) as EventPayload;
  const selfId = ev.repository?.id;
  const compare = (route: string, head: RepoRef, baseId: number | undefined): Origin => {
    if (!head) return { route, foreign: true, head: 'a deleted repository (head.repo is null)' };
    return {
      route,
      foreign: head.id === undefined || baseId === undefined || head.id !== baseId,
      head: head.full_name ?? `repository id ${String(head.id)}`,
    };
  };
  if (ev.pull_request && (eventName.startsWith('pull_request') || eventName === 'pull_request_target')) {
    return compare(eventName, ev.pull_request.head?.repo ?? null, selfId);
  }
  if (eventName === 'workflow_run' && ev.workflow_run && (ev.workflow_run.event ?? '').startsWith('pull_request')) {
    // A run triggered by a pull request: its head_repository is the fork, when it is one.
    return compare(
      `workflow_run of a ${ev.workflow_run.event ?? 'pull_request'} run`,
      ev.workflow_run.head_repository ?? null,
      ev.workflow_run.repository?.id ?? selfId,
    );
  }
  if (eventName === 'issue_comment' && ev.issue?.pull_request) {
    // The payload does not say where the pull request's head lives: treat it as foreign.
    return {
      route: 'issue_comment on a pull request',
      foreign: true,
      head: `pull request #${String(ev.issue.number ?? '?')} (the comment payload does not name its head repository)`,
    };
  }
  return undefined;
}

export function runContext(env: NodeJS.ProcessEnv, event: unknown): RunContext {
  const [owner, repo] = (env.GITHUB_REPOSITORY ?? '').split('/');
  if (!owner || !repo)
    throw new InputError(
      'GITHUB_REPOSITORY',
      'it is not set',
      'run the action inside GitHub Actions, or set GITHUB_REPOSITORY=owner/name',
    );
  const eventName = env.GITHUB_EVENT_NAME || '';
  return {
    owner,
    repo,
    runId: env.GITHUB_RUN_ID || '0',
    runAttempt: env.GITHUB_RUN_ATTEMPT || '1',
    job: env.GITHUB_JOB || 'job',
    eventName,
    origin: forkOrigin(eventName, event),
  };
}

/** github-token, or github-app-id with github-app-private-key (and optionally the installation): exactly one. */
export function parseGitHubAuth(get: InputGetter): GitHubAuth {
  const token = get('github-token').trim();
  const appId = get('github-app-id').trim();
  const key = get('github-app-private-key').trim().replace(/\\n/g, '\n');
  const inst = get('github-app-installation-id').trim();
  const app = appId !== '' || key !== '' || inst !== '';
  if (token !== '' && app) {
    throw new InputError(
      'github-token',
      'both github-token and GitHub App inputs (github-app-id, github-app-private-key) are given',
      'give either github-token or github-app-id with github-app-private-key, not both',
    );
  }
  if (token === '' && !app) {
    throw new InputError(
      'github-token',
      'neither github-token nor github-app-id with github-app-private-key is given',
      'pass a token that may manage self-hosted runners (e.g. secrets.RUNNER_ADMIN_TOKEN), or a GitHub App: github-app-id and github-app-private-key',
    );
  }
  if (token !== '') return { kind: 'token', token };
  if (!/^\d{1,12}$/.test(appId) && !/^Iv[0-9A-Za-z.]{8,40}$/.test(appId)) {
    throw new InputError(
      'github-app-id',
      appId === ''
        ? 'it is empty but github-app-private-key is given'
        : `'${appId}' is neither an App id nor a client id`,
      "give the App's numeric id (or its client id, Iv…) from the App's settings page",
    );
  }
  if (!/^-----BEGIN (RSA )?PRIVATE KEY-----[\s\S]+-----END (RSA )?PRIVATE KEY-----$/.test(key)) {
    throw new InputError(
      'github-app-private-key',
      key === '' ? 'it is empty but github-app-id is given' : 'it is not a PEM private key',
      "paste the whole .pem file the App's settings page generated, BEGIN and END lines included",
    );
  }
  if (inst !== '' && !/^\d{1,15}$/.test(inst)) {
    throw new InputError(
      'github-app-installation-id',
      `'${inst}' is not a number`,
      "give the installation's numeric id, or leave it empty to look it up for this repository or organisation",
    );
  }
  return { kind: 'app', appId, privateKey: key, installationId: inst === '' ? undefined : Number(inst) };
}

export function parseConfig(get: InputGetter, env: NodeJS.ProcessEnv, run: RunContext): Config {
  const mode = oneOf<Mode>(get, 'mode', ['start', 'stop', 'reap', 'watch', 'pool'], '' as Mode);
  const githubAuth = parseGitHubAuth(get);
  const scope = oneOf<Scope>(get, 'runner-scope', ['repo', 'org'], 'repo');
  const runnerGroup = get('runner-group').trim() || undefined;
  if (runnerGroup !== undefined && scope !== 'org') {
    throw new InputError(
      'runner-group',
      'runner groups exist only for organisation runners',
      'set runner-scope: org, or remove runner-group',
    );
  }
  if (runnerGroup !== undefined && !/^[A-Za-z0-9 ._-]{1,64}$/.test(runnerGroup)) {
    throw new InputError(
      'runner-group',
      `'${runnerGroup}' is not a valid group name or id`,
      'use the group name or its numeric id',
    );
  }
  const common: Common = {
    githubAuth,
    region: region(get, env),
    scope,
    org: run.owner,
    runnerGroup,
    dryRun: bool(get, 'dry-run', false),
    run,
  };

  if (mode === 'stop') {
    const label = get('label').trim() || undefined;
    if (label !== undefined && !SAFE_LABEL.test(label)) {
      throw new InputError(
        'label',
        `'${label}' has characters outside [A-Za-z0-9._-]`,
        "pass the 'label' output of the start step unchanged",
      );
    }
    const rawIds = get('instance-ids').trim();
    const ids = rawIds.startsWith('[') ? jsonIds(rawIds) : parseList(rawIds);
    for (const id of ids) {
      if (!INSTANCE_ID.test(id))
        throw new InputError(
          'instance-ids',
          `'${id}' is not an instance id`,
          "pass the 'instance-ids' output of the start step (a JSON array) or ids separated by commas",
        );
    }
    if (!label && ids.length === 0) {
      throw new InputError(
        'label',
        'stop needs something to stop',
        "pass 'label' (the start step's label output) and/or 'instance-ids'",
      );
    }
    return { ...common, mode, label, instanceIds: [...new Set(ids)] };
  }

  if (mode === 'reap') {
    const maxLifetime = positiveNumber(get, 'max-lifetime', 360, 10080);
    const rawAge = get('max-age').trim();
    let maxAgeMinutes = maxLifetime + 30;
    if (rawAge !== '') {
      const n = Number(rawAge);
      if (!Number.isFinite(n) || n < 0)
        throw new InputError('max-age', `'${rawAge}' is not a number of minutes ≥ 0`, 'give minutes, e.g. 390');
      maxAgeMinutes = n;
    }
    const confirm = get('confirm').trim();
    if (maxAgeMinutes === 0 && confirm !== 'everything') {
      throw new InputError(
        'confirm',
        'max-age 0 would remove every spot-runner resource in the region',
        'set confirm: everything if that is what you want, or raise max-age',
      );
    }
    return { ...common, mode, maxAgeMinutes, confirm };
  }

  if (mode === 'watch') return parseWatch(get, env, run, common);

  // start
  const image = parseImage(get('image'));
  const instanceTypes = matchingList(get, 'instance-types', INSTANCE_TYPE, 'instance type');
  if (instanceTypes.length === 0)
    throw new InputError(
      'instance-types',
      'it is required for start',
      'list one or more types in order of preference, e.g. c7i.xlarge, c6i.xlarge',
    );
  if (instanceTypes.length > 20)
    throw new InputError('instance-types', `${instanceTypes.length} types given`, 'list at most 20');
  const subnetIds = matchingList(get, 'subnet-ids', SUBNET, 'subnet id');
  const securityGroupIds = matchingList(get, 'security-group-ids', SG, 'security group id');
  if (instanceTypes.length * Math.max(1, subnetIds.length) > 300) {
    throw new InputError(
      'subnet-ids',
      'instance-types × subnet-ids exceeds the 300 overrides one fleet allows',
      'list fewer types or subnets',
    );
  }
  const maxSpotPriceRaw = get('max-spot-price').trim();
  if (maxSpotPriceRaw !== '' && !(/^\d+(\.\d+)?$/.test(maxSpotPriceRaw) && Number(maxSpotPriceRaw) > 0)) {
    throw new InputError(
      'max-spot-price',
      `'${maxSpotPriceRaw}' is not a price`,
      'give USD per hour, e.g. 0.25, or leave it empty',
    );
  }
  const profileRaw = get('instance-profile').trim();
  let instanceProfile: StartConfig['instanceProfile'];
  if (profileRaw !== '') {
    if (PROFILE_ARN.test(profileRaw)) instanceProfile = { arn: profileRaw };
    else if (PROFILE_NAME.test(profileRaw)) instanceProfile = { name: profileRaw };
    else
      throw new InputError(
        'instance-profile',
        `'${profileRaw}' is neither a profile name nor its ARN`,
        'give the instance profile name, or arn:aws:iam::<account>:instance-profile/<name>',
      );
  }
  const volRaw = get('volume-size').trim();
  let volumeSize: number | undefined;
  if (volRaw !== '') {
    volumeSize = positiveNumber(get, 'volume-size', 0, 16384, true);
    if (volumeSize < 8)
      throw new InputError('volume-size', `${volumeSize} GiB is too small for a runner`, 'give at least 8 (GiB)');
  }
  const maxLifetimeMinutes = positiveNumber(get, 'max-lifetime', 360, 10080);
  const idleTimeoutMinutes = positiveNumber(get, 'idle-timeout', 10, 10080);
  const waitTimeoutMinutes = positiveNumber(get, 'wait-timeout', 5, 120);
  if (idleTimeoutMinutes > maxLifetimeMinutes) {
    throw new InputError(
      'idle-timeout',
      `${idleTimeoutMinutes} is longer than max-lifetime (${maxLifetimeMinutes})`,
      'make idle-timeout shorter than max-lifetime',
    );
  }
  const allowForks = bool(get, 'allow-forks', false);
  forkGuard(run, allowForks);
  const exactType = bool(get, 'exact-type', false);
  if (exactType && instanceTypes.length > 1) {
    throw new InputError(
      'exact-type',
      `it allows one instance type, but instance-types lists ${instanceTypes.length} (${instanceTypes.join(', ')})`,
      'list exactly one type, or set exact-type: false to let EC2 fall back to the others',
    );
  }
  const count = positiveNumber(get, 'count', 1, MAX_COUNT, true);
  const maxRunning =
    get('max-running').trim() === '' ? undefined : positiveNumber(get, 'max-running', 0, 100_000, true);
  if (maxRunning !== undefined && maxRunning < count) {
    throw new InputError(
      'max-running',
      `${maxRunning} is below count (${count}): this start could never be admitted`,
      'raise max-running to at least count, lower count, or leave max-running empty for no cap',
    );
  }
  const startCfg: StartConfig = {
    ...common,
    mode: 'start',
    image,
    instanceTypes,
    count,
    extraLabels: parseLabels(get, 'labels'),
    market: oneOf<Market>(get, 'market', ['spot', 'on-demand'], 'spot'),
    onDemandFallback: bool(get, 'on-demand-fallback', true),
    maxSpotPrice: maxSpotPriceRaw || undefined,
    subnetIds,
    securityGroupIds,
    instanceProfile,
    volumeSize,
    tags: parseTags(get('tags')),
    maxLifetimeMinutes,
    idleTimeoutMinutes,
    waitTimeoutMinutes,
    preRunnerScript: get('pre-runner-script'),
    jobImdsAccess: bool(get, 'job-imds-access', false),
    allowForks,
    allocationStrategy: oneOf<AllocationStrategy>(
      get,
      'allocation-strategy',
      ALLOCATION_STRATEGIES,
      'price-capacity-optimized',
    ),
    exactType,
    maxRunning,
  };
  return withPool(get, mode, startCfg);
}

export const POOL_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
export const MAX_POOL_SIZE = 100;

/** The warm-pool inputs: `pool` for start (optional) and pool mode (required), `size` and `pool-ttl` for pool mode. */
function withPool(get: InputGetter, mode: Mode, cfg: StartConfig): StartConfig | PoolConfig {
  const pool = get('pool').trim();
  if (pool !== '' && !POOL_NAME.test(pool)) {
    throw new InputError(
      'pool',
      `'${pool}' is not a pool name`,
      'use 1-32 lower-case letters, digits and hyphens, starting with a letter or digit',
    );
  }
  if (mode !== 'pool') return pool === '' ? cfg : { ...cfg, pool };
  if (pool === '')
    throw new InputError(
      'pool',
      'mode pool needs the name of the pool to fill',
      'set pool: NAME (and the same pool: NAME on the starts that should claim from it)',
    );
  // Pool machines are always on-demand: they stop at their checkpoint, and EC2 refuses to stop a
  // one-time spot instance (docs/platform-behaviours.md). `market` still applies to the starts'
  // cold shortfall; action.yml's default 'spot' cannot be told from a choice, so it is not refused.
  const size = positiveNumber(get, 'size', 1, MAX_POOL_SIZE, true);
  const poolTtlMinutes = positiveNumber(get, 'pool-ttl', 1440, 10080);
  const { mode: _m, pool: _p, ...rest } = cfg;
  return { ...rest, mode: 'pool', pool, size, poolTtlMinutes, market: 'on-demand', onDemandFallback: false };
}

/** Watch reads start's inputs through the start parser, so the two can never disagree. */
function parseWatch(get: InputGetter, env: NodeJS.ProcessEnv, run: RunContext, common: Common): WatchConfig {
  const label = get('label').trim();
  if (label === '')
    throw new InputError(
      'label',
      'watch needs the label start returned',
      "pass the start step's 'label' output (needs.start.outputs.label)",
    );
  if (!SAFE_LABEL.test(label))
    throw new InputError(
      'label',
      `'${label}' has characters outside [A-Za-z0-9._-]`,
      "pass the 'label' output of the start step unchanged",
    );
  const rawMax = get('max-replacements').trim();
  const maxReplacements = rawMax === '' ? 2 : Number(rawMax);
  if (!Number.isInteger(maxReplacements) || maxReplacements < 0 || maxReplacements > MAX_REPLACEMENTS) {
    throw new InputError(
      'max-replacements',
      `'${rawMax}' is not a whole number from 0 to ${MAX_REPLACEMENTS}`,
      `give how many replacement machines watch may start in all, 0 to ${MAX_REPLACEMENTS} (0: cancel the run at the first loss)`,
    );
  }
  const watchTimeoutMinutes = positiveNumber(get, 'watch-timeout', 60, 10080);
  const runners = watchedRunners(get('runners'));
  const start = parseConfig((n) => (n === 'mode' ? 'start' : get(n)), env, run) as StartConfig;
  const cancelToken = get('cancel-token').trim() || undefined;
  return {
    ...common,
    mode: 'watch',
    label,
    start: { ...start, count: 1 },
    maxReplacements,
    watchTimeoutMinutes,
    cancelToken,
    runners,
  };
}

function watchedRunners(raw: string): WatchedRunner[] {
  const fix = "pass the start step's 'runners' output unchanged (needs.start.outputs.runners)";
  if (raw.trim() === '') throw new InputError('runners', 'watch needs to know which runner each machine holds', fix);
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new InputError('runners', 'it is not JSON', fix);
  }
  const ok = (x: unknown): x is WatchedRunner => {
    const r = x as Partial<WatchedRunner> | null;
    return (
      typeof r === 'object' &&
      r !== null &&
      typeof r.name === 'string' &&
      SAFE_RUNNER_NAME.test(r.name) &&
      Number.isInteger(r.id) &&
      typeof r.instanceId === 'string' &&
      INSTANCE_ID.test(r.instanceId)
    );
  };
  if (!Array.isArray(v) || v.length === 0 || !v.every(ok))
    throw new InputError('runners', 'it is not a non-empty JSON array of {name, id, instanceId}', fix);
  return v.map(({ name, id, instanceId }) => ({ name, id, instanceId }));
}

const SAFE_RUNNER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function jsonIds(raw: string): string[] {
  try {
    const v: unknown = JSON.parse(raw);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // fall through to the error below
  }
  throw new InputError(
    'instance-ids',
    'it starts with [ but is not a JSON array of strings',
    "pass the start step's instance-ids output unchanged",
  );
}

/**
 * Self-hosted runners run untrusted code from forks with the instance's network and role; refuse
 * unless asked. The one fork guard: the reusable workflows rely on it instead of keeping copies.
 */
export function forkGuard(run: RunContext, allowForks: boolean): void {
  if (allowForks || !run.origin?.foreign) return;
  const why =
    'a self-hosted runner would run code from outside the repository with access to your AWS network and instance role';
  throw new InputError(
    'allow-forks',
    `refusing to start runners for ${run.origin.route} from ${run.origin.head}: ${why}`,
    "run it from a branch of this repository, or set allow-forks: true only if the job never checks out or runs the pull request's code",
  );
}

/** Tuning settings (environment, not inputs): read here, once, like the inputs. */
export interface Tuning {
  /** PutParameter calls a second one start makes (0 = unpaced, SDK retries only). */
  ssmPutsPerSecond: number;
  /** mode watch: seconds between its looks at the machines (one DescribeInstances each; default 5). */
  watchPollSeconds: number;
}

export function tuning(env: NodeJS.ProcessEnv = process.env): Tuning {
  const raw = env.SPOT_RUNNER_SSM_PUTS_PER_SECOND;
  const n = raw === undefined || raw === '' ? 2 : Number(raw);
  const w = Number(env.SPOT_RUNNER_WATCH_POLL_SECONDS);
  return {
    ssmPutsPerSecond: Number.isFinite(n) && n >= 0 ? n : 2,
    watchPollSeconds: Number.isFinite(w) && w > 0 ? w : 5,
  };
}
