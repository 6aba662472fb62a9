import {
  TerminateInstancesCommand,
  paginateDescribeInstances,
  paginateDescribeVolumes,
  waitUntilInstanceTerminated,
  type Filter,
  type Instance,
} from '@aws-sdk/client-ec2';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { TAGS } from '../tags.js';
import { errorCode } from '../errors.js';
import type { AwsClients } from './clients.js';

export interface InstanceInfo {
  instanceId: string;
  state: string;
  instanceType: string;
  availabilityZone: string;
  market: 'spot' | 'on-demand';
  launchTime?: Date;
  stateReason?: string;
  stateReasonCode?: string;
  /** The account, from the reservation. */
  ownerId?: string;
  /** EBS volumes attached (for the cost estimate). */
  volumeIds?: string[];
  tags: Record<string, string>;
}

export function toInfo(i: Instance, ownerId?: string): InstanceInfo {
  const tags = Object.fromEntries((i.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
  return {
    instanceId: i.InstanceId ?? '',
    state: i.State?.Name ?? 'unknown',
    instanceType: i.InstanceType ?? '',
    availabilityZone: i.Placement?.AvailabilityZone ?? '',
    market: i.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
    launchTime: i.LaunchTime,
    stateReason: i.StateReason?.Message ?? i.StateTransitionReason,
    stateReasonCode: i.StateReason?.Code,
    ownerId,
    volumeIds: (i.BlockDeviceMappings ?? []).map((b) => b.Ebs?.VolumeId ?? '').filter(Boolean),
    tags,
  };
}

export const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down'];

async function collect(
  aws: AwsClients,
  input: { InstanceIds?: string[]; Filters?: Filter[] },
  signal?: AbortSignal,
): Promise<InstanceInfo[]> {
  const out: InstanceInfo[] = [];
  for await (const page of paginateDescribeInstances(
    { client: aws.ec2, pageSize: input.InstanceIds ? undefined : 1000 },
    input,
  )) {
    if (signal?.aborted) break;
    for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) out.push(toInfo(i, r.OwnerId));
  }
  return out;
}

/** Instances by id; ids EC2 no longer knows are simply absent from the answer. */
export async function describeByIds(aws: AwsClients, ids: string[], signal?: AbortSignal): Promise<InstanceInfo[]> {
  if (ids.length === 0) return [];
  try {
    return await collect(aws, { InstanceIds: ids }, signal);
  } catch (e) {
    if (!/InvalidInstanceID/.test(errorCode(e))) throw e;
    // One unknown id fails the whole call; a filter on the ids does not.
    return collect(aws, { Filters: [{ Name: 'instance-id', Values: ids }] }, signal);
  }
}

export async function describeByTag(
  aws: AwsClients,
  key: string,
  values: string[],
  states?: string[],
  signal?: AbortSignal,
): Promise<InstanceInfo[]> {
  const Filters: Filter[] = [{ Name: `tag:${key}`, Values: values }];
  if (states) Filters.push({ Name: 'instance-state-name', Values: states });
  return collect(aws, { Filters }, signal);
}

export async function describeManaged(aws: AwsClients, states: string[] = LIVE_STATES): Promise<InstanceInfo[]> {
  return describeByTag(aws, TAGS.managed, ['true'], states);
}

export interface TerminateOptions {
  sleep: (ms: number) => Promise<void>;
  /** How long an id EC2 does not know yet is retried: a just-launched instance may be invisible for a while. */
  notFoundBudgetMs: number;
}

export const DEFAULT_TERMINATE: TerminateOptions = {
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  notFoundBudgetMs: 60_000,
};

export interface TerminateResult {
  terminated: string[];
  /** Ids EC2 still did not know when the budget ran out. */
  unknown: string[];
}

/**
 * Terminates in batches (EC2 accepts up to 1000 ids a call). One unknown id fails a whole call,
 * and a NotFound does NOT mean the instance is gone (EC2 API guide, "Eventual consistency"): a
 * just-launched instance may not be visible yet. So the ids EC2 sees are terminated at once and
 * the rest retried with backoff for about a minute. A terminated instance stays known for about
 * an hour, so an id that stays unknown that long was never launched.
 */
export async function terminate(
  aws: AwsClients,
  ids: string[],
  o: TerminateOptions = DEFAULT_TERMINATE,
): Promise<TerminateResult> {
  const done: string[] = [];
  let pending = [...new Set(ids)];
  let waited = 0;
  // Short first retries: a rollback right after a launch must finish inside the runner's 7.5 s cancel grace.
  for (let delay = 500; pending.length > 0; delay = Math.min(Math.round(delay * 1.5), 8_000)) {
    const retry: string[] = [];
    for (let i = 0; i < pending.length; i += 1000) {
      const batch = pending.slice(i, i + 1000);
      try {
        const out = await aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: batch }));
        done.push(...(out.TerminatingInstances ?? []).map((t) => t.InstanceId ?? ''));
      } catch (e) {
        if (!/InvalidInstanceID/.test(errorCode(e))) throw e;
        // Terminate the ones EC2 can see now; the others get another try.
        const seen = await describeByIds(aws, batch);
        const visible = new Set(seen.map((x) => x.instanceId));
        const live = seen.filter((x) => x.state !== 'terminated').map((x) => x.instanceId);
        if (live.length > 0) {
          const out = await aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: live }));
          done.push(...(out.TerminatingInstances ?? []).map((t) => t.InstanceId ?? ''));
        }
        retry.push(...batch.filter((id) => !visible.has(id)));
      }
    }
    pending = retry;
    if (pending.length === 0 || waited >= o.notFoundBudgetMs) break;
    await o.sleep(delay);
    waited += delay;
  }
  return { terminated: done.filter(Boolean), unknown: pending };
}

