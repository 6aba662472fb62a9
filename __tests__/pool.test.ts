// The warm pool's pure rules: config, the settings hash, the machine states, reap's pool rules,
// and the claim against the in-memory world (which keeps SSM's compare-and-set and lost answers).
import { describe, expect, it } from '@jest/globals';
import type { InstanceInfo } from '../src/aws/instances.js';
import type { PoolConfig } from '../src/config.js';
import { findInstances, findPoolInstances, planReap, type Rules } from '../src/modes/reap.js';
import { claim, claimNext, consumedMarker, poolMachineState, poolSettings, readyMachines } from '../src/pool.js';
import { TAGS } from '../src/tags.js';
import { config, rig, runStart, startConfig } from '../test/fakes/harness.js';
import { FakeWorld } from '../test/fakes/world.js';
import { offlineGitHub } from '../test/fakes/github.js';

// One GitHub stand-in per test: the last one's nock interceptors go after each.
offlineGitHub();

const NOW = Date.parse('2026-12-01T12:00:00Z');
const MIN = 60_000;
const rules: Rules = { now: NOW, maxAgeMinutes: 390, nuke: false, graceMinutes: 10 };

/** The tags a filled, ready machine of pool `build` carries. */
const pooledTags = (hash: string) => ({
  [TAGS.managed]: 'true',
  [TAGS.label]: 'spot-runner-fill-1',
  [TAGS.pool]: 'build',
  [TAGS.poolHash]: hash,
  [TAGS.phase]: 'pooled',
});

function machine(
  id: string,
  o: {
    state?: string;
    pool?: string;
    hash?: string;
    phase?: string;
    launchedMinAgo?: number;
    expiresInMin?: number;
    label?: string;
  } = {},
): InstanceInfo {
  const tags: Record<string, string> = {
    [TAGS.managed]: 'true',
    [TAGS.label]: o.label ?? 'spot-runner-fill-1',
    [TAGS.pool]: o.pool ?? 'build',
    [TAGS.poolHash]: o.hash ?? 'aaaa',
    [TAGS.phase]: o.phase ?? 'pooled',
    [TAGS.expiresAt]: new Date(NOW + (o.expiresInMin ?? 600) * MIN).toISOString(),
  };
  return {
    instanceId: id,
    state: o.state ?? 'stopped',
    instanceType: 'c7i.large',
    availabilityZone: 'us-east-1a',
    market: 'on-demand',
    launchTime: new Date(NOW - (o.launchedMinAgo ?? 60) * MIN),
    tags,
  };
}

describe('pool inputs', () => {
  it('mode pool needs a pool name and forces on-demand', () => {
    expect(() =>
      config({ mode: 'pool', 'github-token': 't', image: 'ami-0123456789abcdef0', 'instance-types': 'c7i.large' }),
    ).toThrow(/Input 'pool': mode pool needs the name/);
    const c = config({
      mode: 'pool',
      pool: 'build',
      size: '4',
      'github-token': 't',
      image: 'ami-0123456789abcdef0',
      'instance-types': 'c7i.large',
      market: 'spot',
    }) as PoolConfig;
    expect(c.mode).toBe('pool');
    expect([c.pool, c.size, c.poolTtlMinutes, c.market]).toEqual(['build', 4, 1440, 'on-demand']);
  });
  it('start takes an optional pool; a bad name names the input and the fix', () => {
    expect(startConfig({ pool: 'build' }).pool).toBe('build');
    expect(startConfig({}).pool).toBeUndefined();
    expect(() => startConfig({ pool: '-x' })).toThrow(/Input 'pool'.*Fix: use 1-32 lower-case/s);
  });
});

