import type { AwsClients } from '../aws/clients.js';
import { LIVE_STATES, accountId, describeManaged, terminate, type InstanceInfo } from '../aws/instances.js';
import { deleteParameters, describeUnder, type ParameterInfo } from '../aws/params.js';
import { deleteTemplate, describeTemplatesByTag, type TemplateInfo } from '../aws/templates.js';
import type { ReapConfig } from '../config.js';
import { InputError, errorMessage } from '../errors.js';
import type { GitHub } from '../github/client.js';
import { deleteRunner, listRunners, type Runner, type Target } from '../github/runners.js';
import { NAME_PREFIX, PARAMETER_ROOT, TAGS } from '../tags.js';
import { homeLabel } from '../label.js';
import { claim, claimOwner } from '../pool.js';
import { CLAIMED_POOL_PREFIX, poolClaimName } from '../tags.js';

// Reap is the last kill path. It knows nothing but the tag schema in src/tags.ts, and it
// decides in pure functions (findInstances … planReap) so every rule is unit-testable; reap()
// only lists, calls those, and removes.

/**
 * Anything younger than this is left alone (except by nuke). A start creates its launch template
 * just before its fleet and its parameters just after, and EC2/SSM list calls can lag creation by
 * seconds: a resource that young may belong to a start still in progress.
 */
export const GRACE_MINUTES = 10;

export type ReapKind = 'instance' | 'parameter' | 'launch-template' | 'runner';
export type Outcome = 'would remove' | 'removed' | 'already gone' | 'kept: busy' | 'kept: claimed' | 'failed';

export interface Finding {
  kind: ReapKind;
  /** Instance id, parameter name, launch template id, or runner id. */
  id: string;
  /** Launch template or runner name. */
  name?: string;
  label?: string;
  reason: string;
  outcome?: Outcome;
  /** A stopped warm-pool machine: reap must win its claim parameter first (a start may be taking it). */
  needsClaim?: boolean;
  /** That claim's name (the machine's JIT parameter, under its pool's path). */
  claimName?: string;
}

export interface Inventory {
  /** Managed instances as DescribeInstances returned them (any state). */
  instances: InstanceInfo[];
  /** Parameters under PARAMETER_ROOT; tags only if the caller has them. */
  parameters: (ParameterInfo & { tags?: Record<string, string> })[];
  /** Managed launch templates. */
  templates: TemplateInfo[];
  /** Every runner of the scope. */
  runners: Runner[];
}

export interface Rules {
  now: number;
  maxAgeMinutes: number;
  nuke: boolean;
  graceMinutes?: number;
  /** This reaper's home label (account + region): runners without it belong to another reaper. */
  home?: string;
}

export interface Plan {
  instances: Finding[];
  parameters: Finding[];
  templates: Finding[];
  runners: Finding[];
}

const MINUTE = 60_000;
const managed = (tags: Record<string, string> | undefined) => tags?.[TAGS.managed] === 'true';
// shutting-down is already on its way out: neither terminated again nor counted as live.
const isLive = (i: InstanceInfo) => LIVE_STATES.includes(i.state) && i.state !== 'shutting-down';
const minutes = (ms: number) => Math.floor(ms / MINUTE);

/** max-age 0 is the nuke; it needs `confirm: everything`, here as well as in config, for callers that build a config by hand. */
export function nukeRequested(cfg: Pick<ReapConfig, 'maxAgeMinutes' | 'confirm'>): boolean {
  if (cfg.maxAgeMinutes !== 0) return false;
  if (cfg.confirm !== 'everything') {
    throw new InputError(
      'confirm',
      'max-age 0 would remove every spot-runner resource in the region',
      'set confirm: everything if that is what you want, or raise max-age',
    );
  }
  return true;
}

