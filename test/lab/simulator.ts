// The lab's instance simulator: every instance that appears in moto boots the REAL user-data the
// action rendered, in a sandbox on this machine (contract: user-data/test/README.md):
//   - its user-data comes from moto (DescribeInstanceAttribute userData), exactly as EC2 holds it;
//   - it runs as `setsid bash user-data` with the sandbox env, under PATH shims: the lab `aws`
//     (test/lab/shims/aws: real SSM/EC2 wire calls to moto through the fault proxy) first, then
//     the sandbox's shutdown/systemctl/poweroff/systemd-run/iptables/setpriv;
//   - a per-instance IMDSv2 (in this process) serves its instance id and, on
//     spotNotice(id), spot/instance-action;
//   - the runner is test/lab/run.sh, which connects to the GitHub stand-in with the JIT config
//     the bootstrap hands it, takes one queued job, runs it, and exits.
// When the bootstrap powers off (a shim records it and kills the process group) the simulator
// terminates the instance in moto, directly (not through the proxy): that is
// InstanceInitiatedShutdownBehavior=terminate. An instance terminated by someone else (stop,
// reap, post) loses its power: its process group is killed. A spot interruption is the notice,
// then, `interruptionNoticeMs` later (EC2's two minutes, scaled), the termination.
// Stop and start (the warm pool): a power-off of an instance whose InstanceInitiatedShutdownBehavior
// (read from moto) is `stop` stops it in moto instead; its disk (the sandbox's root/, minus run/,
// which is a tmpfs) stays. When someone starts it again, the simulator boots it as cloud-init
// would on a second boot: user-data scripts run once per instance, so only the executables in
// root/var/lib/cloud/scripts/per-boot run (after `resumeDelayMs`).
import {
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  EC2Client,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TAGS } from '../../src/tags.js';
import type { AwsFaultProxy } from './aws-proxy.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const LAB_SHIMS = join(HERE, 'shims');
export const SANDBOX_SHIMS = resolve(HERE, '..', '..', 'user-data', 'test', 'shims');
export const LAB_RUN_SH = join(HERE, 'run.sh');

export interface InstanceBehaviour {
  /** `never`: the image never runs its user-data (a machine that hangs in boot). Default `normal`. */
  boot?: 'normal' | 'never';
  /** Milliseconds from launch until the user-data starts (EC2's boot, scaled). Default 0. */
  bootDelayMs?: number;
  /** `crash`: run.sh exits 1 at once (broken image); `no-connect`: it never reaches GitHub. */
  runner?: 'normal' | 'crash' | 'no-connect';
  /** How long the job runs, in ms, or `hang`. Default 300. */
  jobMs?: number | 'hang';
  /** Scripts baked into the image's /etc/spot-runner/interruption.d (name → bash body). */
  interruptionHooks?: Record<string, string>;
  /** Milliseconds from StartInstances until a stopped instance's per-boot scripts run (EC2's resume, scaled). Default 0. */
  resumeDelayMs?: number;
}

export interface LaunchedInfo {
  instanceId: string;
  instanceType: string;
  label: string;
  market: 'spot' | 'on-demand';
}

export interface SimulatorOptions {
  /** moto's own endpoint: the simulator reads user-data and terminates instances there directly. */
  motoEndpoint: string;
  /** What the instances' `aws` shim talks to: the fault proxy's URL (or moto's). */
  awsEndpoint: string;
  /** The GitHub stand-in's URL, for run.sh. */
  githubUrl: string;
  region?: string;
  /** If given, instances boot as soon as the proxy sees their fleet launched (else at the next poll). */
  proxy?: AwsFaultProxy;
  /** How often moto is polled for new and externally terminated instances. Default 150 ms. */
  pollMs?: number;
  /** The bootstrap's spot poll interval, seconds. Default 0.2. */
  spotPollSeconds?: number;
  /** EC2's two minutes between a spot notice and the termination, scaled. Default 3000 ms. */
  interruptionNoticeMs?: number;
  /** Per-instance behaviour; a function sees the instance (e.g. to break only the first). */
  behaviour?: InstanceBehaviour | ((i: LaunchedInfo) => InstanceBehaviour);
  /** Called once an instance has ended (powered off or terminated, and its processes are gone). */
  onEnd?: (i: SimInstance) => void;
  /** Where sandboxes go; default a fresh temp dir, removed by close() unless keep is set. */
  workDir?: string;
  keep?: boolean;
}

