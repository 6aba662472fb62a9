// The warm pool (issue 16): never-used machines, booted once up to the point before they read a
// JIT config, then stopped; a start claims one, hands it a JIT config and starts it. Each pool
// machine still runs exactly one job and is then terminated.
//
// Race-freedom: EC2 tags have no compare-and-set, SSM PutParameter without Overwrite does (the
// loser gets ParameterAlreadyExists). Every party that takes a stopped pool machine — a start, a
// fill removing a stale one, reap — first wins its claim parameter; nobody touches a machine whose
// claim someone else holds. A claim lives as long as its machine; stop, post and reap remove it.
import { createHash, randomBytes } from 'node:crypto';
import { CreateTagsCommand, ModifyInstanceAttributeCommand, StartInstancesCommand } from '@aws-sdk/client-ec2';
import type { AwsClients } from './aws/clients.js';
import type { ResolvedImage } from './aws/image.js';
import { describeByTag, type InstanceInfo } from './aws/instances.js';
import { putOnce, type Pacer } from './aws/params.js';
import type { StartConfig } from './config.js';
import { errorCode, errorMessage } from './errors.js';
import { CLAIMED_POOL_PREFIX, NAME_PREFIX, PARAMETER_ROOT, TAGS, poolClaimName, poolParameterPrefix } from './tags.js';
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

/**
 * Claims one machine: PutParameter without Overwrite on its claim name. The loser gets
 * ParameterAlreadyExists. A lost answer makes the SDK's retry meet our own claim, which putOnce
 * reads back: ours (each claimer's value is unique) is a win. A claim deleted in between is not
 * ours: its machine is gone (only teardown and reap delete claims).
 */
export async function claim(
  aws: AwsClients,
  instanceId: string,
  owner: string,
  tags: Record<string, string>,
  signal?: AbortSignal,
  pacer?: Pacer,
): Promise<ClaimOutcome> {
  const put = { Name: poolClaimName(instanceId), Value: owner, Type: 'String' } as const;
  return (await putOnce(aws, put, tags, signal, pacer)) === 'ours' ? 'won' : 'lost';
}

/** A claim value no other claimer can produce: the label and some randomness. */
export function claimOwner(label: string): string {
  return `${label}/${randomBytes(6).toString('hex')}`;
}

export interface Claimed {
  instanceId: string;
  instanceType: string;
  availabilityZone: string;
  claimName: string;
}

export interface ClaimDeps {
  aws: AwsClients;
  log: (line: string) => void;
  signal?: AbortSignal;
  pacer?: Pacer;
  /** Recorded the moment it exists (claim parameter before the call, instance once won). */
  onClaimParameter: (name: string) => void;
  onInstance: (id: string) => void;
  shuffle?: <T>(xs: T[]) => T[];
}

const shuffled = <T>(xs: T[]): T[] => {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
};

/**
 * Claims up to `want` ready machines of the pool built with `hash`, for the start with `label`.
 * Candidates are tried in random order, so concurrent starts rarely contend for the same one.
 * A won machine is retagged to the start (label, expiry, `claimed:<pool>`), and its shutdown
 * behaviour set to terminate: after its one job its power-off ends it, exactly as a cold machine.
 */
export async function claimFromPool(
  pool: string,
  hash: string,
  want: number,
  label: string,
  tags: Record<string, string>,
  d: ClaimDeps,
): Promise<Claimed[]> {
  if (want <= 0) return [];
  const listed = await poolMachines(d.aws, pool, d.signal);
  const ready = listed.filter((i) => poolMachineState(i, hash) === 'ready');
  const stale = listed.filter((i) => poolMachineState(i, hash) === 'stale').length;
  d.log(
    `Pool ${pool}: ${ready.length} ready of ${listed.length} listed${stale ? ` (${stale} built from other settings: a fill or reap removes them)` : ''}`,
  );
  const owner = claimOwner(label);
  const out: Claimed[] = [];
  const queue = (d.shuffle ?? shuffled)(ready);
  // In waves of what is still missing: concurrent, never more claims in flight than machines wanted.
  while (out.length < want && queue.length > 0) {
    d.signal?.throwIfAborted();
    const wave = queue.splice(0, want - out.length);
    const won = await Promise.all(
      wave.map(async (i) => {
        const claimName = poolClaimName(i.instanceId);
        d.onClaimParameter(claimName);
        const ptags = {
          [TAGS.managed]: 'true',
          [TAGS.label]: label,
          [TAGS.instanceId]: i.instanceId,
          ...(tags[TAGS.expiresAt] ? { [TAGS.expiresAt]: tags[TAGS.expiresAt] as string } : {}),
        };
        if ((await claim(d.aws, i.instanceId, owner, ptags, d.signal, d.pacer)) === 'lost') return undefined;
        d.onInstance(i.instanceId);
        return {
          instanceId: i.instanceId,
          instanceType: i.instanceType,
          availabilityZone: i.availabilityZone,
          claimName,
        } satisfies Claimed;
      }),
    );
    for (const c of won) if (c) out.push(c);
  }
  if (out.length === 0) return out;
  // Retagged before anything else: from here stop, post and reap know it as this start's.
  await d.aws.ec2.send(
    new CreateTagsCommand({
      Resources: out.map((c) => c.instanceId),
      Tags: Object.entries({ ...tags, [TAGS.pool]: `${CLAIMED_POOL_PREFIX}${pool}` }).map(([Key, Value]) => ({
        Key,
        Value,
      })),
    }),
    { abortSignal: d.signal },
  );
  const kept: Claimed[] = [];
  await Promise.all(
    out.map(async (c) => {
      try {
        await d.aws.ec2.send(
          new ModifyInstanceAttributeCommand({
            InstanceId: c.instanceId,
            Attribute: 'instanceInitiatedShutdownBehavior',
            Value: 'terminate',
          }),
          { abortSignal: d.signal },
        );
        kept.push(c);
      } catch (e) {
        // Terminated since it was listed (a fill or reap removing it won its claim first and has
        // since let it go): not usable; teardown removes what is left.
        if (!/IncorrectInstanceState|InvalidInstanceID/.test(errorCode(e))) throw e;
        d.log(`Pool ${pool}: ${c.instanceId} is no longer stopped (${errorCode(e)}); not used`);
      }
    }),
  );
  return kept;
}

/** StartInstances for the claimed machines; returns the ones EC2 refused (with why) so the caller can launch cold ones instead. */
export async function resume(
  aws: AwsClients,
  claimed: Claimed[],
  signal?: AbortSignal,
): Promise<{ started: Claimed[]; refused: { c: Claimed; why: string }[] }> {
  if (claimed.length === 0) return { started: [], refused: [] };
  try {
    await aws.ec2.send(new StartInstancesCommand({ InstanceIds: claimed.map((c) => c.instanceId) }), {
      abortSignal: signal,
    });
    return { started: claimed, refused: [] };
  } catch (e) {
    if (claimed.length === 1) return { started: [], refused: [{ c: claimed[0] as Claimed, why: errorMessage(e) }] };
    // One refusal fails the whole call (e.g. InsufficientInstanceCapacity for one type): one by one.
    const started: Claimed[] = [];
    const refused: { c: Claimed; why: string }[] = [];
    for (const c of claimed) {
      const r = await resume(aws, [c], signal);
      started.push(...r.started);
      refused.push(...r.refused);
    }
    return { started, refused };
  }
}

/** Parameter path helpers reap needs. */
export const POOL_CLAIM_ROOT = `${PARAMETER_ROOT}/pool-claims`;
