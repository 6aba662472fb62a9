import { FakeAws, awsError } from './aws.js';

export interface FakeInstance {
  InstanceId: string;
  InstanceType: string;
  State: { Name: string };
  StateReason?: { Code: string; Message: string };
  InstanceLifecycle?: string;
  Placement: { AvailabilityZone: string };
  LaunchTime: Date;
  Tags: { Key: string; Value: string }[];
}

type FleetAnswer = (req: Record<string, unknown>, call: number) => { launch: { type: string; market: string }[]; errors?: { code: string; type?: string; market: string }[] } | Error;

/**
 * A small in-memory EC2 + SSM: enough behaviour (fleets launch tagged instances, terminate
 * changes state, parameters come and go) for start/stop/post unit tests to assert end states.
 */
export class FakeWorld extends FakeAws {
  instances = new Map<string, FakeInstance>();
  params = new Map<string, { value: string; tags: Record<string, string> }>();
  templates = new Map<string, { name: string; data: Record<string, unknown>; tags: { Key: string; Value: string }[] }>();
  private seq = 0;
  fleet: FleetAnswer = (req) => {
    const spec = req.TargetCapacitySpecification as { TotalTargetCapacity: number; DefaultTargetCapacityType: string };
    const cfg = (req.LaunchTemplateConfigs as { Overrides: { InstanceType: string }[] }[])[0];
    const type = cfg?.Overrides[0]?.InstanceType ?? 'c7i.large';
    return { launch: Array.from({ length: spec.TotalTargetCapacity }, () => ({ type, market: spec.DefaultTargetCapacityType })) };
  };

