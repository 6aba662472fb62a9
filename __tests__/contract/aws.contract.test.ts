// One AWS contract for the two test worlds: the in-memory fake (test/fakes/world.ts) and moto
// behind the lab's proxy (test/lab/aws-proxy.ts). Both must behave like EC2 and SSM where the
// product depends on it (docs/platform-behaviours.md, "AWS"), so neither can drift into a kinder
// world. Windows are set small here (the fake counts them in calls, the lab in ms); the tests
// poll and count, they never time.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  CreateFleetCommand,
  CreateLaunchTemplateCommand,
  CreateSubnetCommand,
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstanceTypeOfferingsCommand,
  DescribeInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  DescribeVpcsCommand,
  EC2Client,
  TerminateInstancesCommand,
  type RequestLaunchTemplateData,
  type _InstanceType,
} from '@aws-sdk/client-ec2';
import {
  DeleteParametersCommand,
  DescribeParametersCommand,
  GetParameterCommand,
  ListTagsForResourceCommand,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { AwsFaultProxy } from '../../test/lab/aws-proxy.js';
import { startMoto, type Moto } from '../../test/lab/moto.js';
import { FakeWorld } from '../../test/fakes/world.js';

interface Knobs {
  /** Instances stay unlisted for a while (fake: 3 looks; lab: 300 ms). */
  consistency: boolean;
  template: boolean;
  shuttingDown: boolean;
  putPerSecond: number;
  losePut: boolean;
}

interface World {
  ec2: EC2Client;
  ssm: SSMClient;
  /** The same clients with SDK retries (3 attempts), for the lost-answer case. */
  retrying: { ssm: SSMClient };
  ami: string;
  /** Two subnets in one AZ, and one in another. */
  subnets: { a1: string; a2: string; b: string; azA: string; azB: string };
  set(k: Partial<Knobs>): void;
  notOffered(type: string, az: string): void;
  /** EC2 reclaims a spot instance (not through the API). */
  reclaimSpot(id: string): Promise<void>;
  pause(): Promise<void>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

const IDEAL: Knobs = {
  consistency: false,
  template: false,
  shuttingDown: false,
  putPerSecond: Infinity,
  losePut: false,
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function fakeWorld(): Promise<World> {
  let w = new FakeWorld();
  let knobs = { ...IDEAL };
  const apply = () =>
    w.configure({
      instanceLooks: knobs.consistency ? 3 : 0,
      templateLooks: knobs.template ? 1 : 0,
      shuttingDownLooks: knobs.shuttingDown ? 1 : 0,
      putPerSecond: knobs.putPerSecond,
      losePutEvery: knobs.losePut ? 1 : 0,
    });
  const world: World = {
    ec2: w.clients().ec2,
    ssm: w.clients().ssm,
    retrying: { ssm: w.clients().ssm },
    ami: 'ami-0123456789abcdef0',
    subnets: {
      a1: 'subnet-0000000000000000a',
      a2: 'subnet-0000000000000000b',
      b: 'subnet-0000000000000000c',
      azA: 'us-east-1a',
      azB: 'us-east-1b',
    },
    set(k) {
      knobs = { ...knobs, ...k };
      apply();
    },
    notOffered(type, az) {
      w.notOffered.add(`${type}@${az}`);
    },
    reclaimSpot: async (id) => w.reclaimSpot(id),
    pause: async () => undefined,
    async reset() {
      w = new FakeWorld();
      w.subnets
        .set(world.subnets.a1, 'us-east-1a')
        .set(world.subnets.a2, 'us-east-1a')
        .set(world.subnets.b, 'us-east-1b');
      const c = w.clients();
      Object.assign(world, { ec2: c.ec2, ssm: c.ssm, retrying: { ssm: c.ssm } });
      knobs = { ...IDEAL };
      apply();
    },
    close: async () => undefined,
  };
  return world;
}

async function labWorld(): Promise<World> {
  const moto: Moto = await startMoto();
  const proxy = await AwsFaultProxy.start(moto.endpoint);
  const creds = { accessKeyId: 'testing', secretAccessKey: 'testing' };
  const raw = { region: 'us-east-1', endpoint: proxy.url, credentials: creds, maxAttempts: 1 } as const;
  const direct = new EC2Client({ region: 'us-east-1', endpoint: moto.endpoint, credentials: creds });
  const world: World = {
    ec2: new EC2Client(raw),
    ssm: new SSMClient(raw),
    retrying: { ssm: new SSMClient({ ...raw, maxAttempts: 3, retryMode: 'standard' }) },
    ami: '',
    subnets: { a1: '', a2: '', b: '', azA: '', azB: '' },
    set(k) {
      const r: Parameters<AwsFaultProxy['setRealism']>[0] = {};
      if (k.consistency !== undefined) r.instanceMs = k.consistency ? 300 : 0;
      if (k.template !== undefined) r.templateMs = k.template ? 300 : 0;
      if (k.shuttingDown !== undefined) r.shuttingDownMs = k.shuttingDown ? 300 : 0;
      if (k.putPerSecond !== undefined) r.putPerSecond = k.putPerSecond;
      if (k.losePut !== undefined) r.losePutEvery = k.losePut ? 1 : 0;
      proxy.setRealism(r);
    },
    notOffered(type, az) {
      proxy.setRealism({ notOffered: [...proxy.realism.notOffered, `${type}@${az}`] });
    },
    // As the lab's simulator does it: the reason to the proxy, the termination to moto directly.
    async reclaimSpot(id) {
      proxy.setStateReason(
        id,
        'Server.SpotInstanceTermination',
        'Server.SpotInstanceTermination: Spot instance termination',
      );
      await direct.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    },
    pause: () => sleep(50),
    async reset() {
      await moto.reset();
      proxy.reset();
      world.ami =
        (await direct.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images?.find(
          (i) => i.Architecture === 'x86_64',
        )?.ImageId ?? '';
      const subnets = (await direct.send(new DescribeSubnetsCommand({}))).Subnets ?? [];
      const a = subnets.find((s) => s.AvailabilityZone === 'us-east-1a');
      const b = subnets.find((s) => s.AvailabilityZone === 'us-east-1b');
      const vpc = (await direct.send(new DescribeVpcsCommand({}))).Vpcs?.[0]?.VpcId ?? '';
      const extra = await direct.send(
        new CreateSubnetCommand({ VpcId: vpc, CidrBlock: '172.31.200.0/24', AvailabilityZone: 'us-east-1a' }),
      );
      world.subnets = {
        a1: a?.SubnetId ?? '',
        a2: extra.Subnet?.SubnetId ?? '',
        b: b?.SubnetId ?? '',
        azA: 'us-east-1a',
        azB: 'us-east-1b',
      };
      world.set(IDEAL);
    },
    async close() {
      world.ec2.destroy();
      world.ssm.destroy();
      world.retrying.ssm.destroy();
      direct.destroy();
      await proxy.close();
      await moto.stop();
    },
  };
  return world;
}

async function template(w: World, data: Omit<RequestLaunchTemplateData, 'ImageId'> = {}): Promise<string> {
  const out = await w.ec2.send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: `c-${Math.random().toString(16).slice(2, 10)}`,
      LaunchTemplateData: { ImageId: w.ami, ...data },
    }),
  );
  return out.LaunchTemplate?.LaunchTemplateId ?? '';
}

function fleet(
  lt: string,
  count: number,
  overrides: { InstanceType: string; SubnetId?: string }[],
  token?: string,
  market: 'on-demand' | 'spot' = 'on-demand',
) {
  return new CreateFleetCommand({
    Type: 'instant',
    ...(token ? { ClientToken: token } : {}),
    TargetCapacitySpecification:
      market === 'spot'
        ? { TotalTargetCapacity: count, DefaultTargetCapacityType: 'spot', SpotTargetCapacity: count }
        : { TotalTargetCapacity: count, DefaultTargetCapacityType: 'on-demand', OnDemandTargetCapacity: count },
    LaunchTemplateConfigs: [
      {
        LaunchTemplateSpecification: { LaunchTemplateId: lt, Version: '$Latest' },
        Overrides: overrides.map((o, i) => ({ ...o, InstanceType: o.InstanceType as _InstanceType, Priority: i })),
      },
    ],
  });
}

async function launch(
  w: World,
  count: number,
  o: { market?: 'on-demand' | 'spot'; shutdown?: 'stop' | 'terminate' } = {},
): Promise<string[]> {
  const out = await w.ec2.send(
    fleet(
      await template(w, o.shutdown ? { InstanceInitiatedShutdownBehavior: o.shutdown } : {}),
      count,
      [{ InstanceType: 'c6i.large', SubnetId: w.subnets.a1 }],
      undefined,
      o.market,
    ),
  );
  return (out.Instances ?? []).flatMap((i) => i.InstanceIds ?? []);
}

async function until<T>(w: World, fn: () => Promise<T | undefined>, polls = 100): Promise<{ value: T; polls: number }> {
  for (let n = 1; n <= polls; n++) {
    const v = await fn();
    if (v !== undefined) return { value: v, polls: n };
    await w.pause();
  }
  throw new Error(`not reached after ${polls} polls`);
}

const codeOf = async (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e as { name?: string }).name ?? 'error',
  );
