// Fault matrix (issue 4), the kill paths that need no control plane: 7 (no job: idle-timeout),
// 8 (a hung job: the max-lifetime deadline), and the last resort, 10 (the stop job never runs
// and the machine is frozen: a scheduled reap removes everything once the TTL has passed).
import { describe, expect, it } from '@jest/globals';
import { fileURLToPath } from 'node:url';
import { useLab } from '../../test/lab/use-lab.js';

const lab = useLab();

const ids = (json: string | undefined) => JSON.parse(json ?? '[]') as string[];
// Boot + the first spot/idle check + power-off + the simulator's terminate.

describe('fault matrix: on-instance watchdogs', () => {
  it('7. a job never arrives: the instance powers itself off at idle-timeout', async () => {
    const idleMs = 0.1 * 60_000;
    const { main } = await lab.start({ count: '1', 'idle-timeout': '0.1', 'max-lifetime': '1' });
    expect(main.exitCode).toBe(0);
    const [id = ''] = ids(main.outputs['instance-ids']);
    await lab.sim.waitAllTerminated(idleMs + 20_000);
    const i = lab.sim.get(id);
    expect(i.powerOffReason).toBe('idle-timeout');
    expect(i.end).toBe('power-off');
    expect(i.jobStartedAt).toBeUndefined();
    // the reason names the path; how long it took would measure the machine
    // the runner that never ran a job stays registered (offline) until stop removes it
    expect(lab.gh.runners.size).toBe(1);
    const stop = await lab.stop(main.outputs.label ?? '');
    expect(stop.errors).toEqual([]);
    expect(stop.exitCode).toBe(0);
    await lab.assertNoLeaks();
  }, 60_000);

  it('8. a job hangs: the max-lifetime deadline powers the instance off', async () => {
    const lifeMs = 0.2 * 60_000;
    lab.sim.behaviour = { jobMs: 'hang' };
    const { main } = await lab.start({ count: '1', 'idle-timeout': '0.1', 'max-lifetime': '0.2' });
    expect(main.exitCode).toBe(0);
    const [id = ''] = ids(main.outputs['instance-ids']);
    const job = lab.gh.queueJob({ labels: [main.outputs.label ?? ''] });
    await lab.sim.waitAllTerminated(lifeMs + 20_000);
    const i = lab.sim.get(id);
    expect(i.jobStartedAt).toBeDefined();
    expect(i.powerOffReason).toBe('max-lifetime');
    expect(job.result).toMatch(/^failed/);
    const stop = await lab.stop(main.outputs.label ?? '');
    expect(stop.errors).toEqual([]);
    expect(stop.exitCode).toBe(0);
    await lab.assertNoLeaks();
  }, 60_000);
});

describe('fault matrix: reap, the last resort', () => {
  const shiftEnv = (minutes: number) => ({
    NODE_OPTIONS: `--import ${fileURLToPath(new URL('../../test/lab/clock-shift.mjs', import.meta.url))}`,
    SPOT_RUNNER_LAB_CLOCK_SHIFT_MS: String(minutes * 60_000),
  });

  it('10. the stop job never runs and the machine is frozen: reap removes everything once the TTL has passed', async () => {
    const { main } = await lab.start({ count: '2', 'max-lifetime': '1', 'idle-timeout': '0.5' });
    expect(main.exitCode).toBe(0);
    const label = main.outputs.label ?? '';
    for (const id of ids(main.outputs['instance-ids'])) lab.sim.freeze(id);

    // A reap before the TTL (launch + max-lifetime) has passed leaves the run alone.
    const early = await lab.reap();
    expect(early.errors).toEqual([]);
    expect(early.exitCode).toBe(0);
    const kept = await lab.leaks();
    expect(kept.instances).toHaveLength(2);
    expect(kept.launchTemplates).toHaveLength(1);
    const earlyAt = Date.now();

    // The scheduled reap, 15 minutes later (this process's clock only; moto's dates are real).
    const late = await lab.reap({}, { env: shiftEnv(15) });
    expect(late.errors).toEqual([]);
    expect(late.exitCode).toBe(0);
    expect(late.stdout).toContain(`spot-runner:expires-at`);
    await lab.sim.waitAllTerminated(10_000);
    for (const i of lab.sim.instances.values()) {
      expect(i.end).toBe('terminated-externally');
      // bound of this path: alive until the reap after the TTL, not before
      expect(i.terminatedAt).toBeGreaterThanOrEqual(earlyAt);
    }
    // The runners of the machines reap terminated went in the same run: nothing waits for a next reap.
    expect(late.stdout).toContain(label);
    expect(lab.gh.runners.size).toBe(0);
    await lab.assertNoLeaks();
  }, 90_000);
});
