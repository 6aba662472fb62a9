// Day one on the lab: the committed CloudFormation template deployed to moto's CloudFormation, then
// the bundled action's start → stop with only the stack's outputs as its AWS inputs, and nothing left.
//
// Where moto differs from CloudFormation, and what the test does about it:
// - moto has no AWS::IAM::OIDCProvider (nor AWS::Budgets::Budget): it skips them and resolves a Ref to
//   them as nothing, so the deployed trust policy has an empty principal here. The CDK assertions
//   (__tests__/deploy.test.ts) check the principal; this test checks moto created everything else.
// - moto keeps an AWS::NoValue list element as null, where CloudFormation drops it: the subjects are
//   compared without the nulls.
// - moto's AWS::S3::Bucket applies only BucketEncryption (and Tags): versioning, the public-access
//   block and the lifecycle rule are left to the CDK assertions. Its AWS::IAM::Role ignores
//   ManagedPolicyArns, likewise.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  CloudFormationClient,
  CreateStackCommand,
  DeleteStackCommand,
  DescribeStackResourcesCommand,
  DescribeStacksCommand,
  type Parameter,
} from '@aws-sdk/client-cloudformation';
import {
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSecurityGroupsCommand,
  DescribeVpcsCommand,
} from '@aws-sdk/client-ec2';
import {
  GetInstanceProfileCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListAttachedRolePoliciesCommand,
} from '@aws-sdk/client-iam';
import { readFileSync } from 'node:fs';
import { TEMPLATE } from '../../deploy/app.js';
import { runWithPost } from '../../test/lab/action.js';
import { LAB_REGION, startLab, type Lab } from '../../test/lab/lab.js';

let lab: Lab;
let cfn: CloudFormationClient;
let iam: IAMClient;
const STACK = 'spot-runner';

