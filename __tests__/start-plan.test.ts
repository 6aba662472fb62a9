import { describe, expect, it } from '@jest/globals';
import { getEventListeners } from 'node:events';
import { createHash } from 'node:crypto';
import nock from 'nock';
import { offlineGitHub } from '../test/fakes/github.js';
import { rig, runStart, startConfig, tick, type Rig } from '../test/fakes/harness.js';
import { InputError, SpotRunnerError } from '../src/errors.js';
import { describeRollback, launchAnswered, planLaunch, sleep } from '../src/modes/start.js';
import { makeAwsClients, type AwsClients } from '../src/aws/clients.js';
import { DescribeInstanceTypesCommand } from '@aws-sdk/client-ec2';
import type { FakeWorld } from '../test/fakes/world.js';
import type { TeardownReport } from '../src/teardown.js';

offlineGitHub();

// A fixed label and clock: every token, name and deadline below is then a literal.
const L = 'spot-runner-4242-1-a1b2c3-0000beef';
const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const planRig = (): Rig => rig({ label: L, now: () => NOW });

/** The whole error a promise rejects with (so its message can be compared with toBe). */
const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error & { status?: number },
  );

describe('sleep', () => {
  it('rejects at once with the reason of a signal aborted before it starts, and registers nothing', async () => {
    const ac = new AbortController();
    const reason = new Error('stopped before');
    ac.abort(reason);
    // 20 ms: were the abort missed, the sleep would resolve (a fail, not a hang).
    await expect(sleep(20, ac.signal)).rejects.toBe(reason);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('listens for abort once while asleep; an abort rejects with its reason and leaves no listener', async () => {
    const ac = new AbortController();
    const reason = new Error('stopped midway');
    const p = sleep(60_000, ac.signal);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    ac.abort(reason);
    // `once`: the listener went with the event.
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    await expect(p).rejects.toBe(reason);
  });

  it('clears its timer on an abort: nothing is left pending to fire later', async () => {
    const cleared: unknown[] = [];
    const realClear = globalThis.clearTimeout;
    const ac = new AbortController();
    globalThis.clearTimeout = ((t: Parameters<typeof clearTimeout>[0]) => {
      cleared.push(t);
      realClear(t);
    }) as typeof clearTimeout;
    try {
      const p = sleep(60_000, ac.signal);
      ac.abort(new Error('stop'));
      await expect(p).rejects.toThrow('stop');
    } finally {
      globalThis.clearTimeout = realClear;
    }
    expect(cleared).toHaveLength(1);
  });

  it('removes its abort listener once it has slept: a long-lived signal does not collect them', async () => {
    const ac = new AbortController();
    await sleep(1, ac.signal);
    await sleep(1, ac.signal);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });
});

const report = (o: Partial<TeardownReport> = {}): TeardownReport => ({
  instances: [],
  terminated: [],
  runnersDeleted: [],
  runnersBusy: [],
  parametersDeleted: [],
  templatesDeleted: [],
  problems: [],
  notes: [],
  ...o,
});

describe('describeRollback', () => {
  it('says what a rollback that found nothing removed: nothing', () => {
    expect(describeRollback(report())).toEqual([
      'terminated 0 instance(s)',
      'deleted 0 runner(s), 0 parameter(s), 0 launch template(s)',
    ]);
  });

  it('names the terminated instances, counts the rest, then the notes, then each problem', () => {
    expect(
      describeRollback(
        report({
          terminated: ['i-00000000000000001', 'i-00000000000000002'],
          runnersDeleted: [101, 102, 103],
          parametersDeleted: ['/spot-runner/jit/x/i-00000000000000001'],
          templatesDeleted: ['lt-00000000000000001', 'lt-00000000000000002'],
          notes: ['the launch was never answered: looked again for its machines'],
          problems: ['deleting runners: injected 500', 'deleting parameters: AccessDenied'],
        }),
      ),
    ).toEqual([
      'terminated 2 instance(s): i-00000000000000001, i-00000000000000002',
      'deleted 3 runner(s), 1 parameter(s), 2 launch template(s)',
      'the launch was never answered: looked again for its machines',
      'PROBLEM deleting runners: injected 500',
      'PROBLEM deleting parameters: AccessDenied',
    ]);
  });
});

describe('launchAnswered', () => {
  const withStatus = (status: number) => Object.assign(new Error(`HTTP ${status}`), { status });
  const aws = (status: number) => Object.assign(new Error('aws'), { $metadata: { httpStatusCode: status } });

  it.each([
    ['our own verdict (SpotRunnerError)', true, new SpotRunnerError('Not enough spot capacity')],
    ['a 400', true, withStatus(400)],
    ['a 403 from EC2', true, aws(403)],
    ['a 499', true, withStatus(499)],
    ['a 500', false, withStatus(500)],
    ['a 503 from EC2', false, aws(503)],
    ['no status (a timeout, an abort)', false, new Error('socket hang up')],
    ['a 399', false, withStatus(399)],
  ])('%s → %s', (_what, answered, e) => {
    expect(launchAnswered(e)).toBe(answered);
  });
});

describe('start: the GitHub access check before anything is launched', () => {
  const REPO_NEED = 'the repository permission "Administration: write"';
  const ORG_NEED = 'the organisation permission "Self-hosted runners: write"';

  it.each([401, 403, 404])('repo scope, %s: names the token, the repository and the permission', async (status) => {
    const r = planRig();
    r.github.faults.list = [{ status }];
    const err = await failure(runStart(r, { 'dry-run': 'true' }));
    expect(err).toBeInstanceOf(SpotRunnerError);
    expect(err.message).toBe(
      `Input 'github-token': GitHub answered ${status} when listing repo runners of acme/widgets. ` +
        `Fix: use a token with ${REPO_NEED} (GITHUB_TOKEN cannot register runners).`,
    );
    expect(r.github.requests).toEqual([{ method: 'GET', path: '/repos/acme/widgets/actions/runners?per_page=1' }]);
  });

  it.each([401, 403, 404])(
    'org scope, %s: lists the organisation runners, and names the organisation and its permission',
    async (status) => {
      const r = planRig();
      const org = nock('https://api.github.com')
        .get('/orgs/acme/actions/runners')
        .query({ per_page: '1' })
        .reply(status, { message: `org says ${status}` });
      const err = await failure(runStart(r, { 'dry-run': 'true', 'runner-scope': 'org' }));
      expect(err).toBeInstanceOf(SpotRunnerError);
      expect(err.message).toBe(
        `Input 'github-token': GitHub answered ${status} when listing org runners of acme. ` +
          `Fix: use a token with ${ORG_NEED} (GITHUB_TOKEN cannot register runners).`,
      );
      expect(org.isDone()).toBe(true);
      // Not the repository's list.
      expect(r.github.requests).toEqual([]);
    },
  );

  it('the 403 of an org token spelled out', async () => {
    const r = planRig();
    nock('https://api.github.com').get('/orgs/acme/actions/runners').query(true).reply(403, { message: 'Forbidden' });
    await expect(runStart(r, { 'dry-run': 'true', 'runner-scope': 'org' })).rejects.toThrow(
      "Input 'github-token': GitHub answered 403 when listing org runners of acme. " +
        'Fix: use a token with the organisation permission "Self-hosted runners: write" ' +
        '(GITHUB_TOKEN cannot register runners).',
    );
  });

  it('an org start that may list the runners goes on (the org list, not the repository one)', async () => {
    const r = planRig();
    const org = nock('https://api.github.com')
      .get('/orgs/acme/actions/runners')
      .query({ per_page: '1' })
      .reply(200, { total_count: 0, runners: [] });
    const res = await runStart(r, { 'dry-run': 'true', 'runner-scope': 'org' });
    expect(res.dryRun).toBe(true);
    expect(org.isDone()).toBe(true);
    expect(r.github.requests).toEqual([]);
  });

  it('a 500 that outlasts the retries is thrown as it came, not as a token problem', async () => {
    const r = planRig();
    r.github.faults.list = Array.from({ length: 5 }, () => ({ status: 500 }));
    const err = await failure(runStart(r, { 'dry-run': 'true' }));
    expect(err).not.toBeInstanceOf(SpotRunnerError);
    expect(err.status).toBe(500);
    expect(err.message).toBe('injected 500');
  });
});

const validated = (r: Rig) => r.logs.filter((l) => l.startsWith('Validated: '));

describe('start: the Validated line', () => {
  it('spot with the on-demand fallback (the default), pools counted', async () => {
    const r = planRig();
    await runStart(r, { 'dry-run': 'true' });
    expect(validated(r)).toEqual([
      'Validated: image ami-0123456789abcdef0 (x86_64), types c7i.large, c6i.large, ' +
        '2 × spot with on-demand fallback, 2 pool(s), spot price-capacity-optimized',
    ]);
  });

  it('spot without the fallback', async () => {
    const r = planRig();
    await runStart(r, { 'dry-run': 'true', 'on-demand-fallback': 'false' });
    expect(validated(r)).toEqual([
      'Validated: image ami-0123456789abcdef0 (x86_64), types c7i.large, c6i.large, ' +
        '2 × spot, 2 pool(s), spot price-capacity-optimized',
    ]);
  });

  it('on-demand: no fallback to speak of, whatever on-demand-fallback says', async () => {
    const r = planRig();
    await runStart(r, { 'dry-run': 'true', market: 'on-demand', 'on-demand-fallback': 'true' });
    expect(validated(r)).toEqual([
      'Validated: image ami-0123456789abcdef0 (x86_64), types c7i.large, c6i.large, ' +
        '2 × on-demand, 2 pool(s), spot price-capacity-optimized',
    ]);
  });

  it('an image from an SSM parameter names the parameter', async () => {
    const r = planRig();
    r.world.addParameter('/spot-runner/ami/base', new Date(NOW), 'ami-0123456789abcdef0');
    await runStart(r, { 'dry-run': 'true', image: 'ssm:/spot-runner/ami/base', count: '1' });
    expect(validated(r)).toEqual([
      'Validated: image ami-0123456789abcdef0 (x86_64, from /spot-runner/ami/base), types c7i.large, c6i.large, ' +
        '1 × spot with on-demand fallback, 2 pool(s), spot price-capacity-optimized',
    ]);
  });

  it('a warm-pool start defers the capacity pools to a shortfall', async () => {
    const r = rig({ label: L });
    await runStart(r, { count: '1', pool: 'warm' });
    expect(validated(r)).toEqual([
      'Validated: image ami-0123456789abcdef0 (x86_64), types c7i.large, c6i.large, ' +
        '1 × spot with on-demand fallback, capacity pools checked only for a shortfall of the warm pool, ' +
        'spot price-capacity-optimized',
    ]);
  });

  it('a start without a pool counts its pools (one per type and zone)', async () => {
    const r = rig({ label: L });
    await runStart(r, { count: '1', 'subnet-ids': 'subnet-00000000000000001, subnet-00000000000000002' });
    expect(validated(r)).toEqual([
      'Validated: image ami-0123456789abcdef0 (x86_64), types c7i.large, c6i.large, ' +
        '1 × spot with on-demand fallback, 4 pool(s), spot price-capacity-optimized',
    ]);
  });
});

// The tags of the run, in the order start writes them (the launch template and fleet list them so).
const tagList = (expiresAt: string) => [
  { Key: 'Name', Value: L },
  { Key: 'spot-runner:managed', Value: 'true' },
  { Key: 'spot-runner:label', Value: L },
  { Key: 'spot-runner:repo', Value: 'acme/widgets' },
  { Key: 'spot-runner:run-id', Value: '4242' },
  { Key: 'spot-runner:run-attempt', Value: '1' },
  { Key: 'spot-runner:job', Value: 'start' },
  { Key: 'spot-runner:expires-at', Value: expiresAt },
];
const TOKEN = 'dbba91eedc6107a869b94f8c814654c24f1cec07'; // sha256(L), first 40 hex digits
const LABELS = ['self-hosted', 'Linux', 'X64', L, 'sr-home-eb805c6c']; // sha256('123456789012/us-east-1')
const OVERRIDES = [
  { InstanceType: 'c7i.large', Priority: 0 },
  { InstanceType: 'c6i.large', Priority: 1 },
];
const fleetOf = (market: 'spot' | 'on-demand', count: number) => ({
  Type: 'instant',
  ClientToken: `${market}-${TOKEN}`,
  TagSpecifications: [{ ResourceType: 'instance', Tags: tagList('2026-03-01T18:00:00.000Z') }],
  TargetCapacitySpecification:
    market === 'spot'
      ? { TotalTargetCapacity: count, DefaultTargetCapacityType: 'spot', SpotTargetCapacity: count }
      : { TotalTargetCapacity: count, DefaultTargetCapacityType: 'on-demand', OnDemandTargetCapacity: count },
  SpotOptions: { AllocationStrategy: 'price-capacity-optimized' },
  OnDemandOptions: { AllocationStrategy: 'prioritized' },
  LaunchTemplateConfigs: [
    {
      LaunchTemplateSpecification: { LaunchTemplateId: '<launch template id>', Version: '$Latest' },
      Overrides: OVERRIDES,
    },
  ],
});

interface DryPlan {
  fleet: unknown;
  onDemandFallback: unknown;
  tags: Record<string, string>;
  userData: string;
}
const dryRun = async (r: Rig, inputs: Record<string, string> = {}) => {
  const res = await runStart(r, { 'dry-run': 'true', ...inputs });
  return { res, plan: res.plan as DryPlan };
};

describe('start: the dry run', () => {
  it('returns the whole plan: the template without its user-data, both fleets, one runner per count', async () => {
    const r = planRig();
    const { res } = await dryRun(r);
    const tags = tagList('2026-03-01T18:00:00.000Z');
    expect(res).toEqual({
      label: L,
      labels: LABELS,
      runners: [],
      dryRun: true,
      plan: {
        launchTemplate: {
          LaunchTemplateName: L,
          ClientToken: `lt-${TOKEN}`,
          TagSpecifications: [{ ResourceType: 'launch-template', Tags: tags }],
          LaunchTemplateData: {
            ImageId: 'ami-0123456789abcdef0',
            // The script is printed decoded, as userData below, not as base64 here.
            UserData: '(below, decoded)',
            InstanceInitiatedShutdownBehavior: 'terminate',
            MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' },
            BlockDeviceMappings: [
              { DeviceName: '/dev/sda1', Ebs: { Encrypted: true, DeleteOnTermination: true, VolumeType: 'gp3' } },
            ],
            TagSpecifications: [
              { ResourceType: 'instance', Tags: tags },
              { ResourceType: 'volume', Tags: tags },
            ],
          },
        },
        fleet: fleetOf('spot', 2),
        onDemandFallback: fleetOf('on-demand', 2),
        notes: [],
        runners: [
          {
            name: `${L}-1`,
            labels: LABELS,
            runnerGroupId: 1,
            parameter: `/spot-runner/jit/${L}/<instance-id>`,
          },
          {
            name: `${L}-2`,
            labels: LABELS,
            runnerGroupId: 1,
            parameter: `/spot-runner/jit/${L}/<instance-id>`,
          },
        ],
        tags: Object.fromEntries(tags.map((t) => [t.Key, t.Value])),
        userData: expect.stringContaining(`\nSR_PARAM_PREFIX='/spot-runner/jit/${L}'\n`),
      },
    });
    expect(r.world.mutating()).toEqual([]);
  });

  it('spot without the fallback plans no on-demand fleet', async () => {
    const { plan } = await dryRun(planRig(), { 'on-demand-fallback': 'false' });
    expect(plan.fleet).toEqual(fleetOf('spot', 2));
    expect(plan.onDemandFallback).toBeNull();
  });

  it('on-demand plans one on-demand fleet, with its own token, and nothing to fall back to', async () => {
    const { plan } = await dryRun(planRig(), { market: 'on-demand', count: '3' });
    expect(plan.fleet).toEqual(fleetOf('on-demand', 3));
    expect(plan.onDemandFallback).toBeNull();
  });

  it('with a warm pool: lists no pool machines, changes nothing, and counts the capacity pools', async () => {
    const r = planRig();
    const { res, plan } = await dryRun(r, { pool: 'warm' });
    expect(res.runners).toEqual([]);
    expect(plan.fleet).toEqual(fleetOf('spot', 2));
    expect(validated(r)).toEqual([
      'Validated: image ami-0123456789abcdef0 (x86_64), types c7i.large, c6i.large, ' +
        '2 × spot with on-demand fallback, 2 pool(s), spot price-capacity-optimized',
    ]);
    expect(r.world.calls.map((c) => c.command).sort()).toEqual([
      'DescribeImages',
      'DescribeInstanceTypes',
      'GetCallerIdentity',
    ]);
    expect(r.github.requests.map((q) => q.method)).toEqual(['GET']);
  });
});

describe('start: the deadline and the pre-runner timeout, from max-lifetime', () => {
  it('a 20-minute lifetime: expires 20 minutes from now, and the pre-runner script gets all 20', async () => {
    const { plan } = await dryRun(planRig(), { 'max-lifetime': '20' });
    expect(plan.tags['spot-runner:expires-at']).toBe('2026-03-01T12:20:00.000Z');
    expect(plan.userData).toContain('\nSR_MAX_LIFETIME_SECONDS=1200\n');
    expect(plan.userData).toContain('\nSR_PRE_RUNNER_TIMEOUT_SECONDS=1200\n');
  });

  it('the default 360 minutes: expires 6 hours from now; the pre-runner script is capped at 30 minutes', async () => {
    const { plan } = await dryRun(planRig());
    expect(plan.tags['spot-runner:expires-at']).toBe('2026-03-01T18:00:00.000Z');
    expect(plan.userData).toContain('\nSR_MAX_LIFETIME_SECONDS=21600\n');
    expect(plan.userData).toContain('\nSR_PRE_RUNNER_TIMEOUT_SECONDS=1800\n');
  });
});

describe('start: a pre-runner script too big for user-data', () => {
  it('is refused as an input, before anything is created, with the fix', async () => {
    const r = planRig();
    // 200 lines of hex: hardly compressible, so it cannot hide in the gzip.
    const script = Array.from(
      { length: 200 },
      (_, i) => `# ${createHash('sha256').update(String(i)).digest('hex')}`,
    ).join('\n');
    const err = await failure(runStart(r, { 'pre-runner-script': script }));
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).input).toBe('pre-runner-script');
    // The byte counts of the whole user-data depend on the bootstrap and on zlib: only those are left open.
    expect(err.message).toMatch(
      new RegExp(
        "^Input 'pre-runner-script': user-data would be \\d+ bytes, over EC2's 16384-byte limit: " +
          'pre-runner-script is 13399 bytes \\(\\d+ once gzipped and base64-encoded\\), and only \\d+ encoded ' +
          'bytes fit\\. Move the bulk of it into the AMI or a file the script downloads\\.\\. ' +
          'Fix: shorten the script; put the bulk of it into the AMI or download it from the script$',
      ),
    );
    expect(r.world.mutating()).toEqual([]);
  });
});

