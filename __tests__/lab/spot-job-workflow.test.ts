// issue 6: the steps of .github/workflows/spot-job.yml, run in order through the action in the lab
// (moto + the GitHub stand-in + the instance simulator), including the spot interruption →
// on-demand retry branch. test/workflows/run-steps.ts interprets the workflow: jobs in needs
// order, its `${{ }}` expressions, `if:`s, job and step outputs; the action's steps run the bundled
// dist; `run:` steps run with bash; the jobs on the spot runner are queued at the stand-in for the
// label runs-on evaluates to, and a simulated machine carrying that label has to take them.
// The first describe block needs no lab: the interpreter's semantics, and mutated copies of the
// workflow that the harness must reject, so this test can fail.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runWithPost, ROOT, type StepResult } from '../../test/lab/action.js';
import type { LabJob } from '../../test/lab/github.js';
import { startLab, type Lab } from '../../test/lab/lab.js';
import type { SimInstance } from '../../test/lab/simulator.js';
import { isObj, loadWorkflow, type Obj } from '../../test/workflows/check.js';
import {
  evalCondition,
  evalTemplate,
  runWorkflow,
  WorkflowError,
  type Host,
  type JobRecord,
  type Scope,
  type StepRecord,
  type WorkflowCall,
  type WorkflowRun,
} from '../../test/workflows/run-steps.js';

const WORKFLOW = loadWorkflow(join(ROOT, '.github/workflows/spot-job.yml'));
const ACTION_YML = loadWorkflow(join(ROOT, 'action.yml'));
const ORDER = ['start', 'watch', 'run', 'stop', 'start-retry', 'watch-retry', 'run-retry', 'stop-retry', 'conclude'];
const GITHUB = { event_name: 'push', repository: 'acme/widgets', run_id: '4242', run_attempt: '1', event: {} };

const job = (run: WorkflowRun, id: string): JobRecord => {
  const j = run.jobs[id];
  if (!j) throw new Error(`no job ${id} in the run`);
  return j;
};
const step = (run: WorkflowRun, jobId: string, name: string): StepRecord => {
  const s = job(run, jobId).steps.find((x) => x.name === name);
  if (!s)
    throw new Error(
      `no step '${name}' in job ${jobId}: ${job(run, jobId)
        .steps.map((x) => x.name)
        .join(', ')}`,
    );
  return s;
};
const actionStep = (run: WorkflowRun, jobId: string): StepRecord => {
  const s = job(run, jobId).steps.find((x) => x.kind === 'action');
  if (!s) throw new Error(`job ${jobId} ran no action step`);
  return s;
};

