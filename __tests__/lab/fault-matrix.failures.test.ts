// Fault matrix (issue 4), starts that go wrong: 4 (GitHub 5xx and secondary rate limits; a
// persistent outage), 5 (the runner never comes online: broken image), 6 (start cancelled
// mid-wait). Each ends with its kill path (start's own rollback and its post step) run and
// nothing left.
import { describe, expect, it } from '@jest/globals';
import { useLab } from '../../test/lab/use-lab.js';

const lab = useLab();

// GitHub retry waits grow as (n+1)² × this base; the lab shrinks it.
// The action counts GitHub's retry-after seconds as 50 ms; tests that inject a secondary limit
// tell the stand-in the same (lab.gh.retryAfterUnitMs), so it still refuses an early retry.
const fastRetries = { SPOT_RUNNER_GITHUB_RETRY_BASE_MS: '50' };

/**
 * Every instance was terminated by the action (start's rollback or its post step), not by its
 * own watchdogs: a logical check, where a time bound would measure the machine.
 */
function terminatedByTheAction() {
  expect(lab.sim.instances.size).toBeGreaterThan(0);
  expect(lab.proxy.count('TerminateInstances', 'action')).toBeGreaterThan(0);
  for (const i of lab.sim.instances.values()) {
    expect(i.terminatedAt).toBeDefined();
    expect(i.end).toBe('terminated-externally');
    expect(i.powerOffReason).toBeUndefined();
  }
}

describe('fault matrix: GitHub faults', () => {
  it('4a. 5xx and secondary rate limits during JIT creation and polling are retried; start succeeds', async () => {
    lab.gh.retryAfterUnitMs = 50;
    lab.gh.inject({ operation: 'generate-jitconfig', status: 502, times: 2 });
    lab.gh.inject({ operation: 'generate-jitconfig', status: 'secondary-rate-limit', retryAfter: 1, times: 1 });
    lab.gh.inject({ operation: 'get-runner', status: 503, times: 2 });
    lab.gh.inject({ operation: 'get-runner', status: 'secondary-rate-limit', retryAfter: 1, times: 1 });
    // One runner: start confirms it with a GET once its machine says listening (issue 15), and
    // that one GET meets the faults.
    const { main } = await lab.start({ count: '1' }, { env: fastRetries });
    expect(main.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    const failed = lab.gh.requests
      .filter((r) => r.status >= 500 || r.status === 403)
      .map((r) => `${r.operation ?? ''} ${r.status}`);
    expect(failed.sort()).toEqual([
      'generate-jitconfig 403',
      'generate-jitconfig 502',
      'generate-jitconfig 502',
      'get-runner 403',
      'get-runner 503',
      'get-runner 503',
    ]);
    // one runner registered, no more: a retried JIT request never registers a duplicate
    expect(lab.gh.runners.size).toBe(1);
    const stop = await lab.stop(main.outputs.label ?? '');
    expect(stop.exitCode).toBe(0);
    await lab.sim.waitAllTerminated(10_000);
    await lab.assertNoLeaks();
  }, 60_000);

  it('4b. a persistent GitHub outage: start fails, rolls back, and post finds nothing more to do', async () => {
    lab.gh.injectOutage('generate-jitconfig', 503);
    const { main, post } = await lab.start({ count: '2' }, { env: fastRetries });
    expect(main.exitCode).toBe(1);
    expect(main.errors.join('\n')).toMatch(/rolled back: terminated 2 instance\(s\)/);
    expect(post?.exitCode).toBe(0);
    lab.gh.clearFaults();
    await lab.sim.waitAllTerminated(10_000);
    terminatedByTheAction();
    await lab.assertNoLeaks();
  }, 60_000);
});

describe('fault matrix: the runner never comes online', () => {
  it('5a. broken image (the runner crashes): start fails fast with the instance phase, and removes everything', async () => {
    lab.sim.behaviour = { runner: 'crash' };
    const { main, post } = await lab.start({ count: '1', 'wait-timeout': '0.5' });
    expect(main.exitCode).toBe(1);
    // the instance's own phase tag names the reason, well before wait-timeout (30 s)
    expect(main.errors.join('\n')).toMatch(
      /will not come online: instance i-[0-9a-f]+ \(c7i\.large, \w[\w-]*, phase failed:runner-exited-without-job:exit-1/,
    );
    expect(post?.exitCode).toBe(0);
    await lab.sim.waitAllTerminated(10_000);
    for (const i of lab.sim.instances.values()) {
      expect(i.powerOffReason).toBe('runner-exited-without-job:exit-1');
      expect(i.console()).toContain('power-off: runner-exited-without-job:exit-1');
    }
    await lab.assertNoLeaks();
  }, 60_000);

  it('5b. the runner never reaches GitHub: wait-timeout, the error carries the phase, everything removed', async () => {
    lab.sim.behaviour = { runner: 'no-connect' };
    const { main, post } = await lab.start({ count: '1', 'wait-timeout': '0.15', 'idle-timeout': '0.5' });
    expect(main.exitCode).toBe(1);
    expect(main.errors.join('\n')).toMatch(/Timed out after 9 s waiting for 1 runner\(s\).*phase runner-started/);
    expect(post?.exitCode).toBe(0);
    await lab.sim.waitAllTerminated(10_000);
    // bound of this path: wait-timeout, plus the rollback
    for (const i of lab.sim.instances.values()) expect(i.end).toBe('terminated-externally');
    terminatedByTheAction();
    await lab.assertNoLeaks();
  }, 60_000);
});

describe('fault matrix: cancel', () => {
  it('6. start cancelled mid-wait (SIGINT, then SIGTERM): it rolls back, post runs, nothing left', async () => {
    lab.sim.behaviour = { boot: 'never' };
    let cancelAt = 0;
    const launched = lab.sim
      .waitFor('the fleet to launch', () => lab.sim.instances.size === 2, 30_000)
      .then(() => new Promise((r) => setTimeout(r, 1500)))
      .then(() => (cancelAt = Date.now()));
    const { main, post } = await lab.start(
      { count: '2', 'wait-timeout': '1' },
      { cancelWhen: launched, cancelGraceMs: 7500 },
    );
    expect(cancelAt).toBeGreaterThan(0);
    expect(main.stdout).toMatch(/Received SIGINT: cancelling start/);
    expect(main.errors.join('\n')).toMatch(/cancelled \(received SIGINT\) — rolled back: terminated 2 instance/);
    expect(main.exitCode).toBe(1);
    expect(post?.exitCode).toBe(0);
    await lab.sim.waitAllTerminated(10_000);
    // the cancel path: start's own rollback terminated them, after the cancel
    terminatedByTheAction();
    for (const i of lab.sim.instances.values()) expect(i.terminatedAt ?? 0).toBeGreaterThanOrEqual(cancelAt);
    await lab.assertNoLeaks();
  }, 60_000);
});
