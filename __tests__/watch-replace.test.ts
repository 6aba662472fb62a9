// mode watch's replacement path in the unit world (src/modes/watch.ts): a machine lost before its
// runner took a job gets one replacement, launched with start's settings and recorded for post;
// with none left, watch gives up naming the machine. The clock is a fake one; the machines are
// the harness's (a parked JIT config boots its machine, which tags itself `listening`).
import { describe, expect, it } from '@jest/globals';
import type { WatchConfig } from '../src/config.js';
import { cancelRun, watch, type WatchDeps } from '../src/modes/watch.js';
import { TAGS } from '../src/tags.js';
import { BASE_START, config, rig, runStart, tick, type Rig } from '../test/fakes/harness.js';
import { offlineGitHub } from '../test/fakes/github.js';

offlineGitHub();

async function started(count: string) {
  const r = rig();
  const res = await runStart(r, { count });
  return { r, res };
}

function watchConfig(label: string, runners: unknown, more: Record<string, string> = {}): WatchConfig {
  return config({
    ...BASE_START,
    mode: 'watch',
    label,
    runners: JSON.stringify(runners),
    ...more,
  }) as WatchConfig;
}

/** Watch's deps on a fake clock; at each pause, every machine that is `listening` takes its job. */
function watchDeps(r: Rig): { deps: WatchDeps; pauses: () => number } {
  let now = Date.parse('2026-12-01T12:00:00Z');
  let pauses = 0;
  const deps: WatchDeps = {
    ...r.deps,
    pollMs: 5_000,
    now: () => now,
    sleep: async (ms) => {
      pauses++;
      now += ms;
      for (const i of r.world.instances.values())
        if (i.Tags.find((t) => t.Key === TAGS.phase)?.Value === 'listening')
          r.world.setPhase(i.InstanceId, 'job-started');
      await tick();
    },
  };
  return { deps, pauses: () => pauses };
}

describe('mode watch: replacing a lost machine', () => {
  it("replaces a machine reclaimed before its job with one launched under the runner's new name, tagged with it and recorded first", async () => {
    const { r, res } = await started('2');
    const [lost, kept] = res.runners;
    r.world.settleAll();
    r.world.setPhase(kept?.instanceId as string, 'job-started');
    r.world.reclaimSpot(lost?.instanceId as string);
    const before = new Set(r.world.instances.keys());
    const { deps } = watchDeps(r);
    const out = await watch(watchConfig(res.label, res.runners), deps);

    expect(out.failure).toBeUndefined();
    expect(out.replacements).toHaveLength(1);
    expect(out.replacements[0]?.replaced).toBe(lost?.instanceId);
    const name = `${res.label}-r1`;
    expect(out.replacements[0]?.row?.name).toBe(name);
    const fresh = [...r.world.instances.keys()].filter((id) => !before.has(id));
    expect(fresh).toEqual([out.replacements[0]?.row?.instanceId]);
    // The replacement carries its runner name from its launch, and the name was on record.
    const tags = Object.fromEntries(r.world.instances.get(fresh[0] as string)?.Tags.map((t) => [t.Key, t.Value]) ?? []);
    expect(tags[TAGS.runnerName]).toBe(name);
    expect(tags[TAGS.label]).toBe(res.label);
    expect(r.state.resources.mode).toBe('watch');
    expect(r.state.resources.runnerNames).toContain(name);
    expect(r.state.resources.instanceIds).toContain(fresh[0]);
    // The lost machine's runner and parameter are gone; the kept one's stay.
    expect(r.github.runners.has(lost?.id as number)).toBe(false);
    expect(r.github.runners.has(kept?.id as number)).toBe(true);
    expect(r.world.params.has(`/spot-runner/jit/${res.label}/${lost?.instanceId}`)).toBe(false);
    // One fleet of one, with start's template (watch creates none).
    expect(r.world.fleetsAccepted).toHaveLength(2);
    expect(r.world.count('CreateLaunchTemplate')).toBe(1);
  });

  it('with max-replacements 0, gives up naming the machine, and launches nothing', async () => {
    const { r, res } = await started('1');
    const [lost] = res.runners;
    r.world.settleAll();
    r.world.reclaimSpot(lost?.instanceId as string);
    const { deps } = watchDeps(r);
    const out = await watch(watchConfig(res.label, res.runners, { 'max-replacements': '0' }), deps);
    expect(out.replacements).toEqual([]);
    expect(out.failure).toMatch(
      new RegExp(
        `^The machine ${lost?.instanceId} \\(runner ${lost?.name}, last phase listening, state shutting-down\\) is gone before its runner took a job, and max-replacements is 0\\.`,
      ),
    );
    expect(r.world.fleetsAccepted).toHaveLength(1);
  });

  it('a machine whose runner GitHub lists busy took its job, even when the machine is gone: no replacement', async () => {
    const { r, res } = await started('1');
    const [only] = res.runners;
    r.world.settleAll();
    r.world.reclaimSpot(only?.instanceId as string);
    const runner = r.github.runners.get(only?.id as number);
    if (runner) runner.busy = true;
    const { deps } = watchDeps(r);
    const out = await watch(watchConfig(res.label, res.runners), deps);
    expect(out.failure).toBeUndefined();
    expect(out.replacements).toEqual([]);
    expect(out.machines.map((m) => m.status)).toEqual(['took-job']);
  });

  it('gives up at watch-timeout on its clock, naming the runners still waiting', async () => {
    const { r, res } = await started('1');
    const [only] = res.runners;
    r.world.settleAll();
    // Listening, never taking a job: the pause below must not promote it.
    const { deps, pauses } = watchDeps(r);
    const sleepOf = deps.sleep;
    const out = await watch(watchConfig(res.label, res.runners, { 'watch-timeout': '1' }), {
      ...deps,
      sleep: async (ms, s) => {
        r.world.setPhase(only?.instanceId as string, 'runner-started');
        await sleepOf?.(ms, s);
      },
    });
    expect(out.failure).toMatch(/^watch-timeout \(1 min\) passed and 1 runner\(s\) have not taken a job: machine i-/);
    // 60 s in 5 s polls: 12 pauses, and the 13th look is the first at the deadline.
    expect(pauses()).toBe(12);
    expect(out.polls).toBe(13);
  });
});

