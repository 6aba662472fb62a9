// Fault matrix (issue 4), the launch: 2 (capacity: next type, on-demand fallback for the missing
// count only, fallback off) and 3 (a throttling storm, and a CreateFleet whose answer is lost:
// the SDK's retry must not launch twice). The AWS fault proxy plays EC2's capacity and
// ClientToken idempotency (moto has neither); see test/lab/aws-proxy.ts.
import { describe, expect, it } from '@jest/globals';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { useLab } from '../../test/lab/use-lab.js';

const lab = useLab();

interface Row {
  instanceId: string;
  instanceType: string;
  market: string;
}
const rows = (json: string | undefined) => JSON.parse(json ?? '[]') as Row[];

async function instancesOf(label: string) {
  const out = await lab.ec2.send(
    new DescribeInstancesCommand({ Filters: [{ Name: 'tag:spot-runner:label', Values: [label] }] }),
  );
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

/** Stop, then the end state: every instance was terminated from outside (by stop), nothing left. */
async function stopAndCheck(label: string) {
  const stop = await lab.stop(label);
  expect(stop.errors).toEqual([]);
  expect(stop.exitCode).toBe(0);
  await lab.sim.waitAllTerminated(10_000);
  for (const i of lab.sim.instances.values()) {
    expect(i.end).toBe('terminated-externally');
  }
  await lab.assertNoLeaks();
}

describe('fault matrix: capacity', () => {
  it('2a. no spot capacity for the first type: the fleet launches the second type, as spot', async () => {
    lab.proxy.setCapacity({ noSpotTypes: ['c7i.large'] });
    const { main } = await lab.start({ count: '2' });
    expect(main.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    const r = rows(main.outputs.runners);
    expect(r.map((x) => `${x.instanceType} ${x.market}`)).toEqual(['c6i.large spot', 'c6i.large spot']);
    expect(lab.proxy.accepted('CreateFleet', 'action')).toBe(1);
    expect((await instancesOf(main.outputs.label ?? '')).map((i) => i.InstanceType)).toEqual([
      'c6i.large',
      'c6i.large',
    ]);
    await stopAndCheck(main.outputs.label ?? '');
  }, 60_000);

  it('2b. no spot at all beyond one: on-demand fills exactly the missing count', async () => {
    lab.proxy.setCapacity({ spotAvailable: 1 });
    const { main } = await lab.start({ count: '3' });
    expect(main.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    expect(
      rows(main.outputs.runners)
        .map((x) => x.market)
        .sort(),
    ).toEqual(['on-demand', 'on-demand', 'spot']);
    expect(lab.proxy.fleets.map((f) => `${f.market}:${f.instanceIds.length}`)).toEqual(['spot:1', 'on-demand:2']);
    expect(main.stdout).toMatch(/Spot capacity short by 2 .*InsufficientInstanceCapacity.*launching 2 on-demand/);
    const lifecycles = (await instancesOf(main.outputs.label ?? ''))
      .map((i) => i.InstanceLifecycle ?? 'on-demand')
      .sort();
    expect(lifecycles).toEqual(['on-demand', 'on-demand', 'spot']);
    await stopAndCheck(main.outputs.label ?? '');
  }, 60_000);

  it('2c. no spot and on-demand-fallback off: a clean failure that names the cause, and nothing left', async () => {
    lab.proxy.setCapacity({ spotAvailable: 0 });
    const { main, post } = await lab.start({ count: '2', 'on-demand-fallback': 'false' });
    expect(main.exitCode).toBe(1);
    expect(main.errors.join('\n')).toMatch(
      /Not enough spot capacity: launched 0 of 2: InsufficientInstanceCapacity.*on-demand-fallback: true/,
    );
    expect(post?.exitCode).toBe(0);
    expect(lab.proxy.accepted('CreateFleet', 'action')).toBe(1);
    expect(lab.sim.instances.size).toBe(0);
    // The JIT configs are issued alongside the launch; start's rollback deregistered both.
    expect(lab.gh.calls['generate-jitconfig']).toBe(2);
    expect(lab.gh.calls['delete-runner']).toBeGreaterThanOrEqual(2);
    expect(main.stdout).toMatch(/Rollback: deleted 2 runner\(s\)/);
    await lab.assertNoLeaks();
  }, 60_000);
});

describe('fault matrix: throttling', () => {
  it('3. a throttling storm on CreateFleet and Describe*, and a lost CreateFleet answer: retried, no duplicate instances', async () => {
    lab.proxy.inject({ action: 'CreateFleet', fault: { kind: 'throttle' }, times: 3, source: 'action' });
    // the 4th attempt reaches EC2 and launches, but its answer is lost: the SDK retries the same ClientToken
    lab.proxy.inject({ action: 'CreateFleet', fault: { kind: 'lose-response' }, times: 1, source: 'action' });
    lab.proxy.inject({ action: 'DescribeInstances', fault: { kind: 'throttle' }, times: 4, source: 'action' });
    lab.proxy.inject({ action: 'DescribeImages', fault: { kind: 'throttle' }, times: 2, source: 'action' });
    lab.proxy.inject({ action: 'DescribeInstanceTypes', fault: { kind: 'throttle' }, times: 2, source: 'action' });
    lab.proxy.inject({ action: 'PutParameter', fault: { kind: 'throttle' }, times: 2, source: 'action' });
    const { main } = await lab.start({ count: '2' });
    expect(main.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    const fleetCalls = lab.proxy.calls.filter((c) => c.action === 'CreateFleet').map((c) => c.fault ?? c.status);
    expect(fleetCalls).toEqual(['throttle', 'throttle', 'throttle', 'lose-response', 'replay']);
    // EC2 launched once: exactly the 2 instances the outputs name, no orphan from the retried call
    expect(lab.proxy.fleets).toHaveLength(1);
    const launched = (await instancesOf(main.outputs.label ?? '')).map((i) => i.InstanceId).sort();
    expect(launched).toEqual([...(JSON.parse(main.outputs['instance-ids'] ?? '[]') as string[])].sort());
    expect(launched).toHaveLength(2);
    expect(lab.proxy.calls.filter((c) => c.fault === 'throttle').length).toBeGreaterThanOrEqual(10);
    await stopAndCheck(main.outputs.label ?? '');
  }, 90_000);
});
