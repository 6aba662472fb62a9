// src/aws/fleet.ts on its own (mutation testing, docs/testing.md): the retry schedule for a
// template CreateFleet does not know yet, how EC2's answer is read, and what each shortfall says.
// EC2 answers are written out literally, in CreateFleet's response shape.
import { describe, expect, it } from '@jest/globals';
import {
  DEFAULT_RETRY,
  allPools,
  createFleet,
  describeErrors,
  fleetRequest,
  isPoolError,
  launch,
  launchTemplateRequest,
  overrides,
  type RetryOptions,
} from '../src/aws/fleet.js';
import { FakeAws, awsError } from '../test/fakes/aws.js';
import { startConfig } from '../test/fakes/harness.js';

const notFound = () =>
  awsError(
    'InvalidLaunchTemplateId.NotFound',
    'The specified launch template, with template ID lt-0123456789abcdef0, does not exist.',
  );

function retry(budget: number) {
  const sleeps: number[] = [];
  const r: RetryOptions = { sleep: async (ms) => void sleeps.push(ms), templateBudgetMs: budget };
  return { r, sleeps };
}

describe('createFleet', () => {
  it('retries a template EC2 does not know yet, doubling from 250 ms up to 4 s, until the budget is spent', async () => {
    const aws = new FakeAws().on('CreateFleet', () => {
      throw notFound();
    });
    const { r, sleeps } = retry(30_000);
    await expect(
      createFleet(aws.clients(), fleetRequest(startConfig(), 'lt-0123456789abcdef0', 'spot', 1, 't', {}), undefined, r),
    ).rejects.toThrow(/InvalidLaunchTemplateId.NotFound|does not exist/);
    expect(sleeps).toEqual([250, 500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000]);
    expect(aws.count('CreateFleet')).toBe(12);
  });

  it('sends the same request again (ClientToken included) and reads the answer once the template is known', async () => {
    const aws = new FakeAws().on('CreateFleet', (_input, call) => {
      if (call < 3) throw awsError('InvalidLaunchTemplateName.NotFound', 'not yet');
      return {
        Instances: [
          {
            InstanceIds: ['i-0123456789abcdef0', 'i-0123456789abcdef1'],
            InstanceType: 'c7i.large',
            Lifecycle: 'spot',
            LaunchTemplateAndOverrides: {
              Overrides: { InstanceType: 'c7i.large', SubnetId: 'subnet-0123abcd', AvailabilityZone: 'us-east-1a' },
            },
          },
          {
            InstanceIds: ['i-0123456789abcdef2'],
            LaunchTemplateAndOverrides: { Overrides: { InstanceType: 'c6i.large' } },
          },
        ],
        Errors: [
          {
            ErrorCode: 'InsufficientInstanceCapacity',
            ErrorMessage: 'no room',
            Lifecycle: 'on-demand',
            LaunchTemplateAndOverrides: { Overrides: { InstanceType: 'c6i.large', SubnetId: 'subnet-0123abce' } },
          },
          {},
        ],
      };
    });
    const { r, sleeps } = retry(30_000);
    const out = await createFleet(
      aws.clients(),
      fleetRequest(startConfig(), 'lt-0123456789abcdef0', 'spot', 3, 'tok-1', {}),
      undefined,
      r,
    );
    expect(sleeps).toEqual([250, 500]);
    expect(aws.calls.map((c) => c.input.ClientToken)).toEqual(['tok-1', 'tok-1', 'tok-1']);
    expect(out).toEqual({
      instances: [
        {
          instanceId: 'i-0123456789abcdef0',
          instanceType: 'c7i.large',
          subnetId: 'subnet-0123abcd',
          availabilityZone: 'us-east-1a',
          market: 'spot',
        },
        {
          instanceId: 'i-0123456789abcdef1',
          instanceType: 'c7i.large',
          subnetId: 'subnet-0123abcd',
          availabilityZone: 'us-east-1a',
          market: 'spot',
        },
        {
          instanceId: 'i-0123456789abcdef2',
          instanceType: 'c6i.large',
          subnetId: undefined,
          availabilityZone: undefined,
          market: 'spot',
        },
      ],
      errors: [
        {
          code: 'InsufficientInstanceCapacity',
          message: 'no room',
          instanceType: 'c6i.large',
          subnetId: 'subnet-0123abce',
          market: 'on-demand',
        },
        { code: 'Unknown', message: '', instanceType: undefined, subnetId: undefined, market: 'spot' },
      ],
    });
  });

  it('does not retry any other error', async () => {
    const aws = new FakeAws().on('CreateFleet', () => {
      throw awsError('InvalidParameterValue', 'bad');
    });
    const { r, sleeps } = retry(30_000);
    await expect(
      createFleet(aws.clients(), fleetRequest(startConfig(), 'lt-1', 'on-demand', 1, 't', {}), undefined, r),
    ).rejects.toThrow('bad');
    expect(sleeps).toEqual([]);
    expect(aws.count('CreateFleet')).toBe(1);
  });
});

