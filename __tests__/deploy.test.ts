// The account stack (deploy/): CDK assertions on the synthesized template, the committed template's
// freshness and size, and the policies against docs/iam (the files the IAM test keeps honest).
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { TEMPLATE, TEMPLATE_BODY_LIMIT, buildStack, synthTemplate } from '../deploy/app.js';
import { MAX_REPOSITORIES } from '../deploy/stack.js';
import { narrowArn } from '../deploy/policies.js';

type Json = Record<string, unknown>;
const template = Template.fromStack(buildStack());
const json = template.toJSON() as {
  Resources: Record<string, { Type: string; Properties: Json; Condition?: string; DeletionPolicy?: string }>;
  Outputs: Record<string, Json>;
  Parameters: Record<string, Json>;
};
const props = (id: string) => json.Resources[id]?.Properties ?? {};
const iamDoc = (name: string) => JSON.parse(readFileSync(`docs/iam/${name}`, 'utf8')) as { Statement: Json[] };

/** Every value under `key` anywhere in v. */
function collect(v: unknown, key: string, out: unknown[] = []): unknown[] {
  if (Array.isArray(v)) v.forEach((x) => collect(x, key, out));
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === key) out.push(x);
      collect(x, key, out);
    }
  }
  return out;
}

/**
 * Undoes the stack's narrowing, written independently of deploy/policies.ts: the stack's region,
 * account and partition become the files' `*` and `aws`, the instance role's ARN its file name.
 */
function widen(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(widen);
  if (v && typeof v === 'object') {
    const o = v as Json;
    if (typeof o['Fn::Sub'] === 'string') {
      return (o['Fn::Sub'] as string)
        .replace('${AWS::Partition}', 'aws')
        .replace('${AWS::Region}', '*')
        .replace('${AWS::AccountId}', '*')
        .replace(/\$\{!/g, '${');
    }
    if (JSON.stringify(o) === JSON.stringify({ 'Fn::GetAtt': ['InstanceRole', 'Arn'] }))
      return 'arn:aws:iam::*:role/spot-runner-instance';
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, widen(x)]));
  }
  return v;
}
const inlinePolicy = (role: string, name: string) =>
  ((props(role).Policies as Json[]).find((p) => p.PolicyName === name) as Json).PolicyDocument as { Statement: Json[] };

describe('the committed template', () => {
  it('is what `npm run synth` writes now', () => {
    expect(readFileSync(TEMPLATE, 'utf8')).toBe(synthTemplate());
  });
  it(`fits CloudFormation's ${TEMPLATE_BODY_LIMIT}-byte template body, so deploy needs no S3 bucket`, () => {
    expect(Buffer.byteLength(readFileSync(TEMPLATE))).toBeLessThan(TEMPLATE_BODY_LIMIT);
  });
  it('needs no CDK bootstrap: no BootstrapVersion parameter or rule, no assets, no CDK metadata', () => {
    expect(Object.keys(json.Parameters)).not.toContain('BootstrapVersion');
    expect(JSON.stringify(json)).not.toMatch(/cdk-hnb659fds|BootstrapVersion|AWS::CDK::Metadata|aws:cdk:path/);
  });
});