export type EndKind = 'power-off' | 'spot-interruption' | 'terminated-externally';

/** The StateReason EC2 gives each end that is not an API call (API terminations: moto's Client.UserInitiatedShutdown). */
const END_REASONS: Record<EndKind, { code: string; message: string } | undefined> = {
  'spot-interruption': {
    code: 'Server.SpotInstanceTermination',
    message: 'Server.SpotInstanceTermination: Spot instance termination',
  },
  'power-off': {
    code: 'Client.InstanceInitiatedShutdown',
    message: 'Client.InstanceInitiatedShutdown: Instance initiated shutdown',
  },
  'terminated-externally': undefined,
};

export interface SimInstance extends LaunchedInfo {
  dir: string;
  /** When the simulator learnt of it (≈ the launch: the proxy reports each fleet as it returns). */
  launchedAt: number;
  bootStartedAt?: number;
  /** The runner connected to GitHub (read live from what run.sh records). */
  readonly connectedAt?: number;
  readonly jobStartedAt?: number;
  readonly jobDoneAt?: number;
  /** The job saw the spot interruption marker. */
  readonly jobSawInterruption?: number;
  /** The GitHub runner id its runner connected as (from the stand-in's answer; not a secret). */
  readonly runnerId?: number;
  /** Files under root/ the interruption hooks wrote, etc.: the sandbox paths (tmp: the bootstrap's TMPDIR). */
  readonly paths: { state: string; root: string; runner: string; out: string; tmp: string };
  spotNoticeAt?: number;
  poweredOffAt?: number;
  /** What the bootstrap wrote as its reason (e.g. job-done, idle-timeout, max-lifetime). */
  powerOffReason?: string;
  /** When it was terminated in moto (by the simulator or by someone else). */
  terminatedAt?: number;
  end?: EndKind;
  /** The bootstrap exited without powering off: on a real machine it would keep running. */
  anomaly?: string;
  /** Times it stopped (guest power-off with InstanceInitiatedShutdownBehavior=stop); the reasons of every power-off, in order. */
  stops: number;
  reasons: string[];
  /** While stopped: when it stopped. */
  stoppedAt?: number;
  /** When the simulator saw its latest StartInstances (the resume's start). */
  startSeenAt?: number;
  /** When its latest resume boot started (per-boot scripts). */
  resumedAt?: number;
  /** Console output: the bootstrap's log and its power-off line. */
  console(): string;
  /** Milliseconds from launch to termination (undefined while alive). */
  lifetimeMs(): number | undefined;
}

