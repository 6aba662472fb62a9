// The AWS fault proxy itself, through the real SDK: its faults look to the SDK like EC2's and
// SSM's (throttling is retried, a capacity error is not), and CreateFleet's ClientToken is
// idempotent the way EC2's is.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  CreateFleetCommand,
  CreateLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AwsFaultProxy } from '../../test/lab/aws-proxy.js';
import { startMoto, type Moto } from '../../test/lab/moto.js';

let moto: Moto;
let proxy: AwsFaultProxy;
let ec2: EC2Client;
let ssm: SSMClient;
const creds = { accessKeyId: 'testing', secretAccessKey: 'testing' };

beforeAll(async () => {
  moto = await startMoto();
  proxy = await AwsFaultProxy.start(moto.endpoint);
  const common = {
    region: 'us-east-1',
    endpoint: proxy.url,
    credentials: creds,
    maxAttempts: 4,
    retryMode: 'standard',
  } as const;
  ec2 = new EC2Client(common);
  ssm = new SSMClient(common);
}, 60_000);
beforeEach(async () => {
  await moto.reset();
  proxy.reset();
  // These tests aim one injected fault at a call and count the SDK's attempts and moto's
  // instances; the default behaviours (a template unknown for a moment, a lost PutParameter
  // answer, instances not listed right after the launch) would add attempts of their own. Each
  // default has its own scenario in __tests__/contract/aws.contract.test.ts.
  proxy.setRealism({ templateMs: 0, losePutEvery: 0, instanceMs: 0 });
});
afterAll(async () => {
  ec2?.destroy();
  ssm?.destroy();
  await proxy?.close();
  await moto?.stop();
});

async function fleetRequest(token: string, count = 2) {
  const ami = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images?.find(
    (i) => i.Architecture === 'x86_64',
  )?.ImageId;
  const lt = await ec2.send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: `t-${token}-${count}`,
      LaunchTemplateData: { ImageId: ami },
    }),
  );
  return new CreateFleetCommand({
    Type: 'instant',
    ClientToken: token,
    TargetCapacitySpecification: {
      TotalTargetCapacity: count,
      DefaultTargetCapacityType: 'spot',
      SpotTargetCapacity: count,
    },
    LaunchTemplateConfigs: [
      {
        LaunchTemplateSpecification: { LaunchTemplateId: lt.LaunchTemplate?.LaunchTemplateId, Version: '$Latest' },
        Overrides: [
          { InstanceType: 'c7i.large', Priority: 0 },
          { InstanceType: 'c6i.large', Priority: 1 },
        ],
      },
    ],
  });
}

describe('AWS fault proxy', () => {
  it('counts calls per action and source; EC2 RequestLimitExceeded and SSM ThrottlingException are retried by the SDK', async () => {
    proxy.inject({ action: 'DescribeInstances', fault: { kind: 'throttle' }, times: 2 });
    proxy.inject({ action: 'PutParameter', fault: { kind: 'throttle' }, times: 1 });
    const out = await ec2.send(new DescribeInstancesCommand({}));
    expect(out.$metadata.attempts).toBe(3);
    await ssm.send(new PutParameterCommand({ Name: '/x', Value: 'v', Type: 'String' }));
    expect(proxy.counts()).toMatchObject({ DescribeInstances: 3, PutParameter: 2 });
    expect(proxy.count('DescribeInstances', 'action')).toBe(3);
    expect(proxy.calls.filter((c) => c.fault === 'throttle').map((c) => c.status)).toEqual([503, 503, 400]);
  });

  it('a whole-call capacity error is a server error: retried, then the caller gets its code; `after` lets calls through first', async () => {
    proxy.inject({ action: 'GetParameter', fault: { kind: 'capacity' }, after: 1, times: 1 });
    await ssm.send(new PutParameterCommand({ Name: '/y', Value: 'v', Type: 'String' }));
    await expect(ssm.send(new GetParameterCommand({ Name: '/y' }))).resolves.toBeDefined();
    // EC2 lists InsufficientInstanceCapacity among its server errors (HTTP 500): the SDK retries it
    proxy.inject({ action: 'DescribeInstances', fault: { kind: 'capacity' }, times: 1 });
    expect((await ec2.send(new DescribeInstancesCommand({}))).$metadata.attempts).toBe(2);
    proxy.inject({ action: 'DescribeInstances', fault: { kind: 'capacity' }, times: Infinity });
    await expect(ec2.send(new DescribeInstancesCommand({}))).rejects.toMatchObject({
      name: 'InsufficientInstanceCapacity',
    });
  });

  it('CreateFleet ClientToken: a lost answer retried replays the first launch; a different request with the token is refused', async () => {
    const req = await fleetRequest('tok-a');
    proxy.inject({ action: 'CreateFleet', fault: { kind: 'lose-response' } });
    const out = await ec2.send(req);
    expect(out.$metadata.attempts).toBe(2);
    expect(proxy.fleets).toHaveLength(1);
    expect(out.Instances?.flatMap((i) => i.InstanceIds ?? []).sort()).toEqual(
      [...(proxy.fleets[0]?.instanceIds ?? [])].sort(),
    );
    const again = await ec2.send(req);
    expect(again.FleetId).toBe(out.FleetId);
    const running =
      (await ec2.send(new DescribeInstancesCommand({}))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    expect(running).toHaveLength(2);
    const other = await fleetRequest('tok-a', 3);
    await expect(ec2.send(other)).rejects.toMatchObject({ name: 'IdempotentParameterMismatch' });
  });

  it('capacity: a type without spot room is skipped with an errorSet item; a short pool launches what fits', async () => {
    proxy.setCapacity({ noSpotTypes: ['c7i.large'], spotAvailable: 1 });
    const out = await ec2.send(await fleetRequest('tok-b', 2));
    expect(out.Instances?.map((i) => `${i.InstanceType} ${i.Lifecycle}`)).toEqual(['c6i.large spot']);
    expect(
      out.Errors?.map((e) => `${e.ErrorCode} ${e.Lifecycle} ${e.LaunchTemplateAndOverrides?.Overrides?.InstanceType}`),
    ).toEqual(['InsufficientInstanceCapacity spot c7i.large', 'InsufficientInstanceCapacity spot c6i.large']);
    const none = await ec2.send(await fleetRequest('tok-c', 1));
    expect(none.Instances ?? []).toEqual([]);
    expect(none.Errors?.[0]?.ErrorCode).toBe('InsufficientInstanceCapacity');
  });
});
