// The AMI publish / find / rollback / housekeeping logic, against moto's EC2 and SSM through the real SDK.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateImageCommand,
  CreateSnapshotCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { startMoto, type Moto } from '../test/lab/moto.js';
import { housekeep } from '../src/ami/housekeep.js';
import { describeImage, findByContentHash, imageSnapshotIds } from '../src/ami/images.js';
import { readManifest } from '../src/ami/manifest.js';
import { AMI_TAGS, type AmiArch } from '../src/ami/names.js';
import { publish, readParameter, rollback, type AmiClients } from '../src/ami/publish.js';
import { runCli } from '../src/ami/commands.js';

const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);
const HASH_C = 'c'.repeat(64);
const DAY = 86_400_000;

let moto: Moto;
const clientsCache = new Map<string, AmiClients>();
function clients(region = 'us-east-1'): AmiClients {
  let c = clientsCache.get(region);
  if (!c) {
    const cfg = {
      region,
      endpoint: moto.endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    c = { ec2: new EC2Client(cfg), ssm: new SSMClient(cfg) };
    clientsCache.set(region, c);
  }
  return c;
}

/** What Packer leaves behind: an AMI from a real instance, tagged like local.image_tags, snapshot tagged too. */
async function bakeImage(o: {
  variant: string;
  arch: AmiArch;
  hash: string;
  region?: string;
}): Promise<{ imageId: string; snapshotIds: string[] }> {
  const { ec2 } = clients(o.region);
  const sources =
    (await ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'architecture', Values: [o.arch] }] }))).Images ?? [];
  const source = sources.find((i) => i.ImageId);
  if (!source?.ImageId) throw new Error(`moto offers no ${o.arch} image to start from`);
  const run = await ec2.send(
    new RunInstancesCommand({
      ImageId: source.ImageId,
      MinCount: 1,
      MaxCount: 1,
      InstanceType: o.arch === 'arm64' ? 'c7g.large' : 'c7i.large',
    }),
  );
  const instanceId = run.Instances?.[0]?.InstanceId ?? '';
  const tags = [
    { Key: AMI_TAGS.managed, Value: 'true' },
    { Key: AMI_TAGS.variant, Value: o.variant },
    { Key: AMI_TAGS.arch, Value: o.arch },
    { Key: AMI_TAGS.contentHash, Value: o.hash },
  ];
  const made = await ec2.send(
    new CreateImageCommand({
      InstanceId: instanceId,
      Name: `spot-runner-${o.variant}-${o.arch}-${o.hash.slice(0, 4)}-${Math.random()}`,
      TagSpecifications: [{ ResourceType: 'image', Tags: tags }],
    }),
  );
  const imageId = made.ImageId ?? '';
  // Read straight from moto's answer, not through the code under test.
  const raw = (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images?.[0];
  const snapshotIds = (raw?.BlockDeviceMappings ?? []).flatMap((b) => (b.Ebs?.SnapshotId ? [b.Ebs.SnapshotId] : []));
  expect(snapshotIds.length).toBeGreaterThan(0);
  await ec2.send(new CreateTagsCommand({ Resources: snapshotIds, Tags: tags }));
  return { imageId, snapshotIds };
}

async function snapshotExists(id: string): Promise<boolean> {
  const out = await clients().ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
  return (out.Snapshots ?? []).some((s) => s.SnapshotId === id);
}

beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  await moto.reset();
});

