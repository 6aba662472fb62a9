// The waiter (issue 15): start watches EC2, not GitHub. One DescribeInstances by label per poll
// covers every machine; GitHub is asked only once every machine says `listening`, and then
// sparingly while GitHub has not caught up. Dead or failed machines end the wait at once; a
// machine EC2 does not list yet is pending, not dead. Polls and calls are counted on a fake
// clock; no wall clock is asserted.
import { describe, expect, it } from '@jest/globals';
import { makeGitHub } from '../src/github/client.js';
import { waitForRunners, type Pending, type WaitOptions } from '../src/waiter.js';
import { NockGitHub, offlineGitHub } from '../test/fakes/github.js';
import { FakeWorld } from '../test/fakes/world.js';

offlineGitHub();
const T = { scope: 'repo' as const, owner: 'acme', repo: 'widgets' };
const LABEL = 'spot-runner-1-1-aaaaaa-00000001';

function setup() {
  process.env.SPOT_RUNNER_GITHUB_RETRY_BASE_MS = '1';
  const world = new FakeWorld();
  const github = new NockGitHub();
  const logs: string[] = [];
  let t = 0;
  // Things that happen at a moment of the fake clock (a machine booting, GitHub catching up).
  const at: { t: number; run: () => void }[] = [];
  const o: WaitOptions = {
    timeoutMs: 300_000,
    intervalMs: 1000,
    fastIntervalMs: 500,
    fastWindowMs: 10_000,
    githubRetryMs: 1000,
    githubFallbackMs: 60_000,
    launchedAt: 0,
    notFoundGraceMs: 60_000,
    // No read budget unless a test sets one (its own test below).
    ec2ReadsPerSecond: Infinity,
    now: () => t,
    sleep: async (ms) => {
      t += ms;
      for (const e of at.filter((x) => x.t <= t)) {
        at.splice(at.indexOf(e), 1);
        e.run();
      }
    },
    log: (l) => logs.push(l),
  };
  const machine = (phase?: string, state = 'running') =>
    world.addInstance(LABEL, new Date(), phase ? { 'spot-runner:phase': phase } : {}, { State: { Name: state } });
  const runner = (instanceId: string, status: 'online' | 'offline' = 'offline'): Pending => {
    const id = 100 + github.runners.size;
    const name = `${LABEL}-${github.runners.size + 1}`;
    github.runners.set(id, { id, name, status, busy: false, labels: [{ id: 1, name: LABEL, type: 'custom' }] });
    return { runnerId: id, runnerName: name, instanceId };
  };
  const describes = () => world.calls.filter((c) => c.command === 'DescribeInstances');
  const githubGets = () => github.requests.filter((q) => q.method === 'GET');
  return {
    world,
    github,
    logs,
    o,
    at,
    machine,
    runner,
    describes,
    githubGets,
    gh: makeGitHub('ghs_testtoken'),
    now: () => t,
  };
}