describe('settings hash', () => {
  const base = startConfig({ 'subnet-ids': 'subnet-0000000000000000a' });
  const image = { id: 'ami-0123456789abcdef0' };
  it('is stable for the same settings and changes with the image, types, subnets and user-data', () => {
    const h = poolSettings(base, image, 'build').hash;
    expect(poolSettings({ ...base }, { ...image }, 'build').hash).toBe(h);
    expect(poolSettings(base, { id: 'ami-0fffffffffffffff0' }, 'build').hash).not.toBe(h);
    expect(poolSettings({ ...base, instanceTypes: ['c6i.large'] }, image, 'build').hash).not.toBe(h);
    expect(poolSettings({ ...base, subnetIds: ['subnet-0000000000000000b'] }, image, 'build').hash).not.toBe(h);
    expect(poolSettings({ ...base, preRunnerScript: 'apt-get install -y jq' }, image, 'build').hash).not.toBe(h);
    expect(poolSettings({ ...base, idleTimeoutMinutes: base.idleTimeoutMinutes + 1 }, image, 'build').hash).not.toBe(h);
  });
  it("renders the pool's user-data: SR_POOL set, the pool's fixed parameter prefix", () => {
    const s = poolSettings(base, image, 'build');
    expect(s.userData).toContain("SR_POOL='build'");
    expect(s.userData).toContain("SR_PARAM_PREFIX='/spot-runner/jit/pool-build'");
  });
});

describe('pool machine states', () => {
  it.each([
    ['ready', machine('i-00000000000000001'), 'ready'],
    ['stale hash', machine('i-00000000000000001', { hash: 'bbbb' }), 'stale'],
    [
      'stopped without the checkpoint',
      machine('i-00000000000000001', { phase: 'failed:pre-runner-script-failed:exit-1' }),
      'failed',
    ],
    ['still booting', machine('i-00000000000000001', { state: 'running', phase: 'booting' }), 'filling'],
    ['claimed', machine('i-00000000000000001', { state: 'running', pool: 'claimed:build' }), 'claimed'],
  ])('%s', (_w, m, want) => expect(poolMachineState(m, 'aaaa')).toBe(want));
});

describe('reap: pool rules', () => {
  it('terminates stopped pool machines past the pool TTL, with a stale hash, or stopped before the checkpoint; each needs a claim first', () => {
    const inv = [
      machine('i-0000000000000000a', { expiresInMin: -1 }),
      machine('i-0000000000000000b', { hash: 'old0', launchedMinAgo: 120 }),
      machine('i-0000000000000000c', { launchedMinAgo: 5 }), // the newest: its hash is current
      machine('i-0000000000000000d', { phase: 'booting', launchedMinAgo: 30 }),
      machine('i-0000000000000000e'),
    ];
    const found = findPoolInstances(inv, [], rules);
    expect(found.map((f) => f.id)).toEqual(['i-0000000000000000a', 'i-0000000000000000b', 'i-0000000000000000d']);
    expect(found.every((f) => f.needsClaim)).toBe(true);
    expect(found[0]?.reason).toMatch(/TTL passed/);
    expect(found[1]?.reason).toMatch(/settings hash old0 is stale/);
    expect(found[2]?.reason).toMatch(/without reaching the checkpoint/);
  });
  it("never touches a claimed machine running a job (ordinary rules: its start's expires-at), nor a waiting one through the ordinary rules", () => {
    const running = machine('i-0000000000000000f', {
      state: 'running',
      pool: 'claimed:build',
      phase: 'job-started',
      label: 'spot-runner-42-1-abc-0001',
      expiresInMin: 300,
      launchedMinAgo: 2000,
    });
    const waiting = machine('i-00000000000000010', { expiresInMin: -5 });
    expect(findPoolInstances([running, waiting], [], rules).map((f) => f.id)).toEqual(['i-00000000000000010']);
    // The ordinary rules skip the waiting machine (it needs the claim) and keep the running one.
    expect(findInstances([running, waiting], rules)).toEqual([]);
  });
  it('a machine claimed longer than the grace period ago but never started goes; a fresh claim is left to its start', () => {
    const old = machine('i-00000000000000011');
    const fresh = machine('i-00000000000000012');
    const params = [
      { name: '/spot-runner/jit/pool-build/i-00000000000000011', lastModified: new Date(NOW - 30 * MIN) },
      { name: '/spot-runner/jit/pool-build/i-00000000000000012', lastModified: new Date(NOW - 1 * MIN) },
    ];
    const found = findPoolInstances([old, fresh], params, rules);
    expect(found.map((f) => [f.id, f.needsClaim ?? false])).toEqual([['i-00000000000000011', false]]);
  });
  it('orphaned claims (their machine is gone) are removed', () => {
    const plan = planReap(
      {
        instances: [],
        parameters: [
          { name: '/spot-runner/jit/pool-build/i-00000000000000013', lastModified: new Date(NOW - 60 * MIN) },
        ],
        templates: [],
        runners: [],
      },
      rules,
    );
    expect(plan.parameters.map((p) => [p.id, p.reason])).toEqual([
      ['/spot-runner/jit/pool-build/i-00000000000000013', 'its instance i-00000000000000013 is gone'],
    ]);
  });
});

