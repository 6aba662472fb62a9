import { describe, expect, it } from '@jest/globals';
import { offlineGitHub } from '../test/fakes/github.js';
import { stop } from '../src/modes/stop.js';
import { teardown } from '../src/teardown.js';
import { awsError } from '../test/fakes/aws.js';
import { rig, runStart, stopConfig, type Rig } from '../test/fakes/harness.js';

offlineGitHub();

const target = { scope: 'repo' as const, owner: 'acme', repo: 'widgets' };

async function started(
  count = '2',
  more: Record<string, string> = {},
): Promise<{ r: Rig; label: string; ids: string[] }> {
  const r = rig();
  const res = await runStart(r, { count, ...more });
  return { r, label: res.label, ids: res.runners.map((x) => x.instanceId) };
}

function stopDeps(r: Rig) {
  const logs: string[] = [];
  // A wait long enough for the fake's one shutting-down look, so a stop that settles says so.
  return {
    deps: {
      aws: r.deps.aws,
      gh: r.deps.gh,
      log: (l: string) => logs.push(l),
      terminateWaitSeconds: 3,
      terminatePollSeconds: 1,
    },
    logs,
  };
}

describe('stop', () => {
  it('terminates by label, deregisters runners, deletes parameters and the template, and estimates cost', async () => {
    const { r, label } = await started();
    for (const i of r.world.instances.values()) i.LaunchTime = new Date(Date.now() - 2 * 3_600_000);
    const res = await stop(stopConfig({ label }), stopDeps(r).deps);
    expect(r.world.live()).toEqual([]);
    expect(r.world.params.size).toBe(0);
    expect(r.world.templates.size).toBe(0);
    expect(r.github.runners.size).toBe(0);
    expect(res.interrupted).toBe(false);
    // Two spot instances × 2 h × $0.03 (the fake price history) = $0.12, plus each one's 16 GiB
    // root volume (the image's size) × 2 h at $0.08/GB-month of 730 h = $0.0035068 each.
    expect(res.cost).toBeCloseTo(0.127014, 4);
  });

  it('reports each machine (type, market, ~2 h, its cost) and what it removed, with no notes or problems', async () => {
    const { r, label, ids } = await started();
    for (const i of r.world.instances.values()) i.LaunchTime = new Date(Date.now() - 2 * 3_600_000);
    const { deps, logs } = stopDeps(r);
    const res = await stop(stopConfig({ label }), deps);
    expect(res.rows.map((x) => x.instanceId).sort()).toEqual([...ids].sort());
    expect(res.rows).toHaveLength(2);
    for (const row of res.rows) {
      expect(row.market).toBe('spot');
      expect(row.interrupted).toBe(false);
      expect(row.hours).toBeGreaterThan(1.99);
      expect(row.hours).toBeLessThan(2.01);
      expect(row.cost).toBeCloseTo(0.063507, 4);
    }
    expect(res.notes).toEqual([]);
    expect(res.report.problems).toEqual([]);
    expect(logs).toContain('Stopped: terminated 2, deleted 2 runner(s), 2 parameter(s), 1 template(s)');
  });

  it("prices each machine's root volume at its size while it existed (EBS gp3), and says so", async () => {
    const { r, label } = await started('1', { 'volume-size': '100' });
    for (const i of r.world.instances.values()) i.LaunchTime = new Date(Date.now() - 2 * 3_600_000);
    const res = await stop(stopConfig({ label }), stopDeps(r).deps);
    // 2 h × $0.03 spot, plus 100 GiB × 2 h × $0.08/GB-month of 730 h = $0.0219178.
    expect(res.rows).toHaveLength(1);
    expect(res.rows[0]?.cost).toBeCloseTo(0.081918, 4);
    expect(res.cost).toBeCloseTo(0.081918, 4);
    expect(res.costNotes).toContain('EBS at the gp3 rate of $0.08/GB-month (us-east-1)');
    // Its volume went with it (DeleteOnTermination), so the size was read before the teardown.
    expect(r.world.volumes.size).toBe(0);
  });

  it('given only instance ids, finds their label and prices their volumes too', async () => {
    const { r, ids } = await started('1', { 'volume-size': '100' });
    for (const i of r.world.instances.values()) i.LaunchTime = new Date(Date.now() - 2 * 3_600_000);
    const res = await stop(stopConfig({ 'instance-ids': ids.join(',') }), stopDeps(r).deps);
    expect(r.world.live()).toEqual([]);
    expect(res.rows[0]?.cost).toBeCloseTo(0.081918, 4);
  });

  it('says when nothing was running for the label', async () => {
    const { r } = await started('1');
    const res = await stop(stopConfig({ label: 'spot-runner-1-1-abc-99999999' }), stopDeps(r).deps);
    expect(res.notes).toEqual(['nothing was running for spot-runner-1-1-abc-99999999 (already stopped?)']);
    expect(r.world.live()).toHaveLength(1);
  });

  it('fails, naming the machine and its state, when an instance is still not terminating after the wait', async () => {
    const { r, label, ids } = await started('1');
    (r.world.instances.get(ids[0] as string) as { State: { Name: string } }).State = { Name: 'running' };
    // EC2 accepts the call, but the machine never leaves running (the platform's worst case).
    r.world.on('TerminateInstances', (input) => ({
      TerminatingInstances: (input.InstanceIds as string[]).map((id) => ({
        InstanceId: id,
        PreviousState: { Name: 'running' },
        CurrentState: { Name: 'running' },
      })),
    }));
    const { deps } = stopDeps(r);
    const err = await stop(stopConfig({ label }), { ...deps, terminateWaitSeconds: 2, terminatePollSeconds: 1 }).then(
      () => undefined,
      (e: unknown) => e as Error & { result?: { report: { problems: string[] } } },
    );
    expect(err?.message).toBe(
      `stop could not remove everything: still not terminating after the wait: ${ids[0]} (running)`,
    );
    expect(err?.result?.report.problems).toEqual([`still not terminating after the wait: ${ids[0]} (running)`]);
  });

  it('notes, without failing, machines still shutting down after the wait', async () => {
    const r = rig({}, { world: { shuttingDownLooks: 1_000_000 } });
    const started1 = await runStart(r, { count: '1' });
    const { deps } = stopDeps(r);
    const res = await stop(stopConfig({ label: started1.label }), {
      ...deps,
      terminateWaitSeconds: 2,
      terminatePollSeconds: 1,
    });
    expect(res.notes).toEqual(['some instances are still shutting down; EC2 will finish terminating them']);
    expect(res.report.problems).toEqual([]);
  });

  it('reports interrupted when EC2 says spot capacity was reclaimed', async () => {
    const { r, label, ids } = await started();
    Object.assign(r.world.instances.get(ids[0] as string) as object, {
      State: { Name: 'terminated' },
      StateReason: { Code: 'Server.SpotInstanceTermination', Message: 'Spot instance termination' },
    });
    const res = await stop(stopConfig({ label }), stopDeps(r).deps);
    expect(res.interrupted).toBe(true);
    expect(r.world.live()).toEqual([]);
  });

  it('reports interrupted when the instance tagged a spot notice itself', async () => {
    const { r, label, ids } = await started('1');
    r.world.setPhase(ids[0] as string, 'interrupted:shutting-down');
    expect((await stop(stopConfig({ label }), stopDeps(r).deps)).interrupted).toBe(true);
  });

  it('succeeds when run twice, or on resources already gone', async () => {
    const { r, label } = await started();
    await stop(stopConfig({ label }), stopDeps(r).deps);
    const again = await stop(stopConfig({ label }), stopDeps(r).deps);
    expect(again.report.terminated).toEqual([]);
    expect(again.interrupted).toBe(false);
  });

  it('finds everything from instance ids alone and leaves foreign instances alone', async () => {
    const { r, ids } = await started();
    r.world.instances.set('i-0f0f0f0f0f0f0f0f0', {
      InstanceId: 'i-0f0f0f0f0f0f0f0f0',
      InstanceType: 't3.micro',
      State: { Name: 'running' },
      Placement: { AvailabilityZone: 'us-east-1a' },
      LaunchTime: new Date(),
      Tags: [],
    });
    const { deps, logs } = stopDeps(r);
    const res = await stop(stopConfig({ 'instance-ids': JSON.stringify([ids[0], 'i-0f0f0f0f0f0f0f0f0']) }), deps);
    expect(r.world.live().map((i) => i.InstanceId)).toEqual(['i-0f0f0f0f0f0f0f0f0']);
    expect(r.world.params.size).toBe(0);
    expect(r.github.runners.size).toBe(0);
    expect(logs.join('\n')).toMatch(/i-0f0f0f0f0f0f0f0f0 has no spot-runner:label tag/);
    expect(res.notes).toEqual(['not touched (not spot-runner instances or unknown): i-0f0f0f0f0f0f0f0f0']);
  });

  it('leaves a busy runner registered with a warning instead of failing', async () => {
    const { r, label } = await started('1');
    for (const x of r.github.runners.values()) x.busy = true;
    const res = await stop(stopConfig({ label }), stopDeps(r).deps);
    expect(res.notes.join('\n')).toMatch(/busy and were left registered/);
    expect(r.world.live()).toEqual([]);
  });

  it('fails loudly when instances cannot be terminated, but still removes the rest', async () => {
    const { r, label } = await started();
    r.world.on('TerminateInstances', () => {
      throw awsError('UnauthorizedOperation', 'You are not authorized to perform: ec2:TerminateInstances');
    });
    await expect(stop(stopConfig({ label }), stopDeps(r).deps)).rejects.toThrow(
      /stop could not remove everything: terminating instances: You are not authorized/,
    );
    expect(r.world.params.size).toBe(0);
    expect(r.github.runners.size).toBe(0);
    expect(r.world.templates.size).toBe(0);
  });
  it('given only ids of which none is running, says so for the given ids, naming each one not touched', async () => {
    const { r } = await started('1');
    const res = await stop(stopConfig({ 'instance-ids': 'i-0a0a0a0a0a0a0a0a0,i-0b0b0b0b0b0b0b0b0' }), stopDeps(r).deps);
    expect(res.notes).toEqual([
      'nothing was running for the given ids (already stopped?)',
      'not touched (not spot-runner instances or unknown): i-0a0a0a0a0a0a0a0a0, i-0b0b0b0b0b0b0b0b0',
    ]);
    expect(r.world.live()).toHaveLength(1);
  });

  it('names every machine still not terminating, and every hard failure, in one error', async () => {
    const { r, label, ids } = await started('2');
    r.world.on('TerminateInstances', (input) => ({
      TerminatingInstances: (input.InstanceIds as string[]).map((id) => ({
        InstanceId: id,
        PreviousState: { Name: 'running' },
        CurrentState: { Name: 'running' },
      })),
    }));
    for (const id of ids) (r.world.instances.get(id) as { State: { Name: string } }).State = { Name: 'running' };
    r.world.on('DeleteLaunchTemplate', () => {
      throw awsError('UnauthorizedOperation', 'You are not authorized to perform: ec2:DeleteLaunchTemplate');
    });
    const err = await stop(stopConfig({ label }), { ...stopDeps(r).deps, terminateWaitSeconds: 2 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    const [a, b] = [...ids].sort();
    expect(err?.message).toBe(
      `stop could not remove everything: deleting launch templates: You are not authorized to perform: ec2:DeleteLaunchTemplate; still not terminating after the wait: ${a} (running), ${b} (running)`,
    );
  });

  it('after the wait, a machine already terminated beside one still shutting down is only a note', async () => {
    const r = rig({}, { world: { shuttingDownLooks: 1_000_000 } });
    const res0 = await runStart(r, { count: '2' });
    const [done] = res0.runners.map((x) => x.instanceId);
    const terminateCall = r.world.handlerOf('TerminateInstances');
    r.world.on('TerminateInstances', async (input, call) => {
      const out = await terminateCall(input, call);
      (r.world.instances.get(done as string) as { State: { Name: string } }).State = { Name: 'terminated' };
      return out;
    });
    const res = await stop(stopConfig({ label: res0.label }), { ...stopDeps(r).deps, terminateWaitSeconds: 2 });
    expect(res.notes).toEqual(['some instances are still shutting down; EC2 will finish terminating them']);
    expect(res.report.problems).toEqual([]);
  });

  it('compares with GitHub-hosted minutes per machine, and logs a reclaim', async () => {
    const NOW = Date.parse('2026-12-01T12:00:00Z');
    const { r, label, ids } = await started('1');
    for (const i of r.world.instances.values()) i.LaunchTime = new Date(NOW - 2 * 3_600_000);
    Object.assign(r.world.instances.get(ids[0] as string) as object, {
      State: { Name: 'terminated' },
      StateReason: { Code: 'Server.SpotInstanceTermination', Message: 'Spot instance termination' },
    });
    const { deps, logs } = stopDeps(r);
    const res = await stop(stopConfig({ label }), { ...deps, now: () => new Date(NOW) });
    // c7i.large has 2 vCPUs: 120 minutes at GitHub's Linux 2-core $0.006/min.
    expect(res.rows.map((x) => x.githubHosted)).toEqual(['Linux 2-core: $0.720']);
    expect(res.githubHostedCost).toBeCloseTo(0.72, 6);
    expect(logs).toContain(
      'Stopped: terminated 0, deleted 1 runner(s), 1 parameter(s), 1 template(s); spot capacity was reclaimed',
    );
  });

  it('when the volume sizes cannot be read, leaves EBS out of the cost and still removes everything', async () => {
    const { r, label } = await started('1', { 'volume-size': '100' });
    for (const i of r.world.instances.values()) i.LaunchTime = new Date(Date.now() - 2 * 3_600_000);
    const describe = r.world.handlerOf('DescribeInstances');
    let first = true;
    r.world.on('DescribeInstances', (input, call) => {
      if (first && input.Filters) {
        first = false;
        throw awsError('RequestLimitExceeded', 'Request limit exceeded.');
      }
      return describe(input, call);
    });
    const res = await stop(stopConfig({ label }), stopDeps(r).deps);
    expect(r.world.live()).toEqual([]);
    expect(res.rows[0]?.cost).toBeCloseTo(0.06, 4);
    expect(res.costNotes.some((n) => n.startsWith('EBS'))).toBe(false);
  });
});

describe('rollback (post)', () => {
  it('removes what state recorded plus anything else carrying the label', async () => {
    const { r, label } = await started();
    // An instance whose launch answer never reached state, but which carries the label.
    const extra = [...r.world.instances.values()][0];
    const ghost = {
      ...(extra as NonNullable<typeof extra>),
      InstanceId: 'i-0e0e0e0e0e0e0e0e0',
      State: { Name: 'pending' },
    };
    r.world.instances.set(ghost.InstanceId, ghost);
    const report = await teardown(r.deps.aws, r.deps.gh, target, r.state.resources);
    expect(report.terminated).toContain('i-0e0e0e0e0e0e0e0e0');
    expect(r.world.live()).toEqual([]);
    expect(r.world.params.size).toBe(0);
    expect(r.world.templates.size).toBe(0);
    expect(r.github.runners.size).toBe(0);
    expect(report.problems).toEqual([]);
    expect(label).toBeTruthy();
  });

  it('is idempotent and reports problems instead of throwing', async () => {
    const { r } = await started('1');
    await teardown(r.deps.aws, r.deps.gh, target, r.state.resources);
    const second = await teardown(r.deps.aws, r.deps.gh, target, r.state.resources);
    expect(second.problems).toEqual([]);
    r.world.on('DeleteParameters', () => {
      throw awsError('ThrottlingException', 'Rate exceeded');
    });
    r.state.resources.parameterNames.push('/spot-runner/jit/x/i-1');
    const third = await teardown(r.deps.aws, r.deps.gh, target, r.state.resources);
    expect(third.problems.join('\n')).toMatch(/deleting parameters: Rate exceeded/);
  });
});