/** Root (and other) volume sizes in GiB per instance; best-effort. */
export async function volumeSizes(aws: AwsClients, instances: InstanceInfo[]): Promise<Map<string, number>> {
  const byVolume = new Map<string, string>();
  for (const i of instances) for (const v of i.volumeIds ?? []) byVolume.set(v, i.instanceId);
  const out = new Map<string, number>();
  if (byVolume.size === 0) return out;
  try {
    for await (const page of paginateDescribeVolumes({ client: aws.ec2 }, { VolumeIds: [...byVolume.keys()] })) {
      for (const v of page.Volumes ?? []) {
        const id = byVolume.get(v.VolumeId ?? '');
        if (id && v.Size) out.set(id, (out.get(id) ?? 0) + v.Size);
      }
    }
  } catch {
    // A volume already deleted fails the call; the cost then leaves EBS out and says so.
  }
  return out;
}

/** The account, from STS: DescribeInstances may not show a just-launched instance (or its reservation's owner) yet. */
export async function accountId(aws: AwsClients, signal?: AbortSignal): Promise<string> {
  const out = await aws.sts.send(new GetCallerIdentityCommand({}), { abortSignal: signal });
  if (!out.Account) throw new Error('STS GetCallerIdentity returned no account');
  return out.Account;
}

/** The SDK waiter, bounded; returns false if the bound passed first. */
export async function waitTerminated(
  aws: AwsClients,
  ids: string[],
  maxWaitSeconds: number,
  minDelaySeconds = 2,
): Promise<boolean> {
  if (ids.length === 0) return true;
  try {
    await waitUntilInstanceTerminated(
      {
        client: aws.ec2,
        maxWaitTime: maxWaitSeconds,
        minDelay: minDelaySeconds,
        maxDelay: Math.max(minDelaySeconds, 10),
      },
      { InstanceIds: ids },
    );
    return true;
  } catch {
    return false;
  }
}

export function instanceArn(region: string, account: string, id: string): string {
  const partition = region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';
  return `arn:${partition}:ec2:${region}:${account}:instance/${id}`;
}
