// The warm pool (issue 16) end to end in the lab: the bundled action (mode pool, start with
// pool, stop, reap), the real rendered user-data in the instance simulator (first boot to the
// checkpoint, stop, StartInstances, the per-boot resume), moto behind the fault proxy with its
// default realism (eventual consistency, SSM throttling and lost PutParameter answers, pending
// after StartInstances, one-time spot instances refusing StopInstances), the GitHub stand-in.
import { describe, expect, it } from '@jest/globals';
import { DescribeInstanceAttributeCommand, DescribeInstancesCommand, type Instance } from '@aws-sdk/client-ec2';
import { DescribeParametersCommand } from '@aws-sdk/client-ssm';
import { useLab } from '../../test/lab/use-lab.js';

const lab = useLab();

const ids = (json: string | undefined) => JSON.parse(json ?? '[]') as string[];
const tag = (i: Instance | undefined, k: string) => i?.Tags?.find((t) => t.Key === k)?.Value;

async function instances(idList: string[]): Promise<Instance[]> {
  if (idList.length === 0) return [];
  return (await lab.ec2.send(new DescribeInstancesCommand({ InstanceIds: idList }))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
}

async function claimParams(): Promise<string[]> {
  const out = await lab.ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Path', Option: 'Recursive', Values: ['/spot-runner/jit/pool-claims'] }] }));
  return (out.Parameters ?? []).map((p) => p.Name ?? '');
}

describe('warm pool', () => {
  it('fill → stopped at the checkpoint → claim → resume → one job → terminated; zero leaks', async () => {
    const fill = await lab.pool('lab', 2);
    expect(fill.errors).toEqual([]);
    expect(fill.exitCode).toBe(0);
    const ready = ids(fill.outputs['pool-ready']);
    if (ready.length !== 2) throw new Error(fill.stdout + lab.sim.describe() + [...lab.sim.instances.values()].map((i) => i.console()).join('\n----\n'));
    expect(ready).toHaveLength(2);
    // Each booted once, stopped itself at the checkpoint (not terminated), never saw a JIT config.
    for (const i of await instances(ready)) {
      expect(i.State?.Name).toBe('stopped');
      expect(tag(i, 'spot-runner:phase')).toBe('pooled');
      expect(tag(i, 'spot-runner:pool')).toBe('lab');
      expect(tag(i, 'spot-runner:pool-hash')).toMatch(/^[0-9a-f]{16}$/);
      expect(i.InstanceLifecycle).toBeUndefined(); // on-demand: a one-time spot instance cannot be stopped
      const sim = lab.sim.get(i.InstanceId ?? '');
      expect(sim.reasons).toEqual(['pooled']);
      expect(sim.connectedAt).toBeUndefined();
    }
    expect(lab.proxy.count('GetParameter', 'instance')).toBe(0);
    expect(lab.gh.runners.size).toBe(0);
    // The fill's launch template is gone: StartInstances needs none.
    expect((await lab.leaks()).launchTemplates).toEqual([]);

    const { main, post } = await lab.start({ count: '2', pool: 'lab' });
    expect(main.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    expect(post).toBeUndefined();
    expect(ids(main.outputs['from-pool']).sort()).toEqual([...ready].sort());
    expect(ids(main.outputs['instance-ids']).sort()).toEqual([...ready].sort());
    expect(main.summary).toContain('2 of 2 runner(s) resumed from the warm pool');
    // No cold launch happened.
    expect(lab.proxy.accepted('CreateFleet', 'action')).toBe(1);
    const label = main.outputs.label ?? '';
    for (const i of await instances(ready)) {
      expect(tag(i, 'spot-runner:label')).toBe(label);
      expect(tag(i, 'spot-runner:pool')).toBe('claimed:lab');
      const attr = await lab.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: i.InstanceId, Attribute: 'instanceInitiatedShutdownBehavior' }));
      expect(attr.InstanceInitiatedShutdownBehavior?.Value).toBe('terminate');
    }
    const jobs = ready.map((_, k) => lab.gh.queueJob({ labels: [label], id: `pool-job-${k}` }));
    await lab.sim.waitAllTerminated(30_000, ready);
    expect(jobs.map((j) => j.result)).toEqual(['succeeded', 'succeeded']);
    for (const id of ready) {
      const sim = lab.sim.get(id);
      // One boot to the checkpoint, one resume, one job, then the power-off terminated it.
      expect(sim.stops).toBe(1);
      expect(sim.reasons).toEqual(['pooled', 'job-done']);
      expect(sim.end).toBe('power-off');
      expect(sim.resumedAt).toBeDefined();
      expect(sim.console()).toContain('resumed from pool lab');
    }
    expect(lab.sim.filesContaining([...lab.gh.issuedSecrets, lab.gh.token])).toEqual([]);
    const stop = await lab.stop(label);
    expect(stop.errors).toEqual([]);
    expect(await claimParams()).toEqual([]);
    await lab.assertNoLeaks();
  }, 120_000);
});
