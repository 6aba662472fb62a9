// mode pool: fills a named warm pool. Each new machine boots once, runs the pre-runner script,
// and stops itself at the checkpoint just before it would read a JIT config (user-data/bootstrap.sh
// "4b"). Machines built from other settings (a new image, other types, another bootstrap) are
// terminated, never reused. No runner is registered and no JIT config exists for a pool machine.
import type { AwsClients } from '../aws/clients.js';
import {
  DEFAULT_RETRY,
  createLaunchTemplate,
  launch,
  launchTemplateRequest,
  type LaunchedInstance,
  type RetryOptions,
} from '../aws/fleet.js';
import { resolveLaunchInputs } from '../aws/image.js';
import {
  DEFAULT_TERMINATE,
  describeByIds,
  terminate,
  type InstanceInfo,
  type TerminateOptions,
} from '../aws/instances.js';
import { deleteTemplate } from '../aws/templates.js';
import { deleteParameters } from '../aws/params.js';
import type { PoolConfig, StartConfig } from '../config.js';
import { SpotRunnerError, errorMessage } from '../errors.js';
import { clientToken, makeLabel } from '../label.js';
import { claim, claimOwner, poolMachineState, poolMachines, poolSettings } from '../pool.js';
import type { StateRecorder } from '../state.js';
import { TAGS, poolClaimName, runTags } from '../tags.js';
import { teardown } from '../teardown.js';
import { sleep as defaultSleep } from './start.js';

export interface FillDeps {
  aws: AwsClients;
  state: StateRecorder;
  log: (line: string) => void;
  signal?: AbortSignal;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Poll interval while the new machines boot to their checkpoint. */
  pollMs?: number;
  label?: string;
  terminate?: Partial<TerminateOptions>;
  retry?: Partial<RetryOptions>;
}

export interface FillResult {
  pool: string;
  hash: string;
  /** Machines stopped at the checkpoint and ready to be claimed, after this fill. */
  ready: string[];
  launched: string[];
  /** Launched by this fill but never reached the checkpoint: terminated, with why. */
  failed: { instanceId: string; why: string }[];
  /** Built from other settings: terminated. */
  stale: string[];
}