const states = async (w: World, ids: string[]) =>
  ((await w.ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }))).Reservations ?? [])
    .flatMap((r) => r.Instances ?? [])
    .map((i) => i.State?.Name);

describe.each([
  ['in-memory fake', fakeWorld],
  ['moto behind the lab proxy', labWorld],
])('AWS contract: %s', (_name, make) => {
  let w: World;
  beforeAll(async () => {
    w = await make();
  }, 60_000);
  beforeEach(async () => {
    await w.reset();
  });
  afterAll(async () => {
    await w?.close();
  });

  it('NotFound on unknown instance ids, for Describe and Terminate', async () => {
    expect(await codeOf(w.ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] })))).toBe(
      'InvalidInstanceID.NotFound',
    );
    expect(await codeOf(w.ec2.send(new TerminateInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] })))).toBe(
      'InvalidInstanceID.NotFound',
    );
  });

  it('eventual consistency: a launched instance is NotFound by id and absent under filters at first, then listed', async () => {
    w.set({ consistency: true });
    const [id] = await launch(w, 1);
    expect(await codeOf(w.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id as string] })))).toBe(
      'InvalidInstanceID.NotFound',
    );
    const filtered = await w.ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: [id as string] }] }),
    );
    expect(filtered.Reservations ?? []).toEqual([]);
    expect(await codeOf(w.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id as string] })))).toBe(
      'InvalidInstanceID.NotFound',
    );
    const seen = await until(w, async () => ((await states(w, [id as string]).catch(() => []))[0] ? true : undefined));
    expect(seen.polls).toBeGreaterThan(0);
  });

  it('eventual consistency: CreateFleet may not know a launch template just created', async () => {
    w.set({ template: true });
    const lt = await template(w);
    expect(await codeOf(w.ec2.send(fleet(lt, 1, [{ InstanceType: 'c6i.large', SubnetId: w.subnets.a1 }])))).toBe(
      'InvalidLaunchTemplateId.NotFound',
    );
    const ok = await until(
      w,
      async () =>
        (await codeOf(w.ec2.send(fleet(lt, 1, [{ InstanceType: 'c6i.large', SubnetId: w.subnets.a1 }])))) === 'ok' ||
        undefined,
    );
    expect(ok.value).toBe(true);
  });

  it('terminate goes through shutting-down to terminated', async () => {
    w.set({ shuttingDown: true });
    const [id] = await launch(w, 1);
    const out = await w.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id as string] }));
    expect(out.TerminatingInstances?.[0]?.CurrentState?.Name).toBe('shutting-down');
    expect(await states(w, [id as string])).toEqual(['shutting-down']);
    await until(w, async () => ((await states(w, [id as string]))[0] === 'terminated' ? true : undefined));
  });

  it('StateReason: TerminateInstances gives Client.UserInitiatedShutdown; a spot reclaim, Server.SpotInstanceTermination', async () => {
    const [byApi, reclaimed] = await launch(w, 2, { market: 'spot' });
    await w.ec2.send(new TerminateInstancesCommand({ InstanceIds: [byApi as string] }));
    await w.reclaimSpot(reclaimed as string);
    const out = await w.ec2.send(new DescribeInstancesCommand({ InstanceIds: [byApi as string, reclaimed as string] }));
    const reasons = Object.fromEntries(
      (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => [i.InstanceId, i.StateReason?.Code]),
    );
    expect(reasons).toEqual({
      [byApi as string]: 'Client.UserInitiatedShutdown',
      [reclaimed as string]: 'Server.SpotInstanceTermination',
    });
  });

  it('pages DescribeInstances and DescribeParameters', async () => {
    // One reservation each: EC2 pages DescribeInstances by reservation.
    for (let k = 0; k < 7; k++) await launch(w, 1);
    const pages: number[] = [];
    let token: string | undefined;
    do {
      const out = await w.ec2.send(new DescribeInstancesCommand({ MaxResults: 5, NextToken: token }));
      pages.push((out.Reservations ?? []).flatMap((r) => r.Instances ?? []).length);
      token = out.NextToken;
    } while (token);
    expect(pages).toEqual([5, 2]);

    for (let k = 0; k < 5; k++)
      await w.ssm.send(new PutParameterCommand({ Name: `/spot-runner/jit/c/p${k}`, Value: 'v', Type: 'String' }));
    const names: number[] = [];
    token = undefined;
    do {
      const out: { Parameters?: unknown[]; NextToken?: string } = await w.ssm.send(
        new DescribeParametersCommand({
          ParameterFilters: [{ Key: 'Path', Option: 'Recursive', Values: ['/spot-runner/jit/c'] }],
          MaxResults: 2,
          NextToken: token,
        }),
      );
      names.push(out.Parameters?.length ?? 0);
      token = out.NextToken;
    } while (token);
    expect(names).toEqual([2, 2, 1]);
    await w.ssm.send(new DeleteParametersCommand({ Names: [0, 1, 2, 3, 4].map((k) => `/spot-runner/jit/c/p${k}`) }));
  });

  it('capacity pools: two subnets of one AZ for one type is a whole-call InvalidFleetConfig', async () => {
    const lt = await template(w);
    const code = await codeOf(
      w.ec2.send(
        fleet(lt, 1, [
          { InstanceType: 'c6i.large', SubnetId: w.subnets.a1 },
          { InstanceType: 'c6i.large', SubnetId: w.subnets.a2 },
        ]),
      ),
    );
    expect(code).toBe('InvalidFleetConfig');
  });

  it('capacity pools: a type not offered in an AZ is a per-override Unsupported, and offerings leave it out', async () => {
    w.notOffered('c7i.large', w.subnets.azB);
    const lt = await template(w);
    const out = await w.ec2.send(
      fleet(lt, 1, [
        { InstanceType: 'c7i.large', SubnetId: w.subnets.b },
        { InstanceType: 'c6i.large', SubnetId: w.subnets.b },
      ]),
    );
    expect(out.Errors?.map((e) => `${e.ErrorCode} ${e.LaunchTemplateAndOverrides?.Overrides?.InstanceType}`)).toEqual([
      'Unsupported c7i.large',
    ]);
    expect(out.Instances?.map((i) => i.InstanceType)).toEqual(['c6i.large']);
    const offers = await w.ec2.send(
      new DescribeInstanceTypeOfferingsCommand({
        LocationType: 'availability-zone',
        Filters: [
          { Name: 'instance-type', Values: ['c7i.large'] },
          { Name: 'location', Values: [w.subnets.azA, w.subnets.azB] },
        ],
      }),
    );
    expect((offers.InstanceTypeOfferings ?? []).map((o) => o.Location).sort()).toEqual([w.subnets.azA]);
  });

  it('SSM throttles a burst of PutParameter beyond the account rate with ThrottlingException', async () => {
    w.set({ putPerSecond: 3 });
    const codes = await Promise.all(
      Array.from({ length: 10 }, (_, k) =>
        codeOf(w.ssm.send(new PutParameterCommand({ Name: `/spot-runner/jit/t/p${k}`, Value: 'v', Type: 'String' }))),
      ),
    );
    expect(codes.filter((c) => c === 'ok').length).toBeGreaterThanOrEqual(3);
    expect(codes.filter((c) => c === 'ThrottlingException').length).toBeGreaterThanOrEqual(5);
    expect(codes.every((c) => c === 'ok' || c === 'ThrottlingException')).toBe(true);
  });

  it('a lost PutParameter answer: the write happened, and the retry meets ParameterAlreadyExists', async () => {
    w.set({ losePut: true });
    const code = await codeOf(
      w.retrying.ssm.send(new PutParameterCommand({ Name: '/spot-runner/jit/l/p', Value: 'mine', Type: 'String' })),
    );
    expect(code).toBe('ParameterAlreadyExists');
    w.set({ losePut: false });
    expect((await w.ssm.send(new GetParameterCommand({ Name: '/spot-runner/jit/l/p' }))).Parameter?.Value).toBe('mine');
  });

  it("an instant fleet's instance TagSpecifications tag its instances, beside the template's tags", async () => {
    const lt = await template(w, {
      TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'from-template', Value: 'yes' }] }],
    });
    const req = fleet(lt, 1, [{ InstanceType: 'c6i.large', SubnetId: w.subnets.a1 }]);
    req.input.TagSpecifications = [{ ResourceType: 'instance', Tags: [{ Key: 'from-request', Value: 'r1' }] }];
    const out = await w.ec2.send(req);
    const id = out.Instances?.[0]?.InstanceIds?.[0] as string;
    const tags = Object.fromEntries(
      (
        (await w.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations?.[0]?.Instances?.[0]
          ?.Tags ?? []
      ).map((t) => [t.Key, t.Value]),
    );
    expect(tags).toMatchObject({ 'from-template': 'yes', 'from-request': 'r1' });
    const byTag = await w.ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: 'tag:from-request', Values: ['r1'] }] }),
    );
    expect((byTag.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId)).toEqual([id]);
  });

  it('a fleet instance has a root volume that DescribeVolumes sizes; an unknown volume is InvalidVolume.NotFound', async () => {
    const lt = await template(w, {
      BlockDeviceMappings: [
        { DeviceName: '/dev/sda1', Ebs: { VolumeSize: 40, VolumeType: 'gp3', DeleteOnTermination: true } },
      ],
    });
    const out = await w.ec2.send(fleet(lt, 1, [{ InstanceType: 'c6i.large', SubnetId: w.subnets.a1 }]));
    const id = out.Instances?.[0]?.InstanceIds?.[0] as string;
    const described = (await w.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations?.[0]
      ?.Instances?.[0];
    const volumes = (described?.BlockDeviceMappings ?? []).map((b) => b.Ebs?.VolumeId ?? '').filter(Boolean);
    expect(volumes).toHaveLength(1);
    const v = await w.ec2.send(new DescribeVolumesCommand({ VolumeIds: volumes }));
    expect(v.Volumes?.map((x) => x.VolumeId)).toEqual(volumes);
    // EC2 and the fake give the template's 40 GiB; moto ignores a template's VolumeSize in
    // CreateFleet and gives its 8 GiB default (docs/platform-behaviours.md). Either is a size.
    expect(v.Volumes?.[0]?.Size).toBeGreaterThanOrEqual(8);
    expect(await codeOf(w.ec2.send(new DescribeVolumesCommand({ VolumeIds: ['vol-0123456789abcdef0'] })))).toBe(
      'InvalidVolume.NotFound',
    );
  });

  // ---- the warm pool (issue 16) ----

  it("a fleet instance takes its launch template's InstanceInitiatedShutdownBehavior", async () => {
    const [stopper] = await launch(w, 1, { shutdown: 'stop' });
    const [ender] = await launch(w, 1, { shutdown: 'terminate' });
    const behaviour = async (id: string) =>
      (
        await w.ec2.send(
          new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'instanceInitiatedShutdownBehavior' }),
        )
      ).InstanceInitiatedShutdownBehavior?.Value;
    expect(await behaviour(stopper as string)).toBe('stop');
    expect(await behaviour(ender as string)).toBe('terminate');
  });

  it('StopInstances: a one-time spot instance refuses with UnsupportedOperation; an on-demand one stops', async () => {
    const [spot] = await launch(w, 1, { market: 'spot' });
    const [od] = await launch(w, 1);
    expect(await codeOf(w.ec2.send(new StopInstancesCommand({ InstanceIds: [spot as string] })))).toBe(
      'UnsupportedOperation',
    );
    await w.ec2.send(new StopInstancesCommand({ InstanceIds: [od as string] }));
    await until(w, async () => ((await states(w, [od as string]))[0] === 'stopped' ? true : undefined));
  });

  it('StartInstances: a stopped instance starts (pending first; PreviousState stopped, and not stopped once started); a terminated one is IncorrectInstanceState, never revived', async () => {
    w.set({ shuttingDown: true });
    const [a, b] = await launch(w, 2);
    await w.ec2.send(new StopInstancesCommand({ InstanceIds: [a as string] }));
    await until(w, async () => ((await states(w, [a as string]))[0] === 'stopped' ? true : undefined));
    const started = await w.ec2.send(new StartInstancesCommand({ InstanceIds: [a as string] }));
    expect(started.StartingInstances?.[0]?.CurrentState?.Name).toBe('pending');
    expect(started.StartingInstances?.[0]?.PreviousState?.Name).toBe('stopped');
    // Started again (the pool's late claimer): no error, and PreviousState says it was not stopped.
    const again = await w.ec2.send(new StartInstancesCommand({ InstanceIds: [a as string] }));
    expect(['pending', 'running']).toContain(again.StartingInstances?.[0]?.PreviousState?.Name);
    await w.ec2.send(new TerminateInstancesCommand({ InstanceIds: [b as string] }));
    expect(await codeOf(w.ec2.send(new StartInstancesCommand({ InstanceIds: [b as string] })))).toBe(
      'IncorrectInstanceState',
    );
    await until(w, async () => ((await states(w, [b as string]))[0] === 'terminated' ? true : undefined));
    expect(await codeOf(w.ec2.send(new StartInstancesCommand({ InstanceIds: [b as string] })))).toBe(
      'IncorrectInstanceState',
    );
    expect(await states(w, [b as string])).toEqual(['terminated']);
  });

  it("the claim: PutParameter without Overwrite is a compare-and-set; the loser gets ParameterAlreadyExists and the winner's value stays", async () => {
    const name = '/spot-runner/jit/pool-build/i-0123456789abcdef0';
    const codes = await Promise.all(
      ['first', 'second', 'third'].map((v) =>
        codeOf(w.ssm.send(new PutParameterCommand({ Name: name, Value: v, Type: 'String' }))),
      ),
    );
    expect(codes.filter((c) => c === 'ok')).toHaveLength(1);
    expect(codes.filter((c) => c === 'ParameterAlreadyExists')).toHaveLength(2);
    const winner = ['first', 'second', 'third'][codes.indexOf('ok')];
    expect((await w.ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value).toBe(winner);
  });

  it("the consumed mark: PutParameter with Overwrite replaces a SecureString's value and keeps its tags; the name stays taken for claims", async () => {
    const name = '/spot-runner/jit/pool-build/i-0fedcba9876543210';
    await w.ssm.send(
      new PutParameterCommand({
        Name: name,
        Value: 'aml0LWNvbmZpZw==',
        Type: 'SecureString',
        Tags: [{ Key: 'spot-runner:instance-id', Value: 'i-0fedcba9876543210' }],
      }),
    );
    const mark = 'consumed:0d2c5f3ec4f1b9a3e1c0b9d7f6a5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c';
    await w.ssm.send(new PutParameterCommand({ Name: name, Value: mark, Type: 'SecureString', Overwrite: true }));
    expect((await w.ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter?.Value).toBe(
      mark,
    );
    expect(
      await codeOf(w.ssm.send(new PutParameterCommand({ Name: name, Value: 'bGF0ZQ==', Type: 'SecureString' }))),
    ).toBe('ParameterAlreadyExists');
    const tags = await w.ssm.send(new ListTagsForResourceCommand({ ResourceType: 'Parameter', ResourceId: name }));
    expect(tags.TagList).toEqual([{ Key: 'spot-runner:instance-id', Value: 'i-0fedcba9876543210' }]);
  });
});