describe('mode watch: when a replacement cannot be had', () => {
  /** No room in any market until `room()` is called: every fleet answers with capacity errors only. */
  function noRoom(r: Rig) {
    const normal = r.world.fleet;
    let full = true;
    r.world.fleet = (req, call) => {
      const market = (req.TargetCapacitySpecification as { DefaultTargetCapacityType: string })
        .DefaultTargetCapacityType;
      return full ? { launch: [], errors: [{ code: 'InsufficientInstanceCapacity', market }] } : normal(req, call);
    };
    return { room: () => (full = false) };
  }

  it('a replacement that fails to launch is rolled back, its runner too, and tried again at the next look as replacement 2', async () => {
    const { r, res } = await started('1');
    const [lost] = res.runners;
    r.world.settleAll();
    r.world.reclaimSpot(lost?.instanceId as string);
    const { room } = noRoom(r);
    const { deps } = watchDeps(r);
    const logs: string[] = [];
    const before = new Set(r.world.instances.keys());
    const out = await watch(watchConfig(res.label, res.runners), {
      ...deps,
      log: (l) => {
        logs.push(l);
        if (l.startsWith('Replacement 1 failed')) room();
      },
    });

    expect(out.failure).toBeUndefined();
    expect(out.replacements.map((x) => [x.replaced, x.row?.name, x.error === undefined])).toEqual([
      [lost?.instanceId, undefined, false],
      [lost?.instanceId, `${res.label}-r2`, true],
    ]);
    expect(out.replacements[0]?.error).toMatch(
      /^Launched 0 of 1 even with on-demand fallback: .*InsufficientInstanceCapacity/,
    );
    expect(out.machines.find((m) => m.runnerName === `${res.label}-r1`)).toMatchObject({
      instanceId: '(replacement 1 failed)',
      runnerId: -1,
      lastPhase: 'provisioning-failed',
      status: 'lost',
      replaces: lost?.instanceId,
    });
    // The failed replacement's runner was registered while the fleet was asked, and rolled back.
    const names = [...r.github.runners.values()].map((x) => x.name);
    expect(names).not.toContain(`${res.label}-r1`);
    expect(names).toContain(`${res.label}-r2`);
    // The lost runner once (the retry does not delete it again), then -r1.
    // The fake issues runner ids from 100: start's runner, then -r1, then -r2.
    expect(lost?.id).toBe(100);
    expect(r.github.requests.filter((q) => q.method === 'DELETE').map((q) => q.path.split('/').pop())).toEqual([
      '100',
      '101',
    ]);
    expect(logs.filter((l) => l.startsWith('Rollback problem'))).toEqual([]);
    // The refusal was an answer: the rollback looked for nothing more, and only -r2's machine is new.
    expect(r.state.resources.launchedNames).toEqual([`${res.label}-1`, `${res.label}-r1`, `${res.label}-r2`]);
    const fresh = [...r.world.instances.keys()].filter((id) => !before.has(id));
    expect(fresh).toEqual([out.replacements[1]?.row?.instanceId]);
  });

  it('a failed replacement uses up one of max-replacements: with max-replacements 1, watch then gives up', async () => {
    const { r, res } = await started('1');
    const [lost] = res.runners;
    r.world.settleAll();
    r.world.reclaimSpot(lost?.instanceId as string);
    noRoom(r);
    const { deps } = watchDeps(r);
    const out = await watch(watchConfig(res.label, res.runners, { 'max-replacements': '1' }), deps);
    expect(out.replacements).toHaveLength(1);
    expect(out.failure).toMatch(
      new RegExp(
        `^The machine ${lost?.instanceId} \\(runner ${lost?.name}, last phase listening, state shutting-down\\) is gone before its runner took a job, and all 1 replacement\\(s\\) are used\\.`,
      ),
    );
    expect(r.world.live()).toEqual([]);
  });

  it('a runner GitHub has removed (a JIT runner goes once it took its job) took its job: no replacement', async () => {
    const { r, res } = await started('1');
    const [only] = res.runners;
    r.world.settleAll();
    r.world.reclaimSpot(only?.instanceId as string);
    r.github.runners.delete(only?.id as number);
    const { deps } = watchDeps(r);
    const out = await watch(watchConfig(res.label, res.runners), deps);
    expect(out.failure).toBeUndefined();
    expect(out.replacements).toEqual([]);
    expect(out.machines.map((m) => m.status)).toEqual(['took-job']);
    expect(r.world.fleetsAccepted).toHaveLength(1);
  });

  it('cancelled while a replacement launches: rolls back what the replacement made and throws', async () => {
    const { r, res } = await started('1');
    const [lost] = res.runners;
    r.world.settleAll();
    r.world.reclaimSpot(lost?.instanceId as string);
    const ac = new AbortController();
    const normal = r.world.fleet;
    r.world.fleet = (req, call) => {
      ac.abort(new Error('received SIGTERM'));
      return normal(req, call);
    };
    const before = new Set(r.world.instances.keys());
    const { deps } = watchDeps(r);
    await expect(watch(watchConfig(res.label, res.runners), { ...deps, signal: ac.signal })).rejects.toThrow(
      'received SIGTERM',
    );
    const fresh = [...r.world.instances.keys()].filter((id) => !before.has(id));
    expect(fresh).toHaveLength(1);
    expect(r.world.live().map((i) => i.InstanceId)).not.toContain(fresh[0]);
    expect([...r.github.runners.values()].map((x) => x.name)).not.toContain(`${res.label}-r1`);
    expect([...r.world.params.keys()].filter((p) => p.includes(fresh[0] as string))).toEqual([]);
  });
});

describe('cancelRun', () => {
  it('names the permission to grant when GitHub answers 404 (a token that may not see the run)', async () => {
    const { r } = await started('1');
    await expect(cancelRun(r.deps.gh, { owner: 'acme', repo: 'widgets', runId: '31337' })).rejects.toThrow(
      "cancelling workflow run 31337: GitHub answered 404. Fix: give the watch job 'permissions: actions: write'",
    );
  });

  it('cancels an in-progress run, and says so', async () => {
    const { r } = await started('1');
    r.github.runs.set(31338, { status: 'in_progress' });
    expect(await cancelRun(r.deps.gh, { owner: 'acme', repo: 'widgets', runId: '31338' })).toBe(
      'cancelled workflow run 31338',
    );
    expect(r.github.runs.get(31338)).toEqual({ status: 'completed', conclusion: 'cancelled' });
  });
});
