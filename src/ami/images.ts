import { DescribeImagesCommand, type EC2Client, type Filter, type Image } from '@aws-sdk/client-ec2';
import { errorCode } from '../errors.js';
import { AMI_TAGS, checkArch, checkContentHash, checkVariant, type AmiArch } from './names.js';

export function tagValue(image: Pick<Image, 'Tags'>, key: string): string | undefined {
  return image.Tags?.find((t) => t.Key === key)?.Value;
}

/** Sum of the image's EBS volume sizes, in GiB: what a launch will at least allocate. */
export function imageSizeGiB(image: Pick<Image, 'BlockDeviceMappings'>): number {
  return (image.BlockDeviceMappings ?? []).reduce((n, m) => n + (m.Ebs?.VolumeSize ?? 0), 0);
}

export function imageSnapshotIds(image: Pick<Image, 'BlockDeviceMappings'>): string[] {
  return (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []));
}

/** One image by id, or undefined when EC2 does not know it (never registered, or deregistered). */
export async function describeImage(ec2: EC2Client, imageId: string): Promise<Image | undefined> {
  try {
    const out = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId], IncludeDeprecated: true }));
    return out.Images?.find((i) => i.ImageId === imageId);
  } catch (e) {
    if (/InvalidAMIID/.test(errorCode(e))) return undefined;
    throw e;
  }
}

/** Every image this account owns that matches the filters, across pages. */
export async function listOwnImages(ec2: EC2Client, filters: Filter[]): Promise<Image[]> {
  const images: Image[] = [];
  let token: string | undefined;
  do {
    const out = await ec2.send(
      new DescribeImagesCommand({ Owners: ['self'], Filters: filters, IncludeDeprecated: true, NextToken: token }),
    );
    images.push(...(out.Images ?? []));
    token = out.NextToken;
  } while (token);
  return images;
}

export function newestFirst(a: Image, b: Image): number {
  return (b.CreationDate ?? '').localeCompare(a.CreationDate ?? '');
}

export interface FoundImage {
  imageId: string;
  image: Image;
  /** Rolled back once: CI must not re-publish it automatically. */
  rolledBack: boolean;
}

/** The newest available AMI built from exactly this content, for this variant and arch. */
export async function findByContentHash(
  ec2: EC2Client,
  q: { variant: string; arch: AmiArch; contentHash: string },
): Promise<FoundImage | undefined> {
  const images = await listOwnImages(ec2, [
    { Name: `tag:${AMI_TAGS.managed}`, Values: ['true'] },
    { Name: `tag:${AMI_TAGS.contentHash}`, Values: [checkContentHash(q.contentHash)] },
    { Name: `tag:${AMI_TAGS.variant}`, Values: [checkVariant(q.variant)] },
    { Name: `tag:${AMI_TAGS.arch}`, Values: [checkArch(q.arch)] },
    { Name: 'state', Values: ['available'] },
  ]);
  const image = images.sort(newestFirst)[0];
  if (!image?.ImageId) return undefined;
  return { imageId: image.ImageId, image, rolledBack: tagValue(image, AMI_TAGS.rolledBack) !== undefined };
}
