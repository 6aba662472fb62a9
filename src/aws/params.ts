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

/** What a create-only PutParameter found: our value (stored now or by our lost first try), another's, or none. */
export type PutOnceOutcome = 'ours' | 'another' | 'gone';

/**
 * PutParameter without Overwrite. When the first answer is lost (a timeout after SSM stored it)
 * the SDK's retry gets ParameterAlreadyExists: the value is read back, and only our value (by
 * default exactly; `isOurs` for a value its reader may have replaced since) is our write. `gone`: deleted between the two calls; what that means is the caller's.
 */
export async function putOnce(
  aws: AwsClients,
  put: { Name: string; Value: string; Type: 'String' | 'SecureString'; Tier?: 'Intelligent-Tiering' },
  tags: Record<string, string>,
  signal?: AbortSignal,
  pacer?: Pacer,
  isOurs: (stored: string) => boolean = (stored) => stored === put.Value,
): Promise<PutOnceOutcome> {
  await pacer?.take();
  try {
    await aws.ssm.send(
      new PutParameterCommand({ ...put, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }),
      { abortSignal: signal },
    );
    return 'ours';
  } catch (e) {
    if (errorCode(e) !== 'ParameterAlreadyExists') throw e;
    let out;
    try {
      const read = put.Type === 'SecureString' ? { Name: put.Name, WithDecryption: true } : { Name: put.Name };
      out = await aws.ssm.send(new GetParameterCommand(read), { abortSignal: signal });
    } catch (e2) {
      if (errorCode(e2) === 'ParameterNotFound') return 'gone';
      throw e2;
    }
    return isOurs(out.Parameter?.Value ?? '') ? 'ours' : 'another';
  }
}

/**
 * A JIT config is several KB of base64 (it carries an RSA key), past the 4 KB standard tier:
 * Intelligent-Tiering picks the advanced tier only when it must. The parameter is ours (its name
 * holds the instance id) if it holds exactly our value; finding it gone after a lost answer is
 * success too, since its machine deletes it as soon as it has read it (only it deletes its own).
 */
export async function putSecret(
  aws: AwsClients,
  name: string,
  value: string,
  tags: Record<string, string>,
  signal?: AbortSignal,
  pacer?: Pacer,
): Promise<void> {
  const put = { Name: name, Value: value, Type: 'SecureString', Tier: 'Intelligent-Tiering' } as const;
  if ((await putOnce(aws, put, tags, signal, pacer)) === 'another')
    throw new SpotRunnerError(
      `SSM parameter ${name} already exists with another value; it is not this start's (remove it, or run reap)`,
    );
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
