// Issue 2's end-to-end check: the bundled action, run as the Actions runner runs it, against
// moto's real EC2/SSM wire protocol and the OpenAPI-checked GitHub stand-in.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSubnetsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { DescribeParametersCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { existsSync } from 'node:fs';
import { startMoto, type Moto } from '../test/lab/moto.js';
import { GitHubStandIn } from '../test/lab/github.js';
import { DIST, runStep, runWithPost } from '../test/lab/action.js';
import { quickBoot } from '../test/lab/quick-boot.js';

let moto: Moto;
let gh: GitHubStandIn;
let ec2: EC2Client;
let ssm: SSMClient;
let subnets: string[];
const region = 'us-east-1';
const creds = { accessKeyId: 'testing', secretAccessKey: 'testing' };

beforeAll(async () => {
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run 'npm run bundle' first`);
  moto = await startMoto();
  gh = await GitHubStandIn.start();
  ec2 = new EC2Client({ region, endpoint: moto.endpoint, credentials: creds });
  ssm = new SSMClient({ region, endpoint: moto.endpoint, credentials: creds });
});

// Each case starts from an empty account holding only the AMI parameter.
beforeEach(async () => {
  await moto.reset();
  gh.reset();
  const images =
    (
      await ec2.send(
        new DescribeImagesCommand({
          Owners: ['amazon'],
          Filters: [{ Name: 'architecture', Values: ['x86_64'] }],
          MaxResults: 5,
        }),
      )
    ).Images ?? [];
  const ami = images.find((i) => i.Architecture === 'x86_64' && i.RootDeviceName)?.ImageId;
  if (!ami) throw new Error('moto offers no x86_64 image');
  await ssm.send(new PutParameterCommand({ Name: '/spot-runner/ami/base/x86_64', Value: ami, Type: 'String' }));
  subnets = ((await ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? []).slice(0, 2).map((s) => s.SubnetId ?? '');
});

afterAll(async () => {
  await gh?.close();
  await moto?.stop();
});

const env = () => ({
  AWS_ENDPOINT_URL: moto.endpoint,
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_REGION: region,
  GITHUB_API_URL: gh.url,
  GITHUB_REPOSITORY: 'acme/widgets',
  GITHUB_RUN_ID: '777',
  GITHUB_RUN_ATTEMPT: '1',
  GITHUB_JOB: 'start',
  GITHUB_EVENT_NAME: 'push',
});

async function liveInstances(): Promise<string[]> {
  const out = await ec2.send(
    new DescribeInstancesCommand({
      Filters: [
        { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] },
      ],
    }),
  );
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId ?? '');
}

async function jitParameters(): Promise<string[]> {
  const out = await ssm.send(
    new DescribeParametersCommand({
      ParameterFilters: [{ Key: 'Path', Option: 'Recursive', Values: ['/spot-runner/jit'] }],
    }),
  );
  return (out.Parameters ?? []).map((p) => p.Name ?? '');
}

describe('start → stop through the bundled action on moto', () => {
  it('starts 2 spot runners, then stop removes every trace', async () => {
    const boot = quickBoot(ec2, ssm, gh.url, { bootDelayMs: 300 });
    const start = await runStep({
      env: env(),
      inputs: {
        mode: 'start',
        'github-token': gh.token,
        image: 'ssm:/spot-runner/ami/base/{arch}',
        'instance-types': 'c7i.large\nc6i.large',
        count: '2',
        'subnet-ids': subnets.join(','),
        labels: 'spot, kani',
      },
    });
    await boot.stop();
    expect(boot.failures).toEqual([]);
    expect(start.errors).toEqual([]);
    expect(start.exitCode).toBe(0);
    const label = start.outputs.label ?? '';
    const ids = JSON.parse(start.outputs['instance-ids'] ?? '[]') as string[];
    const runners = JSON.parse(start.outputs.runners ?? '[]') as {
      name: string;
      id: number;
      instanceId: string;
      market: string;
      availabilityZone: string;
    }[];
    expect(label).toMatch(/^spot-runner-777-1-/);
    expect(ids).toHaveLength(2);
    expect(runners.map((r) => r.instanceId).sort()).toEqual([...ids].sort());
    expect(runners.every((r) => r.market === 'spot' && r.availabilityZone.startsWith(region))).toBe(true);
    expect(start.summary).toContain(label);

    // Spot, tagged with the label, IMDSv2 required (from the template they were launched from).
    const described =
      (await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }))).Reservations?.flatMap(
        (r) => r.Instances ?? [],
      ) ?? [];
    for (const i of described) {
      expect(i.InstanceLifecycle).toBe('spot');
      expect(i.Tags?.find((t) => t.Key === 'spot-runner:label')?.Value).toBe(label);
    }
    const lts =
      (
        await ec2.send(
          new DescribeLaunchTemplatesCommand({ Filters: [{ Name: 'tag:spot-runner:label', Values: [label] }] }),
        )
      ).LaunchTemplates ?? [];
    expect(lts).toHaveLength(1);
    const version = (
      await ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: lts[0]?.LaunchTemplateId }))
    ).LaunchTemplateVersions?.[0]?.LaunchTemplateData;
    expect(version?.MetadataOptions?.HttpTokens).toBe('required');
    expect(version?.InstanceInitiatedShutdownBehavior).toBe('terminate');
    expect(version?.BlockDeviceMappings?.[0]?.Ebs?.Encrypted).toBe(true);

    // User-data (as EC2 holds it) carries no secret the stand-in ever issued, nor the token.
    for (const id of ids) {
      const attr = await ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'userData' }));
      const userData = Buffer.from(attr.UserData?.Value ?? '', 'base64').toString('utf8');
      expect(userData).toContain('#!/bin/bash');
      for (const s of [...gh.issuedSecrets, gh.token]) expect(userData).not.toContain(s);
    }
    // Nor did the logs: the only mention is the ::add-mask:: command, which the runner consumes.
    const logged = start.stdout
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n');
    for (const s of gh.issuedSecrets) expect(logged).not.toContain(s);

    const stop = await runStep({
      env: { ...env(), GITHUB_JOB: 'stop' },
      inputs: { mode: 'stop', 'github-token': gh.token, label },
    });
    expect(stop.errors).toEqual([]);
    expect(stop.exitCode).toBe(0);
    expect(stop.outputs.interrupted).toBe('false');
    expect(Number(stop.outputs.cost)).toBeGreaterThanOrEqual(0);
    expect(await liveInstances()).toEqual([]);
    expect(await jitParameters()).toEqual([]);
    expect(
      (
        await ec2.send(
          new DescribeLaunchTemplatesCommand({ Filters: [{ Name: 'tag:spot-runner:label', Values: [label] }] }),
        )
      ).LaunchTemplates ?? [],
    ).toEqual([]);
    expect(gh.runners.size).toBe(0);
    gh.assertNoViolations();

    // Stop again: nothing left, still a success.
    const again = await runStep({
      env: { ...env(), GITHUB_JOB: 'stop' },
      inputs: { mode: 'stop', 'github-token': gh.token, label },
    });
    expect(again.exitCode).toBe(0);
  });

  it('a start whose runners never come online fails, and post leaves nothing behind', async () => {
    const { main, post } = await runWithPost({
      env: env(),
      inputs: {
        mode: 'start',
        'github-token': gh.token,
        image: 'ssm:/spot-runner/ami/base/{arch}',
        'instance-types': 'c7i.large',
        count: '1',
        'wait-timeout': '0.05',
      },
    });
    expect(main.exitCode).toBe(1);
    expect(main.errors.join('\n')).toMatch(/Timed out after 3 s waiting for 1 runner/);
    expect(post?.exitCode).toBe(0);
    expect(await liveInstances()).toEqual([]);
    expect(await jitParameters()).toEqual([]);
    expect(gh.runners.size).toBe(0);
  });
});
