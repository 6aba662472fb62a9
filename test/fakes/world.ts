import { FakeAws, awsError } from './aws.js';
import { priceListItem } from './price-list.js';
import { TokenBucket } from './token-bucket.js';

export interface FakeInstance {
  InstanceId: string;
  InstanceType: string;
  State: { Name: string };
  StateReason?: { Code: string; Message: string };
  InstanceLifecycle?: string;
  Placement: { AvailabilityZone: string };
  SubnetId?: string;
  LaunchTime: Date;
  Tags: { Key: string; Value: string }[];
  /** The root volume, from the launch template's mapping (the image's 16 GiB when it gives no size). */
  BlockDeviceMappings?: {
    DeviceName: string;
    Ebs: { VolumeId: string; Status: string; DeleteOnTermination: boolean };
  }[];
}

// EC2's StateReason for an API termination and for a spot reclaim (docs/platform-behaviours.md).
const USER_SHUTDOWN = {
  Code: 'Client.UserInitiatedShutdown',
  Message: 'Client.UserInitiatedShutdown: User initiated shutdown',
};
const GUEST_SHUTDOWN = {
  Code: 'Client.InstanceInitiatedShutdown',
  Message: 'Client.InstanceInitiatedShutdown: Instance initiated shutdown',
};
const SPOT_TERMINATION = {
  Code: 'Server.SpotInstanceTermination',
  Message: 'Server.SpotInstanceTermination: Spot instance termination',
};

export interface FakeParameter {
  value: string;
  tags: Record<string, string>;
  lastModified: Date;
}

export interface FakeTemplate {
  name: string;
  data: Record<string, unknown>;
  tags: { Key: string; Value: string }[];
  created: Date;
}

type FleetAnswer = (
  req: Record<string, unknown>,
  call: number,
) => { launch: { type: string; market: string }[]; errors?: { code: string; type?: string; market: string }[] } | Error;

interface Override {
  InstanceType: string;
  SubnetId?: string;
  Priority?: number;
}

/**
 * How far the world is from an ideal one. Every default is ON (docs/platform-behaviours.md, AWS);
 * windows are counted in calls, not seconds, so tests never depend on the clock.
 */
export interface WorldOptions {
  /** DescribeInstances/TerminateInstances calls that do not see a new instance yet (EC2 eventual consistency). Default 2. */
  instanceLooks: number;
  /** CreateFleet calls that answer InvalidLaunchTemplateId.NotFound for a template just created. Default 1. */
  templateLooks: number;
  /** DescribeInstances calls that still show a terminated instance as shutting-down. Default 1. */
  shuttingDownLooks: number;
  /** SSM PutParameter calls a second for the account (token bucket, burst = rate). Default 3. */
  putPerSecond: number;
  /** SSM GetParameter(s) calls a second, shared by the account. Default 40. */
  getPerSecond: number;
  /** Every n-th PutParameter is carried out but its answer lost; the caller sees what the SDK's retry then gets. 0 = never. Default 7 (the 1st, 8th, …). */
  losePutEvery: number;
}

export const WORLD_DEFAULTS: WorldOptions = {
  instanceLooks: 2,
  templateLooks: 1,
  shuttingDownLooks: 1,
  putPerSecond: 3,
  getPerSecond: 40,
  losePutEvery: 7,
};

const AZS = ['us-east-1a', 'us-east-1b', 'us-east-1c'];

// On-demand Linux prices the fake Price List answers with (USD/hour); deliberately not the
// product's bundled table, so a test can tell which one was used.
export const FAKE_PRICE_LIST: Record<string, number> = { 'c7i.large': 0.0893, 'c6i.large': 0.085, 'c7g.large': 0.0725 };

/**
 * A small in-memory EC2 + SSM + STS + Price List: enough behaviour (fleets launch tagged
 * instances, terminate goes through shutting-down, parameters come and go, lists page) for
 * start/stop/post/reap unit tests to assert end states. It is held to the same contract as moto
 * behind the lab proxy by __tests__/contract/aws.contract.test.ts.
 */
