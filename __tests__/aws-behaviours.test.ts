// The AWS behaviours of docs/platform-behaviours.md ("AWS"), against the in-memory world: each
// test names the behaviour and fails on the product as it was before it was handled.
import { describe, expect, it } from '@jest/globals';
import { Pacer } from '../src/aws/params.js';
import { estimateCost, timeWeighted } from '../src/aws/pricing.js';
import { stop } from '../src/modes/stop.js';
import { offlineGitHub } from '../test/fakes/github.js';
import { awsError } from '../test/fakes/aws.js';
import { rig, runStart, stopConfig, type Rig } from '../test/fakes/harness.js';
import { TAGS } from '../src/tags.js';

offlineGitHub();

const SUBNET = (n: number) => `subnet-0000000000000000${n}`;

function expectNothingLeft(r: Rig) {
  expect(r.world.live()).toHaveLength(0);
  expect(r.world.params.size).toBe(0);
  expect(r.world.templates.size).toBe(0);
  expect(r.github.runners.size).toBe(0);
}

describe('EC2 eventual consistency', () => {
  it('a launched instance Describe does not list yet is pending, not gone; its parameter still carries the right instance ARN (from STS)', async () => {
    const r = rig({}, { world: { instanceLooks: 6 } });
    const res = await runStart(r, { count: '2' });
    expect(res.runners).toHaveLength(2);
    expect(r.world.count('GetCallerIdentity')).toBe(1);
    for (const [name, p] of r.world.params)
      expect(p.tags[TAGS.instanceArn]).toBe(`arn:aws:ec2:us-east-1:123456789012:instance/${name.split('/').pop()}`);
    expect(r.world.params.size).toBe(2);
  });

  it('a rollback right after the launch terminates every recorded instance, though Describe lists none of them yet', async () => {
    const r = rig({}, { world: { instanceLooks: 4 } });
    r.world.on('PutParameter', () => {
      throw awsError('AccessDeniedException', 'not allowed: ssm:PutParameter');
    });
    await expect(runStart(r, { count: '3' })).rejects.toThrow(/rolled back: terminated 3 instance/);
    expectNothingLeft(r);
    // The first TerminateInstances met NotFound and was retried (backoff, not "already gone").
    expect(r.world.count('TerminateInstances')).toBeGreaterThanOrEqual(2);
  });

  it('CreateFleet is retried with the same ClientToken while the new launch template is not known yet', async () => {
    const r = rig({}, { world: { templateLooks: 2 } });
    await runStart(r, { count: '1' });
    const tokens = r.world.calls.filter((c) => c.command === 'CreateFleet').map((c) => c.input.ClientToken);
    expect(tokens).toHaveLength(3);
    expect(new Set(tokens).size).toBe(1);
    expect(r.world.fleetsAccepted).toHaveLength(1);
  });

  it('gives up on an unknown template after its budget, and rolls back', async () => {
    const r = rig(
      { retry: { sleep: async () => undefined, templateBudgetMs: 1_000 } },
      { world: { templateLooks: 1_000 } },
    );
    await expect(runStart(r, { count: '1' })).rejects.toThrow(/InvalidLaunchTemplateId.NotFound|does not exist/);
    expectNothingLeft(r);
  });
});

describe('SSM lost answers', () => {
  it('ParameterAlreadyExists after a lost answer is success once the value is ours', async () => {
    const r = rig({}, { world: { losePutEvery: 1 } });
    const res = await runStart(r, { count: '2' });
    expect(res.runners).toHaveLength(2);
    // Each put: the call (its answer lost), then one read-back of the value.
    expect(r.world.count('GetParameter')).toBe(2);
  });

  it('after a lost answer, a parameter its machine has already read and deleted is success too', async () => {
    const r = rig({}, { world: { losePutEvery: 0 } });
    r.world.on('PutParameter', (input) => {
      // Stored, read and deleted by the machine (whose runner then connected and which tagged
      // itself listening) before the SDK's retry came back.
      r.github.connect(String(input.Value));
      r.world.setPhase(String(input.Name).split('/').pop() ?? '', 'listening');
      throw awsError('ParameterAlreadyExists', 'The parameter already exists.');
    });
    const res = await runStart(r, { count: '2' });
    expect(res.runners).toHaveLength(2);
    expect(r.world.count('GetParameter')).toBe(2);
  });

  it('a parameter of the same name holding another value is an error, not success', async () => {
    const r = rig({}, { world: { losePutEvery: 0 } });
    r.world.on('PutParameter', (input) => {
      r.world.addParameter(input.Name as string, new Date(), 'somebody-elses-config');
      throw awsError('ParameterAlreadyExists', 'The parameter already exists.');
    });
    await expect(runStart(r, { count: '1' })).rejects.toThrow(/already exists with another value/);
    expectNothingLeft(r);
  });

  it('paces PutParameter: one start stays inside a 3/s account limit without a single throttle', async () => {
    const r = rig({ pacer: new Pacer(2.5, 2) }, { world: { putPerSecond: 3, losePutEvery: 0 } });
    await runStart(r, { count: '8' });
    expect(r.world.count('PutParameter')).toBe(8);
  }, 20_000);

  it('the pacer spaces calls at its rate after a burst, counted on a fake clock', async () => {
    let t = 0;
    const slept: number[] = [];
    const p = new Pacer(
      2,
      2,
      () => t,
      async (ms) => {
        slept.push(ms);
        t += ms;
      },
    );
    for (let k = 0; k < 5; k++) await p.take();
    expect(slept).toEqual([500, 500, 500]);
  });
});

