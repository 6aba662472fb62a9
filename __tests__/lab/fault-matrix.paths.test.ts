// Fault matrix (issue 4), the normal and the spot paths: 1 (happy path), 9 (spot interruption
// mid-job), 11 (stop twice, stop after reap). Real parts only: the bundled action, the real
// rendered user-data run by the instance simulator, the AWS SDK against moto (through the
// fault proxy), the OpenAPI-checked GitHub stand-in.
import { describe, expect, it } from '@jest/globals';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useLab } from '../../test/lab/use-lab.js';

const lab = useLab();

const ids = (json: string | undefined) => JSON.parse(json ?? '[]') as string[];

describe('fault matrix: normal and spot paths', () => {
  it('1. happy path: count=3, a job runs on each runner, stop removes every trace', async () => {
    const { main, post } = await lab.start({ count: '3' });
    expect(main.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    expect(post).toBeUndefined();
    const label = main.outputs.label ?? '';
    const instanceIds = ids(main.outputs['instance-ids']);
    expect(instanceIds).toHaveLength(3);
    // Every runner was online when start returned: the simulator booted the real user-data.
    for (const id of instanceIds) expect(lab.sim.get(id).connectedAt).toBeLessThanOrEqual(Date.now());

    const jobs = instanceIds.map((_, k) => lab.gh.queueJob({ labels: [label], id: `build-${k}` }));
    await lab.sim.waitAllTerminated(30_000);
    // Each job ran on its own runner, on its own instance, which then powered off by itself.
    expect(jobs.every((j) => j.result === 'succeeded')).toBe(true);
    expect(new Set(jobs.map((j) => j.runnerId)).size).toBe(3);
    for (const id of instanceIds) {
      const i = lab.sim.get(id);
      expect(i.powerOffReason).toBe('job-done');
      expect(i.end).toBe('power-off');
    }
    const tagged =
      (await lab.ec2.send(new DescribeInstancesCommand({ InstanceIds: instanceIds }))).Reservations?.flatMap(
        (r) => r.Instances ?? [],
      ) ?? [];
    expect(tagged.map((i) => i.Tags?.find((t) => t.Key === 'spot-runner:phase')?.Value)).toEqual([
      'shutting-down',
      'shutting-down',
      'shutting-down',
    ]);
    // No secret reached a file in any sandbox (user-data, logs, runner dir, console).
    expect(lab.sim.filesContaining([...lab.gh.issuedSecrets, lab.gh.token])).toEqual([]);
    // Each instance read its own parameter and deleted it.
    expect(lab.proxy.count('GetParameter', 'instance')).toBeGreaterThanOrEqual(3);
    expect(lab.proxy.count('DeleteParameter', 'instance')).toBe(3);

    const stop = await lab.stop(label);
    expect(stop.errors).toEqual([]);
    expect(stop.exitCode).toBe(0);
    expect(stop.outputs.interrupted).toBe('false');
    await lab.assertNoLeaks();
  }, 90_000);

  it('9. spot interruption mid-job: hooks run, the marker is written, the job sees it, stop reports interrupted=true', async () => {
    const noticeMs = 3000;
    lab.sim.behaviour = {
      jobMs: 'hang',
      interruptionHooks: {
        '10-checkpoint':
          'printf "%s\\n" "$SPOT_RUNNER_INTERRUPTION_NOTICE" >"$(dirname "$0")/../../../../out/checkpoint-hook-ran"',
      },
    };
    const { main } = await lab.start({ count: '1', 'max-lifetime': '1', 'idle-timeout': '0.5' });
    expect(main.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    const label = main.outputs.label ?? '';
    const [id = ''] = ids(main.outputs['instance-ids']);
    const job = lab.gh.queueJob({ labels: [label] });
    const inst = lab.sim.get(id);
    await lab.sim.waitFor('the job to start', () => inst.jobStartedAt !== undefined, 20_000);

    await lab.sim.spotNotice(id, noticeMs);
    // The bootstrap saw the notice through IMDSv2, ran the hook, wrote the marker; the job saw it.
    expect(existsSync(join(inst.paths.out, 'checkpoint-hook-ran'))).toBe(true);
    expect(readFileSync(join(inst.paths.root, 'run', 'spot-runner', 'interrupted'), 'utf8')).toContain(
      '"action":"terminate"',
    );
    expect(inst.jobSawInterruption).toBeDefined();
    expect(inst.console()).toContain('spot interruption notice');
    expect(inst.end).toBe('spot-interruption');
    // the order of the spot path: the notice, then EC2's reclaim; the bootstrap did not power off first
    expect(inst.spotNoticeAt).toBeDefined();
    expect(inst.terminatedAt ?? 0).toBeGreaterThan(inst.spotNoticeAt ?? Infinity);
    expect(job.result).toMatch(/^failed/);
    // moto cannot set StateReason: `interrupted` comes from the phase tag the instance wrote.
    const tags =
      (await lab.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations?.[0]?.Instances?.[0]
        ?.Tags ?? [];
    expect(tags.find((t) => t.Key === 'spot-runner:phase')?.Value).toMatch(/^interrupted/);

    const stop = await lab.stop(label);
    expect(stop.errors).toEqual([]);
    expect(stop.exitCode).toBe(0);
    expect(stop.outputs.interrupted).toBe('true');
    await lab.assertNoLeaks();
  }, 90_000);

  it('11. stop twice, and stop after reap: both succeed without errors', async () => {
    const a = await lab.start({ count: '2' });
    expect(a.main.exitCode).toBe(0);
    const labelA = a.main.outputs.label ?? '';
    const first = await lab.stop(labelA);
    const second = await lab.stop(labelA);
    for (const s of [first, second]) {
      expect(s.errors).toEqual([]);
      expect(s.exitCode).toBe(0);
    }
    expect(second.outputs.interrupted).toBe('false');
    await lab.sim.waitAllTerminated(10_000);
    await lab.assertNoLeaks();

    const b = await lab.start({ count: '1' });
    expect(b.main.exitCode).toBe(0);
    const labelB = b.main.outputs.label ?? '';
    // The reap that ran first: max-age 0 with confirm (everything spot-runner made goes).
    const reap = await lab.reap({ 'max-age': '0', confirm: 'everything' });
    expect(reap.errors).toEqual([]);
    expect(reap.exitCode).toBe(0);
    await lab.sim.waitAllTerminated(10_000);
    const after = await lab.stop(labelB);
    expect(after.errors).toEqual([]);
    expect(after.exitCode).toBe(0);
    for (const i of lab.sim.instances.values()) expect(i.end).toBe('terminated-externally');
    await lab.assertNoLeaks();
  }, 90_000);
});
