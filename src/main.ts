import * as core from '@actions/core';
import { readFileSync } from 'node:fs';
import { makeAwsClients, type AwsClients } from './aws/clients.js';
import { parseConfig, parseGitHubAuth, runContext, type Config, type WatchConfig } from './config.js';
import { InputError, errorMessage } from './errors.js';
import { connectGitHub, makeGitHub, type GitHub, type RateLimit } from './github/client.js';
import { reap, reapedOutput } from './modes/reap.js';
import { describeRollback, start } from './modes/start.js';
import { stop } from './modes/stop.js';
import { fillPool } from './modes/pool.js';
import { cancelRun, watch } from './modes/watch.js';
import { StateRecorder, loadResources, markMainRan } from './state.js';
import { poolSummary, reapSummary, rollbackSummary, startSummary, stopSummary, watchSummary } from './summary.js';
import { teardown } from './teardown.js';

function readEvent(): unknown {
  const p = process.env.GITHUB_EVENT_PATH;
  if (!p) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch {
    return undefined;
  }
}

export function loadConfig(): Config {
  return parseConfig((name) => core.getInput(name), process.env, runContext(process.env, readEvent()));
}

/** The main step. Signals (the runner's cancel) abort start, which then rolls back before exiting. */
export async function runMain(): Promise<void> {
  markMainRan();
  let cfg: Config;
  try {
    cfg = loadConfig();
  } catch (e) {
    core.setFailed(errorMessage(e));
    return;
  }
  core.setSecret(cfg.githubAuth.kind === 'token' ? cfg.githubAuth.token : cfg.githubAuth.privateKey);
  if (cfg.mode === 'watch' && cfg.cancelToken) core.setSecret(cfg.cancelToken);
  const log = (l: string) => core.info(l);
  const aws = makeAwsClients(cfg.region);
  const rate: RateLimit = {};
  let gh;
  try {
    gh = await connectGitHub(cfg.githubAuth, { scope: cfg.scope, owner: cfg.run.owner, repo: cfg.run.repo }, rate);
  } catch (e) {
    core.setFailed(errorMessage(e));
    return;
  }

  if (cfg.mode === 'reap') {
    try {
      const r = await reap(cfg, { aws, gh, log });
      core.setOutput('reaped', reapedOutput(r));
      await reapSummary(r);
      // What could be removed was; the failures are named so the next run or a person can follow up.
      if (r.problems.length > 0) core.setFailed(`reap could not do everything: ${r.problems.join('; ')}`);
    } catch (e) {
      core.setFailed(errorMessage(e));
    }
    return;
  }

  if (cfg.mode === 'stop') {
    try {
      const r = await stop(cfg, { aws, gh, log });
      core.setOutput('interrupted', String(r.interrupted));
      core.setOutput('cost', r.cost === undefined ? '' : r.cost.toFixed(4));
      for (const n of r.notes) core.warning(n);
      await stopSummary(r.rows, r.cost, r.notes, r.githubHostedCost, r.costNotes);
    } catch (e) {
      const partial = (e as { result?: { interrupted: boolean; cost?: number } }).result;
      if (partial) {
        core.setOutput('interrupted', String(partial.interrupted));
        core.setOutput('cost', partial.cost === undefined ? '' : partial.cost.toFixed(4));
      }
      core.setFailed(errorMessage(e));
    }
    return;
  }

  if (cfg.mode === 'watch') {
    await runWatch(cfg, aws, gh, rate);
    return;
  }
  if (cfg.mode === 'pool') {
    try {
      const r = await fillPool(cfg, { aws, state: new StateRecorder(), log, pollMs: 1000 });
      core.setOutput('pool-ready', JSON.stringify(r.ready));
      await poolSummary(r);
    } catch (e) {
      core.setFailed(errorMessage(e));
    }
    return;
  }

  const state = new StateRecorder();
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    core.warning(`Received ${sig}: cancelling start and removing what it created`);
    ac.abort(new Error(`received ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await start(cfg, { aws, gh, rate, state, log, signal: ac.signal });
    core.setOutput('label', r.label);
    core.setOutput('instance-ids', JSON.stringify(r.runners.map((x) => x.instanceId)));
    core.setOutput(
      'runners',
      JSON.stringify(
        r.runners.map(({ name, id, instanceId, instanceType, availabilityZone, market, fromPool }) => ({
          name,
          id,
          instanceId,
          instanceType,
          availabilityZone,
          market,
          ...(fromPool ? { pool: fromPool } : {}),
        })),
      ),
    );
    core.setOutput('from-pool', JSON.stringify(r.runners.filter((x) => x.fromPool).map((x) => x.instanceId)));
    if (r.dryRun) {
      core.info('Dry run: nothing was created. The plan:');
      core.info(JSON.stringify(r.plan, null, 2));
    } else {
      for (const n of r.notes ?? []) core.warning(n);
      await startSummary(r.label, r.runners, r.notes ?? []);
      core.info(`Started ${r.runners.length} runner(s) with label ${r.label}`);
    }
  } catch (e) {
    const rollback = (e as { rollback?: Parameters<typeof describeRollback>[0] }).rollback;
    if (rollback) await rollbackSummary(errorMessage(e), describeRollback(rollback));
    core.setFailed(e instanceof InputError ? e.message : errorMessage(e));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** mode watch: replaces machines lost before their job; when it gives up, fails and cancels the run. */
async function runWatch(cfg: WatchConfig, aws: AwsClients, gh: GitHub, rate: RateLimit): Promise<void> {
  const state = new StateRecorder();
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    core.warning(`Received ${sig}: stopping watch and removing a replacement it was starting`);
    ac.abort(new Error(`received ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await watch(cfg, {
      aws,
      gh,
      rate,
      state,
      log: (l) => core.info(l),
      debug: (l) => core.debug(l),
      signal: ac.signal,
    });
    core.setOutput(
      'replacements',
      JSON.stringify(
        r.replacements.map((x) => ({
          replaced: x.replaced,
          lastPhase: x.lastPhase,
          instanceId: x.row?.instanceId ?? '',
          name: x.row?.name ?? '',
          error: x.error ?? '',
        })),
      ),
    );
    // Summary and error first: cancelling the run also cancels this job.
    await watchSummary(r);
    if (r.failure) {
      core.setFailed(r.failure);
      // cancel-token (default: the job's GITHUB_TOKEN) first; if it may not, the runner credentials.
      const clients = cfg.cancelToken ? [makeGitHub(cfg.cancelToken), gh] : [gh];
      for (const [k, c] of clients.entries()) {
        try {
          core.info(await cancelRun(c, cfg.run));
          break;
        } catch (e) {
          if (k === clients.length - 1) core.error(errorMessage(e));
          else core.warning(`${errorMessage(e)} Trying the runner credentials (github-token or the App) instead.`);
        }
      }
    }
  } catch (e) {
    core.setFailed(errorMessage(e));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** How post makes its AWS clients; tests hand in the in-memory world. */
export interface PostClients {
  aws: (region: string) => AwsClients;
}

/** The post step runs only when the job failed or was cancelled: remove whatever start recorded. */
export async function runPost(make: PostClients = { aws: makeAwsClients }): Promise<void> {
  const res = loadResources();
  if (!res || !res.label) {
    core.info('spot-runner post: start created nothing; nothing to roll back');
    return;
  }
  let cfg: Config | undefined;
  try {
    cfg = loadConfig();
  } catch {
    // Inputs were valid in main; if they no longer parse, the recorded state still suffices.
  }
  if (cfg && cfg.mode !== 'start' && cfg.mode !== 'watch') return;
  const region = res.region ?? cfg?.region ?? process.env.AWS_REGION ?? '';
  if (!region) {
    core.warning(
      `spot-runner post: no region was recorded or given, so nothing could be removed. Resources tagged spot-runner:label=${res.label} may remain; reap mode will remove them.`,
    );
    return;
  }
  const aws = make.aws(region);
  const [owner = '', repo = ''] = (process.env.GITHUB_REPOSITORY ?? '').split('/');
  const target = { scope: res.scope ?? 'repo', owner, repo } as const;
  let gh;
  try {
    // The token main used may have expired (an App's lasts an hour): post mints its own.
    const auth = cfg?.githubAuth ?? parseGitHubAuth((n) => core.getInput(n));
    gh = auth ? await connectGitHub(auth, target) : undefined;
  } catch (e) {
    core.warning(
      `spot-runner post: cannot reach GitHub (${errorMessage(e)}); runners of ${res.label} stay registered until reap removes them`,
    );
  }
  try {
    // A watch's record holds only its replacements; the label's other machines are stop's.
    const report = await teardown(aws, gh, target, res, res.mode === 'watch' ? [] : undefined);
    for (const l of describeRollback(report)) core.info(`spot-runner post: ${l}`);
    for (const p of report.problems) core.warning(`spot-runner post: ${p}`);
  } catch (e) {
    // Post never fails the job over cleanup; it says loudly what may remain.
    core.warning(
      `spot-runner post: rollback failed: ${errorMessage(e)}. Resources tagged spot-runner:label=${res.label} may remain; reap mode will remove them.`,
    );
  }
}