export class FakeWorld extends FakeAws {
  instances = new Map<string, FakeInstance>();
  /** EBS volumes by id; a DeleteOnTermination volume goes when its instance is terminated. */
  volumes = new Map<string, { size: number; instanceId: string; deleteOnTermination: boolean }>();
  params = new Map<string, FakeParameter>();
  templates = new Map<string, FakeTemplate>();
  /** subnet id → AZ; unknown subnets get a, b, c in the order they are first seen. */
  subnets = new Map<string, string>();
  /** "type@az" pools EC2 does not offer (DescribeInstanceTypeOfferings leaves them out; CreateFleet answers Unsupported). */
  notOffered = new Set<string>();
  /** Spot price changes per "type@az" (DescribeSpotPriceHistory); default one change of 0.03 long ago. */
  spotHistory = new Map<string, { at: Date; price: number }[]>();
  opts: WorldOptions;
  private seq = 0;
  private hidden = new Map<string, number>();
  private hiddenTemplates = new Map<string, number>();
  private shutting = new Map<string, number>();
  private putBucket: TokenBucket;
  private getBucket: TokenBucket;
  /** instanceInitiatedShutdownBehavior per instance (ModifyInstanceAttribute); EC2 default for RunInstances is stop. */
  shutdownBehaviour = new Map<string, string>();
  private puts = 0;
  private fleetCalls = 0;
  /** CreateFleet calls that got past the checks (template known, pools valid), as the calls list records them. */
  fleetsAccepted: { input: Record<string, unknown> }[] = [];
  fleet: FleetAnswer = (req) => {
    const spec = req.TargetCapacitySpecification as { TotalTargetCapacity: number; DefaultTargetCapacityType: string };
    const cfg = (req.LaunchTemplateConfigs as { Overrides: { InstanceType: string }[] }[])[0];
    const type = cfg?.Overrides[0]?.InstanceType ?? 'c7i.large';
    return {
      launch: Array.from({ length: spec.TotalTargetCapacity }, () => ({
        type,
        market: spec.DefaultTargetCapacityType,
      })),
    };
  };