/** Live managed instances past their expires-at tag, or, without a readable one, older than max-age (strictly); nuke: all of them. */
export function findInstances(instances: InstanceInfo[], rules: Rules): Finding[] {
  const out: Finding[] = [];
  for (const i of instances) {
    if (!managed(i.tags) || !isLive(i)) continue;
    // Stopped, unclaimed pool machines have their own rules (findPoolInstances).
    if (isWaitingPoolMachine(i) && !rules.nuke) continue;
    const label = i.tags[TAGS.label];
    if (rules.nuke) {
      out.push({ kind: 'instance', id: i.instanceId, label, reason: 'nuke: every spot-runner instance goes' });
      continue;
    }
    const reasons: string[] = [];
    const expiresRaw = i.tags[TAGS.expiresAt];
    const expires = expiresRaw ? Date.parse(expiresRaw) : NaN;
    if (Number.isFinite(expires)) {
      // The start that launched it declared its life: a 5-day training run is not a leak at 6 h.
      if (expires < rules.now) reasons.push(`${TAGS.expiresAt} ${expiresRaw} has passed`);
    } else if (i.launchTime) {
      const age = rules.now - i.launchTime.getTime();
      if (age > rules.maxAgeMinutes * MINUTE)
        reasons.push(
          `no readable ${TAGS.expiresAt}, launched ${minutes(age)} min ago, more than max-age ${rules.maxAgeMinutes}`,
        );
    }
    if (reasons.length > 0) out.push({ kind: 'instance', id: i.instanceId, label, reason: reasons.join('; ') });
  }
  return out;
}

const isWaitingPoolMachine = (i: InstanceInfo) =>
  Boolean(i.tags[TAGS.pool]) &&
  !i.tags[TAGS.pool]?.startsWith(CLAIMED_POOL_PREFIX) &&
  (i.state === 'stopped' || i.state === 'stopping');

/**
 * Warm-pool machines waiting stopped: terminated once past the pool TTL (their expires-at), when
 * their settings hash is stale (another than the newest machine of the same pool has), when they
 * stopped without reaching the checkpoint (phase not `pooled`), or when a claim on them is older
 * than the grace period (its start died between claim and resume). A claimed machine carries
 * `claimed:<pool>` and follows the ordinary rules, so a machine running a job is never touched here.
 */
export function findPoolInstances(instances: InstanceInfo[], params: Inventory['parameters'], rules: Rules): Finding[] {
  if (rules.nuke) return [];
  const grace = (rules.graceMinutes ?? GRACE_MINUTES) * MINUTE;
  const waiting = instances.filter((i) => managed(i.tags) && isWaitingPoolMachine(i));
  const newest = new Map<string, InstanceInfo>();
  for (const i of instances.filter(
    (x) => managed(x.tags) && x.tags[TAGS.pool] && !x.tags[TAGS.pool]?.startsWith(CLAIMED_POOL_PREFIX) && isLive(x),
  )) {
    const pool = i.tags[TAGS.pool] as string;
    const cur = newest.get(pool);
    if (!cur || (i.launchTime?.getTime() ?? 0) > (cur.launchTime?.getTime() ?? 0)) newest.set(pool, i);
  }
  // A claim is the machine's JIT parameter: a start's (with its JIT config), a fill's or reap's.
  const claims = new Map(params.map((p) => [p.name, p]));
  const out: Finding[] = [];
  for (const i of waiting) {
    const pool = i.tags[TAGS.pool] as string;
    const label = i.tags[TAGS.label];
    const claimName = poolClaimName(pool, i.instanceId);
    const claimAge = claims.has(claimName) ? ageOf(claims.get(claimName)?.lastModified, rules.now) : undefined;
    if (claims.has(claimName)) {
      if (claimAge === undefined || claimAge > grace)
        out.push({
          kind: 'instance',
          id: i.instanceId,
          label,
          reason: `pool ${pool}: claimed ${claimAge === undefined ? 'at an unknown time' : `${minutes(claimAge)} min ago`} but never started (its start died)`,
        });
      continue;
    }
    const reasons: string[] = [];
    const expires = Date.parse(i.tags[TAGS.expiresAt] ?? '');
    if (Number.isFinite(expires) && expires < rules.now)
      reasons.push(`pool ${pool}: TTL passed (${TAGS.expiresAt} ${i.tags[TAGS.expiresAt]})`);
    const current = newest.get(pool)?.tags[TAGS.poolHash];
    if (current !== undefined && i.tags[TAGS.poolHash] !== current)
      reasons.push(
        `pool ${pool}: settings hash ${i.tags[TAGS.poolHash] ?? 'missing'} is stale (the newest machine has ${current})`,
      );
    const age = ageOf(i.launchTime, rules.now);
    if (i.state === 'stopped' && i.tags[TAGS.phase] !== 'pooled' && (age === undefined || age > grace))
      reasons.push(`pool ${pool}: stopped without reaching the checkpoint (phase ${i.tags[TAGS.phase] ?? 'none'})`);
    if (reasons.length > 0)
      out.push({ kind: 'instance', id: i.instanceId, label, reason: reasons.join('; '), needsClaim: true, claimName });
  }
  return out;
}