describe('the claim', () => {
  it("one winner among claimers of one machine, even when the winner's answer was lost", async () => {
    // losePutEvery 1: every PutParameter takes effect and its answer is lost (the retry meets ParameterAlreadyExists).
    const w = new FakeWorld({ world: { losePutEvery: 1, putPerSecond: Infinity } });
    const aws = w.clients();
    const name = '/spot-runner/jit/pool-build/i-00000000000000014';
    const first = await claim(aws, name, 'Zmlyc3Qtaml0', {}, { secret: true });
    const second = await claim(aws, name, 'c2Vjb25kLWppdA', {}, { secret: true });
    expect([first, second]).toEqual(['won', 'lost']);
    expect(w.params.get(name)?.value).toBe('Zmlyc3Qtaml0');
    expect(w.calls.filter((c) => c.command === 'PutParameter').map((c) => c.input.Type)).toContain('SecureString');
  });

  const poolWorld = () => {
    const w = new FakeWorld({ world: { instanceLooks: 0, putPerSecond: Infinity } });
    const base = pooledTags('aaaa');
    const add = (tags: Record<string, string>, state: string) =>
      w.addInstance(undefined, new Date(), { ...base, ...tags }, { State: { Name: state } });
    const recorded: { params: string[]; instances: string[] } = { params: [], instances: [] };
    const deps = {
      aws: w.clients(),
      log: () => undefined,
      onClaimParameter: (n: string) => recorded.params.push(n),
      onInstance: (id: string) => recorded.instances.push(id),
    };
    return { w, add, recorded, deps };
  };

  it('claimNext claims a ready machine of its hash with the JIT config, starts it, retags it, sets shutdown behaviour terminate', async () => {
    const { w, add, recorded, deps } = poolWorld();
    const ready = add({}, 'stopped');
    add({ [TAGS.poolHash]: 'bbbb' }, 'stopped');
    add({ [TAGS.phase]: 'booting' }, 'running');
    const listed = [...w.instances.values()].map((i) => ({
      instanceId: i.InstanceId,
      state: i.State.Name,
      instanceType: 'c7i.large',
      availabilityZone: 'us-east-1a',
      tags: Object.fromEntries(i.Tags.map((t) => [t.Key, t.Value])),
    })) as InstanceInfo[];
    const queue = readyMachines(listed, 'aaaa').ready;
    expect(queue.map((i) => i.instanceId)).toEqual([ready]);
    const label = 'spot-runner-42-1-abc-00000001';
    const got = await claimNext('build', queue, 'aml0LWNvbmZpZw==', () => ({}), { [TAGS.label]: label }, deps);
    expect(got.claimed?.instanceId).toBe(ready);
    expect(got.claimed?.claimName).toBe(`/spot-runner/jit/pool-build/${ready}`);
    // The claim is the JIT parameter the machine reads on resume: one PutParameter.
    expect(w.params.get(`/spot-runner/jit/pool-build/${ready}`)?.value).toBe('aml0LWNvbmZpZw==');
    expect(w.count('PutParameter')).toBe(1);
    const i = w.instances.get(ready);
    expect(i?.State.Name).toBe('pending');
    expect(i?.Tags.find((t) => t.Key === TAGS.label)?.Value).toBe(label);
    expect(i?.Tags.find((t) => t.Key === TAGS.pool)?.Value).toBe('claimed:build');
    expect(w.shutdownBehaviour.get(ready)).toBe('terminate');
    // The shutdown behaviour is set before the machine starts: it never runs able to stop again.
    const order = w.calls
      .map((c) => c.command)
      .filter((c) => ['ModifyInstanceAttribute', 'StartInstances', 'PutParameter', 'CreateTags'].includes(c));
    // Started first, claimed while it resumes (the claim is what makes it this start's), retagged once won.
    expect(order).toEqual(['ModifyInstanceAttribute', 'StartInstances', 'PutParameter', 'CreateTags']);
    expect(recorded).toEqual({ params: [`/spot-runner/jit/pool-build/${ready}`], instances: [ready] });
  });

  it('a machine another caller already started is theirs: no claim, no retag, no record, the next one is tried', async () => {
    const { w, add, recorded, deps } = poolWorld();
    // Listed while stopped; since then another start started it (StartInstances now says PreviousState running).
    const m = add({}, 'stopped');
    const listed = machine(m);
    (w.instances.get(m) as { State: { Name: string } }).State = { Name: 'running' };
    const got = await claimNext(
      'build',
      [listed],
      'bGF0ZS1qaXQ=',
      () => ({}),
      { [TAGS.label]: 'spot-runner-late' },
      deps,
    );
    expect(got).toEqual({});
    expect(w.count('StartInstances')).toBe(1);
    expect(w.count('PutParameter')).toBe(0);
    expect(w.params.has(`/spot-runner/jit/pool-build/${m}`)).toBe(false);
    expect(w.instances.get(m)?.Tags.find((t) => t.Key === TAGS.label)?.Value).toBe('spot-runner-fill-1');
    expect(recorded).toEqual({ params: [], instances: [] });
  });

  it('a StartInstances the SDK retried that finds the machine pending may have started it itself: it claims it (the claim decides)', async () => {
    const { w, add, recorded, deps } = poolWorld();
    const m = add({}, 'stopped');
    const start = w.handlerOf('StartInstances');
    w.on('StartInstances', async (input, n) => {
      // The first attempt started it and its answer was lost; the retry sees it pending.
      const first = (await start(input, n)) as { StartingInstances: { PreviousState: { Name: string } }[] };
      const again = (await start(input, n)) as typeof first;
      expect(first.StartingInstances[0]?.PreviousState.Name).toBe('stopped');
      return { ...again, $metadata: { attempts: 2 } };
    });
    const got = await claimNext('build', [machine(m)], 'bWluZQ==', () => ({}), {}, deps);
    expect(got.claimed?.instanceId).toBe(m);
    expect(recorded.instances).toEqual([m]);
    // Without the retry, the same answer (pending) is another start's machine.
    const { w: w2, add: add2, deps: deps2 } = poolWorld();
    const m2 = add2({}, 'stopped');
    const start2 = w2.handlerOf('StartInstances');
    w2.on('StartInstances', async (input, n) => {
      await start2(input, n);
      return start2(input, n);
    });
    expect(await claimNext('build', [machine(m2)], 'bWluZQ==', () => ({}), {}, deps2)).toEqual({});
  });

  it('the mark a resumed machine leaves is consumed: + the SHA-256 of the config it read (bootstrap.sh writes the same)', () => {
    // printf '%s' cG9vbC1qaXQtY29uZmln | sha256sum
    expect(consumedMarker('cG9vbC1qaXQtY29uZmln')).toBe(
      'consumed:406746f15e088b76c87d2632b0e64afa129e70b8bdba4bc8e79810df7176e7c7',
    );
  });

  it("a claim whose answer was lost finds the machine's consumed mark for its own config: won; another's mark: lost", async () => {
    const w = new FakeWorld({ world: { putPerSecond: Infinity } });
    const aws = w.clients();
    const name = '/spot-runner/jit/pool-build/i-00000000000000015';
    // As after: the put took effect, its answer was lost, the machine read it and overwrote it with its mark.
    w.params.set(name, { value: consumedMarker('bWluZQ=='), tags: {}, lastModified: new Date() });
    expect(await claim(aws, name, 'bWluZQ==', {}, { secret: true })).toBe('won');
    expect(await claim(aws, name, 'b3RoZXI=', {}, { secret: true })).toBe('lost');
    // A consumed name is never free again: a claim can only win a machine that has read nobody's config.
    expect(w.params.get(name)?.value).toBe(consumedMarker('bWluZQ=='));
  });

  it('a machine it started but could not claim (the claim failed) is claimed for removal, recorded for teardown, and the failure thrown', async () => {
    const { w, add, recorded, deps } = poolWorld();
    const m = add({}, 'stopped');
    const put = w.handlerOf('PutParameter');
    w.on('PutParameter', (input, n) => {
      // The start's claim fails; the removal claim (the second put) goes through.
      if (n === 1) throw Object.assign(new Error('no access'), { name: 'AccessDeniedException' });
      return put(input, n);
    });
    await expect(claimNext('build', [machine(m)], 'bWluZQ==', () => ({}), {}, deps)).rejects.toThrow('no access');
    expect(w.instances.get(m)?.State.Name).toBe('pending');
    expect(recorded).toEqual({ params: [`/spot-runner/jit/pool-build/${m}`], instances: [m] });
    // The removal claim is no JIT config: a machine that reads it powers off (jit-config-malformed).
    expect(w.params.get(`/spot-runner/jit/pool-build/${m}`)?.value).toMatch(/^claim:spot-runner-start\//);
  });

  it('a machine started while its JIT config failed (GitHub) is claimed for removal too', async () => {
    const { w, add, recorded, deps } = poolWorld();
    const m = add({}, 'stopped');
    const jit = Promise.reject(new Error('GitHub said 422'));
    await expect(claimNext('build', [machine(m)], jit, () => ({}), {}, deps)).rejects.toThrow('GitHub said 422');
    expect(recorded.instances).toEqual([m]);
    expect(w.params.get(`/spot-runner/jit/pool-build/${m}`)?.value).toMatch(/^claim:/);
  });

  it("a lost claim is not recorded (the name is another start's JIT parameter), and the next machine is tried", async () => {
    const { w, add, recorded, deps } = poolWorld();
    const a = add({}, 'stopped');
    const b = add({}, 'stopped');
    const info = (id: string) => machine(id);
    expect(await claim(w.clients(), `/spot-runner/jit/pool-build/${a}`, 'b3RoZXI=', {}, { secret: true })).toBe('won');
    const got = await claimNext('build', [info(a), info(b)], 'bWluZQ==', () => ({}), {}, deps);
    expect(got.claimed?.instanceId).toBe(b);
    expect(recorded.params).toEqual([`/spot-runner/jit/pool-build/${b}`]);
    expect(recorded.instances).toEqual([b]);
    // It started a too (it was stopped), but a's claim is another's: a is theirs, not retagged.
    expect(w.instances.get(a)?.Tags.find((t) => t.Key === TAGS.pool)?.Value).not.toBe('claimed:build');
    expect(w.params.get(`/spot-runner/jit/pool-build/${a}`)?.value).toBe('b3RoZXI=');
  });
});

describe('start with a pool, in the unit world', () => {
  it('resumes the ready machines of its hash, launches the shortfall cold', async () => {
    const r = rig();
    const cfg = startConfig({ count: '3', pool: 'build' });
    const hash = poolSettings(cfg, { id: 'ami-0123456789abcdef0' }, 'build').hash;
    const base = pooledTags(hash);
    const a = r.world.addInstance(undefined, new Date(), base, { State: { Name: 'stopped' } });
    const b = r.world.addInstance(undefined, new Date(), base, { State: { Name: 'stopped' } });
    const res = await runStart(r, { count: '3', pool: 'build' });
    expect(
      res.runners
        .filter((x) => x.fromPool === 'build')
        .map((x) => x.instanceId)
        .sort(),
    ).toEqual([a, b].sort());
    expect(res.runners.filter((x) => !x.fromPool)).toHaveLength(1);
    // Their JIT configs went to the pool's prefix (their user-data was rendered for the pool).
    expect([...r.world.params.keys()].filter((n) => n.startsWith('/spot-runner/jit/pool-build/')).sort()).toEqual(
      [`/spot-runner/jit/pool-build/${a}`, `/spot-runner/jit/pool-build/${b}`].sort(),
    );
    // One claim, one StartInstances per machine: each starts as soon as its own claim is won.
    expect(r.world.count('StartInstances')).toBe(2);
    expect(r.world.count('PutParameter')).toBe(3);
    expect(r.world.shutdownBehaviour.get(a)).toBe('terminate');
    // One cold fleet for the one missing.
    expect(
      r.world.fleetsAccepted.map(
        (f) => (f.input.TargetCapacitySpecification as { TotalTargetCapacity: number }).TotalTargetCapacity,
      ),
    ).toEqual([1]);
    expect(r.state.resources.parameterNames).toEqual(
      expect.arrayContaining([`/spot-runner/jit/pool-build/${a}`, `/spot-runner/jit/pool-build/${b}`]),
    );
  });

  it("records a pool runner's name before it asks GitHub for it", async () => {
    const r = rig();
    const cfg = startConfig({ count: '1', pool: 'build' });
    const hash = poolSettings(cfg, { id: 'ami-0123456789abcdef0' }, 'build').hash;
    r.world.addInstance(undefined, new Date(), pooledTags(hash), { State: { Name: 'stopped' } });
    const recordedFirst: boolean[] = [];
    r.github.onCreate = (x) => recordedFirst.push(r.state.resources.runnerNames.includes(x.name));
    const res = await runStart(r, { count: '1', pool: 'build' });
    expect(res.runners.map((x) => x.fromPool)).toEqual(['build']);
    expect(recordedFirst).toEqual([true]);
  });

  it('a start the pool serves whole reads no subnets and no capacity pools (fewer EC2 reads); a shortfall reads them before its cold launch', async () => {
    const r = rig();
    const inputs = { count: '1', pool: 'build', 'subnet-ids': 'subnet-00000000000000001' };
    const cfg = startConfig(inputs);
    const hash = poolSettings(cfg, { id: 'ami-0123456789abcdef0' }, 'build').hash;
    const base = pooledTags(hash);
    r.world.addInstance(undefined, new Date(), base, { State: { Name: 'stopped' } });
    const res = await runStart(r, inputs);
    expect(res.runners.map((x) => x.fromPool)).toEqual(['build']);
    expect(r.world.count('DescribeSubnets')).toBe(0);
    expect(r.world.count('DescribeInstanceTypeOfferings')).toBe(0);
    // Now the pool is empty: the cold machine's subnets and pools are read, before its fleet.
    const cold = await runStart(r, inputs);
    expect(cold.runners.map((x) => x.fromPool)).toEqual([undefined]);
    const names = r.world.calls.map((c) => c.command);
    expect(names).toContain('DescribeSubnets');
    expect(names.indexOf('DescribeInstanceTypeOfferings')).toBeLessThan(names.indexOf('CreateFleet'));
  });

  it('a start whose runners never come online terminates the claimed pool machines too, and removes their claims', async () => {
    const r = rig({}, { machines: false });
    const cfg = startConfig({ count: '1', pool: 'build' });
    const hash = poolSettings(cfg, { id: 'ami-0123456789abcdef0' }, 'build').hash;
    const a = r.world.addInstance(undefined, new Date(), pooledTags(hash), { State: { Name: 'stopped' } });
    await expect(runStart(r, { count: '1', pool: 'build' })).rejects.toThrow(/rolled back/);
    expect(r.world.instances.get(a)?.State.Name).toMatch(/shutting-down|terminated/);
    expect(r.world.params.has(`/spot-runner/jit/pool-build/${a}`)).toBe(false);
  });
});

describe('start with a pool: what it logs and reports', () => {
  const ready = (r: ReturnType<typeof rig>, count: string, extra: Record<string, string> = {}) => {
    const cfg = startConfig({ count, pool: 'build' });
    const hash = poolSettings(cfg, { id: 'ami-0123456789abcdef0' }, 'build').hash;
    return r.world.addInstance(
      undefined,
      new Date(),
      { ...pooledTags(hash), ...extra },
      { State: { Name: 'stopped' } },
    );
  };

  it('logs what is ready and what it resumed, reports pool rows as on-demand, and records the machines', async () => {
    const r = rig();
    const a = ready(r, '3');
    const b = ready(r, '3');
    // Built from other settings: counted as stale, never taken.
    r.world.addInstance(undefined, new Date(), pooledTags('0000000000000000'), { State: { Name: 'stopped' } });
    const res = await runStart(r, { count: '3', pool: 'build' });
    expect(r.logs).toContain('Pool build: 2 ready (1 built from other settings: a fill or reap removes them)');
    // The claims go in random order.
    const resumed = r.logs.filter((l) => l.startsWith('Pool build: resumed'));
    expect(resumed).toHaveLength(1);
    expect([
      `Pool build: resumed 2 of 3: ${a}, ${b}; 1 cold`,
      `Pool build: resumed 2 of 3: ${b}, ${a}; 1 cold`,
    ]).toContain(resumed[0]);
    const pooledRows = res.runners.filter((x) => x.fromPool === 'build');
    expect(pooledRows.map((x) => x.market)).toEqual(['on-demand', 'on-demand']);
    expect(r.state.resources.instanceIds).toEqual(expect.arrayContaining([a, b]));
  });

  it('a start the pool serves whole makes no template and no fleet, and records no launch', async () => {
    const r = rig();
    const a = ready(r, '1');
    const res = await runStart(r, { count: '1', pool: 'build' });
    expect(res.runners.map((x) => x.instanceId)).toEqual([a]);
    expect(r.logs).toContain('Pool build: 1 ready');
    expect(r.logs).toContain(`Pool build: resumed 1 of 1: ${a}; 0 cold`);
    expect(r.world.count('CreateLaunchTemplate')).toBe(0);
    expect(r.world.count('CreateFleet')).toBe(0);
    expect(r.state.resources.launchingNames).toEqual([]);
    expect(r.state.resources.launchedNames).toEqual([]);
    expect(r.state.resources.launchTemplateIds).toEqual([]);
    expect(r.logs.filter((l) => l.startsWith('Fleet launched'))).toEqual([]);
  });

  it('an empty pool logs none ready and resumed none', async () => {
    const r = rig();
    const res = await runStart(r, { count: '1', pool: 'build' });
    expect(res.runners.map((x) => x.fromPool)).toEqual([undefined]);
    expect(r.logs).toContain('Pool build: 0 ready');
    expect(r.logs).toContain('Pool build: resumed 0 of 1; 1 cold');
  });

  it('a runner whose machine another start claimed keeps its JIT config for the cold launch: one registration per runner', async () => {
    const r = rig();
    const a = ready(r, '2');
    const b = ready(r, '2');
    // Another start holds b's claim already (its JIT parameter exists).
    r.world.addParameter(`/spot-runner/jit/pool-build/${b}`, new Date(), 'their-jit-config');
    const res = await runStart(r, { count: '2', pool: 'build' });
    expect(res.runners.filter((x) => x.fromPool === 'build').map((x) => x.instanceId)).toEqual([a]);
    expect(res.runners.filter((x) => !x.fromPool)).toHaveLength(1);
    expect(r.github.requests.filter((q) => q.method === 'POST')).toHaveLength(2);
    expect(r.world.params.get(`/spot-runner/jit/pool-build/${b}`)?.value).toBe('their-jit-config');
  });
});
