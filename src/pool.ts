// The warm pool (issue 16): never-used machines, booted once up to the point before they read a
// JIT config, then stopped; a start starts one, hands it a JIT config and it runs that one job.
// Each pool machine still runs exactly one job and is then terminated.
//
// Race-freedom: EC2 tags have no compare-and-set, SSM PutParameter without Overwrite does (the
// loser gets ParameterAlreadyExists). Every party that takes a stopped pool machine — a start, a
// fill removing a stale one, reap — wins its claim parameter first, which is the machine's JIT
// parameter itself: a start's claim is its JIT config, one PutParameter per machine. A start
// starts the machine first (StartInstances saying PreviousState `stopped`) and claims it while it
// resumes, so the paced claims hide in the resume. The resumed machine overwrites the parameter
// with `consumed:<sha256>` once read, never deletes it: the name stays taken while it lives, and a
// claim can only win a machine that has not yet read anyone's config.
import { createHash, randomBytes } from 'node:crypto';
import { CreateTagsCommand, ModifyInstanceAttributeCommand, StartInstancesCommand } from '@aws-sdk/client-ec2';
import type { AwsClients } from './aws/clients.js';
import type { ResolvedImage } from './aws/image.js';
import { describeByTag, type InstanceInfo } from './aws/instances.js';
import { putOnce, type Pacer } from './aws/params.js';
import type { StartConfig } from './config.js';
import { errorCode, errorMessage } from './errors.js';
import { CLAIMED_POOL_PREFIX, CONSUMED_PREFIX, NAME_PREFIX, TAGS, poolClaimName, poolParameterPrefix } from './tags.js';
import { renderUserData, type BootstrapOptions } from './userdata/render.js';

/** The label pool machines' user-data carries (log lines only): fixed per pool, so it is part of the settings hash. */
export const poolUserDataLabel = (pool: string): string => `${NAME_PREFIX}pool-${pool}`;

/** The settings a pool machine is built from; a start claims only machines whose hash is its own. */
export interface PoolSettings {
  userData: string;
  hash: string;
  bootstrap: BootstrapOptions;
}

type LaunchSettings = Pick<
  StartConfig,
  | 'region'
  | 'instanceTypes'
  | 'subnetIds'
  | 'securityGroupIds'
  | 'instanceProfile'
  | 'volumeSize'
  | 'maxLifetimeMinutes'
  | 'idleTimeoutMinutes'
  | 'preRunnerScript'
  | 'jobImdsAccess'
>;

/**
 * The pool's user-data and the hash of everything a machine keeps from its first boot: the image,
 * types, subnets, security groups, profile, volume size, and the rendered user-data (the
 * bootstrap's version, its timeouts and the pre-runner script, which ran at the first boot).
 */
export function poolSettings(cfg: LaunchSettings, image: Pick<ResolvedImage, 'id'>, pool: string): PoolSettings {
  const bootstrap: BootstrapOptions = {
    region: cfg.region,
    parameterPrefix: poolParameterPrefix(pool),
    maxLifetimeMinutes: cfg.maxLifetimeMinutes,
    idleTimeoutMinutes: cfg.idleTimeoutMinutes,
    preRunnerScript: cfg.preRunnerScript,
    preRunnerTimeoutMinutes: Math.min(30, cfg.maxLifetimeMinutes),
    jobImdsAccess: cfg.jobImdsAccess,
    label: poolUserDataLabel(pool),
    pool,
  };
  const userData = renderUserData(bootstrap);
  const basis = JSON.stringify({
    image: image.id,
    types: cfg.instanceTypes,
    subnets: cfg.subnetIds,
    securityGroups: cfg.securityGroupIds,
    profile: cfg.instanceProfile ?? null,
    volume: cfg.volumeSize ?? null,
    userData: createHash('sha256').update(userData).digest('hex'),
  });
  return { userData, bootstrap, hash: createHash('sha256').update(basis).digest('hex').slice(0, 16) };
}

export type PoolMachineState = 'ready' | 'filling' | 'stale' | 'failed' | 'claimed';

/** How a pool machine stands, from its tags and state alone (pure: fill, start and reap share it). */
export function poolMachineState(i: InstanceInfo, hash: string | undefined): PoolMachineState {
  const pool = i.tags[TAGS.pool] ?? '';
  if (pool.startsWith(CLAIMED_POOL_PREFIX)) return 'claimed';
  const phase = i.tags[TAGS.phase] ?? '';
  if (hash !== undefined && i.tags[TAGS.poolHash] !== hash) return 'stale';
  if (i.state === 'stopped') return phase === 'pooled' ? 'ready' : 'failed';
  if (i.state === 'pending' || i.state === 'running' || i.state === 'stopping')
    return phase.startsWith('failed') ? 'failed' : 'filling';
  return 'failed';
}