interface Liveness {
  liveIds: Set<string>;
  liveLabels: Set<string>;
  reapedIds: Set<string>;
  reapedLabels: Set<string>;
}

/** What stays alive once the instance findings are removed. */
function liveness(instances: InstanceInfo[], reaped: Finding[]): Liveness {
  const reapedIds = new Set(reaped.map((f) => f.id));
  const l: Liveness = { liveIds: new Set(), liveLabels: new Set(), reapedIds, reapedLabels: new Set() };
  for (const i of instances) {
    if (!managed(i.tags) || !isLive(i)) continue;
    const label = i.tags[TAGS.label];
    if (reapedIds.has(i.instanceId)) {
      if (label) l.reapedLabels.add(label);
    } else {
      l.liveIds.add(i.instanceId);
      if (label) l.liveLabels.add(label);
    }
  }
  // A label with one survivor is live, even if another of its instances goes.
  for (const label of l.liveLabels) l.reapedLabels.delete(label);
  return l;
}

const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;

/** The instance a parameter belongs to: the last path segment (parameterName() puts it there), else its tag. */
export function parameterInstance(p: { name: string; tags?: Record<string, string> }): string | undefined {
  const last = p.name.split('/').pop() ?? '';
  if (INSTANCE_ID.test(last)) return last;
  const tag = p.tags?.[TAGS.instanceId];
  return tag && INSTANCE_ID.test(tag) ? tag : undefined;
}

/** The age in ms, or undefined when unknown; AWS always sends these dates, so unknown counts as old. */
function ageOf(d: Date | undefined, now: number): number | undefined {
  return d ? now - d.getTime() : undefined;
}

/** Parameters under the root whose instance is gone or being reaped, once past the grace period; nuke: all under the root. */
export function findParameters(
  params: Inventory['parameters'],
  instances: InstanceInfo[],
  reaped: Finding[],
  rules: Rules,
): Finding[] {
  const live = liveness(instances, reaped);
  const grace = (rules.graceMinutes ?? GRACE_MINUTES) * MINUTE;
  const out: Finding[] = [];
  for (const p of params) {
    if (!p.name.startsWith(`${PARAMETER_ROOT}/`)) continue; // never outside our own path
    const label = p.name.slice(PARAMETER_ROOT.length + 1).split('/')[0] || undefined;
    if (rules.nuke) {
      out.push({ kind: 'parameter', id: p.name, label, reason: `nuke: every parameter under ${PARAMETER_ROOT}` });
      continue;
    }
    const age = ageOf(p.lastModified, rules.now);
    if (age !== undefined && age < grace) continue;
    const instanceId = parameterInstance(p);
    if (instanceId === undefined) {
      if (age === undefined || age > rules.maxAgeMinutes * MINUTE)
        out.push({ kind: 'parameter', id: p.name, label, reason: 'names no instance and is older than max-age' });
    } else if (live.reapedIds.has(instanceId)) {
      out.push({ kind: 'parameter', id: p.name, label, reason: `its instance ${instanceId} is being reaped` });
    } else if (!live.liveIds.has(instanceId)) {
      out.push({ kind: 'parameter', id: p.name, label, reason: `its instance ${instanceId} is gone` });
    }
  }
  return out;
}

