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
import type { Pool, ResolvedImage } from './image.js';

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

/**
 * Errors about one pool (a type in one AZ), not the request: the other pools, and on-demand, may
 * still launch. Unsupported = the type is not offered in that AZ (offerings change; the check
 * before the launch can be stale).
 */
export function isPoolError(code: string): boolean {
  return isCapacityError(code) || code === 'Unsupported';
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
          Ebs: {
            Encrypted: true,
            DeleteOnTermination: true,
            VolumeType: 'gp3',
            ...(cfg.volumeSize ? { VolumeSize: cfg.volumeSize } : {}),
          },
        },
      ],
      ...(cfg.instanceProfile
        ? {
            IamInstanceProfile: cfg.instanceProfile.arn
              ? { Arn: cfg.instanceProfile.arn }
              : { Name: cfg.instanceProfile.name },
          }
        : {}),
      ...(cfg.securityGroupIds.length > 0 ? { SecurityGroupIds: cfg.securityGroupIds } : {}),
      TagSpecifications: [
        { ResourceType: 'instance', Tags: t },
        { ResourceType: 'volume', Tags: t },
      ],
    },
  };
}

/** Every type × every subnet, before offerings are known (dry runs and tests). */
export function allPools(cfg: StartConfig): Pool[] {
  const subnets: (string | undefined)[] = cfg.subnetIds.length > 0 ? cfg.subnetIds : [undefined];
  return cfg.instanceTypes.flatMap((instanceType, priority) =>
    subnets.map((subnetId) => ({ instanceType, priority, ...(subnetId ? { subnetId } : {}) })),
  );
}

/** One override per pool, in order of preference (Priority 0 is the first choice). */
export function overrides(
  cfg: StartConfig,
  market: Market,
  pools: Pool[] = allPools(cfg),
): FleetLaunchTemplateOverridesRequest[] {
  return pools.map((p) => ({
    InstanceType: p.instanceType as _InstanceType,
    Priority: p.priority,
    ...(p.subnetId ? { SubnetId: p.subnetId } : {}),
    ...(market === 'spot' && cfg.maxSpotPrice ? { MaxPrice: cfg.maxSpotPrice } : {}),
  }));
}

export function fleetRequest(
  cfg: StartConfig,
  templateId: string,
  market: Market,
  count: number,
  token: string,
  tags: Record<string, string>,
  pools?: Pool[],
): CreateFleetCommandInput {
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
    SpotOptions: { AllocationStrategy: cfg.allocationStrategy },
    OnDemandOptions: { AllocationStrategy: 'prioritized' },
    LaunchTemplateConfigs: [
      {
        LaunchTemplateSpecification: { LaunchTemplateId: templateId, Version: '$Latest' },
        Overrides: overrides(cfg, market, pools),
      },
    ],
  };
}

export async function createLaunchTemplate(
  aws: AwsClients,
  req: CreateLaunchTemplateCommandInput,
  signal?: AbortSignal,
): Promise<string> {
  const out = await aws.ec2.send(new CreateLaunchTemplateCommand(req), { abortSignal: signal });
  const id = out.LaunchTemplate?.LaunchTemplateId;
  if (!id) throw new SpotRunnerError('CreateLaunchTemplate returned no template id');
  return id;
}

export interface FleetOutcome {
  instances: LaunchedInstance[];
  errors: FleetError[];
}

export interface RetryOptions {
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** How long a just-created template may stay unknown to CreateFleet. */
  templateBudgetMs: number;
}

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

export const DEFAULT_RETRY: RetryOptions = { sleep: defaultSleep, templateBudgetMs: 30_000 };

/**
 * EC2 is eventually consistent: a template created a moment ago may answer
 * InvalidLaunchTemplateId.NotFound. The retry sends the same request, ClientToken included, so a
 * call that did launch is answered with its first result instead of launching twice.
 */
