import { DEFAULT_TERMINATE, describeByIds, terminate, type InstanceInfo } from '../aws/instances.js';
import { deleteParameters } from '../aws/params.js';
import { describeTemplatesByTag } from '../aws/templates.js';
import { tuning, type WatchConfig } from '../config.js';
import { SpotRunnerError, errorMessage, httpStatus } from '../errors.js';
import type { GitHub } from '../github/client.js';
import { deleteRunner, getRunner } from '../github/runners.js';
import { clientToken } from '../label.js';
import { emptyResources, type Resources } from '../state.js';
import type { RunnerRow } from '../summary.js';
import { INTERRUPTED_PHASE_PREFIX, TAGS, parameterName } from '../tags.js';
import { teardown } from '../teardown.js';
import { planLaunch, provisionRunners, sleep, type Recorder, type StartDeps } from './start.js';

// mode watch: runs next to the work job and keeps a queued job from waiting for a machine that
// is gone. A machine lost before its runner took a job gets a replacement (start's own code,
// same label and settings, a new JIT config); when none is left, the run is cancelled.

export interface WatchDeps extends StartDeps {
  /** Between looks at the machines; default SPOT_RUNNER_WATCH_POLL_SECONDS (5 s). */
  pollMs?: number;
  /** One line per look (core.debug: shown with step debug logging). */
  debug?: (line: string) => void;
}

export interface Watched {
  instanceId: string;
  runnerName: string;
  runnerId: number;
  lastPhase: string;
  lastState: string;
  /** took-job: its runner took a job; lost: gone before that (replaced or not). */
  status: 'waiting' | 'took-job' | 'lost';
  /** The instance it replaces, for a replacement. */
  replaces?: string;
}

export interface Replacement {
  /** The machine that was lost, its runner and what it said last. */
  replaced: string;
  runnerName: string;
  lastPhase: string;
  lastState: string;
  /** The machine that took its place, once online; or why provisioning it failed. */
  row?: RunnerRow;
  error?: string;
}

export interface WatchResult {
  label: string;
  machines: Watched[];
  replacements: Replacement[];
  /** Looks at the machines (one DescribeInstances each). */
  polls: number;
  /** Set when watch gave up: the run is to be cancelled. */
  failure?: string;
}

const GONE_STATES = ['shutting-down', 'terminated', 'stopping', 'stopped'];

/** The phase without the spot-notice prefix: `interrupted:job-started` still took its job. */
function basePhase(phase: string): string {
  return phase.startsWith(INTERRUPTED_PHASE_PREFIX) ? phase.slice(INTERRUPTED_PHASE_PREFIX.length) : phase;
}

/** Phases the bootstrap writes only once the job has started (job-done → shutting-down; a failed job). */
export function tookJobByPhase(phase: string): boolean {
  const p = basePhase(phase);
  return p === 'job-started' || p === 'shutting-down' || p.startsWith('failed:job-failed');
}

/** Gone, failed, or under a spot notice: this machine will not take a job. */
export function lostByInstance(i: InstanceInfo | undefined): boolean {
  if (!i) return false; // not listed (eventual consistency, or long gone): the GitHub check decides below
  const phase = i.tags[TAGS.phase] ?? '';
  return (
    GONE_STATES.includes(i.state) ||
    phase.startsWith('failed:') ||
    phase === 'interrupted' ||
    phase.startsWith(INTERRUPTED_PHASE_PREFIX)
  );
}

function describe(m: Watched): string {
  return `machine ${m.instanceId} (runner ${m.runnerName}, last phase ${m.lastPhase || 'none written'}, state ${m.lastState || 'not listed'})`;
}