describe('imageSnapshotIds', () => {
  it('lists the EBS snapshots of an image and skips instance-store and empty mappings', () => {
    const image = {
      BlockDeviceMappings: [
        { DeviceName: '/dev/sda1', Ebs: { SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', VolumeSize: 16 } },
        { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' },
        { DeviceName: '/dev/sdc', Ebs: { VolumeSize: 100 } },
        { DeviceName: '/dev/sdd', Ebs: { SnapshotId: 'snap-0bbbbbbbbbbbbbbb2' } },
      ],
    };
    expect(imageSnapshotIds(image)).toEqual(['snap-0aaaaaaaaaaaaaaa1', 'snap-0bbbbbbbbbbbbbbb2']);
    expect(imageSnapshotIds({})).toEqual([]);
  });
});

describe('publish and find by content hash', () => {
  it('publishes, keeps the old id in …/previous, is idempotent, and finds images by hash', async () => {
    const c = clients();
    const a = await bakeImage({ variant: 'base', arch: 'arm64', hash: HASH_A });
    const b = await bakeImage({ variant: 'base', arch: 'arm64', hash: HASH_B });

    const first = await publish(c, { variant: 'base', arch: 'arm64', imageId: a.imageId });
    expect(first).toMatchObject({
      parameter: '/spot-runner/ami/base/arm64',
      changed: true,
      previousImageId: undefined,
    });
    expect(await readParameter(c.ssm, '/spot-runner/ami/base/arm64')).toBe(a.imageId);
    expect(await readParameter(c.ssm, '/spot-runner/ami/base/arm64/previous')).toBeUndefined();

    const second = await publish(c, { variant: 'base', arch: 'arm64', imageId: b.imageId });
    expect(second).toMatchObject({ changed: true, previousImageId: a.imageId });
    const stored = await c.ssm.send(new GetParameterCommand({ Name: '/spot-runner/ami/base/arm64' }));
    expect(stored.Parameter).toMatchObject({ Value: b.imageId, DataType: 'aws:ec2:image' });
    expect(await readParameter(c.ssm, '/spot-runner/ami/base/arm64/previous')).toBe(a.imageId);

    // Re-running CI must not overwrite …/previous with the current id.
    expect(await publish(c, { variant: 'base', arch: 'arm64', imageId: b.imageId })).toMatchObject({
      changed: false,
      previousImageId: a.imageId,
    });
    expect(await readParameter(c.ssm, '/spot-runner/ami/base/arm64/previous')).toBe(a.imageId);

    expect((await findByContentHash(c.ec2, { variant: 'base', arch: 'arm64', contentHash: HASH_B }))?.imageId).toBe(
      b.imageId,
    );
    expect((await findByContentHash(c.ec2, { variant: 'base', arch: 'arm64', contentHash: HASH_A }))?.imageId).toBe(
      a.imageId,
    );
    expect(await findByContentHash(c.ec2, { variant: 'base', arch: 'arm64', contentHash: HASH_C })).toBeUndefined();
    expect(await findByContentHash(c.ec2, { variant: 'base', arch: 'x86_64', contentHash: HASH_A })).toBeUndefined();
    expect(await findByContentHash(c.ec2, { variant: 'bench', arch: 'arm64', contentHash: HASH_A })).toBeUndefined();
  });

  it('refuses images that do not exist, are not managed, or are for another arch or variant', async () => {
    const c = clients();
    const arm = await bakeImage({ variant: 'base', arch: 'arm64', hash: HASH_A });
    const x86 = await bakeImage({ variant: 'gpu', arch: 'x86_64', hash: HASH_A });
    await expect(publish(c, { variant: 'base', arch: 'x86_64', imageId: arm.imageId })).rejects.toThrow(
      /tagged base\/arm64, not base\/x86_64/,
    );
    await expect(publish(c, { variant: 'base', arch: 'x86_64', imageId: x86.imageId })).rejects.toThrow(
      /tagged gpu\/x86_64/,
    );
    await expect(publish(c, { variant: 'base', arch: 'arm64', imageId: 'ami-0123456789abcdef0' })).rejects.toThrow(
      /does not exist/,
    );
    await expect(publish(c, { variant: 'base', arch: 'arm64', imageId: 'not-an-ami' })).rejects.toThrow(
      /not an AMI id/,
    );
    await expect(publish(c, { variant: '../etc', arch: 'arm64', imageId: arm.imageId })).rejects.toThrow(/variant/);
    expect(await readParameter(c.ssm, '/spot-runner/ami/base/x86_64')).toBeUndefined();
  });
});

describe('rollback', () => {
  it('points current back at previous, tags the bad image, and refuses to flip twice', async () => {
    const c = clients();
    const good = await bakeImage({ variant: 'rust-kani', arch: 'x86_64', hash: HASH_A });
    const bad = await bakeImage({ variant: 'rust-kani', arch: 'x86_64', hash: HASH_B });
    await expect(rollback(c, { variant: 'rust-kani', arch: 'x86_64' })).rejects.toThrow(/nothing is published/);
    await publish(c, { variant: 'rust-kani', arch: 'x86_64', imageId: good.imageId });
    await expect(rollback(c, { variant: 'rust-kani', arch: 'x86_64' })).rejects.toThrow(/nothing to roll back to/);
    await publish(c, { variant: 'rust-kani', arch: 'x86_64', imageId: bad.imageId });

    const r = await rollback(c, { variant: 'rust-kani', arch: 'x86_64' }, new Date('2026-11-01T00:00:00Z'));
    expect(r).toEqual({ parameter: '/spot-runner/ami/rust-kani/x86_64', from: bad.imageId, to: good.imageId });
    expect(await readParameter(c.ssm, '/spot-runner/ami/rust-kani/x86_64')).toBe(good.imageId);
    expect(await readParameter(c.ssm, '/spot-runner/ami/rust-kani/x86_64/previous')).toBe(good.imageId);
    const badNow = await describeImage(c.ec2, bad.imageId);
    expect(badNow?.Tags).toContainEqual({ Key: AMI_TAGS.rolledBack, Value: '2026-11-01T00:00:00.000Z' });
    await expect(rollback(c, { variant: 'rust-kani', arch: 'x86_64' })).rejects.toThrow(/already rolled back/);

    // CI's "already built" path finds the bad image by hash but must not re-publish it.
    const found = await findByContentHash(c.ec2, { variant: 'rust-kani', arch: 'x86_64', contentHash: HASH_B });
    expect(found).toMatchObject({ imageId: bad.imageId, rolledBack: true });
    const again = await publish(c, {
      variant: 'rust-kani',
      arch: 'x86_64',
      imageId: bad.imageId,
      skipIfRolledBack: true,
    });
    expect(again).toMatchObject({ changed: false, skipped: 'rolled-back' });
    expect(await readParameter(c.ssm, '/spot-runner/ami/rust-kani/x86_64')).toBe(good.imageId);
  });
});

describe('housekeeping', () => {
  it('deregisters only old, unreferenced AMIs and deletes exactly their snapshots', async () => {
    const c = clients();
    const current = await bakeImage({ variant: 'base', arch: 'x86_64', hash: HASH_A });
    const previous = await bakeImage({ variant: 'base', arch: 'x86_64', hash: HASH_B });
    const stale = await bakeImage({ variant: 'base', arch: 'x86_64', hash: HASH_C });
    const otherStale = await bakeImage({ variant: 'bench', arch: 'arm64', hash: HASH_A });
    await publish(c, { variant: 'base', arch: 'x86_64', imageId: previous.imageId });
    await publish(c, { variant: 'base', arch: 'x86_64', imageId: current.imageId });
    // An AMI somebody else made in the account, with no spot-runner tags: never ours to delete.
    const foreign = await c.ec2.send(
      new RunInstancesCommand({
        ImageId: (await describeImage(c.ec2, current.imageId))?.ImageId ?? '',
        MinCount: 1,
        MaxCount: 1,
      }),
    );
    const foreignImage = await c.ec2.send(
      new CreateImageCommand({ InstanceId: foreign.Instances?.[0]?.InstanceId ?? '', Name: 'someone-elses' }),
    );
    // A managed snapshot whose image is already gone (an earlier run died between the two deletes).
    const vol = await c.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 8 }));
    const orphan = await c.ec2.send(
      new CreateSnapshotCommand({
        VolumeId: vol.VolumeId,
        TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: AMI_TAGS.managed, Value: 'true' }] }],
      }),
    );

    // Everything is minutes old: nothing may go.
    const young = await housekeep(c.ec2, c.ssm, { olderThanDays: 30, keepNewest: 0 });
    expect(young.deregistered).toEqual([]);
    expect(young.deletedSnapshots).toEqual([]);

    const later = new Date(Date.now() + 40 * DAY);
    const dry = await housekeep(c.ec2, c.ssm, { olderThanDays: 30, keepNewest: 0, now: later, dryRun: true });
    expect(dry.deregistered.map((d) => d.imageId).sort()).toEqual([stale.imageId, otherStale.imageId].sort());
    expect(await describeImage(c.ec2, stale.imageId)).toBeDefined();

    const r = await housekeep(c.ec2, c.ssm, { olderThanDays: 30, keepNewest: 0, now: later });
    expect(r.errors).toEqual([]);
    expect(r.referenced).toEqual([current.imageId, previous.imageId].sort());
    expect(r.deregistered.map((d) => d.imageId).sort()).toEqual([stale.imageId, otherStale.imageId].sort());
    expect(r.deletedSnapshots.sort()).toEqual(
      [...stale.snapshotIds, ...otherStale.snapshotIds, orphan.SnapshotId ?? ''].sort(),
    );

    expect(await describeImage(c.ec2, stale.imageId)).toBeUndefined();
    expect(await describeImage(c.ec2, otherStale.imageId)).toBeUndefined();
    expect(await describeImage(c.ec2, current.imageId)).toBeDefined();
    expect(await describeImage(c.ec2, previous.imageId)).toBeDefined();
    expect(await describeImage(c.ec2, foreignImage.ImageId ?? '')).toBeDefined();
    for (const s of [...stale.snapshotIds, ...otherStale.snapshotIds, orphan.SnapshotId ?? ''])
      expect(await snapshotExists(s)).toBe(false);
    for (const s of [...current.snapshotIds, ...previous.snapshotIds]) expect(await snapshotExists(s)).toBe(true);

    // A second pass finds nothing left to do.
    const again = await housekeep(c.ec2, c.ssm, { olderThanDays: 30, keepNewest: 0, now: later });
    expect(again.deregistered).toEqual([]);
    expect(again.deletedSnapshots).toEqual([]);
  });

  it('keeps the newest image of each variant/arch even when nothing references it', async () => {
    const c = clients();
    const onlyGpu = await bakeImage({ variant: 'gpu', arch: 'x86_64', hash: HASH_A });
    const onlyBench = await bakeImage({ variant: 'bench', arch: 'arm64', hash: HASH_A });
    const r = await housekeep(c.ec2, c.ssm, { olderThanDays: 1, now: new Date(Date.now() + 10 * DAY) });
    expect(r.deregistered).toEqual([]);
    expect(r.kept).toEqual(
      expect.arrayContaining([
        { id: onlyGpu.imageId, reason: 'newest' },
        { id: onlyBench.imageId, reason: 'newest' },
      ]),
    );
    await expect(housekeep(c.ec2, c.ssm, { olderThanDays: 0 })).rejects.toThrow(/at least 1/);
  });
});

