// Releases a user can pin: every internal reference names one owner/repo and the major tag, the
// retarget script moves them all to a fork (tried on a temporary copy), and release.yml moves the
// major tag the way actions/checkout does (its step run with bash against a scratch git remote).
import { describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { MAJOR, allRefs, findRefs, identity, repoFiles } from '../scripts/lib/refs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
type Obj = Record<string, unknown>;

describe('internal references', () => {
  const refs = allRefs(ROOT);
  it('name one owner/repo (package.json "repository") and one version, the major tag', () => {
    expect(identity(ROOT)).toBe('spot-runner/spot-runner');
    const stray = refs
      .filter((r) => `${r.owner}/${r.repo}` !== identity(ROOT) || r.version !== MAJOR)
      .map((r) => `${r.file}:${r.line} ${r.text}`);
    expect(stray).toEqual([]);
  });
  it('are found in the workflows, the examples, the docs, the README and the stack', () => {
    const files = new Set(refs.map((r) => r.file));
    for (const f of [
      '.github/workflows/spot-job.yml',
      'docs/examples/spot-job.yml',
      'docs/workflows.md',
      'README.md',
      'deploy/stack.ts',
      'deploy/spot-runner.template.json',
    ])
      expect(files).toContain(f);
    expect(refs.some((r) => r.path.startsWith('/.github/workflows/'))).toBe(true);
  });
  it('the finder sees a wrong owner, a wrong version and a sub-action, and leaves third parties and placeholders alone', () => {
    const text = [
      'uses: spot-runner/spot-runner@v2',
      'uses: someone/spot-runner/.github/workflows/spot-job.yml@v1',
      'uses: spot-runner/spot-runner/cleanup@v1',
      'uses: acme/app/.github/workflows/spot-job.yml@main',
      'uses: actions/checkout@08eba0b27e820071cde6df949e0beb9ba4906955 # v4.3.0',
      'uses: actions/cache/restore@v4',
      'uses: ORG/REPO/.github/workflows/provision-spot-runner.yml@main',
    ].join('\n');
    expect(
      findRefs(ROOT, 'x.yml', text, 'spot-runner').map((r) => `${r.line} ${r.owner}/${r.repo}${r.path}@${r.version}`),
    ).toEqual([
      '1 spot-runner/spot-runner@v2',
      '2 someone/spot-runner/.github/workflows/spot-job.yml@v1',
      '3 spot-runner/spot-runner/cleanup@v1',
      '4 acme/app/.github/workflows/spot-job.yml@main',
    ]);
  });
});

describe('npm run retarget', () => {
  /** A copy of the repository's files (node_modules linked), as a fork would have them. */
  function copy(): string {
    const dir = mkdtempSync(join(tmpdir(), 'retarget-'));
    for (const f of repoFiles(ROOT)) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      cpSync(join(ROOT, f), join(dir, f));
    }
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    execFileSync('git', ['init', '-q'], { cwd: dir });
    return dir;
  }
  const run = (dir: string, ...args: string[]) =>
    spawnSync(process.execPath, [join(ROOT, 'scripts/retarget.mjs'), ...args], {
      cwd: dir,
      env: { ...process.env, RETARGET_ROOT: dir },
      encoding: 'utf8',
    });

  it('rewrites every internal reference to the fork, and the template stays what the stack synthesizes', () => {
    const dir = copy();
    const before = allRefs(dir);
    const r = run(dir, 'myorg/runners');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^spot-runner\/spot-runner → myorg\/runners in \d+ files/);
    expect(identity(dir)).toBe('myorg/runners');
    const after = allRefs(dir);
    expect(after.map((x) => `${x.file}:${x.line}`)).toEqual(before.map((x) => `${x.file}:${x.line}`));
    expect(after.every((x) => x.owner === 'myorg' && x.repo === 'runners' && x.version === MAJOR)).toBe(true);
    const left = repoFiles(dir).filter((f) => readFileSync(join(dir, f), 'utf8').includes('spot-runner/spot-runner'));
    expect(left).toEqual([]);
    // The checkers expect the fork's name too, and the template needs no re-synth.
    expect(readFileSync(join(dir, 'test/workflows/check.ts'), 'utf8')).toContain("ACTION_REF = 'myorg/runners@v1'");
    const template = readFileSync(join(dir, 'deploy/spot-runner.template.json'), 'utf8');
    expect(template).toContain('uses: myorg/runners@v1');
    execFileSync(process.execPath, ['scripts/synth.mjs'], { cwd: dir });
    expect(readFileSync(join(dir, 'deploy/spot-runner.template.json'), 'utf8')).toBe(template);
    // Again, to another name: it starts from package.json, so a fork can move on.
    expect(run(dir, 'other/x').status).toBe(0);
    expect(allRefs(dir).every((x) => `${x.owner}/${x.repo}` === 'other/x')).toBe(true);
  }, 60_000);
  it('refuses what is not OWNER/REPO, and says how to call it', () => {
    const dir = copy();
    for (const bad of [[], ['myorg'], ['my org/x'], ['a/b/c']]) {
      const r = run(dir, ...bad);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/is not OWNER\/REPO \(for example: npm run retarget -- myorg\/spot-runner\)/);
    }
    expect(identity(dir)).toBe('spot-runner/spot-runner');
  }, 30_000);
});

