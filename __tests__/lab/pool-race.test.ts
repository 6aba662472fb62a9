// The warm pool's race (issue 16): 20 starts at once, each of one runner, from one pool of 10,
// all through the bundled action, with the lab's default realism (SSM's PutParameter limit and
// lost answers, eventual consistency). No machine may go to two starts; the ten that get none
// launch cold; every job runs; nothing is left.
import { describe, expect, it } from '@jest/globals';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { useLab } from '../../test/lab/use-lab.js';

const lab = useLab();
const ids = (json: string | undefined) => JSON.parse(json ?? '[]') as string[];

describe('warm pool: 20 concurrent starts, a pool of 10', () => {
  it('no machine is given to two starts; the shortfall launches cold; zero leaks', async () => {
    // Runners wait for their jobs until all 20 starts are back: longer idle-timeout (pool and
    // starts alike: it is part of the settings hash).
    const slow = { 'idle-timeout': '4', 'max-lifetime': '8' };
    const fill = await lab.pool('race', 10, slow);
    expect(fill.exitCode).toBe(0);
    const pool = ids(fill.outputs['pool-ready']);
    expect(pool).toHaveLength(10);

    const runs = await Promise.all(
      Array.from({ length: 20 }, (_, k) =>
        lab.start(
          { count: '1', pool: 'race', 'wait-timeout': '3', ...slow },
          { env: { GITHUB_RUN_ID: String(5000 + k) }, timeoutMs: 300_000 },
        ),
      ),
    );
    for (const { main } of runs) expect({ exit: main.exitCode, errors: main.errors }).toEqual({ exit: 0, errors: [] });
    const fromPool = runs.flatMap(({ main }) => ids(main.outputs['from-pool']));
    const all = runs.flatMap(({ main }) => ids(main.outputs['instance-ids']));
    // Every pool machine went to exactly one start; no instance appears in two starts.
    expect(new Set(fromPool).size).toBe(fromPool.length);
    expect(new Set(all).size).toBe(20);
    expect(fromPool.every((id) => pool.includes(id))).toBe(true);
    // Every start that saw a machine ready tried it until it won one, so all ten went out.
    expect([...fromPool].sort()).toEqual([...pool].sort());
    // EC2 agrees: each pool machine carries the label of the one start that reported it.
    const tagged =
      (await lab.ec2.send(new DescribeInstancesCommand({ InstanceIds: fromPool }))).Reservations?.flatMap(
        (r) => r.Instances ?? [],
      ) ?? [];
    for (const i of tagged) {
      const owners = runs.filter(({ main }) => ids(main.outputs['from-pool']).includes(i.InstanceId ?? ''));
      expect(owners).toHaveLength(1);
      expect(i.Tags?.find((t) => t.Key === 'spot-runner:label')?.Value).toBe(owners[0]?.main.outputs.label);
    }

    const jobs = runs.map(({ main }) => lab.gh.queueJob({ labels: [main.outputs.label ?? ''] }));
    await lab.sim.waitAllTerminated(120_000, all);
    expect(jobs.map((j) => j.result)).toEqual(jobs.map(() => 'succeeded'));
    for (const id of all) expect(lab.sim.get(id).reasons.at(-1)).toBe('job-done');
    for (const { main } of runs) expect((await lab.stop(main.outputs.label ?? '')).exitCode).toBe(0);
    await lab.assertNoLeaks();
  }, 600_000);
});