/** Managed launch templates past the grace period whose label has no live instance left; nuke: all managed ones. */
export function findTemplates(
  templates: TemplateInfo[],
  instances: InstanceInfo[],
  reaped: Finding[],
  rules: Rules,
): Finding[] {
  const live = liveness(instances, reaped);
  const grace = (rules.graceMinutes ?? GRACE_MINUTES) * MINUTE;
  const out: Finding[] = [];
  for (const t of templates) {
    if (!managed(t.tags)) continue;
    const label = t.tags[TAGS.label] || t.name;
    if (rules.nuke) {
      out.push({
        kind: 'launch-template',
        id: t.id,
        name: t.name,
        label,
        reason: 'nuke: every spot-runner launch template goes',
      });
      continue;
    }
    const age = ageOf(t.createdAt, rules.now);
    if (age !== undefined && age < grace) continue; // its start may still be launching
    if (live.liveLabels.has(label)) continue;
    const reason = live.reapedLabels.has(label)
      ? 'its instances are being reaped'
      : 'no live instance carries its label';
    out.push({ kind: 'launch-template', id: t.id, name: t.name, label, reason });
  }
  return out;
}

/** A runner's spot-runner label: the one its name extends (names are `<label>-<n>`), else any prefixed label, else the name minus `-<n>`. */
export function runnerLabel(r: Runner): string {
  const prefixed = r.labels.filter((l) => l.startsWith(NAME_PREFIX));
  return prefixed.find((l) => r.name.startsWith(`${l}-`)) ?? prefixed[0] ?? r.name.replace(/-\d+$/, '');
}

/**
 * Ghost runners: named with NAME_PREFIX, carrying this reaper's home label (runners started from
 * another account or region are never touched), offline, not busy, and no live instance carries
 * their label. A managed template still inside its grace period also keeps its label alive: its
 * start may have registered runners whose instances EC2 does not list yet. A runner whose
 * instances this reap terminates goes in the same run, whatever GitHub still says about it
 * (GitHub marks it offline only a while after its machine is gone). Nuke: every runner of this
 * home. Busy runners are never touched.
 */
export function findRunners(
  runners: Runner[],
  instances: InstanceInfo[],
  templates: TemplateInfo[],
  reaped: Finding[],
  rules: Rules,
): Finding[] {
  const live = liveness(instances, reaped);
  const grace = (rules.graceMinutes ?? GRACE_MINUTES) * MINUTE;
  for (const t of templates) {
    const age = ageOf(t.createdAt, rules.now);
    if (managed(t.tags) && age !== undefined && age < grace) live.liveLabels.add(t.tags[TAGS.label] || t.name);
  }
  const home = rules.home?.toLowerCase();
  const out: Finding[] = [];
  for (const r of runners) {
    if (!r.name.startsWith(NAME_PREFIX) || r.busy) continue;
    if (home !== undefined && !r.labels.some((l) => l.toLowerCase() === home)) continue;
    const label = runnerLabel(r);
    if (rules.nuke) {
      out.push({
        kind: 'runner',
        id: String(r.id),
        name: r.name,
        label,
        reason: 'nuke: every spot-runner runner of this account and region goes',
      });
      continue;
    }
    if (live.reapedLabels.has(label)) {
      out.push({
        kind: 'runner',
        id: String(r.id),
        name: r.name,
        label,
        reason: `its instances are being reaped (GitHub still says ${r.status})`,
      });
      continue;
    }
    if (r.status !== 'offline' || live.liveLabels.has(label)) continue;
    out.push({
      kind: 'runner',
      id: String(r.id),
      name: r.name,
      label,
      reason: 'offline, and no live instance carries its label',
    });
  }
  return out;
}

export function planReap(inv: Inventory, rules: Rules): Plan {
  const instances = [
    ...findInstances(inv.instances, rules),
    ...findPoolInstances(inv.instances, inv.parameters, rules),
  ];
  return {
    instances,
    parameters: findParameters(inv.parameters, inv.instances, instances, rules),
    templates: findTemplates(inv.templates, inv.instances, instances, rules),
    runners: findRunners(inv.runners, inv.instances, inv.templates, instances, rules),
  };
}

export interface ReapDeps {
  aws: AwsClients;
  gh: GitHub;
  log: (line: string) => void;
  /** The lab moves time past the TTL with this. */
  now?: () => number;
  graceMinutes?: number;
  /** The AWS account (default: STS GetCallerIdentity); with the region it names this reaper's home. */
  accountId?: () => Promise<string>;
}