async function sendFleet(
  aws: AwsClients,
  req: CreateFleetCommandInput,
  signal: AbortSignal | undefined,
  r: RetryOptions,
) {
  let waited = 0;
  for (let delay = 250; ; delay = Math.min(delay * 2, 4_000)) {
    try {
      return await aws.ec2.send(new CreateFleetCommand(req), { abortSignal: signal });
    } catch (e) {
      if (!/^InvalidLaunchTemplate(Id|Name)\.NotFound/.test(errorCode(e)) || waited >= r.templateBudgetMs) throw e;
      await r.sleep(delay, signal);
      waited += delay;
    }
  }
}

export async function createFleet(
  aws: AwsClients,
  req: CreateFleetCommandInput,
  signal?: AbortSignal,
  r: RetryOptions = DEFAULT_RETRY,
): Promise<FleetOutcome> {
  const out = await sendFleet(aws, req, signal, r);
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
  return errors
    .map(
      (e) =>
        `${e.code} (${e.market}${e.instanceType ? ` ${e.instanceType}` : ''}${e.subnetId ? ` in ${e.subnetId}` : ''}): ${e.message}`,
    )
    .join('; ');
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
  pools?: Pool[],
  retry: RetryOptions = DEFAULT_RETRY,
): Promise<{ instances: LaunchedInstance[]; errors: FleetError[] }> {
  const first = await createFleet(
    aws,
    fleetRequest(cfg, templateId, cfg.market, cfg.count, tokenFor(cfg.market), tags, pools),
    signal,
    retry,
  ).catch((e: unknown): FleetOutcome => {
    // Instant fleets report capacity per override, but a whole-call capacity error means the same.
    if (!isCapacityError(errorCode(e))) throw e;
    return { instances: [], errors: [{ code: errorCode(e), message: errorMessage(e), market: cfg.market }] };
  });
  onLaunched(first.instances);
  if (cfg.exactType) checkExactType(cfg, first.instances);
  const instances = [...first.instances];
  const errors = [...first.errors];
  let missing = cfg.count - instances.length;
  if (missing <= 0) return { instances: instances.slice(0, cfg.count), errors };

  const fatal = first.errors.filter((e) => !isPoolError(e.code));
  if (fatal.length > 0)
    throw new SpotRunnerError(`EC2 Fleet launched ${instances.length} of ${cfg.count}: ${describeErrors(fatal)}`);
  if (cfg.market !== 'spot' || !cfg.onDemandFallback) {
    const why = first.errors.length > 0 ? describeErrors(first.errors) : 'no error was given';
    const hint =
      cfg.market === 'spot'
        ? ' Set on-demand-fallback: true, or add instance types or subnets.'
        : ' Add instance types or subnets.';
    throw new SpotRunnerError(
      `Not enough ${cfg.market} capacity: launched ${instances.length} of ${cfg.count}: ${why}.${hint}`,
    );
  }
  log(
    `Spot capacity short by ${missing} (${describeErrors(first.errors) || 'no error given'}); launching ${missing} on-demand`,
  );
  const second = await createFleet(
    aws,
    fleetRequest(cfg, templateId, 'on-demand', missing, tokenFor('on-demand'), tags, pools),
    signal,
    retry,
  );
  onLaunched(second.instances);
  if (cfg.exactType) checkExactType(cfg, second.instances);
  instances.push(...second.instances);
  errors.push(...second.errors);
  missing = cfg.count - instances.length;
  if (missing > 0) {
    throw new SpotRunnerError(
      `Launched ${instances.length} of ${cfg.count} even with on-demand fallback: ${describeErrors(errors) || 'no error given'}`,
    );
  }
  return { instances, errors };
}

/** exact-type: the fleet can only name one type, but an answer with another one is still refused (and rolled back). */
function checkExactType(cfg: StartConfig, instances: LaunchedInstance[]): void {
  const wrong = instances.filter((i) => i.instanceType && i.instanceType !== cfg.instanceTypes[0]);
  if (wrong.length > 0) {
    throw new SpotRunnerError(
      `exact-type: EC2 launched ${wrong.map((i) => `${i.instanceId} as ${i.instanceType}`).join(', ')}, not ${cfg.instanceTypes[0] ?? ''}; rolling back`,
    );
  }
}