describe('waitForRunners watches EC2, not GitHub', () => {
  it("keeps the start's EC2 reads within 1.4 a second: after a burst of validation reads its first looks wait", async () => {
    const s = setup();
    s.o.ec2ReadsPerSecond = 1.4;
    const looks: number[] = [];
    const describe = s.world.handlerOf('DescribeInstances');
    s.world.on('DescribeInstances', (input, call) => {
      looks.push(s.now());
      return describe(input, call);
    });
    // Five validation reads at the start (t = 0), then the waiter's own looks.
    s.o.ec2Reads = { count: () => 5 + looks.length, since: 0 };
    const id = s.machine('booting');
    const pending = [s.runner(id)];
    s.at.push({ t: 5_000, run: () => s.world.setPhase(id, 'runner-started') });
    s.at.push({
      t: 6_000,
      run: () => {
        s.world.setPhase(id, 'listening');
        (s.github.runners.get((pending[0] as Pending).runnerId) as { status: string }).status = 'online';
      },
    });
    await waitForRunners(s.gh, s.world.clients(), T, LABEL, pending, {}, s.o);
    // Without the budget: a look at 0, 1000, …, 6000 ms (7). With it: the 6th read no sooner than
    // 6/1.4 s, the 7th 1 s later; the fast interval (runner-started) only as the budget allows.
    expect(looks.map(Math.round)).toEqual([4286, 5286, 5786, 6429]);
    expect(s.githubGets()).toHaveLength(1);
  });

  it('asks GitHub nothing while machines boot; one DescribeInstances by label per poll covers all of them; one list call confirms', async () => {
    const s = setup();
    const ids = [s.machine('booting'), s.machine('booting'), s.machine('booting')];
    const pending = ids.map((id) => s.runner(id));
    // Each machine's listener gets its session at its own moment; GitHub shows it online then.
    [5_000, 8_000, 12_000].forEach((when, k) =>
      s.at.push({
        t: when,
        run: () => {
          s.world.setPhase(ids[k] as string, 'listening');
          (s.github.runners.get((pending[k] as Pending).runnerId) as { status: string }).status = 'online';
        },
      }),
    );
    const res = await waitForRunners(s.gh, s.world.clients(), T, LABEL, pending, {}, s.o);
    expect(s.now()).toBe(12_000);
    expect(res.polls).toBe(1);
    expect(s.githubGets()).toHaveLength(1);
    expect(s.githubGets()[0]?.path).toMatch(/\/repos\/acme\/widgets\/actions\/runners\?/);
    // Every second from the launch: 0, 1, …, 12 s; each by the label, not by id, not one per machine.
    expect(res.ec2Polls).toBe(13);
    expect(s.describes()).toHaveLength(13);
    for (const c of s.describes())
      expect(c.input).toEqual({ Filters: [{ Name: 'tag:spot-runner:label', Values: [LABEL] }], MaxResults: 1000 });
    expect(res.instances.get(ids[2] as string)?.tags['spot-runner:phase']).toBe('listening');
  });

  it('polls twice as often for a while once a machine says runner-started (its listener is seconds away), from a fixed grid', async () => {
    const s = setup();
    const id = s.machine('booting');
    const p = s.runner(id, 'online');
    s.at.push({ t: 3_000, run: () => s.world.setPhase(id, 'runner-started') });
    s.at.push({ t: 5_000, run: () => s.world.setPhase(id, 'listening') });
    // Each DescribeInstances "takes" 300 ms of the clock: the grid stays 1 s, not 1.3 s.
    const describe = s.world.handlerOf('DescribeInstances');
    const seenAt: number[] = [];
    s.world.on('DescribeInstances', async (input, n) => {
      seenAt.push(s.now());
      await s.o.sleep(300);
      return describe(input, n);
    });
    await waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o);
    expect(seenAt).toEqual([0, 1_000, 2_000, 3_000, 3_500, 4_000, 4_500, 5_000]);
  });

  it('a resumed pool machine is polled fast from its StartInstances on (it is seconds from listening), then once a second', async () => {
    const s = setup();
    const id = s.machine('pooled', 'pending');
    const p = { ...s.runner(id, 'online'), resumedAt: 2_000 };
    s.at.push({ t: 14_000, run: () => s.world.setPhase(id, 'listening') });
    const seenAt: number[] = [];
    const describe = s.world.handlerOf('DescribeInstances');
    s.world.on('DescribeInstances', async (input, n) => {
      seenAt.push(s.now());
      return describe(input, n);
    });
    await waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o);
    // Fast (0.5 s) while the resume is under fastWindowMs (10 s) old, i.e. until 12 s; then 1 s.
    const fast = Array.from({ length: 25 }, (_, k) => k * 500);
    expect(seenAt).toEqual([...fast, 13_000, 14_000]);
  });

  it('goes back to once a second when runner-started lasts longer than the fast window', async () => {
    const s = setup();
    const p = s.runner(s.machine('runner-started'), 'online');
    s.o.githubFallbackMs = 3_600_000;
    s.o.timeoutMs = 14_500;
    await expect(waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o)).rejects.toThrow(/Timed out/);
    // 0…10 s every 0.5 s (21), then 11, 12, 13, 14 s (4), then the final look at the timeout.
    expect(s.describes()).toHaveLength(26);
  });

  it('a single runner is confirmed with one GET', async () => {
    const s = setup();
    const id = s.machine('listening');
    const p = s.runner(id, 'online');
    await expect(waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o)).resolves.toMatchObject({
      polls: 1,
      ec2Polls: 1,
    });
    expect(s.githubGets().map((q) => q.path)).toEqual([`/repos/acme/widgets/actions/runners/${p.runnerId}`]);
  });

  it('listening but not yet online at GitHub (eventual consistency): asks again, backing off, not every second', async () => {
    const s = setup();
    const id = s.machine('listening');
    const p = s.runner(id);
    s.at.push({ t: 20_000, run: () => ((s.github.runners.get(p.runnerId) as { status: string }).status = 'online') });
    const res = await waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o);
    // At 0, 1, 3, 7, 15 and then every 8 s: 23 s. Polling every second would be 21 calls.
    expect(s.githubGets()).toHaveLength(6);
    expect(res.polls).toBe(6);
    expect(s.now()).toBe(23_000);
  });

  it('a machine EC2 does not list yet is pending, not dead (eventual consistency)', async () => {
    const s = setup();
    // Launched, but not in any Describe answer for the first 4 s.
    const ghost = 'i-000000000000000aa';
    const p = s.runner(ghost, 'online');
    s.at.push({
      t: 4_000,
      run: () =>
        s.world.instances.set(ghost, {
          InstanceId: ghost,
          InstanceType: 'c7i.large',
          State: { Name: 'running' },
          Placement: { AvailabilityZone: 'us-east-1a' },
          LaunchTime: new Date(),
          Tags: [
            { Key: 'spot-runner:label', Value: LABEL },
            { Key: 'spot-runner:phase', Value: 'listening' },
          ],
        }),
    });
    const res = await waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o);
    expect(res.ec2Polls).toBe(5);
    expect(s.githubGets()).toHaveLength(1);
  });

  it('past the grace, a machine missing from the label filter is asked for by id before it counts as gone', async () => {
    const s = setup();
    // Listed by id, but (still) not by its tag: it must not be called dead.
    const id = s.world.addInstance(undefined, new Date(), { 'spot-runner:phase': 'listening' });
    const p = s.runner(id, 'online');
    s.o.notFoundGraceMs = 2_000;
    await expect(waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o)).resolves.toMatchObject({ polls: 1 });
    expect(s.describes().some((c) => JSON.stringify(c.input).includes(id))).toBe(true);
    expect(s.now()).toBe(2_000);
  });

  it('asks by id only past the grace, and only for the machines the label filter left out', async () => {
    const s = setup();
    const listed = s.machine('runner-started');
    const unlisted = s.world.addInstance(undefined, new Date(), { 'spot-runner:phase': 'runner-started' });
    const pending = [s.runner(listed, 'online'), s.runner(unlisted, 'online')];
    s.o.notFoundGraceMs = 3_000;
    s.at.push({ t: 4_000, run: () => [listed, unlisted].forEach((id) => s.world.setPhase(id, 'listening')) });
    await waitForRunners(s.gh, s.world.clients(), T, LABEL, pending, {}, s.o);
    const byId = s.describes().filter((c) => (c.input.InstanceIds as string[] | undefined)?.length);
    // Looks at 0, 0.5 … 4 s; by id from 3 s on (3, 3.5, 4 s), for the unlisted machine alone.
    expect(byId.map((c) => c.input.InstanceIds)).toEqual([[unlisted], [unlisted], [unlisted]]);
    expect(s.now()).toBe(4_000);
  });

  it.each(['stopped', 'stopping'])(
    'a resumed pool machine still listed %s is pending within the grace after its StartInstances',
    async (state) => {
      const s = setup();
      const id = s.machine('pooled', state);
      const p = { ...s.runner(id, 'online'), resumedAt: 0 };
      s.o.notFoundGraceMs = 5_000;
      s.at.push({
        t: 3_000,
        run: () => {
          (s.world.instances.get(id) as { State: { Name: string } }).State.Name = 'running';
          s.world.setPhase(id, 'listening');
        },
      });
      await expect(waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o)).resolves.toMatchObject({
        polls: 1,
      });
      expect(s.now()).toBe(3_000);
    },
  );

  it('a resumed pool machine still stopped once the grace has passed is gone', async () => {
    const s = setup();
    const id = s.machine('pooled', 'stopped');
    const p = { ...s.runner(id, 'online'), resumedAt: 1_000 };
    s.o.notFoundGraceMs = 5_000;
    await expect(waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o)).rejects.toThrow(
      /will not come online: instance i-\w+ \(c7i.large, stopped, phase pooled\)/,
    );
    // Counted from the resume (1 s), not from the launch (0).
    expect(s.now()).toBe(6_000);
  });

  it('a cold machine listed stopped is gone at once (no resume, no grace)', async () => {
    const s = setup();
    const p = s.runner(s.machine('booting', 'stopped'), 'online');
    await expect(waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o)).rejects.toThrow(
      /will not come online: instance i-\w+ \(c7i.large, stopped, phase booting\)/,
    );
    expect(s.now()).toBe(0);
  });

  it('past the grace, a machine EC2 knows by neither label nor id is gone', async () => {
    const s = setup();
    const p = s.runner('i-000000000000000bb', 'online');
    s.o.notFoundGraceMs = 2_000;
    await expect(waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o)).rejects.toThrow(
      /will not come online: instance i-000000000000000bb: not listed by EC2 yet/,
    );
    expect(s.githubGets()).toHaveLength(0);
  });

  it('a dead machine ends the wait at the next poll, with its reason, while the others still boot', async () => {
    const s = setup();
    const ids = [s.machine('runner-started'), s.machine('booting')];
    const pending = ids.map((id) => s.runner(id));
    s.at.push({
      t: 3_000,
      run: () =>
        Object.assign(s.world.instances.get(ids[1] as string) as object, {
          State: { Name: 'terminated' },
          StateReason: {
            Code: 'Server.SpotInstanceTermination',
            Message: 'Server.SpotInstanceTermination: Spot instance termination',
          },
        }),
    });
    await expect(waitForRunners(s.gh, s.world.clients(), T, LABEL, pending, {}, s.o)).rejects.toThrow(
      /Runner spot-runner-1-1-aaaaaa-00000001-2 will not come online: instance i-\w+ \(c7i.large, terminated, phase booting, reason: Server.SpotInstanceTermination/,
    );
    expect(s.now()).toBe(3_000);
    expect(s.githubGets()).toHaveLength(0);
  });

  it('a failed phase ends the wait at once', async () => {
    const s = setup();
    const p = s.runner(s.machine('failed:ssm-read-failed:AccessDeniedException'));
    await expect(waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o)).rejects.toThrow(
      /will not come online: .*phase failed:ssm-read-failed:AccessDeniedException/,
    );
    expect(s.now()).toBe(0);
  });

  it('a machine already past its job (job-started, or shut down after it) counts as done without GitHub', async () => {
    const s = setup();
    const pending = [s.runner(s.machine('job-started')), s.runner(s.machine('shutting-down', 'terminated'))];
    await expect(waitForRunners(s.gh, s.world.clients(), T, LABEL, pending, {}, s.o)).resolves.toMatchObject({
      polls: 0,
      ec2Polls: 1,
    });
    expect(s.github.requests).toEqual([]);
    expect(s.logs.join('\n')).toMatch(/already took its job \(i-\w+ is shutting-down\)/);
  });

  it('times out, saying what each machine was doing', async () => {
    const s = setup();
    const p = s.runner(s.machine('runner-started'));
    s.o.timeoutMs = 10_000;
    s.o.githubFallbackMs = 3_600_000;
    await expect(waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o)).rejects.toThrow(
      /Timed out after 10 s waiting for 1 runner\(s\) to come online: i-\w+ \(c7i.large, running, phase runner-started\)/,
    );
    expect(s.githubGets()).toHaveLength(0);
  });

  it('a listener that never says listening: after githubFallbackMs GitHub is asked directly, once per that interval', async () => {
    const s = setup();
    const p = s.runner(s.machine('runner-started'));
    s.o.githubFallbackMs = 30_000;
    s.at.push({ t: 40_000, run: () => ((s.github.runners.get(p.runnerId) as { status: string }).status = 'online') });
    await waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o);
    // At 30 s (still offline) and 60 s.
    expect(s.githubGets()).toHaveLength(2);
    expect(s.now()).toBe(60_000);
    expect(s.logs.join('\n')).toMatch(/never tagged phase listening; GitHub shows its runner online/);
  });

  it('honours the primary rate limit: GitHub waits for the reset, EC2 polls go on', async () => {
    const s = setup();
    const p = s.runner(s.machine('listening'), 'online');
    const rate = { remaining: 1, resetEpochSeconds: 5 };
    await waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], rate, s.o);
    expect(s.now()).toBe(5_000);
    expect(s.githubGets()).toHaveLength(1);
    expect(s.describes()).toHaveLength(6);
    expect(s.logs.join('\n')).toMatch(/GitHub rate limit nearly spent \(1 left\); pausing GitHub calls 5 s/);
  });
});

