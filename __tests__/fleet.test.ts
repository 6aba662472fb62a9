// src/aws/fleet.ts on its own (mutation testing, docs/testing.md): the retry schedule for a
// template CreateFleet does not know yet, how EC2's answer is read, and what each shortfall says.
// EC2 answers are written out literally, in CreateFleet's response shape.
import { describe, expect, it } from '@jest/globals';
import { createFleet, describeErrors, fleetRequest, isPoolError, launch, type RetryOptions } from '../src/aws/fleet.js';
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