  constructor(o: { arch?: string; types?: Record<string, string[]>; world?: Partial<WorldOptions> } = {}) {
    super();
    this.opts = { ...WORLD_DEFAULTS, ...o.world };
    this.putBucket = new TokenBucket(this.opts.putPerSecond);
    this.getBucket = new TokenBucket(this.opts.getPerSecond);
    const types = o.types ?? { 'c7i.large': ['x86_64'], 'c6i.large': ['x86_64'], 'c7g.large': ['arm64'] };
    const vcpus = (t: string) => ({ large: 2, xlarge: 4, '2xlarge': 8, '4xlarge': 16 })[t.split('.')[1] ?? ''] ?? 2;
    const page = <T>(items: T[], input: Record<string, unknown>, max: number) => {
      const start = Number(input.NextToken ?? 0);
      const size = Math.min(Number(input.MaxResults ?? max), max);
      const next = start + size < items.length ? String(start + size) : undefined;
      return { items: items.slice(start, start + size), NextToken: next };
    };
    const byTags = (tags: { Key: string; Value: string }[], filters: { Name: string; Values: string[] }[]) =>
      filters.every(
        (f) => !f.Name.startsWith('tag:') || tags.some((t) => t.Key === f.Name.slice(4) && f.Values.includes(t.Value)),
      );

    this.on('GetCallerIdentity', () => ({
      Account: '123456789012',
      Arn: 'arn:aws:sts::123456789012:assumed-role/spot-runner-control/gha',
      UserId: 'AROAFAKE:gha',
    }));
    this.on('DescribeInstanceTypes', (input) => ({
      InstanceTypes: (input.InstanceTypes as string[])
        .filter((t) => t in types)
        .map((t) => ({
          InstanceType: t,
          ProcessorInfo: { SupportedArchitectures: types[t] },
          VCpuInfo: { DefaultVCpus: vcpus(t) },
        })),
    }));
    this.on('DescribeInstanceTypeOfferings', (input) => {
      const filters = (input.Filters as { Name: string; Values: string[] }[] | undefined) ?? [];
      const want = (name: string) => filters.find((f) => f.Name === name)?.Values;
      const typeList = want('instance-type') ?? Object.keys(types);
      const azList = want('location') ?? AZS;
      const offers = typeList
        .filter((t) => t in types)
        .flatMap((t) =>
          azList
            .filter((az) => !this.notOffered.has(`${t}@${az}`))
            .map((az) => ({ InstanceType: t, LocationType: 'availability-zone', Location: az })),
        );
      const p = page(offers, input, 1000);
      return { InstanceTypeOfferings: p.items, NextToken: p.NextToken };
    });
    this.on('DescribeImages', (input) => {
      const id = (input.ImageIds as string[])[0];
      if (id === 'ami-00000000000000000')
        throw awsError('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
      return {
        Images: [
          {
            ImageId: id,
            Architecture: id === 'ami-0a0a0a0a0a0a0a0a0' ? 'arm64' : (o.arch ?? 'x86_64'),
            State: 'available',
            RootDeviceName: '/dev/sda1',
            BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 16 } }],
          },
        ],
      };
    });
    const getParam = (name: string) => {
      if (!this.getBucket.take()) throw awsError('ThrottlingException', 'Rate exceeded');
      const p = this.params.get(name);
      if (!p) throw awsError('ParameterNotFound', `Parameter ${name} not found`);
      return { Name: name, Value: p.value };
    };
    this.on('GetParameter', (input) => ({ Parameter: getParam(input.Name as string) }));
    this.on('DescribeSubnets', (input) => {
      const ids = input.SubnetIds as string[];
      const bad = ids.find((i) => i.startsWith('subnet-0bad'));
      if (bad) throw awsError('InvalidSubnetID.NotFound', `The subnet ID '${bad}' does not exist`);
      return { Subnets: ids.map((s) => ({ SubnetId: s, AvailabilityZone: this.azOf(s) })) };
    });
    this.on('DescribeSecurityGroups', () => ({ SecurityGroups: [] }));
    this.on('CreateLaunchTemplate', (input) => {
      const id = `lt-${(++this.seq).toString(16).padStart(17, '0')}`;
      const specs = (input.TagSpecifications as { Tags: { Key: string; Value: string }[] }[] | undefined) ?? [];
      this.templates.set(id, {
        name: input.LaunchTemplateName as string,
        data: input.LaunchTemplateData as Record<string, unknown>,
        tags: specs[0]?.Tags ?? [],
        created: new Date(),
      });
      if (this.opts.templateLooks > 0) this.hiddenTemplates.set(id, this.opts.templateLooks);
      return { LaunchTemplate: { LaunchTemplateId: id, LaunchTemplateName: input.LaunchTemplateName } };
    });
    this.on('DescribeLaunchTemplates', (input) => {
      const filters = (input.Filters as { Name: string; Values: string[] }[] | undefined) ?? [];
      const list = [...this.templates.entries()]
        .filter(([, t]) => byTags(t.tags, filters))
        .map(([id, t]) => ({ LaunchTemplateId: id, LaunchTemplateName: t.name, CreateTime: t.created, Tags: t.tags }));
      const p = page(list, input, 200);
      return { LaunchTemplates: p.items, NextToken: p.NextToken };
    });
    this.on('DeleteLaunchTemplate', (input) => {
      const id = input.LaunchTemplateId as string;
      if (!this.templates.delete(id))
        throw awsError(
          'InvalidLaunchTemplateId.NotFound',
          `The specified launch template, with template ID ${id}, does not exist.`,
        );
      return {};
    });
    this.on('CreateFleet', (input) => this.createFleet(input));
    this.on('DescribeInstances', (input) => {
      const ids = input.InstanceIds as string[] | undefined;
      this.settle();
      if (ids) {
        const unknown = ids.filter((i) => !this.instances.has(i) || this.hidden.has(i));
        if (unknown.length > 0) {
          for (const i of unknown) this.look(i);
          throw awsError(
            'InvalidInstanceID.NotFound',
            unknown.length === 1
              ? `The instance ID '${unknown[0]}' does not exist`
              : `The instance IDs '${unknown.join(', ')}' do not exist`,
          );
        }
      }
      let list = [...this.instances.values()].filter((i) => {
        if (!this.hidden.has(i.InstanceId)) return true;
        this.look(i.InstanceId);
        return false;
      });
      if (ids) list = list.filter((i) => ids.includes(i.InstanceId));
      const filters = (input.Filters as { Name: string; Values: string[] }[] | undefined) ?? [];
      for (const f of filters) {
        if (f.Name === 'instance-id') list = list.filter((i) => f.Values.includes(i.InstanceId));
        else if (f.Name === 'instance-state-name') list = list.filter((i) => f.Values.includes(i.State.Name));
      }
      list = list.filter((i) => byTags(i.Tags, filters));
      // EC2 refuses MaxResults with InstanceIds; without ids it pages at up to 1000.
      const p = ids ? { items: list, NextToken: undefined } : page(list, input, 1000);
      for (const i of p.items)
        if (this.shutting.has(i.InstanceId))
          this.shutting.set(i.InstanceId, (this.shutting.get(i.InstanceId) ?? 1) - 1);
      return {
        Reservations: p.items.map((i) => ({ OwnerId: '123456789012', Instances: [{ ...i, State: { ...i.State } }] })),
        NextToken: p.NextToken,
      };
    });
    this.on('DescribeVolumes', (input) => {
      const ids = (input.VolumeIds as string[] | undefined) ?? [...this.volumes.keys()];
      const unknown = ids.filter((v) => !this.volumes.has(v));
      if (unknown.length > 0) throw awsError('InvalidVolume.NotFound', `The volume '${unknown[0]}' does not exist.`);
      return {
        Volumes: ids.map((v) => {
          const vol = this.volumes.get(v) as { size: number; instanceId: string };
          return {
            VolumeId: v,
            Size: vol.size,
            State: 'in-use',
            Attachments: [{ InstanceId: vol.instanceId, VolumeId: v }],
          };
        }),
      };
    });
    this.on('TerminateInstances', (input) => {
      const ids = input.InstanceIds as string[];
      if (ids.length > 1000) throw awsError('InvalidParameterValue', 'at most 1000 ids');
      const unknown = ids.filter((i) => !this.instances.has(i) || this.hidden.has(i));
      if (unknown.length > 0) {
        for (const i of unknown) this.look(i);
        throw awsError(
          'InvalidInstanceID.NotFound',
          unknown.length === 1
            ? `The instance ID '${unknown[0]}' does not exist`
            : `The instance IDs '${unknown.join(', ')}' do not exist`,
        );
      }
      return {
        TerminatingInstances: ids.map((id) => {
          const i = this.instances.get(id) as FakeInstance;
          const prev = i.State.Name;
          if (prev !== 'terminated' && prev !== 'shutting-down') {
            i.State = { Name: 'shutting-down' };
            i.StateReason = USER_SHUTDOWN;
            this.shutting.set(id, this.opts.shuttingDownLooks);
          }
          return { InstanceId: id, PreviousState: { Name: prev }, CurrentState: { Name: i.State.Name } };
        }),
      };
    });
    // Stop and start (the warm pool), as EC2 has them (docs/platform-behaviours.md, "AWS").
    const known = (ids: string[]) => {
      const unknown = ids.filter((i) => !this.instances.has(i) || this.hidden.has(i));
      if (unknown.length > 0) {
        for (const i of unknown) this.look(i);
        throw awsError('InvalidInstanceID.NotFound', `The instance ID '${unknown[0]}' does not exist`);
      }
      return ids.map((i) => this.instances.get(i) as FakeInstance);
    };
    this.on('StopInstances', (input) => {
      const list = known(input.InstanceIds as string[]);
      const spot = list.find((i) => i.InstanceLifecycle === 'spot');
      if (spot)
        throw awsError(
          'UnsupportedOperation',
          `You can't stop the Spot Instance '${spot.InstanceId}' because it is associated with a one-time Spot Instance request. You can only stop Spot Instances associated with persistent Spot Instance requests.`,
        );
      return {
        StoppingInstances: list.map((i) => ({
          InstanceId: i.InstanceId,
          PreviousState: { Name: i.State.Name },
          CurrentState: { Name: (i.State = { Name: 'stopped' }).Name },
        })),
      };
    });
    this.on('StartInstances', (input) => {
      const list = known(input.InstanceIds as string[]);
      const bad = list.find((i) => ['terminated', 'shutting-down', 'stopping'].includes(i.State.Name));
      if (bad)
        throw awsError(
          'IncorrectInstanceState',
          `The instance '${bad.InstanceId}' is not in a state from which it can be started.`,
        );
      return {
        StartingInstances: list.map((i) => {
          const prev = i.State.Name;
          if (prev === 'stopped') i.State = { Name: 'pending' };
          return { InstanceId: i.InstanceId, PreviousState: { Name: prev }, CurrentState: { Name: i.State.Name } };
        }),
      };
    });
    this.on('ModifyInstanceAttribute', (input) => {
      const [i] = known([input.InstanceId as string]);
      if (i && ['terminated', 'shutting-down'].includes(i.State.Name))
        throw awsError(
          'IncorrectInstanceState',
          `The instance '${i.InstanceId}' is not in a state from which its attributes can be modified.`,
        );
      if (input.Attribute === 'instanceInitiatedShutdownBehavior' && i)
        this.shutdownBehaviour.set(i.InstanceId, String(input.Value));
      return {};
    });
    this.on('DescribeInstanceAttribute', (input) => {
      const [i] = known([input.InstanceId as string]);
      return {
        InstanceId: i?.InstanceId,
        InstanceInitiatedShutdownBehavior: { Value: this.shutdownBehaviour.get(i?.InstanceId ?? '') ?? 'stop' },
      };
    });
    this.on('CreateTags', (input) => {
      for (const i of known(input.Resources as string[])) {
        for (const t of input.Tags as { Key: string; Value: string }[])
          i.Tags = i.Tags.filter((x) => x.Key !== t.Key).concat({ Key: t.Key, Value: t.Value });
      }
      return {};
    });
    this.on('PutParameter', (input) => {
      if (!this.putBucket.take()) throw awsError('ThrottlingException', 'Rate exceeded');
      const name = input.Name as string;
      const exists = this.params.has(name);
      if (exists && !input.Overwrite)
        throw awsError(
          'ParameterAlreadyExists',
          'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.',
        );
      const tags = Object.fromEntries(
        ((input.Tags as { Key: string; Value: string }[]) ?? []).map((t) => [t.Key, t.Value]),
      );
      this.params.set(name, {
        value: input.Value as string,
        tags: exists ? (this.params.get(name)?.tags ?? tags) : tags,
        lastModified: new Date(),
      });
      this.puts++;
      // A lost answer: the write happened; the SDK's retry of the same request then finds it.
      if (this.opts.losePutEvery > 0 && (this.puts - 1) % this.opts.losePutEvery === 0 && !input.Overwrite) {
        throw awsError(
          'ParameterAlreadyExists',
          'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.',
        );
      }
      return { Version: 1, Tier: 'Standard' };
    });
    this.on('ListTagsForResource', (input) => {
      const p = this.params.get(input.ResourceId as string);
      if (!p) throw awsError('InvalidResourceId', 'The resource ID is not valid. Verify the ID and try again.');
      return { TagList: Object.entries(p.tags).map(([Key, Value]) => ({ Key, Value })) };
    });
    this.on('DescribeParameters', (input) => {
      const path = `${(input.ParameterFilters as { Values: string[] }[])[0]?.Values[0] ?? ''}/`;
      const list = [...this.params.entries()]
        .filter(([n]) => n.startsWith(path))
        .map(([Name, p]) => ({ Name, LastModifiedDate: p.lastModified }));
      const p = page(list, input, 50);
      return { Parameters: p.items, NextToken: p.NextToken };
    });
    this.on('DeleteParameters', (input) => {
      const names = input.Names as string[];
      if (names.length > 10) throw awsError('ValidationException', 'at most 10 names');
      const deleted = names.filter((n) => this.params.delete(n));
      return { DeletedParameters: deleted, InvalidParameters: names.filter((n) => !deleted.includes(n)) };
    });
    this.on('DescribeSpotPriceHistory', (input) => {
      const type = (input.InstanceTypes as string[] | undefined)?.[0] ?? '';
      const az = (input.AvailabilityZone as string | undefined) ?? 'us-east-1a';
      const start = (input.StartTime as Date | undefined) ?? new Date();
      const end = (input.EndTime as Date | undefined) ?? new Date();
      const history = this.spotHistory.get(`${type}@${az}`) ?? [{ at: new Date(0), price: 0.03 }];
      // Price changes inside the window, plus the last change before it (the price in force at the start); newest first.
      const before = history.filter((h) => h.at <= start).at(-1);
      const inside = history.filter((h) => h.at > start && h.at <= end);
      const items = [...(before ? [before] : []), ...inside].reverse().map((h) => ({
        InstanceType: type,
        AvailabilityZone: az,
        ProductDescription: 'Linux/UNIX',
        SpotPrice: h.price.toFixed(4),
        Timestamp: h.at,
      }));
      const p = page(items, input, 1000);
      return { SpotPriceHistory: p.items, NextToken: p.NextToken };
    });
    this.on('GetProducts', (input) => {
      const filters = (input.Filters as { Field: string; Value: string }[] | undefined) ?? [];
      const type = filters.find((f) => f.Field === 'instanceType')?.Value ?? '';
      const region = filters.find((f) => f.Field === 'regionCode')?.Value ?? '';
      const price = FAKE_PRICE_LIST[type];
      if (price === undefined || region !== 'us-east-1') return { PriceList: [] };
      return { PriceList: [priceListItem(type, region, price)], FormatVersion: 'aws_v1' };
    });
  }

  private azOf(subnet: string): string {
    let az = this.subnets.get(subnet);
    if (!az) {
      az = AZS[this.subnets.size % AZS.length] as string;
      this.subnets.set(subnet, az);
    }
    return az;
  }

  /** One view missed the instance: after its last look it is visible everywhere. */
  private look(id: string): void {
    const left = (this.hidden.get(id) ?? 0) - 1;
    if (left <= 0) this.hidden.delete(id);
    else this.hidden.set(id, left);
  }

  /** shutting-down becomes terminated once enough describes have seen it. */
  private settle(): void {
    for (const [id, left] of this.shutting) {
      if (left > 0) continue;
      const i = this.instances.get(id);
      if (i && i.State.Name === 'shutting-down') {
        i.State = { Name: 'terminated' };
        for (const [v, vol] of this.volumes)
          if (vol.instanceId === id && vol.deleteOnTermination) this.volumes.delete(v);
      }
      this.shutting.delete(id);
    }
  }

  private createFleet(input: Record<string, unknown>) {
    const ltc = (
      input.LaunchTemplateConfigs as {
        LaunchTemplateSpecification: { LaunchTemplateId: string };
        Overrides?: Override[];
      }[]
    )[0];
    const ltId = ltc?.LaunchTemplateSpecification.LaunchTemplateId ?? '';
    const lt = this.templates.get(ltId);
    const left = this.hiddenTemplates.get(ltId);
    if (!lt || left !== undefined) {
      if (left !== undefined) {
        if (left <= 1) this.hiddenTemplates.delete(ltId);
        else this.hiddenTemplates.set(ltId, left - 1);
      }
      throw awsError(
        'InvalidLaunchTemplateId.NotFound',
        `The specified launch template, with template ID ${ltId}, does not exist.`,
      );
    }
    const overrides = ltc?.Overrides ?? [];
    // One fleet may not name two subnets of one AZ for the same type.
    const seen = new Set<string>();
    for (const ov of overrides) {
      if (!ov.SubnetId) continue;
      const pool = `${ov.InstanceType}@${this.azOf(ov.SubnetId)}`;
      if (seen.has(pool))
        throw awsError('InvalidFleetConfig', `The fleet configuration contains duplicate instance pools (${pool}).`);
      seen.add(pool);
    }
    const market = (input.TargetCapacitySpecification as { DefaultTargetCapacityType: string })
      .DefaultTargetCapacityType;
    const unsupported = overrides.filter(
      (ov) => ov.SubnetId && this.notOffered.has(`${ov.InstanceType}@${this.azOf(ov.SubnetId)}`),
    );
    const usable = overrides.filter((ov) => !unsupported.includes(ov));
    const poolErrors = unsupported.map((ov) => {
      const az = this.azOf(ov.SubnetId ?? '');
      return {
        ErrorCode: 'Unsupported',
        ErrorMessage: `Your requested instance type (${ov.InstanceType}) is not supported in your requested Availability Zone (${az}).`,
        Lifecycle: market,
        LaunchTemplateAndOverrides: { Overrides: { InstanceType: ov.InstanceType, SubnetId: ov.SubnetId } },
      };
    });
    if (usable.length === 0) this.fleetsAccepted.push({ input });
    if (usable.length === 0) return { FleetId: `fleet-${++this.seq}`, Instances: [], Errors: poolErrors };
    this.fleetsAccepted.push({ input });
    const req = { ...input, LaunchTemplateConfigs: [{ ...ltc, Overrides: usable }] };
    const ans = this.fleet(req, ++this.fleetCalls);
    if (ans instanceof Error) throw ans;
    const ltTags =
      ((lt.data.TagSpecifications as { ResourceType: string; Tags: { Key: string; Value: string }[] }[]) ?? []).find(
        (t) => t.ResourceType === 'instance',
      )?.Tags ?? [];
    // An instant fleet's own instance TagSpecifications tag the instances too (a key in both: the request's).
    const reqTags =
      ((input.TagSpecifications as { ResourceType: string; Tags: { Key: string; Value: string }[] }[]) ?? []).find(
        (t) => t.ResourceType === 'instance',
      )?.Tags ?? [];
    const instanceTags = [...ltTags.filter((t) => !reqTags.some((r) => r.Key === t.Key)), ...reqTags];
    const mappings =
      (lt.data.BlockDeviceMappings as
        { DeviceName: string; Ebs?: { VolumeSize?: number; DeleteOnTermination?: boolean } }[] | undefined) ?? [];
    const root = mappings.find((m) => m.DeviceName === '/dev/sda1') ?? { DeviceName: '/dev/sda1' };
    const groups = ans.launch.map((l) => {
      const id = `i-${(++this.seq).toString(16).padStart(17, '0')}`;
      const ov = usable.find((u) => u.InstanceType === l.type) ?? usable[0];
      const subnet = ov?.SubnetId;
      const volumeId = `vol-${(++this.seq).toString(16).padStart(17, '0')}`;
      this.instances.set(id, {
        InstanceId: id,
        InstanceType: l.type,
        State: { Name: 'pending' },
        InstanceLifecycle: l.market === 'spot' ? 'spot' : undefined,
        Placement: { AvailabilityZone: subnet ? this.azOf(subnet) : 'us-east-1a' },
        SubnetId: subnet,
        LaunchTime: new Date(),
        Tags: instanceTags.map((t) => ({ ...t })),
        BlockDeviceMappings: [
          { DeviceName: root.DeviceName, Ebs: { VolumeId: volumeId, Status: 'attached', DeleteOnTermination: true } },
        ],
      });
      this.volumes.set(volumeId, {
        size: root.Ebs?.VolumeSize ?? 16,
        instanceId: id,
        deleteOnTermination: root.Ebs?.DeleteOnTermination ?? true,
      });
      if (this.opts.instanceLooks > 0) this.hidden.set(id, this.opts.instanceLooks);
      if (typeof lt.data.InstanceInitiatedShutdownBehavior === 'string')
        this.shutdownBehaviour.set(id, lt.data.InstanceInitiatedShutdownBehavior);
      return {
        InstanceIds: [id],
        InstanceType: l.type,
        Lifecycle: l.market,
        LaunchTemplateAndOverrides: { Overrides: { InstanceType: l.type, SubnetId: subnet } },
      };
    });
    const errors = (ans.errors ?? []).map((e) => ({
      ErrorCode: e.code,
      ErrorMessage: `${e.code} for ${e.type ?? 'all'}`,
      Lifecycle: e.market,
      LaunchTemplateAndOverrides: { Overrides: { InstanceType: e.type } },
    }));
    return { FleetId: `fleet-${++this.seq}`, Instances: groups, Errors: [...poolErrors, ...errors] };
  }

  /** Instances not on their way out (shutting-down and terminated are both "gone" for money). */
  live(): FakeInstance[] {
    return [...this.instances.values()].filter(
      (i) => i.State.Name !== 'terminated' && i.State.Name !== 'shutting-down',
    );
  }

  liveIds(): string[] {
    return this.live().map((i) => i.InstanceId);
  }

  /** Changes some options (the rate limits start afresh). */
  configure(o: Partial<WorldOptions>): void {
    this.opts = { ...this.opts, ...o };
    this.putBucket = new TokenBucket(this.opts.putPerSecond);
    this.getBucket = new TokenBucket(this.opts.getPerSecond);
  }

  /** Makes every instance visible at once (a test that is not about consistency may say so). */
  settleAll(): void {
    this.hidden.clear();
    this.hiddenTemplates.clear();
  }

  /** EC2 reclaims a spot instance: shutting-down, then terminated, with its StateReason (not the API's). */
  reclaimSpot(id: string): void {
    const i = this.instances.get(id);
    if (!i || i.State.Name === 'terminated' || i.State.Name === 'shutting-down') return;
    i.State = { Name: 'shutting-down' };
    i.StateReason = SPOT_TERMINATION;
    this.shutting.set(id, this.opts.shuttingDownLooks);
  }

  /** The guest powers itself off: EC2 follows the instance's InstanceInitiatedShutdownBehavior (RunInstances' default, stop). */
  guestPowerOff(id: string): void {
    const i = this.instances.get(id);
    if (!i || (i.State.Name !== 'running' && i.State.Name !== 'pending')) return;
    if ((this.shutdownBehaviour.get(id) ?? 'stop') === 'stop') {
      i.State = { Name: 'stopped' };
      return;
    }
    i.State = { Name: 'shutting-down' };
    i.StateReason = GUEST_SHUTDOWN;
    this.shutting.set(id, this.opts.shuttingDownLooks);
  }

  setPhase(id: string, phase: string): void {
    const i = this.instances.get(id);
    if (!i) return;
    i.Tags = i.Tags.filter((t) => t.Key !== 'spot-runner:phase').concat({ Key: 'spot-runner:phase', Value: phase });
  }

  /** A running instance planted directly (reap and stop tests), already visible. */
  addInstance(
    label: string | undefined,
    launchTime: Date,
    extra: Record<string, string> = {},
    over: Partial<FakeInstance> = {},
  ): string {
    const id = `i-${(++this.seq).toString(16).padStart(17, '0')}`;
    const tags = label ? { 'spot-runner:managed': 'true', 'spot-runner:label': label, ...extra } : extra;
    this.instances.set(id, {
      InstanceId: id,
      InstanceType: 'c7i.large',
      State: { Name: 'running' },
      Placement: { AvailabilityZone: 'us-east-1a' },
      LaunchTime: launchTime,
      Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
      ...over,
    });
    return id;
  }

  /** As if just launched: DescribeInstances leaves it out for the next `looks` views. */
  hideNew(id: string, looks = this.opts.instanceLooks): void {
    this.hidden.set(id, looks);
  }

  addTemplate(label: string, created: Date, managed = true): string {
    const id = `lt-${(++this.seq).toString(16).padStart(17, '0')}`;
    const tags = managed
      ? [
          { Key: 'spot-runner:managed', Value: 'true' },
          { Key: 'spot-runner:label', Value: label },
        ]
      : [];
    this.templates.set(id, { name: label, data: {}, tags, created });
    return id;
  }

  addParameter(name: string, lastModified: Date, value = 'x', tags: Record<string, string> = {}): void {
    this.params.set(name, { value, tags, lastModified });
  }
}
