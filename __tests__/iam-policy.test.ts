// Keeps docs/iam honest: every AWS operation the source can call is allowed by the role that runs
// it, and the control role allows nothing the code never calls (bar a short, reasoned list).
import { describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = join(ROOT, 'src');
const AMI_SRC = join(SRC, 'ami');

/** IAM service prefix of each SDK package the code may import. */
const SERVICE_PREFIX: Record<string, string> = { ec2: 'ec2', ssm: 'ssm', sts: 'sts', pricing: 'pricing' };

/** Calls IAM never denies, so no policy lists them; each with its source. */
const NO_PERMISSION_NEEDED: Record<string, string> = {
  'sts:GetCallerIdentity':
    'STS API reference, GetCallerIdentity: "No permissions are required to perform this operation" (start and reap read the account for the home label)',
};

/** SDK waiters poll a Describe call; the waiter's name does not say which. */
const WAITER_ACTIONS: Record<string, string> = {
  InstanceTerminated: 'DescribeInstances',
  InstanceRunning: 'DescribeInstances',
  InstanceStopped: 'DescribeInstances',
  InstanceExists: 'DescribeInstances',
  InstanceStatusOk: 'DescribeInstanceStatus',
  ImageAvailable: 'DescribeImages',
};

/**
 * Allowed in control-role.json though no `*Command` in src sends them: AWS authorises them on the
 * action's behalf. Each needs a reason; an entry the policy no longer has fails the test too.
 */
const CONTROL_EXTRAS: Record<string, string> = {
  'ec2:RunInstances': 'an instant CreateFleet launches through RunInstances, which IAM authorises against the caller',
  'iam:PassRole': "the launch template names the runners' instance profile; passing its role to EC2 needs PassRole",
  'iam:CreateServiceLinkedRole':
    "the first spot launch in an account creates AWSServiceRoleForEC2Spot with the caller's permissions",
  'ssm:AddTagsToResource':
    'PutParameter with Tags (the JIT parameters are tagged) is also authorised as AddTagsToResource',
  'ec2:CreateTags':
    'TagSpecifications on CreateLaunchTemplate and CreateFleet are authorised as ec2:CreateTags; the code never tags an existing resource',
};

interface CallSite {
  action: string;
  file: string;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/**
 * Every AWS API operation a TypeScript source can call, found statically: `new XCommand(`,
 * `paginateX(` and `waitUntilX(` for names imported from an `@aws-sdk/client-*` package. A
 * Command constructed from anything else is an error, so a namespace import cannot hide a call.
 */
function collectCalls(files: { file: string; text: string }[]): { calls: CallSite[]; problems: string[] } {
  const calls: CallSite[] = [];
  const problems: string[] = [];
  for (const { file, text } of files) {
    const imported = new Map<string, string>(); // local name → service prefix
    for (const m of text.matchAll(/import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*['"]@aws-sdk\/client-([\w-]+)['"]/g)) {
      const pkg = m[2] as string;
      const prefix = SERVICE_PREFIX[pkg];
      if (!prefix) {
        problems.push(
          `${file}: imports @aws-sdk/client-${pkg}; add its IAM prefix to SERVICE_PREFIX and its actions to the policy`,
        );
        continue;
      }
      for (const raw of (m[1] as string).split(',')) {
        const spec = raw.trim().replace(/^type\s+/, '');
        if (!spec) continue;
        const [orig, alias] = spec.split(/\s+as\s+/).map((s) => s.trim()) as [string, string | undefined];
        imported.set(alias ?? orig, `${prefix}:${orig}`);
      }
    }
    for (const m of text.matchAll(/new\s+([A-Za-z_$][\w$.]*)\s*\(/g)) {
      const local = m[1] as string;
      const full = local.includes('.') ? undefined : imported.get(local);
      if (!full) {
        if (/Command$/.test(local))
          problems.push(
            `${file}: 'new ${local}(' does not come from a named @aws-sdk/client-* import, so its action cannot be checked`,
          );
        continue;
      }
      const op = /^(\w+):(\w+)Command$/.exec(full);
      if (op) calls.push({ action: `${op[1]}:${op[2]}`, file });
    }
    for (const m of text.matchAll(/\b([A-Za-z_$][\w$]*)\s*\(/g)) {
      const full = imported.get(m[1] as string);
      if (!full) continue;
      const [prefix, name] = full.split(':') as [string, string];
      if (name.startsWith('paginate')) calls.push({ action: `${prefix}:${name.slice('paginate'.length)}`, file });
      else if (name.startsWith('waitUntil')) {
        const waited = WAITER_ACTIONS[name.slice('waitUntil'.length)];
        if (waited) calls.push({ action: `${prefix}:${waited}`, file });
        else problems.push(`${file}: ${name} polls an unknown Describe call; add it to WAITER_ACTIONS`);
      }
    }
  }
  return { calls, problems };
}

interface Statement {
  Sid?: string;
  Effect: string;
  Action?: string | string[];
  NotAction?: unknown;
  Resource?: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}
interface Policy {
  Statement: Statement[];
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Actions an Allow statement grants, as written. Wildcards and NotAction are refused: they are not least privilege and cannot be compared. */
function allowedActions(policy: Policy): { actions: Set<string>; problems: string[] } {
  const actions = new Set<string>();
  const problems: string[] = [];
  for (const s of policy.Statement) {
    if (s.NotAction !== undefined) problems.push(`statement ${s.Sid ?? '?'} uses NotAction`);
    if (s.Effect !== 'Allow') continue;
    for (const a of list(s.Action)) {
      if (a.includes('*') || a.includes('?'))
        problems.push(`statement ${s.Sid ?? '?'} allows the wildcard '${a}'; list the actions`);
      else actions.add(a);
    }
  }
  return { actions, problems };
}

/** Called ⊆ allowed, and (when `exact`) allowed ⊆ called ∪ extras, with every extra present. Actions compare case-insensitively, as IAM does. */
function comparePolicy(
  calls: CallSite[],
  policy: Policy,
  opts: { extras?: Record<string, string>; exact: boolean },
): string[] {
  const { actions, problems } = allowedActions(policy);
  const lower = new Set([...actions].map((a) => a.toLowerCase()));
  const called = new Map<string, string[]>();
  for (const c of calls) called.set(c.action, [...(called.get(c.action) ?? []), c.file]);
  for (const [action, files] of [...called.entries()].sort()) {
    if (!lower.has(action.toLowerCase()))
      problems.push(`${action} is called (${[...new Set(files)].join(', ')}) but the policy does not allow it`);
  }
  if (opts.exact) {
    const calledLower = new Set([...called.keys()].map((a) => a.toLowerCase()));
    const extras = opts.extras ?? {};
    const extrasLower = new Set(Object.keys(extras).map((a) => a.toLowerCase()));
    for (const a of [...actions].sort()) {
      if (!calledLower.has(a.toLowerCase()) && !extrasLower.has(a.toLowerCase()))
        problems.push(`${a} is allowed but the code never calls it; remove it, or list it with a reason as an extra`);
    }
    for (const a of Object.keys(extras))
      if (!lower.has(a.toLowerCase()))
        problems.push(`extra ${a} is listed but the policy no longer allows it; drop it from the extras`);
  }
  return problems;
}

const read = (p: string) => readFileSync(p, 'utf8');
const sources = (dir: string, skip?: string) =>
  walk(dir)
    .filter((f) => !skip || !f.startsWith(skip))
    .map((f) => ({ file: relative(ROOT, f), text: read(f) }));
const policy = (name: string) => JSON.parse(read(join(ROOT, 'docs/iam', name))) as Policy;

describe('docs/iam/control-role.json matches what src/ (start, stop, reap) calls', () => {
  const control = collectCalls(sources(SRC, AMI_SRC));

  it('finds the calls statically, without an unclassified one', () => {
    expect(control.problems).toEqual([]);
    const actions = new Set(control.calls.map((c) => c.action));
    // The operations each mode cannot do without; if one disappears, the scan is broken.
    for (const a of [
      'ec2:CreateFleet',
      'ec2:CreateLaunchTemplate',
      'ec2:TerminateInstances',
      'ec2:DescribeInstances',
      'ec2:DeleteLaunchTemplate',
      'ssm:PutParameter',
      'ssm:DeleteParameters',
      'ssm:DescribeParameters',
    ]) {
      expect(actions).toContain(a);
    }
  });

  it('allows every call, and nothing else but the listed extras', () => {
    expect(
      comparePolicy(
        control.calls.filter((c) => !(c.action in NO_PERMISSION_NEEDED)),
        policy('control-role.json'),
        { extras: CONTROL_EXTRAS, exact: true },
      ),
    ).toEqual([]);
  });

  describe('scoping', () => {
    const statements = policy('control-role.json').Statement;
    const grants = (action: string) =>
      statements.filter((s) => s.Effect === 'Allow' && list(s.Action).includes(action));
    const condition = (s: Statement, op: string, key: string) => s.Condition?.[op]?.[key];

    it.each(['ec2:TerminateInstances', 'ec2:DeleteLaunchTemplate'])(
      '%s only on resources tagged spot-runner:managed=true',
      (action) => {
        expect(grants(action).length).toBeGreaterThan(0);
        for (const s of grants(action))
          expect(condition(s, 'StringEquals', 'aws:ResourceTag/spot-runner:managed')).toBe('true');
      },
    );
    it('ec2:CreateTags only while creating a resource tagged spot-runner:managed=true, or on an existing managed warm-pool instance (the claim retags it)', () => {
      expect(grants('ec2:CreateTags').length).toBeGreaterThan(0);
      for (const s of grants('ec2:CreateTags')) {
        if (condition(s, 'StringEquals', 'ec2:CreateAction') !== undefined) {
          expect(condition(s, 'StringEquals', 'aws:RequestTag/spot-runner:managed')).toBe('true');
          continue;
        }
        expect(condition(s, 'StringEquals', 'aws:ResourceTag/spot-runner:managed')).toBe('true');
        expect(condition(s, 'Null', 'aws:ResourceTag/spot-runner:pool')).toBe('false');
        expect(s.Resource).toBe('arn:aws:ec2:*:*:instance/*');
      }
    });
    it.each(['ec2:StartInstances', 'ec2:ModifyInstanceAttribute'])(
      '%s only on managed warm-pool instances',
      (action) => {
        expect(grants(action).length).toBeGreaterThan(0);
        for (const s of grants(action)) {
          expect(condition(s, 'StringEquals', 'aws:ResourceTag/spot-runner:managed')).toBe('true');
          expect(condition(s, 'Null', 'aws:ResourceTag/spot-runner:pool')).toBe('false');
        }
      },
    );
    it('creates instances, volumes and launch templates only with the managed tag', () => {
      for (const action of ['ec2:CreateFleet', 'ec2:RunInstances', 'ec2:CreateLaunchTemplate']) {
        for (const s of grants(action)) {
          const res = list(s.Resource);
          if (res.some((r) => /:(instance|volume)\/\*$/.test(r)) || action === 'ec2:CreateLaunchTemplate') {
            expect(condition(s, 'StringEquals', 'aws:RequestTag/spot-runner:managed')).toBe('true');
          }
          if (action !== 'ec2:CreateLaunchTemplate' && res.some((r) => r.endsWith(':launch-template/*'))) {
            expect(condition(s, 'StringEquals', 'aws:ResourceTag/spot-runner:managed')).toBe('true');
          }
        }
      }
    });
    it('writes only parameters under /spot-runner/jit/', () => {
      for (const action of ['ssm:PutParameter', 'ssm:DeleteParameters', 'ssm:AddTagsToResource']) {
        for (const s of grants(action))
          expect(list(s.Resource)).toEqual(['arn:aws:ssm:*:*:parameter/spot-runner/jit/*']);
      }
    });
    it('passes a role only to EC2, and only the named instance role', () => {
      expect(grants('iam:PassRole').length).toBeGreaterThan(0);
      for (const s of grants('iam:PassRole')) {
        expect(condition(s, 'StringEquals', 'iam:PassedToService')).toBe('ec2.amazonaws.com');
        expect(list(s.Resource).every((r) => !r.includes('*:role/*') && !r.endsWith('role/*'))).toBe(true);
      }
    });
    it('creates only the spot service-linked role', () => {
      for (const s of grants('iam:CreateServiceLinkedRole'))
        expect(condition(s, 'StringEquals', 'iam:AWSServiceName')).toBe('spot.amazonaws.com');
    });
    it('grants Resource "*" only to read-only calls', () => {
      for (const s of statements.filter((x) => list(x.Resource).includes('*'))) {
        for (const a of list(s.Action)) expect(a).toMatch(/^(ec2|ssm|sts|pricing):(Describe|Get|List)/);
      }
    });
  });
});

describe('docs/iam/packer-role.json allows what src/ami/ calls', () => {
  // One direction only: the Packer binary itself makes most of this role's calls, outside src/.
  it('allows every call of the AMI tool', () => {
    const ami = collectCalls(sources(AMI_SRC));
    expect(ami.problems).toEqual([]);
    expect(ami.calls.length).toBeGreaterThan(0);
    expect(comparePolicy(ami.calls, policy('packer-role.json'), { exact: false })).toEqual([]);
  });
});

describe('the checks can fail', () => {
  const code = `
import { TerminateInstancesCommand, paginateDescribeInstances, waitUntilInstanceTerminated as waitGone, type Filter } from '@aws-sdk/client-ec2';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
export async function f(c: any, f: Filter) {
  await c.send(new TerminateInstancesCommand({}));
  for await (const p of paginateDescribeInstances({ client: c }, {})) void p;
  await waitGone({ client: c }, {});
  await c.send(new PutParameterCommand({}));
  await c.send(new Date());
}`;
  const calls = collectCalls([{ file: 'x.ts', text: code }]).calls;
  const allow = (...actions: string[]): Policy => ({
    Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }],
  });

  it('collects commands, paginators and (aliased) waiters, mapped to their service', () => {
    expect(calls.map((c) => c.action).sort()).toEqual([
      'ec2:DescribeInstances',
      'ec2:DescribeInstances',
      'ec2:TerminateInstances',
      'ssm:PutParameter',
    ]);
  });
  it('reports a call the policy misses', () => {
    expect(comparePolicy(calls, allow('ec2:DescribeInstances', 'ssm:PutParameter'), { exact: true })).toEqual([
      'ec2:TerminateInstances is called (x.ts) but the policy does not allow it',
    ]);
  });
  it('reports an action the code never calls, and an extra the policy dropped', () => {
    const problems = comparePolicy(
      calls,
      allow('ec2:DescribeInstances', 'ec2:TerminateInstances', 'ssm:PutParameter', 'ec2:DeleteVolume'),
      { exact: true, extras: { 'iam:PassRole': 'why' } },
    );
    expect(problems).toEqual([
      'ec2:DeleteVolume is allowed but the code never calls it; remove it, or list it with a reason as an extra',
      'extra iam:PassRole is listed but the policy no longer allows it; drop it from the extras',
    ]);
  });
  it('refuses wildcards, and Deny statements grant nothing', () => {
    expect(allowedActions(allow('ec2:Describe*')).problems).toEqual([
      "statement ? allows the wildcard 'ec2:Describe*'; list the actions",
    ]);
    expect(
      comparePolicy(
        calls,
        {
          Statement: [
            { Effect: 'Deny', Action: ['ec2:TerminateInstances', 'ec2:DescribeInstances', 'ssm:PutParameter'] },
          ],
        },
        { exact: false },
      ),
    ).toHaveLength(3);
  });
  it('flags an unknown SDK package, an unknown waiter and a Command it cannot trace', () => {
    const { problems } = collectCalls([
      { file: 'a.ts', text: "import { PutObjectCommand } from '@aws-sdk/client-s3';" },
      {
        file: 'b.ts',
        text: "import { waitUntilVolumeInUse } from '@aws-sdk/client-ec2';\nwaitUntilVolumeInUse({}, {});",
      },
      {
        file: 'c.ts',
        text: "import * as ec2 from '@aws-sdk/client-ec2';\nnew ec2.RunInstancesCommand({});\nconst RunInstancesCommand = ec2.RunInstancesCommand; new RunInstancesCommand({});",
      },
    ]);
    expect(problems).toEqual([
      'a.ts: imports @aws-sdk/client-s3; add its IAM prefix to SERVICE_PREFIX and its actions to the policy',
      'b.ts: waitUntilVolumeInUse polls an unknown Describe call; add it to WAITER_ACTIONS',
      "c.ts: 'new ec2.RunInstancesCommand(' does not come from a named @aws-sdk/client-* import, so its action cannot be checked",
      "c.ts: 'new RunInstancesCommand(' does not come from a named @aws-sdk/client-* import, so its action cannot be checked",
    ]);
  });
});