/** The live machines of a pool (claimed ones carry `claimed:<pool>` and are no longer listed). */
export async function poolMachines(aws: AwsClients, pool: string, signal?: AbortSignal): Promise<InstanceInfo[]> {
  return describeByTag(aws, TAGS.pool, [pool], ['pending', 'running', 'stopping', 'stopped'], signal);
}

export type ClaimOutcome = 'won' | 'lost';

export interface ClaimOptions {
  signal?: AbortSignal;
  pacer?: Pacer;
  /** A start's claim is the machine's JIT config itself: a SecureString, read back decrypted. */
  secret?: boolean;
}

/** What a resumed machine leaves in its JIT parameter once it has read `jit` (bootstrap.sh writes the same). */
export function consumedMarker(jit: string): string {
  return `${CONSUMED_PREFIX}${createHash('sha256').update(jit).digest('hex')}`;
}

/**
 * Claims one machine: PutParameter without Overwrite on its claim name (its JIT parameter). The
 * loser gets ParameterAlreadyExists. A lost answer makes the SDK's retry meet our own claim, which
 * putOnce reads back: ours (each claimer's value is unique), or the machine's mark that it read
 * ours, is a win. A claim deleted in between is not ours (reap or a fill took the machine).
 */
export async function claim(
  aws: AwsClients,
  name: string,
  value: string,
  tags: Record<string, string>,
  o: ClaimOptions = {},
): Promise<ClaimOutcome> {
  const put = o.secret
    ? ({ Name: name, Value: value, Type: 'SecureString', Tier: 'Intelligent-Tiering' } as const)
    : ({ Name: name, Value: value, Type: 'String' } as const);
  const mark = consumedMarker(value);
  const ours = (stored: string) => stored === value || stored === mark;
  return (await putOnce(aws, put, tags, o.signal, o.pacer, ours)) === 'ours' ? 'won' : 'lost';
}

/**
 * A claim value no other claimer can produce: the label and some randomness. Reap's and fill's
 * claims hold this, never a JIT config; the ':' keeps it from passing the bootstrap's base64 check.
 */
export function claimOwner(label: string): string {
  return `claim:${label}/${randomBytes(6).toString('hex')}`;
}

export interface Claimed {
  instanceId: string;
  instanceType: string;
  availabilityZone: string;
  /** The claim, which is also the machine's JIT parameter. */
  claimName: string;
  /** When StartInstances answered. */
  resumedAt: number;
}

export const shuffled = <T>(xs: T[]): T[] => {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
};

/** The machines of a pool a start may claim: stopped at the checkpoint, built with its hash. */
export function readyMachines(listed: InstanceInfo[], hash: string): { ready: InstanceInfo[]; stale: number } {
  return {
    ready: listed.filter((i) => poolMachineState(i, hash) === 'ready'),
    stale: listed.filter((i) => poolMachineState(i, hash) === 'stale').length,
  };
}

export type ResumeOutcome = { kind: 'started' } | { kind: 'taken'; state: string } | { kind: 'refused'; why: string };

/**
 * Starts a ready machine, before any claim: shutdown behaviour terminate first (after its one job
 * its power-off ends it, exactly as a cold machine), then StartInstances. `started`: it was
 * stopped (PreviousState), so this call resumed it and this caller may claim it (also when a retry
 * of this call found it pending). `taken`: another caller started it first; it is theirs to claim. `refused`: EC2 will not start it (capacity, or
 * terminated or stopping since it was listed); it stays as it is.
 */
export async function resumeStopped(aws: AwsClients, instanceId: string, signal?: AbortSignal): Promise<ResumeOutcome> {
  try {
    await aws.ec2.send(
      new ModifyInstanceAttributeCommand({
        InstanceId: instanceId,
        Attribute: 'instanceInitiatedShutdownBehavior',
        Value: 'terminate',
      }),
      { abortSignal: signal },
    );
  } catch (e) {
    if (!/IncorrectInstanceState|InvalidInstanceID/.test(errorCode(e))) throw e;
    return { kind: 'refused', why: `no longer stopped (${errorCode(e)})` };
  }
  try {
    const out = await aws.ec2.send(new StartInstancesCommand({ InstanceIds: [instanceId] }), { abortSignal: signal });
    const prev = out.StartingInstances?.find((x) => x.InstanceId === instanceId)?.PreviousState?.Name;
    // A retried call may have started it itself on the attempt whose answer was lost: then
    // `pending` could be ours, and the claim decides (a claim is safe on any unread machine).
    const retried = (out.$metadata?.attempts ?? 1) > 1 && prev === 'pending';
    if (prev !== undefined && prev !== 'stopped' && !retried) return { kind: 'taken', state: prev };
    return { kind: 'started' };
  } catch (e) {
    if (signal?.aborted) throw e;
    return { kind: 'refused', why: errorMessage(e) };
  }
}