export interface ReapResult extends Plan {
  dryRun: boolean;
  nuke: boolean;
  maxAgeMinutes: number;
  graceMinutes: number;
  /** How many of each kind were looked at. */
  scanned: { instances: number; parameters: number; templates: number; runners: number };
  /** Listing or removal failures; each names what and why. */
  problems: string[];
}

/** Lists everything spot-runner may have left behind in the region and scope, and removes what the rules find. */
export async function reap(cfg: ReapConfig, deps: ReapDeps): Promise<ReapResult> {
  const nuke = nukeRequested(cfg);
  const { aws, gh } = deps;
  const graceMinutes = deps.graceMinutes ?? GRACE_MINUTES;
  const account = await (deps.accountId ? deps.accountId() : accountId(aws));
  const rules: Rules = {
    now: (deps.now ?? Date.now)(),
    maxAgeMinutes: cfg.maxAgeMinutes,
    nuke,
    graceMinutes,
    home: homeLabel(cfg.region, account),
  };
  const target: Target = { scope: cfg.scope, owner: cfg.run.owner, repo: cfg.run.repo };
  const problems: string[] = [];

  // Without the instance list nothing can be judged safely: that failure fails the reap.
  const instances = await describeManaged(aws);
  const [params, templates, runners] = await Promise.allSettled([
    describeUnder(aws, PARAMETER_ROOT),
    describeTemplatesByTag(aws, TAGS.managed, ['true']),
    listRunners(gh, target),
  ]);
  const got = <T>(r: PromiseSettledResult<T[]>, what: string): T[] | undefined => {
    if (r.status === 'fulfilled') return r.value;
    problems.push(`listing ${what} failed, so none were removed: ${errorMessage(r.reason)}`);
    return undefined;
  };
  const inv: Inventory = {
    instances,
    parameters: got(params, 'parameters') ?? [],
    templates: got(templates, 'launch templates') ?? [],
    runners: got(runners, 'runners') ?? [],
  };
  // The templates guard runners of starts in progress; without them, leave the runners be.
  if (templates.status === 'rejected' && inv.runners.length > 0) {
    problems.push('runners were not judged because the launch templates could not be listed');
    inv.runners = [];
  }

  const plan = planReap(inv, rules);
  const result: ReapResult = {
    ...plan,
    dryRun: cfg.dryRun,
    nuke,
    maxAgeMinutes: cfg.maxAgeMinutes,
    graceMinutes,
    scanned: {
      instances: inv.instances.length,
      parameters: inv.parameters.length,
      templates: inv.templates.length,
      runners: inv.runners.length,
    },
    problems,
  };
  const all = [...plan.instances, ...plan.runners, ...plan.parameters, ...plan.templates];
  deps.log(
    `Reap${cfg.dryRun ? ' (dry run)' : ''}${nuke ? ' NUKE' : ''}: ${plan.instances.length} instance(s), ${plan.parameters.length} parameter(s), ${plan.templates.length} launch template(s), ${plan.runners.length} runner(s) of ${JSON.stringify(result.scanned)} scanned`,
  );
  for (const f of all) deps.log(`  ${f.kind} ${f.id}${f.name ? ` (${f.name})` : ''}: ${f.reason}`);

  if (cfg.dryRun) {
    for (const f of all) f.outcome = 'would remove';
    return result;
  }

  // Stopped pool machines only once reap has won their claim: a start may be taking one now.
  const owner = claimOwner(`${NAME_PREFIX}reap`);
  for (const f of plan.instances.filter((x) => x.needsClaim)) {
    try {
      const name = f.claimName as string;
      if ((await claim(aws, name, owner, { [TAGS.managed]: 'true', [TAGS.instanceId]: f.id })) === 'lost')
        f.outcome = 'kept: claimed';
    } catch (e) {
      f.outcome = 'failed';
      problems.push(`claiming pool machine ${f.id}: ${errorMessage(e)}`);
    }
  }
  const kept = new Set(plan.instances.filter((f) => f.outcome !== undefined).map((f) => f.id));
  // A machine reap could not claim stays, and so do its parameters.
  plan.parameters = plan.parameters.filter((p) => !kept.has(parameterInstance({ name: p.id }) ?? ''));
  result.parameters = plan.parameters;
  // Instances first: they cost money. Each kind is removed independently of the others.
  await removeInstances(
    aws,
    plan.instances.filter((f) => f.outcome === undefined),
    problems,
  );
  // The claims reap itself just won, for machines now terminating: nobody can start those any more.
  const ownClaims = plan.instances
    .filter((f) => f.needsClaim && f.outcome === 'removed')
    .map((f) => f.claimName as string);
  if (ownClaims.length > 0)
    await deleteParameters(aws, ownClaims).catch((e: unknown) =>
      problems.push(`deleting reap's own pool claims: ${errorMessage(e)}`),
    );
  plan.parameters = plan.parameters.filter((p) => !ownClaims.includes(p.id));
  result.parameters = plan.parameters;
  await Promise.all([
    removeRunners(gh, target, plan.runners, problems),
    removeParameters(aws, plan.parameters, problems),
    removeTemplates(aws, plan.templates, problems),
  ]);
  return result;
}

