// teardown() is what rollback, post and stop share: it must remove exactly one run's resources,
// report exactly what it did, and keep going when one kind fails.
import { describe, expect, it } from '@jest/globals';
import { makeGitHub, type GitHub } from '../src/github/client.js';
import { emptyResources, type Resources } from '../src/state.js';
import { teardown } from '../src/teardown.js';
import { awsError } from '../test/fakes/aws.js';
import { NockGitHub, offlineGitHub } from '../test/fakes/github.js';
import { seedRun } from '../test/fakes/harness.js';
import { FakeWorld } from '../test/fakes/world.js';

offlineGitHub();

const MINE = 'spot-runner-4242-1-abcdef-0123abcd';
const THEIRS = 'spot-runner-4243-1-abcdef-89abcdef';
const TARGET = { scope: 'repo' as const, owner: 'acme', repo: 'widgets' };

async function twoRuns() {
  process.env.SPOT_RUNNER_GITHUB_RETRY_BASE_MS = '1';
  const world = new FakeWorld();
  const gh = new NockGitHub();
  const mine = await seedRun(world, gh, MINE, { firstRunnerId: 500 });
  const theirs = await seedRun(world, gh, THEIRS, { firstRunnerId: 600 });
  world.calls.length = 0;
  return { world, gh, mine, theirs, client: makeGitHub('ghs_testtoken') };
}

const terminateCalls = (world: FakeWorld) =>
  world.calls.filter((c) => c.command === 'TerminateInstances').map((c) => c.input.InstanceIds as string[]);

