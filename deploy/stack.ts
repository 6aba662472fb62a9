// The AWS account set up for spot-runner in one stack: the GitHub OIDC provider (or an existing one),
// the control, instance and Packer roles, an egress-only security group and, optionally, a checkpoint
// bucket and a monthly budget. Everything is an L1 (Cfn*) resource with a plain logical id, because the
// committed template is read and deployed by people without CDK; every choice is a CloudFormation
// parameter, so `aws cloudformation deploy --parameter-overrides` is all they need.
import {
  Aws,
  CfnCondition,
  CfnOutput,
  CfnParameter,
  CfnRule,
  DefaultStackSynthesizer,
  Fn,
  Stack,
  Validations,
  type ICfnConditionExpression,
} from 'aws-cdk-lib';
import { CfnBudget } from 'aws-cdk-lib/aws-budgets';
import { CfnSecurityGroup } from 'aws-cdk-lib/aws-ec2';
import { CfnInstanceProfile, CfnOIDCProvider, CfnPolicy, CfnRole } from 'aws-cdk-lib/aws-iam';
import { CfnBucket } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { readPolicy, stackPolicy } from './policies.js';

/** The repositories parameter takes at most this many names (one `sub` per name and scope). */
export const MAX_REPOSITORIES = 10;
export const OIDC_HOST = 'token.actions.githubusercontent.com';
/** Where build-ami.yml publishes image ids and the control role may read them (docs/iam/control-role.json). */
export const AMI_PARAMETER_ROOT = '/spot-runner/ami';

const NAME = '[A-Za-z0-9._-]+(@[0-9]+)?';
const NO_WILDCARDS = '^[^*?,:\\s]*$';

