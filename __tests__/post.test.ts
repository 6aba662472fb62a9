// The post step on its own (issue 12): main was killed outright, so nothing was rolled back and
// post must remove whatever the recorded state and the label point at. runPost runs in-process
// here, with the action's inputs and state exactly where the runner puts them (INPUT_*, STATE_*).
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { runPost } from '../src/main.js';
import { emptyResources, type Resources } from '../src/state.js';
import { NockGitHub, offlineGitHub } from '../test/fakes/github.js';
import { FakeWorld } from '../test/fakes/world.js';
import { ENV, freshStateFile, seedRun } from '../test/fakes/harness.js';

offlineGitHub();

const LABEL = 'spot-runner-4242-1-abcdef-0123abcd';
const INPUTS: Record<string, string> = {
  mode: 'start',
  'github-token': 'ghs_testtoken',
  image: 'ami-0123456789abcdef0',
  'instance-types': 'c7i.large',
  count: '2',
};

const saved = { ...process.env };
beforeEach(() => {
  freshStateFile();
  process.env.SPOT_RUNNER_GITHUB_RETRY_BASE_MS = '1';
  process.env.SPOT_RUNNER_GITHUB_WRITE_GAP_MS = '0';
  Object.assign(process.env, ENV);
});
afterEach(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
});

function setInputs(inputs: Record<string, string>) {
  for (const [k, v] of Object.entries(inputs)) process.env[`INPUT_${k.toUpperCase()}`] = v;
}
function setState(res: Resources | undefined) {
  process.env.STATE_isPost = 'true';
  if (res) process.env.STATE_resources = JSON.stringify(res);
}

/** What a start leaves when it is SIGKILLed mid-wait; the fakes' call logs start empty after it. */
async function killedStart(world: FakeWorld, gh: NockGitHub) {
  const run = await seedRun(world, gh, LABEL);
  world.calls.length = 0;
  return run;
}

function clients(world: FakeWorld) {
  return { aws: () => world.clients() };
}

function terminatedIds(world: FakeWorld): string[] {
  return world.calls.filter((c) => c.command === 'TerminateInstances').flatMap((c) => c.input.InstanceIds as string[]);
}

function expectAllRemoved(world: FakeWorld, gh: NockGitHub, made: { instanceIds: string[] }) {
  expect(made.instanceIds).toHaveLength(2);
  expect(terminatedIds(world).sort()).toEqual([...made.instanceIds].sort());
  for (const id of made.instanceIds)
    expect(['shutting-down', 'terminated']).toContain(world.instances.get(id)?.State.Name);
  expect([...world.params.keys()]).toEqual([]);
  expect([...world.templates.keys()]).toEqual([]);
  expect([...gh.runners.keys()]).toEqual([]);
}

describe('post step, run alone after main was killed', () => {
  it('with no recorded state, touches nothing', async () => {
    const world = new FakeWorld();
    const gh = new NockGitHub();
    const made = await killedStart(world, gh);
    setInputs(INPUTS);
    setState(undefined);
    await runPost(clients(world));
    expect(world.calls).toEqual([]);
    expect(gh.requests).toEqual([]);
    expect(world.instances.size).toBe(made.instanceIds.length);
  });

  it('with the full state, removes every instance, parameter, template and runner', async () => {
    const world = new FakeWorld();
    const gh = new NockGitHub();
    const made = await killedStart(world, gh);
    setInputs(INPUTS);
    setState({
      ...emptyResources(),
      label: LABEL,
      region: 'us-east-1',
      scope: 'repo',
      launchTemplateIds: [made.templateId],
      instanceIds: made.instanceIds,
      parameterNames: made.parameterNames,
      runnerIds: made.runnerIds,
    });
    await runPost(clients(world));
    expectAllRemoved(world, gh, made);
    expect(gh.requests.filter((q) => q.method === 'DELETE')).toHaveLength(2);
  });

  it('with only the label recorded (killed before any id was written), finds the rest by label', async () => {
    const world = new FakeWorld();
    const gh = new NockGitHub();
    const made = await killedStart(world, gh);
    setInputs(INPUTS);
    setState({ ...emptyResources(), label: LABEL, region: 'us-east-1', scope: 'repo' });
    await runPost(clients(world));
    expectAllRemoved(world, gh, made);
  });

  it('when the inputs no longer parse, the recorded state and the token still suffice', async () => {
    const world = new FakeWorld();
    const gh = new NockGitHub();
    const made = await killedStart(world, gh);
    setInputs({ ...INPUTS, count: 'many', 'instance-types': '' });
    setState({
      ...emptyResources(),
      label: LABEL,
      region: 'us-east-1',
      scope: 'repo',
      instanceIds: made.instanceIds,
      runnerIds: made.runnerIds,
    });
    await runPost(clients(world));
    expectAllRemoved(world, gh, made);
  });

  it('after a watch killed mid-replacement, removes the runner it recorded only by name, and nothing else of the label', async () => {
    const world = new FakeWorld();
    const gh = new NockGitHub();
    const made = await killedStart(world, gh);
    // Watch was registering runner -r1 when it was killed: GitHub has it; the answer never came.
    const [, keptRunner] = made.runnerIds;
    const replacement = [...gh.runners.values()].find((r) => r.id === made.runnerIds[0]);
    if (replacement) replacement.name = `${LABEL}-r1`;
    setInputs({ mode: 'watch', 'github-token': 'ghs_testtoken', label: LABEL });
    setState({
      ...emptyResources(),
      label: LABEL,
      region: 'us-east-1',
      scope: 'repo',
      mode: 'watch',
      runnerNames: [`${LABEL}-r1`],
    });
    await runPost(clients(world));
    expect([...gh.runners.keys()]).toEqual([keptRunner]);
    // Start's machines are not the watch's: by record only, none is touched.
    expect(world.mutating()).toEqual([]);
  });

  it('after a stop step (mode stop), does nothing: stop owns its own removal', async () => {
    const world = new FakeWorld();
    const gh = new NockGitHub();
    await killedStart(world, gh);
    setInputs({ mode: 'stop', 'github-token': 'ghs_testtoken', label: LABEL });
    setState({ ...emptyResources(), label: LABEL, region: 'us-east-1', scope: 'repo' });
    await runPost(clients(world));
    expect(world.mutating()).toEqual([]);
    expect(gh.runners.size).toBe(2);
  });
});