describe('teardown', () => {
  it('removes one run by its label alone, reports exactly that, and leaves another run untouched', async () => {
    const { world, gh, mine, theirs, client } = await twoRuns();
    const report = await teardown(world.clients(), client, TARGET, { ...emptyResources(), label: MINE });

    expect(report.problems).toEqual([]);
    expect([...report.terminated].sort()).toEqual([...mine.instanceIds].sort());
    expect([...report.runnersDeleted].sort()).toEqual(mine.runnerIds);
    expect([...report.parametersDeleted].sort()).toEqual([...mine.parameterNames].sort());
    expect(report.templatesDeleted).toEqual([mine.templateId]);
    expect(report.runnersBusy).toEqual([]);
    expect(report.instances.map((i) => i.instanceId).sort()).toEqual([...mine.instanceIds].sort());

    // The other run: every machine, parameter, template and runner still there.
    for (const id of theirs.instanceIds) expect(world.instances.get(id)?.State.Name).toBe('pending');
    expect([...world.params.keys()].sort()).toEqual([...theirs.parameterNames].sort());
    expect([...world.templates.keys()]).toEqual([theirs.templateId]);
    expect([...gh.runners.keys()].sort()).toEqual(theirs.runnerIds);
  });

  it('deletes a runner that carries the label among its other labels, and none without it', async () => {
    const { world, gh, mine, client } = await twoRuns();
    for (const id of mine.runnerIds) {
      const r = gh.runners.get(id);
      if (r)
        r.labels = [
          { id: 9, name: 'self-hosted', type: 'read-only' },
          ...r.labels,
          { id: 10, name: 'kani', type: 'custom' },
        ];
    }
    const report = await teardown(world.clients(), client, TARGET, { ...emptyResources(), label: MINE });
    expect([...report.runnersDeleted].sort()).toEqual(mine.runnerIds);
    expect(gh.runners.size).toBe(2);
  });

  it('does not terminate again what is already shutting down or terminated', async () => {
    const { world, mine, client } = await twoRuns();
    const [a = '', b = ''] = mine.instanceIds;
    Object.assign(world.instances.get(a) ?? {}, { State: { Name: 'shutting-down' } });
    Object.assign(world.instances.get(b) ?? {}, { State: { Name: 'terminated' } });
    const report = await teardown(world.clients(), client, TARGET, {
      ...emptyResources(),
      label: MINE,
      instanceIds: mine.instanceIds,
    });
    expect(terminateCalls(world)).toEqual([]);
    expect(report.terminated).toEqual([]);
    expect(report.problems).toEqual([]);
  });

  it('without a GitHub client, removes the AWS side and reports no problem', async () => {
    const { world, gh, mine } = await twoRuns();
    const report = await teardown(world.clients(), undefined, TARGET, { ...emptyResources(), label: MINE });
    expect(report.problems).toEqual([]);
    expect(report.runnersDeleted).toEqual([]);
    expect(gh.requests).toEqual([]);
    expect([...report.terminated].sort()).toEqual([...mine.instanceIds].sort());
  });

  it('counts as deleted only runners it deleted: one already gone is not reported', async () => {
    const { world, gh, mine, client } = await twoRuns();
    gh.runners.delete(mine.runnerIds[0] ?? 0);
    const report = await teardown(world.clients(), client, TARGET, {
      ...emptyResources(),
      label: MINE,
      runnerIds: mine.runnerIds,
    });
    expect(report.runnersDeleted).toEqual([mine.runnerIds[1]]);
    expect(report.problems).toEqual([]);
  });

  it('names a busy runner as a problem and leaves it registered', async () => {
    const { world, gh, mine, client } = await twoRuns();
    const busy = gh.runners.get(mine.runnerIds[0] ?? 0);
    if (busy) busy.busy = true;
    const report = await teardown(world.clients(), client, TARGET, { ...emptyResources(), label: MINE });
    expect(report.runnersBusy).toEqual([mine.runnerIds[0]]);
    expect(report.runnersDeleted).toEqual([mine.runnerIds[1]]);
    expect(report.problems).toEqual([
      `runners ${mine.runnerIds[0]} are busy and were left registered; their instances are terminated, so GitHub will drop them when the job ends`,
    ]);
  });

  it('keeps going when one kind fails, and names the kind that failed', async () => {
    const { world, gh, mine, client } = await twoRuns();
    world.on('DeleteLaunchTemplate', () => {
      throw awsError('UnauthorizedOperation', 'You are not authorized to perform: ec2:DeleteLaunchTemplate');
    });
    world.on('DescribeParameters', () => {
      throw awsError('AccessDeniedException', 'not allowed: ssm:DescribeParameters');
    });
    const report = await teardown(world.clients(), client, TARGET, { ...emptyResources(), label: MINE });
    expect(report.problems.sort()).toEqual([
      'deleting launch templates: You are not authorized to perform: ec2:DeleteLaunchTemplate',
      'deleting parameters: not allowed: ssm:DescribeParameters',
    ]);
    expect([...report.terminated].sort()).toEqual([...mine.instanceIds].sort());
    expect([...gh.runners.keys()].filter((id) => mine.runnerIds.includes(id))).toEqual([]);
  });

  it('by record only, finds a runner whose id never came back by the name recorded before its request, and no other', async () => {
    const { world, gh, mine, client } = await twoRuns();
    // The step was killed while generate-jitconfig was in flight: GitHub registered the runner,
    // the step recorded only its name. Another runner of the same label is not on the record.
    const [lost, other] = mine.runnerIds.map((id) => gh.runners.get(id)?.name ?? '');
    const report = await teardown(world.clients(), client, TARGET, {
      ...emptyResources(),
      runnerNames: [lost as string, `${MINE}-r9`],
    });
    expect(report.runnersDeleted).toEqual([mine.runnerIds[0]]);
    expect([...gh.runners.values()].map((r) => r.name)).toContain(other);
    expect([...gh.runners.values()].map((r) => r.name)).not.toContain(lost);
    // Looked up by name (GitHub filters), not by listing the whole repository's runners.
    expect(
      gh.requests
        .filter((q) => q.method === 'GET' && q.path.includes('/actions/runners'))
        .map((q) => new URL(q.path, 'https://api.github.com').searchParams.get('name')),
    ).toEqual([lost, `${MINE}-r9`]);
  });

  it('by record only, terminates an instance that carries a recorded runner name (a replacement whose fleet answer never came), and no other of the label', async () => {
    const { world, mine, client } = await twoRuns();
    const replacement = world.addInstance(MINE, new Date(), { 'spot-runner:runner-name': `${MINE}-r1` });
    const report = await teardown(world.clients(), client, TARGET, {
      ...emptyResources(),
      runnerNames: [`${MINE}-r1`],
    });
    expect(report.terminated).toEqual([replacement]);
    for (const id of mine.instanceIds) expect(world.instances.get(id)?.State.Name).toBe('pending');
  });

  it('with neither a label nor ids, touches nothing', async () => {
    const { world, gh, client } = await twoRuns();
    const report = await teardown(world.clients(), client, TARGET, emptyResources());
    expect(world.mutating()).toEqual([]);
    expect(gh.requests.filter((q) => q.method === 'DELETE')).toEqual([]);
    expect(report).toEqual({
      instances: [],
      terminated: [],
      runnersDeleted: [],
      runnersBusy: [],
      parametersDeleted: [],
      templatesDeleted: [],
      problems: [],
      notes: [],
    });
  });
});

