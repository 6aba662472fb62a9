import { ec2ReadCount, type AwsClients } from '../aws/clients.js';
import {
  DEFAULT_RETRY,
  createLaunchTemplate,
  fleetRequest,
  launch,
  launchTemplateRequest,
  type LaunchedInstance,
  type RetryOptions,
} from '../aws/fleet.js';
import { resolveLaunchInputs, resolvePools } from '../aws/image.js';
import {
  DEFAULT_TERMINATE,
  accountId,
  describeByIds,
  describeManaged,
  instanceArn,
  type TerminateOptions,
} from '../aws/instances.js';
import { Pacer, putSecret } from '../aws/params.js';
import { currentSpotPrices } from '../aws/pricing.js';
import { tuning, type StartConfig } from '../config.js';
import { InputError, SpotRunnerError, errorMessage, httpStatus } from '../errors.js';
import type { GitHub, RateLimit } from '../github/client.js';
import { createJitRunner, resolveRunnerGroup, type JitRunner, type Target } from '../github/runners.js';
import { clientToken, homeLabel, makeLabel, runnerLabels, runnerName } from '../label.js';
import type { RecordedKey, Resources, StateRecorder } from '../state.js';
import { runnerVersionWarnings, type RunnerRow } from '../summary.js';
import { PARAMETER_ROOT, TAGS, parameterName, runTags } from '../tags.js';
import { teardown, type TeardownReport } from '../teardown.js';
import { renderUserData } from '../userdata/render.js';
import { defaultWaitOptions, waitForRunners, type WaitOptions } from '../waiter.js';
import { claimNext, poolMachines, poolSettings, readyMachines, shuffled, type Claimed } from '../pool.js';
import type { InstanceInfo } from '../aws/instances.js';

export interface StartDeps {
  aws: AwsClients;
  gh: GitHub;
  rate: RateLimit;
  state: StateRecorder;
  log: (line: string) => void;
  signal?: AbortSignal;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Tests shrink the waits. */
  wait?: Partial<WaitOptions>;
  /** Tests fix the random part of the label. */
  label?: string;
  /** The AWS account (default: STS GetCallerIdentity); in the instance ARNs and the runners' home label. */
  accountId?: () => Promise<string>;
  /** Tests shrink the eventual-consistency retries (a template not yet known; instances not yet listed). */
  retry?: Partial<RetryOptions>;
  terminate?: Partial<TerminateOptions>;
  /** PutParameter pacing; default from SPOT_RUNNER_SSM_PUTS_PER_SECOND. */
  pacer?: Pacer;
}