/** What any run of spot-job.yml must show, lab or fake: the outputs really reach the inputs that read them. */
function wiringProblems(run: WorkflowRun, interrupted: boolean): string[] {
  const p: string[] = [];
  const want = (ok: boolean, what: string) => ok || p.push(what);
  want(run.order.join(' ') === ORDER.join(' '), `job order ${run.order.join(' → ')}`);
  const start = job(run, 'start');
  const label = start.outputs.label ?? '';
  want(start.result === 'success' && label !== '', `start: ${start.result}, label '${label}'`);
  want(
    job(run, 'run').runnerLabel === label,
    `run ran on '${job(run, 'run').runnerLabel ?? ''}', not on start's label '${label}'`,
  );
  const stop = job(run, 'stop');
  want(stop.result === 'success', `stop: ${stop.result}`);
  if (stop.result === 'success') {
    const w = actionStep(run, 'stop').with ?? {};
    want(w.mode === 'stop' && w.label === label, `stop's action got label '${w.label ?? ''}', not '${label}'`);
    want(
      w['instance-ids'] === start.outputs['instance-ids'],
      `stop's action got instance-ids '${w['instance-ids'] ?? ''}'`,
    );
    want(
      stop.outputs.interrupted === String(interrupted),
      `stop reports interrupted='${stop.outputs.interrupted ?? ''}'`,
    );
  }
  const conclude = job(run, 'conclude');
  want(conclude.outputs.outcome === 'success', `conclude: outcome '${conclude.outputs.outcome ?? ''}'`);
  want(run.result === 'success', `the workflow ${run.result}`);
  want(
    run.outputs.label === label && run.outputs.interrupted === String(interrupted),
    `workflow outputs ${JSON.stringify(run.outputs)}`,
  );
  const retryJobs = ['start-retry', 'run-retry', 'stop-retry'];
  if (!interrupted) {
    for (const j of retryJobs)
      want(job(run, j).result === 'skipped', `${j} ${job(run, j).result} without an interruption`);
    want(
      conclude.outputs.retried === 'false' && run.outputs.retried === 'false',
      `retried '${conclude.outputs.retried ?? ''}' without an interruption`,
    );
    return p;
  }
  for (const j of retryJobs)
    want(job(run, j).result === 'success', `${j}: ${job(run, j).result} after an interruption`);
  const retry = job(run, 'start-retry');
  if (retry.result === 'success')
    want(
      actionStep(run, 'start-retry').with?.market === 'on-demand',
      `the retry starts with market '${actionStep(run, 'start-retry').with?.market ?? ''}'`,
    );
  if (retryJobs.some((j) => job(run, j).result !== 'success')) return p;
  const retryLabel = retry.outputs.label ?? '';
  want(retryLabel !== '' && retryLabel !== label, `the retry's label '${retryLabel}'`);
  want(
    job(run, 'run-retry').runnerLabel === retryLabel,
    `run-retry ran on '${job(run, 'run-retry').runnerLabel ?? ''}', not on '${retryLabel}'`,
  );
  want(
    job(run, 'run-retry').outputs.outcome === 'success',
    `run-retry outcome '${job(run, 'run-retry').outputs.outcome ?? ''}'`,
  );
  const sw = actionStep(run, 'stop-retry').with ?? {};
  want(
    sw.label === retryLabel && sw['instance-ids'] === retry.outputs['instance-ids'],
    `stop-retry stops '${sw.label ?? ''}' ${sw['instance-ids'] ?? ''}`,
  );
  want(
    conclude.outputs.retried === 'true' && run.outputs.retried === 'true',
    `retried '${conclude.outputs.retried ?? ''}'`,
  );
  want(step(run, 'stop', 'Report interruption').ran, 'the interruption was not reported');
  want(
    run.summary.includes('Spot capacity was reclaimed during the first attempt'),
    'no interruption line in the summary',
  );
  want(run.summary.includes(':repeat: retried on on-demand capacity: success'), 'no retry line in the summary');
  return p;
}

// ---------------------------------------------------------------- without the lab

const call = (over: Partial<WorkflowCall['inputs']> = {}): WorkflowCall => ({
  inputs: { command: 'echo hi > out.txt', 'instance-types': 'c7i.large', 'timeout-minutes': 1, ...over },
  secrets: { RUNNER_ADMIN_TOKEN: 'tok', AWS_ACCESS_KEY_ID: 'AKIA', AWS_SECRET_ACCESS_KEY: 'sk' },
  github: GITHUB,
});

/** A host without AWS: start hands out labels, a runner carrying a known label takes the job; the first spot machine can be lost. */
function fakeHost(o: { interruptSpot: boolean }): Host {
  const markets = new Map<string, string>();
  const done = (outputs: Record<string, string>) => ({ exitCode: 0, outputs, summary: '', log: '' });
  return {
    action: async ({ inputs }) => {
      if (inputs.mode === 'start') {
        const label = `fake-${markets.size + 1}`;
        markets.set(label, inputs.market ?? '');
        return done({ label, 'instance-ids': JSON.stringify([`i-${markets.size}`]), runners: '[]' });
      }
      return done({
        interrupted: String(o.interruptSpot && markets.get(inputs.label ?? '') === 'spot'),
        cost: '0.0100',
      });
    },
    runnerJob: async ({ label, runSteps }) => {
      const market = markets.get(label);
      if (market === undefined)
        throw new Error(`no runner carries the label '${label}': the job would wait for one forever`);
      if (o.interruptSpot && market === 'spot')
        return { lost: 'failed: the runner lost communication with the server' };
      await runSteps();
      return {};
    },
  };
}

