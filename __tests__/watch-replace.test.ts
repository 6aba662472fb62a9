// mode watch's replacement path in the unit world (src/modes/watch.ts): a machine lost before its
// runner took a job gets one replacement, launched with start's settings and recorded for post;
// with none left, watch gives up naming the machine. The clock is a fake one; the machines are
// the harness's (a parked JIT config boots its machine, which tags itself `listening`).
import { describe, expect, it } from '@jest/globals';
import type { WatchConfig } from '../src/config.js';
import { cancelRun, watch, type WatchDeps } from '../src/modes/watch.js';
import { clientToken } from '../src/label.js';
import { TAGS } from '../src/tags.js';
import { BASE_START, ENV, config, rig, runStart, tick, type Rig } from '../test/fakes/harness.js';
import { offlineGitHub } from '../test/fakes/github.js';

offlineGitHub();

async function started(count: string) {
  const r = rig();
  const res = await runStart(r, { count });
  return { r, res };
}

/** One machine started, listed and listening, then reclaimed by EC2 before its runner took a job. */
async function reclaimedOne() {
  const { r, res } = await started('1');
  const [lost] = res.runners;
  r.world.settleAll();
  r.world.reclaimSpot(lost?.instanceId as string);
  return { r, res, lost };
}

function watchConfig(
  label: string,
  runners: unknown,
  more: Record<string, string> = {},
  env: Record<string, string> = ENV,
): WatchConfig {
  return config({ ...BASE_START, mode: 'watch', label, runners: JSON.stringify(runners), ...more }, env) as WatchConfig;
}