describe('teardown after a launch that was never answered', () => {
  // The step stopped while CreateFleet was in flight: EC2 may have launched machines it does not
  // list yet (eventual consistency), and nothing recorded their ids.
  const fast = () => {
    const sleeps: number[] = [];
    return { sleeps, o: { sleep: async (ms: number) => void sleeps.push(ms), notFoundBudgetMs: 60_000 } };
  };
  /** A watch's post: nothing but the record (no label to look for). */
  const byRecord = (world: FakeWorld, client: GitHub, res: Partial<Resources>, o: ReturnType<typeof fast>['o']) =>
    teardown(world.clients(), client, TARGET, { ...emptyResources(), ...res }, [], o);
  const tagLooks = (world: FakeWorld) =>
    world.calls.filter(
      (c) => c.command === 'DescribeInstances' && (c.input.Filters as unknown[] | undefined) !== undefined,
    ).length;

  it('by record only, looks again until the machine of the unanswered launch shows, and terminates it', async () => {
    const { world, mine, client } = await twoRuns();
    const name = `${MINE}-r1`;
    const replacement = world.addInstance(MINE, new Date(), { 'spot-runner:runner-name': name });
    world.hideNew(replacement, 3);
    const { sleeps, o } = fast();
    const report = await byRecord(world, client, { runnerNames: [name], launchingNames: [name] }, o);
    expect(report.terminated).toEqual([replacement]);
    expect(world.instances.get(replacement)?.State.Name).toMatch(/shutting-down|terminated/);
    expect(report.notes).toEqual([]);
    expect(report.problems).toEqual([]);
    // One first look and three more: hidden from three views, shown at the fourth.
    expect(tagLooks(world)).toBe(4);
    expect(sleeps).toEqual([500, 1000, 2000]);
    for (const id of mine.instanceIds) expect(world.instances.get(id)?.State.Name).toBe('pending');
  });

  it('by label, looks again until as many unrecorded machines of the label show as names were launching', async () => {
    const { world, mine, client } = await twoRuns();
    const names = [`${MINE}-3`, `${MINE}-4`];
    const late = names.map(() => world.addInstance(MINE, new Date()));
    world.hideNew(late[0] as string, 1);
    world.hideNew(late[1] as string, 2);
    const { o } = fast();
    const report = await teardown(
      world.clients(),
      client,
      TARGET,
      { ...emptyResources(), label: MINE, instanceIds: mine.instanceIds, launchingNames: names },
      undefined,
      o,
    );
    expect([...report.terminated].sort()).toEqual([...mine.instanceIds, ...late].sort());
    expect(report.notes).toEqual([]);
    // The look by id also counts as a view: the first look by label shows only one of the two.
    expect(tagLooks(world)).toBe(2);
  });

  it('a launch that was answered is not looked for again', async () => {
    const { world, client } = await twoRuns();
    const name = `${MINE}-r1`;
    const { sleeps, o } = fast();
    const report = await byRecord(
      world,
      client,
      { runnerNames: [name], launchingNames: [name], launchedNames: [name] },
      o,
    );
    expect(tagLooks(world)).toBe(1);
    expect(sleeps).toEqual([]);
    expect(report.notes).toEqual([]);
  });

  it('when no machine shows within the budget, says so in a note, not a problem, and stops looking', async () => {
    const { world, client } = await twoRuns();
    const name = `${MINE}-r1`;
    const { sleeps, o } = fast();
    const report = await byRecord(
      world,
      client,
      { runnerNames: [name], launchingNames: [name] },
      { ...o, notFoundBudgetMs: 10_000 },
    );
    expect(report.problems).toEqual([]);
    expect(report.terminated).toEqual([]);
    // 500 + 1000 + 2000 + 4000 + 8000: the look that passes 10 s is the last.
    expect(sleeps).toEqual([500, 1000, 2000, 4000, 8000]);
    expect(tagLooks(world)).toBe(6);
    expect(report.notes).toEqual([
      `no machine showed in 16 s for the unanswered launch of ${name}: it most likely never launched, and a machine that did powers itself off when no JIT config comes`,
    ]);
  });
});
