// mode pool (src/modes/pool.ts) in the unit world: what a fill launches, what it keeps, what it
// terminates, and what it rolls back. The machines are played by the test: each new one boots to
// its checkpoint and powers itself off (FakeWorld.guestPowerOff follows the launch template's
// InstanceInitiatedShutdownBehavior), or fails, or never gets there. The clock is a fake one.
import { describe, expect, it } from '@jest/globals';
import type { PoolConfig } from '../src/config.js';
import { fillPool, type FillDeps } from '../src/modes/pool.js';
import { poolSettings } from '../src/pool.js';
import { StateRecorder } from '../src/state.js';
import { TAGS } from '../src/tags.js';
import { awsError } from '../test/fakes/aws.js';
import { BASE_START, config, freshStateFile, tick } from '../test/fakes/harness.js';
import { FakeWorld } from '../test/fakes/world.js';

// slow-stop: writes `pooled`, then takes two polls to reach `stopped` (running → stopping → stopped);
// ended / ending: terminated or shutting down from outside (an operator, a reclaim) during the fill.
type Guest = 'pooled' | 'fails' | 'never' | 'powers-off-unpooled' | 'slow-stop' | 'ended' | 'ending';

function poolConfig(over: Record<string, string> = {}): PoolConfig {
  return config({ ...BASE_START, mode: 'pool', pool: 'build', size: '2', 'wait-timeout': '5', ...over }) as PoolConfig;
}

/** The world, with each new machine doing `guests[k]` (default: reach the checkpoint) right after its launch. */
function fillRig(guests: Guest[] = []) {
  freshStateFile();
  const world = new FakeWorld();
  const fleet = world.handlerOf('CreateFleet');
  let k = 0;
  const slow = new Map<string, number>();
  world.on('CreateFleet', async (input, call) => {
    const out = (await fleet(input, call)) as { Instances?: { InstanceIds?: string[] }[] };
    for (const id of (out.Instances ?? []).flatMap((i) => i.InstanceIds ?? [])) {
      const g = guests[k++] ?? 'pooled';
      const i = world.instances.get(id);
      if (i) i.State = { Name: 'running' };
      if (g === 'pooled') {
        world.setPhase(id, 'pooled');
        world.guestPowerOff(id);
      } else if (g === 'fails') world.setPhase(id, 'failed:pre-runner-script');
      else if (g === 'powers-off-unpooled') world.guestPowerOff(id);
      else if (g === 'slow-stop') {
        world.setPhase(id, 'pooled');
        slow.set(id, 2);
      } else if (g === 'ended' && i) i.State = { Name: 'terminated' };
      else if (g === 'ending' && i) i.State = { Name: 'shutting-down' };
    }
    return out;
  });
  let now = Date.parse('2026-12-01T12:00:00Z');
  let sleeps = 0;
  const logs: string[] = [];
  const deps: FillDeps = {
    aws: world.clients(),
    state: new StateRecorder(),
    log: (l) => logs.push(l),
    now: () => now,
    sleep: async (ms) => {
      sleeps++;
      now += ms;
      for (const [id, left] of slow) {
        const i = world.instances.get(id);
        if (i) i.State = { Name: left > 1 ? 'stopping' : 'stopped' };
        if (left > 1) slow.set(id, left - 1);
        else slow.delete(id);
      }
      await tick();
    },
    pollMs: 2_000,
    label: 'spot-runner-4242-1-fill-00000001',
    terminate: { sleep: tick, notFoundBudgetMs: 60_000 },
    retry: { sleep: tick, templateBudgetMs: 30_000 },
  };
  return { world, deps, logs, sleeps: () => sleeps };
}

const hashOf = (cfg: PoolConfig) => poolSettings(cfg, { id: 'ami-0123456789abcdef0' }, 'build').hash;

function plant(world: FakeWorld, hash: string, state = 'stopped'): string {
  return world.addInstance(
    'spot-runner-4242-1-fill-00000000',
    new Date(),
    { [TAGS.pool]: 'build', [TAGS.poolHash]: hash, [TAGS.phase]: 'pooled' },
    { State: { Name: state } },
  );
}

const state = (w: FakeWorld, id: string) => w.instances.get(id)?.State.Name;

