import {
  CreateFleetCommand,
  CreateLaunchTemplateCommand,
  type CreateFleetCommandInput,
  type CreateLaunchTemplateCommandInput,
  type FleetLaunchTemplateOverridesRequest,
  type Tag,
  type _InstanceType,
} from '@aws-sdk/client-ec2';
import type { Market, StartConfig } from '../config.js';
import { SpotRunnerError, errorCode, errorMessage } from '../errors.js';
import type { AwsClients } from './clients.js';
import type { ResolvedImage } from './image.js';

export interface LaunchedInstance {
  instanceId: string;
  instanceType: string;
  subnetId?: string;
  availabilityZone?: string;
  market: Market;
}

export interface FleetError {
  code: string;
  message: string;
  instanceType?: string;
  subnetId?: string;
  market: Market;
}

// Errors that mean "no room right now", not "this request is wrong": on-demand may still have room.
const CAPACITY_CODES = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientHostCapacity',
  'UnfulfillableCapacity',
  'MaxSpotInstanceCountExceeded',
  'SpotMaxPriceTooLow',
  'InsufficientFreeAddressesInSubnet',
  'capacity-not-available',
]);

export function isCapacityError(code: string): boolean {
  return CAPACITY_CODES.has(code);
}

export function toTags(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

export function launchTemplateRequest(
  cfg: StartConfig,
  image: ResolvedImage,
  name: string,
  userData: string,
  tags: Record<string, string>,
  token: string,
): CreateLaunchTemplateCommandInput {
  const t = toTags(tags);
  return {
    LaunchTemplateName: name,
    ClientToken: token,
    TagSpecifications: [{ ResourceType: 'launch-template', Tags: t }],
    LaunchTemplateData: {
      ImageId: image.id,
      UserData: Buffer.from(userData, 'utf8').toString('base64'),
      // The instance powers itself off when done; this turns power-off into termination.
      InstanceInitiatedShutdownBehavior: 'terminate',
      MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' },
      BlockDeviceMappings: [
        {
          DeviceName: image.rootDeviceName,
          Ebs: { Encrypted: true, DeleteOnTermination: true, VolumeType: 'gp3', ...(cfg.volumeSize ? { VolumeSize: cfg.volumeSize } : {}) },
        },
      ],
      ...(cfg.instanceProfile ? { IamInstanceProfile: cfg.instanceProfile.arn ? { Arn: cfg.instanceProfile.arn } : { Name: cfg.instanceProfile.name } } : {}),
      ...(cfg.securityGroupIds.length > 0 ? { SecurityGroupIds: cfg.securityGroupIds } : {}),
      TagSpecifications: [
        { ResourceType: 'instance', Tags: t },
        { ResourceType: 'volume', Tags: t },
      ],
    },
  };
}

/** Instance types × subnets, in order of preference (Priority 0 is the first choice). */
export function overrides(cfg: StartConfig, market: Market): FleetLaunchTemplateOverridesRequest[] {
  const subnets: (string | undefined)[] = cfg.subnetIds.length > 0 ? cfg.subnetIds : [undefined];
  const out: FleetLaunchTemplateOverridesRequest[] = [];
  cfg.instanceTypes.forEach((type, i) => {
    for (const subnet of subnets) {
      out.push({
        InstanceType: type as _InstanceType,
        Priority: i,
        ...(subnet ? { SubnetId: subnet } : {}),
        ...(market === 'spot' && cfg.maxSpotPrice ? { MaxPrice: cfg.maxSpotPrice } : {}),
      });
    }
  });
  return out;
}

export function fleetRequest(cfg: StartConfig, templateId: string, market: Market, count: number, token: string, tags: Record<string, string>): CreateFleetCommandInput {
  return {
    Type: 'instant',
    ClientToken: token,
    // The template tags the instances too; repeating them here puts them in the request itself,
    // where IAM's aws:RequestTag conditions are evaluated.
    TagSpecifications: [{ ResourceType: 'instance', Tags: toTags(tags) }],
    TargetCapacitySpecification: {
      TotalTargetCapacity: count,
      DefaultTargetCapacityType: market,
      ...(market === 'spot' ? { SpotTargetCapacity: count } : { OnDemandTargetCapacity: count }),
    },
    SpotOptions: { AllocationStrategy: 'price-capacity-optimized' },
    OnDemandOptions: { AllocationStrategy: 'prioritized' },
    LaunchTemplateConfigs: [{ LaunchTemplateSpecification: { LaunchTemplateId: templateId, Version: '$Latest' }, Overrides: overrides(cfg, market) }],
  };
}

export async function createLaunchTemplate(aws: AwsClients, req: CreateLaunchTemplateCommandInput, signal?: AbortSignal): Promise<string> {
  const out = await aws.ec2.send(new CreateLaunchTemplateCommand(req), { abortSignal: signal });
  const id = out.LaunchTemplate?.LaunchTemplateId;
  if (!id) throw new SpotRunnerError('CreateLaunchTemplate returned no template id');
  return id;
}

export interface FleetOutcome {
  instances: LaunchedInstance[];
  errors: FleetError[];
}

export async function createFleet(aws: AwsClients, req: CreateFleetCommandInput, signal?: AbortSignal): Promise<FleetOutcome> {
  const out = await aws.ec2.send(new CreateFleetCommand(req), { abortSignal: signal });
  const market = (req.TargetCapacitySpecification?.DefaultTargetCapacityType ?? 'spot') as Market;
  const instances: LaunchedInstance[] = [];
  for (const group of out.Instances ?? []) {
    const o = group.LaunchTemplateAndOverrides?.Overrides;
    for (const id of group.InstanceIds ?? []) {
      instances.push({
        instanceId: id,
        instanceType: group.InstanceType ?? o?.InstanceType ?? '',
        subnetId: o?.SubnetId,
        availabilityZone: o?.AvailabilityZone,
        market: group.Lifecycle === 'on-demand' ? 'on-demand' : group.Lifecycle === 'spot' ? 'spot' : market,
      });
    }
  }
  const errors: FleetError[] = (out.Errors ?? []).map((e) => ({
    code: e.ErrorCode ?? 'Unknown',
    message: e.ErrorMessage ?? '',
    instanceType: e.LaunchTemplateAndOverrides?.Overrides?.InstanceType,
    subnetId: e.LaunchTemplateAndOverrides?.Overrides?.SubnetId,
    market: e.Lifecycle === 'on-demand' ? 'on-demand' : e.Lifecycle === 'spot' ? 'spot' : market,
  }));
  return { instances, errors };
}

export function describeErrors(errors: FleetError[]): string {
  return errors.map((e) => `${e.code} (${e.market}${e.instanceType ? ` ${e.instanceType}` : ''}${e.subnetId ? ` in ${e.subnetId}` : ''}): ${e.message}`).join('; ');
}

export interface LaunchPlan {
  primary: CreateFleetCommandInput;
  fallbackAllowed: boolean;
}

/**
 * One instant fleet for all N; if spot came up short only for lack of capacity, one more
 * on-demand fleet for exactly the missing count. Anything launched is reported through
 * onLaunched before any decision, so it is always recorded for rollback.
 */
export async function launch(
  aws: AwsClients,
  cfg: StartConfig,
  templateId: string,
  tags: Record<string, string>,
  tokenFor: (purpose: string) => string,
  onLaunched: (instances: LaunchedInstance[]) => void,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<{ instances: LaunchedInstance[]; errors: FleetError[] }> {
  const first = await createFleet(aws, fleetRequest(cfg, templateId, cfg.market, cfg.count, tokenFor(cfg.market), tags), signal).catch((e: unknown): FleetOutcome => {
    // Instant fleets report capacity per override, but a whole-call capacity error means the same.
    if (!isCapacityError(errorCode(e))) throw e;
    return { instances: [], errors: [{ code: errorCode(e), message: errorMessage(e), market: cfg.market }] };
  });
  onLaunched(first.instances);
  const instances = [...first.instances];
  const errors = [...first.errors];
  let missing = cfg.count - instances.length;
  if (missing <= 0) return { instances: instances.slice(0, cfg.count), errors };

  const fatal = first.errors.filter((e) => !isCapacityError(e.code));
  if (fatal.length > 0) throw new SpotRunnerError(`EC2 Fleet launched ${instances.length} of ${cfg.count}: ${describeErrors(fatal)}`);
  if (cfg.market !== 'spot' || !cfg.onDemandFallback) {
    const why = first.errors.length > 0 ? describeErrors(first.errors) : 'no error was given';
    const hint = cfg.market === 'spot' ? " Set on-demand-fallback: true, or add instance types or subnets." : ' Add instance types or subnets.';
    throw new SpotRunnerError(`Not enough ${cfg.market} capacity: launched ${instances.length} of ${cfg.count}: ${why}.${hint}`);
  }
  log(`Spot capacity short by ${missing} (${describeErrors(first.errors) || 'no error given'}); launching ${missing} on-demand`);
  const second = await createFleet(aws, fleetRequest(cfg, templateId, 'on-demand', missing, tokenFor('on-demand'), tags), signal);
  onLaunched(second.instances);
  instances.push(...second.instances);
  errors.push(...second.errors);
  missing = cfg.count - instances.length;
  if (missing > 0) {
    throw new SpotRunnerError(`Launched ${instances.length} of ${cfg.count} even with on-demand fallback: ${describeErrors(errors) || 'no error given'}`);
  }
  return { instances, errors };
}
