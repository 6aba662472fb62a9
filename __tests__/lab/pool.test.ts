// The warm pool (issue 16) end to end in the lab: the bundled action (mode pool, start with
// pool, stop, reap), the real rendered user-data in the instance simulator (first boot to the
// checkpoint, stop, StartInstances, the per-boot resume), moto behind the fault proxy with its
// default realism (eventual consistency, SSM throttling and lost PutParameter answers, pending
// after StartInstances, one-time spot instances refusing StopInstances), the GitHub stand-in.
import { describe, expect, it } from '@jest/globals';
import { DescribeInstanceAttributeCommand, DescribeInstancesCommand, type Instance } from '@aws-sdk/client-ec2';
import { DescribeParametersCommand, GetParameterCommand } from '@aws-sdk/client-ssm';
import { fileURLToPath } from 'node:url';
import { makeAwsClients } from '../../src/aws/clients.js';
import { claim, claimNext, poolMachines, poolSettings, readyMachines, shuffled } from '../../src/pool.js';
import { useLab } from '../../test/lab/use-lab.js';

const lab = useLab();

const ids = (json: string | undefined) => JSON.parse(json ?? '[]') as string[];
const tag = (i: Instance | undefined, k: string) => i?.Tags?.find((t) => t.Key === k)?.Value;

/** The lab's AWS endpoint and keys for in-process SDK clients; returns what undoes it. */
function useLabAws(): () => void {
  const env = lab.env();
  const saved = { ...process.env };
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: env.AWS_ENDPOINT_URL,
    AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY,
  });
  return () => {
    process.env = saved;
  };
}

async function instances(idList: string[]): Promise<Instance[]> {
  if (idList.length === 0) return [];
  return (
    (await lab.ec2.send(new DescribeInstancesCommand({ InstanceIds: idList }))).Reservations?.flatMap(
      (r) => r.Instances ?? [],
    ) ?? []
  );
}

/** Pool claims: a pool machine's JIT parameter, /spot-runner/jit/pool-<pool>/<instance-id>. */
async function claimParams(): Promise<string[]> {
  const out = await lab.ssm.send(
    new DescribeParametersCommand({
      ParameterFilters: [{ Key: 'Path', Option: 'Recursive', Values: ['/spot-runner/jit'] }],
    }),
  );
  return (out.Parameters ?? []).map((p) => p.Name ?? '').filter((n) => /^\/spot-runner\/jit\/pool-[^/]+\/i-/.test(n));
}

