// The stack's IAM policies come from docs/iam/*.json, the files __tests__/iam-policy.test.ts keeps
// equal to the code's API calls. They are read at synth time, so the template cannot drift from them.
// The files write `*` (or ACCOUNT_ID) for the account and region; the stack narrows both to its own
// with pseudo-parameters, and swaps a role the stack creates (by name) for that role's ARN.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Fn } from 'aws-cdk-lib';

export const IAM_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'iam');

export interface PolicyDocument {
  Version: string;
  Statement: PolicyStatement[];
}
export interface PolicyStatement {
  Sid?: string;
  Effect: string;
  Principal?: Record<string, unknown>;
  Action?: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}

export function readPolicy(name: string): PolicyDocument {
  return JSON.parse(readFileSync(join(IAM_DIR, name), 'utf8')) as PolicyDocument;
}

/** Roles this stack creates, by the name docs/iam uses for them → a token for the created role's ARN. */
export type RoleArns = Record<string, string>;

const PLACEHOLDER_ACCOUNT = new Set(['*', 'ACCOUNT_ID']);

/**
 * One ARN from docs/iam, narrowed to the stack's partition, region and account. A role the stack
 * creates becomes its real ARN. Anything else (condition values that are not ARNs, policy
 * variables like ${ec2:SourceInstanceARN}) is kept as written. `vars` maps a placeholder in the
 * resource part (CHECKPOINT_BUCKET) to a Fn::Sub variable such as ${CheckpointBucket}.
 */
export function narrowArn(value: string, roles: RoleArns = {}, vars: Record<string, string> = {}): string {
  const m = /^arn:aws:([^:]*):([^:]*):([^:]*):(.*)$/.exec(value);
  if (!m) return value;
  const [, service, region, account, written] = m as unknown as [string, string, string, string, string];
  // Fn::Sub would read a policy variable ${x} as its own: ${!x} keeps it literal.
  let resource = written.replace(/\$\{/g, '${!');
  for (const [placeholder, sub] of Object.entries(vars)) resource = resource.split(placeholder).join(sub);
  const role = service === 'iam' ? /^role\/([^/*]+)$/.exec(resource)?.[1] : undefined;
  if (role !== undefined && roles[role] !== undefined) return roles[role];
  const r = region === '*' ? '${AWS::Region}' : region;
  const a = PLACEHOLDER_ACCOUNT.has(account) ? '${AWS::AccountId}' : account;
  return Fn.sub(`arn:\${AWS::Partition}:${service}:${r}:${a}:${resource}`);
}

function narrowValue(v: unknown, roles: RoleArns, vars: Record<string, string>): unknown {
  if (typeof v === 'string') return narrowArn(v, roles, vars);
  if (Array.isArray(v)) return v.map((x) => narrowValue(x, roles, vars));
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, narrowValue(x, roles, vars)]));
  return v;
}

/** A docs/iam policy as the stack deploys it: every Resource and ARN-valued condition narrowed. */
export function stackPolicy(name: string, roles: RoleArns = {}, vars: Record<string, string> = {}): PolicyDocument {
  const doc = readPolicy(name);
  return {
    Version: doc.Version,
    Statement: doc.Statement.map((s) => ({
      ...s,
      ...(s.Resource !== undefined ? { Resource: narrowValue(s.Resource, roles, vars) as string | string[] } : {}),
      ...(s.Condition !== undefined
        ? { Condition: narrowValue(s.Condition, roles, vars) as PolicyStatement['Condition'] }
        : {}),
    })),
  };
}