/**
 * Watch's deps on a fake clock; at each pause, every machine still up that is `listening` takes its
 * job (the fake world leaves launched machines `pending`; one going away takes none).
 */
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
        if (
          ['pending', 'running'].includes(i.State.Name) &&
          i.Tags.find((t) => t.Key === TAGS.phase)?.Value === 'listening'
        )
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
    const { r, res, lost } = await reclaimedOne();
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
    const { r, res, lost: only } = await reclaimedOne();
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
    const { r, res, lost } = await reclaimedOne();
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
    const { r, res, lost } = await reclaimedOne();
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
    const { r, res, lost: only } = await reclaimedOne();
    r.github.runners.delete(only?.id as number);
    const { deps } = watchDeps(r);
    const out = await watch(watchConfig(res.label, res.runners), deps);
    expect(out.failure).toBeUndefined();
    expect(out.replacements).toEqual([]);
    expect(out.machines.map((m) => m.status)).toEqual(['took-job']);
    expect(r.world.fleetsAccepted).toHaveLength(1);
  });

  it('cancelled while a replacement launches: rolls back what the replacement made and throws', async () => {
    const { r, res } = await reclaimedOne();
    const ac = new AbortController();
    const normal = r.world.fleet;
    r.world.fleet = (req, call) => {
      ac.abort(new Error('received SIGTERM'));
      return normal(req, call);
    };
    const before = new Set(r.world.instances.keys());
    const { deps } = watchDeps(r);
    const logs: string[] = [];
    await expect(
      watch(watchConfig(res.label, res.runners), { ...deps, signal: ac.signal, log: (l) => logs.push(l) }),
    ).rejects.toThrow('received SIGTERM');
    expect(logs).toContain('Replacement 1 failed: cancelled (received SIGTERM). Removing what it created.');
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

describe('mode watch: what it says and does, exactly', () => {
  /** The run's label and machine ids as placeholders, so a log can be pinned literally. */
  const generic = (lines: string[], label: string, ids: string[]) =>
    lines.map((l) =>
      ids
        .reduce((s, id, k) => s.replaceAll(id, `<i${k}>`), l.replaceAll(label, '<label>'))
        // The waiter's own clock (not watch's): how long after the launch a runner listened.
        .replace(/[0-9.]+ s after the launch/, '<n> s after the launch'),
    );

  it('says each change of a machine once, the replacement and the end; it does not terminate a machine EC2 is already ending', async () => {
    const { r, res, lost } = await reclaimedOne();
    const { deps } = watchDeps(r);
    const logs: string[] = [];
    const out = await watch(watchConfig(res.label, res.runners), { ...deps, log: (l) => logs.push(l) });
    const fresh = out.replacements[0]?.row?.instanceId as string;
    expect(generic(logs, res.label, [lost?.instanceId as string, fresh])).toEqual([
      'Validated: image ami-0123456789abcdef0 (x86_64), types c7i.large, c6i.large, 1 × spot with on-demand fallback, 2 pool(s), spot price-capacity-optimized',
      '<i0> (runner <label>-1): phase listening, state shutting-down (look 1)',
      'Replacing machine <i0> (runner <label>-1, last phase listening, state shutting-down): replacement 1 of at most 2',
      'Fleet launched 1: <i1> c7i.large spot',
      'Runner <label>-r1 is listening (<i1>, <n> s after the launch)',
      'Runner <label>-r1 is online (<i1>)',
      'Replacement 1: runner <label>-r1 is online on <i1> (c7i.large, spot)',
      '<i1> (runner <label>-r1): phase job-started, state pending (look 2)',
      'Runner <label>-r1 took its job (<i1> is job-started)',
      'Every runner of <label> took its job (1 replacement(s))',
    ]);
    expect(out.polls).toBe(2);
    expect(r.world.count('TerminateInstances')).toBe(0);
  });

  it('logs a machine only when its phase or its state changed, and "none" for a machine with no phase yet', async () => {
    const { r, res } = await started('1');
    const [only] = res.runners;
    const id = only?.instanceId as string;
    r.world.settleAll();
    const inst = r.world.instances.get(id);
    if (!inst) throw new Error('no instance');
    inst.Tags = inst.Tags.filter((t) => t.Key !== TAGS.phase);
    const { deps } = watchDeps(r);
    // Pause k changes what look k + 1 sees: nothing, the state, the phase, the phase.
    const script: (() => void)[] = [
      () => {},
      () => void (inst.State = { Name: 'running' }),
      () => r.world.setPhase(id, 'runner-started'),
      () => r.world.setPhase(id, 'job-started'),
    ];
    let k = 0;
    const logs: string[] = [];
    const out = await watch(watchConfig(res.label, res.runners), {
      ...deps,
      log: (l) => logs.push(l),
      sleep: async () => script[k++]?.(),
    });
    expect(generic(logs.slice(1), res.label, [id])).toEqual([
      '<i0> (runner <label>-1): phase none, state pending (look 1)',
      '<i0> (runner <label>-1): phase none, state running (look 3)',
      '<i0> (runner <label>-1): phase runner-started, state running (look 4)',
      '<i0> (runner <label>-1): phase job-started, state running (look 5)',
      'Runner <label>-1 took its job (<i0> is job-started)',
      'Every runner of <label> took its job',
    ]);
    expect(out.polls).toBe(5);
  });

  it('terminates at once a machine still running under a spot notice, and replaces it', async () => {
    const { r, res } = await started('1');
    const [lost] = res.runners;
    const id = lost?.instanceId as string;
    r.world.settleAll();
    const inst = r.world.instances.get(id);
    if (!inst) throw new Error('no instance');
    inst.State = { Name: 'running' };
    r.world.setPhase(id, 'interrupted');
    const { deps } = watchDeps(r);
    const out = await watch(watchConfig(res.label, res.runners), deps);
    expect(out.replacements.map((x) => [x.replaced, x.lastPhase, x.lastState])).toEqual([
      [id, 'interrupted', 'running'],
    ]);
    expect(r.world.calls.filter((c) => c.command === 'TerminateInstances').map((c) => c.input.InstanceIds)).toEqual([
      [id],
    ]);
    expect(['shutting-down', 'terminated']).toContain(r.world.instances.get(id)?.State.Name);
  });

  it('a runner that turns busy while watch replaces it took its job after all: nothing is launched', async () => {
    const { r, res, lost } = await reclaimedOne();
    const { deps } = watchDeps(r);
    const logs: string[] = [];
    const out = await watch(watchConfig(res.label, res.runners), {
      ...deps,
      log: (l) => {
        logs.push(l);
        const runner = r.github.runners.get(lost?.id as number);
        if (l.startsWith('Replacing') && runner) runner.busy = true;
      },
    });
    expect(out.failure).toBeUndefined();
    expect(out.replacements).toEqual([]);
    expect(out.machines.map((m) => m.status)).toEqual(['took-job']);
    expect(generic(logs.slice(-2), res.label, [])).toEqual([
      'Runner <label>-1 turned out busy: it took its job; no replacement needed',
      'Every runner of <label> took its job',
    ]);
    expect(r.world.fleetsAccepted).toHaveLength(1);
  });

  it("a replacement's ClientTokens carry the run attempt, so a re-run's replacement is its own fleet", async () => {
    const { r, res } = await reclaimedOne();
    const { deps } = watchDeps(r);
    await watch(watchConfig(res.label, res.runners, {}, { ...ENV, GITHUB_RUN_ATTEMPT: '3' }), deps);
    const token = r.world.fleetsAccepted[1]?.input.ClientToken;
    expect(token).toBe(clientToken(res.label, 'spot-r1-a3'));
    expect(token).not.toBe(clientToken(res.label, 'spot-r1-a1'));
  });

  it("with start's template not listed, the first replacement makes one and the next replacement reuses it; a replacement is watched like the rest", async () => {
    const { r, res, lost } = await reclaimedOne();
    r.world.templates.clear();
    const { deps } = watchDeps(r);
    const out = await watch(watchConfig(res.label, res.runners), {
      ...deps,
      log: (l) => {
        // Replacement 1 is reclaimed as soon as it is online, before it takes its job.
        const m = /^Replacement 1: runner \S+ is online on (i-[0-9a-f]+)/.exec(l);
        if (m) r.world.reclaimSpot(m[1] as string);
      },
    });
    expect(out.failure).toBeUndefined();
    const [first, second] = out.replacements;
    expect([first?.replaced, second?.replaced]).toEqual([lost?.instanceId, first?.row?.instanceId]);
    expect(second?.row?.name).toBe(`${res.label}-r2`);
    expect(r.world.count('CreateLaunchTemplate')).toBe(2);
    const templates = r.world.fleetsAccepted.map(
      (f) =>
        (f.input.LaunchTemplateConfigs as { LaunchTemplateSpecification: { LaunchTemplateId: string } }[])[0]
          ?.LaunchTemplateSpecification.LaunchTemplateId,
    );
    expect(templates).toHaveLength(3);
    expect(templates[2]).toBe(templates[1]);
    expect(templates[1]).not.toBe(templates[0]);
    expect(out.machines.map((m) => [m.replaces, m.status])).toEqual([
      [undefined, 'lost'],
      [lost?.instanceId, 'lost'],
      [first?.row?.instanceId, 'took-job'],
    ]);
  });

  it('a machine EC2 has never listed is not lost, and watch-timeout names only the runners still waiting', async () => {
    const { r, res } = await started('1');
    r.world.settleAll();
    const ghost = { name: 'ghost-1', id: 999, instanceId: 'i-0fffffffffffffff0' };
    const { deps } = watchDeps(r);
    const out = await watch(watchConfig(res.label, [...res.runners, ghost], { 'watch-timeout': '1' }), deps);
    expect(out.failure).toBe(
      'watch-timeout (1 min) passed and 1 runner(s) have not taken a job: machine i-0fffffffffffffff0 (runner ghost-1, last phase none written, state not listed). Cancelling the run so nothing sits queued; raise watch-timeout if jobs wait that long on purpose.',
    );
    expect(out.machines.map((m) => m.status)).toEqual(['took-job', 'waiting']);
    expect(out.replacements).toEqual([]);
  });

  it('a machine listed once and then no longer is lost, and is replaced', async () => {
    const { r, res } = await started('1');
    const [lost] = res.runners;
    const id = lost?.instanceId as string;
    r.world.settleAll();
    const { deps } = watchDeps(r);
    let pauses = 0;
    const out = await watch(watchConfig(res.label, res.runners), {
      ...deps,
      sleep: async (ms, s) => {
        // Gone from every listing after the first look (as long after its end), still listening.
        if (pauses++ === 0) r.world.hideNew(id, 1_000);
        else await deps.sleep?.(ms, s);
      },
    });
    expect(out.failure).toBeUndefined();
    expect(out.replacements.map((x) => [x.replaced, x.lastState, x.row?.name])).toEqual([
      [id, 'pending', `${res.label}-r1`],
    ]);
  });
});
