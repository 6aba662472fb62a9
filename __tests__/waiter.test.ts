// The waiter's vanished-runner paths (issue 12): GitHub no longer knowing a runner means "it took
// its job and left" ONLY when its machine's phase says so; otherwise the runner was removed and
// start must fail. Polls are counted, no wall clock is asserted.
import { describe, expect, it, jest } from '@jest/globals';
import { makeGitHub } from '../src/github/client.js';
import { defaultWaitOptions, waitForRunners, type WaitOptions } from '../src/waiter.js';
import { NockGitHub, offlineGitHub } from '../test/fakes/github.js';
import { FakeWorld } from '../test/fakes/world.js';

offlineGitHub();
const T = { scope: 'repo' as const, owner: 'acme', repo: 'widgets' };
const IID = 'i-0123456789abcdef0';

function setup(phase: string | undefined, state = 'running', instanceCheckMs = 3_600_000) {
  process.env.SPOT_RUNNER_GITHUB_RETRY_BASE_MS = '1';
  const world = new FakeWorld();
  world.instances.set(IID, { InstanceId: IID, InstanceType: 'c7i.large', State: { Name: state }, Placement: { AvailabilityZone: 'us-east-1a' }, LaunchTime: new Date(), Tags: phase ? [{ Key: 'spot-runner:phase', Value: phase }] : [] });
  const github = new NockGitHub();
  // Runner 7 is not registered: GitHub answers 404, as for an ephemeral runner that already left.
  const logs: string[] = [];
  let t = 0;
  const o: WaitOptions = {
    timeoutMs: 60_000,
    firstExpectedOnlineAt: 0,
    intervalMs: 1000,
    // By default the periodic instance check never comes round: only the vanished path looks.
    instanceCheckMs,
    listThreshold: 3,
    launchedAt: 0,
    notFoundGraceMs: 60_000,
    now: () => t,
    sleep: async (ms) => {
      t += ms;
    },
    log: (l) => logs.push(l),
  };
  return { world, github, logs, o, gh: makeGitHub('ghs_testtoken') };
}

const pending = [{ runnerId: 7, runnerName: 'spot-runner-1-1-aaaaaa-00000001-1', instanceId: IID }];

describe('waitForRunners: a runner GitHub no longer knows', () => {
  it('is a failure when its machine never said it took a job (phase runner-started)', async () => {
    const { world, github, o, gh } = setup('runner-started');
    await expect(waitForRunners(gh, world.clients(), T, pending, {}, o)).rejects.toThrow(/Runner spot-runner-1-1-aaaaaa-00000001-1 \(id 7\) was removed from GitHub before it came online; instance i-0123456789abcdef0 \(c7i.large, running, phase runner-started\)/);
    expect(github.requests.filter((q) => q.method === 'GET')).toHaveLength(1);
  });
  it('is a failure when its machine has no phase yet (still booting)', async () => {
    const { world, o, gh } = setup(undefined);
    await expect(waitForRunners(gh, world.clients(), T, pending, {}, o)).rejects.toThrow(/was removed from GitHub before it came online/);
  });
  it('counts as done when its machine says job-started: it took its job and left between two polls', async () => {
    const { world, logs, o, gh } = setup('job-started');
    const clients = world.clients();
    await expect(waitForRunners(gh, clients, T, pending, {}, o)).resolves.toEqual({ polls: 1 });
    expect(logs).toContain('Runner spot-runner-1-1-aaaaaa-00000001-1 already took its job and left');
  });
  it('counts as done when its machine was already shutting down after the job (instance check)', async () => {
    const { world, github, logs, o, gh } = setup('shutting-down', 'terminated', 0);
    await expect(waitForRunners(gh, world.clients(), T, pending, {}, o)).resolves.toEqual({ polls: 1 });
    expect(github.requests).toEqual([]);
    expect(logs.join('\n')).toMatch(/already took its job \(i-0123456789abcdef0 is shutting-down\)/);
  });
});

// The rest of the waiter's decisions (found by mutation testing, docs/testing.md): when it polls,
// what it asks GitHub, when an instance ends the wait, and what it says. Time is the test's own
// clock: `t` moves only when the waiter sleeps, so every expected moment is a literal.
interface Machine {
  id: string;
  state?: string;
  phase?: string;
  reason?: string;
}