interface Internal extends SimInstance {
  child?: ChildProcess;
  pgid?: number;
  imds?: Server;
  spotNotice?: string;
  terminating?: Promise<void>;
  exited: Promise<void>;
  markExited: () => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class InstanceSimulator {
  readonly instances = new Map<string, SimInstance>();
  readonly workDir: string;
  /** Problems the simulator itself hit (failed user-data fetch, failed terminate…); tests assert it is empty. */
  readonly problems: string[] = [];
  behaviour: SimulatorOptions['behaviour'];
  onEnd: SimulatorOptions['onEnd'];
  private readonly ec2: EC2Client;
  private running = true;
  private loop?: Promise<void>;
  private wake?: () => void;
  private generation = 0;

  private constructor(private readonly o: SimulatorOptions) {
    this.workDir = o.workDir ?? mkdtempSync(join(tmpdir(), 'sr-sim-'));
    this.behaviour = o.behaviour;
    this.onEnd = o.onEnd;
    this.ec2 = new EC2Client({
      region: o.region ?? 'us-east-1',
      endpoint: o.motoEndpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      maxAttempts: 5,
    });
  }

  /** Starts watching moto. */
  static start(o: SimulatorOptions): InstanceSimulator {
    for (const f of [join(LAB_SHIMS, 'aws'), LAB_RUN_SH, join(SANDBOX_SHIMS, 'shutdown')]) {
      if (!existsSync(f)) throw new Error(`instance simulator: ${f} is missing`);
    }
    const sim = new InstanceSimulator(o);
    o.proxy?.onFleet(() => sim.poke());
    sim.loop = sim.watch();
    return sim;
  }

  get(id: string): SimInstance {
    const i = this.instances.get(id);
    if (!i)
      throw new Error(
        `instance simulator: no instance ${id} (known: ${[...this.instances.keys()].join(', ') || 'none'})`,
      );
    return i;
  }

  /** Polls moto at once (the proxy calls this when a fleet launches). */
  poke(): void {
    this.wake?.();
  }

  /**
   * A spot interruption: IMDS starts answering spot/instance-action now, and the instance is
   * terminated `interruptionNoticeMs` later unless it powered off before. Resolves when it is terminated.
   */
  async spotNotice(id: string, noticeMs = this.o.interruptionNoticeMs ?? 3000): Promise<void> {
    const i = this.get(id) as Internal;
    const at = new Date(Date.now() + 120_000).toISOString().replace(/\.\d+Z$/, 'Z');
    i.spotNotice = JSON.stringify({ action: 'terminate', time: at });
    i.spotNoticeAt = Date.now();
    await sleep(noticeMs);
    if (i.terminatedAt === undefined) await this.terminate(i, 'spot-interruption');
    await i.exited;
  }

  /**
   * A frozen machine (hung kernel): SIGSTOP to its whole process group, so none of its own
   * watchdogs can fire. Only something outside (stop, reap) can end it now.
   */
  freeze(id: string): void {
    const i = this.get(id) as Internal;
    if (i.pgid === undefined) throw new Error(`instance simulator: ${id} has not booted`);
    process.kill(-i.pgid, 'SIGSTOP');
  }

  /** Resolves when pred holds (checked every 50 ms); rejects after timeoutMs with what it saw. */
  async waitFor(what: string, pred: () => boolean, timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > end)
        throw new Error(
          `instance simulator: timed out after ${timeoutMs} ms waiting for ${what}; instances: ${this.describe()}`,
        );
      await sleep(50);
    }
  }

  /** Waits until every instance seen so far (or the given ones) is terminated. */
  async waitAllTerminated(timeoutMs = 30_000, ids?: string[]): Promise<void> {
    const set = () => (ids ?? [...this.instances.keys()]).map((id) => this.get(id));
    await this.waitFor(
      'every instance to be terminated',
      () => set().every((i) => i.terminatedAt !== undefined),
      timeoutMs,
    );
    await Promise.all(set().map((i) => (i as Internal).exited));
  }

  /** One line per instance: id, type, market, end, reason, lifetime. */
  describe(): string {
    return (
      [...this.instances.values()]
        .map(
          (i) =>
            `${i.instanceId} ${i.instanceType} ${i.market} ${i.end ?? 'alive'}${i.powerOffReason ? ` (${i.powerOffReason})` : ''}${i.lifetimeMs() !== undefined ? ` ${i.lifetimeMs()} ms` : ''}${i.anomaly ? ` ANOMALY ${i.anomaly}` : ''}`,
        )
        .join('; ') || 'none'
    );
  }

  /** Every file in every sandbox that contains one of the strings (for secret-leak checks). */
  filesContaining(needles: readonly string[]): string[] {
    const hits: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile() && statSync(p).size < 4 << 20) {
          const text = readFileSync(p, 'utf8');
          if (needles.some((n) => n && text.includes(n))) hits.push(p);
        }
      }
    };
    if (existsSync(this.workDir)) walk(this.workDir);
    return hits;
  }

  /** Cuts the power of every instance and forgets them (call it with moto.reset() between scenarios). */
  async reset(): Promise<void> {
    this.generation++;
    const all = [...this.instances.values()] as Internal[];
    for (const i of all) {
      i.terminating ??= Promise.resolve(); // the lab pulled the plug: not an anomaly
      this.kill(i);
    }
    await Promise.all(all.map((i) => Promise.race([i.exited, new Promise((r) => setTimeout(r, 3000).unref())])));
    for (const i of all) i.imds?.close();
    this.instances.clear();
    this.problems.length = 0;
  }

  async close(): Promise<void> {
    this.running = false;
    this.poke();
    await this.loop;
    await this.reset();
    this.ec2.destroy();
    if (!(this.o.keep ?? process.env.SPOT_RUNNER_LAB_KEEP === '1') && this.o.workDir === undefined)
      rmSync(this.workDir, { recursive: true, force: true });
  }

  // ---- the watch loop ------------------------------------------------------------------

  private async watch(): Promise<void> {
    while (this.running) {
      try {
        await this.pollOnce();
      } catch (e) {
        // moto restarting or being reset: try again next round
        if (this.running && !/ECONNREFUSED|socket hang up/.test(String(e))) this.problems.push(`poll: ${String(e)}`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, this.o.pollMs ?? 150);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  private async pollOnce(): Promise<void> {
    const gen = this.generation;
    const askedAt = Date.now();
    const out = await this.ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: 'tag-key', Values: [TAGS.label] }] }),
    );
    if (gen !== this.generation) return;
    for (const r of out.Reservations ?? []) {
      for (const x of r.Instances ?? []) {
        const id = x.InstanceId ?? '';
        const state = x.State?.Name ?? '';
        const known = this.instances.get(id) as Internal | undefined;
        if (!known) {
          if (state !== 'pending' && state !== 'running') continue;
          const info: LaunchedInfo = {
            instanceId: id,
            instanceType: x.InstanceType ?? '',
            label: x.Tags?.find((t) => t.Key === TAGS.label)?.Value ?? '',
            market: x.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
          };
          this.launch(info);
        } else if (
          known.stoppedAt !== undefined &&
          known.stoppedAt < askedAt &&
          (state === 'pending' || state === 'running')
        ) {
          // (An answer to a question asked before the stop says nothing about a start.)
          // Started again (StartInstances): a second boot.
          known.stoppedAt = undefined;
          this.resume(known);
        } else if (
          (state === 'shutting-down' || state === 'terminated') &&
          known.terminatedAt === undefined &&
          !known.terminating
        ) {
          // Someone else (stop, post, reap) terminated it: the machine loses power.
          known.terminatedAt = Date.now();
          known.end = 'terminated-externally';
          this.kill(known);
        }
      }
    }
  }

  private launch(info: LaunchedInfo): void {
    const dir = join(this.workDir, info.instanceId);
    let resolveExited = () => {};
    const exited = new Promise<void>((r) => (resolveExited = r));
    let ended = false;
    const markExited = () => {
      if (ended) return;
      ended = true;
      resolveExited();
      try {
        this.onEnd?.(inst);
      } catch (e) {
        this.problems.push(`${info.instanceId}: onEnd: ${String(e)}`);
      }
    };
    const paths = {
      state: join(dir, 'state'),
      root: join(dir, 'root'),
      runner: join(dir, 'runner'),
      out: join(dir, 'out'),
      tmp: join(dir, 'tmp'),
    };
    const inst: Internal = {
      ...info,
      dir,
      paths,
      stops: 0,
      reasons: [],
      launchedAt: Date.now(),
      exited,
      markExited,
      console: () => (existsSync(join(dir, 'console.log')) ? readFileSync(join(dir, 'console.log'), 'utf8') : ''),
      lifetimeMs: () => (inst.terminatedAt === undefined ? undefined : inst.terminatedAt - inst.launchedAt),
    };
    const event = (what: string) => () => {
      const f = join(dir, 'out', 'runner-events');
      const m = existsSync(f) ? new RegExp(`^(\\d+\\.\\d+) ${what}$`, 'm').exec(readFileSync(f, 'utf8')) : null;
      return m ? Math.round(Number(m[1]) * 1000) : undefined;
    };
    Object.defineProperties(inst, {
      runnerId: {
        get: () => {
          try {
            return (JSON.parse(readFileSync(join(paths.out, 'connect.json'), 'utf8')) as { runner?: { id?: number } })
              .runner?.id;
          } catch {
            return undefined;
          }
        },
        enumerable: true,
      },
      connectedAt: { get: event('connected'), enumerable: true },
      jobStartedAt: { get: event('job-started'), enumerable: true },
      jobDoneAt: { get: event('job-done'), enumerable: true },
      jobSawInterruption: { get: event('job-saw-interrupted'), enumerable: true },
    });
    this.instances.set(info.instanceId, inst);
    const b = typeof this.behaviour === 'function' ? this.behaviour(info) : (this.behaviour ?? {});
    // An image that never boots: nothing runs; the instance ends only when someone terminates it.
    if (b.boot === 'never') return;
    const gen = this.generation;
    void (async () => {
      if (b.bootDelayMs) await sleep(b.bootDelayMs);
      if (inst.terminatedAt !== undefined || gen !== this.generation) return markExited();
      await this.boot(inst, b, gen);
    })().catch((e: unknown) => {
      this.problems.push(`${info.instanceId}: boot failed: ${String(e)}`);
      markExited();
    });
  }

  private async boot(inst: Internal, b: InstanceBehaviour, gen: number): Promise<void> {
    const attr = await this.ec2.send(
      new DescribeInstanceAttributeCommand({ InstanceId: inst.instanceId, Attribute: 'userData' }),
    );
    const userData = Buffer.from(attr.UserData?.Value ?? '', 'base64').toString('utf8');
    if (!userData.startsWith('#!'))
      throw new Error(`user-data is not a script: ${JSON.stringify(userData.slice(0, 80))}`);
    const d = inst.dir;
    const paths = inst.paths;
    for (const p of Object.values(paths)) mkdirSync(p, { recursive: true });
    chmodSync(paths.state, 0o700);
    writeFileSync(join(d, 'user-data.sh'), userData, { mode: 0o700 });
    const hooks = join(paths.root, 'etc', 'spot-runner', 'interruption.d');
    mkdirSync(hooks, { recursive: true });
    for (const [name, body] of Object.entries(b.interruptionHooks ?? {}))
      writeFileSync(join(hooks, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
    copyFileSync(LAB_RUN_SH, join(paths.runner, 'run.sh'));
    chmodSync(join(paths.runner, 'run.sh'), 0o755);
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const env = {
      LAB_GITHUB_URL: this.o.githubUrl,
      LAB_OUT: paths.out,
      LAB_MODE: b.runner ?? 'normal',
      LAB_JOB_MS: String(b.jobMs ?? 300),
      LAB_MARKER: join(paths.root, 'run', 'spot-runner', 'interrupted'),
      LAB_TAKE_WAIT_MS: '5000',
    };
    writeFileSync(
      join(paths.runner, 'lab-runner.env'),
      Object.entries(env)
        .map(([k, v]) => `${k}=${q(v)}\n`)
        .join(''),
    );

    await this.spawnBoot(inst, gen, [join(d, 'user-data.sh')]);
  }

  /** A second boot: cloud-init runs only scripts/per-boot; /run is empty again. */
  private resume(inst: Internal): void {
    const gen = this.generation;
    const b = typeof this.behaviour === 'function' ? this.behaviour(inst) : (this.behaviour ?? {});
    inst.startSeenAt = Date.now();
    void (async () => {
      if (b.resumeDelayMs) await sleep(b.resumeDelayMs);
      if (inst.terminatedAt !== undefined || gen !== this.generation) return;
      const dir = join(inst.paths.root, 'var', 'lib', 'cloud', 'scripts', 'per-boot');
      const hooks = existsSync(dir)
        ? readdirSync(dir)
            .sort()
            .map((f) => join(dir, f))
        : [];
      if (hooks.length === 0) {
        inst.anomaly =
          'started again, but no per-boot script exists: the machine would idle, running nothing, until something terminates it';
        return;
      }
      inst.resumedAt = Date.now();
      await this.spawnBoot(
        inst,
        gen,
        hooks.length === 1 ? (hooks as [string]) : ['-c', hooks.map((h) => `'${h}'`).join('; ')],
      );
    })().catch((e: unknown) => this.problems.push(`${inst.instanceId}: resume failed: ${String(e)}`));
  }

  private async spawnBoot(inst: Internal, gen: number, args: string[]): Promise<void> {
    const d = inst.dir;
    const paths = inst.paths;
    inst.imds = await this.imds(inst);
    const { port } = inst.imds.address() as AddressInfo;
    if (gen !== this.generation || inst.terminatedAt !== undefined) {
      inst.imds.close();
      return inst.markExited();
    }
    const consoleFd = openSync(join(d, 'console.log'), 'a');
    inst.bootStartedAt = Date.now();
    const child = spawn('bash', args, {
      cwd: d,
      // detached: setsid(), so the bootstrap leads its own session and group, as under cloud-init
      detached: true,
      stdio: ['ignore', consoleFd, consoleFd],
      env: {
        PATH: `${LAB_SHIMS}:${SANDBOX_SHIMS}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        HOME: process.env.HOME ?? '/root',
        LANG: 'C.UTF-8',
        SPOT_RUNNER_TEST_STATE: paths.state,
        SPOT_RUNNER_IMDS_ENDPOINT: `http://127.0.0.1:${port}`,
        SPOT_RUNNER_ROOT: paths.root,
        SPOT_RUNNER_RUNNER_DIR: paths.runner,
        SPOT_RUNNER_USER: userInfo().username,
        SPOT_RUNNER_SPOT_POLL_SECONDS: String(this.o.spotPollSeconds ?? 0.2),
        SPOT_RUNNER_CONSOLE: join(d, 'console.log'),
        SPOT_RUNNER_LAB_AWS_ENDPOINT: this.o.awsEndpoint,
        // The bootstrap's own tag writes (curl, SigV4) go to the lab proxy too.
        AWS_ENDPOINT_URL: this.o.awsEndpoint,
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        // The lab has no cloud-final to leave: the bootstrap supervises in place (the VM suite
        // covers the hand-over to its own systemd unit).
        SPOT_RUNNER_SUPERVISED: '1',
        AWS_REGION: this.o.region ?? 'us-east-1',
        TMPDIR: paths.tmp,
      },
    });
    closeSync(consoleFd);
    inst.child = child;
    inst.pgid = child.pid;
    child.on('exit', () => void this.onExit(inst, paths.state, paths.root));
  }

  private async onExit(inst: Internal, state: string, root: string): Promise<void> {
    this.kill(inst); // whatever is left of the group
    const poweroff = join(state, 'poweroff');
    if (existsSync(poweroff)) {
      inst.poweredOffAt = Math.round(Number(readFileSync(poweroff, 'utf8').split(' ')[0]) * 1000);
      const reasonFile = join(root, 'run', 'spot-runner', 'poweroff-reason');
      inst.powerOffReason = existsSync(reasonFile) ? readFileSync(reasonFile, 'utf8').trim() : '(no reason written)';
      inst.reasons.push(inst.powerOffReason);
      if (inst.terminatedAt === undefined && (await this.shutdownBehaviour(inst.instanceId)) === 'stop') {
        // InstanceInitiatedShutdownBehavior=stop: EBS stays, /run (tmpfs) does not.
        renameSync(poweroff, `${poweroff}.${++inst.stops}`);
        rmSync(join(root, 'run'), { recursive: true, force: true });
        inst.imds?.close();
        try {
          await this.ec2.send(new StopInstancesCommand({ InstanceIds: [inst.instanceId] }));
          inst.stoppedAt = Date.now();
        } catch (e) {
          this.problems.push(`${inst.instanceId}: stop failed: ${String(e)}`);
        }
        return;
      }
      // InstanceInitiatedShutdownBehavior=terminate
      if (inst.terminatedAt === undefined) await this.terminate(inst, 'power-off');
    } else if (inst.terminatedAt === undefined && !inst.terminating) {
      inst.anomaly = 'the bootstrap exited without powering off; a real instance would keep running';
    }
    inst.imds?.close();
    inst.markExited();
  }

  private async shutdownBehaviour(id: string): Promise<string> {
    try {
      const out = await this.ec2.send(
        new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'instanceInitiatedShutdownBehavior' }),
      );
      return out.InstanceInitiatedShutdownBehavior?.Value ?? 'stop';
    } catch (e) {
      this.problems.push(`${id}: reading instanceInitiatedShutdownBehavior failed: ${String(e)}`);
      return 'terminate';
    }
  }

  private async terminate(inst: Internal, end: EndKind): Promise<void> {
    if (inst.terminating) return inst.terminating;
    inst.terminating = (async () => {
      inst.end ??= end;
      this.kill(inst);
      const reason = END_REASONS[inst.end];
      if (reason) this.o.proxy?.setStateReason(inst.instanceId, reason.code, reason.message);
      const gen = this.generation;
      try {
        await this.ec2.send(new TerminateInstancesCommand({ InstanceIds: [inst.instanceId] }));
      } catch (e) {
        if (gen === this.generation && !/InvalidInstanceID/.test(String(e)))
          this.problems.push(`${inst.instanceId}: terminate failed: ${String(e)}`);
      }
      inst.terminatedAt ??= Date.now();
    })();
    return inst.terminating;
  }

  /** Power cut: SIGKILL to the bootstrap's whole process group. */
  private kill(inst: Internal): void {
    // A stopped machine has no processes: its end is now.
    if (inst.stoppedAt !== undefined) {
      inst.imds?.close();
      return inst.markExited();
    }
    if (inst.pgid === undefined) {
      if (!inst.child) inst.markExited();
      return;
    }
    try {
      process.kill(-inst.pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  /** The instance's IMDSv2: PUT a token (TTL header required), GET with it (401 otherwise). */
  private imds(inst: Internal): Promise<Server> {
    const tokens = new Set<string>();
    const server = createServer((req, res) => {
      const reply = (code: number, body = '') => res.writeHead(code, { 'content-type': 'text/plain' }).end(body);
      if (req.method === 'PUT') {
        if (req.url !== '/latest/api/token') return reply(404);
        const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return reply(400);
        const t = randomBytes(24).toString('base64url');
        tokens.add(t);
        return reply(200, t);
      }
      if (!tokens.has(String(req.headers['x-aws-ec2-metadata-token'] ?? ''))) return reply(401);
      if (req.url === '/latest/meta-data/instance-id') return reply(200, inst.instanceId);
      if (req.url === '/latest/meta-data/instance-type') return reply(200, inst.instanceType);
      if (req.url === '/latest/meta-data/spot/instance-action')
        return inst.spotNotice ? reply(200, inst.spotNotice) : reply(404);
      reply(404);
    });
    return new Promise((resolveServer, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolveServer(server));
    });
  }
}