describe('describeErrors and isPoolError', () => {
  it('names code, market, type and subnet when known', () => {
    expect(
      describeErrors([
        {
          code: 'InsufficientInstanceCapacity',
          message: 'no room',
          instanceType: 'c7i.large',
          subnetId: 'subnet-0123abcd',
          market: 'spot',
        },
        { code: 'Unsupported', message: 'not here', market: 'on-demand' },
      ]),
    ).toBe(
      'InsufficientInstanceCapacity (spot c7i.large in subnet-0123abcd): no room; Unsupported (on-demand): not here',
    );
    expect(isPoolError('Unsupported')).toBe(true);
    expect(isPoolError('InsufficientInstanceCapacity')).toBe(true);
    expect(isPoolError('InvalidParameterValue')).toBe(false);
  });
});

describe('launch: each shortfall says what happened and what to change', () => {
  const answer = (launched: string[], errors: { ErrorCode: string; ErrorMessage: string }[] = []) => ({
    Instances: launched.length > 0 ? [{ InstanceIds: launched, InstanceType: 'c7i.large', Lifecycle: 'spot' }] : [],
    Errors: errors.map((e) => ({
      ...e,
      Lifecycle: 'spot',
      LaunchTemplateAndOverrides: { Overrides: { InstanceType: 'c7i.large' } },
    })),
  });
  const run = (cfgOver: Record<string, string>, handler: (input: Record<string, unknown>, call: number) => unknown) => {
    const aws = new FakeAws().on('CreateFleet', handler);
    const seen: string[][] = [];
    const logs: string[] = [];
    const p = launch(
      aws.clients(),
      startConfig(cfgOver),
      'lt-1',
      {},
      (purpose) => `tok-${purpose}`,
      (l) => seen.push(l.map((i) => i.instanceId)),
      (l) => logs.push(l),
      undefined,
      undefined,
      retry(1000).r,
    );
    return { aws, seen, logs, p };
  };

  it('with fallback off: not enough spot capacity, and how to get more', async () => {
    const { p, seen } = run({ 'on-demand-fallback': 'false' }, () =>
      answer(['i-0123456789abcdef0'], [{ ErrorCode: 'InsufficientInstanceCapacity', ErrorMessage: 'no room' }]),
    );
    await expect(p).rejects.toThrow(
      'Not enough spot capacity: launched 1 of 2: InsufficientInstanceCapacity (spot c7i.large): no room. Set on-demand-fallback: true, or add instance types or subnets.',
    );
    expect(seen).toEqual([['i-0123456789abcdef0']]);
  });

  it('on-demand short without an error given', async () => {
    const { p } = run({ market: 'on-demand' }, () => answer([]));
    await expect(p).rejects.toThrow(
      'Not enough on-demand capacity: launched 0 of 2: no error was given. Add instance types or subnets.',
    );
  });

  it('a request error is not a shortfall: no fallback', async () => {
    const { p, aws } = run({}, () =>
      answer(['i-0123456789abcdef0'], [{ ErrorCode: 'InvalidParameterValue', ErrorMessage: 'bad subnet' }]),
    );
    await expect(p).rejects.toThrow('EC2 Fleet launched 1 of 2: InvalidParameterValue (spot c7i.large): bad subnet');
    expect(aws.count('CreateFleet')).toBe(1);
  });

  it('a whole-call error that is not about capacity is thrown as it is', async () => {
    const { p, aws } = run({}, () => {
      throw awsError('UnauthorizedOperation', 'You are not authorized');
    });
    await expect(p).rejects.toThrow('You are not authorized');
    expect(aws.count('CreateFleet')).toBe(1);
  });

  it('fills the missing count on demand, says so, and fails if even that comes up short', async () => {
    const { p, aws, logs, seen } = run({ count: '3' }, (_i, call) =>
      call === 1
        ? answer(['i-0123456789abcdef0'])
        : { Instances: [{ InstanceIds: ['i-0123456789abcdef1'], InstanceType: 'c7i.large', Lifecycle: 'on-demand' }] },
    );
    await expect(p).rejects.toThrow('Launched 2 of 3 even with on-demand fallback: no error given');
    expect(logs).toEqual(['Spot capacity short by 2 (no error given); launching 2 on-demand']);
    expect(aws.calls.map((c) => c.input.ClientToken)).toEqual(['tok-spot', 'tok-on-demand']);
    expect(seen).toEqual([['i-0123456789abcdef0'], ['i-0123456789abcdef1']]);
  });

  it('returns at most count instances', async () => {
    const { p } = run({}, () => answer(['i-0123456789abcdef0', 'i-0123456789abcdef1', 'i-0123456789abcdef2']));
    expect((await p).instances.map((i) => i.instanceId)).toEqual(['i-0123456789abcdef0', 'i-0123456789abcdef1']);
  });

  it('exact-type refuses another type, after reporting it for rollback', async () => {
    const { p, seen } = run({ 'instance-types': 'c6i.large', 'exact-type': 'true' }, () =>
      answer(['i-0123456789abcdef0', 'i-0123456789abcdef1']),
    );
    await expect(p).rejects.toThrow(
      'exact-type: EC2 launched i-0123456789abcdef0 as c7i.large, i-0123456789abcdef1 as c7i.large, not c6i.large; rolling back',
    );
    expect(seen).toEqual([['i-0123456789abcdef0', 'i-0123456789abcdef1']]);
  });
});

