import { describe, expect, it } from '@jest/globals';
import { offlineGitHub } from '../test/fakes/github.js';
import { readFileSync } from 'node:fs';
import { awsError } from '../test/fakes/aws.js';
import { rig, runStart, tick, until, type Rig } from '../test/fakes/harness.js';
import { TAGS } from '../src/tags.js';

offlineGitHub();

function expectNothingLeft(r: Rig) {
  expect(r.world.live()).toHaveLength(0);
  expect(r.world.params.size).toBe(0);
  expect(r.world.templates.size).toBe(0);
  expect(r.github.runners.size).toBe(0);
}

/** A fleet answer that launches the whole asked count, as c7i.large, in the asked market. */
function launchAllAsked(req: Record<string, unknown>) {
  const spec = req.TargetCapacitySpecification as { TotalTargetCapacity: number; DefaultTargetCapacityType: string };
  return {
    launch: Array.from({ length: spec.TotalTargetCapacity }, () => ({
      type: 'c7i.large',
      market: spec.DefaultTargetCapacityType,
    })),
  };
}

describe('start', () => {
  it('launches N with one fleet, parks one JIT config per instance in SSM, and waits for all', async () => {
    const r = rig();
    const res = await runStart(r);
    expect(r.world.count('CreateLaunchTemplate')).toBe(1);
    expect(r.world.fleetsAccepted.length).toBe(1);
    expect(r.world.count('PutParameter')).toBe(2);
    expect(res.runners).toHaveLength(2);
    expect(res.runners.map((x) => x.spotPrice)).toEqual(['0.0300', '0.0300']);
    expect(res.label).toMatch(/^spot-runner-4242-1-[0-9a-f]{6}-[0-9a-f]{8}$/);

    const lt = r.world.calls.find((c) => c.command === 'CreateLaunchTemplate')?.input as {
      LaunchTemplateData: Record<string, unknown>;
    };
    const data = lt.LaunchTemplateData as {
      MetadataOptions: Record<string, unknown>;
      InstanceInitiatedShutdownBehavior: string;
      BlockDeviceMappings: { Ebs: { Encrypted: boolean } }[];
      UserData: string;
    };
    expect(data.MetadataOptions).toMatchObject({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
    expect(data.InstanceInitiatedShutdownBehavior).toBe('terminate');
    expect(data.BlockDeviceMappings[0]?.Ebs.Encrypted).toBe(true);

    const fleet = r.world.calls.find((c) => c.command === 'CreateFleet')?.input as Record<string, unknown>;
    expect(fleet).toMatchObject({
      Type: 'instant',
      SpotOptions: { AllocationStrategy: 'price-capacity-optimized' },
      TargetCapacitySpecification: { TotalTargetCapacity: 2, DefaultTargetCapacityType: 'spot' },
    });
    expect(String(fleet.ClientToken)).toMatch(/^spot-/);
    expect(fleet.TagSpecifications).toEqual([
      {
        ResourceType: 'instance',
        Tags: expect.arrayContaining([
          { Key: TAGS.label, Value: res.label },
          { Key: TAGS.managed, Value: 'true' },
        ]),
      },
    ]);

    // The secret goes to SSM, under the instance's id; user-data holds only the parameter path.
    const userData = Buffer.from(data.UserData, 'base64').toString('utf8');
    for (const [name, p] of r.world.params) {
      expect(name).toMatch(new RegExp(`^/spot-runner/jit/${res.label}/i-`));
      expect(userData).not.toContain(p.value);
      expect(p.tags[TAGS.instanceId]).toBe(name.split('/').pop());
      expect(p.tags[TAGS.instanceArn]).toBe(`arn:aws:ec2:us-east-1:123456789012:instance/${name.split('/').pop()}`);
    }
    expect(userData).toContain(`/spot-runner/jit/${res.label}`);

    // State names everything that exists, for the post step.
    const state = readFileSync(process.env.GITHUB_STATE as string, 'utf8');
    for (const i of r.world.live()) expect(state).toContain(i.InstanceId);
    expect(r.state.resources.runnerIds).toHaveLength(2);
  });

  it("records each runner's name before it asks GitHub for it (a step killed mid-request leaves post the name)", async () => {
    const r = rig();
    const recordedFirst: boolean[] = [];
    r.github.onCreate = (x) => recordedFirst.push(r.state.resources.runnerNames.includes(x.name));
    const res = await runStart(r, { count: '3' });
    expect(recordedFirst).toEqual([true, true, true]);
    expect([...r.state.resources.runnerNames].sort()).toEqual(res.runners.map((x) => x.name).sort());
  });

  it('records the names a fleet launches for before CreateFleet, and marks them launched when it answers', async () => {
    const r = rig();
    const atFleet: string[][][] = [];
    const fleet = r.world.handlerOf('CreateFleet');
    r.world.on('CreateFleet', async (input, call) => {
      atFleet.push([[...r.state.resources.launchingNames].sort(), [...r.state.resources.launchedNames]]);
      return fleet(input, call);
    });
    const res = await runStart(r, { count: '2' });
    const names = res.runners.map((x) => x.name).sort();
    // Two calls: EC2 does not know the new launch template at the first (eventual consistency).
    expect(atFleet).toEqual([
      [names, []],
      [names, []],
    ]);
    expect([...r.state.resources.launchedNames].sort()).toEqual(names);
  });

  it('a fleet call that fails without a verdict (a 500) leaves its launch unanswered: the rollback looks again and terminates what EC2 lists late', async () => {
    const r = rig();
    const fleet = r.world.handlerOf('CreateFleet');
    let launched: string[] = [];
    r.world.on('CreateFleet', async (input, call) => {
      // Carried out, then the answer is lost: the machines exist, hidden from the next views.
      const out = (await fleet(input, call)) as { Instances?: { InstanceIds?: string[] }[] };
      launched = (out.Instances ?? []).flatMap((g) => g.InstanceIds ?? []);
      for (const id of launched) r.world.hideNew(id, 2);
      throw awsError('InternalError', 'We encountered an internal error. Please try again.', 500);
    });
    await expect(runStart(r, { count: '2' })).rejects.toThrow(/internal error.*rolled back: terminated 2/);
    expect(launched).toHaveLength(2);
    expect(r.state.resources.launchedNames).toEqual([]);
    expectNothingLeft(r);
  });

  it('a fleet call refused with a 4xx counts as answered: the rollback does not look for machines again', async () => {
    const r = rig();
    r.world.on('CreateFleet', async () => {
      throw awsError('UnauthorizedOperation', 'You are not authorized to perform: ec2:CreateFleet');
    });
    await expect(runStart(r, { count: '2' })).rejects.toThrow(/not authorized/);
    expect([...r.state.resources.launchedNames].sort()).toEqual([...r.state.resources.launchingNames].sort());
    expect(r.state.resources.launchedNames).toHaveLength(2);
    // One look by label in the rollback, none after.
    expect(r.world.calls.filter((c) => c.command === 'DescribeInstances' && c.input.Filters)).toHaveLength(1);
    expectNothingLeft(r);
  });

  it('fills missing spot capacity with on-demand, for the missing count only', async () => {
    const r = rig();
    r.world.fleet = (req, call) => {
      if (call === 1)
        return {
          launch: [{ type: 'c6i.large', market: 'spot' }],
          errors: [{ code: 'InsufficientInstanceCapacity', type: 'c7i.large', market: 'spot' }],
        };
      return launchAllAsked(req);
    };
    const res = await runStart(r, { count: '3' });
    const fleets = r.world.fleetsAccepted.map((c) => c.input.TargetCapacitySpecification);
    expect(fleets).toEqual([
      { TotalTargetCapacity: 3, DefaultTargetCapacityType: 'spot', SpotTargetCapacity: 3 },
      { TotalTargetCapacity: 2, DefaultTargetCapacityType: 'on-demand', OnDemandTargetCapacity: 2 },
    ]);
    expect(res.runners.map((x) => x.market).sort()).toEqual(['on-demand', 'on-demand', 'spot']);
  });

  it('treats a whole-call capacity error like per-override ones: on-demand fills in', async () => {
    const r = rig();
    r.world.fleet = (req, call) => {
      if (call === 1)
        return awsError(
          'InsufficientInstanceCapacity',
          'There is no Spot capacity available that matches your request.',
          500,
        );
      return launchAllAsked(req);
    };
    const res = await runStart(r);
    expect(
      r.world.fleetsAccepted.map(
        (c) => (c.input.TargetCapacitySpecification as { DefaultTargetCapacityType: string }).DefaultTargetCapacityType,
      ),
    ).toEqual(['spot', 'on-demand']);
    expect(res.runners.map((x) => x.market)).toEqual(['on-demand', 'on-demand']);
  });

  it('fails cleanly on missing spot capacity when the fallback is off', async () => {
    const r = rig();
    r.world.fleet = () => ({
      launch: [{ type: 'c7i.large', market: 'spot' }],
      errors: [{ code: 'InsufficientInstanceCapacity', market: 'spot' }],
    });
    await expect(runStart(r, { 'on-demand-fallback': 'false' })).rejects.toThrow(
      /Not enough spot capacity: launched 1 of 2.*on-demand-fallback: true/,
    );
    expect(r.world.fleetsAccepted.length).toBe(1);
    expectNothingLeft(r);
  });

  it('treats a non-capacity fleet error as fatal and rolls back what did launch', async () => {
    const r = rig();
    r.world.fleet = () => ({
      launch: [{ type: 'c7i.large', market: 'spot' }],
      errors: [{ code: 'InvalidParameterValue', market: 'spot' }],
    });
    await expect(runStart(r)).rejects.toThrow(/EC2 Fleet launched 1 of 2: InvalidParameterValue/);
    expect(r.world.fleetsAccepted.length).toBe(1);
    expectNothingLeft(r);
  });

  it('rolls back when CreateFleet itself fails, and stops issuing JIT configs', async () => {
    const r = rig();
    // The launch fails only once JIT configs are on their way, so the stop is observable.
    const posts = () => r.github.requests.filter((q) => q.method === 'POST').length;
    r.world.on('CreateFleet', async () => {
      while (posts() === 0) await new Promise((res) => setTimeout(res, 1));
      throw awsError('UnauthorizedOperation', 'You are not authorized to perform: ec2:CreateFleet');
    });
    await expect(runStart(r, { count: '30' })).rejects.toThrow(/not authorized.*rolled back/);
    // Some were registered while the fleet call ran, at most the 8 in flight, and each was removed.
    expect(posts()).toBeGreaterThanOrEqual(1);
    expect(posts()).toBeLessThanOrEqual(8);
    expect(r.github.requests.filter((q) => q.method === 'DELETE')).toHaveLength(posts());
    expectNothingLeft(r);
  });

  it('rolls back when a JIT config cannot be created', async () => {
    const r = rig();
    r.github.faults.jit = [null, { status: 422, body: { message: 'Validation failed' } }];
    await expect(runStart(r)).rejects.toThrow(/Validation failed/);
    expect(r.github.requests.filter((q) => q.method === 'POST')).toHaveLength(2);
    expectNothingLeft(r);
  });

  it('rolls back when storing a parameter fails', async () => {
    const r = rig();
    r.world.on('PutParameter', () => {
      throw awsError('AccessDeniedException', 'not allowed: ssm:PutParameter');
    });
    await expect(runStart(r)).rejects.toThrow(/ssm:PutParameter/);
    expectNothingLeft(r);
  });

  it('times out waiting, says what each instance was doing, and rolls back (a logical clock, no real seconds)', async () => {
    // Each of the waiter's sleeps moves the clock on by what it asked for; a tick of real time lets the fakes run.
    let t = Date.parse('2026-12-02T10:00:00Z');
    const now = () => t;
    const clockSleep = async (ms: number) => {
      t += ms;
      await tick();
    };
    const r = rig(
      {
        now,
        sleep: clockSleep,
        wait: { intervalMs: 1000, fastIntervalMs: 500, githubRetryMs: 1000, timeoutMs: 60_000 },
      },
      { machines: false }, // never online
    );
    // The machines get as far as starting their runners at the launch itself: the clock then runs free.
    const fleet = r.world.handlerOf('CreateFleet');
    r.world.on('CreateFleet', async (input, call) => {
      const out = (await fleet(input, call)) as { Instances?: { InstanceIds?: string[] }[] };
      for (const id of (out.Instances ?? []).flatMap((g) => g.InstanceIds ?? []))
        r.world.setPhase(id, 'runner-started');
      return out;
    });
    await expect(runStart(r, { count: '1' })).rejects.toThrow(
      /Timed out after 60 s waiting for 1 runner\(s\).*phase runner-started/,
    );
    expectNothingLeft(r);
  });

  it('fails fast with the reason when an instance reports a failed phase', async () => {
    const r = rig(
      { wait: { intervalMs: 5, fastIntervalMs: 5, githubRetryMs: 5, timeoutMs: 60_000 } },
      { machines: false },
    );
    const p = runStart(r, { count: '1' });
    await until(() => r.world.live().length > 0);
    const runnerGets = () =>
      r.github.requests.filter((q) => q.method === 'GET' && /\/runners\/\d+$/.test(q.path)).length;
    const before = runnerGets();
    for (const i of r.world.live()) r.world.setPhase(i.InstanceId, 'failed:ssm-read');
    await expect(p).rejects.toThrow(/will not come online.*phase failed:ssm-read/);
    // Fast means at the next instance check (every poll here), not at the 60 s timeout.
    expect(runnerGets() - before).toBeLessThanOrEqual(2);
    expectNothingLeft(r);
  });

  it('fails fast when an instance dies before its runner is online', async () => {
    const r = rig(
      { wait: { intervalMs: 5, fastIntervalMs: 5, githubRetryMs: 5, timeoutMs: 60_000 } },
      { machines: false },
    );
    const p = runStart(r, { count: '1' });
    await until(() => r.world.live().length > 0);
    for (const i of r.world.live())
      Object.assign(i, {
        State: { Name: 'terminated' },
        StateReason: {
          Code: 'Server.SpotInstanceTermination',
          Message: 'Server.SpotInstanceTermination: Spot instance termination',
        },
      });
    await expect(p).rejects.toThrow(/terminated, reason: Server.SpotInstanceTermination/);
    expectNothingLeft(r);
  });

  it('rolls back when cancelled mid-wait', async () => {
    const ac = new AbortController();
    const r = rig(
      { signal: ac.signal, wait: { intervalMs: 5, fastIntervalMs: 5, githubRetryMs: 5, timeoutMs: 60_000 } },
      { machines: false },
    );
    const p = runStart(r);
    setTimeout(() => ac.abort(new Error('received SIGINT')), 80);
    await expect(p).rejects.toThrow(/cancelled \(received SIGINT\)/);
    expectNothingLeft(r);
  });

  it('rides out a secondary rate limit and a 5xx from GitHub', async () => {
    const r = rig();
    r.github.faults.jit = [
      {
        status: 403,
        headers: { 'retry-after': '0' },
        body: { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' },
      },
    ];
    r.github.faults.get = [{ status: 502 }, { status: 503 }];
    const res = await runStart(r, { count: '1' });
    expect(res.runners).toHaveLength(1);
    expect(r.github.requests.filter((q) => q.method === 'POST')).toHaveLength(2);
  });

  it('honours the primary rate limit when the budget is nearly spent', async () => {
    const r = rig({}, { machines: false });
    r.github.rateRemaining = 1;
    r.github.rateResetSeconds = 2;
    const runnerGets = () =>
      r.github.requests.filter((q) => q.method === 'GET' && /\/runners\/\d+$/.test(q.path)).length;
    let beforeReset = 0;
    r.deps.sleep = async () => {
      // Machine and runner are ready at once: only the spent budget holds GitHub back.
      for (const i of r.world.live()) r.world.setPhase(i.InstanceId, 'listening');
      for (const x of r.github.runners.values()) x.status = 'online';
      const reset = r.deps.rate.resetEpochSeconds ?? 0;
      if (Date.now() < reset * 1000) beforeReset = Math.max(beforeReset, runnerGets());
      await new Promise((res) => setTimeout(res, 5));
    };
    await runStart(r, { count: '1' });
    expect(r.logs.join('\n')).toMatch(/GitHub rate limit nearly spent \(1 left\); pausing GitHub calls/);
    expect(beforeReset).toBe(0);
    expect(runnerGets()).toBe(1);
  });

  describe('admission control (max-running)', () => {
    const seedLive = (r: Rig) => {
      const old = new Date(Date.now() - 600_000);
      // Three live machines of other runs, and two that no longer count (on their way out, or gone).
      for (const state of ['running', 'pending', 'stopping', 'shutting-down', 'terminated'])
        r.world.addInstance('spot-runner-other-run', old, {}, { State: { Name: state } });
      // Not ours: no spot-runner:managed tag.
      r.world.addInstance(undefined, old, { Name: 'someone-elses' });
    };

    it('refuses a start that would go over the cap, with both numbers, before any mutating call', async () => {
      const r = rig();
      seedLive(r);
      await expect(runStart(r, { count: '2', 'max-running': '4' })).rejects.toThrow(
        "Input 'max-running': 3 managed machine(s) are already live in us-east-1 and this start asks for 2; 3 + 2 = 5 is over the cap of 4. Fix: wait for running jobs to finish, lower count, raise max-running, or run mode: reap if some of them are leaks",
      );
      expect(r.world.mutating()).toEqual([]);
      expect(r.github.requests.filter((q) => q.method !== 'GET')).toEqual([]);
      // Counted by tag, in the states that cost money.
      expect(r.world.calls.filter((c) => c.command === 'DescribeInstances').map((c) => c.input)).toContainEqual({
        Filters: [
          { Name: 'tag:spot-runner:managed', Values: ['true'] },
          { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping'] },
        ],
        MaxResults: 1000,
      });
    });

    it('admits a start that fits exactly, and says so', async () => {
      const r = rig();
      seedLive(r);
      const res = await runStart(r, { count: '2', 'max-running': '5' });
      expect(res.runners).toHaveLength(2);
      expect(r.logs).toContain('Admitted: 3 managed machine(s) live in us-east-1 + 2 ≤ max-running 5');
    });

    it('without max-running, counts nothing', async () => {
      const r = rig();
      seedLive(r);
      await runStart(r, { count: '2' });
      expect(
        r.world.calls.filter(
          (c) => c.command === 'DescribeInstances' && JSON.stringify(c.input).includes(TAGS.managed),
        ),
      ).toEqual([]);
    });
  });

  it('prints the plan and creates nothing on a dry run', async () => {
    const r = rig();
    const res = await runStart(r, { 'dry-run': 'true' });
    expect(r.world.mutating()).toHaveLength(0);
    expect(r.github.requests.filter((q) => q.method !== 'GET')).toHaveLength(0);
    const plan = res.plan as { fleet: Record<string, unknown>; userData: string; tags: Record<string, string> };
    expect(plan.fleet.Type).toBe('instant');
    expect(plan.userData).toContain('#!/bin/bash');
    expect(plan.tags[TAGS.label]).toBe(res.label);
  });
});

/** Sets tags on a world instance as the machine's own CreateTags would (the array replaced, as setPhase does). */
function tagInstance(r: Rig, id: string, tags: Record<string, string>) {
  const i = r.world.instances.get(id);
  if (!i) throw new Error(`no instance ${id}`);
  i.Tags = i.Tags.filter((t) => !(t.Key in tags)).concat(Object.entries(tags).map(([Key, Value]) => ({ Key, Value })));
}

/** The ids each accepted CreateFleet launched, in answer order. */
function onLaunch(r: Rig, each: (ids: string[]) => void) {
  const fleet = r.world.handlerOf('CreateFleet');
  r.world.on('CreateFleet', async (input, call) => {
    const out = (await fleet(input, call)) as { Instances?: { InstanceIds?: string[] }[] };
    each((out.Instances ?? []).flatMap((g) => g.InstanceIds ?? []));
    return out;
  });
}

describe('start: the rows it reports, and what it logs', () => {
  it("reads what each machine wrote about itself from the waiter's last look, and asks EC2 again only for what is missing", async () => {
    const r = rig();
    const launched: string[] = [];
    // The first machine tags its version and fingerprint before it listens; the second's tags
    // reach EC2's listings only later (the by-id look after the wait is the first to see them).
    onLaunch(r, (ids) => {
      launched.push(...ids);
      const [first] = ids;
      if (first) tagInstance(r, first, { [TAGS.runnerVersion]: '2.330.0', [TAGS.fingerprint]: 'fp-first' });
    });
    const describe = r.world.handlerOf('DescribeInstances');
    const byIds: string[][] = [];
    r.world.on('DescribeInstances', async (input, call) => {
      const ids = input.InstanceIds as string[] | undefined;
      if (ids && !input.Filters) {
        byIds.push([...ids]);
        const second = launched[1];
        if (second) tagInstance(r, second, { [TAGS.runnerVersion]: '2.331.0', [TAGS.fingerprint]: 'fp-second' });
      }
      return describe(input, call);
    });
    const res = await runStart(r, { count: '2' });
    expect(launched).toHaveLength(2);
    const row = (id: string | undefined) => res.runners.find((x) => x.instanceId === id);
    expect([row(launched[0])?.runnerVersion, row(launched[0])?.fingerprint]).toEqual(['2.330.0', 'fp-first']);
    expect([row(launched[1])?.runnerVersion, row(launched[1])?.fingerprint]).toEqual(['2.331.0', 'fp-second']);
    // One look by id, for both machines.
    expect(byIds.map((x) => [...x].sort())).toEqual([[...launched].sort()]);
    expect(res.dryRun).toBe(false);
  });

  it('keeps what the waiter saw when every machine wrote it: no look by id (which would see newer tags here)', async () => {
    const r = rig();
    onLaunch(r, (ids) => {
      for (const id of ids) tagInstance(r, id, { [TAGS.runnerVersion]: '2.330.0', [TAGS.fingerprint]: `fp-${id}` });
    });
    const describe = r.world.handlerOf('DescribeInstances');
    let byIdLooks = 0;
    r.world.on('DescribeInstances', async (input, call) => {
      const ids = input.InstanceIds as string[] | undefined;
      if (ids && !input.Filters) {
        byIdLooks++;
        for (const id of ids) tagInstance(r, id, { [TAGS.runnerVersion]: '9.9.9' });
      }
      return describe(input, call);
    });
    const res = await runStart(r, { count: '2' });
    expect(res.runners.map((x) => x.runnerVersion)).toEqual(['2.330.0', '2.330.0']);
    expect(res.runners.map((x) => x.fingerprint)).toEqual(res.runners.map((x) => `fp-${x.instanceId}`));
    expect(byIdLooks).toBe(0);
  });

  // One rig per case: a second rig's GitHub stand-in in one test would answer behind the first's.
  const ZONES = { count: '1', 'subnet-ids': 'subnet-00000000000000001, subnet-00000000000000002' };
  const zonedRig = () => {
    const r = rig();
    r.world.subnets.set('subnet-00000000000000001', 'us-east-1c');
    r.world.subnets.set('subnet-00000000000000002', 'us-east-1b');
    return r;
  };

  it("takes a machine's zone from its subnet when the fleet's answer names none, and prices it in that zone", async () => {
    const r = zonedRig();
    // c7i.large is not offered in the first subnet's zone: EC2 places it in the second.
    r.world.notOffered.add('c7i.large@us-east-1c');
    r.world.spotHistory.set('c7i.large@us-east-1b', [{ at: new Date(0), price: 0.041 }]);
    r.world.fleet = () => ({ launch: [{ type: 'c7i.large', market: 'spot' }] });
    const res = await runStart(r, ZONES);
    expect(res.runners.map((x) => [x.availabilityZone, x.spotPrice])).toEqual([['us-east-1b', '0.0410']]);
  });

  it("takes a machine's zone from the fleet's answer when it names one", async () => {
    const r = zonedRig();
    const fleet = r.world.handlerOf('CreateFleet');
    r.world.on('CreateFleet', async (input, call) => {
      const out = (await fleet(input, call)) as {
        Instances?: { LaunchTemplateAndOverrides?: { Overrides?: Record<string, unknown> } }[];
      };
      for (const g of out.Instances ?? [])
        Object.assign(g.LaunchTemplateAndOverrides?.Overrides ?? {}, { AvailabilityZone: 'us-east-1d' });
      return out;
    });
    const res = await runStart(r, ZONES);
    expect(res.runners.map((x) => x.availabilityZone)).toEqual(['us-east-1d']);
  });

  it('leaves the zone empty without subnets: the answer names neither subnet nor zone', async () => {
    const res = await runStart(rig(), { count: '1' });
    expect(res.runners.map((x) => x.availabilityZone)).toEqual(['']);
  });

  it('asks spot prices for the spot machines only; an on-demand machine has none', async () => {
    const r = rig();
    r.world.fleet = (req, call) => {
      if (call === 1)
        return {
          launch: [{ type: 'c6i.large', market: 'spot' }],
          errors: [{ code: 'InsufficientInstanceCapacity', type: 'c7i.large', market: 'spot' }],
        };
      return launchAllAsked(req);
    };
    const res = await runStart(r, { count: '2' });
    expect(res.runners.map((x) => [x.instanceType, x.market, x.spotPrice])).toEqual([
      ['c6i.large', 'spot', '0.0300'],
      ['c7i.large', 'on-demand', undefined],
    ]);
    expect(
      r.world.calls.filter((c) => c.command === 'DescribeSpotPriceHistory').map((c) => c.input.InstanceTypes),
    ).toEqual([['c6i.large']]);
    expect(r.logs).toContain(
      `Fleet launched 2: ${res.runners.map((x) => `${x.instanceId} ${x.instanceType} ${x.market}`).join(', ')}`,
    );
  });

  it("asks GitHub for each runner in the default group, with the run's labels, and tags each parameter managed", async () => {
    const r = rig();
    const res = await runStart(r, { count: '2' });
    const bodies = r.github.requests.filter((q) => q.method === 'POST').map((q) => q.body as Record<string, unknown>);
    expect(bodies.map((b) => b.runner_group_id)).toEqual([1, 1]);
    for (const b of bodies) expect(b.labels).toEqual(res.labels);
    expect([...r.world.params.values()].map((p) => p.tags[TAGS.managed])).toEqual(['true', 'true']);
  });

  it('stops issuing JIT configs at the first refusal, and throws that first one', async () => {
    const r = rig();
    r.github.faults.jit = [
      { status: 422, body: { message: 'first refusal' } },
      { status: 422, body: { message: 'second refusal' } },
    ];
    const err = await runStart(r, { count: '30' }).then(
      () => new Error('expected start to fail'),
      (e: unknown) => e as Error,
    );
    expect(err.message).toMatch(/first refusal/);
    expect(err.message).not.toMatch(/second refusal/);
    // At most the 8 in flight when the first refusal came back.
    const posts = r.github.requests.filter((q) => q.method === 'POST').length;
    expect(posts).toBeGreaterThanOrEqual(2);
    expect(posts).toBeLessThanOrEqual(8);
    expectNothingLeft(r);
  });

  it('logs the failure and each rollback line, and puts them all in its error', async () => {
    const r = rig();
    r.world.on('PutParameter', () => {
      throw awsError('AccessDeniedException', 'not allowed: ssm:PutParameter');
    });
    const err = await runStart(r).then(
      () => new Error('expected start to fail'),
      (e: unknown) => e as Error,
    );
    const ids = [...r.world.instances.keys()];
    expect(ids).toHaveLength(2);
    const rollback = [
      `terminated 2 instance(s): ${ids.join(', ')}`,
      'deleted 2 runner(s), 0 parameter(s), 1 launch template(s)',
    ];
    expect(r.logs).toContain('Start failed: not allowed: ssm:PutParameter. Rolling back everything it created.');
    expect(r.logs.filter((l) => l.startsWith('Rollback: '))).toEqual(rollback.map((l) => `Rollback: ${l}`));
    expect(err.message).toBe(`not allowed: ssm:PutParameter — rolled back: ${rollback.join('; ')}`);
  });
});