describe('policies come from docs/iam', () => {
  it.each([
    ['ControlRole', 'spot-runner-control', 'control-role.json'],
    ['InstanceRole', 'spot-runner-instance', 'instance-role.json'],
    ['PackerRole', 'spot-runner-packer', 'packer-role.json'],
  ])('%s deploys %s = docs/iam/%s, narrowed to the stack', (role, policy, file) => {
    const deployed = inlinePolicy(role, policy);
    expect(widen(deployed.Statement)).toEqual(iamDoc(file).Statement);
    // Narrowed: no ARN in the deployed policy leaves region or account open. A plain string is
    // either '*' or the instance's own ARN as a policy variable (instance-role.json).
    for (const r of collect(deployed, 'Resource').flat()) {
      if (typeof r === 'string') expect(['*', '${ec2:SourceInstanceARN}']).toContain(r);
    }
  });
  it('PassRole names the instance role this stack creates, not a pattern', () => {
    const pass = inlinePolicy('ControlRole', 'spot-runner-control').Statement.find((s) => s.Action === 'iam:PassRole');
    expect(pass?.Resource).toEqual({ 'Fn::GetAtt': ['InstanceRole', 'Arn'] });
  });
  it('keeps policy variables literal: never an unescaped ${ec2:…} or ${aws:…} inside Fn::Sub', () => {
    const subs = collect(json.Resources, 'Fn::Sub').map((x) => (Array.isArray(x) ? x[0] : x) as string);
    expect(subs.length).toBeGreaterThan(0);
    for (const s of subs) expect(s).not.toMatch(/\$\{(ec2|aws|s3|iam|ssm):/);
    expect(JSON.stringify(inlinePolicy('InstanceRole', 'spot-runner-instance'))).toContain(
      '"Resource":"${ec2:SourceInstanceARN}"',
    );
    const stack = buildStack();
    expect(stack.resolve(narrowArn('arn:aws:s3:::bucket/${aws:username}/*'))).toEqual({
      'Fn::Sub': 'arn:${AWS::Partition}:s3:::bucket/${!aws:username}/*',
    });
  });
  it('the checkpoint policy (docs/iam/checkpoint-bucket.json) goes on the instance role only with the bucket, for the bucket', () => {
    template.hasResource('AWS::IAM::Policy', {
      Condition: 'CreatingCheckpointBucket',
      Properties: { Roles: [{ Ref: 'InstanceRole' }] },
    });
    const deployed = props('CheckpointAccess').PolicyDocument as { Statement: Json[] };
    expect(JSON.stringify(deployed)).toContain('"arn:${AWS::Partition}:s3:::${CheckpointBucket}/*"');
    expect(JSON.stringify(widen(deployed.Statement)).replace(/\$\{CheckpointBucket\}/g, 'CHECKPOINT_BUCKET')).toBe(
      JSON.stringify(iamDoc('checkpoint-bucket.json').Statement),
    );
  });
});

describe('trust', () => {
  const trust = (role: string) => (props(role).AssumeRolePolicyDocument as { Statement: Json[] }).Statement;

  it.each(['ControlRole', 'PackerRole'])(
    '%s trusts only GitHub OIDC, for the audience sts.amazonaws.com and exact subjects',
    (role) => {
      const [s, ...more] = trust(role);
      expect(more).toEqual([]);
      expect(s).toMatchObject({ Effect: 'Allow', Action: 'sts:AssumeRoleWithWebIdentity' });
      expect(s?.Principal).toEqual({
        Federated: {
          'Fn::If': [
            'CreatingOidcProvider',
            { Ref: 'GitHubOidcProvider' },
            {
              'Fn::Sub':
                'arn:${AWS::Partition}:iam::${AWS::AccountId}:oidc-provider/token.actions.githubusercontent.com',
            },
          ],
        },
      });
      const cond = s?.Condition as Record<string, Json>;
      expect(Object.keys(cond)).toEqual(['StringEquals']); // no StringLike: no wildcard subject
      expect(cond.StringEquals?.['token.actions.githubusercontent.com:aud']).toBe('sts.amazonaws.com');
      const subs = cond.StringEquals?.['token.actions.githubusercontent.com:sub'] as Json[];
      for (const x of subs) {
        const [condition, value, otherwise] = x['Fn::If'] as [string, Json, Json];
        expect(condition).toMatch(/Branch|Environment/);
        expect(otherwise).toEqual({ Ref: 'AWS::NoValue' });
        expect((value['Fn::Sub'] as [string])[0]).toMatch(
          /^repo:\$\{Org\}\/\$\{Repo\}:(ref:refs\/heads\/\$\{Branch\}|environment:\$\{Environment\})$/,
        );
      }
    },
  );
  it(`the control role has one branch and one environment subject for each of ${MAX_REPOSITORIES} repository slots; the packer role for one repository`, () => {
    expect(
      (trust('ControlRole')[0]?.Condition as Record<string, Json>).StringEquals?.[
        'token.actions.githubusercontent.com:sub'
      ],
    ).toHaveLength(2 * MAX_REPOSITORIES);
    expect(
      (trust('PackerRole')[0]?.Condition as Record<string, Json>).StringEquals?.[
        'token.actions.githubusercontent.com:sub'
      ],
    ).toHaveLength(2);
  });
  it('parameters refuse wildcards and more repositories than there are slots', () => {
    const pattern = (p: string) => new RegExp(json.Parameters[p]?.AllowedPattern as string);
    expect(pattern('Repositories').test('widgets,gadgets')).toBe(true);
    expect(pattern('Repositories').test('widgets@456')).toBe(true);
    for (const bad of [
      '*',
      'widgets,*',
      'wid gets',
      'a:b',
      '',
      Array.from({ length: MAX_REPOSITORIES + 1 }, (_, i) => `r${i}`).join(','),
    ])
      expect(pattern('Repositories').test(bad)).toBe(false);
    expect(pattern('GitHubOrg').test('acme')).toBe(true);
    expect(pattern('GitHubOrg').test('acme/*')).toBe(false);
    for (const bad of ['*', 'feature/*', 'm?in', 'a,b']) expect(pattern('Branch').test(bad)).toBe(false);
    expect(pattern('Environment').test('spot-runner')).toBe(true);
    expect(pattern('Environment').test('prod:ref')).toBe(false);
  });
  it('the instance role gets the extra managed policies only when some are given', () => {
    expect(props('InstanceRole').ManagedPolicyArns).toEqual({
      'Fn::If': ['HasInstanceRoleManagedPolicies', { Ref: 'InstanceRoleManagedPolicyArns' }, { Ref: 'AWS::NoValue' }],
    });
    template.hasCondition('HasInstanceRoleManagedPolicies', {
      'Fn::Not': [{ 'Fn::Equals': [{ 'Fn::Join': ['', { Ref: 'InstanceRoleManagedPolicyArns' }] }, ''] }],
    });
  });
  it('the instance role is for EC2 only', () => {
    expect(trust('InstanceRole')).toEqual([
      { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
    ]);
  });
  it('no policy anywhere has a wildcard principal', () => {
    const principals = collect(json.Resources, 'Principal');
    expect(principals.length).toBeGreaterThan(0);
    for (const p of principals) {
      expect(p).not.toBe('*');
      for (const v of Object.values(p as Json).flat()) expect(v).not.toBe('*');
    }
  });
  it('creates the OIDC provider only when asked, for GitHub and sts.amazonaws.com', () => {
    template.hasResource('AWS::IAM::OIDCProvider', {
      Condition: 'CreatingOidcProvider',
      Properties: { Url: 'https://token.actions.githubusercontent.com', ClientIdList: ['sts.amazonaws.com'] },
    });
    template.hasCondition('CreatingOidcProvider', { 'Fn::Equals': [{ Ref: 'CreateOidcProvider' }, 'true'] });
  });
});

describe('network, bucket and budget', () => {
  it('the security group has no inbound rule', () => {
    template.resourceCountIs('AWS::EC2::SecurityGroup', 1);
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      VpcId: { Ref: 'VpcId' },
      SecurityGroupIngress: Match.absent(),
    });
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
  });
  it('the checkpoint bucket is optional, encrypted, versioned, private, with a lifecycle rule, and kept when the stack goes', () => {
    template.hasResource('AWS::S3::Bucket', {
      Condition: 'CreatingCheckpointBucket',
      DeletionPolicy: 'Retain',
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            Match.objectLike({ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }),
          ],
        },
        VersioningConfiguration: { Status: 'Enabled' },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        LifecycleConfiguration: {
          Rules: [
            Match.objectLike({
              Status: 'Enabled',
              NoncurrentVersionExpiration: { NoncurrentDays: { Ref: 'CheckpointNoncurrentDays' } },
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
            }),
          ],
        },
      },
    });
  });
  it('the budget is optional and emails at 80 % of the actual monthly cost', () => {
    template.hasResource('AWS::Budgets::Budget', {
      Condition: 'CreatingBudget',
      Properties: {
        Budget: Match.objectLike({
          BudgetType: 'COST',
          TimeUnit: 'MONTHLY',
          BudgetLimit: { Amount: { Ref: 'MonthlyBudgetUsd' }, Unit: 'USD' },
        }),
        NotificationsWithSubscribers: [
          {
            Notification: {
              NotificationType: 'ACTUAL',
              ComparisonOperator: 'GREATER_THAN',
              Threshold: 80,
              ThresholdType: 'PERCENTAGE',
            },
            Subscribers: [{ SubscriptionType: 'EMAIL', Address: { Ref: 'BudgetAlertEmail' } }],
          },
        ],
      },
    });
    expect(JSON.stringify((template.toJSON() as { Rules: Json }).Rules.BudgetNeedsAnEmail)).toContain(
      'BudgetAlertEmail',
    );
  });
});