describe('.github/workflows/release.yml', () => {
  const wf = parse(readFileSync(join(ROOT, '.github/workflows/release.yml'), 'utf8')) as Obj;
  const jobs = wf.jobs as Record<string, Obj>;
  const steps = (job: string) => (jobs[job]?.steps ?? []) as Obj[];
  const script = (job: string, name: string) => String(steps(job).find((s) => s.name === name)?.run ?? '');

  it('runs on a version tag, checks dist/ and the template first, and only the release job may write', () => {
    expect(((wf.on as Obj).push as Obj).tags).toEqual(['v[0-9]+.[0-9]+.[0-9]+']);
    const fresh = script('fresh', 'dist/ and deploy/spot-runner.template.json are fresh');
    expect(fresh).toMatch(/npm run -s bundle\n\s*npm run -s synth/);
    expect(fresh).toMatch(/git diff --exit-code .*-- dist deploy\/spot-runner\.template\.json/);
    expect(jobs.release?.needs).toBe('fresh');
    expect(wf.permissions).toEqual({ contents: 'read' });
    expect(jobs.fresh?.permissions).toEqual({ contents: 'read' });
    expect(jobs.release?.permissions).toEqual({ contents: 'write' });
    expect(script('release', 'Create the release')).toMatch(
      /gh release create "\$TAG" --verify-tag .*--generate-notes --notes "\$notes" deploy\/spot-runner\.template\.json/,
    );
  });

  describe('moving the major tag (the step, run with bash)', () => {
    const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
    function repo() {
      const dir = mkdtempSync(join(tmpdir(), 'release-'));
      const origin = join(dir, 'origin.git');
      const work = join(dir, 'work');
      git(dir, 'init', '-q', '--bare', origin);
      git(dir, 'init', '-q', work);
      for (const [k, v] of [
        ['user.name', 't'],
        ['user.email', 't@example.com'],
        ['commit.gpgsign', 'false'],
        ['tag.gpgsign', 'false'],
      ])
        git(work, 'config', k as string, v as string);
      git(work, 'remote', 'add', 'origin', origin);
      return { origin, work };
    }
    const commitAndTag = (work: string, tag: string) => {
      git(work, 'commit', '-q', '--allow-empty', '-m', tag);
      git(work, 'tag', '-a', tag, '-m', tag);
      git(work, 'push', '-q', 'origin', `refs/tags/${tag}`);
      return git(work, 'rev-parse', 'HEAD');
    };
    const moveMajor = (work: string, tag: string) =>
      spawnSync('bash', ['-e', '-c', script('release', 'Move the major tag')], {
        cwd: work,
        env: { PATH: process.env.PATH ?? '', TAG: tag, HOME: work },
        encoding: 'utf8',
      });
    const remoteMajor = (origin: string) => git(origin, 'rev-parse', 'v1^{commit}');

    it('points v1 at the newest v1 release (a commit, not the annotated tag), and a patch to an older line leaves it', () => {
      const { origin, work } = repo();
      commitAndTag(work, 'v1.2.0');
      expect(moveMajor(work, 'v1.2.0').status).toBe(0);
      const v130 = commitAndTag(work, 'v1.3.0');
      const r = moveMajor(work, 'v1.3.0');
      expect(r.status).toBe(0);
      expect(remoteMajor(origin)).toBe(v130);
      expect(git(origin, 'cat-file', '-t', 'refs/tags/v1')).toBe('commit');

      git(work, 'checkout', '-q', 'v1.2.0');
      commitAndTag(work, 'v1.2.4');
      const patch = moveMajor(work, 'v1.2.4');
      expect(patch.status).toBe(0);
      expect(patch.stdout).toContain('v1 stays on v1.3.0');
      expect(remoteMajor(origin)).toBe(v130);

      git(work, 'checkout', '-q', 'v1.3.0');
      const v1100 = commitAndTag(work, 'v1.10.0'); // version order, not text order
      expect(moveMajor(work, 'v1.10.0').status).toBe(0);
      expect(remoteMajor(origin)).toBe(v1100);
    }, 30_000);
  });
});
