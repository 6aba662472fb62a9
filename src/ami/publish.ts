import { CreateTagsCommand, type EC2Client, type Image } from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { errorCode } from '../errors.js';
import { describeImage, tagValue } from './images.js';
import {
  AMI_PARAMETER_ROOT,
  AMI_TAGS,
  checkImageId,
  currentParameter,
  previousParameter,
  type AmiArch,
} from './names.js';

export interface AmiClients {
  ec2: EC2Client;
  ssm: SSMClient;
}

export interface PublishTarget {
  variant: string;
  arch: AmiArch;
  /** Parameter root; tests and forks may move it. */
  root?: string;
}

export async function readParameter(ssm: SSMClient, name: string): Promise<string | undefined> {
  try {
    return (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
  } catch (e) {
    if (errorCode(e) === 'ParameterNotFound') return undefined;
    throw e;
  }
}

async function writeParameter(ssm: SSMClient, name: string, imageId: string, description: string): Promise<void> {
  // aws:ec2:image makes SSM check the id, and lets launches use resolve:ssm:<name> directly.
  await ssm.send(
    new PutParameterCommand({
      Name: name,
      Value: imageId,
      Type: 'String',
      DataType: 'aws:ec2:image',
      Overwrite: true,
      Description: description,
    }),
  );
}

/** The image must exist, be ours, be available, and be built for this variant and arch. */
async function requirePublishable(ec2: EC2Client, imageId: string, t: PublishTarget): Promise<Image> {
  const image = await describeImage(ec2, checkImageId(imageId));
  if (!image) throw new Error(`AMI ${imageId} does not exist in this region`);
  if (image.State !== 'available')
    throw new Error(`AMI ${imageId} is ${image.State ?? 'in an unknown state'}, not available`);
  if (tagValue(image, AMI_TAGS.managed) !== 'true')
    throw new Error(`AMI ${imageId} lacks ${AMI_TAGS.managed}=true; only images built by packer/ are published`);
  const variant = tagValue(image, AMI_TAGS.variant);
  const arch = tagValue(image, AMI_TAGS.arch);
  if (variant !== t.variant || arch !== t.arch) {
    throw new Error(`AMI ${imageId} is tagged ${variant ?? '?'}/${arch ?? '?'}, not ${t.variant}/${t.arch}`);
  }
  if (image.Architecture && image.Architecture !== t.arch)
    throw new Error(`AMI ${imageId} is an ${image.Architecture} image, not ${t.arch}`);
  return image;
}

export interface PublishResult {
  parameter: string;
  imageId: string;
  /** The id that was current before, now in …/previous (undefined on a first publish). */
  previousImageId?: string;
  changed: boolean;
  /** Set when nothing was written on purpose. */
  skipped?: 'rolled-back';
  image: Image;
}

/**
 * Makes imageId the current AMI for variant/arch and moves the old current id to …/previous.
 * Idempotent: publishing the current id again changes nothing (so …/previous keeps its rollback target).
 */
export async function publish(
  c: AmiClients,
  t: PublishTarget & { imageId: string; skipIfRolledBack?: boolean },
): Promise<PublishResult> {
  const root = t.root ?? AMI_PARAMETER_ROOT;
  const parameter = currentParameter(t.variant, t.arch, root);
  const image = await requirePublishable(c.ec2, t.imageId, t);
  const current = await readParameter(c.ssm, parameter);
  if (current === t.imageId)
    return {
      parameter,
      imageId: t.imageId,
      previousImageId: await readParameter(c.ssm, previousParameter(t.variant, t.arch, root)),
      changed: false,
      image,
    };
  if (t.skipIfRolledBack && tagValue(image, AMI_TAGS.rolledBack) !== undefined) {
    return { parameter, imageId: t.imageId, previousImageId: current, changed: false, skipped: 'rolled-back', image };
  }
  // previous first: if the second write fails, current still points at a good image.
  if (current)
    await writeParameter(
      c.ssm,
      previousParameter(t.variant, t.arch, root),
      current,
      `spot-runner ${t.variant}/${t.arch}: the AMI before ${t.imageId}`,
    );
  await writeParameter(c.ssm, parameter, t.imageId, `spot-runner ${t.variant}/${t.arch}: current AMI`);
  return { parameter, imageId: t.imageId, previousImageId: current, changed: true, image };
}

export interface RollbackResult {
  parameter: string;
  /** The id that was current and is now tagged rolled-back. */
  from: string;
  /** The id now current (was …/previous; …/previous keeps it). */
  to: string;
}

/**
 * Points the current parameter back at …/previous. …/previous is left as is, so a second rollback
 * is refused instead of flipping back to the bad image; the bad image is tagged so CI's
 * "already built" path does not re-publish it.
 */
export async function rollback(c: AmiClients, t: PublishTarget, now: Date = new Date()): Promise<RollbackResult> {
  const root = t.root ?? AMI_PARAMETER_ROOT;
  const parameter = currentParameter(t.variant, t.arch, root);
  const [current, previous] = await Promise.all([
    readParameter(c.ssm, parameter),
    readParameter(c.ssm, previousParameter(t.variant, t.arch, root)),
  ]);
  if (!current) throw new Error(`${parameter} does not exist: nothing is published for ${t.variant}/${t.arch}`);
  if (!previous) throw new Error(`${parameter}/previous does not exist: there is nothing to roll back to`);
  if (previous === current) throw new Error(`${parameter} already equals …/previous (${current}): already rolled back`);
  await requirePublishable(c.ec2, previous, t);
  if (await describeImage(c.ec2, current)) {
    await c.ec2.send(
      new CreateTagsCommand({ Resources: [current], Tags: [{ Key: AMI_TAGS.rolledBack, Value: now.toISOString() }] }),
    );
  }
  await writeParameter(
    c.ssm,
    parameter,
    previous,
    `spot-runner ${t.variant}/${t.arch}: current AMI (rolled back from ${current})`,
  );
  return { parameter, from: current, to: previous };
}