function scene(machines: Machine[], over: Partial<WaitOptions> = {}) {
  process.env.SPOT_RUNNER_GITHUB_RETRY_BASE_MS = '1';
  const world = new FakeWorld();
  for (const m of machines) {
    world.instances.set(m.id, {
      InstanceId: m.id,
      InstanceType: 'c7i.large',
      State: { Name: m.state ?? 'running' },
      ...(m.reason ? { StateReason: { Code: 'Server.SpotInstanceTermination', Message: m.reason } } : {}),
      Placement: { AvailabilityZone: 'us-east-1a' },
      LaunchTime: new Date(),
      Tags: m.phase ? [{ Key: 'spot-runner:phase', Value: m.phase }] : [],
    });
  }
  const github = new NockGitHub();
  const logs: string[] = [];
  const sleeps: number[] = [];
  const clock = { t: 0 };
  /** Called after each sleep with the new time: the test's way to change the world mid-wait. */
  const after: { fn: (t: number) => void } = { fn: () => {} };
  const o: WaitOptions = {
    timeoutMs: 600_000,
    firstExpectedOnlineAt: 0,
    intervalMs: 1000,
    instanceCheckMs: 3_600_000,
    listThreshold: 3,
    launchedAt: 0,
    notFoundGraceMs: 60_000,
    now: () => clock.t,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock.t += ms;
      after.fn(clock.t);
    },
    log: (l) => logs.push(l),
    ...over,
  };
  const runner = (id: number, status: 'online' | 'offline') => github.runners.set(id, { id, name: `spot-runner-1-1-aaaaaa-00000001-${id}`, status, busy: false, labels: [] });
  const describes = () => world.count('DescribeInstances');
  const gets = () => github.requests.filter((q) => q.method === 'GET').map((q) => q.path);
  return { world, github, logs, sleeps, clock, after, o, runner, describes, gets, gh: makeGitHub('ghs_testtoken') };
}

const IID2 = 'i-0123456789abcdef1';
const one = (id = 7, instanceId = IID) => [{ runnerId: id, runnerName: `spot-runner-1-1-aaaaaa-00000001-${id}`, instanceId }];

describe('defaultWaitOptions', () => {
  it('polls sparsely for the expected boot time (20 s unless SPOT_RUNNER_EXPECTED_BOOT_SECONDS), then every second', () => {
    const now = () => 5;
    const saved = process.env.SPOT_RUNNER_EXPECTED_BOOT_SECONDS;
    try {
      delete process.env.SPOT_RUNNER_EXPECTED_BOOT_SECONDS;
      expect(defaultWaitOptions(300_000, 1_000, now)).toEqual({ timeoutMs: 300_000, firstExpectedOnlineAt: 21_000, intervalMs: 1000, instanceCheckMs: 5000, listThreshold: 3, launchedAt: 1_000, notFoundGraceMs: 60_000, now });
      process.env.SPOT_RUNNER_EXPECTED_BOOT_SECONDS = '7';
      expect(defaultWaitOptions(300_000, 1_000, now).firstExpectedOnlineAt).toBe(8_000);
      expect(defaultWaitOptions(1, 0).now).toBe(Date.now);
    } finally {
      if (saved === undefined) delete process.env.SPOT_RUNNER_EXPECTED_BOOT_SECONDS;
      else process.env.SPOT_RUNNER_EXPECTED_BOOT_SECONDS = saved;
    }
  });
});