const mutate = (f: (wf: Obj) => void): Obj => {
  const wf = structuredClone(WORKFLOW);
  f(wf);
  return wf;
};
const jobOf = (wf: Obj, id: string): Obj => (wf.jobs as Obj)[id] as Obj;
const stepOf = (wf: Obj, jobId: string, name: string): Obj => {
  const s = (jobOf(wf, jobId).steps as Obj[]).find((x) => x.name === name);
  if (!s || !isObj(s)) throw new Error(`no step ${name}`);
  return s;
};
const fake = (wf: Obj, interruptSpot: boolean) =>
  runWorkflow(wf, call(), fakeHost({ interruptSpot }), { actionYml: ACTION_YML });

describe('the workflow interpreter (no lab)', () => {
  const scope = (status?: { ok: boolean }): Scope => ({
    where: 'test',
    contexts: { inputs: ([k]) => ({ flag: true, empty: '', word: 'Yes' })[k as 'flag'] ?? null },
    status: status ? { success: () => status.ok, failure: () => !status.ok } : undefined,
  });

  it('evaluates the expressions spot-job.yml uses, with GitHub semantics', () => {
    expect(evalTemplate("${{ inputs.empty || 'fallback' }}", scope())).toBe('fallback');
    expect(evalTemplate("${{ inputs.word == 'yes' }}", scope())).toBe(true); // strings compare case-insensitively
    expect(evalTemplate("${{ inputs.flag == 'true' }}", scope())).toBe(false); // true is 1, 'true' is NaN
    expect(evalTemplate('${{ inputs.empty == null }}', scope())).toBe(true);
    expect(evalTemplate('${{ !inputs.empty && inputs.flag }}', scope())).toBe(true);
    expect(evalTemplate('a-${{ inputs.flag }}-b', scope())).toBe('a-true-b');
    // an if: without a status function means success() && (…)
    expect(evalCondition('inputs.flag', scope({ ok: false }))).toBe(false);
    expect(evalCondition('always() && inputs.flag', scope({ ok: false }))).toBe(true);
    expect(evalCondition("${{ !cancelled() && inputs.word != '' }}", scope({ ok: false }))).toBe(true);
  });

  it('fails loudly on anything it does not know', () => {
    expect(() => evalTemplate("${{ format('{0}', inputs.word) }}", scope())).toThrow(/format\(\) is not supported/);
    expect(() => evalTemplate("${{ contains(inputs.word, 'Y') }}", scope())).toThrow(/contains\(\) is not supported/);
    expect(() => evalTemplate('${{ inputs.word > 1 }}', scope())).toThrow(/unsupported syntax/);
    expect(() => evalTemplate('${{ env.FOO }}', scope())).toThrow(/context 'env' is not available/);
    expect(() => evalTemplate('${{ always() }}', scope())).toThrow(/only allowed in if:/);
  });

  it('the real spot-job.yml is wired right, with and without an interruption (fake host)', async () => {
    expect(wiringProblems(await fake(WORKFLOW, false), false)).toEqual([]);
    expect(wiringProblems(await fake(WORKFLOW, true), true)).toEqual([]);
  });

  describe('mutated copies of spot-job.yml are caught', () => {
    it('run.runs-on reads an output start does not declare', async () => {
      const wf = mutate((w) => (jobOf(w, 'run')['runs-on'] = '${{ needs.start.outputs.labels }}'));
      await expect(fake(wf, false)).rejects.toThrow(
        /jobs\.run\.runs-on: needs\.start\.outputs\.labels: job 'start' declares no output 'labels'/,
      );
    });
    it('run.runs-on reads the wrong (existing) output: no runner carries that label', async () => {
      const wf = mutate((w) => (jobOf(w, 'run')['runs-on'] = '${{ needs.start.outputs.runners }}'));
      await expect(fake(wf, false)).rejects.toThrow(/no runner carries the label/);
    });
    it('the retry if: never fires', async () => {
      const wf = mutate(
        (w) =>
          (jobOf(w, 'start-retry').if =
            "!cancelled() && inputs.retry-on-demand && needs.stop.outputs.interrupted == 'yes'"),
      );
      const problems = wiringProblems(await fake(wf, true), true);
      expect(problems).toEqual(
        expect.arrayContaining([
          'start-retry: skipped after an interruption',
          "conclude: outcome 'failure'",
          'the workflow failure',
        ]),
      );
    });
    it('the retry if: loses its status function (implicit success() skips it after the failed chain)', async () => {
      // stop's if: always() ran it, but without !cancelled() the retry would need every ancestor to succeed
      const wf = mutate((w) => {
        jobOf(w, 'run')['continue-on-error'] = false;
        jobOf(w, 'start-retry').if = "inputs.retry-on-demand && needs.stop.outputs.interrupted == 'true'";
      });
      expect(wiringProblems(await fake(wf, true), true)).toContain('start-retry: skipped after an interruption');
    });
    it('the retry starts on spot again', async () => {
      const wf = mutate(
        (w) => ((stepOf(w, 'start-retry', 'Start on-demand runner').with as Obj).market = '${{ inputs.market }}'),
      );
      // (and the fake loses that spot machine too, so the retry fails)
      expect(wiringProblems(await fake(wf, true), true)).toEqual(
        expect.arrayContaining(["the retry starts with market 'spot'", 'run-retry: failure after an interruption']),
      );
    });
    it('stop-retry stops the first attempt instead of the retry', async () => {
      const wf = mutate((w) => {
        jobOf(w, 'stop-retry').needs = ['start', 'start-retry', 'run-retry'];
        (stepOf(w, 'stop-retry', 'Stop runner').with as Obj).label = '${{ needs.start.outputs.label }}';
      });
      expect(wiringProblems(await fake(wf, true), true).some((p) => p.startsWith("stop-retry stops 'fake-1'"))).toBe(
        true,
      );
    });
    it('a job output reads a step id that does not exist', async () => {
      const wf = mutate((w) => ((jobOf(w, 'run').outputs as Obj).outcome = '${{ steps.commands.outcome }}'));
      await expect(fake(wf, false)).rejects.toThrow(
        /jobs\.run\.outputs\.outcome: steps\.commands: no earlier step has id 'commands'/,
      );
    });
    it('an expression the interpreter cannot judge', async () => {
      const wf = mutate(
        (w) =>
          ((stepOf(w, 'stop', 'Stop runner').with as Obj).label = "${{ format('{0}', needs.start.outputs.label) }}"),
      );
      await expect(fake(wf, false)).rejects.toThrow(WorkflowError);
    });
    it('a step the interpreter can neither run nor skip', async () => {
      const wf = mutate((w) => (jobOf(w, 'conclude').steps as Obj[]).push({ uses: 'some/action@v1' }));
      await expect(fake(wf, false)).rejects.toThrow(/can neither run nor skip/);
    });
  });
});

