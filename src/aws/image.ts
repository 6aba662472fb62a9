import { DescribeImagesCommand, type Image, type _InstanceType, DescribeInstanceTypesCommand, DescribeSecurityGroupsCommand, DescribeSubnetsCommand } from '@aws-sdk/client-ec2';
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

export interface LaunchPlanInputs {
  image: ResolvedImage;
  /** subnet id → availability zone */
  subnets: Record<string, string>;
}

const ARCHES: Arch[] = ['x86_64', 'arm64'];

/** Read-only checks against AWS that turn a plausible config into a launchable one. */
export async function resolveLaunchInputs(cfg: StartConfig, aws: AwsClients, signal?: AbortSignal): Promise<LaunchPlanInputs> {
  const opts = { abortSignal: signal };
  const [typeArches, subnets] = await Promise.all([instanceTypeArches(cfg.instanceTypes, aws, opts), describeSubnets(cfg.subnetIds, aws, opts), checkSecurityGroups(cfg.securityGroupIds, aws, opts)]);

  let arch: Arch | undefined;
  if (cfg.image.kind === 'ssm' && cfg.image.name.includes('{arch}')) {
    // The types decide the architecture: all of them must share one.
    const common = ARCHES.filter((a) => cfg.instanceTypes.every((t) => typeArches[t]?.includes(a)));
    if (common.length === 0) {
      throw new InputError('instance-types', `the types do not share one architecture (${cfg.instanceTypes.map((t) => `${t}: ${typeArches[t]?.join('/')}`).join(', ')})`, 'list only x86_64 types or only arm64 (Graviton) types');
    }
    arch = common[0];
  }
  const image = await resolveImage(cfg, aws, arch, opts);
  const mismatched = cfg.instanceTypes.filter((t) => !typeArches[t]?.includes(image.arch));
  if (mismatched.length > 0) {
    throw new InputError('instance-types', `${mismatched.join(', ')} cannot run the ${image.arch} image ${image.id}`, `choose ${image.arch} instance types, or an image built for their architecture`);
  }
  if (cfg.volumeSize !== undefined && image.rootVolumeSize !== undefined && cfg.volumeSize < image.rootVolumeSize) {
    throw new InputError('volume-size', `${cfg.volumeSize} GiB is smaller than the image's ${image.rootVolumeSize} GiB root snapshot`, `give at least ${image.rootVolumeSize}, or leave it empty`);
  }
  return { image, subnets };
}

async function instanceTypeArches(types: string[], aws: AwsClients, opts: { abortSignal?: AbortSignal }): Promise<Record<string, string[]>> {
  try {
    const out = await aws.ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: types as _InstanceType[] }), opts);
    const found: Record<string, string[]> = {};
    for (const t of out.InstanceTypes ?? []) {
      if (t.InstanceType) found[t.InstanceType] = t.ProcessorInfo?.SupportedArchitectures ?? [];
    }
    const missing = types.filter((t) => !(t in found));
    if (missing.length > 0) throw new InputError('instance-types', `${missing.join(', ')} not offered in this region`, 'check the spelling and that the type exists in aws-region');
    return found;
  } catch (e) {
    if (e instanceof InputError) throw e;
    if (/InvalidInstanceType/.test(errorCode(e))) {
      throw new InputError('instance-types', errorMessage(e), 'check the spelling and that the type exists in aws-region');
    }
    throw e;
  }
}

async function resolveImage(cfg: StartConfig, aws: AwsClients, arch: Arch | undefined, opts: { abortSignal?: AbortSignal }): Promise<ResolvedImage> {
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
        throw new InputError('image', `SSM parameter ${parameter} does not exist in ${cfg.region}`, 'publish the AMI id there (see build-ami.yml) or give an ami-… id');
      }
      throw e;
    }
    if (!/^ami-[0-9a-f]{8,17}$/.test(id)) throw new InputError('image', `SSM parameter ${parameter} holds '${id.slice(0, 40)}', not an AMI id`, 'store an ami-… id in it');
  }
  let images: Image[];
  try {
    images = (await aws.ec2.send(new DescribeImagesCommand({ ImageIds: [id] }), opts)).Images ?? [];
  } catch (e) {
    if (/InvalidAMIID/.test(errorCode(e))) images = [];
    else throw e;
  }
  const img = images[0];
  if (!img) throw new InputError('image', `AMI ${id}${parameter ? ` (from ${parameter})` : ''} was not found or is not visible to this account in ${cfg.region}`, 'check the id, the region and the AMI launch permissions');
  if (img.State && img.State !== 'available') throw new InputError('image', `AMI ${id} is ${img.State}, not available`, 'wait for it to become available or use another image');
  const a = img.Architecture;
  if (a !== 'x86_64' && a !== 'arm64') throw new InputError('image', `AMI ${id} is ${a}, which spot-runner does not support`, 'use an x86_64 or arm64 image');
  const rootDeviceName = img.RootDeviceName ?? '/dev/xvda';
  const root = img.BlockDeviceMappings?.find((m) => m.DeviceName === rootDeviceName);
  const runnerVersion = img.Tags?.find((t) => t.Key === 'spot-runner:runner-version')?.Value;
  return { id, arch: a, rootDeviceName, rootVolumeSize: root?.Ebs?.VolumeSize, parameter, runnerVersion };
}

async function describeSubnets(ids: string[], aws: AwsClients, opts: { abortSignal?: AbortSignal }): Promise<Record<string, string>> {
  if (ids.length === 0) return {};
  try {
    const out = await aws.ec2.send(new DescribeSubnetsCommand({ SubnetIds: ids }), opts);
    return Object.fromEntries((out.Subnets ?? []).map((s) => [s.SubnetId ?? '', s.AvailabilityZone ?? '']));
  } catch (e) {
    if (/InvalidSubnetID/.test(errorCode(e))) throw new InputError('subnet-ids', errorMessage(e), 'list subnets that exist in aws-region');
    throw e;
  }
}

async function checkSecurityGroups(ids: string[], aws: AwsClients, opts: { abortSignal?: AbortSignal }): Promise<void> {
  if (ids.length === 0) return;
  try {
    await aws.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: ids }), opts);
  } catch (e) {
    if (/InvalidGroup/.test(errorCode(e))) throw new InputError('security-group-ids', errorMessage(e), 'list security groups that exist in aws-region (and in the subnets’ VPC)');
    throw e;
  }
}