describe('warm pool', () => {
  it('fill → stopped at the checkpoint → claim → resume → one job → terminated; zero leaks', async () => {
    const fill = await lab.pool('lab', 2);
    expect(fill.errors).toEqual([]);
    expect(fill.exitCode).toBe(0);
    const ready = ids(fill.outputs['pool-ready']);
    if (ready.length !== 2)
      throw new Error(
        fill.stdout + lab.sim.describe() + [...lab.sim.instances.values()].map((i) => i.console()).join('\n----\n'),
      );
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
      const attr = await lab.ec2.send(
        new DescribeInstanceAttributeCommand({
          InstanceId: i.InstanceId,
          Attribute: 'instanceInitiatedShutdownBehavior',
        }),
      );
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
    // The claim was the JIT config: each machine found it at its first read after the resume.
    expect(
      lab.proxy.calls.filter((c) => c.source === 'instance' && c.action === 'GetParameter' && c.status !== 200),
    ).toEqual([]);
    const stop = await lab.stop(label);
    expect(stop.errors).toEqual([]);
    expect(await claimParams()).toEqual([]);
    await lab.assertNoLeaks();
  }, 120_000);

  it("a slow claimer after the machine consumed its winner's JIT config: EC2 says it was no longer stopped, and the name holds the machine's consumed mark", async () => {
    const fill = await lab.pool('late', 1);
    expect(fill.exitCode).toBe(0);
    const [m = ''] = ids(fill.outputs['pool-ready']);
    const name = `/spot-runner/jit/pool-late/${m}`;
    const restoreEnv = useLabAws();
    try {
      const aws = makeAwsClients('us-east-1');
      // A slow claimer listed the machine while it was still stopped…
      const listed = (await poolMachines(aws, 'late')).filter((i) => i.instanceId === m);
      expect(listed.map((i) => i.state)).toEqual(['stopped']);
      // …meanwhile a start started it, claimed it, and it read that start's JIT config.
      const { main } = await lab.start({ count: '1', pool: 'late' });
      expect(main.exitCode).toBe(0);
      expect(ids(main.outputs['from-pool'])).toEqual([m]);
      // The bootstrap (through the lab's aws shim, to moto) overwrote the parameter with its mark.
      expect(await claimParams()).toEqual([name]);
      const stored = await lab.ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      expect(stored.Parameter?.Value).toMatch(/^consumed:[0-9a-f]{64}$/);
      const logs: string[] = [];
      const got = await claimNext(
        'late',
        listed,
        'claim:late',
        () => ({}),
        { 'spot-runner:label': 'spot-runner-late' },
        {
          aws,
          log: (l) => logs.push(l),
          onClaimParameter: () => undefined,
          onInstance: () => undefined,
        },
      );
      expect(got).toEqual({});
      expect(logs.join('\n')).toMatch(/was already (pending|running) \(another start's\)/);
      // Even a claimer that got past StartInstances (had EC2 said stopped twice) loses the name now.
      expect(await claim(aws, name, 'bGF0ZQ==', {}, { secret: true })).toBe('lost');
      const [i] = await instances([m]);
      expect(tag(i, 'spot-runner:label')).toBe(main.outputs.label);
      const job = lab.gh.queueJob({ labels: [main.outputs.label ?? ''] });
      await lab.sim.waitAllTerminated(30_000, [m]);
      expect(job.result).toBe('succeeded');
      expect(lab.sim.get(m).reasons).toEqual(['pooled', 'job-done']);
      expect((await lab.stop(main.outputs.label ?? '')).exitCode).toBe(0);
      // Stop removes the mark with its terminated machine.
      expect(await claimParams()).toEqual([]);
    } finally {
      restoreEnv();
    }
    await lab.assertNoLeaks();
  }, 120_000);

  it('mixed: one machine from the pool, two cold, in the same start; zero leaks', async () => {
    const fill = await lab.pool('mix', 1);
    expect(fill.exitCode).toBe(0);
    const [pooled = ''] = ids(fill.outputs['pool-ready']);
    const { main } = await lab.start({ count: '3', pool: 'mix' });
    expect(main.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    const all = ids(main.outputs['instance-ids']);
    expect(all).toHaveLength(3);
    expect(ids(main.outputs['from-pool'])).toEqual([pooled]);
    const runners = JSON.parse(main.outputs.runners ?? '[]') as { instanceId: string; pool?: string }[];
    expect(runners.filter((r) => r.pool === 'mix').map((r) => r.instanceId)).toEqual([pooled]);
    expect(main.summary).toContain('1 of 3 runner(s) resumed from the warm pool, 2 launched cold');
    const label = main.outputs.label ?? '';
    const jobs = all.map((_, k) => lab.gh.queueJob({ labels: [label], id: `mixed-${k}` }));
    await lab.sim.waitAllTerminated(30_000, all);
    expect(jobs.every((j) => j.result === 'succeeded')).toBe(true);
    expect(lab.sim.get(pooled).reasons).toEqual(['pooled', 'job-done']);
    for (const id of all.filter((x) => x !== pooled)) expect(lab.sim.get(id).reasons).toEqual(['job-done']);
    const stop = await lab.stop(label);
    expect(stop.errors).toEqual([]);
    await lab.assertNoLeaks();
  }, 120_000);

  it('stale settings: a start never claims a machine built from other settings; the next fill terminates it', async () => {
    const first = await lab.pool('stale', 1);
    expect(first.exitCode).toBe(0);
    const [old = ''] = ids(first.outputs['pool-ready']);
    // Another bootstrap setting (idle-timeout is in the user-data): another hash.
    const { main } = await lab.start({ count: '1', pool: 'stale', 'idle-timeout': '0.4' });
    expect(main.exitCode).toBe(0);
    expect(ids(main.outputs['from-pool'])).toEqual([]);
    expect(ids(main.outputs['instance-ids'])).not.toContain(old);
    expect(main.stdout).toContain('built from other settings');
    const label = main.outputs.label ?? '';
    lab.gh.queueJob({ labels: [label] });
    await lab.sim.waitAllTerminated(30_000, ids(main.outputs['instance-ids']));
    expect((await lab.stop(label)).exitCode).toBe(0);

    const second = await lab.pool('stale', 1, { 'idle-timeout': '0.4' });
    expect(second.errors).toEqual([]);
    expect(second.exitCode).toBe(0);
    const [fresh = ''] = ids(second.outputs['pool-ready']);
    expect(fresh).not.toBe(old);
    expect(second.summary).toContain('1 stale terminated');
    await lab.sim.waitAllTerminated(30_000, [old]);
    expect(lab.sim.get(old).reasons).toEqual(['pooled']); // never resumed, never ran a job
    expect(lab.sim.get(old).end).toBe('terminated-externally');
    // The fresh machine: taken by a start with the same settings, so the pool ends empty.
    const { main: again } = await lab.start({ count: '1', pool: 'stale', 'idle-timeout': '0.4' });
    expect(ids(again.outputs['from-pool'])).toEqual([fresh]);
    lab.gh.queueJob({ labels: [again.outputs.label ?? ''] });
    await lab.sim.waitAllTerminated(30_000, [fresh]);
    expect((await lab.stop(again.outputs.label ?? '')).exitCode).toBe(0);
    await lab.assertNoLeaks();
  }, 150_000);

  it('reap: pool machines past the pool TTL are terminated (after reap wins their claim), with their claims; zero leaks', async () => {
    const fill = await lab.pool('ttl', 2, { 'pool-ttl': '1' });
    expect(fill.exitCode).toBe(0);
    const machines = ids(fill.outputs['pool-ready']);
    expect(machines).toHaveLength(2);
    // Before the TTL: reap leaves the pool alone.
    const early = await lab.reap();
    expect(early.exitCode).toBe(0);
    expect((await instances(machines)).map((i) => i.State?.Name)).toEqual(['stopped', 'stopped']);
    // Later (the reap's clock moved past the TTL): both go, never having run anything.
    const shift = {
      NODE_OPTIONS: `--import ${fileURLToPath(new URL('../../test/lab/clock-shift.mjs', import.meta.url))}`,
      SPOT_RUNNER_LAB_CLOCK_SHIFT_MS: String(2 * 60_000),
    };
    const late = await lab.reap({}, { env: shift });
    expect(late.errors).toEqual([]);
    expect(late.exitCode).toBe(0);
    const reaped = JSON.parse(late.outputs.reaped ?? '{}') as {
      instances: { id: string; reason: string; outcome: string }[];
    };
    expect(reaped.instances.map((f) => f.id).sort()).toEqual([...machines].sort());
    expect(reaped.instances.every((f) => /TTL passed/.test(f.reason) && f.outcome === 'removed')).toBe(true);
    expect(await claimParams()).toEqual([]);
    await lab.sim.waitAllTerminated(30_000, machines);
    for (const id of machines) expect(lab.sim.get(id).reasons).toEqual(['pooled']);
    await lab.assertNoLeaks();
  }, 120_000);

  it('20 concurrent claimers, a pool of 10: every machine goes to exactly one (SSM PutParameter without overwrite, lost answers included)', async () => {
    const fill = await lab.pool('race', 10);
    expect(fill.exitCode).toBe(0);
    const machines = ids(fill.outputs['pool-ready']);
    if (machines.length !== 10)
      throw new Error(
        `${fill.stdout}\n${[...lab.sim.instances.values()]
          .filter((i) => !machines.includes(i.instanceId))
          .map((i) => i.console())
          .join('\n---\n')}`,
      );
    const aws = makeAwsClients('us-east-1');
    const [ami] = [lab.ami];
    const cfg = lab.startInputs();
    // The same settings the fill used (the lab's start inputs): its hash.
    const hash = poolSettings(
      {
        region: 'us-east-1',
        instanceTypes: ['c7i.large', 'c6i.large'],
        subnetIds: lab.subnets,
        securityGroupIds: [],
        maxLifetimeMinutes: Number(cfg['max-lifetime']),
        idleTimeoutMinutes: Number(cfg['idle-timeout']),
        preRunnerScript: '',
        jobImdsAccess: false,
      },
      { id: ami },
      'race',
    ).hash;
    const restoreEnv = useLabAws();
    try {
      // Each claimer lists the pool, then claims one machine as a start does (claim, start, retag).
      // Its value is no JIT config ("claim:" fails the bootstrap's check): a won machine powers off.
      const claimers = Array.from({ length: 20 }, async (_, k) => {
        const c = makeAwsClients('us-east-1');
        const queue = shuffled(readyMachines(await poolMachines(c, 'race'), hash).ready);
        const r = await claimNext(
          'race',
          queue,
          `claim:race-${k}`,
          () => ({}),
          {
            'spot-runner:label': `spot-runner-race-${k}`,
          },
          { aws: c, log: () => undefined, onClaimParameter: () => undefined, onInstance: () => undefined },
        );
        return r.claimed ? [r.claimed] : [];
      });
      const got = await Promise.all(claimers);
      const taken = got.flat().map((c) => c.instanceId);
      expect(taken).toHaveLength(10);
      expect(new Set(taken).size).toBe(10);
      expect([...taken].sort()).toEqual([...machines].sort());
      expect(got.filter((g) => g.length === 1)).toHaveLength(10);
      // Each machine carries the label of the one claimer that got it.
      for (const i of await instances(taken)) {
        const k = got.findIndex((g) => g[0]?.instanceId === i.InstanceId);
        expect(tag(i, 'spot-runner:label')).toBe(`spot-runner-race-${k}`);
      }
      // The race really raced: losers met machines another claimer had started (StartInstances
      // answered PreviousState pending), so more StartInstances than machines; each winner claimed.
      expect(lab.proxy.accepted('StartInstances', 'action')).toBeGreaterThan(10);
      expect(lab.proxy.count('PutParameter', 'action')).toBeGreaterThanOrEqual(10);
    } finally {
      restoreEnv();
      aws.ec2.destroy();
    }
    // Clean up like stop would: terminate them, then the claims go with them.
    for (const id of machines) await lab.stop('spot-runner-race-none', { 'instance-ids': id });
    await lab.sim.waitAllTerminated(30_000, machines);
    const reap = await lab.reap(
      {},
      {
        env: {
          NODE_OPTIONS: `--import ${fileURLToPath(new URL('../../test/lab/clock-shift.mjs', import.meta.url))}`,
          SPOT_RUNNER_LAB_CLOCK_SHIFT_MS: String(15 * 60_000),
        },
      },
    );
    expect(reap.exitCode).toBe(0);
    await lab.assertNoLeaks();
  }, 180_000);
});
