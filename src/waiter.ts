import type { AwsClients } from './aws/clients.js';
import { describeByIds, type InstanceInfo } from './aws/instances.js';
import { SpotRunnerError } from './errors.js';
import type { GitHub, RateLimit } from './github/client.js';
import { getRunner, listRunners, type Runner, type Target } from './github/runners.js';
import { TAGS } from './tags.js';

export interface Pending {
  runnerId: number;
  runnerName: string;
  instanceId: string;
  /** Warm pool: when StartInstances was called; until notFoundGraceMs after it, stopped/stopping means "not started yet", not gone. */
  resumedAt?: number;
}

export interface WaitOptions {
  timeoutMs: number;
  /** Before this moment no runner can be online yet, so polls are sparse. */
  firstExpectedOnlineAt: number;
  /** Poll interval once runners may be online; ≤ 2 s keeps start's tail short. */
  intervalMs: number;
  /** How often to look at the instances themselves. */
  instanceCheckMs: number;
  /** Above this many pending runners one paginated list is cheaper than one GET each. */
  listThreshold: number;
  /** When the fleet answered; until notFoundGraceMs after it, an instance EC2 does not list yet is pending, not gone. */
  launchedAt: number;
  notFoundGraceMs: number;
  now: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** Polls stay sparse until SPOT_RUNNER_EXPECTED_BOOT_SECONDS (default 20) after the launch. */
export const defaultWaitOptions = (timeoutMs: number, launchedAt: number, now = Date.now): Omit<WaitOptions, 'sleep' | 'log'> => ({
  timeoutMs,
  firstExpectedOnlineAt: launchedAt + Number(process.env.SPOT_RUNNER_EXPECTED_BOOT_SECONDS ?? 20) * 1000,
  intervalMs: 1000,
  instanceCheckMs: 5000,
  listThreshold: 3,
  launchedAt,
  notFoundGraceMs: 60_000,
  now,
});

function describeInstance(i: InstanceInfo | undefined, id: string): string {
  if (!i) return `${id}: not listed by EC2 yet`;
  const phase = i.tags[TAGS.phase];
  return `${id} (${i.instanceType}, ${i.state}${phase ? `, phase ${phase}` : ''}${i.stateReason ? `, reason: ${i.stateReason}` : ''})`;
}

/**
 * Waits until every runner is online (or has already done its job and left), watching the
 * instances as well, so a dead or failed instance ends the wait at once with what it said.
 */
export async function waitForRunners(gh: GitHub, aws: AwsClients, target: Target, pending: Pending[], rate: RateLimit, o: WaitOptions): Promise<{ polls: number }> {
  const start = o.now();
  const waiting = new Map(pending.map((p) => [p.runnerId, p]));
  let lastInstanceCheck = 0;
  let polls = 0;
  const instanceIds = pending.map((p) => p.instanceId);

  const checkInstances = async (final: boolean) => {
    const infos = await describeByIds(aws, instanceIds, o.signal);
    const byId = new Map(infos.map((i) => [i.instanceId, i]));
    for (const p of waiting.values()) {
      const i = byId.get(p.instanceId);
      const phase = i?.tags[TAGS.phase] ?? '';
      // EC2 is eventually consistent: a new instance may be missing from Describe for a while.
      if (!i && o.now() - o.launchedAt < o.notFoundGraceMs) continue;
      // A resumed pool machine may still be listed as stopped for a moment after StartInstances.
      const resuming = p.resumedAt !== undefined && o.now() - p.resumedAt < o.notFoundGraceMs && (i?.state === 'stopped' || i?.state === 'stopping');
      const gone = !i || (!resuming && ['shutting-down', 'terminated', 'stopping', 'stopped'].includes(i.state));
      if (phase === 'job-started' || (gone && phase === 'shutting-down')) {
        // A quick job can start and end between two polls: the instance saw it, so it counts.
        o.log(`Runner ${p.runnerName} already took its job (${p.instanceId} is ${phase})`);
        waiting.delete(p.runnerId);
        continue;
      }
      if (phase.startsWith('failed') || gone) {
        throw new SpotRunnerError(`Runner ${p.runnerName} will not come online: instance ${describeInstance(i, p.instanceId)}`);
      }
    }
    if (final) return [...waiting.values()].map((p) => describeInstance(byId.get(p.instanceId), p.instanceId));
    return [];
  };

  for (;;) {
    o.signal?.throwIfAborted();
    const now = o.now();
    if (now - start > o.timeoutMs) {
      const seen = await checkInstances(true);
      throw new SpotRunnerError(`Timed out after ${Math.round(o.timeoutMs / 1000)} s waiting for ${waiting.size} runner(s) to come online: ${seen.join('; ')}. Raise wait-timeout if the image is slow to boot, or read the instance console output.`);
    }
    if (now - lastInstanceCheck >= o.instanceCheckMs) {
      lastInstanceCheck = now;
      await checkInstances(false);
    }
    if (now >= o.firstExpectedOnlineAt) {
      polls++;
      let seen: (Runner | undefined)[];
      const ids = [...waiting.keys()];
      if (ids.length > o.listThreshold) {
        const all = new Map((await listRunners(gh, target)).map((r) => [r.id, r]));
        seen = ids.map((id) => all.get(id));
      } else {
        seen = await Promise.all(ids.map((id) => getRunner(gh, target, id)));
      }
      ids.forEach((id, k) => {
        const r = seen[k];
        if (r?.status === 'online') {
          o.log(`Runner ${r.name} is online (${waiting.get(id)?.instanceId})`);
          waiting.delete(id);
        }
      });
      if (waiting.size === 0) return { polls };
      // A runner GitHub no longer knows either finished a job already or was removed: the
      // instance's phase tag tells which.
      const vanished = ids.filter((id, k) => seen[k] === undefined && waiting.has(id));
      if (vanished.length > 0) {
        const infos = new Map((await describeByIds(aws, vanished.map((id) => waiting.get(id)?.instanceId ?? ''), o.signal)).map((i) => [i.instanceId, i]));
        for (const id of vanished) {
          const p = waiting.get(id);
          if (!p) continue;
          const phase = infos.get(p.instanceId)?.tags[TAGS.phase] ?? '';
          if (['job-started', 'shutting-down'].includes(phase)) {
            o.log(`Runner ${p.runnerName} already took its job and left`);
            waiting.delete(id);
          } else {
            throw new SpotRunnerError(`Runner ${p.runnerName} (id ${id}) was removed from GitHub before it came online; instance ${describeInstance(infos.get(p.instanceId), p.instanceId)}`);
          }
        }
        if (waiting.size === 0) return { polls };
      }
    }
    let delay = now < o.firstExpectedOnlineAt ? Math.min(o.instanceCheckMs, o.firstExpectedOnlineAt - now) : o.intervalMs;
    // Honour the primary rate limit: when the budget is nearly spent, wait for the reset.
    if (rate.remaining !== undefined && rate.remaining < waiting.size + 5 && rate.resetEpochSeconds) {
      const untilReset = rate.resetEpochSeconds * 1000 - Date.now();
      if (untilReset > 0) {
        o.log(`GitHub rate limit nearly spent (${rate.remaining} left); pausing ${Math.ceil(untilReset / 1000)} s until it resets`);
        delay = Math.max(delay, untilReset);
      }
    }
    await o.sleep(Math.max(0, Math.min(delay, o.timeoutMs - (o.now() - start) + 1)), o.signal);
  }
}