describe('waitForRunners: polling', () => {
  it('asks GitHub nothing before the first expected online moment, looks at the instances every instanceCheckMs, and sleeps only up to that moment', async () => {
    const s = scene([{ id: IID, phase: 'booting' }], { firstExpectedOnlineAt: 12_000, instanceCheckMs: 5_000 });
    s.runner(7, 'online');
    await expect(waitForRunners(s.gh, s.world.clients(), T, one(), {}, s.o)).resolves.toEqual({ polls: 1 });
    expect(s.sleeps).toEqual([5_000, 5_000, 2_000]);
    expect(s.clock.t).toBe(12_000);
    expect(s.describes()).toBe(2); // at 5 s and 10 s; at 12 s the last look is only 2 s old
    expect(s.gets()).toEqual(['/repos/acme/widgets/actions/runners/7']);
    expect(s.logs).toEqual([`Runner spot-runner-1-1-aaaaaa-00000001-7 is online (${IID})`]);
  });

  it('polls every intervalMs once runners may be online, and counts the polls', async () => {
    const s = scene([{ id: IID, phase: 'runner-started' }]);
    s.runner(7, 'offline');
    s.after.fn = (t) => {
      if (t === 3_000) s.runner(7, 'online');
    };
    await expect(waitForRunners(s.gh, s.world.clients(), T, one(), {}, s.o)).resolves.toEqual({ polls: 4 });
    expect(s.sleeps).toEqual([1000, 1000, 1000]);
    expect(s.gets()).toHaveLength(4);
    expect(s.describes()).toBe(0);
  });

  it('asks for each runner by id up to listThreshold pending runners', async () => {
    const s = scene([{ id: IID }, { id: IID2 }, { id: 'i-0123456789abcdef2' }]);
    for (const id of [7, 8, 9]) s.runner(id, 'online');
    const pending = [...one(7, IID), ...one(8, IID2), ...one(9, 'i-0123456789abcdef2')];
    await expect(waitForRunners(s.gh, s.world.clients(), T, pending, {}, s.o)).resolves.toEqual({ polls: 1 });
    expect(s.gets().sort()).toEqual(['/repos/acme/widgets/actions/runners/7', '/repos/acme/widgets/actions/runners/8', '/repos/acme/widgets/actions/runners/9']);
  });

  it('lists the runners once, instead of one GET each, above listThreshold', async () => {
    const ids = [7, 8, 9, 10];
    const s = scene(ids.map((k) => ({ id: `i-0123456789abcde${k.toString(16).padStart(2, '0')}` })));
    for (const id of ids) s.runner(id, 'online');
    s.runner(99, 'offline'); // another run's runner: listed, not waited for
    const pending = ids.flatMap((k) => one(k, `i-0123456789abcde${k.toString(16).padStart(2, '0')}`));
    await expect(waitForRunners(s.gh, s.world.clients(), T, pending, {}, s.o)).resolves.toEqual({ polls: 1 });
    expect(s.gets()).toEqual(['/repos/acme/widgets/actions/runners?per_page=100']);
    expect(s.logs).toHaveLength(4);
  });

  it('keeps waiting for the runners still offline after others came online', async () => {
    const s = scene([{ id: IID, phase: 'runner-started' }, { id: IID2, phase: 'booting' }]);
    s.runner(7, 'online');
    s.runner(8, 'offline');
    s.after.fn = (t) => {
      if (t === 2_000) s.runner(8, 'online');
    };
    await expect(waitForRunners(s.gh, s.world.clients(), T, [...one(7, IID), ...one(8, IID2)], {}, s.o)).resolves.toEqual({ polls: 3 });
    // Runner 7 is asked for once: after it came online only runner 8 is polled.
    expect(s.gets()).toEqual(['/repos/acme/widgets/actions/runners/7', '/repos/acme/widgets/actions/runners/8', '/repos/acme/widgets/actions/runners/8', '/repos/acme/widgets/actions/runners/8']);
    expect(s.logs).toEqual([`Runner spot-runner-1-1-aaaaaa-00000001-7 is online (${IID})`, `Runner spot-runner-1-1-aaaaaa-00000001-8 is online (${IID2})`]);
  });

  it('times out after timeoutMs with what each instance was doing, its last sleep cut to the deadline', async () => {
    const s = scene([{ id: IID, phase: 'runner-started' }, { id: IID2 }], { timeoutMs: 5_000 });
    s.runner(7, 'offline');
    s.runner(8, 'offline');
    await expect(waitForRunners(s.gh, s.world.clients(), T, [...one(7, IID), ...one(8, IID2)], {}, s.o)).rejects.toThrow(
      `Timed out after 5 s waiting for 2 runner(s) to come online: ${IID} (c7i.large, running, phase runner-started); ${IID2} (c7i.large, running). Raise wait-timeout if the image is slow to boot, or read the instance console output.`,
    );
    expect(s.sleeps).toEqual([1000, 1000, 1000, 1000, 1000, 1]);
    expect(s.clock.t).toBe(5_001);
    expect(s.gets()).toHaveLength(12); // two runners at 0, 1, 2, 3, 4 and 5 s
  });
});