describe('the requests, written out', () => {
  const image = { id: 'ami-0123456789abcdef0', arch: 'x86_64' as const, rootDeviceName: '/dev/sda1' };

  it('the launch template: encrypted gp3 root, IMDSv2, terminate on power-off, tags on instance and volume', () => {
    const req = launchTemplateRequest(
      startConfig({
        'volume-size': '40',
        'instance-profile': 'arn:aws:iam::123456789012:instance-profile/spot-runner',
        'security-group-ids': 'sg-0123456789abcdef0',
      }),
      image,
      'spot-runner-x',
      '#!/bin/bash\n',
      { a: 'b' },
      'tok-lt',
    );
    expect(req).toEqual({
      LaunchTemplateName: 'spot-runner-x',
      ClientToken: 'tok-lt',
      TagSpecifications: [{ ResourceType: 'launch-template', Tags: [{ Key: 'a', Value: 'b' }] }],
      LaunchTemplateData: {
        ImageId: 'ami-0123456789abcdef0',
        UserData: 'IyEvYmluL2Jhc2gK',
        InstanceInitiatedShutdownBehavior: 'terminate',
        MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' },
        BlockDeviceMappings: [
          {
            DeviceName: '/dev/sda1',
            Ebs: { Encrypted: true, DeleteOnTermination: true, VolumeType: 'gp3', VolumeSize: 40 },
          },
        ],
        IamInstanceProfile: { Arn: 'arn:aws:iam::123456789012:instance-profile/spot-runner' },
        SecurityGroupIds: ['sg-0123456789abcdef0'],
        TagSpecifications: [
          { ResourceType: 'instance', Tags: [{ Key: 'a', Value: 'b' }] },
          { ResourceType: 'volume', Tags: [{ Key: 'a', Value: 'b' }] },
        ],
      },
    });
  });

  it('the launch template without the optional parts: no size, profile by name, no security groups', () => {
    const data = launchTemplateRequest(
      startConfig({ 'instance-profile': 'spot-runner' }),
      image,
      'n',
      '',
      {},
      't',
    ).LaunchTemplateData!;
    expect(data.BlockDeviceMappings).toEqual([
      { DeviceName: '/dev/sda1', Ebs: { Encrypted: true, DeleteOnTermination: true, VolumeType: 'gp3' } },
    ]);
    expect(data.IamInstanceProfile).toEqual({ Name: 'spot-runner' });
    expect(Object.keys(data)).not.toContain('SecurityGroupIds');
    expect(
      Object.keys(launchTemplateRequest(startConfig(), image, 'n', '', {}, 't').LaunchTemplateData!),
    ).not.toContain('IamInstanceProfile');
  });

  it('one override per type and subnet, in order of preference; none names a subnet when none is given', () => {
    const two = startConfig({ 'subnet-ids': 'subnet-0123abcd, subnet-0123abce', 'max-spot-price': '0.05' });
    expect(allPools(two)).toEqual([
      { instanceType: 'c7i.large', priority: 0, subnetId: 'subnet-0123abcd' },
      { instanceType: 'c7i.large', priority: 0, subnetId: 'subnet-0123abce' },
      { instanceType: 'c6i.large', priority: 1, subnetId: 'subnet-0123abcd' },
      { instanceType: 'c6i.large', priority: 1, subnetId: 'subnet-0123abce' },
    ]);
    expect(overrides(two, 'spot').slice(0, 1)).toEqual([
      { InstanceType: 'c7i.large', Priority: 0, SubnetId: 'subnet-0123abcd', MaxPrice: '0.05' },
    ]);
    // The price cap is a spot setting: on-demand overrides carry none.
    expect(overrides(two, 'on-demand').slice(0, 1)).toEqual([
      { InstanceType: 'c7i.large', Priority: 0, SubnetId: 'subnet-0123abcd' },
    ]);
    expect(allPools(startConfig())).toEqual([
      { instanceType: 'c7i.large', priority: 0 },
      { instanceType: 'c6i.large', priority: 1 },
    ]);
    expect(overrides(startConfig(), 'spot')).toEqual([
      { InstanceType: 'c7i.large', Priority: 0 },
      { InstanceType: 'c6i.large', Priority: 1 },
    ]);
  });

  it('the fleet request: instant, the ClientToken, the tags in the request, the target per market', () => {
    const cfg = startConfig();
    expect(fleetRequest(cfg, 'lt-1', 'on-demand', 3, 'tok', { a: 'b' })).toEqual({
      Type: 'instant',
      ClientToken: 'tok',
      TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'a', Value: 'b' }] }],
      TargetCapacitySpecification: {
        TotalTargetCapacity: 3,
        DefaultTargetCapacityType: 'on-demand',
        OnDemandTargetCapacity: 3,
      },
      SpotOptions: { AllocationStrategy: 'price-capacity-optimized' },
      OnDemandOptions: { AllocationStrategy: 'prioritized' },
      LaunchTemplateConfigs: [
        {
          LaunchTemplateSpecification: { LaunchTemplateId: 'lt-1', Version: '$Latest' },
          Overrides: [
            { InstanceType: 'c7i.large', Priority: 0 },
            { InstanceType: 'c6i.large', Priority: 1 },
          ],
        },
      ],
    });
    expect(fleetRequest(cfg, 'lt-1', 'spot', 2, 'tok', {}).TargetCapacitySpecification).toEqual({
      TotalTargetCapacity: 2,
      DefaultTargetCapacityType: 'spot',
      SpotTargetCapacity: 2,
    });
  });
});

