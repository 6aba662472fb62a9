import {
  DeleteParametersCommand,
  GetParameterCommand,
  PutParameterCommand,
  paginateDescribeParameters,
} from '@aws-sdk/client-ssm';
import { SpotRunnerError, errorCode } from '../errors.js';
import type { AwsClients } from './clients.js';

/**
 * Paces calls to a steady rate (a token bucket with a burst of `burst`). SSM's PutParameter
 * allows only a few calls a second per account and region; pacing below that leaves the rest of
 * the budget to other users of the account and costs fewer calls than throttle-and-retry
 * (docs/benchmarks.md, "SSM throughput").
 */
export class Pacer {
  private next = -Infinity;
  private readonly gapMs: number;
  constructor(
    perSecond: number,
    private readonly burst = 1,
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {
    this.gapMs = perSecond > 0 ? 1000 / perSecond : 0;
  }
  async take(): Promise<void> {
    if (this.gapMs === 0) return;
    const now = this.now();
    // Unused time refills up to `burst` calls, no more.
    this.next = Math.max(this.next, now - (this.burst - 1) * this.gapMs);
    const at = this.next;
    this.next += this.gapMs;
    if (at > now) await this.sleep(at - now);
  }
}

/**
 * A JIT config is several KB of base64 (it carries an RSA key), past the 4 KB standard tier:
 * Intelligent-Tiering picks the advanced tier only when it must. When the first answer is lost
 * (a timeout after SSM stored it) the SDK's retry gets ParameterAlreadyExists: the parameter is
 * ours (its name holds the instance id) if it holds exactly our value, and then that is success;
 * so is finding it gone, since its machine deletes it as soon as it has read it.
 */
export async function putSecret(
  aws: AwsClients,
  name: string,
  value: string,
  tags: Record<string, string>,
  signal?: AbortSignal,
  pacer?: Pacer,
): Promise<void> {
  await pacer?.take();
  try {
    await aws.ssm.send(
      new PutParameterCommand({
        Name: name,
        Value: value,
        Type: 'SecureString',
        Tier: 'Intelligent-Tiering',
        Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
      }),
      { abortSignal: signal },
    );
  } catch (e) {
    if (errorCode(e) !== 'ParameterAlreadyExists') throw e;
    let out;
    try {
      out = await aws.ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }), { abortSignal: signal });
    } catch (e2) {
      // Gone again already: its machine booted, read it and deleted it (only it deletes its own).
      if (errorCode(e2) === 'ParameterNotFound') return;
      throw e2;
    }
    if (out.Parameter?.Value !== value)
      throw new SpotRunnerError(
        `SSM parameter ${name} already exists with another value; it is not this start's (remove it, or run reap)`,
      );
  }
}

export interface ParameterInfo {
  name: string;
  lastModified?: Date;
}

/** Names and ages under a path, all pages, without reading (or decrypting) the values; reap needs the age for its grace period. */
export async function describeUnder(aws: AwsClients, path: string): Promise<ParameterInfo[]> {
  const out: ParameterInfo[] = [];
  for await (const page of paginateDescribeParameters(
    { client: aws.ssm },
    { ParameterFilters: [{ Key: 'Path', Option: 'Recursive', Values: [path] }], MaxResults: 50 },
  )) {
    for (const p of page.Parameters ?? []) if (p.Name) out.push({ name: p.Name, lastModified: p.LastModifiedDate });
  }
  return out;
}

/** Deletes in batches of 10 (the API's limit); names already gone are fine. Returns the deleted ones. */
export async function deleteParameters(aws: AwsClients, names: string[]): Promise<string[]> {
  const deleted: string[] = [];
  for (let i = 0; i < names.length; i += 10) {
    const out = await aws.ssm.send(new DeleteParametersCommand({ Names: names.slice(i, i + 10) }));
    deleted.push(...(out.DeletedParameters ?? []));
  }
  return deleted;
}
