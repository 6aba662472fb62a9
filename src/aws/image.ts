import {
  DescribeImagesCommand,
  type Image,
  type _InstanceType,
  DescribeInstanceTypesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  paginateDescribeInstanceTypeOfferings,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import type { Arch, StartConfig } from '../config.js';
import { InputError, errorCode, errorMessage } from '../errors.js';
import type { AwsClients } from './clients.js';

export interface ResolvedImage {
  id: string;
  arch: Arch;
  rootDeviceName: string;
  rootVolumeSize?: number;
  /** The SSM parameter it came from, if any. */
  parameter?: string;
  /** The runner version the image pinned (its spot-runner:runner-version tag), if tagged. */
  runnerVersion?: string;
}

/** One capacity pool: an instance type in one subnet (so one AZ), or anywhere when no subnet is given. */
export interface Pool {
  instanceType: string;
  subnetId?: string;
  availabilityZone?: string;
  /** 0 = first choice: the type's place in instance-types. */
  priority: number;
}

export interface LaunchPlanInputs {
  image: ResolvedImage;
  /** subnet id → availability zone */
  subnets: Record<string, string>;
  /** What the fleet may launch into: one subnet per AZ, only pools EC2 offers. */
  pools: Pool[];
  /** Why subnets or pools were left out, for the log. */
  notes: string[];
  /** vCPUs per instance type (for the GitHub-hosted comparison). */
  vcpus: Record<string, number>;
}

const ARCHES: Arch[] = ['x86_64', 'arm64'];

/** Read-only checks against AWS that turn a plausible config into a launchable one. */
export async function resolveLaunchInputs(
  cfg: StartConfig,
  aws: AwsClients,
  signal?: AbortSignal,
  o: { pools?: boolean } = {},
): Promise<LaunchPlanInputs> {
  const opts = { abortSignal: signal };
  // Without pools (a warm-pool start, until it knows it needs cold machines): no subnet, security
  // group or offering reads; resolvePools does them when needed.
  const wantPools = o.pools ?? true;
  const [typeInfo, subnets] = await Promise.all([
    instanceTypeArches(cfg.instanceTypes, aws, opts),
    wantPools ? describeSubnets(cfg.subnetIds, aws, opts) : Promise.resolve({} as Record<string, string>),
    wantPools ? checkSecurityGroups(cfg.securityGroupIds, aws, opts) : Promise.resolve(),
  ]);
  const typeArches = typeInfo.arches;

  let arch: Arch | undefined;
  if (cfg.image.kind === 'ssm' && cfg.image.name.includes('{arch}')) {
    // The types decide the architecture: all of them must share one.
    const common = ARCHES.filter((a) => cfg.instanceTypes.every((t) => typeArches[t]?.includes(a)));
    if (common.length === 0) {
      throw new InputError(
        'instance-types',
        `the types do not share one architecture (${cfg.instanceTypes.map((t) => `${t}: ${typeArches[t]?.join('/')}`).join(', ')})`,
        'list only x86_64 types or only arm64 (Graviton) types',
      );
    }
    arch = common[0];
  }
  const image = await resolveImage(cfg, aws, arch, opts);
  const mismatched = cfg.instanceTypes.filter((t) => !typeArches[t]?.includes(image.arch));
  if (mismatched.length > 0) {
    throw new InputError(
      'instance-types',
      `${mismatched.join(', ')} cannot run the ${image.arch} image ${image.id}`,
      `choose ${image.arch} instance types, or an image built for their architecture`,
    );
  }
  if (cfg.volumeSize !== undefined && image.rootVolumeSize !== undefined && cfg.volumeSize < image.rootVolumeSize) {
    throw new InputError(
      'volume-size',
      `${cfg.volumeSize} GiB is smaller than the image's ${image.rootVolumeSize} GiB root snapshot`,
      `give at least ${image.rootVolumeSize}, or leave it empty`,
    );
  }
  const { pools, notes } = wantPools ? await planPools(cfg, subnets, aws, opts) : { pools: [], notes: [] };
  return { image, subnets, pools, notes, vcpus: typeInfo.vcpus };
}

/** The subnet, security-group and capacity-pool part of resolveLaunchInputs, on its own. */
export async function resolvePools(
  cfg: StartConfig,
  aws: AwsClients,
  signal?: AbortSignal,
): Promise<{ pools: Pool[]; notes: string[] }> {
  const opts = { abortSignal: signal };
  const [subnets] = await Promise.all([
    describeSubnets(cfg.subnetIds, aws, opts),
    checkSecurityGroups(cfg.securityGroupIds, aws, opts),
  ]);
  return planPools(cfg, subnets, aws, opts);
}

/**
 * EC2 Fleet refuses two subnets of one AZ in one request (InvalidFleetConfig, "duplicate instance
 * pools"), so the first listed subnet of each AZ is kept and the others are named in the log. Then
 * the (type, AZ) pools EC2 does not offer are dropped (they would only answer Unsupported).
 */
export async function planPools(
  cfg: StartConfig,
  subnets: Record<string, string>,
  aws: AwsClients,
  opts: { abortSignal?: AbortSignal },
): Promise<{ pools: Pool[]; notes: string[] }> {
  const notes: string[] = [];
  if (cfg.subnetIds.length === 0)
    return { pools: cfg.instanceTypes.map((instanceType, priority) => ({ instanceType, priority })), notes };
  const byAz = new Map<string, string[]>();
  for (const id of cfg.subnetIds) {
    const az = subnets[id] ?? '';
    byAz.set(az, [...(byAz.get(az) ?? []), id]);
  }
  const kept: string[] = [];
  for (const [az, ids] of byAz) {
    kept.push(ids[0] as string);
    if (ids.length > 1)
      notes.push(
        `subnets ${ids.slice(1).join(', ')} left out: ${az} already has ${ids[0]}, and one EC2 Fleet may use only one subnet per Availability Zone`,
      );
  }
  const azs = [...new Set(kept.map((id) => subnets[id] ?? ''))].filter(Boolean);
  const offered = new Set<string>();
  for await (const page of paginateDescribeInstanceTypeOfferings(
    { client: aws.ec2 },
    {
      LocationType: 'availability-zone',
      Filters: [
        { Name: 'instance-type', Values: cfg.instanceTypes },
        { Name: 'location', Values: azs },
      ],
    },
  )) {
    for (const o of page.InstanceTypeOfferings ?? []) offered.add(`${o.InstanceType ?? ''}@${o.Location ?? ''}`);
    if (opts.abortSignal?.aborted) break;
  }
  const pools: Pool[] = [];
  const missing: string[] = [];
  cfg.instanceTypes.forEach((instanceType, priority) => {
    for (const subnetId of kept) {
      const availabilityZone = subnets[subnetId] ?? '';
      if (offered.has(`${instanceType}@${availabilityZone}`))
        pools.push({ instanceType, subnetId, availabilityZone, priority });
      else missing.push(`${instanceType} in ${availabilityZone} (${subnetId})`);
    }
  });
  if (pools.length === 0) {
    throw new InputError(
      'instance-types',
      `EC2 offers none of the types in the subnets' Availability Zones: ${missing.join(', ')}`,
      'add a type offered there (aws ec2 describe-instance-type-offerings --location-type availability-zone), or subnets in other AZs',
    );
  }
  if (missing.length > 0) notes.push(`pools left out because EC2 does not offer them: ${missing.join(', ')}`);
  return { pools, notes };
}

async function instanceTypeArches(
  types: string[],
  aws: AwsClients,
  opts: { abortSignal?: AbortSignal },
): Promise<{ arches: Record<string, string[]>; vcpus: Record<string, number> }> {
  try {
    const out = await aws.ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: types as _InstanceType[] }), opts);
    const found: Record<string, string[]> = {};
    const vcpus: Record<string, number> = {};
    for (const t of out.InstanceTypes ?? []) {
      if (t.InstanceType) found[t.InstanceType] = t.ProcessorInfo?.SupportedArchitectures ?? [];
      if (t.InstanceType && t.VCpuInfo?.DefaultVCpus) vcpus[t.InstanceType] = t.VCpuInfo.DefaultVCpus;
    }
    const missing = types.filter((t) => !(t in found));
    if (missing.length > 0)
      throw new InputError(
        'instance-types',
        `${missing.join(', ')} not offered in this region`,
        'check the spelling and that the type exists in aws-region',
      );
    return { arches: found, vcpus };
  } catch (e) {
    if (e instanceof InputError) throw e;
    if (/InvalidInstanceType/.test(errorCode(e))) {
      throw new InputError(
        'instance-types',
        errorMessage(e),
        'check the spelling and that the type exists in aws-region',
      );
    }
    throw e;
  }
}