async function removeInstances(aws: AwsClients, found: Finding[], problems: string[]): Promise<void> {
  if (found.length === 0) return;
  try {
    const done = new Set(
      (
        await terminate(
          aws,
          found.map((f) => f.id),
        )
      ).terminated,
    );
    for (const f of found) f.outcome = done.has(f.id) ? 'removed' : 'already gone';
  } catch (e) {
    for (const f of found) f.outcome = 'failed';
    problems.push(`terminating ${found.length} instance(s) failed: ${errorMessage(e)}`);
  }
}

async function removeRunners(gh: GitHub, target: Target, found: Finding[], problems: string[]): Promise<void> {
  for (const f of found) {
    try {
      const outcome = await deleteRunner(gh, target, Number(f.id));
      // It may have taken a job since it was listed: GitHub refuses, and that is right.
      f.outcome = outcome === 'deleted' ? 'removed' : outcome === 'gone' ? 'already gone' : 'kept: busy';
    } catch (e) {
      f.outcome = 'failed';
      problems.push(`deleting runner ${f.name ?? f.id}: ${errorMessage(e)}`);
    }
  }
}

async function removeParameters(aws: AwsClients, found: Finding[], problems: string[]): Promise<void> {
  if (found.length === 0) return;
  try {
    const deleted = new Set(
      await deleteParameters(
        aws,
        found.map((f) => f.id),
      ),
    );
    for (const f of found) f.outcome = deleted.has(f.id) ? 'removed' : 'already gone';
  } catch (e) {
    for (const f of found) f.outcome ??= 'failed';
    problems.push(`deleting parameters failed: ${errorMessage(e)}`);
  }
}

async function removeTemplates(aws: AwsClients, found: Finding[], problems: string[]): Promise<void> {
  for (const f of found) {
    try {
      f.outcome = (await deleteTemplate(aws, f.id)) ? 'removed' : 'already gone';
    } catch (e) {
      f.outcome = 'failed';
      problems.push(`deleting launch template ${f.id}: ${errorMessage(e)}`);
    }
  }
}

/**
 * The `reaped` output. GitHub caps a step output at 1 MB, which a big leak (thousands of
 * instances) would pass: then each finding keeps only kind, id and outcome, and if that is
 * still too long, the first N of each kind, with `truncated` and the full counts.
 */
export function reapedOutput(r: ReapResult, limit = 900_000): string {
  const full = JSON.stringify(r);
  if (full.length <= limit) return full;
  const counts = {
    instances: r.instances.length,
    parameters: r.parameters.length,
    templates: r.templates.length,
    runners: r.runners.length,
  };
  const slim = (fs: Finding[], n: number) => fs.slice(0, n).map(({ kind, id, outcome }) => ({ kind, id, outcome }));
  for (let n = Math.max(...Object.values(counts)); ; n = Math.floor(n / 2)) {
    const out = JSON.stringify({
      ...r,
      instances: slim(r.instances, n),
      parameters: slim(r.parameters, n),
      templates: slim(r.templates, n),
      runners: slim(r.runners, n),
      truncated: true,
      counts,
    });
    if (out.length <= limit || n === 0) return out;
  }
}