describe('outputs', () => {
  it('are exactly what the action and the workflows take, plus the snippet', () => {
    expect(Object.keys(json.Outputs).sort()).toEqual([
      'CheckpointBucketName',
      'ControlRoleArn',
      'Image',
      'InstanceProfileName',
      'PackerRoleArn',
      'Region',
      'RunnerSubnetIds',
      'SecurityGroupId',
      'WorkflowSnippet',
    ]);
    expect(json.Outputs.CheckpointBucketName?.Condition).toBe('CreatingCheckpointBucket');
  });
  it('the snippet uses the action with the inputs the other outputs fill', () => {
    const text = ((json.Outputs.WorkflowSnippet?.Value as Json)['Fn::Sub'] as [string])[0];
    for (const input of [
      'mode: start',
      'image: ssm:/spot-runner/ami/${ImageName}/{arch}',
      'subnet-ids: ${Subnets}',
      'security-group-ids: ${RunnerSecurityGroup.GroupId}',
      'instance-profile: ${InstanceProfile}',
      'role-to-assume: "${ControlRoleArn}"',
    ]) {
      expect(text).toContain(input);
    }
    expect(text).toMatch(/uses: spot-runner\/spot-runner@v1$/m);
    expect(text).toContain('${!{ secrets.RUNNER_ADMIN_TOKEN }}');
  });
});
