import { DeleteParametersCommand, PutParameterCommand, paginateDescribeParameters } from '@aws-sdk/client-ssm';
import type { AwsClients } from './clients.js';

/**
 * A JIT config is several KB of base64 (it carries an RSA key), past the 4 KB standard tier:
 * Intelligent-Tiering picks the advanced tier only when it must.
 */
export async function putSecret(aws: AwsClients, name: string, value: string, tags: Record<string, string>, signal?: AbortSignal): Promise<void> {
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
