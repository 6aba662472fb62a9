// Issue 15, parts 1 and 3, through the bundled action: start waits for the machines' own
// `listening` tag (written by the real rendered bootstrap when the lab runner prints "Listening
// for Jobs"), watching EC2 and asking GitHub once; and max-running refuses a start before any
// mutating call, counted at the fault proxy.
import { describe, expect, it } from '@jest/globals';
import { DescribeInstancesCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { useLab } from '../../test/lab/use-lab.js';

const lab = useLab();

const ids = (json: string | undefined) => JSON.parse(json ?? '[]') as string[];
const MUTATING = (action: string) => !/^(Describe|Get|List)/.test(action);

describe('readiness from the instance', () => {
  it('start returns once every machine tagged listening; GitHub is asked only after the last runner connected', async () => {
    const t0 = Date.now();
    const { main } = await lab.start({ count: '2' });
    expect(main.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    const instanceIds = ids(main.outputs['instance-ids']);
    expect(instanceIds).toHaveLength(2);
    // No job queued yet: each machine's last phase is the one the bootstrap wrote on "Listening for Jobs".
    const described =
      (await lab.ec2.send(new DescribeInstancesCommand({ InstanceIds: instanceIds }))).Reservations?.flatMap(
        (r) => r.Instances ?? [],
      ) ?? [];
    expect(described.map((i) => i.Tags?.find((t) => t.Key === 'spot-runner:phase')?.Value)).toEqual([
      'listening',
      'listening',
    ]);
    // The runner version came from the listener's own line, as the summary shows it.
    expect(described.map((i) => i.Tags?.find((t) => t.Key === 'spot-runner:runner-version')?.Value)).toEqual([
      '2.330.0',
      '2.330.0',
    ]);
    // GitHub's runner reads during start: the token check (list, per_page 1) and the one
    // confirmation, which came after both runners connected; nothing while they booted.
    const lastConnect = Math.max(...instanceIds.map((id) => lab.sim.get(id).connectedAt ?? Infinity));
    const reads = lab.gh.requests.filter(
      (q) => q.at >= t0 && (q.operation === 'list-runners' || q.operation === 'get-runner'),
    );
    expect(reads.map((q) => q.operation)).toEqual(['list-runners', 'list-runners']);
    expect(reads[1]?.at).toBeGreaterThanOrEqual(lastConnect);
    // EC2 was watched by label, by the action (the instances' own calls are the bootstrap's).
    expect(lab.proxy.count('DescribeInstances', 'action')).toBeGreaterThanOrEqual(1);
    expect(lab.proxy.count('CreateTags', 'instance')).toBeGreaterThanOrEqual(2 * 4); // booting, fingerprint, runner-started, listening (+ version)
    const stop = await lab.stop(main.outputs.label ?? '');
    expect(stop.exitCode).toBe(0);
    await lab.assertNoLeaks();
  }, 90_000);
});

describe('admission control (max-running)', () => {
  it('refuses a start over the cap with both numbers, and makes no mutating call at all', async () => {
    // Two live managed machines of another run, launched straight at moto (not through the proxy).
    const ami = (await lab.ssm.send(new GetParameterCommand({ Name: '/spot-runner/ami/base/x86_64' }))).Parameter
      ?.Value;
    await lab.ec2.send(
      new RunInstancesCommand({
        ImageId: ami,
        InstanceType: 'c7i.large',
        MinCount: 2,
        MaxCount: 2,
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: 'spot-runner:managed', Value: 'true' },
              { Key: 'spot-runner:label', Value: 'spot-runner-other-run' },
            ],
          },
        ],
      }),
    );
    lab.proxy.reset();
    const t0 = Date.now();
    const { main, post } = await lab.start({ count: '2', 'max-running': '3' });
    expect(main.exitCode).toBe(1);
    expect(main.errors.join('\n')).toMatch(
      /Input 'max-running': 2 managed machine\(s\) are already live in us-east-1 and this start asks for 2; 2 \+ 2 = 4 is over the cap of 3\. Fix: /,
    );
    // Zero mutating calls by the action (main and post alike), as the proxy recorded them.
    const actionCalls = lab.proxy.calls.filter((c) => c.source === 'action');
    expect(actionCalls.length).toBeGreaterThan(0);
    expect(actionCalls.filter((c) => MUTATING(c.action)).map((c) => c.action)).toEqual([]);
    expect(lab.gh.requests.filter((q) => q.at >= t0 && q.method !== 'GET')).toEqual([]);
    expect(post === undefined || post.exitCode === 0).toBe(true);
    expect(lab.proxy.fleets).toEqual([]);
  }, 60_000);

  it('admits a start that fits the cap', async () => {
    const { main } = await lab.start({ count: '1', 'max-running': '1' });
    expect(main.exitCode).toBe(0);
    expect(main.stdout).toContain('Admitted: 0 managed machine(s) live in us-east-1 + 1 ≤ max-running 1');
    const stop = await lab.stop(main.outputs.label ?? '');
    expect(stop.exitCode).toBe(0);
    await lab.assertNoLeaks();
  }, 90_000);
});
