import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  type Image,
  type Snapshot,
} from '@aws-sdk/client-ec2';
import { GetParametersByPathCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { errorCode, errorMessage } from '../errors.js';
import { imageSnapshotIds, listOwnImages, newestFirst, tagValue } from './images.js';
import { AMI_PARAMETER_ROOT, AMI_TAGS } from './names.js';

export interface HousekeepOptions {
  /** Only images (and orphaned snapshots) created more than this many days ago may go. */
  olderThanDays: number;
  /** Per variant/arch, the newest N images stay whatever their age: a guard against a wrong root or region. */
  keepNewest?: number;
  root?: string;
  now?: Date;
  dryRun?: boolean;
}

export interface HousekeepResult {
  referenced: string[];
  deregistered: { imageId: string; snapshots: string[] }[];
  deletedSnapshots: string[];
  kept: { id: string; reason: 'referenced' | 'newest' | 'young' | 'in-use' }[];
  errors: { id: string; message: string }[];
  dryRun: boolean;
}

/** Every AMI id any parameter under root holds: current and previous, all variants and arches. */
export async function referencedImageIds(ssm: SSMClient, root = AMI_PARAMETER_ROOT): Promise<Set<string>> {
  const ids = new Set<string>();
  let token: string | undefined;
  do {
    const out = await ssm.send(new GetParametersByPathCommand({ Path: root, Recursive: true, NextToken: token }));
    for (const p of out.Parameters ?? []) if (p.Value) ids.add(p.Value.trim());
    token = out.NextToken;
  } while (token);
  return ids;
}

async function listManagedSnapshots(ec2: EC2Client): Promise<Snapshot[]> {
  const snaps: Snapshot[] = [];
  let token: string | undefined;
  do {
    const out = await ec2.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: [{ Name: `tag:${AMI_TAGS.managed}`, Values: ['true'] }],
        NextToken: token,
      }),
    );
    snaps.push(...(out.Snapshots ?? []));
    token = out.NextToken;
  } while (token);
  return snaps;
}

function createdAt(image: Image): number {
  const t = Date.parse(image.CreationDate ?? '');
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t; // unknown age counts as young
}

/**
 * Deregisters managed AMIs older than N days that no parameter references, then deletes their
 * snapshots; then deletes managed snapshots older than N days that no image uses any more (left
 * over when an earlier run deregistered an image but failed to delete its snapshot).
 * Per-resource failures are collected, not thrown, so one stuck image does not block the rest.
 */
export async function housekeep(ec2: EC2Client, ssm: SSMClient, o: HousekeepOptions): Promise<HousekeepResult> {
  if (!(o.olderThanDays >= 1)) throw new Error(`olderThanDays must be at least 1, got ${o.olderThanDays}`);
  const keepNewest = o.keepNewest ?? 1;
  if (!(Number.isInteger(keepNewest) && keepNewest >= 0))
    throw new Error(`keepNewest must be a whole number ≥ 0, got ${keepNewest}`);
  const now = (o.now ?? new Date()).getTime();
  const cutoff = now - o.olderThanDays * 86_400_000;
  const dryRun = o.dryRun ?? false;

  const referenced = await referencedImageIds(ssm, o.root);
  const images = await listOwnImages(ec2, [{ Name: `tag:${AMI_TAGS.managed}`, Values: ['true'] }]);
  const result: HousekeepResult = {
    referenced: [...referenced].sort(),
    deregistered: [],
    deletedSnapshots: [],
    kept: [],
    errors: [],
    dryRun,
  };

  const groups = new Map<string, Image[]>();
  for (const image of images) {
    const key = `${tagValue(image, AMI_TAGS.variant) ?? '?'}/${tagValue(image, AMI_TAGS.arch) ?? '?'}`;
    groups.set(key, [...(groups.get(key) ?? []), image]);
  }

  const doomed: Image[] = [];
  for (const group of groups.values()) {
    group.sort(newestFirst).forEach((image, i) => {
      const id = image.ImageId ?? '';
      if (referenced.has(id)) result.kept.push({ id, reason: 'referenced' });
      else if (i < keepNewest) result.kept.push({ id, reason: 'newest' });
      else if (createdAt(image) >= cutoff) result.kept.push({ id, reason: 'young' });
      else doomed.push(image);
    });
  }

  const survivorSnapshots = new Set(images.filter((i) => !doomed.includes(i)).flatMap(imageSnapshotIds));
  for (const image of doomed) {
    const imageId = image.ImageId ?? '';
    const snapshots = imageSnapshotIds(image).filter((s) => !survivorSnapshots.has(s));
    try {
      // Deregister first: EC2 refuses to delete a snapshot an image still uses.
      if (!dryRun) await ec2.send(new DeregisterImageCommand({ ImageId: imageId }));
      result.deregistered.push({ imageId, snapshots });
    } catch (e) {
      result.errors.push({ id: imageId, message: errorMessage(e) });
      continue;
    }
    for (const snapshotId of snapshots) {
      try {
        if (!dryRun) await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
        result.deletedSnapshots.push(snapshotId);
      } catch (e) {
        result.errors.push({ id: snapshotId, message: errorMessage(e) });
      }
    }
  }

  // Orphans: tagged snapshots of images that are gone. In dry-run, the images above still "exist".
  const goneImages = new Set(result.deregistered.map((d) => d.imageId));
  const inUse = new Set(images.filter((i) => !goneImages.has(i.ImageId ?? '')).flatMap(imageSnapshotIds));
  for (const snap of await listManagedSnapshots(ec2)) {
    const id = snap.SnapshotId ?? '';
    if (!id || inUse.has(id) || result.deletedSnapshots.includes(id)) continue;
    if ((snap.StartTime?.getTime() ?? Number.POSITIVE_INFINITY) >= cutoff) continue;
    try {
      if (!dryRun) await ec2.send(new DeleteSnapshotCommand({ SnapshotId: id }));
      result.deletedSnapshots.push(id);
    } catch (e) {
      // Used by an image we do not manage (someone registered a copy): theirs to keep.
      if (/InvalidSnapshot\.InUse/.test(errorCode(e))) result.kept.push({ id, reason: 'in-use' });
      else result.errors.push({ id, message: errorMessage(e) });
    }
  }
  return result;
}