export interface ClaimNextDeps {
  aws: AwsClients;
  log: (line: string) => void;
  signal?: AbortSignal;
  pacer?: Pacer;
  now?: () => number;
  /** Recorded once won, never before: a lost claim's name is another claimer's JIT parameter. */
  onClaimParameter: (name: string) => void;
  /** Recorded once it is ours (claimed, or started and to be terminated). */
  onInstance: (id: string) => void;
}

/**
 * Takes machines off `queue` (shared by the caller's runners): starts the next ready one, then
 * claims it with `value` (a JIT config, awaited only now: the machine resumes while GitHub issues
 * it and the paced claim is written), then retags it with `tags`. A machine another caller
 * started, or whose claim another holds, is theirs: the next one is tried. Returns the claimed
 * machine, or none when the queue ran dry. If the config or the claim fails, the machine it
 * started is claimed for removal and recorded (the caller's teardown terminates it), and the
 * failure is thrown.
 */
export async function claimNext(
  pool: string,
  queue: InstanceInfo[],
  value: string | Promise<string>,
  paramTags: (instanceId: string) => Record<string, string>,
  tags: Record<string, string>,
  d: ClaimNextDeps,
): Promise<{ claimed?: Claimed }> {
  for (let m = queue.shift(); m !== undefined; m = queue.shift()) {
    d.signal?.throwIfAborted();
    const r = await resumeStopped(d.aws, m.instanceId, d.signal);
    if (r.kind !== 'started') {
      d.log(
        r.kind === 'taken'
          ? `Pool ${pool}: ${m.instanceId} was already ${r.state} (another start's); trying the next`
          : `Pool ${pool}: StartInstances refused ${m.instanceId} (${r.why}); trying the next`,
      );
      continue;
    }
    const resumedAt = (d.now ?? Date.now)();
    const claimName = poolClaimName(pool, m.instanceId);
    let won: ClaimOutcome;
    try {
      won = await claim(d.aws, claimName, await value, paramTags(m.instanceId), {
        signal: d.signal,
        pacer: d.pacer,
        secret: true,
      });
    } catch (e) {
      await releaseStarted(pool, m.instanceId, claimName, d);
      throw e;
    }
    if (won === 'lost') {
      // Reap or a fill claimed it first (it terminates it), or another start that also saw it stopped.
      d.log(`Pool ${pool}: ${m.instanceId} is claimed by another; trying the next`);
      continue;
    }
    d.onClaimParameter(claimName);
    d.onInstance(m.instanceId);
    await retagClaimed(d.aws, m.instanceId, pool, tags, d.signal);
    return {
      claimed: {
        instanceId: m.instanceId,
        instanceType: m.instanceType,
        availabilityZone: m.availabilityZone,
        claimName,
        resumedAt,
      },
    };
  }
  return {};
}

/**
 * A machine this start resumed but could not claim (its JIT config or its claim failed): claimed
 * for removal as reap would (nobody else can then take it), recorded, for the caller's teardown to
 * terminate. If even that claim fails the machine ends itself: its bootstrap waits for a JIT config
 * only so long (SR_PARAM_WAIT_SECONDS), then powers off, and its shutdown behaviour is terminate.
 */
async function releaseStarted(pool: string, instanceId: string, claimName: string, d: ClaimNextDeps): Promise<void> {
  try {
    const won = await claim(d.aws, claimName, claimOwner(`${NAME_PREFIX}start`), {
      [TAGS.managed]: 'true',
      [TAGS.instanceId]: instanceId,
    });
    if (won === 'lost') return;
    d.onClaimParameter(claimName);
    d.onInstance(instanceId);
  } catch (e) {
    d.log(
      `Pool ${pool}: could not claim ${instanceId} for removal (${errorMessage(e)}); it powers itself off when no JIT config comes`,
    );
  }
}

/** Retags a started machine to its start (label, expiry, `claimed:<pool>`): stop, post and reap know it as that start's. */
export async function retagClaimed(
  aws: AwsClients,
  instanceId: string,
  pool: string,
  tags: Record<string, string>,
  signal?: AbortSignal,
): Promise<void> {
  await aws.ec2.send(
    new CreateTagsCommand({
      Resources: [instanceId],
      Tags: Object.entries({ ...tags, [TAGS.pool]: `${CLAIMED_POOL_PREFIX}${pool}` }).map(([Key, Value]) => ({
        Key,
        Value,
      })),
    }),
    { abortSignal: signal },
  );
}