describe('createFleet: the edges', () => {
  it('stops retrying once the waits reach the budget exactly', async () => {
    const aws = new FakeAws().on('CreateFleet', () => {
      throw notFound();
    });
    const { r, sleeps } = retry(750);
    await expect(
      createFleet(aws.clients(), fleetRequest(startConfig(), 'lt-1', 'spot', 1, 't', {}), undefined, r),
    ).rejects.toThrow(/does not exist/);
    expect(sleeps).toEqual([250, 500]);
    expect(aws.count('CreateFleet')).toBe(3);
  });

  it('an answer without Lifecycle is in the market the request asked for', async () => {
    const aws = new FakeAws().on('CreateFleet', () => ({
      Instances: [{ InstanceIds: ['i-0123456789abcdef0'] }],
      Errors: [{ ErrorCode: 'InsufficientInstanceCapacity', ErrorMessage: 'no room' }],
    }));
    const out = await createFleet(
      aws.clients(),
      fleetRequest(startConfig(), 'lt-1', 'on-demand', 2, 't', {}),
      undefined,
      retry(0).r,
    );
    expect(out).toEqual({
      instances: [
        {
          instanceId: 'i-0123456789abcdef0',
          instanceType: '',
          subnetId: undefined,
          availabilityZone: undefined,
          market: 'on-demand',
        },
      ],
      errors: [
        {
          code: 'InsufficientInstanceCapacity',
          message: 'no room',
          instanceType: undefined,
          subnetId: undefined,
          market: 'on-demand',
        },
      ],
    });
    // A request that names no market is read as spot (ours always names one).
    const bare = await createFleet(
      aws.clients(),
      { Type: 'instant', LaunchTemplateConfigs: [], TargetCapacitySpecification: { TotalTargetCapacity: 1 } },
      undefined,
      retry(0).r,
    );
    expect(bare.instances.map((i) => i.market)).toEqual(['spot']);
    expect(bare.errors.map((e) => e.market)).toEqual(['spot']);
  });

  it('an answer with a spot Lifecycle is spot even for an on-demand request', async () => {
    const aws = new FakeAws().on('CreateFleet', () => ({
      Instances: [{ InstanceIds: ['i-0123456789abcdef0'], Lifecycle: 'spot' }],
      Errors: [{ ErrorCode: 'x', Lifecycle: 'spot' }],
    }));
    const out = await createFleet(aws.clients(), fleetRequest(startConfig(), 'lt-1', 'on-demand', 1, 't', {}));
    expect(out.instances.map((i) => i.market)).toEqual(['spot']);
    expect(out.errors.map((e) => e.market)).toEqual(['spot']);
  });

  it('the default retry waits for real, and an abort ends the wait with its reason', async () => {
    expect(DEFAULT_RETRY.templateBudgetMs).toBe(30_000);
    await expect(DEFAULT_RETRY.sleep(1)).resolves.toBeUndefined();
    const ac = new AbortController();
    const p = DEFAULT_RETRY.sleep(60_000, ac.signal);
    ac.abort(new Error('cancelled'));
    await expect(p).rejects.toThrow('cancelled');
  });
});

