// The README's tables are the user's reference: they must name every input and output action.yml has.
// Its first screen is a newcomer's whole path, lab to first job, each step one command or block.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

const action = parse(readFileSync('action.yml', 'utf8')) as {
  inputs: Record<string, { default?: string }>;
  outputs: Record<string, unknown>;
  runs: Record<string, string>;
};
const readme = readFileSync('README.md', 'utf8');
const stack = JSON.parse(readFileSync('deploy/spot-runner.template.json', 'utf8')) as {
  Parameters: Record<string, { Default?: unknown }>;
  Outputs: Record<string, unknown>;
};
/** The first screen: everything before the first `## ` heading. */
const firstScreen = readme.slice(0, readme.indexOf('\n## '));
/** Its steps: a bold "N. …" line, then exactly one fenced block. */
const steps = [...firstScreen.matchAll(/^\*\*(\d)\. [^\n]*\n\n```(\w+)\n([\s\S]*?)```/gm)].map((m) => ({
  n: Number(m[1]),
  lang: m[2],
  body: m[3] ?? '',
}));
const step = (n: number) => steps.find((s) => s.n === n)?.body ?? '';

describe("the README's first screen", () => {
  it('is the five-step path, in order, each one block', () => {
    expect(steps.map((s) => `${s.n} ${s.lang}`)).toEqual(['1 sh', '2 sh', '3 sh', '4 sh', '5 yaml']);
    expect(step(1).trim()).toBe('npm ci && npm run demo');
    expect(step(2).trim()).toBe('npm test');
    expect(step(3)).toMatch(
      /^aws cloudformation deploy --stack-name \S+ --template-file deploy\/spot-runner\.template\.json/,
    );
    expect(step(3)).toContain('--capabilities CAPABILITY_NAMED_IAM');
    expect(step(4).trim()).toBe('gh workflow run build-ami.yml');
    const wf = parse(step(5)) as {
      jobs: Record<string, { 'runs-on': string; steps?: { uses?: string; with?: Record<string, string> }[] }>;
    };
    expect(Object.keys(wf.jobs)).toHaveLength(3);
    const modes = Object.values(wf.jobs).flatMap((j) =>
      (j.steps ?? []).filter((s) => s.uses === 'spot-runner/spot-runner@v1').map((s) => s.with?.mode),
    );
    expect(modes).toEqual(['start', 'stop']);
    expect(Object.values(wf.jobs).some((j) => j['runs-on'] === '${{ needs.start.outputs.label }}')).toBe(true);
  });
  it('deploys with every required stack parameter, and only parameters the stack has', () => {
    const given =
      /--parameter-overrides ([^\n]*)/
        .exec(step(3))?.[1]
        ?.trim()
        .split(/\s+/)
        .map((kv) => kv.split('=')[0] ?? '') ?? [];
    const required = Object.entries(stack.Parameters)
      .filter(([, p]) => p.Default === undefined)
      .map(([k]) => k);
    expect(given.filter((k) => !(k in stack.Parameters))).toEqual([]);
    expect(required.filter((k) => !given.includes(k))).toEqual([]);
  });
  it("hands the stack's outputs to exactly the variables the workflow and build-ami.yml read", () => {
    const read = [...step(3).matchAll(/\$\(out (\w+)\)/g)].map((m) => m[1] ?? '');
    expect(read.filter((k) => !(k in stack.Outputs))).toEqual([]);
    const set = [...step(3).matchAll(/gh variable set (\w+)/g)].map((m) => m[1] ?? '');
    const used = new Set([...step(5).matchAll(/vars\.(\w+)/g)].map((m) => m[1] ?? ''));
    const buildAmi = readFileSync('.github/workflows/build-ami.yml', 'utf8');
    for (const v of ['SPOT_RUNNER_PACKER_ROLE_ARN', 'SPOT_RUNNER_AWS_REGION']) {
      expect(buildAmi).toContain(`vars.${v}`);
      used.add(v);
    }
    expect([...used].sort()).toEqual([...set].sort());
    // The profile name the workflow uses is the stack's default one.
    expect(step(5)).toContain(`instance-profile: ${String(stack.Parameters.NamePrefix?.Default)}-instance`);
  });
  it('docs/deploy.md documents every parameter and output of the stack', () => {
    const doc = readFileSync('docs/deploy.md', 'utf8');
    for (const k of [...Object.keys(stack.Parameters), ...Object.keys(stack.Outputs)])
      expect(doc).toContain(`| \`${k}\` |`);
  });
});

describe('README and action.yml agree', () => {
  it.each(Object.keys(action.inputs))('documents input %s with its default', (name) => {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
    expect(row).toBeDefined();
    const d = action.inputs[name]?.default;
    if (d !== undefined && d !== '') expect(row).toContain(`\`${d}\``);
  });
  it.each(Object.keys(action.outputs))('documents output %s', (name) => {
    expect(readme).toContain(`| \`${name}\` |`);
  });
  it('runs on node24 with a post step for failure or cancel', () => {
    expect(action.runs).toMatchObject({
      using: 'node24',
      main: 'dist/index.js',
      post: 'dist/index.js',
      'post-if': 'failure() || cancelled()',
    });
  });
});
