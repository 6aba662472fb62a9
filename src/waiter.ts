import type { AwsClients } from './aws/clients.js';
import { describeByIds, describeByTag, type InstanceInfo } from './aws/instances.js';
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
  /** How often EC2 is asked (fixed rate, from the launch); one DescribeInstances by label covers every machine. */
  intervalMs: number;
  /**
   * Faster, for at most fastWindowMs after a machine says `runner-started` (or after a pool
   * machine's StartInstances): its listener is then seconds from `listening`, which is when
   * start's tail begins.
   */
  fastIntervalMs: number;
  fastWindowMs: number;
  /**
   * Once every machine says `listening` but GitHub does not show a runner online yet (GitHub
   * is eventually consistent), the first pause before asking GitHub again; it doubles up to 8×.
   */
  githubRetryMs: number;
  /**
   * A machine whose runner started this long ago without ever saying `listening` (a listener
   * that prints something else): GitHub is then asked directly, at most this often.
   */
  githubFallbackMs: number;
  /** When the fleet answered; until notFoundGraceMs after it, an instance EC2 does not list yet is pending, not gone. */
  launchedAt: number;
  notFoundGraceMs: number;
  /**
   * EC2 reads a second a start may make, its validation reads included (Infinity: no budget).
   * A start's validation reads come in a burst, so its first looks may wait a little.
   */
  ec2ReadsPerSecond: number;
  /** The start's EC2 reads so far (validation included) and when it began; absent: no budget. */
  ec2Reads?: { count: () => number; since: number };
  now: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  log: (line: string) => void;
  signal?: AbortSignal;
}

export interface WaitResult {
  /** GitHub polls (each one list call, or one GET for a single runner). */
  polls: number;
  /** DescribeInstances polls by label. */
  ec2Polls: number;
  /** What EC2 last said about each machine (its tags: runner version, fingerprint). */
  instances: Map<string, InstanceInfo>;
}

/** EC2 every second from the launch; GitHub only once every machine says it is listening. */
export const defaultWaitOptions = (
  timeoutMs: number,
  launchedAt: number,
  now = Date.now,
): Omit<WaitOptions, 'sleep' | 'log'> => ({
  timeoutMs,
  intervalMs: 1000,
  // 1/0.7 s stays under the read rate even in the wait alone.
  fastIntervalMs: 700,
  fastWindowMs: 10_000,
  githubRetryMs: 1000,
  githubFallbackMs: 60_000,
  launchedAt,
  notFoundGraceMs: 60_000,
  // Below the 1.5 a second of the API economy target: the confirm and the summary's reads come after the last look.
  ec2ReadsPerSecond: 1.4,
  now,
});

const GONE_STATES = ['shutting-down', 'terminated', 'stopping', 'stopped'];

function describeInstance(i: InstanceInfo | undefined, id: string): string {
  if (!i) return `${id}: not listed by EC2 yet`;
  const phase = i.tags[TAGS.phase];
  return `${id} (${i.instanceType}, ${i.state}${phase ? `, phase ${phase}` : ''}${i.stateReason ? `, reason: ${i.stateReason}` : ''})`;
}

/**
 * Waits until every runner is online (or has already done its job and left). It watches EC2,
 * not GitHub: each machine tags `spot-runner:phase=listening` once its listener has a session,
 * and a dead or failed machine ends the wait at once with what it said. Only when every machine
 * is listening does one GitHub call confirm the runners are online.
 */