describe('launch: exact-type and the on-demand fill', () => {
  const cfgOf = (o: Record<string, string>) => startConfig(o);
  it('exact-type accepts an answer that names no type, and refuses a wrong type in the on-demand fill', async () => {
    const aws = new FakeAws().on('CreateFleet', (_i, call) =>
      call === 1
        ? { Instances: [{ InstanceIds: ['i-0123456789abcdef0'] }] }
        : { Instances: [{ InstanceIds: ['i-0123456789abcdef1'], InstanceType: 'c7i.large', Lifecycle: 'on-demand' }] },
    );
    const seen: string[][] = [];
    await expect(
      launch(
        aws.clients(),
        cfgOf({ 'instance-types': 'c6i.large', 'exact-type': 'true' }),
        'lt-1',
        {},
        (p) => p,
        (l) => seen.push(l.map((i) => i.instanceId)),
        () => {},
        undefined,
        undefined,
        retry(0).r,
      ),
    ).rejects.toThrow('exact-type: EC2 launched i-0123456789abcdef1 as c7i.large, not c6i.large; rolling back');
    expect(seen).toEqual([['i-0123456789abcdef0'], ['i-0123456789abcdef1']]);
  });

  it('a whole-call capacity error falls back to on-demand, naming the error', async () => {
    const aws = new FakeAws().on('CreateFleet', (_i, call) => {
      if (call === 1) throw awsError('InsufficientInstanceCapacity', 'no spot room');
      return { Instances: [{ InstanceIds: ['i-0123456789abcdef0', 'i-0123456789abcdef1'], Lifecycle: 'on-demand' }] };
    });
    const logs: string[] = [];
    const out = await launch(
      aws.clients(),
      cfgOf({}),
      'lt-1',
      {},
      (p) => p,
      () => {},
      (l) => logs.push(l),
      undefined,
      undefined,
      retry(0).r,
    );
    expect(out.instances.map((i) => [i.instanceId, i.market])).toEqual([
      ['i-0123456789abcdef0', 'on-demand'],
      ['i-0123456789abcdef1', 'on-demand'],
    ]);
    expect(out.errors).toEqual([{ code: 'InsufficientInstanceCapacity', message: 'no spot room', market: 'spot' }]);
    expect(logs).toEqual([
      'Spot capacity short by 2 (InsufficientInstanceCapacity (spot): no spot room); launching 2 on-demand',
    ]);
  });
});
