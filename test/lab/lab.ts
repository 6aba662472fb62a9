// The lab fixture: moto + the GitHub stand-in + the AWS fault proxy + the instance simulator,
// wired together, plus the bundled action run as the Actions runner runs it. One lab serves a
// whole test file; reset() between scenarios. Used by __tests__/lab, `npm run demo` and
// `npm run bench`.
//
//   const lab = await startLab();
//   const { main } = await lab.start({ count: '3' });        // dist/index.js, mode start (+ post on failure)
//   lab.gh.queueJob({ labels: [main.outputs.label] });        // a job for one of its runners
//   await lab.stop(main.outputs.label);                        // dist/index.js, mode stop
//   await lab.assertNoLeaks();                                 // 0 instances, parameters, templates, runners
//   await lab.close();
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeSubnetsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { DescribeParametersCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { existsSync } from 'node:fs';
import { DIST, runStep, runWithPost, type StepOptions, type StepResult } from './action.js';
import { AwsFaultProxy } from './aws-proxy.js';
import { GitHubStandIn, type GitHubStandInOptions } from './github.js';
import { startMoto, type Moto } from './moto.js';
import { InstanceSimulator, type SimulatorOptions } from './simulator.js';

export const LAB_REGION = 'us-east-1';
export const AMI_PARAMETER = '/spot-runner/ami/base/x86_64';
const CREDS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export interface LabOptions {
  github?: GitHubStandInOptions;
  simulator?: Partial<Omit<SimulatorOptions, 'motoEndpoint' | 'awsEndpoint' | 'githubUrl' | 'proxy'>>;
}

export interface Leaks {
  /** Instances in any state but terminated. */
  instances: string[];
  /** SSM parameters under /spot-runner/jit. */
  parameters: string[];
  launchTemplates: string[];
  /** Runners still registered at the GitHub stand-in. */
  runners: string[];
}

export type StepRun = Partial<Omit<StepOptions, 'inputs' | 'env'>> & { env?: Record<string, string> };

export class Lab {
  /** moto's own endpoint and clients: the lab's view of "AWS", never faulted. */
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  subnets: string[] = [];
  ami = '';
  private readonly defaultBehaviour: InstanceSimulator['behaviour'];

  constructor(
    readonly moto: Moto,
    readonly gh: GitHubStandIn,
    readonly proxy: AwsFaultProxy,
    readonly sim: InstanceSimulator,
  ) {
    this.ec2 = new EC2Client({ region: LAB_REGION, endpoint: moto.endpoint, credentials: CREDS });
    this.ssm = new SSMClient({ region: LAB_REGION, endpoint: moto.endpoint, credentials: CREDS });
    this.defaultBehaviour = sim.behaviour;
    sim.onEnd ??= (i) => this.runnerLost(i.runnerId);
  }

  /**
   * GitHub's side of a machine that is gone: its runner stops heartbeating, so GitHub marks it
   * offline; a job it held fails; an ephemeral runner that took a job is removed. (GitHub does
   * this after a while; the lab does it at once.) A runner that exited cleanly is already gone.
   */
  runnerLost(runnerId: number | undefined): void {
    const r = runnerId === undefined ? undefined : this.gh.runners.get(runnerId);
    if (!r) return;
    const job = this.gh.jobs.find((j) => j.runnerId === r.id && j.finishedAt === undefined);
    if (job)
      Object.assign(job, {
        finishedAt: Date.now(),
        result: job.cancelRequested ? 'cancelled' : 'failed: the runner lost communication with the server',
      });
    if (job) this.gh.settleRun(this.gh.runs.get(job.runId));
    if (r.busy) r.jobsRun++;
    r.busy = false;
    r.status = 'offline';
    if (r.ephemeral && r.jobsRun > 0) this.gh.runners.delete(r.id);
  }

  /** The account as a start needs it: the AMI parameter (from moto's default images) and subnets. */
  async seed(): Promise<void> {
    const images = (await this.ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images ?? [];
    const ami = images.find((i) => i.Architecture === 'x86_64' && i.RootDeviceName)?.ImageId;
    if (!ami) throw new Error('moto offers no x86_64 image');
    this.ami = ami;
    await this.ssm.send(new PutParameterCommand({ Name: AMI_PARAMETER, Value: ami, Type: 'String', Overwrite: true }));
    this.subnets = ((await this.ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? [])
      .slice(0, 2)
      .map((s) => s.SubnetId ?? '');
  }

  /** The environment of a workflow step: AWS through the fault proxy, GitHub at the stand-in. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      AWS_ENDPOINT_URL: this.proxy.url,
      AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
      AWS_REGION: LAB_REGION,
      GITHUB_API_URL: this.gh.url,
      GITHUB_REPOSITORY: 'acme/widgets',
      GITHUB_RUN_ID: '4242',
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_JOB: 'start',
      GITHUB_EVENT_NAME: 'push',
      ...extra,
    };
  }

  /** Start inputs for the lab: two instance types, two subnets, times scaled to seconds. */
  startInputs(over: Record<string, string> = {}): Record<string, string> {
    return {
      mode: 'start',
      'github-token': this.gh.token,
      image: 'ssm:/spot-runner/ami/base/{arch}',
      'instance-types': 'c7i.large\nc6i.large',
      count: '1',
      'subnet-ids': this.subnets.join(','),
      'max-lifetime': '1',
      'idle-timeout': '0.5',
      'wait-timeout': '0.5',
      ...over,
    };
  }

  /** mode start from dist, then its post step when `post-if: failure() || cancelled()` holds. */
  start(inputs: Record<string, string> = {}, o: StepRun = {}): Promise<{ main: StepResult; post?: StepResult }> {
    return runWithPost({ ...o, inputs: this.startInputs(inputs), env: this.env(o.env) });
  }

  /**
   * mode watch from dist (then its post on failure), with the start inputs it needs and what the
   * runner fills in from action.yml: cancel-token is the job's GITHUB_TOKEN (the stand-in's jobToken).
   */
  watch(
    label: string,
    runners: string,
    inputs: Record<string, string> = {},
    o: StepRun = {},
  ): Promise<{ main: StepResult; post?: StepResult }> {
    return runWithPost({
      timeoutMs: 180_000,
      ...o,
      inputs: this.startInputs({ mode: 'watch', label, runners, 'cancel-token': this.gh.jobToken, ...inputs }),
      env: this.env({ GITHUB_JOB: 'watch', SPOT_RUNNER_WATCH_POLL_SECONDS: '1', RUNNER_DEBUG: '1', ...o.env }),
    });
  }

  /** mode pool from dist: fills pool `pool` to `size` with start's lab launch inputs (so lab starts with the same inputs match its hash). */
  pool(pool: string, size: number, inputs: Record<string, string> = {}, o: StepRun = {}): Promise<StepResult> {
    return runStep({
      ...o,
      inputs: { ...this.startInputs(inputs), mode: 'pool', pool, size: String(size) },
      env: this.env({ GITHUB_JOB: 'fill-pool', ...o.env }),
    });
  }

  /** mode stop from dist, by label (and/or instance-ids). */
  stop(label: string, inputs: Record<string, string> = {}, o: StepRun = {}): Promise<StepResult> {
    return runStep({
      ...o,
      inputs: { mode: 'stop', 'github-token': this.gh.token, label, ...inputs },
      env: this.env({ GITHUB_JOB: 'stop', ...o.env }),
    });
  }

  /** mode reap from dist. */
  reap(inputs: Record<string, string> = {}, o: StepRun = {}): Promise<StepResult> {
    return runStep({
      ...o,
      inputs: { mode: 'reap', 'github-token': this.gh.token, ...inputs },
      env: this.env({ GITHUB_JOB: 'reap', GITHUB_EVENT_NAME: 'schedule', ...o.env }),
    });
  }

  async leaks(): Promise<Leaks> {
    const inst = await this.ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] },
        ],
      }),
    );
    const params = await this.ssm.send(
      new DescribeParametersCommand({
        ParameterFilters: [{ Key: 'Path', Option: 'Recursive', Values: ['/spot-runner/jit'] }],
      }),
    );
    const lts = await this.ec2.send(new DescribeLaunchTemplatesCommand({}));
    return {
      instances: (inst.Reservations ?? [])
        .flatMap((r) => r.Instances ?? [])
        .map((i) => `${i.InstanceId ?? ''} (${i.State?.Name ?? ''})`),
      parameters: (params.Parameters ?? []).map((p) => p.Name ?? ''),
      launchTemplates: (lts.LaunchTemplates ?? []).map(
        (t) => `${t.LaunchTemplateId ?? ''} ${t.LaunchTemplateName ?? ''}`,
      ),
      runners: [...this.gh.runners.values()].map((r) => `${r.name} (${r.status}${r.busy ? ', busy' : ''})`),
    };
  }

  /**
   * The end state every scenario must reach: nothing left in moto or at the stand-in, no OpenAPI
   * violation, and no simulator trouble (an instance whose bootstrap exited without powering off
   * counts as trouble: a real one would keep running).
   */
  async assertNoLeaks(): Promise<void> {
    const l = await this.leaks();
    const problems = [
      ...(l.instances.length ? [`live instances: ${l.instances.join(', ')}`] : []),
      ...(l.parameters.length ? [`parameters: ${l.parameters.join(', ')}`] : []),
      ...(l.launchTemplates.length ? [`launch templates: ${l.launchTemplates.join(', ')}`] : []),
      ...(l.runners.length ? [`registered runners: ${l.runners.join(', ')}`] : []),
      ...this.sim.problems.map((p) => `simulator: ${p}`),
      ...[...this.sim.instances.values()].filter((i) => i.anomaly).map((i) => `${i.instanceId}: ${i.anomaly}`),
    ];
    if (problems.length > 0)
      throw new Error(
        `lab: leaks after the kill path ran:\n- ${problems.join('\n- ')}\ninstances: ${this.sim.describe()}`,
      );
    this.gh.assertNoViolations();
  }

  /** Back to an empty account and GitHub (seeded again), no faults, no instances. */
  async reset(): Promise<void> {
    await this.sim.reset();
    await this.moto.reset();
    this.gh.reset();
    this.proxy.reset();
    this.sim.behaviour = this.defaultBehaviour;
    await this.seed();
  }

  async close(): Promise<void> {
    await this.sim.close();
    await this.proxy.close();
    await this.gh.close();
    await this.moto.stop();
    this.ec2.destroy();
    this.ssm.destroy();
  }
}

/** Starts the whole lab. Fails with the install hint if moto is missing, and if dist is. */
export async function startLab(o: LabOptions = {}): Promise<Lab> {
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run 'npm run bundle' first`);
  const moto = await startMoto();
  const gh = await GitHubStandIn.start(o.github);
  const proxy = await AwsFaultProxy.start(moto.endpoint);
  const sim = InstanceSimulator.start({
    ...o.simulator,
    motoEndpoint: moto.endpoint,
    awsEndpoint: proxy.url,
    githubUrl: gh.url,
    proxy,
    region: LAB_REGION,
  });
  const lab = new Lab(moto, gh, proxy, sim);
  await lab.seed();
  return lab;
}