export async function waitForRunners(
  gh: GitHub,
  aws: AwsClients,
  target: Target,
  label: string,
  pending: Pending[],
  rate: RateLimit,
  o: WaitOptions,
): Promise<WaitResult> {
  const start = o.now();
  const waiting = new Map(pending.map((p) => [p.instanceId, p]));
  const listening = new Set<string>();
  const runnerStartedAt = new Map<string, number>();
  const seen = new Map<string, InstanceInfo>();
  let polls = 0;
  let ec2Polls = 0;
  let nextGitHub = 0;
  let githubDelay = o.githubRetryMs;
  let lastFallback = start;
  let pausedFor = 0;

  const look = async () => {
    ec2Polls++;
    const byId = new Map(
      (await describeByTag(aws, TAGS.label, [label], undefined, o.signal)).map((i) => [i.instanceId, i]),
    );
    // A filtered Describe may not list a new instance for a while (eventual consistency):
    // past the grace, ask by id before calling it gone.
    const missing = [...waiting.keys()].filter((id) => !byId.has(id));
    if (missing.length > 0 && o.now() - o.launchedAt >= o.notFoundGraceMs) {
      for (const i of await describeByIds(aws, missing, o.signal)) byId.set(i.instanceId, i);
    }
    for (const [id, i] of byId) seen.set(id, i);
    return byId;
  };

  const judge = (byId: Map<string, InstanceInfo>) => {
    for (const p of waiting.values()) {
      const i = byId.get(p.instanceId);
      if (!i && o.now() - o.launchedAt < o.notFoundGraceMs) continue;
      const phase = i?.tags[TAGS.phase] ?? '';
      // A resumed pool machine may still be listed as stopped for a moment after StartInstances.
      const resuming =
        p.resumedAt !== undefined &&
        o.now() - p.resumedAt < o.notFoundGraceMs &&
        (i?.state === 'stopped' || i?.state === 'stopping');
      const gone = !i || (!resuming && GONE_STATES.includes(i.state));
      if (phase === 'job-started' || (gone && phase === 'shutting-down')) {
        // A quick job can start and end between two polls: the instance saw it, so it counts.
        o.log(`Runner ${p.runnerName} already took its job (${p.instanceId} is ${phase})`);
        waiting.delete(p.instanceId);
        continue;
      }
      if (phase.startsWith('failed') || gone) {
        throw new SpotRunnerError(
          `Runner ${p.runnerName} will not come online: instance ${describeInstance(i, p.instanceId)}`,
        );
      }
      // Sticky: a later `interrupted` does not undo it (the machine's death will end the wait).
      if (phase === 'listening' && !listening.has(p.instanceId)) {
        listening.add(p.instanceId);
        o.log(
          `Runner ${p.runnerName} is listening (${p.instanceId}, ${Math.round((o.now() - o.launchedAt) / 100) / 10} s after the launch)`,
        );
      }
      if (phase === 'runner-started' && !runnerStartedAt.has(p.instanceId)) runnerStartedAt.set(p.instanceId, o.now());
    }
  };

  /** One GitHub call for the given runners: one GET for a single runner, else one (paged) list. */
  const confirm = async (ps: Pending[]) => {
    polls++;
    let found: (Runner | undefined)[];
    if (ps.length === 1) found = [await getRunner(gh, target, (ps[0] as Pending).runnerId)];
    else {
      const all = new Map((await listRunners(gh, target)).map((r) => [r.id, r]));
      found = ps.map((p) => all.get(p.runnerId));
    }
    const vanished: Pending[] = [];
    ps.forEach((p, k) => {
      const r = found[k];
      if (r?.status === 'online') {
        o.log(`Runner ${r.name} is online (${p.instanceId})`);
        if (!listening.has(p.instanceId))
          o.log(`Note: ${p.instanceId} never tagged phase listening; GitHub shows its runner online`);
        waiting.delete(p.instanceId);
      } else if (r === undefined) vanished.push(p);
    });
    if (vanished.length === 0) return;
    // A runner GitHub no longer knows either finished a job already or was removed: the
    // instance's phase tag tells which.
    const infos = new Map(
      (
        await describeByIds(
          aws,
          vanished.map((p) => p.instanceId),
          o.signal,
        )
      ).map((i) => [i.instanceId, i]),
    );
    for (const p of vanished) {
      const i = infos.get(p.instanceId);
      if (i) seen.set(p.instanceId, i);
      const phase = i?.tags[TAGS.phase] ?? '';
      if (['job-started', 'shutting-down'].includes(phase)) {
        o.log(`Runner ${p.runnerName} already took its job and left`);
        waiting.delete(p.instanceId);
      } else {
        throw new SpotRunnerError(
          `Runner ${p.runnerName} (id ${p.runnerId}) was removed from GitHub before it came online; instance ${describeInstance(i, p.instanceId)}`,
        );
      }
    }
  };

  /** The primary rate limit: when the budget is nearly spent, GitHub waits for the reset (EC2 does not). */
  const githubAllowed = (now: number) => {
    if (rate.remaining !== undefined && rate.remaining < waiting.size + 5 && rate.resetEpochSeconds) {
      const resetAt = rate.resetEpochSeconds * 1000;
      if (resetAt > now) {
        if (pausedFor !== resetAt) {
          pausedFor = resetAt;
          o.log(
            `GitHub rate limit nearly spent (${rate.remaining} left); pausing GitHub calls ${Math.ceil((resetAt - now) / 1000)} s until it resets`,
          );
        }
        return false;
      }
    }
    return now >= nextGitHub;
  };

  /** The next look only once it keeps the start's EC2 reads within their rate (its validation reads come in a burst). */
  const withinReadBudget = async () => {
    if (!o.ec2Reads || !Number.isFinite(o.ec2ReadsPerSecond)) return;
    const at = o.ec2Reads.since + ((o.ec2Reads.count() + 1) / o.ec2ReadsPerSecond) * 1000;
    const wait = Math.min(at - o.now(), o.timeoutMs - (o.now() - start) + 1);
    if (wait > 0) await o.sleep(wait, o.signal);
  };

  for (;;) {
    o.signal?.throwIfAborted();
    await withinReadBudget();
    const pollAt = o.now();
    if (pollAt - start > o.timeoutMs) {
      const byId = await look();
      const where = [...waiting.values()].map((p) =>
        describeInstance(byId.get(p.instanceId) ?? seen.get(p.instanceId), p.instanceId),
      );
      throw new SpotRunnerError(
        `Timed out after ${Math.round(o.timeoutMs / 1000)} s waiting for ${waiting.size} runner(s) to come online: ${where.join('; ')}. Raise wait-timeout if the image is slow to boot, or read the instance console output.`,
      );
    }
    judge(await look());
    if (waiting.size === 0) return { polls, ec2Polls, instances: seen };
    const now = o.now();
    const allListening = [...waiting.keys()].every((id) => listening.has(id));
    const stuck = [...waiting.keys()].some(
      (id) => !listening.has(id) && now - (runnerStartedAt.get(id) ?? Infinity) >= o.githubFallbackMs,
    );
    if (allListening && githubAllowed(now)) {
      await confirm([...waiting.values()]);
      if (waiting.size === 0) return { polls, ec2Polls, instances: seen };
      // Listening, but not online at GitHub yet: ask again, sparingly.
      nextGitHub = o.now() + githubDelay;
      githubDelay = Math.min(githubDelay * 2, o.githubRetryMs * 8);
    } else if (stuck && now - lastFallback >= o.githubFallbackMs && githubAllowed(now)) {
      lastFallback = now;
      await confirm([...waiting.values()]);
      if (waiting.size === 0) return { polls, ec2Polls, instances: seen };
    }
    const t = o.now();
    // A resumed pool machine is seconds from listening from its StartInstances on: fast from then.
    const soon = [...waiting.values()].some(
      (p) =>
        !listening.has(p.instanceId) &&
        t - Math.max(runnerStartedAt.get(p.instanceId) ?? -Infinity, p.resumedAt ?? -Infinity) < o.fastWindowMs,
    );
    const interval = soon ? o.fastIntervalMs : o.intervalMs;
    await o.sleep(Math.max(0, Math.min(interval - (t - pollAt), o.timeoutMs - (t - start) + 1)), o.signal);
  }
}