beforeAll(async () => {
  lab = await startLab();
  const c = {
    region: LAB_REGION,
    endpoint: lab.moto.endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
  cfn = new CloudFormationClient({ ...c, maxAttempts: 1 });
  iam = new IAMClient(c);
}, 60_000);
afterAll(async () => {
  cfn?.destroy();
  iam?.destroy();
  await lab?.close();
});

const param = (ParameterKey: string, ParameterValue: string): Parameter => ({ ParameterKey, ParameterValue });

async function deploy(parameters: Parameter[]): Promise<Record<string, string>> {
  // The README's `aws cloudformation deploy … --capabilities CAPABILITY_NAMED_IAM`, as API calls.
  await cfn.send(
    new CreateStackCommand({
      StackName: STACK,
      TemplateBody: readFileSync(TEMPLATE, 'utf8'),
      Capabilities: ['CAPABILITY_NAMED_IAM'],
      Parameters: parameters,
    }),
  );
  const stack = (await cfn.send(new DescribeStacksCommand({ StackName: STACK }))).Stacks?.[0];
  expect(stack?.StackStatus).toBe('CREATE_COMPLETE');
  return Object.fromEntries((stack?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
}

describe('the account stack on moto, then start → stop from its outputs', () => {
  it('deploys, and the bundled action runs on what it created', async () => {
    const vpc = (await lab.ec2.send(new DescribeVpcsCommand({}))).Vpcs?.[0]?.VpcId ?? '';
    const outputs = await deploy([
      param('GitHubOrg', 'acme'),
      param('Repositories', 'widgets,gadgets'),
      param('Environment', 'spot-runner'),
      param('VpcId', vpc),
      param('SubnetIds', lab.subnets.join(',')),
    ]);

    // What moto created (the OIDC provider is not among them: see the header).
    const resources = (await cfn.send(new DescribeStackResourcesCommand({ StackName: STACK }))).StackResources ?? [];
    const created = resources
      .filter((r) => r.ResourceType)
      .map((r) => `${r.LogicalResourceId} ${r.ResourceType}`)
      .sort();
    expect(created).toEqual([
      'ControlRole AWS::IAM::Role',
      'InstanceProfile AWS::IAM::InstanceProfile',
      'InstanceRole AWS::IAM::Role',
      'PackerRole AWS::IAM::Role',
      'RunnerSecurityGroup AWS::EC2::SecurityGroup',
    ]);

    // The control role trusts exactly the branch and environment subjects of the two repositories.
    const control = (await iam.send(new GetRoleCommand({ RoleName: 'spot-runner-control' }))).Role;
    expect(outputs.ControlRoleArn).toBe(control?.Arn);
    const trust = JSON.parse(decodeURIComponent(control?.AssumeRolePolicyDocument ?? '')) as {
      Statement: { Condition: { StringEquals: Record<string, (string | null)[] | string> } }[];
    };
    const eq = trust.Statement[0]?.Condition.StringEquals ?? {};
    expect(eq['token.actions.githubusercontent.com:aud']).toBe('sts.amazonaws.com');
    expect((eq['token.actions.githubusercontent.com:sub'] as (string | null)[]).filter((s) => s !== null)).toEqual([
      'repo:acme/widgets:ref:refs/heads/main',
      'repo:acme/widgets:environment:spot-runner',
      'repo:acme/gadgets:ref:refs/heads/main',
      'repo:acme/gadgets:environment:spot-runner',
    ]);
    const profile = (
      await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: outputs.InstanceProfileName }))
    ).InstanceProfile;
    expect(profile?.Roles?.map((r) => r.RoleName)).toEqual(['spot-runner-instance']);
    const sg = (await lab.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [outputs.SecurityGroupId ?? ''] })))
      .SecurityGroups?.[0];
    expect(sg?.VpcId).toBe(vpc);
    expect(sg?.IpPermissions).toEqual([]);
    expect(outputs.CheckpointBucketName).toBeUndefined(); // not asked for
    expect(outputs.WorkflowSnippet).toContain(`security-group-ids: ${outputs.SecurityGroupId}`);

    // start with only the outputs for everything AWS; the instance types and count are the job's choice.
    const fromStack = {
      'aws-region': outputs.Region ?? '',
      image: outputs.Image ?? '',
      'subnet-ids': outputs.RunnerSubnetIds ?? '',
      'security-group-ids': outputs.SecurityGroupId ?? '',
      'instance-profile': outputs.InstanceProfileName ?? '',
    };
    const { main, post } = await runWithPost({
      inputs: {
        mode: 'start',
        'github-token': lab.gh.token,
        'instance-types': 'c7i.large\nc6i.large',
        count: '2',
        'wait-timeout': '0.5',
        'max-lifetime': '2',
        'idle-timeout': '1',
        ...fromStack,
      },
      env: lab.env({ AWS_REGION: '' }),
    });
    expect(main.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    expect(post).toBeUndefined();
    const ids = JSON.parse(main.outputs['instance-ids'] ?? '[]') as string[];
    expect(ids).toHaveLength(2);
    // The runners launch from a template with the stack's group and profile. (moto's CreateFleet does
    // not copy a template's security groups onto the instances, so the template is what is checked.)
    const lts =
      (
        await lab.ec2.send(
          new DescribeLaunchTemplatesCommand({
            Filters: [{ Name: 'tag:spot-runner:label', Values: [main.outputs.label ?? ''] }],
          }),
        )
      ).LaunchTemplates ?? [];
    const data = (
      await lab.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: lts[0]?.LaunchTemplateId }))
    ).LaunchTemplateVersions?.[0]?.LaunchTemplateData;
    expect(data?.SecurityGroupIds).toEqual([outputs.SecurityGroupId]);
    expect(data?.IamInstanceProfile).toEqual({ Name: outputs.InstanceProfileName });
    const instances =
      (await lab.ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }))).Reservations?.flatMap(
        (r) => r.Instances ?? [],
      ) ?? [];
    for (const i of instances) expect(lab.subnets).toContain(i.SubnetId);

    const stop = await lab.stop(main.outputs.label ?? '', { 'aws-region': outputs.Region ?? '' });
    expect(stop.errors).toEqual([]);
    expect(stop.exitCode).toBe(0);
    await lab.assertNoLeaks();

    // And the stack goes as it came.
    await cfn.send(new DeleteStackCommand({ StackName: STACK }));
    await expect(iam.send(new GetRoleCommand({ RoleName: 'spot-runner-control' }))).rejects.toMatchObject({
      name: 'NoSuchEntityException',
    });
    await expect(
      lab.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [outputs.SecurityGroupId ?? ''] })),
    ).rejects.toMatchObject({ name: expect.stringMatching(/InvalidGroup/) });
  }, 120_000);

  it('with the options: an existing OIDC provider, the checkpoint bucket, extra managed policies', async () => {
    const vpc = (await lab.ec2.send(new DescribeVpcsCommand({}))).Vpcs?.[0]?.VpcId ?? '';
    const ssmCore = 'arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore';
    const outputs = await deploy([
      param('GitHubOrg', 'acme'),
      param('Repositories', 'widgets'),
      param('CreateOidcProvider', 'false'),
      param('NamePrefix', 'sr2'),
      param('VpcId', vpc),
      param('SubnetIds', lab.subnets.join(',')),
      param('CreateCheckpointBucket', 'true'),
      param('InstanceRoleManagedPolicyArns', ssmCore),
    ]);
    const bucket = outputs.CheckpointBucketName ?? '';
    expect(bucket).not.toBe('');
    // moto's S3 over plain REST (path style, unsigned: moto checks no signature by default).
    const s3 = async (query: string) => {
      const r = await fetch(`${lab.moto.endpoint}/${bucket}?${query}`);
      expect(r.status).toBe(200);
      return r.text();
    };
    expect(await s3('encryption')).toMatch(/<SSEAlgorithm>AES256<\/SSEAlgorithm>/);
    // moto's CloudFormation applies only a bucket's encryption (and tags); versioning, the
    // public-access block and the lifecycle rule are checked by the CDK assertions.

    const role = 'sr2-instance';
    // moto's AWS::IAM::Role ignores ManagedPolicyArns (nothing is attached); the CDK assertions check the property.
    expect((await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: role }))).AttachedPolicies ?? []).toEqual(
      [],
    );
    const checkpoint = await iam.send(
      new GetRolePolicyCommand({ RoleName: role, PolicyName: 'spot-runner-checkpoints' }),
    );
    expect(decodeURIComponent(checkpoint.PolicyDocument ?? '')).toContain(`arn:aws:s3:::${bucket}/*`);
    expect(outputs.InstanceProfileName).toBe('sr2-instance');
    expect(outputs.ControlRoleArn).toMatch(/:role\/sr2-control$/);
    await cfn.send(new DeleteStackCommand({ StackName: STACK }));
  }, 60_000);
});