  constructor(opts: { arch?: string; types?: Record<string, string[]> } = {}) {
    super();
    const types = opts.types ?? { 'c7i.large': ['x86_64'], 'c6i.large': ['x86_64'], 'c7g.large': ['arm64'] };
    this.on('DescribeInstanceTypes', (input) => ({
      InstanceTypes: (input.InstanceTypes as string[]).filter((t) => t in types).map((t) => ({ InstanceType: t, ProcessorInfo: { SupportedArchitectures: types[t] } })),
    }));
    this.on('DescribeImages', (input) => {
      const id = (input.ImageIds as string[])[0];
      if (id === 'ami-00000000000000000') throw awsError('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
      return { Images: [{ ImageId: id, Architecture: id === 'ami-0a0a0a0a0a0a0a0a0' ? 'arm64' : (opts.arch ?? 'x86_64'), State: 'available', RootDeviceName: '/dev/sda1', BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 16 } }] }] };
    });
    this.on('GetParameter', (input) => {
      const p = this.params.get(input.Name as string);
      if (!p) throw awsError('ParameterNotFound', `Parameter ${String(input.Name)} not found`);
      return { Parameter: { Name: input.Name, Value: p.value } };
    });
    this.on('DescribeSubnets', (input) => {
      const ids = input.SubnetIds as string[];
      const bad = ids.find((i) => i.startsWith('subnet-0bad'));
      if (bad) throw awsError('InvalidSubnetID.NotFound', `The subnet ID '${bad}' does not exist`);
      return { Subnets: ids.map((s, k) => ({ SubnetId: s, AvailabilityZone: `us-east-1${'abc'[k % 3]}` })) };
    });
    this.on('DescribeSecurityGroups', () => ({ SecurityGroups: [] }));
    this.on('CreateLaunchTemplate', (input) => {
      const id = `lt-${(++this.seq).toString(16).padStart(17, '0')}`;
      const specs = (input.TagSpecifications as { Tags: { Key: string; Value: string }[] }[] | undefined) ?? [];
      this.templates.set(id, { name: input.LaunchTemplateName as string, data: input.LaunchTemplateData as Record<string, unknown>, tags: specs[0]?.Tags ?? [] });
      return { LaunchTemplate: { LaunchTemplateId: id, LaunchTemplateName: input.LaunchTemplateName } };
    });
    this.on('DescribeLaunchTemplates', (input) => {
      const f = (input.Filters as { Name: string; Values: string[] }[])[0];
      const key = f?.Name.replace(/^tag:/, '');
      return {
        LaunchTemplates: [...this.templates.entries()]
          .filter(([, t]) => t.tags.some((x) => x.Key === key && f?.Values.includes(x.Value)))
          .map(([id, t]) => ({ LaunchTemplateId: id, LaunchTemplateName: t.name, Tags: t.tags })),
      };
    });
    this.on('DeleteLaunchTemplate', (input) => {
      const id = input.LaunchTemplateId as string;
      if (!this.templates.delete(id)) throw awsError('InvalidLaunchTemplateId.NotFound', `${id} not found`);
      return {};
    });
    this.on('CreateFleet', (input, call) => {
      const ans = this.fleet(input, call);
      if (ans instanceof Error) throw ans;
      const lt = this.templates.get(((input.LaunchTemplateConfigs as { LaunchTemplateSpecification: { LaunchTemplateId: string } }[])[0]?.LaunchTemplateSpecification.LaunchTemplateId) ?? '');
      const ltTags = ((lt?.data.TagSpecifications as { ResourceType: string; Tags: { Key: string; Value: string }[] }[]) ?? []).find((t) => t.ResourceType === 'instance')?.Tags ?? [];
      const groups = ans.launch.map((l) => {
        const id = `i-${(++this.seq).toString(16).padStart(17, '0')}`;
        this.instances.set(id, { InstanceId: id, InstanceType: l.type, State: { Name: 'pending' }, InstanceLifecycle: l.market === 'spot' ? 'spot' : undefined, Placement: { AvailabilityZone: 'us-east-1a' }, LaunchTime: new Date(), Tags: [...ltTags] });
        return { InstanceIds: [id], InstanceType: l.type, Lifecycle: l.market, LaunchTemplateAndOverrides: { Overrides: { InstanceType: l.type } } };
      });
      return { FleetId: 'fleet-1', Instances: groups, Errors: (ans.errors ?? []).map((e) => ({ ErrorCode: e.code, ErrorMessage: `${e.code} for ${e.type ?? 'all'}`, Lifecycle: e.market, LaunchTemplateAndOverrides: { Overrides: { InstanceType: e.type } } })) };
    });
    this.on('DescribeInstances', (input) => {
      let list = [...this.instances.values()];
      const ids = input.InstanceIds as string[] | undefined;
      if (ids) {
        const unknown = ids.find((i) => !this.instances.has(i));
        if (unknown) throw awsError('InvalidInstanceID.NotFound', `The instance ID '${unknown}' does not exist`);
        list = list.filter((i) => ids.includes(i.InstanceId));
      }
      for (const f of (input.Filters as { Name: string; Values: string[] }[] | undefined) ?? []) {
        if (f.Name === 'instance-id') list = list.filter((i) => f.Values.includes(i.InstanceId));
        else if (f.Name === 'instance-state-name') list = list.filter((i) => f.Values.includes(i.State.Name));
        else if (f.Name.startsWith('tag:')) list = list.filter((i) => i.Tags.some((t) => t.Key === f.Name.slice(4) && f.Values.includes(t.Value)));
      }
      return { Reservations: list.length ? [{ OwnerId: '123456789012', Instances: list.map((i) => ({ ...i, State: { ...i.State } })) }] : [] };
    });
    this.on('TerminateInstances', (input) => {
      const ids = input.InstanceIds as string[];
      const unknown = ids.find((i) => !this.instances.has(i));
      if (unknown) throw awsError('InvalidInstanceID.NotFound', `The instance ID '${unknown}' does not exist`);
      return {
        TerminatingInstances: ids.map((id) => {
          const i = this.instances.get(id) as FakeInstance;
          const prev = i.State.Name;
          i.State = { Name: 'terminated' };
          return { InstanceId: id, PreviousState: { Name: prev }, CurrentState: { Name: 'terminated' } };
        }),
      };
    });
    this.on('PutParameter', (input) => {
      const tags = Object.fromEntries(((input.Tags as { Key: string; Value: string }[]) ?? []).map((t) => [t.Key, t.Value]));
      this.params.set(input.Name as string, { value: input.Value as string, tags });
      return { Version: 1 };
    });
    this.on('DescribeParameters', (input) => {
      const path = ((input.ParameterFilters as { Values: string[] }[])[0]?.Values[0] ?? '') + '/';
      return { Parameters: [...this.params.keys()].filter((n) => n.startsWith(path)).map((Name) => ({ Name })) };
    });
    this.on('DeleteParameters', (input) => {
      const names = input.Names as string[];
      const deleted = names.filter((n) => this.params.delete(n));
      return { DeletedParameters: deleted, InvalidParameters: names.filter((n) => !deleted.includes(n)) };
    });
    this.on('DescribeSpotPriceHistory', () => ({ SpotPriceHistory: [{ SpotPrice: '0.0300' }] }));
  }

  live(): FakeInstance[] {
    return [...this.instances.values()].filter((i) => i.State.Name !== 'terminated');
  }

  setPhase(id: string, phase: string): void {
    const i = this.instances.get(id);
    if (!i) return;
    i.Tags = i.Tags.filter((t) => t.Key !== 'spot-runner:phase').concat({ Key: 'spot-runner:phase', Value: phase });
  }
}