export class SpotRunnerStack extends Stack {
  constructor(scope: Construct, id: string) {
    super(scope, id, {
      // No `cdk bootstrap`: the template needs no assets, so no version rule either.
      synthesizer: new DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
      analyticsReporting: false,
      description:
        'spot-runner: GitHub OIDC, the control/instance/Packer roles, an egress-only security group, an optional checkpoint bucket and budget',
    });

    // ---- parameters ----
    const org = new CfnParameter(this, 'GitHubOrg', {
      type: 'String',
      description:
        'GitHub organisation or user that owns the repositories (for the immutable subject format, write owner@OWNER_ID)',
      allowedPattern: `^${NAME}$`,
      constraintDescription: 'a GitHub owner name, optionally @ and its numeric id',
    });
    const repos = new CfnParameter(this, 'Repositories', {
      type: 'String',
      description: `Repositories (names without the owner, comma-separated, no spaces, at most ${MAX_REPOSITORIES}) whose workflows may assume the control role; name@REPO_ID for the immutable subject format`,
      allowedPattern: `^${NAME}(,${NAME}){0,${MAX_REPOSITORIES - 1}}$`,
      constraintDescription: `1 to ${MAX_REPOSITORIES} repository names separated by commas, without spaces or wildcards`,
    });
    const branch = new CfnParameter(this, 'Branch', {
      type: 'String',
      default: 'main',
      description:
        'Jobs on this branch (without an environment) may assume the roles: sub repo:ORG/REPO:ref:refs/heads/BRANCH. Empty = none. Scheduled reap runs on the default branch.',
      allowedPattern: '^[^*?,\\s]*$',
    });
    const environment = new CfnParameter(this, 'Environment', {
      type: 'String',
      default: '',
      description:
        'Jobs with this GitHub environment may assume the roles: sub repo:ORG/REPO:environment:NAME. Empty = none.',
      allowedPattern: NO_WILDCARDS,
    });
    const amiRepo = new CfnParameter(this, 'AmiBuildRepository', {
      type: 'String',
      default: '',
      description: 'Repository whose build-ami.yml may assume the Packer role. Empty = the first of Repositories.',
      allowedPattern: `^(${NAME})?$`,
    });
    const createOidc = new CfnParameter(this, 'CreateOidcProvider', {
      type: 'String',
      default: 'true',
      allowedValues: ['true', 'false'],
      description: `true creates the IAM OIDC provider for ${OIDC_HOST}; false reuses the account's existing one (an account has at most one per URL)`,
    });
    const prefix = new CfnParameter(this, 'NamePrefix', {
      type: 'String',
      default: 'spot-runner',
      description:
        'Prefix of the role, profile and security-group names (IAM names are account-wide: use another prefix for a second stack)',
      allowedPattern: '^[A-Za-z0-9+=.@_-]{1,40}$',
    });
    const vpc = new CfnParameter(this, 'VpcId', {
      type: 'AWS::EC2::VPC::Id',
      description: 'VPC of the runner security group',
    });
    const subnets = new CfnParameter(this, 'SubnetIds', {
      type: 'List<AWS::EC2::Subnet::Id>',
      description:
        'Subnets (in VpcId) the runners launch in; passed through to the outputs for subnet-ids. They need a route to the internet (NAT or public IP) or VPC endpoints.',
    });
    const imageName = new CfnParameter(this, 'ImageName', {
      type: 'String',
      default: 'base',
      description: `Image name build-ami.yml publishes under ${AMI_PARAMETER_ROOT}/NAME/{arch}`,
      allowedPattern: '^[A-Za-z0-9._-]+$',
    });
    const extraPolicies = new CfnParameter(this, 'InstanceRoleManagedPolicyArns', {
      type: 'CommaDelimitedList',
      default: '',
      description: 'Extra managed policies for the runner instances (comma-separated ARNs). Empty = none.',
    });
    const withBucket = new CfnParameter(this, 'CreateCheckpointBucket', {
      type: 'String',
      default: 'false',
      allowedValues: ['true', 'false'],
      description:
        'true creates an encrypted, versioned, private S3 bucket for training checkpoints, and lets the runner instances read and write it',
    });
    const noncurrentDays = new CfnParameter(this, 'CheckpointNoncurrentDays', {
      type: 'Number',
      default: 30,
      minValue: 1,
      description: 'Days after which an overwritten or deleted checkpoint version is removed',
    });
    const budget = new CfnParameter(this, 'MonthlyBudgetUsd', {
      type: 'Number',
      default: 0,
      minValue: 0,
      description: 'Monthly cost budget for the account in USD; an email goes out at 80 % of it. 0 = no budget.',
    });
    const email = new CfnParameter(this, 'BudgetAlertEmail', {
      type: 'String',
      default: '',
      description: 'Address that gets the budget alert (required with MonthlyBudgetUsd)',
    });

    this.templateOptions.metadata = {
      'AWS::CloudFormation::Interface': {
        ParameterGroups: [
          {
            Label: { default: 'Who may assume the roles' },
            Parameters: [org, repos, branch, environment, amiRepo, createOidc].map((p) => p.logicalId),
          },
          { Label: { default: 'Network' }, Parameters: [vpc.logicalId, subnets.logicalId] },
          {
            Label: { default: 'Names and images' },
            Parameters: [prefix.logicalId, imageName.logicalId, extraPolicies.logicalId],
          },
          {
            Label: { default: 'Optional: checkpoints and budget' },
            Parameters: [withBucket, noncurrentDays, budget, email].map((p) => p.logicalId),
          },
        ],
      },
    };

    // ---- conditions ----
    const cond = (id: string, expression: ICfnConditionExpression) => new CfnCondition(this, id, { expression });
    const notEmpty = (v: string) => Fn.conditionNot(Fn.conditionEquals(v, ''));
    const creatingOidc = cond('CreatingOidcProvider', Fn.conditionEquals(createOidc.valueAsString, 'true'));
    const hasBranch = cond('HasBranch', notEmpty(branch.valueAsString));
    const hasEnvironment = cond('HasEnvironment', notEmpty(environment.valueAsString));
    const hasAmiRepo = cond('HasAmiBuildRepository', notEmpty(amiRepo.valueAsString));
    const hasExtraPolicies = cond('HasInstanceRoleManagedPolicies', notEmpty(Fn.join('', extraPolicies.valueAsList)));
    const creatingBucket = cond('CreatingCheckpointBucket', Fn.conditionEquals(withBucket.valueAsString, 'true'));
    const creatingBudget = cond('CreatingBudget', Fn.conditionNot(Fn.conditionEquals(budget.valueAsString, '0')));

    new CfnRule(this, 'BudgetNeedsAnEmail', {
      ruleCondition: Fn.conditionNot(Fn.conditionEquals(budget.valueAsString, '0')),
      assertions: [
        {
          assert: Fn.conditionNot(Fn.conditionEquals(email.valueAsString, '')),
          assertDescription: 'MonthlyBudgetUsd needs BudgetAlertEmail: the alert has nobody to tell',
        },
      ],
    });

    // ---- who may assume the roles: one exact `sub` per repository and scope ----
    // CloudFormation has no map over a list, so the names are padded and selected by index; an
    // unused slot is AWS::NoValue, which drops it from the list.
    const padded = Fn.split(',', Fn.join('', [repos.valueAsString, ','.repeat(MAX_REPOSITORIES)]));
    const subject = (repo: string, scope: 'branch' | 'environment') =>
      scope === 'branch'
        ? Fn.sub('repo:${Org}/${Repo}:ref:refs/heads/${Branch}', {
            Org: org.valueAsString,
            Repo: repo,
            Branch: branch.valueAsString,
          })
        : Fn.sub('repo:${Org}/${Repo}:environment:${Environment}', {
            Org: org.valueAsString,
            Repo: repo,
            Environment: environment.valueAsString,
          });
    const controlSubjects: unknown[] = [];
    for (let i = 0; i < MAX_REPOSITORIES; i++) {
      const repo = Fn.select(i, padded);
      const has = cond(`HasRepository${i + 1}`, notEmpty(repo));
      const onBranch = cond(`Repository${i + 1}OnBranch`, Fn.conditionAnd(has, hasBranch));
      const inEnvironment = cond(`Repository${i + 1}InEnvironment`, Fn.conditionAnd(has, hasEnvironment));
      controlSubjects.push(Fn.conditionIf(onBranch.logicalId, subject(repo, 'branch'), Aws.NO_VALUE));
      controlSubjects.push(Fn.conditionIf(inEnvironment.logicalId, subject(repo, 'environment'), Aws.NO_VALUE));
    }
    const amiBuildRepo = Fn.conditionIf(hasAmiRepo.logicalId, amiRepo.valueAsString, Fn.select(0, padded)).toString();
    const packerSubjects = [
      Fn.conditionIf(hasBranch.logicalId, subject(amiBuildRepo, 'branch'), Aws.NO_VALUE),
      Fn.conditionIf(hasEnvironment.logicalId, subject(amiBuildRepo, 'environment'), Aws.NO_VALUE),
    ];

    const oidc = new CfnOIDCProvider(this, 'GitHubOidcProvider', {
      url: `https://${OIDC_HOST}`,
      clientIdList: ['sts.amazonaws.com'],
    });
    oidc.cfnOptions.condition = creatingOidc;
    // Ref of an OIDC provider is its ARN.
    const providerArn = Fn.conditionIf(
      creatingOidc.logicalId,
      oidc.ref,
      Fn.sub(`arn:\${AWS::Partition}:iam::\${AWS::AccountId}:oidc-provider/${OIDC_HOST}`),
    );

    // docs/iam/github-oidc-trust.json is the shape: its principal and audience, with the stack's
    // subjects. They are exact, so StringEquals (the file's StringLike is for hand-edited lists).
    const trustTemplate = readPolicy('github-oidc-trust.json').Statement[0];
    if (!trustTemplate) throw new Error('docs/iam/github-oidc-trust.json has no statement');
    const githubTrust = (subjects: unknown[]) => ({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: trustTemplate.Sid,
          Effect: trustTemplate.Effect,
          Principal: { Federated: providerArn },
          Action: trustTemplate.Action,
          Condition: {
            StringEquals: { ...trustTemplate.Condition?.StringEquals, [`${OIDC_HOST}:sub`]: subjects },
          },
        },
      ],
    });

    // ---- roles ----
    const instanceRole = new CfnRole(this, 'InstanceRole', {
      roleName: Fn.sub('${NamePrefix}-instance'),
      description: 'spot-runner runner instances: read their own JIT parameter, tag their own phase',
      assumeRolePolicyDocument: {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      },
      policies: [{ policyName: 'spot-runner-instance', policyDocument: stackPolicy('instance-role.json') }],
      managedPolicyArns: Fn.conditionIf(
        hasExtraPolicies.logicalId,
        extraPolicies.valueAsList,
        Aws.NO_VALUE,
      ) as unknown as string[],
    });
    // The validator reads the list's empty default as one empty ARN; Fn::If drops it before IAM sees it.
    Validations.of(instanceRole).acknowledge({
      id: 'CloudFormation-Validate::F3031',
      reason: 'an empty InstanceRoleManagedPolicyArns becomes AWS::NoValue',
    });
    const profile = new CfnInstanceProfile(this, 'InstanceProfile', {
      instanceProfileName: Fn.sub('${NamePrefix}-instance'),
      roles: [instanceRole.ref],
    });

    const controlRole = new CfnRole(this, 'ControlRole', {
      roleName: Fn.sub('${NamePrefix}-control'),
      description: 'spot-runner action (start, stop, reap), assumed through GitHub OIDC',
      assumeRolePolicyDocument: githubTrust(controlSubjects),
      maxSessionDuration: 3600,
      // The file names the instance role spot-runner-instance; PassRole gets this stack's one.
      policies: [
        {
          policyName: 'spot-runner-control',
          policyDocument: stackPolicy('control-role.json', { 'spot-runner-instance': instanceRole.attrArn }),
        },
      ],
    });

    const packerRole = new CfnRole(this, 'PackerRole', {
      roleName: Fn.sub('${NamePrefix}-packer'),
      description: 'spot-runner build-ami.yml (Packer and the AMI tool), assumed through GitHub OIDC',
      assumeRolePolicyDocument: githubTrust(packerSubjects),
      maxSessionDuration: 7200,
      policies: [{ policyName: 'spot-runner-packer', policyDocument: stackPolicy('packer-role.json') }],
    });

    // ---- network: no inbound rule at all; the runner only dials out (GitHub, AWS APIs) ----
    const sg = new CfnSecurityGroup(this, 'RunnerSecurityGroup', {
      groupName: Fn.sub('${NamePrefix}-runners'),
      groupDescription: 'spot-runner runners: egress only, no inbound rules',
      vpcId: vpc.valueAsString,
      securityGroupEgress: [
        { ipProtocol: '-1', cidrIp: '0.0.0.0/0', description: 'outbound to GitHub and AWS APIs' },
        { ipProtocol: '-1', cidrIpv6: '::/0', description: 'outbound over IPv6' },
      ],
    });

    // ---- optional checkpoint bucket ----
    const bucket = new CfnBucket(this, 'CheckpointBucket', {
      bucketEncryption: {
        serverSideEncryptionConfiguration: [
          { serverSideEncryptionByDefault: { sseAlgorithm: 'AES256' }, bucketKeyEnabled: true },
        ],
      },
      versioningConfiguration: { status: 'Enabled' },
      publicAccessBlockConfiguration: {
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      },
      ownershipControls: { rules: [{ objectOwnership: 'BucketOwnerEnforced' }] },
      lifecycleConfiguration: {
        rules: [
          {
            id: 'checkpoints',
            status: 'Enabled',
            abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
            noncurrentVersionExpiration: { noncurrentDays: noncurrentDays.valueAsNumber },
            transitions: [
              { storageClass: 'STANDARD_IA', transitionInDays: 30 },
              { storageClass: 'GLACIER', transitionInDays: 90 },
            ],
          },
        ],
      },
    });
    bucket.cfnOptions.condition = creatingBucket;
    // A checkpoint is a training run's only state: deleting the stack keeps it.
    bucket.cfnOptions.deletionPolicy = 'Retain' as never;
    bucket.cfnOptions.updateReplacePolicy = 'Retain' as never;

    // The instances may read and write the checkpoints (train.yml syncs them on interruption). A
    // separate policy resource, not a conditional entry in the role's list: moto chokes on that.
    const checkpointAccess = new CfnPolicy(this, 'CheckpointAccess', {
      policyName: 'spot-runner-checkpoints',
      roles: [instanceRole.ref],
      policyDocument: stackPolicy('checkpoint-bucket.json', {}, { CHECKPOINT_BUCKET: '${CheckpointBucket}' }),
    });
    checkpointAccess.cfnOptions.condition = creatingBucket;

    // ---- optional budget ----
    const alert = new CfnBudget(this, 'MonthlyBudget', {
      budget: {
        budgetName: Fn.sub('${NamePrefix}-monthly'),
        budgetType: 'COST',
        timeUnit: 'MONTHLY',
        budgetLimit: { amount: budget.valueAsNumber, unit: 'USD' },
      },
      notificationsWithSubscribers: [
        {
          notification: {
            notificationType: 'ACTUAL',
            comparisonOperator: 'GREATER_THAN',
            threshold: 80,
            thresholdType: 'PERCENTAGE',
          },
          subscribers: [{ subscriptionType: 'EMAIL', address: email.valueAsString }],
        },
      ],
    });
    alert.cfnOptions.condition = creatingBudget;

    // ---- outputs: what the action and the reusable workflows take ----
    const out = (id: string, value: string, description: string, condition?: CfnCondition) =>
      new CfnOutput(this, id, { value, description, condition });
    out(
      'ControlRoleArn',
      controlRole.attrArn,
      'role-to-assume for the action (configure-aws-credentials) and the reusable workflows',
    );
    out('PackerRoleArn', packerRole.attrArn, 'role-to-assume for build-ami.yml');
    out('InstanceProfileName', profile.ref, 'instance-profile');
    out('SecurityGroupId', sg.attrGroupId, 'security-group-ids');
    out('RunnerSubnetIds', Fn.join(',', subnets.valueAsList), 'subnet-ids');
    out(
      'Image',
      Fn.sub(`ssm:${AMI_PARAMETER_ROOT}/\${ImageName}/{arch}`),
      'image (build-ami.yml publishes the AMI id there)',
    );
    out('Region', Aws.REGION, 'aws-region');
    out(
      'CheckpointBucketName',
      bucket.ref,
      "the checkpoint bucket; train.yml's checkpoint-uri is s3://BUCKET/PREFIX",
      creatingBucket,
    );
    out(
      'WorkflowSnippet',
      Fn.sub(
        [
          '# start job: id-token: write',
          '- uses: aws-actions/configure-aws-credentials@7474bc4690e29a8392af63c5b98e7449536d5c3a # v4.3.1',
          '  with: { role-to-assume: "${ControlRoleArn}", aws-region: "${AWS::Region}" }',
          '- id: start',
          '  uses: spot-runner/spot-runner@v1',
          '  with:',
          '    mode: start',
          // ${!x} is Fn::Sub's escape for a literal ${x}.
          '    github-token: ${!{ secrets.RUNNER_ADMIN_TOKEN }}',
          `    image: ssm:${AMI_PARAMETER_ROOT}/\${ImageName}/{arch}`,
          '    instance-types: c7i.large, c6i.large',
          '    subnet-ids: ${Subnets}',
          '    security-group-ids: ${RunnerSecurityGroup.GroupId}',
          '    instance-profile: ${InstanceProfile}',
        ].join('\n'),
        { ControlRoleArn: controlRole.attrArn, Subnets: Fn.join(',', subnets.valueAsList) },
      ),
      'steps for the start job (the stop job assumes the same role)',
    );
  }
}