describe('waitForRunners: the instance check ends the wait at once', () => {
  it.each(['shutting-down', 'terminated', 'stopping', 'stopped'])('when the instance is %s without having taken a job', async (state) => {
    const s = scene([{ id: IID, state, phase: 'runner-started' }], { instanceCheckMs: 0 });
    s.runner(7, 'offline');
    await expect(waitForRunners(s.gh, s.world.clients(), T, one(), {}, s.o)).rejects.toThrow(`Runner spot-runner-1-1-aaaaaa-00000001-7 will not come online: instance ${IID} (c7i.large, ${state}, phase runner-started)`);
    expect(s.gets()).toEqual([]);
  });

  it('when the machine wrote a failed phase, even while running', async () => {
    const s = scene([{ id: IID, phase: 'failed:bootstrap' }], { instanceCheckMs: 0 });
    s.runner(7, 'offline');
    await expect(waitForRunners(s.gh, s.world.clients(), T, one(), {}, s.o)).rejects.toThrow(`Runner spot-runner-1-1-aaaaaa-00000001-7 will not come online: instance ${IID} (c7i.large, running, phase failed:bootstrap)`);
  });

  it("and says EC2's reason for a reclaimed machine", async () => {
    const s = scene([{ id: IID, state: 'terminated', reason: 'Server.SpotInstanceTermination: Spot instance termination' }], { instanceCheckMs: 0 });
    s.runner(7, 'offline');
    await expect(waitForRunners(s.gh, s.world.clients(), T, one(), {}, s.o)).rejects.toThrow(`will not come online: instance ${IID} (c7i.large, terminated, reason: Server.SpotInstanceTermination: Spot instance termination)`);
  });

  it('but a running or pending machine without a phase is still booting: the wait goes on', async () => {
    const s = scene([{ id: IID, state: 'pending' }, { id: IID2 }], { instanceCheckMs: 0 });
    s.runner(7, 'offline');
    s.runner(8, 'offline');
    s.after.fn = (t) => {
      if (t === 1_000) {
        s.runner(7, 'online');
        s.runner(8, 'online');
      }
    };
    await expect(waitForRunners(s.gh, s.world.clients(), T, [...one(7, IID), ...one(8, IID2)], {}, s.o)).resolves.toEqual({ polls: 2 });
    expect(s.describes()).toBe(2);
  });

  it('a machine that wrote shutting-down while still running is not done until GitHub says the runner left', async () => {
    // Only a machine that is gone AND wrote shutting-down counts at the instance check; a running
    // one is asked about at GitHub, and its runner's 404 then decides.
    const s = scene([{ id: IID, phase: 'shutting-down' }], { instanceCheckMs: 0 });
    await expect(waitForRunners(s.gh, s.world.clients(), T, one(), {}, s.o)).resolves.toEqual({ polls: 1 });
    expect(s.logs).toEqual(['Runner spot-runner-1-1-aaaaaa-00000001-7 already took its job and left']);
    expect(s.gets()).toEqual(['/repos/acme/widgets/actions/runners/7']);
  });

  it('an instance EC2 does not list yet is pending for notFoundGraceMs after the launch, then gone', async () => {
    const s = scene([], { instanceCheckMs: 0, launchedAt: 10_000, notFoundGraceMs: 30_000 });
    s.clock.t = 10_000;
    s.runner(7, 'offline');
    await expect(waitForRunners(s.gh, s.world.clients(), T, one(), {}, s.o)).rejects.toThrow(`Runner spot-runner-1-1-aaaaaa-00000001-7 will not come online: instance ${IID}: not listed by EC2 yet`);
    expect(s.clock.t).toBe(40_000);
    expect(s.gets()).toHaveLength(30); // polled at 10 s … 39 s, while the grace lasted
  });

  it('a job-started phase counts as done at the instance check, even before GitHub is asked', async () => {
    const s = scene([{ id: IID, phase: 'job-started' }], { instanceCheckMs: 0 });
    s.runner(7, 'offline');
    await expect(waitForRunners(s.gh, s.world.clients(), T, one(), {}, s.o)).resolves.toEqual({ polls: 1 });
    expect(s.logs).toEqual([`Runner spot-runner-1-1-aaaaaa-00000001-7 already took its job (${IID} is job-started)`]);
  });
});