/**
 * The product's own clients (they count their EC2 reads), answered by the fake world in-process:
 * a middleware after the counter hands each command to the world instead of the network.
 */
function countingClients(world: FakeWorld): AwsClients {
  const fake = world.clients();
  const aws = makeAwsClients('us-east-1');
  for (const k of ['ec2', 'ssm', 'sts', 'pricing'] as const) {
    const send = fake[k].send.bind(fake[k]) as unknown as (cmd: unknown) => Promise<unknown>;
    (aws[k].middlewareStack as unknown as { add: (mw: unknown, o: unknown) => void }).add(
      (_next: unknown, ctx: { commandName?: string }) => async (args: { input: Record<string, unknown> }) => ({
        output: await send({ constructor: { name: ctx.commandName }, input: args.input }),
        response: {},
      }),
      { step: 'initialize', priority: 'low', name: 'fakeWorld' },
    );
  }
  return aws;
}

describe("planLaunch: the EC2 reads of this start, for the waiter's budget", () => {
  it("counts only the reads since the plan began, live, from the plan's clock", async () => {
    const r = planRig();
    const aws = countingClients(r.world);
    // A read before the plan: not this start's.
    await aws.ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ['c7i.large'] }));
    const plan = await planLaunch(startConfig(), { ...r.deps, aws });
    expect(plan.ec2Reads?.since).toBe(NOW);
    // DescribeInstanceTypes and DescribeImages (GetCallerIdentity is STS).
    expect(plan.ec2Reads?.count()).toBe(2);
    await aws.ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ['c7i.large'] }));
    expect(plan.ec2Reads?.count()).toBe(3);
  });

  it('has none for clients that count nothing (the fakes)', async () => {
    const plan = await planLaunch(startConfig(), planRig().deps);
    expect(Object.keys(plan).sort()).toEqual([
      'account',
      'expiresAt',
      'groupId',
      'image',
      'label',
      'labels',
      'ltReq',
      'notes',
      'pools',
      'tags',
      'target',
      'userData',
    ]);
  });

  it('hands them to the waiter: its first look waits until the reads so far fit the rate', async () => {
    const sleeps: number[] = [];
    const r = rig({
      label: L,
      now: () => NOW,
      // One read a second, and a clock that stands still: the budget's wait is (reads + 1) s.
      wait: { intervalMs: 5, fastIntervalMs: 5, githubRetryMs: 5, timeoutMs: 600_000, ec2ReadsPerSecond: 1 },
      sleep: async (ms: number) => {
        sleeps.push(ms);
        await tick();
      },
    });
    r.deps.aws = countingClients(r.world);
    // On-demand: no spot price to ask, so the reads before the first look are the plan's two.
    await runStart(r, { count: '1', market: 'on-demand' });
    // Without the budget, the first sleep would be the 5 ms poll interval.
    expect(sleeps[0]).toBe(3000);
  });
});
