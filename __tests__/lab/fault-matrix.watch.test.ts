// Fault matrix, issue 15 part 2: mode watch. A machine is reclaimed after start returned and
// before its runner took the job (the job waits on a slow `needs`): watch starts a replacement
// with start's own code and the job runs on it; with max-replacements 0 it cancels the run at its
// first look after the loss. Real parts only: the bundled action (start, watch, stop, post), the
// real user-data run by the instance simulator, moto behind the fault proxy (default faults), the
// OpenAPI-checked GitHub stand-in with its workflow run.
import { describe, expect, it } from '@jest/globals';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { useLab } from '../../test/lab/use-lab.js';
import { LAB_RUN_ID } from '../../test/lab/github.js';

const lab = useLab();

const ids = (json: string | undefined) => JSON.parse(json ?? '[]') as string[];

describe('fault matrix: watch', () => {
  it('a machine reclaimed before its runner took the job is replaced: the job runs on the replacement, nothing leaks', async () => {
    lab.gh.setJobTokenPermissions({ actions: 'write' });
    const { main } = await lab.start({ count: '1' });
    expect(main.errors).toEqual([]);
    const label = main.outputs.label ?? '';
    const [lostId = ''] = ids(main.outputs['instance-ids']);
    const lostRunner = lab.gh.runnerByName(`${label}-1`);
    expect(lostRunner?.status).toBe('online');
    // The work job waits on a slow `needs`: part of the run, not yet queued for a runner.
    const job = lab.gh.queueJob({ labels: [label], pending: true });

    const watching = lab.watch(label, main.outputs.runners ?? '');
    await lab.sim.spotNotice(lostId);
    expect(lab.sim.get(lostId).jobStartedAt).toBeUndefined();
    await lab.sim.waitFor(
      'the replacement runner to be online',
      () => lab.gh.runnerByName(`${label}-r1`)?.status === 'online',
      60_000,
    );
    lab.gh.release(job);
    const { main: w, post } = await watching;
    expect(w.errors).toEqual([]);
    expect(w.exitCode).toBe(0);
    expect(post).toBeUndefined();

    // The job ran on the replacement, a new machine of the same label.
    await lab.sim.waitFor('the job to finish', () => job.finishedAt !== undefined, 30_000);
    expect(job.result).toBe('succeeded');
    expect(job.runnerName).toBe(`${label}-r1`);
    const replacements = JSON.parse(w.outputs.replacements ?? '[]') as {
      replaced: string;
      instanceId: string;
      name: string;
      lastPhase: string;
    }[];
    expect(replacements).toHaveLength(1);
    const [rep] = replacements;
    expect(rep).toMatchObject({ replaced: lostId, name: `${label}-r1` });
    expect(rep?.instanceId).toMatch(/^i-/);
    expect(rep?.instanceId).not.toBe(lostId);
    expect(lab.sim.get(rep?.instanceId ?? '').label).toBe(label);

    // Order of events: the lost runner was deregistered before the replacement's JIT config was asked for.
    const reqs = lab.gh.requests;
    const deleted = reqs.findIndex(
      (q) => q.method === 'DELETE' && q.path.endsWith(`/actions/runners/${lostRunner?.id}`) && q.status === 204,
    );
    const registered = reqs.findIndex(
      (q, k) =>
        k > 0 &&
        q.operation === 'generate-jitconfig' &&
        reqs.slice(0, k).some((p) => p.operation === 'generate-jitconfig'),
    );
    expect(deleted).toBeGreaterThanOrEqual(0);
    expect(registered).toBeGreaterThan(deleted);
    // One launch template for both machines: the replacement reused start's.
    expect(lab.proxy.count('CreateLaunchTemplate')).toBe(1);
    expect(lab.gh.calls['cancel-run']).toBe(0);
    expect(lab.gh.runs.get(LAB_RUN_ID)?.status).toBe('in_progress');
    // The summary shows the replacement.
    expect(w.summary).toContain('spot-runner: watch');
    expect(w.summary).toContain(lostId);
    expect(w.summary).toContain(rep?.instanceId ?? '');

    // Stop finds the replacement by label, with everything else.
    await lab.sim.waitAllTerminated(30_000);
    expect(lab.sim.get(rep?.instanceId ?? '').powerOffReason).toBe('job-done');
    const stop = await lab.stop(label, { 'instance-ids': main.outputs['instance-ids'] ?? '' });
    expect(stop.errors).toEqual([]);
    expect(stop.summary).toContain(rep?.instanceId ?? '');
    await lab.assertNoLeaks();
  }, 150_000);

  it('with max-replacements 0 the run is cancelled at the first look after the loss: the waiting job never runs', async () => {
    lab.gh.setJobTokenPermissions({ actions: 'write' });
    const { main } = await lab.start({ count: '1' });
    expect(main.errors).toEqual([]);
    const label = main.outputs.label ?? '';
    const [lostId = ''] = ids(main.outputs['instance-ids']);
    const job = lab.gh.queueJob({ labels: [label], pending: true });

    const watching = lab.watch(label, main.outputs.runners ?? '', { 'max-replacements': '0' });
    await lab.sim.spotNotice(lostId);
    const { main: w } = await watching;
    expect(w.exitCode).toBe(1);
    // The failure names the machine and its last phase.
    expect(w.errors.join('\n')).toMatch(
      new RegExp(
        `machine ${lostId} \\(runner ${label}-1, last phase [a-z:-]+, state [a-z-]+\\) is gone before its runner took a job, and max-replacements is 0`,
      ),
    );
    // The run is cancelled, and the job that waited on it never reaches a runner.
    expect(lab.gh.calls['cancel-run']).toBe(1);
    expect(lab.gh.runs.get(LAB_RUN_ID)).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
    expect(job).toMatchObject({ result: 'cancelled' });
    expect(job.runnerId).toBeUndefined();
    lab.gh.release(job);
    expect(lab.gh.jobs.filter((j) => j.finishedAt === undefined)).toEqual([]);
    expect(lab.gh.calls['generate-jitconfig']).toBe(1);

    // "Within a minute", by order of events: the look that first saw the loss is the last look
    // before the cancel (one poll interval: 5 s by default, 1 s here), not a later one.
    const lines = w.stdout.split('\n');
    const sawLoss = lines.findIndex(
      (l) => l.startsWith(`${lostId} (runner ${label}-1): phase`) && !/phase runner-started, state running/.test(l),
    );
    const cancelled = lines.findIndex((l) => l === 'cancelled workflow run 4242');
    expect(sawLoss).toBeGreaterThanOrEqual(0);
    expect(cancelled).toBeGreaterThan(sawLoss);
    const look = Number(/\(look (\d+)\)$/.exec(lines[sawLoss] ?? '')?.[1]);
    const polls = lines.slice(0, cancelled).filter((l) => l.startsWith('::debug::watch poll '));
    expect(polls.at(-1)).toMatch(new RegExp(`^::debug::watch poll ${look}: `));
    expect(lines.slice(sawLoss, cancelled).some((l) => l.startsWith('::debug::watch poll '))).toBe(false);

    await lab.sim.waitAllTerminated(30_000);
    const stop = await lab.stop(label);
    expect(stop.errors).toEqual([]);
    await lab.assertNoLeaks();
  }, 120_000);

  it("names the missing permission when the job's GITHUB_TOKEN may not cancel the run, and cancels with the runner credentials", async () => {
    // No `permissions: actions: write` on the watch job (a caller granting only contents: read):
    // the stand-in's default actions: read.
    const { main } = await lab.start({ count: '1' });
    const label = main.outputs.label ?? '';
    const [lostId = ''] = ids(main.outputs['instance-ids']);
    const job = lab.gh.queueJob({ labels: [label], pending: true });
    const watching = lab.watch(label, main.outputs.runners ?? '', { 'max-replacements': '0' });
    await lab.sim.spotNotice(lostId);
    const { main: w } = await watching;
    expect(w.exitCode).toBe(1);
    expect(w.stdout).toMatch(
      /::warning::cancelling workflow run 4242: GitHub answered 403\. Fix: give the watch job 'permissions: actions: write'/,
    );
    expect(lab.gh.requests.filter((q) => q.operation === 'cancel-run').map((q) => q.status)).toEqual([403, 202]);
    expect(lab.gh.runs.get(LAB_RUN_ID)).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
    expect(job.result).toBe('cancelled');
    await lab.sim.waitAllTerminated(30_000);
    await lab.stop(label);
    await lab.assertNoLeaks();
  }, 120_000);
});