describe('manifest', () => {
  it("reads the last run's AMIs per region for one variant/arch", () => {
    const json = JSON.stringify({
      builds: [
        {
          name: 'arm64',
          artifact_id: 'us-east-1:ami-00000000000000001',
          packer_run_uuid: 'old',
          custom_data: { arch: 'arm64', variant: 'base' },
        },
        {
          name: 'x86_64',
          artifact_id: 'us-east-1:ami-00000000000000002',
          packer_run_uuid: 'new',
          custom_data: { arch: 'x86_64', variant: 'base' },
        },
        {
          name: 'arm64',
          build_time: 1700000000,
          artifact_id: 'us-east-1:ami-00000000000000003,eu-west-1:ami-00000000000000004',
          packer_run_uuid: 'new',
          custom_data: { arch: 'arm64', variant: 'base', content_hash: HASH_A },
        },
      ],
      last_run_uuid: 'new',
    });
    expect(readManifest(json, { variant: 'base', arch: 'arm64' })).toEqual({
      images: [
        { region: 'us-east-1', imageId: 'ami-00000000000000003' },
        { region: 'eu-west-1', imageId: 'ami-00000000000000004' },
      ],
      buildTime: 1700000000,
      contentHash: HASH_A,
      runnerVersion: undefined,
    });
    expect(() => readManifest(json, { variant: 'gpu', arch: 'arm64' })).toThrow(/no gpu\/arm64 build/);
  });
});

