// Fault matrix (issue 4), 12: a matrix of concurrent starts, each with count 1, on one account
// and one repository, with EC2 throttling some of them. Every job must run on its own leg's
// runner (no label theft), EC2 must launch exactly one instance per leg (no over-provisioning),
// and no start may fail from throttling. SPOT_RUNNER_LAB_MATRIX sets the width (default 20).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { startLab, type Lab } from '../../test/lab/lab.js';

const WIDTH = Number(process.env.SPOT_RUNNER_LAB_MATRIX) || 20;
let lab: Lab;
beforeAll(async () => {
  lab = await startLab({ simulator: { pollMs: 300 } });
}, 60_000);
afterAll(async () => {
  await lab?.close();
});

describe('fault matrix: scale', () => {
  it(`12. ${WIDTH} concurrent starts: one runner each, every job on its own runner, no over-provisioning, no throttling failure`, async () => {
    lab.proxy.inject({ action: 'CreateFleet', fault: { kind: 'throttle' }, times: 6, source: 'action' });
    lab.proxy.inject({ action: 'DescribeInstances', fault: { kind: 'throttle' }, times: 10, source: 'action' });
    lab.proxy.inject({ action: 'CreateLaunchTemplate', fault: { kind: 'throttle' }, times: 4, source: 'action' });
    lab.proxy.inject({ action: 'DescribeInstances', fault: { kind: 'latency', ms: 300 }, times: 20, source: 'action' });
    const t0 = Date.now();
    // Matrix legs share the run, the attempt and the job name: only the label's random part differs.
    const legs = await Promise.all(
      Array.from({ length: WIDTH }, (_, k) =>
        lab.start(
          { count: '1', 'wait-timeout': '2', 'idle-timeout': '1.5', 'max-lifetime': '3' },
          { env: { MATRIX_LEG: String(k) }, timeoutMs: 240_000 },
        ),
      ),
    );
    const startMs = Date.now() - t0;
    const failed = legs.filter((l) => l.main.exitCode !== 0).map((l) => l.main.errors.join(' | '));
    expect(failed).toEqual([]);
    const labels = legs.map((l) => l.main.outputs.label ?? '');
    expect(new Set(labels).size).toBe(WIDTH);
    expect(lab.proxy.fleets).toHaveLength(WIDTH);
    expect(lab.proxy.fleets.every((f) => f.instanceIds.length === 1)).toBe(true);
    const all =
      (await lab.ec2.send(new DescribeInstancesCommand({}))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    expect(all).toHaveLength(WIDTH);
    expect(lab.proxy.calls.filter((c) => c.fault === 'throttle').length).toBe(20);

    // One job per leg, queued at once: each must land on its own leg's runner.
    const jobs = labels.map((label) => ({ label, job: lab.gh.queueJob({ labels: [label] }) }));
    await lab.sim.waitAllTerminated(90_000);
    for (const { label, job } of jobs) {
      expect(job.result).toBe('succeeded');
      expect(job.runnerName?.startsWith(`${label}-`)).toBe(true);
    }
    expect(new Set(jobs.map((j) => j.job.runnerId)).size).toBe(WIDTH);
    for (const i of lab.sim.instances.values()) expect(i.powerOffReason).toBe('job-done');

    const stops = await Promise.all(labels.map((label) => lab.stop(label, {}, { timeoutMs: 240_000 })));
    expect(stops.filter((s) => s.exitCode !== 0).map((s) => s.errors.join(' | '))).toEqual([]);
    await lab.assertNoLeaks();
    console.log(`scenario 12: ${WIDTH} concurrent starts took ${startMs} ms; whole scenario ${Date.now() - t0} ms`);
  }, 300_000);
});