describe('waitForRunners: a runner GitHub no longer knows', () => {
  it('is a failure when its machine says listening but never took a job', async () => {
    const s = setup();
    const id = s.machine('listening');
    const p = { runnerId: 7, runnerName: `${LABEL}-1`, instanceId: id };
    await expect(waitForRunners(s.gh, s.world.clients(), T, LABEL, [p], {}, s.o)).rejects.toThrow(
      /Runner spot-runner-1-1-aaaaaa-00000001-1 \(id 7\) was removed from GitHub before it came online; instance i-\w+ \(c7i.large, running, phase listening\)/,
    );
    expect(s.githubGets()).toHaveLength(1);
  });

  it('counts as done when its machine moved on to job-started between the two looks', async () => {
    const s = setup();
    const id = s.machine('listening');
    const p = { runnerId: 7, runnerName: `${LABEL}-1`, instanceId: id };
    // GitHub already forgot the ephemeral runner; EC2's next answer shows the job.
    const clients = s.world.clients();
    const describe = s.world.handlerOf('DescribeInstances');
    s.world.on('DescribeInstances', (input, n) => {
      if ((input.InstanceIds as string[] | undefined)?.length) s.world.setPhase(id, 'job-started');
      return describe(input, n);
    });
    await expect(waitForRunners(s.gh, clients, T, LABEL, [p], {}, s.o)).resolves.toMatchObject({ polls: 1 });
    expect(s.logs).toContain('Runner spot-runner-1-1-aaaaaa-00000001-1 already took its job and left');
  });
});