describe('waitForRunners: a vanished runner among others', () => {
  it('is removed from the wait when its machine took the job, while the others are still awaited', async () => {
    const s = scene([{ id: IID, phase: 'job-started' }, { id: IID2, phase: 'runner-started' }]);
    s.runner(8, 'offline');
    s.after.fn = (t) => {
      if (t === 1_000) s.runner(8, 'online');
    };
    await expect(waitForRunners(s.gh, s.world.clients(), T, [...one(7, IID), ...one(8, IID2)], {}, s.o)).resolves.toEqual({ polls: 2 });
    expect(s.logs).toEqual(['Runner spot-runner-1-1-aaaaaa-00000001-7 already took its job and left', `Runner spot-runner-1-1-aaaaaa-00000001-8 is online (${IID2})`]);
    // Only the vanished runner's instance is looked up.
    const looked = s.world.calls.filter((c) => c.command === 'DescribeInstances').map((c) => c.input.InstanceIds);
    expect(looked).toEqual([[IID]]);
  });

  it('is a failure naming the instance EC2 does not list', async () => {
    const s = scene([]);
    await expect(waitForRunners(s.gh, s.world.clients(), T, one(), {}, s.o)).rejects.toThrow(`Runner spot-runner-1-1-aaaaaa-00000001-7 (id 7) was removed from GitHub before it came online; instance ${IID}: not listed by EC2 yet`);
  });
});

describe('waitForRunners: the GitHub rate limit', () => {
  const NOW = 1_800_000_000_000;
  const withClock = async (fn: () => Promise<void>) => {
    // The reset is an epoch second from GitHub's headers, so the waiter compares it with the
    // wall clock; the test pins that clock.
    const spy = jest.spyOn(Date, 'now').mockReturnValue(NOW);
    try {
      await fn();
    } finally {
      spy.mockRestore();
    }
  };

  it('pauses until the reset when fewer than pending + 5 requests are left', () =>
    withClock(async () => {
      const s = scene([{ id: IID, phase: 'runner-started' }]);
      s.runner(7, 'offline');
      s.after.fn = () => s.runner(7, 'online');
      await expect(waitForRunners(s.gh, s.world.clients(), T, one(), { remaining: 5, resetEpochSeconds: NOW / 1000 + 30 }, s.o)).resolves.toEqual({ polls: 2 });
      expect(s.sleeps).toEqual([30_000]);
      expect(s.logs[0]).toBe('GitHub rate limit nearly spent (5 left); pausing 30 s until it resets');
    }));

  it.each([
    ['pending + 5 left', { remaining: 6, resetEpochSeconds: NOW / 1000 + 30 }],
    ['the reset has passed', { remaining: 0, resetEpochSeconds: NOW / 1000 }],
    ['no reset is known', { remaining: 0 }],
  ])('does not pause with %s', (_what, rate) =>
    withClock(async () => {
      const s = scene([{ id: IID, phase: 'runner-started' }]);
      s.runner(7, 'offline');
      s.after.fn = () => s.runner(7, 'online');
      await expect(waitForRunners(s.gh, s.world.clients(), T, one(), rate, s.o)).resolves.toEqual({ polls: 2 });
      expect(s.sleeps).toEqual([1000]);
      expect(s.logs.filter((l) => l.includes('rate limit'))).toEqual([]);
    }),
  );

  it('never sleeps past the deadline for a far reset', () =>
    withClock(async () => {
      const s = scene([{ id: IID, phase: 'runner-started' }], { timeoutMs: 10_000 });
      s.runner(7, 'offline');
      await expect(waitForRunners(s.gh, s.world.clients(), T, one(), { remaining: 1, resetEpochSeconds: NOW / 1000 + 3600 }, s.o)).rejects.toThrow(/Timed out after 10 s/);
      expect(s.sleeps).toEqual([10_001]);
    }));
});
