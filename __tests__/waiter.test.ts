// The waiter's vanished-runner paths (issue 12): GitHub no longer knowing a runner means "it took
// its job and left" ONLY when its machine's phase says so; otherwise the runner was removed and
// start must fail. Polls are counted, no wall clock is asserted.
import { describe, expect, it } from '@jest/globals';
import { makeGitHub } from '../src/github/client.js';
import { waitForRunners, type WaitOptions } from '../src/waiter.js';
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