describe('capacity pools', () => {
  it('keeps one subnet per AZ (EC2 Fleet refuses duplicate pools) and says which it left out', async () => {
    const r = rig();
    r.world.subnets.set(SUBNET(1), 'us-east-1a').set(SUBNET(2), 'us-east-1a').set(SUBNET(3), 'us-east-1b');
    await runStart(r, { count: '1', 'subnet-ids': [1, 2, 3].map(SUBNET).join(',') });
    const ov =
      (
        r.world.fleetsAccepted[0]?.input.LaunchTemplateConfigs as {
          Overrides: { SubnetId: string; InstanceType: string }[];
        }[]
      )[0]?.Overrides ?? [];
    expect(new Set(ov.map((o) => o.SubnetId))).toEqual(new Set([SUBNET(1), SUBNET(3)]));
    expect(r.logs.join('\n')).toMatch(new RegExp(`subnets ${SUBNET(2)} left out: us-east-1a already has ${SUBNET(1)}`));
  });

  it('drops (type, AZ) pools EC2 does not offer, and fails before any mutating call when none is left', async () => {
    const r = rig();
    r.world.subnets.set(SUBNET(1), 'us-east-1a').set(SUBNET(3), 'us-east-1b');
    r.world.notOffered.add('c7i.large@us-east-1b');
    await runStart(r, { count: '1', 'subnet-ids': `${SUBNET(1)},${SUBNET(3)}` });
    const ov =
      (
        r.world.fleetsAccepted[0]?.input.LaunchTemplateConfigs as {
          Overrides: { SubnetId: string; InstanceType: string }[];
        }[]
      )[0]?.Overrides ?? [];
    expect(ov.map((o) => `${o.InstanceType}@${o.SubnetId}`)).toEqual([
      `c7i.large@${SUBNET(1)}`,
      `c6i.large@${SUBNET(1)}`,
      `c6i.large@${SUBNET(3)}`,
    ]);
    expect(r.logs.join('\n')).toMatch(/pools left out because EC2 does not offer them: c7i.large in us-east-1b/);

    const none = rig();
    none.world.subnets.set(SUBNET(3), 'us-east-1b');
    none.world.notOffered.add('c7i.large@us-east-1b').add('c6i.large@us-east-1b');
    await expect(runStart(none, { count: '1', 'subnet-ids': SUBNET(3) })).rejects.toThrow(
      /Input 'instance-types'.*offers none of the types.*us-east-1b/,
    );
    expect(none.world.mutating()).toHaveLength(0);
  });

  it('Unsupported is a per-pool error: the on-demand fallback still happens', async () => {
    const r = rig();
    r.world.fleet = (req) => {
      const spec = req.TargetCapacitySpecification as {
        TotalTargetCapacity: number;
        DefaultTargetCapacityType: string;
      };
      if (spec.DefaultTargetCapacityType === 'spot')
        return { launch: [], errors: [{ code: 'Unsupported', type: 'c7i.large', market: 'spot' }] };
      return {
        launch: Array.from({ length: spec.TotalTargetCapacity }, () => ({ type: 'c7i.large', market: 'on-demand' })),
      };
    };
    const res = await runStart(r, { count: '2' });
    expect(res.runners.map((x) => x.market)).toEqual(['on-demand', 'on-demand']);
  });

  it('allocation-strategy reaches the spot fleet; on-demand stays prioritized', async () => {
    const r = rig();
    await runStart(r, { count: '1', 'allocation-strategy': 'capacity-optimized-prioritized' });
    expect(r.world.fleetsAccepted[0]?.input).toMatchObject({
      SpotOptions: { AllocationStrategy: 'capacity-optimized-prioritized' },
      OnDemandOptions: { AllocationStrategy: 'prioritized' },
    });
  });
});

