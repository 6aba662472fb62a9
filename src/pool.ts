// The warm pool (issue 16): never-used machines, booted once up to the point before they read a
// JIT config, then stopped; a start claims one, hands it a JIT config and starts it. Each pool
// machine still runs exactly one job and is then terminated.
//
// Race-freedom: EC2 tags have no compare-and-set, SSM PutParameter without Overwrite does (the
// loser gets ParameterAlreadyExists). Every party that takes a stopped pool machine — a start, a
// fill removing a stale one, reap — first wins its claim parameter, which is the machine's JIT
// parameter itself: a start's claim is its JIT config, one PutParameter per machine. Nobody
// touches a machine whose claim someone else holds. The machine deletes it once read; a claim won
// after that finds the machine no longer stopped (StartInstances' PreviousState) and lets go.
import { createHash, randomBytes } from 'node:crypto';
import { CreateTagsCommand, ModifyInstanceAttributeCommand, StartInstancesCommand } from '@aws-sdk/client-ec2';
import type { AwsClients } from './aws/clients.js';
import type { ResolvedImage } from './aws/image.js';
import { describeByTag, type InstanceInfo } from './aws/instances.js';
import { deleteParameters, putOnce, type Pacer } from './aws/params.js';
import type { StartConfig } from './config.js';
import { errorCode, errorMessage } from './errors.js';
import { CLAIMED_POOL_PREFIX, NAME_PREFIX, TAGS, poolClaimName, poolParameterPrefix } from './tags.js';
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

/**
 * Claims one machine: PutParameter without Overwrite on its claim name (its JIT parameter). The
 * loser gets ParameterAlreadyExists. A lost answer makes the SDK's retry meet our own claim, which
 * putOnce reads back: ours (each claimer's value is unique) is a win. A claim deleted in between
 * is not ours: its machine read it (only a winner starts one) or is gone.
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
  return (await putOnce(aws, put, tags, o.signal, o.pacer)) === 'ours' ? 'won' : 'lost';
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
 * Starts a machine whose claim this caller just won: shutdown behaviour terminate first (after its
 * one job its power-off ends it, exactly as a cold machine), then StartInstances. `taken`: it was
 * no longer stopped (PreviousState), so an earlier winner started it and it has already read and
 * deleted that winner's JIT config, which is how this claim could win: not ours. `refused`: EC2
 * will not start it (capacity, or terminated since it was listed).
 */
export async function resumeClaimed(aws: AwsClients, instanceId: string, signal?: AbortSignal): Promise<ResumeOutcome> {
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
    if (prev !== undefined && prev !== 'stopped') return { kind: 'taken', state: prev };
    return { kind: 'started' };
  } catch (e) {
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
  /** Recorded once it is ours (started, or refused and to be terminated). */
  onInstance: (id: string) => void;
}

/**
 * Takes machines off `queue` (shared by the caller's runners) until one is claimed with `value`
 * (a JIT config) and started; it is then retagged with `tags`. Returns it, or undefined when the
 * queue ran dry, with the won machines EC2 refused to start (for the caller to terminate).
 */
export async function claimNext(
  pool: string,
  queue: InstanceInfo[],
  value: string,
  paramTags: (instanceId: string) => Record<string, string>,
  tags: Record<string, string>,
  d: ClaimNextDeps,
): Promise<{ claimed?: Claimed; refused: string[] }> {
  const refused: string[] = [];
  for (let m = queue.shift(); m !== undefined; m = queue.shift()) {
    d.signal?.throwIfAborted();
    const claimName = poolClaimName(pool, m.instanceId);
    const won = await claim(d.aws, claimName, value, paramTags(m.instanceId), {
      signal: d.signal,
      pacer: d.pacer,
      secret: true,
    });
    if (won === 'lost') continue;
    d.onClaimParameter(claimName);
    const r = await resumeClaimed(d.aws, m.instanceId, d.signal);
    if (r.kind === 'taken') {
      d.log(`Pool ${pool}: ${m.instanceId} was already ${r.state} (another start's); trying the next`);
      // Ours, and never to be read: the machine read its winner's before ours could exist.
      await deleteParameters(d.aws, [claimName]).catch(() => undefined);
      continue;
    }
    d.onInstance(m.instanceId);
    if (r.kind === 'refused') {
      d.log(`Pool ${pool}: StartInstances refused ${m.instanceId} (${r.why}); terminating it, trying the next`);
      refused.push(m.instanceId);
      continue;
    }
    const resumedAt = (d.now ?? Date.now)();
    await retagClaimed(d.aws, m.instanceId, pool, tags, d.signal);
    return {
      claimed: {
        instanceId: m.instanceId,
        instanceType: m.instanceType,
        availabilityZone: m.availabilityZone,
        claimName,
        resumedAt,
      },
      refused,
    };
  }
  return { refused };
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