/** Fills the pool up to `size` ready machines; waits until the new ones have stopped at the checkpoint. */
export async function fillPool(cfg: PoolConfig, deps: FillDeps): Promise<FillResult> {
  const { aws, signal } = deps;
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? defaultSleep;
  const startCfg: StartConfig = { ...cfg, mode: 'start', pool: cfg.pool };
  const { image, pools } = await resolveLaunchInputs(startCfg, aws, signal);
  const settings = poolSettings(cfg, image, cfg.pool);
  const label = deps.label ?? makeLabel(cfg.run);
  const t: TerminateOptions = { ...DEFAULT_TERMINATE, ...deps.terminate };

  // 1. What the pool holds. Stale machines go, but only after winning their claim: a start may be taking one right now.
  const listed = await poolMachines(aws, cfg.pool, signal);
  const stale: string[] = [];
  const owner = claimOwner(label);
  for (const i of cfg.dryRun
    ? []
    : listed.filter((x) => poolMachineState(x, settings.hash) === 'stale' && x.state === 'stopped')) {
    if (
      (await claim(
        aws,
        poolClaimName(cfg.pool, i.instanceId),
        owner,
        { [TAGS.managed]: 'true', [TAGS.label]: label, [TAGS.instanceId]: i.instanceId },
        { signal },
      )) === 'won'
    )
      stale.push(i.instanceId);
  }
  if (stale.length > 0) {
    await terminate(aws, stale, t);
    // Safe once it is terminating: StartInstances and ModifyInstanceAttribute now fail for anyone.
    await deleteParameters(
      aws,
      stale.map((id) => poolClaimName(cfg.pool, id)),
    ).catch((e: unknown) => deps.log(`Pool ${cfg.pool}: could not delete claims: ${errorMessage(e)} (reap will)`));
    deps.log(
      `Pool ${cfg.pool}: terminated ${stale.length} machine(s) built from other settings: ${stale.join(', ')} (their claims go with them: reap removes claims of gone machines)`,
    );
  }
  const healthy = listed.filter((x) => ['ready', 'filling'].includes(poolMachineState(x, settings.hash)));
  const need = cfg.size - healthy.length;
  deps.log(
    `Pool ${cfg.pool} (settings ${settings.hash}): ${healthy.length} healthy of size ${cfg.size}; launching ${Math.max(0, need)}`,
  );
  if (need <= 0 || cfg.dryRun)
    return {
      pool: cfg.pool,
      hash: settings.hash,
      ready: healthy.filter((x) => x.state === 'stopped').map((x) => x.instanceId),
      launched: [],
      failed: [],
      stale,
    };

  // 2. Launch the shortfall: on-demand, stopping (not terminating) when the guest powers off.
  const expiresAt = new Date(now() + cfg.poolTtlMinutes * 60_000).toISOString();
  const tags: Record<string, string> = {
    ...cfg.tags,
    Name: `${label}-pool-${cfg.pool}`,
    ...runTags(cfg, label, expiresAt),
    [TAGS.pool]: cfg.pool,
    [TAGS.poolHash]: settings.hash,
  };
  const ltReq = launchTemplateRequest(startCfg, image, label, settings.userData, tags, clientToken(label, 'lt'));
  if (ltReq.LaunchTemplateData) ltReq.LaunchTemplateData.InstanceInitiatedShutdownBehavior = 'stop';
  deps.state.setContext(label, cfg.region, cfg.scope);
  let launched: LaunchedInstance[] = [];
  let templateId: string | undefined;
  try {
    templateId = await createLaunchTemplate(aws, ltReq, signal);
    deps.state.add('launchTemplateIds', templateId);
    ({ instances: launched } = await launch(
      aws,
      { ...startCfg, count: need, market: 'on-demand', onDemandFallback: false },
      templateId,
      tags,
      (p) => clientToken(label, p),
      (xs) => deps.state.add('instanceIds', ...xs.map((x) => x.instanceId)),
      deps.log,
      signal,
      pools,
      { ...DEFAULT_RETRY, ...deps.retry },
    ));
  } catch (e) {
    const report = await teardown(
      aws,
      undefined,
      { scope: cfg.scope, owner: cfg.run.owner, repo: cfg.run.repo },
      deps.state.resources,
      undefined,
      t,
    );
    throw new SpotRunnerError(
      `filling pool ${cfg.pool} failed: ${errorMessage(e)}; rolled back ${report.terminated.length} instance(s)`,
    );
  }
  const ids = launched.map((l) => l.instanceId);
  deps.log(`Pool ${cfg.pool}: launched ${ids.join(', ')}; waiting for each to stop at its checkpoint`);

  // 3. Wait for each to reach `stopped` with phase `pooled`; anything else is terminated.
  const deadline = now() + cfg.waitTimeoutMinutes * 60_000;
  const ready: string[] = [];
  const failed: { instanceId: string; why: string }[] = [];
  let pending = new Set(ids);
  while (pending.size > 0) {
    signal?.throwIfAborted();
    const seen = new Map((await describeByIds(aws, [...pending], signal)).map((i) => [i.instanceId, i]));
    for (const id of [...pending]) {
      const i: InstanceInfo | undefined = seen.get(id);
      if (!i) continue; // not listed yet (eventual consistency)
      const phase = i.tags[TAGS.phase] ?? '';
      if (i.state === 'stopped' && phase === 'pooled') {
        ready.push(id);
        pending.delete(id);
      } else if (
        i.state === 'stopped' ||
        i.state === 'terminated' ||
        i.state === 'shutting-down' ||
        phase.startsWith('failed')
      ) {
        failed.push({ instanceId: id, why: `${i.state}${phase ? `, phase ${phase}` : ''}` });
        pending.delete(id);
      }
    }
    if (pending.size === 0) break;
    if (now() > deadline) {
      for (const id of pending)
        failed.push({
          instanceId: id,
          why: `did not stop at its checkpoint within wait-timeout (${cfg.waitTimeoutMinutes} min)`,
        });
      pending = new Set();
      break;
    }
    await sleep(deps.pollMs ?? 2000, signal);
  }
  if (failed.length > 0) {
    await terminate(
      aws,
      failed.map((f) => f.instanceId),
      t,
    );
    for (const f of failed)
      deps.log(`Pool ${cfg.pool}: ${f.instanceId} never reached the checkpoint (${f.why}); terminated`);
  }
  // The template is not needed once the machines exist (StartInstances needs none).
  if (templateId)
    await deleteTemplate(aws, templateId).catch((e: unknown) =>
      deps.log(`Pool ${cfg.pool}: could not delete launch template ${templateId}: ${errorMessage(e)} (reap will)`),
    );
  const allReady = [...healthy.filter((x) => x.state === 'stopped').map((x) => x.instanceId), ...ready];
  deps.log(
    `Pool ${cfg.pool}: ${allReady.length} ready (${ready.length} new)${failed.length ? `, ${failed.length} failed` : ''}`,
  );
  if (ready.length === 0 && failed.length > 0)
    throw new SpotRunnerError(
      `filling pool ${cfg.pool}: none of ${ids.length} new machine(s) reached the checkpoint: ${failed.map((f) => `${f.instanceId} ${f.why}`).join('; ')}. Read the instance console output.`,
    );
  return { pool: cfg.pool, hash: settings.hash, ready: allReady, launched: ids, failed, stale };
}