// ---------------------------------------------------------------- in the lab

interface LabRecord {
  actions: Array<{ job: string; step: string; inputs: Record<string, string>; main: StepResult; post?: StepResult }>;
  runnerJobs: Array<{ job: string; label: string; labJob: LabJob; instance: SimInstance }>;
}

/** The lab as the workflow's host: the action from dist with the lab env; runner jobs at the stand-in, run by simulated machines. */
function labHost(
  lab: Lab,
  onJobStarted?: (o: { job: string; labJob: LabJob; instance: SimInstance }) => Promise<void>,
): Host & { rec: LabRecord } {
  const rec: LabRecord = { actions: [], runnerJobs: [] };
  return {
    rec,
    action: async ({ job: j, step: s, inputs, env }) => {
      const { main, post } = await runWithPost({ inputs, env: lab.env(env) });
      rec.actions.push({ job: j, step: s, inputs, main, post });
      return {
        exitCode: main.exitCode,
        outputs: main.outputs,
        summary: main.summary + (post?.summary ?? ''),
        log: main.stdout + main.stderr + (post ? post.stdout + post.stderr : ''),
      };
    },
    runnerJob: async ({ job: j, label, runSteps }) => {
      const labJob = lab.gh.queueJob({ labels: [label], id: j });
      await lab.sim.waitFor(
        `a runner labelled '${label}' to take job ${j}`,
        () => labJob.startedAt !== undefined,
        30_000,
      );
      const instance = [...lab.sim.instances.values()].find((i) => i.runnerId === labJob.runnerId);
      if (!instance)
        throw new Error(`job ${j} was taken by runner ${String(labJob.runnerId)}, which no simulated instance runs`);
      rec.runnerJobs.push({ job: j, label, labJob, instance });
      await onJobStarted?.({ job: j, labJob, instance });
      // The steps run while the machine holds the job; a machine already gone runs none.
      if (labJob.result === undefined || labJob.result === 'succeeded') await runSteps();
      await lab.sim.waitFor(`job ${j} to finish`, () => labJob.finishedAt !== undefined, 60_000);
      return labJob.result === 'succeeded' ? {} : { lost: labJob.result ?? 'no result' };
    },
  };
}