describe('fault matrix: watch killed while it starts a replacement', () => {
  /** Two runners online; a spot notice on the first machine; watch SIGKILLed once `killAt` resolves. */
  async function killedWatch(killAt: (label: string, known: Set<string>) => Promise<unknown>) {
    lab.gh.setJobTokenPermissions({ actions: 'write' });
    const { main } = await lab.start({ count: '2' });
    expect(main.errors).toEqual([]);
    const label = main.outputs.label ?? '';
    const [lostId = '', keptId = ''] = ids(main.outputs['instance-ids']);
    const known = new Set(lab.sim.instances.keys());
    const watching = lab.watch(label, main.outputs.runners ?? '', {}, { killWhen: killAt(label, known) });
    await lab.sim.spotNotice(lostId);
    const { main: w, post } = await watching;
    expect(w.signal).toBe('SIGKILL');
    expect(post?.exitCode).toBe(0);
    return { label, keptId, known, post };
  }

  it("its post step removes the replacement it recorded and nothing else of the label: start's other machine keeps running", async () => {
    // Killed outright (SIGKILL: the runner's kill, an OOM) as soon as the replacement's machine
    // exists, so only the post step can remove it.
    const { label, keptId, known, post } = await killedWatch((_label, known) =>
      lab.sim.waitFor(
        'the replacement to launch',
        () => [...lab.sim.instances.keys()].some((id) => !known.has(id)),
        60_000,
      ),
    );
    expect(post?.stdout).toMatch(/spot-runner post: terminated 1 instance\(s\): i-/);
    const [replacementId = ''] = [...lab.sim.instances.keys()].filter((id) => !known.has(id));
    // It was launched with its runner name, so a post by record finds it even without its id.
    const described = await lab.ec2.send(new DescribeInstancesCommand({ InstanceIds: [replacementId] }));
    expect(
      described.Reservations?.[0]?.Instances?.[0]?.Tags?.find((t) => t.Key === 'spot-runner:runner-name')?.Value,
    ).toBe(`${label}-r1`);
    await lab.sim.waitAllTerminated(30_000, [replacementId]);
    // The replacement and its runner are gone; start's other machine and its runner are untouched.
    expect(lab.sim.get(replacementId).end).toBe('terminated-externally');
    expect(lab.gh.runnerByName(`${label}-r1`)).toBeUndefined();
    expect(lab.sim.get(keptId).terminatedAt).toBeUndefined();
    expect(lab.gh.runnerByName(`${label}-2`)?.status).toBe('online');
    expect(lab.gh.calls['cancel-run']).toBe(0);

    const stop = await lab.stop(label);
    expect(stop.errors).toEqual([]);
    await lab.assertNoLeaks();
  }, 150_000);

  it('killed while GitHub has registered its replacement runner but not yet answered, its post step finds that runner by the name it recorded first', async () => {
    const { label } = await killedWatch((label) => {
      // After start: GitHub registers -r1 at once and answers 30 s later; the kill comes in between.
      lab.gh.holdAnswer('generate-jitconfig', 30_000);
      return lab.sim.waitFor(
        'the replacement runner to be registered',
        () => lab.gh.runnerByName(`${label}-r1`) !== undefined,
        60_000,
      );
    });
    expect(lab.gh.runnerByName(`${label}-r1`)).toBeUndefined();
    // By record only: start's other runner is not the watch's.
    expect(lab.gh.runnerByName(`${label}-2`)?.status).toBe('online');

    const stop = await lab.stop(label);
    expect(stop.errors).toEqual([]);
    await lab.sim.waitAllTerminated(60_000);
    await lab.assertNoLeaks();
  }, 150_000);
});
