// Issue 10 in the lab, through dist/ as the Actions runner runs it, against the stand-in's
// GitHub behaviours (all on by default): the seed's later job finds its runner by
// [self-hosted, Linux, X64, spot, kani]; a lost generate-jitconfig answer is recovered; start,
// stop, reap and post work with GitHub App credentials; reap touches only its own home.
import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { makeTestApp } from '../../test/fakes/github-app.js';
import { useLab } from '../../test/lab/use-lab.js';

const lab = useLab();
// moto's account and the lab's region, hashed as docs/platform-behaviours.md describes (a literal rule, not the product's function).
const HOME = 'sr-home-' + createHash('sha256').update('123456789012/us-east-1').digest('hex').slice(0, 8);

/** github-token empty, the App's id and key instead. */
function appInputs(): Record<string, string> {
  const app = makeTestApp({ scopes: ['repos/acme/widgets'] });
  lab.gh.registerApp(app);
  return { 'github-token': '', 'github-app-id': String(app.appId), 'github-app-private-key': app.privateKey };
}

describe('GitHub, faithfully', () => {
  it("the seed's later job, runs-on [self-hosted, Linux, X64, spot, kani], finds the runner", async () => {
    const { main } = await lab.start({ count: '1', labels: 'spot, kani' });
    expect(main.errors).toEqual([]);
    const runner = [...lab.gh.runners.values()][0];
    expect(runner?.labels.map((l) => l.name)).toEqual([
      'self-hosted',
      'Linux',
      'X64',
      main.outputs.label,
      HOME,
      'spot',
      'kani',
    ]);
    const job = lab.gh.queueJob({ labels: ['self-hosted', 'Linux', 'X64', 'spot', 'kani'] });
    await lab.sim.waitFor('the seed job to be taken', () => job.startedAt !== undefined, 30_000);
    await lab.sim.waitAllTerminated(30_000);
    expect(job.result).toBe('succeeded');
    expect((await lab.stop(main.outputs.label ?? '')).exitCode).toBe(0);
    await lab.assertNoLeaks();
  }, 90_000);

  it('a generate-jitconfig whose answer was lost: start recovers, and nothing stays registered', async () => {
    lab.gh.inject({ operation: 'generate-jitconfig', status: 'lost-answer' });
    const { main, post } = await lab.start({ count: '1' }, { env: { SPOT_RUNNER_GITHUB_RETRY_BASE_MS: '10' } });
    expect(main.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    expect(post).toBeUndefined();
    expect(main.stdout).toMatch(/already exists \(a lost answer/);
    expect([...lab.gh.runners.values()].map((r) => r.name)).toEqual([`${main.outputs.label}-1`]);
    expect((await lab.stop(main.outputs.label ?? '')).exitCode).toBe(0);
    await lab.assertNoLeaks();
  }, 90_000);

  it('start and stop with GitHub App credentials: the key and the minted token never reach a log', async () => {
    const creds = appInputs();
    const { main } = await lab.start({ count: '1', ...creds });
    expect(main.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    expect(lab.gh.calls['create-installation-token']).toBeGreaterThanOrEqual(1);
    const stop = await lab.stop(main.outputs.label ?? '', creds);
    expect(stop.errors).toEqual([]);
    expect(stop.exitCode).toBe(0);
    expect(lab.gh.calls['create-installation-token']).toBeGreaterThanOrEqual(2);
    const minted = lab.gh.issuedSecrets.filter((s) => s.startsWith('ghs_'));
    expect(minted.length).toBeGreaterThanOrEqual(2);
    const masks = [main.stdout, stop.stdout]
      .join('\n')
      .split('\n')
      .filter((l) => l.startsWith('::add-mask::'));
    for (const m of minted) expect(masks).toContain(`::add-mask::${m}`);
    // Only the ::add-mask:: commands, which tell the runner what to hide, may carry them.
    for (const out of [main.stdout, main.stderr, stop.stdout, stop.stderr].map((o) =>
      o
        .split('\n')
        .filter((l) => !l.startsWith('::add-mask::'))
        .join('\n'),
    )) {
      for (const m of minted) expect(out).not.toContain(m);
      expect(out).not.toContain(creds['github-app-private-key']?.split('\n')[1] ?? '-');
    }
    await lab.assertNoLeaks();
  }, 90_000);

  it('the post step with App credentials removes what a failed start left (it mints its own token)', async () => {
    lab.sim.behaviour = { runner: 'no-connect' };
    const creds = appInputs();
    const { main, post } = await lab.start({ count: '1', 'wait-timeout': '0.2', ...creds });
    expect(main.exitCode).not.toBe(0);
    expect(post?.exitCode).toBe(0);
    expect(lab.gh.calls['create-installation-token']).toBeGreaterThanOrEqual(2);
    await lab.sim.waitAllTerminated(30_000);
    await lab.assertNoLeaks();
  }, 90_000);

  it('reap with App credentials removes its own ghosts and never a runner of another account or region', async () => {
    const creds = appInputs();
    const mine = lab.gh.seedRunner({
      scope: 'repos/acme/widgets',
      name: 'spot-runner-1-1-aaaaaa-00000001-1',
      labels: ['self-hosted', 'spot-runner-1-1-aaaaaa-00000001', HOME],
    });
    const theirs = lab.gh.seedRunner({
      scope: 'repos/acme/widgets',
      name: 'spot-runner-2-1-bbbbbb-00000002-1',
      labels: ['self-hosted', 'spot-runner-2-1-bbbbbb-00000002', 'sr-home-0badc0de'],
    });
    const r = await lab.reap({ ...creds, 'max-age': '0', confirm: 'everything' });
    expect(r.errors).toEqual([]);
    expect(r.exitCode).toBe(0);
    expect(lab.gh.runners.has(mine.id)).toBe(false);
    expect(lab.gh.runners.has(theirs.id)).toBe(true);
    lab.gh.runners.delete(theirs.id);
    await lab.assertNoLeaks();
  }, 90_000);

  it('reap deregisters, in the same run, the runner whose instance it terminates', async () => {
    const { main } = await lab.start({ count: '1' });
    expect(main.exitCode).toBe(0);
    // GitHub still lists the runner online: its machine is alive until reap terminates it.
    const r = await lab.reap({ 'max-age': '0', confirm: 'everything' });
    expect(r.exitCode).toBe(0);
    expect([...lab.gh.runners.values()].map((x) => x.name)).toEqual([]);
    await lab.sim.waitAllTerminated(30_000);
    await lab.assertNoLeaks();
  }, 90_000);
});
