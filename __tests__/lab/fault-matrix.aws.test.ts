// Fault matrix, AWS behaviours (issue 11): each behaviour the lab's proxy enforces by default
// (docs/platform-behaviours.md, "AWS"), survived by the bundled action with nothing left behind.
import { describe, expect, it } from '@jest/globals';
import { CreateSubnetCommand, DescribeVpcsCommand } from '@aws-sdk/client-ec2';
import { useLab } from '../../test/lab/use-lab.js';

const lab = useLab({ simulator: { pollMs: 300 } });

async function stopClean(label: string) {
  const stop = await lab.stop(label);
  expect(stop.errors).toEqual([]);
  expect(stop.exitCode).toBe(0);
  await lab.sim.waitAllTerminated(20_000);
  await lab.assertNoLeaks();
  return stop;
}

describe('fault matrix: EC2 eventual consistency', () => {
  it('a start whose template and instances are unknown for a moment (the defaults) succeeds; CreateFleet was retried with one ClientToken', async () => {
    const { main } = await lab.start({ count: '2' });
    expect(main.errors).toEqual([]);
    const fleets = lab.proxy.calls.filter((c) => c.action === 'CreateFleet' && c.source === 'action');
    expect(fleets.filter((c) => c.status === 400).length).toBeGreaterThanOrEqual(1);
    expect(lab.proxy.fleets).toHaveLength(1);
    await stopClean(main.outputs.label ?? '');
  }, 90_000);

  it('a cancel 2 s after the launch, with an 8 s window: every launched instance is terminated', async () => {
    lab.proxy.setRealism({ instanceMs: 8_000 });
    // A real machine takes far longer than 2 s to bring its runner online: the start is still waiting.
    lab.sim.behaviour = { boot: 'never' };
    const launched = new Promise<void>((resolve) => lab.proxy.onFleet(() => resolve())).then(
      () => new Promise((r) => setTimeout(r, 2_000)),
    );
    const { main, post } = await lab.start({ count: '3', 'wait-timeout': '1' }, { cancelWhen: launched });
    expect(main.stdout).toMatch(/Received SIGINT: cancelling start/);
    // Describe listed none of them at the cancel: the recorded ids went to TerminateInstances,
    // met NotFound, and were retried until EC2 knew them.
    expect(lab.proxy.calls.some((c) => c.action === 'TerminateInstances' && c.fault === 'not-yet-visible')).toBe(true);
    expect(`${main.errors.join('\n')}\n${post?.stdout ?? ''}`).toMatch(/terminated 3 instance/);
    await lab.sim.waitAllTerminated(20_000);
    await lab.assertNoLeaks();
  }, 120_000);
});

describe('fault matrix: capacity pools', () => {
  it('two subnets in one AZ: start keeps one, says which it left out, and launches', async () => {
    const vpc = (await lab.ec2.send(new DescribeVpcsCommand({}))).Vpcs?.[0]?.VpcId ?? '';
    const extra =
      (
        await lab.ec2.send(
          new CreateSubnetCommand({ VpcId: vpc, CidrBlock: '172.31.201.0/24', AvailabilityZone: 'us-east-1a' }),
        )
      ).Subnet?.SubnetId ?? '';
    const { main } = await lab.start({ count: '2', 'subnet-ids': [...lab.subnets, extra].join(',') });
    expect(main.errors).toEqual([]);
    expect(main.stdout).toMatch(new RegExp(`subnets ${extra} left out: us-east-1a already has`));
    expect(
      lab.proxy.calls.filter((c) => c.action === 'CreateFleet' && c.status === 400 && c.fault === undefined).length,
    ).toBeLessThanOrEqual(2);
    await stopClean(main.outputs.label ?? '');
  }, 90_000);

  it('a type not offered in one AZ: that pool is left out before the launch; with none left, start fails before any mutating call', async () => {
    lab.proxy.setRealism({ notOffered: ['c7i.large@us-east-1b'] });
    const { main } = await lab.start({ count: '2' });
    expect(main.errors).toEqual([]);
    expect(main.stdout).toMatch(/pools left out because EC2 does not offer them: c7i.large in us-east-1b/);
    await stopClean(main.outputs.label ?? '');

    lab.proxy.setRealism({
      notOffered: ['c7i.large@us-east-1a', 'c7i.large@us-east-1b', 'c6i.large@us-east-1a', 'c6i.large@us-east-1b'],
    });
    const calls = lab.proxy.calls.length;
    const none = await lab.start({ count: '1' });
    expect(none.main.exitCode).not.toBe(0);
    expect(none.main.errors.join('\n')).toMatch(/Input 'instance-types'.*offers none of the types/);
    expect(lab.proxy.calls.slice(calls).filter((c) => /^(Create|Put|Run|Terminate|Delete)/.test(c.action))).toEqual([]);
    await lab.assertNoLeaks();
  }, 120_000);
});

describe('fault matrix: SSM', () => {
  it('a lost PutParameter answer (on by default) is taken for success after the read-back', async () => {
    lab.proxy.setRealism({ losePutEvery: 2 });
    const { main } = await lab.start({ count: '3' });
    expect(main.errors).toEqual([]);
    // Every 2nd PutParameter call (retries included) is carried out and its answer lost.
    const lost = lab.proxy.calls.filter((c) => c.fault === 'lost-answer').length;
    expect(lost).toBeGreaterThanOrEqual(1);
    // The image parameter, plus one read-back per lost answer.
    expect(lab.proxy.count('GetParameter', 'action')).toBe(1 + lost);
    await stopClean(main.outputs.label ?? '');
  }, 90_000);
});

describe('fault matrix: cost', () => {
  it('on-demand cost from the Price List; when it cannot be reached, the summary names the bundled table', async () => {
    const { main } = await lab.start({ count: '1', market: 'on-demand' });
    expect(main.errors).toEqual([]);
    const stop = await stopClean(main.outputs.label ?? '');
    expect(lab.proxy.count('GetProducts', 'action')).toBe(1);
    expect(stop.summary).toMatch(/price-list/);
    expect(stop.summary).toMatch(/GitHub-hosted larger runners with the same cores/);
    expect(stop.summary).not.toMatch(/bundled/);

    lab.proxy.inject({ action: 'GetProducts', fault: { kind: 'server-error', status: 503 }, times: Infinity });
    const again = await lab.start({ count: '1', market: 'on-demand' });
    expect(again.main.errors).toEqual([]);
    const stop2 = await stopClean(again.main.outputs.label ?? '');
    expect(stop2.summary).toMatch(/bundled us-east-1 table, not the AWS Price List/);
  }, 120_000);
});