export interface StartResult {
  label: string;
  labels: string[];
  runners: RunnerRow[];
  dryRun: boolean;
  plan?: unknown;
  /** Warnings for the summary (e.g. a runner that updated itself past the image's pin). */
  notes?: string[];
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Runs fn over items at most `limit` at a time; on a failure it lets what is in flight finish, then throws. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (e) {
        if (failure === undefined) failure = e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure;
  return results;
}

/** A bad token or a missing permission should fail before anything is launched. */
async function checkGitHubAccess(gh: GitHub, t: Target): Promise<void> {
  try {
    if (t.scope === 'org') await gh.request('GET /orgs/{org}/actions/runners', { org: t.owner, per_page: 1 });
    else await gh.request('GET /repos/{owner}/{repo}/actions/runners', { owner: t.owner, repo: t.repo, per_page: 1 });
  } catch (e) {
    const s = httpStatus(e);
    if (s === 401 || s === 403 || s === 404) {
      const need =
        t.scope === 'org'
          ? 'the organisation permission "Self-hosted runners: write"'
          : 'the repository permission "Administration: write"';
      throw new SpotRunnerError(
        `Input 'github-token': GitHub answered ${s} when listing ${t.scope} runners of ${t.scope === 'org' ? t.owner : `${t.owner}/${t.repo}`}. Fix: use a token with ${need} (GITHUB_TOKEN cannot register runners).`,
      );
    }
    throw e;
  }
}

export function describeRollback(r: TeardownReport): string[] {
  return [
    `terminated ${r.terminated.length} instance(s)${r.terminated.length ? `: ${r.terminated.join(', ')}` : ''}`,
    `deleted ${r.runnersDeleted.length} runner(s), ${r.parametersDeleted.length} parameter(s), ${r.templatesDeleted.length} launch template(s)`,
    ...r.notes,
    ...r.problems.map((p) => `PROBLEM ${p}`),
  ];
}

/**
 * Whether a failed launch leaves nothing unseen: our own verdict on EC2's answers, or a refusal
 * (4xx). A 5xx, a timeout or an abort may have launched machines EC2 does not list yet.
 */
export function launchAnswered(e: unknown): boolean {
  if (e instanceof SpotRunnerError) return true;
  const status = httpStatus(e);
  return status !== undefined && status >= 400 && status < 500;
}

/** The states in which a managed machine counts against max-running: it runs, or is about to. */
export const ADMISSION_STATES = ['pending', 'running', 'stopping'];

/**
 * Admission control (max-running): the live managed machines in the region, counted by tag,
 * plus this start's must stay within the cap. Read-only; start calls it before anything is
 * created. A machine launched a second ago may not be listed yet (EC2 eventual consistency), so
 * starts racing each other can overshoot by what they launch together: a cost guard, not a lock.
 */
export async function admit(cfg: StartConfig, aws: AwsClients, log: (l: string) => void): Promise<void> {
  if (cfg.maxRunning === undefined) return;
  const live = (await describeManaged(aws, ADMISSION_STATES)).length;
  if (live + cfg.count > cfg.maxRunning) {
    throw new InputError(
      'max-running',
      `${live} managed machine(s) are already live in ${cfg.region} and this start asks for ${cfg.count}; ${live} + ${cfg.count} = ${live + cfg.count} is over the cap of ${cfg.maxRunning}`,
      'wait for running jobs to finish, lower count, raise max-running, or run mode: reap if some of them are leaks',
    );
  }
  log(`Admitted: ${live} managed machine(s) live in ${cfg.region} + ${cfg.count} ≤ max-running ${cfg.maxRunning}`);
}

/** The renderer re-validates; its only failure a valid config can still hit is the 16 KB limit. */
function renderChecked(o: Parameters<typeof renderUserData>[0]): string {
  try {
    return renderUserData(o);
  } catch (e) {
    throw new InputError(
      'pre-runner-script',
      errorMessage(e),
      'shorten the script; put the bulk of it into the AMI or download it from the script',
    );
  }
}

/** Everything a launch needs, worked out read-only: a bad input costs nothing. */
export interface LaunchPlan {
  target: Target;
  image: Awaited<ReturnType<typeof resolveLaunchInputs>>['image'];
  pools: Awaited<ReturnType<typeof resolveLaunchInputs>>['pools'];
  notes: string[];
  account: string;
  groupId: number;
  label: string;
  labels: string[];
  expiresAt: string;
  tags: Record<string, string>;
  userData: string;
  ltReq: ReturnType<typeof launchTemplateRequest>;
  /** This start's EC2 reads so far (its validation ones first), for the waiter's budget; absent for fake clients. */
  ec2Reads?: { count: () => number; since: number };
}

/** Where provisioning records what it creates (start's StateRecorder; watch adds its own list). */
export interface Recorder {
  add<K extends RecordedKey>(key: K, ...items: Resources[K]): void;
}

export interface ProvisionOptions {
  /** One runner and one newly launched machine per name. */
  names: string[];
  /** JIT configs already issued for some of those names (a pool start's spares). */
  premade?: Map<string, JitRunner>;
  /** Reuse this launch template (watch: the one start created); otherwise create plan.ltReq. */
  templateId?: string;
  /**
   * More tags for this launch's instances, in the fleet request (watch: the replacement's runner
   * name, so a post that goes by record finds an instance whose fleet answer never came).
   */
  instanceTags?: Record<string, string>;
  /** ClientToken per call; a replacement needs its own, or EC2 answers with start's fleet. */
  tokenFor: (purpose: string) => string;
  record: Recorder;
  /** Warm-pool machines already claimed with their JIT config and started (start with `pool`). */
  pooled?: Pooled[];
  pool?: string;
}

/** A pool machine a start claimed with this runner's JIT config and started. */
export interface Pooled extends Claimed {
  jit: JitRunner;
}

/**
 * Step 1b of start with `pool`: per runner, a ready machine of this pool built from these very
 * settings is started at once, while GitHub issues the runner's JIT config; then the claim,
 * PutParameter of the JIT config itself, without Overwrite, at the machine's JIT name (one
 * PutParameter per machine), paced, while the machine resumes. A machine another start took, or
 * whose claim another won, is theirs: the runner tries the next with the same JIT config. Runners
 * as they come, not in steps. JIT configs that found no machine are returned for the cold launch.
 */
async function takeFromPool(
  cfg: StartConfig,
  deps: StartDeps & { pacer: Pacer },
  plan: LaunchPlan,
  pool: string,
  listedP: Promise<InstanceInfo[]>,
  names: string[],
): Promise<{ pooled: Pooled[]; spare: Map<string, JitRunner> }> {
  const { aws, gh, signal } = deps;
  const { ready, stale } = readyMachines(await listedP, poolSettings(cfg, plan.image, pool).hash);
  deps.log(
    `Pool ${pool}: ${ready.length} ready${stale ? ` (${stale} built from other settings: a fill or reap removes them)` : ''}`,
  );
  // Random order: concurrent starts rarely contend for the same machine.
  const queue = shuffled(ready);
  const pooled: Pooled[] = [];
  const spare = new Map<string, JitRunner>();
  await mapLimit(names.slice(0, Math.min(names.length, ready.length)), 8, async (name) => {
    signal?.throwIfAborted();
    deps.state.add('runnerNames', name);
    const jitP = createJitRunner(gh, plan.target, name, plan.labels, plan.groupId, deps.log).then((jit) => {
      deps.state.add('runnerIds', jit.runner.id);
      return jit;
    });
    const value = jitP.then((j) => j.encodedJitConfig);
    // Awaited below in every case; this only keeps an early failure from being unhandled meanwhile.
    value.catch(() => undefined);
    const r = await claimNext(pool, queue, value, (id) => jitTags(cfg, plan, id, name), plan.tags, {
      aws,
      log: deps.log,
      signal,
      pacer: deps.pacer,
      now: deps.now,
      onClaimParameter: (n) => deps.state.add('parameterNames', n),
      onInstance: (id) => deps.state.add('instanceIds', id),
    });
    const jit = await jitP;
    if (r.claimed) pooled.push({ ...r.claimed, jit });
    else spare.set(name, jit);
  });
  deps.log(
    `Pool ${pool}: resumed ${pooled.length} of ${cfg.count}${pooled.length ? `: ${pooled.map((c) => c.instanceId).join(', ')}` : ''}; ${cfg.count - pooled.length} cold`,
  );
  return { pooled, spare };
}

function jitTags(cfg: StartConfig, plan: LaunchPlan, instanceId: string, runnerName: string): Record<string, string> {
  return {
    [TAGS.managed]: 'true',
    [TAGS.label]: plan.label,
    [TAGS.instanceId]: instanceId,
    [TAGS.instanceArn]: instanceArn(cfg.region, plan.account, instanceId),
    [TAGS.runnerName]: runnerName,
    [TAGS.expiresAt]: plan.expiresAt,
  };
}

/** Step 1 of start, shared with watch: read-only checks and the request start would send. */
export async function planLaunch(
  cfg: StartConfig,
  deps: StartDeps,
  o: { deferPools?: boolean } = {},
): Promise<LaunchPlan> {
  const { aws, gh, signal } = deps;
  const now = deps.now ?? Date.now;
  const target: Target = { scope: cfg.scope, owner: cfg.run.owner, repo: cfg.run.repo };
  const readsBefore = ec2ReadCount(aws);
  const ec2Reads =
    readsBefore === undefined ? undefined : { count: () => (ec2ReadCount(aws) ?? 0) - readsBefore, since: now() };

  // 1. Everything read-only first: a bad input costs nothing. The checks are independent: at once.
  const inputsP = resolveLaunchInputs(cfg, aws, signal, { pools: !o.deferPools });
  // The account for the instance ARNs (the instance role's policy matches them): from STS, since
  // DescribeInstances may not list a just-launched instance yet.
  const accountP = deps.accountId ? deps.accountId() : accountId(aws, signal);
  const groupP = checkGitHubAccess(gh, target).then(() => resolveRunnerGroup(gh, target, cfg.runnerGroup));
  const admitP = admit(cfg, aws, deps.log);
  // All settle before the first failure is thrown: nothing is left running behind it.
  const settled = await Promise.allSettled([inputsP, accountP, groupP, admitP]);
  for (const r of settled) if (r.status === 'rejected') throw r.reason;
  const { image, pools, notes } = await inputsP;
  const [account, groupId] = await Promise.all([accountP, groupP]);
  deps.log(
    `Validated: image ${image.id} (${image.arch}${image.parameter ? `, from ${image.parameter}` : ''}), types ${cfg.instanceTypes.join(', ')}, ${cfg.count} × ${cfg.market}${cfg.market === 'spot' && cfg.onDemandFallback ? ' with on-demand fallback' : ''}, ${o.deferPools ? 'capacity pools checked only for a shortfall of the warm pool' : `${pools.length} pool(s)`}, spot ${cfg.allocationStrategy}`,
  );
  for (const n of notes) deps.log(`Note: ${n}`);

  const label = deps.label ?? makeLabel(cfg.run);
  const labels = runnerLabels(label, image.arch, homeLabel(cfg.region, account), cfg.extraLabels);
  const expiresAt = new Date(now() + cfg.maxLifetimeMinutes * 60_000).toISOString();
  const tags: Record<string, string> = {
    ...cfg.tags,
    Name: label,
    ...runTags(cfg, label, expiresAt),
  };
  const userData = renderChecked({
    region: cfg.region,
    parameterPrefix: `${PARAMETER_ROOT}/${label}`,
    maxLifetimeMinutes: cfg.maxLifetimeMinutes,
    idleTimeoutMinutes: cfg.idleTimeoutMinutes,
    preRunnerScript: cfg.preRunnerScript,
    preRunnerTimeoutMinutes: Math.min(30, cfg.maxLifetimeMinutes),
    jobImdsAccess: cfg.jobImdsAccess,
    label,
  });
  const ltReq = launchTemplateRequest(cfg, image, label, userData, tags, clientToken(label, 'lt'));
  return {
    target,
    image,
    pools,
    notes,
    account,
    groupId,
    label,
    labels,
    expiresAt,
    tags,
    userData,
    ltReq,
    ...(ec2Reads ? { ec2Reads } : {}),
  };
}

/**
 * Steps 2–4 of start, shared with watch: template (unless given), fleet, JIT registrations, the
 * SSM parameters, the wait until every runner is online, then prices and what the instances
 * reported. Records each resource the moment it exists; throws without rolling back (the caller
 * decides what to remove).
 */
export async function provisionRunners(
  cfg: StartConfig,
  deps: StartDeps,
  plan: LaunchPlan,
  o: ProvisionOptions,
): Promise<{ rows: RunnerRow[]; notes: string[] }> {
  const { aws, gh, signal } = deps;
  const now = deps.now ?? Date.now;
  const { target, pools, groupId, label, labels, tags } = plan;
  const fromPool = o.pooled ?? [];
  const coldCount = o.names.length;
  const fleetCfg: StartConfig = coldCount === cfg.count ? cfg : { ...cfg, count: coldCount };
  // 2. One launch template and one instant fleet (two only when on-demand must fill in),
  //    while GitHub issues the JIT configs: runner names need no instance id, and GitHub's
  //    spaced-out writes then overlap the launch instead of following it.
  // The cold machines' launch template first (the order a start without a pool has always had).
  let templateId = o.templateId;
  if (coldCount > 0 && templateId === undefined) {
    templateId = await createLaunchTemplate(aws, plan.ltReq, signal);
    o.record.add('launchTemplateIds', templateId);
  }
  const launchedAt = now();
  // A failed launch stops further registrations; the ones in flight finish and are recorded.
  const launchFailed = new AbortController();
  const jitsP = mapLimit(o.names, 8, async (name) => {
    const made = o.premade?.get(name);
    if (made) return made;
    signal?.throwIfAborted();
    launchFailed.signal.throwIfAborted();
    o.record.add('runnerNames', name);
    const jit = await createJitRunner(gh, target, name, labels, groupId, deps.log);
    o.record.add('runnerIds', jit.runner.id);
    return jit;
  });
  const retry: RetryOptions = { ...DEFAULT_RETRY, ...deps.retry };
  // A step stopped while the fleet request is unanswered cannot know what EC2 launched: post
  // then looks for those machines until EC2 lists them (teardown, "unanswered launch").
  if (coldCount > 0) o.record.add('launchingNames', ...o.names);
  const launchP: Promise<{ instances: LaunchedInstance[] }> =
    coldCount === 0
      ? Promise.resolve({ instances: [] })
      : launch(
          aws,
          fleetCfg,
          templateId as string,
          { ...tags, ...o.instanceTags },
          o.tokenFor,
          (xs: LaunchedInstance[]) => o.record.add('instanceIds', ...xs.map((x) => x.instanceId)),
          deps.log,
          signal,
          pools,
          retry,
        );
  launchP.then(
    () => coldCount > 0 && o.record.add('launchedNames', ...o.names),
    (e: unknown) => {
      if (launchAnswered(e)) o.record.add('launchedNames', ...o.names);
      launchFailed.abort(new Error('the launch failed'));
    },
  );
  // Both settle before either failure is thrown, so everything created is recorded for rollback.
  const [jitsR, launchR] = await Promise.allSettled([jitsP, launchP]);
  if (launchR.status === 'rejected') throw launchR.reason;
  if (jitsR.status === 'rejected') throw jitsR.reason;
  const cold = launchR.value.instances;
  const jits = jitsR.value;
  if (coldCount > 0)
    deps.log(
      `Fleet launched ${cold.length}: ${cold.map((i) => `${i.instanceId} ${i.instanceType} ${i.market}`).join(', ')}`,
    );
  const pacer = deps.pacer ?? new Pacer(tuning().ssmPutsPerSecond, 2);

  // 3. Each JIT config parked in SSM under its instance's own id: the one thing that needs it.
  //    (A pool machine's is there already: its claim.)
  const coldRows: RunnerRow[] = await mapLimit(cold, 8, async (inst, i) => {
    signal?.throwIfAborted();
    const jit = jits[i] as (typeof jits)[number];
    const name = jit.runner.name;
    const pname = parameterName(label, inst.instanceId);
    // Recorded before the call: a call whose answer is lost may still have created it.
    o.record.add('parameterNames', pname);
    await putSecret(aws, pname, jit.encodedJitConfig, jitTags(cfg, plan, inst.instanceId, name), signal, pacer);
    const availabilityZone =
      inst.availabilityZone || pools.find((p) => p.subnetId && p.subnetId === inst.subnetId)?.availabilityZone || '';
    return {
      name,
      id: jit.runner.id,
      instanceId: inst.instanceId,
      instanceType: inst.instanceType,
      availabilityZone,
      market: inst.market,
    } satisfies RunnerRow;
  });
  const rows: RunnerRow[] = [
    ...fromPool.map((c): RunnerRow => ({
      name: c.jit.runner.name,
      id: c.jit.runner.id,
      instanceId: c.instanceId,
      instanceType: c.instanceType,
      availabilityZone: c.availabilityZone,
      market: 'on-demand',
      fromPool: o.pool,
    })),
    ...coldRows,
  ];
  const resumedAt = new Map(fromPool.map((c) => [c.instanceId, c.resumedAt]));

  // The spot prices for the summary, asked while the machines boot (not after: start's tail).
  const pricesP = currentSpotPrices(
    aws,
    rows.filter((r) => r.market === 'spot'),
  );
  pricesP.catch(() => undefined);

  // 4. Wait for all of them: EC2 says when each is listening (or dead), GitHub confirms once.
  const w = {
    ...defaultWaitOptions(cfg.waitTimeoutMinutes * 60_000, launchedAt, now),
    ...(plan.ec2Reads ? { ec2Reads: plan.ec2Reads } : {}),
    ...deps.wait,
  };
  const waited = await waitForRunners(
    gh,
    aws,
    target,
    label,
    rows.map((r) => ({
      runnerId: r.id,
      runnerName: r.name,
      instanceId: r.instanceId,
      ...(resumedAt.has(r.instanceId) ? { resumedAt: resumedAt.get(r.instanceId) } : {}),
    })),
    deps.rate,
    {
      ...w,
      sleep: deps.sleep ?? sleep,
      log: deps.log,
      signal,
    },
  );

  const prices = await pricesP;
  for (const r of rows) if (r.market === 'spot') r.spotPrice = prices.get(`${r.instanceType}@${r.availabilityZone}`);
  // What the instances wrote about themselves, as the waiter's last look saw it: the
  // listener's version and the hardware (tagged before listening; asked again if missing).
  let written = new Map([...waited.instances].map(([id, i]) => [id, i.tags]));
  if (rows.some((r) => written.get(r.instanceId)?.[TAGS.runnerVersion] === undefined)) {
    written = new Map(
      (
        await describeByIds(
          aws,
          rows.map((r) => r.instanceId),
          signal,
        )
      ).map((i) => [i.instanceId, i.tags]),
    );
  }
  for (const r of rows) {
    r.runnerVersion = written.get(r.instanceId)?.[TAGS.runnerVersion];
    r.fingerprint = written.get(r.instanceId)?.[TAGS.fingerprint];
  }
  const notes = runnerVersionWarnings(plan.image.runnerVersion, rows);
  for (const n of notes) deps.log(n);
  return { rows, notes };
}

export async function start(cfg: StartConfig, deps: StartDeps): Promise<StartResult> {
  const { aws, gh, signal } = deps;
  // The pool's machines, listed while the checks run (read-only; the claim is the compare-and-set).
  const listedP = cfg.pool && !cfg.dryRun ? poolMachines(aws, cfg.pool, signal) : undefined;
  listedP?.catch(() => undefined);
  // A warm-pool start reads subnets and capacity pools only if the pool falls short: its machines
  // exist already, launched from the very settings its hash covers (fewer EC2 reads in a short start).
  const deferPools = Boolean(cfg.pool) && !cfg.dryRun;
  let plan = await planLaunch(cfg, deps, { deferPools });
  const { target, pools, notes, groupId, label, labels, tags, userData, ltReq } = plan;
  const tokenFor = (purpose: string) => clientToken(label, purpose);

  if (cfg.dryRun) {
    const plan = {
      launchTemplate: { ...ltReq, LaunchTemplateData: { ...ltReq.LaunchTemplateData, UserData: '(below, decoded)' } },
      fleet: fleetRequest(cfg, '<launch template id>', cfg.market, cfg.count, tokenFor(cfg.market), tags, pools),
      onDemandFallback:
        cfg.market === 'spot' && cfg.onDemandFallback
          ? fleetRequest(cfg, '<launch template id>', 'on-demand', cfg.count, tokenFor('on-demand'), tags, pools)
          : null,
      notes,
      runners: Array.from({ length: cfg.count }, (_, i) => ({
        name: runnerName(label, i),
        labels,
        runnerGroupId: groupId,
        parameter: parameterName(label, '<instance-id>'),
      })),
      tags,
      // user-data never holds a secret; the JIT config travels through SSM.
      userData,
    };
    return { label, labels, runners: [], dryRun: true, plan };
  }

  deps.state.setContext(label, cfg.region, cfg.scope);
  try {
    const names = Array.from({ length: cfg.count }, (_, i) => runnerName(label, i));
    // One pacer for the claims and the JIT parameters: both are PutParameter calls.
    const paced = { ...deps, pacer: deps.pacer ?? new Pacer(tuning().ssmPutsPerSecond, 2) };
    const { pooled, spare } =
      cfg.pool && listedP
        ? await takeFromPool(cfg, paced, plan, cfg.pool, listedP, names)
        : { pooled: [], spare: new Map<string, JitRunner>() };
    const taken = new Set(pooled.map((c) => c.jit.runner.name));
    if (deferPools && pooled.length < cfg.count) {
      const more = await resolvePools(cfg, aws, signal);
      for (const n of more.notes) deps.log(`Note: ${n}`);
      plan = { ...plan, pools: more.pools, notes: [...plan.notes, ...more.notes] };
    }
    const { rows, notes } = await provisionRunners(cfg, paced, plan, {
      names: names.filter((n) => !taken.has(n)),
      premade: spare,
      tokenFor,
      record: deps.state,
      pooled,
      pool: cfg.pool,
    });
    return { label, labels, runners: rows, dryRun: false, notes };
  } catch (e) {
    const why = signal?.aborted ? `cancelled (${errorMessage(signal.reason)})` : errorMessage(e);
    deps.log(`Start failed: ${why}. Rolling back everything it created.`);
    const report = await teardown(aws, gh, target, deps.state.resources, undefined, {
      ...DEFAULT_TERMINATE,
      ...deps.terminate,
    });
    const lines = describeRollback(report);
    for (const l of lines) deps.log(`Rollback: ${l}`);
    const err = new SpotRunnerError(`${why} — rolled back: ${lines.join('; ')}`);
    (err as { rollback?: TeardownReport }).rollback = report;
    throw err;
  }
}