describe('mode pool: fill', () => {
  it('launches the shortfall on-demand, with a template that stops (not terminates) at power-off, and keeps what reached the checkpoint', async () => {
    const { world, deps, logs, sleeps } = fillRig();
    const cfg = poolConfig({ size: '2' });
    const res = await fillPool(cfg, deps);
    expect(res.launched).toHaveLength(2);
    expect([...res.ready].sort()).toEqual([...res.launched].sort());
    expect(res.failed).toEqual([]);
    expect(res.stale).toEqual([]);
    expect(res.hash).toBe(hashOf(cfg));
    for (const id of res.launched) {
      expect(state(world, id)).toBe('stopped');
      expect(world.shutdownBehaviour.get(id)).toBe('stop');
      const tags = Object.fromEntries(world.instances.get(id)?.Tags.map((t) => [t.Key, t.Value]) ?? []);
      expect(tags[TAGS.pool]).toBe('build');
      expect(tags[TAGS.poolHash]).toBe(hashOf(cfg));
      expect(tags.Name).toBe('spot-runner-4242-1-fill-00000001-pool-build');
      // Their deadline is the pool's TTL (default 1440 min), not a job's.
      expect(tags[TAGS.expiresAt]).toBe('2026-12-02T12:00:00.000Z');
    }
    const spec = world.fleetsAccepted[0]?.input.TargetCapacitySpecification as Record<string, unknown>;
    expect(spec).toMatchObject({ TotalTargetCapacity: 2, DefaultTargetCapacityType: 'on-demand' });
    // The template is gone once the machines exist: StartInstances needs none.
    expect(world.templates.size).toBe(0);
    // No JIT config and no claim exists for a pool machine.
    expect(world.params.size).toBe(0);
    // The fill's first look does not list the new instances yet (eventual consistency); the
    // second finds both at their checkpoint: one poll, and none after the last is ready.
    expect(sleeps()).toBe(1);
    const [a, b] = res.launched;
    expect(logs).toContain(`Pool build: launched ${a}, ${b}; waiting for each to stop at its checkpoint`);
    expect(logs).toContain('Pool build: 2 ready (2 new)');
    expect(logs.some((l) => l.includes('built from other settings'))).toBe(false);
  });

  it('launches only what the pool lacks, and nothing when it is full', async () => {
    const { world, deps, logs } = fillRig();
    const cfg = poolConfig({ size: '3' });
    const a = plant(world, hashOf(cfg));
    const b = plant(world, hashOf(cfg), 'running'); // still filling: counts as healthy
    const res = await fillPool(cfg, deps);
    expect(res.launched).toHaveLength(1);
    expect(res.ready).toEqual([a, ...res.launched]);
    expect(res.ready).not.toContain(b);
    expect(logs).toContain(`Pool build (settings ${hashOf(cfg)}): 2 healthy of size 3; launching 1`);

    const again = await fillPool(cfg, deps);
    expect(again.launched).toEqual([]);
    // Ready means stopped at the checkpoint: the one still filling is healthy, not ready.
    expect(again.ready).toEqual([a, ...res.launched]);
    expect(world.fleetsAccepted).toHaveLength(1);
    expect(world.count('CreateLaunchTemplate')).toBe(1);
  });

  it('terminates stopped machines built from other settings once it wins their claim, and leaves one another process has claimed', async () => {
    const { world, deps, logs } = fillRig();
    const cfg = poolConfig({ size: '1' });
    const stale = plant(world, 'ffffffffffff');
    const taken = plant(world, 'ffffffffffff');
    // A start is taking this one right now: its claim (the JIT parameter) exists.
    world.addParameter(`/spot-runner/jit/pool-build/${taken}`, new Date(), 'a-jit-config');
    const res = await fillPool(cfg, deps);
    expect(res.stale).toEqual([stale]);
    expect(state(world, stale)).toMatch(/shutting-down|terminated/);
    expect(state(world, taken)).toBe('stopped');
    // The stale machine's claim went with it; the other start's claim is untouched.
    expect(world.params.has(`/spot-runner/jit/pool-build/${stale}`)).toBe(false);
    expect(world.params.get(`/spot-runner/jit/pool-build/${taken}`)?.value).toBe('a-jit-config');
    expect(
      logs.some((l) => l.startsWith(`Pool build: terminated 1 machine(s) built from other settings: ${stale}`)),
    ).toBe(true);
    // Stale machines do not count: the pool of one is filled with a new machine.
    expect(res.launched).toHaveLength(1);
  });

  it('a dry run claims, terminates and launches nothing', async () => {
    const { world, deps } = fillRig();
    const cfg = poolConfig({ size: '2', 'dry-run': 'true' });
    const stale = plant(world, 'ffffffffffff');
    const res = await fillPool(cfg, deps);
    expect(res).toMatchObject({ launched: [], stale: [], failed: [] });
    expect(state(world, stale)).toBe('stopped');
    expect(world.mutating()).toEqual([]);
  });

  it('terminates a new machine that failed, or powered off without reaching the checkpoint, and keeps the rest', async () => {
    const { world, deps, logs } = fillRig(['pooled', 'fails', 'powers-off-unpooled']);
    const res = await fillPool(poolConfig({ size: '3' }), deps);
    const [ok, failed, unpooled] = res.launched as [string, string, string];
    expect(res.ready).toEqual([ok]);
    expect(res.failed).toEqual([
      { instanceId: failed, why: 'running, phase failed:pre-runner-script' },
      { instanceId: unpooled, why: 'stopped' },
    ]);
    expect(state(world, ok)).toBe('stopped');
    expect(state(world, failed)).toMatch(/shutting-down|terminated/);
    expect(state(world, unpooled)).toMatch(/shutting-down|terminated/);
    expect(logs).toContain(
      `Pool build: ${failed} never reached the checkpoint (running, phase failed:pre-runner-script); terminated`,
    );
    expect(logs).toContain('Pool build: 1 ready (1 new), 2 failed');
  });

  it('gives up on a machine at wait-timeout on its clock, terminates it, and fails when no new machine is ready', async () => {
    const { world, deps, sleeps } = fillRig(['never']);
    const err = await fillPool(poolConfig({ size: '1', 'wait-timeout': '1' }), deps).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    const id = [...world.instances.keys()][0] as string;
    expect((err as Error).message).toBe(
      `filling pool build: none of 1 new machine(s) reached the checkpoint: ${id} did not stop at its checkpoint within wait-timeout (1 min). Read the instance console output.`,
    );
    expect(state(world, id)).toMatch(/shutting-down|terminated/);
    // 60 s at a 2 s poll: at 60 s the deadline has not passed yet; the 31st sleep passes it.
    expect(sleeps()).toBe(31);
    expect(world.templates.size).toBe(0);
  });

  it('rolls back the template and the machines it got when the launch falls short, and says so', async () => {
    const { world, deps } = fillRig();
    world.fleet = () => ({
      launch: [{ type: 'c7i.large', market: 'on-demand' }],
      errors: [{ code: 'InsufficientInstanceCapacity', type: 'c7i.large', market: 'on-demand' }],
    });
    const err = await fillPool(poolConfig({ size: '2' }), deps).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toBe(
      'filling pool build failed: Not enough on-demand capacity: launched 1 of 2: InsufficientInstanceCapacity (on-demand c7i.large): InsufficientInstanceCapacity for c7i.large. Add instance types or subnets.; rolled back 1 instance(s)',
    );
    expect(world.instances.size).toBe(1);
    expect(world.live()).toEqual([]);
    expect(world.templates.size).toBe(0);
  });

  it('never claims or terminates a stale machine that is running (a start took it: it may be running a job)', async () => {
    const { world, deps } = fillRig();
    const busy = plant(world, 'ffffffffffff', 'running');
    const res = await fillPool(poolConfig({ size: '1' }), deps);
    expect(res.stale).toEqual([]);
    expect(state(world, busy)).toBe('running');
    expect(world.params.has(`/spot-runner/jit/pool-build/${busy}`)).toBe(false);
  });

  it('names every stale machine it terminates; when their claims cannot be deleted, says reap will, and each claim carries what reap needs', async () => {
    const { world, deps, logs } = fillRig();
    const [x, y] = [plant(world, 'ffffffffffff'), plant(world, 'ffffffffffff')];
    world.on('DeleteParameters', () => {
      throw awsError('AccessDeniedException', 'not allowed: ssm:DeleteParameters');
    });
    const res = await fillPool(poolConfig({ size: '1' }), deps);
    expect([...res.stale].sort()).toEqual([x, y].sort());
    const [first, second] = res.stale;
    expect(
      logs.some((l) =>
        l.startsWith(`Pool build: terminated 2 machine(s) built from other settings: ${first}, ${second}`),
      ),
    ).toBe(true);
    expect(logs).toContain('Pool build: could not delete claims: not allowed: ssm:DeleteParameters (reap will)');
    expect(world.params.get(`/spot-runner/jit/pool-build/${x}`)?.tags).toEqual({
      [TAGS.managed]: 'true',
      [TAGS.label]: 'spot-runner-4242-1-fill-00000001',
      [TAGS.instanceId]: x,
    });
  });

  it('waits for a machine that wrote pooled until it has really stopped', async () => {
    const { world, deps, sleeps } = fillRig(['slow-stop']);
    const res = await fillPool(poolConfig({ size: '1' }), deps);
    expect(res.ready).toEqual(res.launched);
    expect(state(world, res.launched[0] as string)).toBe('stopped');
    // Unlisted at the first look; stopping (phase pooled already) at the second, which is not
    // ready yet; stopped at the third.
    expect(sleeps()).toBe(2);
  });

  it('counts a new machine terminated or shutting down from outside as failed, and names both when none is ready', async () => {
    const { deps } = fillRig(['ended', 'ending']);
    const err = await fillPool(poolConfig({ size: '2' }), deps).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(
      /^filling pool build: none of 2 new machine\(s\) reached the checkpoint: i-[0-9a-f]+ terminated; i-[0-9a-f]+ shutting-down\. Read the instance console output\.$/,
    );
  });

  it('a launch template it cannot delete is left to reap, with a note, and the fill still succeeds', async () => {
    const { world, deps, logs } = fillRig();
    world.on('DeleteLaunchTemplate', () => {
      throw awsError('UnauthorizedOperation', 'You are not authorized to perform: ec2:DeleteLaunchTemplate');
    });
    const res = await fillPool(poolConfig({ size: '1' }), deps);
    expect(res.ready).toHaveLength(1);
    const [id] = [...world.templates.keys()];
    expect(logs).toContain(
      `Pool build: could not delete launch template ${id}: You are not authorized to perform: ec2:DeleteLaunchTemplate (reap will)`,
    );
  });
});
