import { TerminateInstancesCommand, paginateDescribeInstances, waitUntilInstanceTerminated, type Filter, type Instance } from '@aws-sdk/client-ec2';
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
    tags,
  };
}

export const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down'];

async function collect(aws: AwsClients, input: { InstanceIds?: string[]; Filters?: Filter[] }, signal?: AbortSignal): Promise<InstanceInfo[]> {
  const out: InstanceInfo[] = [];
  for await (const page of paginateDescribeInstances({ client: aws.ec2, pageSize: input.InstanceIds ? undefined : 1000 }, input)) {
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

export async function describeByTag(aws: AwsClients, key: string, values: string[], states?: string[], signal?: AbortSignal): Promise<InstanceInfo[]> {
  const Filters: Filter[] = [{ Name: `tag:${key}`, Values: values }];
  if (states) Filters.push({ Name: 'instance-state-name', Values: states });
  return collect(aws, { Filters }, signal);
}

export async function describeManaged(aws: AwsClients, states: string[] = LIVE_STATES): Promise<InstanceInfo[]> {
  return describeByTag(aws, TAGS.managed, ['true'], states);
}

/** Terminates in batches (EC2 accepts up to 1000 ids a call); ids already gone are not an error. */
export async function terminate(aws: AwsClients, ids: string[]): Promise<string[]> {
  const done: string[] = [];
  for (let i = 0; i < ids.length; i += 1000) {
    const batch = ids.slice(i, i + 1000);
    try {
      const out = await aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: batch }));
      done.push(...(out.TerminatingInstances ?? []).map((t) => t.InstanceId ?? ''));
    } catch (e) {
      if (!/InvalidInstanceID/.test(errorCode(e))) throw e;
      // Some ids are gone: terminate the ones that still exist, one describe later.
      const live = (await describeByIds(aws, batch)).filter((x) => x.state !== 'terminated').map((x) => x.instanceId);
      if (live.length > 0) {
        const out = await aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: live }));
        done.push(...(out.TerminatingInstances ?? []).map((t) => t.InstanceId ?? ''));
      }
    }
  }
  return done.filter(Boolean);
}

/** The SDK waiter, bounded; returns false if the bound passed first. */
export async function waitTerminated(aws: AwsClients, ids: string[], maxWaitSeconds: number): Promise<boolean> {
  if (ids.length === 0) return true;
  try {
    await waitUntilInstanceTerminated({ client: aws.ec2, maxWaitTime: maxWaitSeconds, minDelay: 2, maxDelay: 10 }, { InstanceIds: ids });
    return true;
  } catch {
    return false;
  }
}

export function instanceArn(region: string, account: string, id: string): string {
  const partition = region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';
  return `arn:${partition}:ec2:${region}:${account}:instance/${id}`;
}