let lab: Lab;

const labCall = (inputs: WorkflowCall['inputs'], secrets: Record<string, string> = {}): WorkflowCall => ({
  inputs: { 'instance-types': 'c7i.large, c6i.large', 'timeout-minutes': 1, 'idle-timeout': 0.5, ...inputs },
  secrets: {
    RUNNER_ADMIN_TOKEN: lab.gh.token,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    ...secrets,
  },
  github: GITHUB,
});
const describeRun = (run: WorkflowRun) =>
  run.order
    .map((id) => {
      const j = job(run, id);
      return `${id}: ${j.result}${j.lost ? ` (lost: ${j.lost})` : ''} ${JSON.stringify(j.outputs)}\n${j.steps.map((s) => `  - ${s.name}: ${s.ran ? s.outcome : 'skipped'}${s.reason ? ' (not run)' : ''}${s.outcome === 'failure' ? `\n${s.log}` : ''}`).join('\n')}`;
    })
    .join('\n');

describe('spot-job.yml in the lab', () => {
  beforeAll(async () => {
    lab = await startLab();
  }, 60_000);
  beforeEach(async () => {
    await lab.reset();
  });
  afterEach(async () => {
    await lab.sim.reset();
  });
  afterAll(async () => {
    await lab?.close();
  });

  it('A. happy path: start → run on the started runner → stop; no retry; conclude succeeds', async () => {
    const host = labHost(lab);
    const run = await runWorkflow(
      WORKFLOW,
      labCall({
        command: 'echo "built in $PWD" > result.txt',
        'working-directory': 'sub/dir',
        artifacts: 'sub/dir/result.txt',
        'subnet-ids': lab.subnets.join(','),
      }),
      host,
      { actionYml: ACTION_YML },
    );
    expect({ problems: wiringProblems(run, false), run: describeRun(run) }).toEqual({
      problems: [],
      run: expect.any(String),
    });

    // start: the credentials sub-action (spot-runner/spot-runner/credentials@v1, expanded from
    // this repository) ran for real: access keys, not OIDC. The fork guard is the action's own.
    expect(step(run, 'start', 'Check credentials')).toMatchObject({
      ran: true,
      outcome: 'success',
      id: 'composite0__auth',
    });
    expect(step(run, 'start', 'Check credentials').outputs).toEqual({ method: 'keys' });
    expect(step(run, 'start', 'AWS credentials (OIDC)').ran).toBe(false);
    expect(step(run, 'start', 'AWS credentials (access keys)')).toMatchObject({
      ran: true,
      kind: 'not-run',
      with: { 'aws-access-key-id': 'testing', 'aws-region': 'us-east-1' },
    });
    const [startAction] = host.rec.actions;
    expect(startAction?.inputs).toMatchObject({
      mode: 'start',
      'github-token': lab.gh.token,
      market: 'spot',
      'on-demand-fallback': 'true',
      'max-lifetime': '16',
      'idle-timeout': '0.5',
      'subnet-ids': lab.subnets.join(','),
      'instance-types': 'c7i.large, c6i.large',
    });
    expect(startAction?.main.errors).toEqual([]);
    expect(startAction?.post).toBeUndefined();

    // run: dispatched on start's label, taken by the machine start launched; the command ran in working-directory
    const label = job(run, 'start').outputs.label ?? '';
    expect(label).toMatch(/\S/);
    expect(job(run, 'run')).toMatchObject({
      runsOn: label,
      runnerLabel: label,
      result: 'success',
      failed: false,
      timeoutMinutes: 1,
      outputs: { outcome: 'success' },
    });
    const [taken] = host.rec.runnerJobs;
    expect(taken?.labJob.result).toBe('succeeded');
    expect(JSON.parse(job(run, 'start').outputs['instance-ids'] ?? '[]')).toEqual([taken?.instance.instanceId]);
    const cmd = step(run, 'run', 'Run command');
    expect(cmd.env).toEqual({ COMMAND: 'echo "built in $PWD" > result.txt' });
    expect(readFileSync(join(cmd.cwd ?? '', 'result.txt'), 'utf8')).toBe(`built in ${cmd.cwd ?? ''}\n`);
    expect(step(run, 'run', 'Check out')).toMatchObject({ ran: true, kind: 'not-run' });
    expect(step(run, 'run', 'Upload artifacts')).toMatchObject({
      ran: true,
      kind: 'not-run',
      with: { name: 'spot-job-results', path: 'sub/dir/result.txt' },
    });

    // stop: by label and ids; not interrupted, so nothing to report
    expect(step(run, 'stop', 'Report interruption').ran).toBe(false);
    expect(lab.proxy.fleets.map((f) => f.market)).toEqual(['spot']);
    expect(run.summary).toContain('- first attempt: success\n');
    expect(run.summary).toContain('- result: **success**');
    expect(run.summary).not.toContain('reclaimed');
    expect(run.outputs).toMatchObject({ outcome: 'success', interrupted: 'false', retried: 'false', label });
    expect(host.rec.actions.length).toBeGreaterThan(0);
    expect(host.rec.actions.every((a) => a.main.exitCode === 0 && a.main.errors.length === 0)).toBe(true);
    await lab.sim.waitAllTerminated(20_000);
    await lab.assertNoLeaks();
  }, 90_000);

  it('B. spot interruption mid-job: stop reports it, the job runs again on on-demand, conclude succeeds', async () => {
    // spot machines hang in their job (until the notice takes them); on-demand ones finish it
    lab.sim.behaviour = (i) => (i.market === 'spot' ? { jobMs: 'hang' } : {});
    const host = labHost(lab, async ({ job: j, instance }) => {
      if (j === 'run') await lab.sim.spotNotice(instance.instanceId);
    });
    const run = await runWorkflow(
      WORKFLOW,
      labCall({ command: 'echo retried > result.txt' }, { AWS_SUBNET_ID: lab.subnets[0] ?? '' }),
      host,
      { actionYml: ACTION_YML },
    );
    expect({ problems: wiringProblems(run, true), run: describeRun(run) }).toEqual({
      problems: [],
      run: expect.any(String),
    });

    // the first attempt: spot, taken on start's label, lost to the interruption; continue-on-error keeps the workflow going
    const label = job(run, 'start').outputs.label ?? '';
    const [first, second] = host.rec.runnerJobs;
    expect(first).toMatchObject({ job: 'run', label, instance: { market: 'spot', end: 'spot-interruption' } });
    expect(first?.labJob.result).toMatch(/^failed/);
    expect(job(run, 'run')).toMatchObject({ runnerLabel: label, failed: true, result: 'success', outputs: {} });
    expect(job(run, 'run').lost).toMatch(/^failed/);
    // the subnet came from the AWS_SUBNET_ID secret through `inputs.subnet-ids || secrets.AWS_SUBNET_ID`
    expect(host.rec.actions[0]?.inputs['subnet-ids']).toBe(lab.subnets[0]);

    // stop: interrupted, reported as a warning and in the summary
    expect(job(run, 'stop').outputs.interrupted).toBe('true');
    const report = step(run, 'stop', 'Report interruption');
    expect(report.log).toContain(
      `::warning title=spot interruption::AWS reclaimed the spot capacity of ${label} while the command ran (outcome: lost).`,
    );
    expect(report.summary).toBe(
      `- :warning: Spot capacity was reclaimed during the first attempt (\`${label}\`, command outcome: lost).\n`,
    );

    // the retry: on-demand in its inputs and at EC2, its own label, its job succeeded there
    const retryStart = host.rec.actions.find((a) => a.job === 'start-retry');
    expect(retryStart?.inputs).toMatchObject({
      mode: 'start',
      market: 'on-demand',
      'github-token': lab.gh.token,
      'subnet-ids': lab.subnets[0],
    });
    expect(retryStart?.main.errors).toEqual([]);
    const retryLabel = job(run, 'start-retry').outputs.label ?? '';
    expect(lab.proxy.fleets.map((f) => f.market)).toEqual(['spot', 'on-demand']);
    expect(lab.proxy.fleets[1]?.instanceIds).toEqual(
      JSON.parse(job(run, 'start-retry').outputs['instance-ids'] ?? '[]'),
    );
    expect(second).toMatchObject({ job: 'run-retry', label: retryLabel, instance: { market: 'on-demand' } });
    expect(second?.labJob.result).toBe('succeeded');
    expect(job(run, 'run-retry')).toMatchObject({
      runnerLabel: retryLabel,
      result: 'success',
      outputs: { outcome: 'success' },
    });
    expect(readFileSync(join(step(run, 'run-retry', 'Run command').cwd ?? '', 'result.txt'), 'utf8')).toBe('retried\n');
    expect(step(run, 'run-retry', 'Upload artifacts').ran).toBe(false); // artifacts is empty

    // stop-retry and conclude
    expect(actionStep(run, 'stop-retry').with).toMatchObject({ mode: 'stop', label: retryLabel });
    expect(job(run, 'stop-retry').outputs.cost).toMatch(/^\d+(\.\d+)?$/);
    expect(run.summary).toContain('- first attempt: did not finish (spot capacity reclaimed)\n');
    expect(run.summary).toContain('- :repeat: retried on on-demand capacity: success\n');
    expect(run.summary).toContain('- result: **success**');
    expect(run.outputs).toMatchObject({ outcome: 'success', interrupted: 'true', retried: 'true', label });
    expect(host.rec.actions.map((a) => `${a.job}:${a.inputs.mode ?? ''}:${a.main.exitCode ?? 'signal'}`)).toEqual([
      'start:start:0',
      'watch:watch:0',
      'stop:stop:0',
      'start-retry:start:0',
      'watch-retry:watch:0',
      'stop-retry:stop:0',
    ]);
    await lab.sim.waitAllTerminated(20_000);
    expect(first?.instance.jobSawInterruption).toBeDefined(); // the job saw the interruption marker
    await lab.assertNoLeaks();
  }, 120_000);
});