describe('the CLI build-ami.yml runs', () => {
  it('find → publish from a manifest (two regions) → housekeep, through GITHUB_OUTPUT and the step summary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ami-cli-'));
    const env = {
      AWS_REGION: 'us-east-1',
      GITHUB_OUTPUT: join(dir, 'output'),
      GITHUB_STEP_SUMMARY: join(dir, 'summary'),
    };
    writeFileSync(env.GITHUB_OUTPUT, '');
    writeFileSync(env.GITHUB_STEP_SUMMARY, '');
    const lines: string[] = [];
    const deps = { clients, env, log: (l: string) => lines.push(l) };

    expect(await runCli(['find', '--variant', 'base', '--arch', 'arm64', '--hash', HASH_A], deps)).toBe(0);
    expect(readFileSync(env.GITHUB_OUTPUT, 'utf8')).toContain('found=false\n');

    const east = await bakeImage({ variant: 'base', arch: 'arm64', hash: HASH_A });
    const west = await bakeImage({ variant: 'base', arch: 'arm64', hash: HASH_A, region: 'eu-west-1' });
    const manifest = join(dir, 'manifest.json');
    writeFileSync(
      manifest,
      JSON.stringify({
        builds: [
          {
            name: 'arm64',
            packer_run_uuid: 'r1',
            artifact_id: `us-east-1:${east.imageId},eu-west-1:${west.imageId}`,
            custom_data: { arch: 'arm64', variant: 'base' },
          },
        ],
        last_run_uuid: 'r1',
      }),
    );

    expect(await runCli(['find', '--variant', 'base', '--arch', 'arm64', '--hash', HASH_A], deps)).toBe(0);
    expect(readFileSync(env.GITHUB_OUTPUT, 'utf8')).toContain(
      `found=true\nimage-id=${east.imageId}\nrolled-back=false\n`,
    );

    expect(
      await runCli(
        ['publish', '--variant', 'base', '--arch', 'arm64', '--manifest', manifest, '--build-seconds', '754'],
        deps,
      ),
    ).toBe(0);
    expect(await readParameter(clients('us-east-1').ssm, '/spot-runner/ami/base/arm64')).toBe(east.imageId);
    expect(await readParameter(clients('eu-west-1').ssm, '/spot-runner/ami/base/arm64')).toBe(west.imageId);
    const out = readFileSync(env.GITHUB_OUTPUT, 'utf8');
    expect(out).toContain(`image-id=${east.imageId}\nchanged=true\nskipped=false\n`);
    const summary = readFileSync(env.GITHUB_STEP_SUMMARY, 'utf8');
    expect(summary).toContain(`| base | arm64 | us-east-1 | \`${east.imageId}\` | 15 GiB | 12m 34s |`);
    expect(summary).toContain(`| base | arm64 | eu-west-1 | \`${west.imageId}\``);

    const old = await bakeImage({ variant: 'base', arch: 'arm64', hash: HASH_B });
    const later = { ...deps, now: () => new Date(Date.now() + 60 * DAY) };
    expect(
      await runCli(
        ['housekeep', '--older-than-days', '30', '--keep-newest', '0', '--regions', 'us-east-1,eu-west-1'],
        later,
      ),
    ).toBe(0);
    expect(await describeImage(clients().ec2, old.imageId)).toBeUndefined();
    expect(await describeImage(clients().ec2, east.imageId)).toBeDefined();
    expect(await describeImage(clients('eu-west-1').ec2, west.imageId)).toBeDefined();
    expect(readFileSync(env.GITHUB_STEP_SUMMARY, 'utf8')).toContain(`deregistered: \`${old.imageId}\``);

    expect(await runCli(['publish', '--variant', 'base', '--arch', 'arm64'], deps)).toBe(1);
    expect(lines.at(-1)).toMatch(/--image-id is required/);
    expect(await runCli(['explode'], deps)).toBe(2);
  });

  it('rollback over the CLI, and a manual parameter edit is honoured by housekeeping', async () => {
    const env = { AWS_REGION: 'us-east-1' };
    const lines: string[] = [];
    const deps = { clients, env, log: (l: string) => lines.push(l) };
    const a = await bakeImage({ variant: 'bench', arch: 'x86_64', hash: HASH_A });
    const b = await bakeImage({ variant: 'bench', arch: 'x86_64', hash: HASH_B });
    await publish(clients(), { variant: 'bench', arch: 'x86_64', imageId: a.imageId });
    await publish(clients(), { variant: 'bench', arch: 'x86_64', imageId: b.imageId });
    expect(await runCli(['rollback', '--variant', 'bench', '--arch', 'x86_64'], deps)).toBe(0);
    expect(await readParameter(clients().ssm, '/spot-runner/ami/bench/x86_64')).toBe(a.imageId);
    // An operator pins b by hand under another name: housekeeping must respect any parameter under the root.
    await clients().ssm.send(
      new PutParameterCommand({ Name: '/spot-runner/ami/bench/x86_64/pinned', Value: b.imageId, Type: 'String' }),
    );
    const r = await housekeep(clients().ec2, clients().ssm, {
      olderThanDays: 1,
      keepNewest: 0,
      now: new Date(Date.now() + 5 * DAY),
    });
    expect(r.deregistered).toEqual([]);
    expect(await describeImage(clients().ec2, b.imageId)).toBeDefined();
  });
});