export async function watch(cfg: WatchConfig, deps: WatchDeps): Promise<WatchResult> {
  const { aws, gh, signal } = deps;
  const now = deps.now ?? Date.now;
  const pause = deps.sleep ?? sleep;
  const pollMs = deps.pollMs ?? tuning().watchPollSeconds * 1000;
  const deadline = now() + cfg.watchTimeoutMinutes * 60_000;
  const label = cfg.label;

  // The same plan start made (image, labels, user-data), read-only, for the same label.
  const plan = await planLaunch(cfg.start, { ...deps, label });
  const { target } = plan;
  deps.state.setContext(label, cfg.region, cfg.scope, 'watch');
  let templateId = (await describeTemplatesByTag(aws, TAGS.label, [label]))[0]?.id;

  const machines: Watched[] = cfg.runners.map((r) => ({
    instanceId: r.instanceId,
    runnerName: r.name,
    runnerId: r.id,
    lastPhase: '',
    lastState: '',
    status: 'waiting',
  }));
  const replacements: Replacement[] = [];
  const result: WatchResult = { label, machines, replacements, polls: 0 };
  const attempt = cfg.run.runAttempt.replace(/[^0-9]/g, '') || '1';
  // Machines whose loss still needs a replacement (one failed to provision).
  const pending: Watched[] = [];

  /** GitHub's word on a machine the instance calls lost: a busy runner, or one GitHub removed (a JIT runner goes once it took its job), did take it. */
  const tookJobByGitHub = async (m: Watched): Promise<boolean> => {
    const r = await getRunner(gh, target, m.runnerId);
    return r === undefined || r.busy;
  };

  const replace = async (m: Watched): Promise<void> => {
    const k = replacements.length + 1;
    const rep: Replacement = {
      replaced: m.instanceId,
      runnerName: m.runnerName,
      lastPhase: m.lastPhase,
      lastState: m.lastState,
    };
    replacements.push(rep);
    deps.log(`Replacing ${describe(m)}: replacement ${k} of at most ${cfg.maxReplacements}`);
    // The lost machine's runner and parameter go first (once: a retry after a failed
    // replacement finds them gone); a machine under a spot notice is terminated now.
    if (m.status !== 'lost') {
      if (!GONE_STATES.includes(m.lastState) && m.lastState !== '')
        await terminate(aws, [m.instanceId], { ...DEFAULT_TERMINATE, ...deps.terminate });
      if ((await deleteRunner(gh, target, m.runnerId)) === 'busy') {
        // It took the job between our looks after all: nothing to replace.
        deps.log(`Runner ${m.runnerName} turned out busy: it took its job; no replacement needed`);
        replacements.pop();
        m.status = 'took-job';
        return;
      }
      await deleteParameters(aws, [parameterName(label, m.instanceId)]);
      m.status = 'lost';
    }

    const mine: Resources = emptyResources();
    const record: Recorder = {
      add: (key, ...items) => {
        const list = mine[key] as unknown[];
        for (const it of items) if (!list.includes(it)) list.push(it);
        deps.state.add(key, ...items);
        if (key === 'launchTemplateIds') templateId = items[0] as string;
      },
    };
    const name = `${label}-r${k}`;
    try {
      const { rows } = await provisionRunners(cfg.start, deps, plan, {
        names: [name],
        instanceTags: { [TAGS.runnerName]: name },
        templateId,
        // Start's tokens would return start's own fleet; the attempt keeps a re-run's apart too.
        tokenFor: (purpose) => clientToken(label, `${purpose}-r${k}-a${attempt}`),
        record,
      });
      const row = rows[0] as RunnerRow;
      rep.row = row;
      machines.push({
        instanceId: row.instanceId,
        runnerName: row.name,
        runnerId: row.id,
        lastPhase: '',
        lastState: '',
        status: 'waiting',
        replaces: m.instanceId,
      });
      deps.log(
        `Replacement ${k}: runner ${row.name} is online on ${row.instanceId} (${row.instanceType}, ${row.market})`,
      );
    } catch (e) {
      rep.error = signal?.aborted ? `cancelled (${errorMessage(signal.reason)})` : errorMessage(e);
      deps.log(`Replacement ${k} failed: ${rep.error}. Removing what it created.`);
      // Only what this replacement created: the label's other machines may be running jobs.
      const report = await teardown(aws, gh, target, mine, []);
      for (const p of report.problems) deps.log(`Rollback problem: ${p}`);
      if (signal?.aborted) throw e;
      // The loss still stands: the next look tries again while replacements are left.
      machines.push({
        instanceId: `(replacement ${k} failed)`,
        runnerName: name,
        runnerId: -1,
        lastPhase: 'provisioning-failed',
        lastState: '',
        status: 'lost',
        replaces: m.instanceId,
      });
      pending.push(m);
    }
  };

  for (;;) {
    signal?.throwIfAborted();
    const waiting = machines.filter((m) => m.status === 'waiting');
    const lost: Watched[] = pending.splice(0);
    if (waiting.length > 0) {
      result.polls++;
      deps.debug?.(`watch poll ${result.polls}: ${waiting.length} machine(s) waiting for their job`);
      const infos = new Map(
        (
          await describeByIds(
            aws,
            waiting.map((m) => m.instanceId),
            signal,
          )
        ).map((i) => [i.instanceId, i]),
      );
      for (const m of waiting) {
        const i = infos.get(m.instanceId);
        if (i) {
          const phase = i.tags[TAGS.phase] ?? m.lastPhase;
          if (phase !== m.lastPhase || i.state !== m.lastState)
            deps.log(
              `${m.instanceId} (runner ${m.runnerName}): phase ${phase || 'none'}, state ${i.state} (look ${result.polls})`,
            );
          m.lastPhase = phase;
          m.lastState = i.state;
        }
        if (tookJobByPhase(m.lastPhase)) {
          deps.log(`Runner ${m.runnerName} took its job (${m.instanceId} is ${m.lastPhase})`);
          m.status = 'took-job';
        } else if (lostByInstance(i) || (!i && m.lastState !== '')) {
          if (await tookJobByGitHub(m)) {
            deps.log(
              `Runner ${m.runnerName} took its job (GitHub lists it busy or has removed it; ${m.instanceId} is ${m.lastState}, phase ${m.lastPhase || 'none'})`,
            );
            m.status = 'took-job';
          } else lost.push(m);
        }
      }
    }
    for (const m of lost) {
      if (replacements.length >= cfg.maxReplacements) {
        result.failure = `The ${describe(m)} is gone before its runner took a job, and ${cfg.maxReplacements === 0 ? 'max-replacements is 0' : `all ${cfg.maxReplacements} replacement(s) are used`}. Cancelling the run so no job waits for a runner that will not come.`;
        return result;
      }
      await replace(m);
    }
    if (machines.every((m) => m.status !== 'waiting') && pending.length === 0) {
      deps.log(
        `Every runner of ${label} took its job${replacements.length ? ` (${replacements.length} replacement(s))` : ''}`,
      );
      return result;
    }
    if (now() >= deadline) {
      const still = machines.filter((m) => m.status === 'waiting');
      result.failure = `watch-timeout (${cfg.watchTimeoutMinutes} min) passed and ${still.length} runner(s) have not taken a job: ${still.map(describe).join('; ')}. Cancelling the run so nothing sits queued; raise watch-timeout if jobs wait that long on purpose.`;
      return result;
    }
    await pause(Math.max(0, Math.min(pollMs, deadline - now())), signal);
  }
}

/**
 * POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel: 202 Accepted; GitHub then cancels the
 * run's jobs (queued ones at once). 409 when the run is already completed.
 */
export async function cancelRun(gh: GitHub, run: { owner: string; repo: string; runId: string }): Promise<string> {
  try {
    await gh.request('POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel', {
      owner: run.owner,
      repo: run.repo,
      run_id: Number(run.runId),
    });
    return `cancelled workflow run ${run.runId}`;
  } catch (e) {
    const s = httpStatus(e);
    if (s === 409) return `workflow run ${run.runId} is already completed`;
    if (s === 403 || s === 404) {
      throw new SpotRunnerError(
        `cancelling workflow run ${run.runId}: GitHub answered ${s}. Fix: give the watch job 'permissions: actions: write' (for the default cancel-token, the job's GITHUB_TOKEN), or a cancel-token or runner credentials that may write Actions.`,
      );
    }
    throw e;
  }
}