describe('exact-type', () => {
  it('is an input error together with several instance types', async () => {
    const r = rig();
    await expect(runStart(r, { 'exact-type': 'true' })).rejects.toThrow(/Input 'exact-type'.*lists 2/);
  });

  it('refuses (and rolls back) an instance of any other type, the on-demand fallback included', async () => {
    const r = rig();
    r.world.fleet = (req) => {
      const spec = req.TargetCapacitySpecification as {
        TotalTargetCapacity: number;
        DefaultTargetCapacityType: string;
      };
      if (spec.DefaultTargetCapacityType === 'spot')
        return { launch: [], errors: [{ code: 'InsufficientInstanceCapacity', market: 'spot' }] };
      return { launch: [{ type: 'c6i.large', market: 'on-demand' }] };
    };
    await expect(runStart(r, { count: '1', 'instance-types': 'c7i.large', 'exact-type': 'true' })).rejects.toThrow(
      /exact-type: EC2 launched .* as c6i.large, not c7i.large/,
    );
    expectNothingLeft(r);
    const ov =
      (r.world.fleetsAccepted[1]?.input.LaunchTemplateConfigs as { Overrides: { InstanceType: string }[] }[])[0]
        ?.Overrides ?? [];
    expect(ov.map((o) => o.InstanceType)).toEqual(['c7i.large']);
  });
});

describe('stop', () => {
  it('waits until EC2 reports the instances terminated, not just shutting-down', async () => {
    const r = rig();
    const res = await runStart(r, { count: '2' });
    const out = await stop(stopConfig({ label: res.label }), {
      aws: r.deps.aws,
      gh: r.deps.gh,
      log: () => undefined,
      terminateWaitSeconds: 5,
      terminatePollSeconds: 1,
    });
    expect(out.report.terminated).toHaveLength(2);
    expect([...r.world.instances.values()].map((i) => i.State.Name)).toEqual(['terminated', 'terminated']);
  }, 15_000);
});

describe('cost', () => {
  const H = 3_600_000;
  it('spot is time-weighted over price changes, not an average of them', () => {
    const t0 = new Date(Date.UTC(2026, 0, 1));
    const at = (h: number) => new Date(t0.getTime() + h * H);
    // 0.10 in force before launch, 0.20 from 1 h in, 0.40 for the last 6 minutes of a 2 h life.
    const avg = timeWeighted(
      [
        { at: at(-5), price: 0.1 },
        { at: at(1), price: 0.2 },
        { at: at(1.9), price: 0.4 },
      ],
      at(0),
      at(2),
    );
    expect(avg).toBeCloseTo((0.1 * 1 + 0.2 * 0.9 + 0.4 * 0.1) / 2, 10);
  });

  it('on-demand from the Price List, the bundled table only as a named fallback; EBS and the GitHub-hosted comparison', async () => {
    const r = rig();
    const launched = new Date(Date.now() - 2 * H);
    const id = r.world.addInstance('spot-runner-1-1-aaaaaa-00000000', launched, {}, { InstanceType: 'c7i.large' });
    const info = {
      instanceId: id,
      state: 'running',
      instanceType: 'c7i.large',
      availabilityZone: 'us-east-1a',
      market: 'on-demand' as const,
      launchTime: launched,
      tags: {},
    };
    const now = new Date(launched.getTime() + 2 * H);
    const fromList = await estimateCost(r.deps.aws, [info], now, {
      region: 'us-east-1',
      volumeGiB: new Map([[id, 73]]),
    });
    expect(fromList.lines[0]?.priceSource).toBe('price-list');
    // 2 h × $0.0893 (the fake Price List) + 73 GiB × $0.08/GB-month × 2/730 h.
    expect(fromList.total).toBeCloseTo(2 * 0.0893 + (73 * 0.08 * 2) / 730, 8);
    expect(fromList.lines[0]?.githubHosted).toEqual({ label: 'Linux 2-core', cost: 120 * 0.006 });
    expect(fromList.notes.join('\n')).not.toMatch(/bundled/);

    r.world.on('GetProducts', () => {
      throw awsError('AccessDeniedException', 'not authorized to perform: pricing:GetProducts');
    });
    const fallback = await estimateCost(r.deps.aws, [info], now, { region: 'us-east-1' });
    expect(fallback.lines[0]?.priceSource).toBe('bundled-table');
    expect(fallback.total).toBeCloseTo(2 * 0.08925, 8);
    expect(fallback.notes.join('\n')).toMatch(/bundled us-east-1 table.*pricing:GetProducts/);
  });
});