async function resolveImage(
  cfg: StartConfig,
  aws: AwsClients,
  arch: Arch | undefined,
  opts: { abortSignal?: AbortSignal },
): Promise<ResolvedImage> {
  let id: string;
  let parameter: string | undefined;
  if (cfg.image.kind === 'ami') {
    id = cfg.image.id;
  } else {
    parameter = cfg.image.name.replaceAll('{arch}', arch ?? '');
    try {
      const out = await aws.ssm.send(new GetParameterCommand({ Name: parameter }), opts);
      id = (out.Parameter?.Value ?? '').trim();
    } catch (e) {
      if (errorCode(e) === 'ParameterNotFound') {
        throw new InputError(
          'image',
          `SSM parameter ${parameter} does not exist in ${cfg.region}`,
          'publish the AMI id there (see build-ami.yml) or give an ami-… id',
        );
      }
      throw e;
    }
    if (!/^ami-[0-9a-f]{8,17}$/.test(id))
      throw new InputError(
        'image',
        `SSM parameter ${parameter} holds '${id.slice(0, 40)}', not an AMI id`,
        'store an ami-… id in it',
      );
  }
  let images: Image[];
  try {
    images = (await aws.ec2.send(new DescribeImagesCommand({ ImageIds: [id] }), opts)).Images ?? [];
  } catch (e) {
    if (/InvalidAMIID/.test(errorCode(e))) images = [];
    else throw e;
  }
  const img = images[0];
  if (!img)
    throw new InputError(
      'image',
      `AMI ${id}${parameter ? ` (from ${parameter})` : ''} was not found or is not visible to this account in ${cfg.region}`,
      'check the id, the region and the AMI launch permissions',
    );
  if (img.State && img.State !== 'available')
    throw new InputError(
      'image',
      `AMI ${id} is ${img.State}, not available`,
      'wait for it to become available or use another image',
    );
  const a = img.Architecture;
  if (a !== 'x86_64' && a !== 'arm64')
    throw new InputError(
      'image',
      `AMI ${id} is ${a}, which spot-runner does not support`,
      'use an x86_64 or arm64 image',
    );
  const rootDeviceName = img.RootDeviceName ?? '/dev/xvda';
  const root = img.BlockDeviceMappings?.find((m) => m.DeviceName === rootDeviceName);
  const runnerVersion = img.Tags?.find((t) => t.Key === 'spot-runner:runner-version')?.Value;
  return { id, arch: a, rootDeviceName, rootVolumeSize: root?.Ebs?.VolumeSize, parameter, runnerVersion };
}

async function describeSubnets(
  ids: string[],
  aws: AwsClients,
  opts: { abortSignal?: AbortSignal },
): Promise<Record<string, string>> {
  if (ids.length === 0) return {};
  try {
    const out = await aws.ec2.send(new DescribeSubnetsCommand({ SubnetIds: ids }), opts);
    return Object.fromEntries((out.Subnets ?? []).map((s) => [s.SubnetId ?? '', s.AvailabilityZone ?? '']));
  } catch (e) {
    if (/InvalidSubnetID/.test(errorCode(e)))
      throw new InputError('subnet-ids', errorMessage(e), 'list subnets that exist in aws-region');
    throw e;
  }
}

async function checkSecurityGroups(ids: string[], aws: AwsClients, opts: { abortSignal?: AbortSignal }): Promise<void> {
  if (ids.length === 0) return;
  try {
    await aws.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: ids }), opts);
  } catch (e) {
    if (/InvalidGroup/.test(errorCode(e)))
      throw new InputError(
        'security-group-ids',
        errorMessage(e),
        'list security groups that exist in aws-region (and in the subnets’ VPC)',
      );
    throw e;
  }
}
