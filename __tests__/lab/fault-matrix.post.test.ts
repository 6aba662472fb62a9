// Fault matrix: the post step proven alone (issue 12). The runner SIGKILLs a step whose cancel
// grace ran out (or the process dies some other way): main then rolls back nothing, and the post
// step, with the same inputs and the state main recorded, is the only thing left to clean up.
import { describe, expect, it } from '@jest/globals';
import { DescribeParametersCommand } from '@aws-sdk/client-ssm';
import { makeTestApp } from '../../test/fakes/github-app.js';
import { useLab } from '../../test/lab/use-lab.js';

const lab = useLab();

async function jitParameters(): Promise<string[]> {
  const r = await lab.ssm.send(
    new DescribeParametersCommand({
      ParameterFilters: [{ Key: 'Path', Option: 'Recursive', Values: ['/spot-runner/jit'] }],
    }),
  );
  return (r.Parameters ?? []).map((p) => p.Name ?? '');
}

/** The credentials as the step gets them: a PAT, or a GitHub App whose tokens post mints anew. */
const CREDENTIALS: [string, () => Record<string, string>][] = [
  ['a PAT', () => ({})],
  [
    'GitHub App credentials',
    () => {
      const app = makeTestApp({ scopes: ['repos/acme/widgets'] });
      lab.gh.registerApp(app);
      return { 'github-token': '', 'github-app-id': String(app.appId), 'github-app-private-key': app.privateKey };
    },
  ],
];

describe('fault matrix: post step alone', () => {
  it.each(CREDENTIALS)(
    '13. start SIGKILLed once machines, runners and parameters exist: post removes all of it (%s)',
    async (_what, credentials) => {
      lab.sim.behaviour = { boot: 'never' };
      let seen = { instances: 0, runners: 0, parameters: 0 };
      const everythingExists = lab.sim.waitFor(
        'machines, runners and parameters to exist',
        () => {
          void jitParameters().then(
            (p) => (seen = { instances: lab.sim.instances.size, runners: lab.gh.runners.size, parameters: p.length }),
          );
          return seen.instances === 2 && seen.runners === 2 && seen.parameters === 2;
        },
        30_000,
      );
      const { main, post } = await lab.start(
        { count: '2', 'wait-timeout': '1', ...credentials() },
        { killWhen: everythingExists },
      );

      // main died without a word: no rollback, no summary, killed by the signal.
      expect(main.signal).toBe('SIGKILL');
      expect(main.stdout).not.toMatch(/rolled back/);
      expect(seen).toEqual({ instances: 2, runners: 2, parameters: 2 });
      // What main recorded is what post gets; it names the two machines.
      const recorded = JSON.parse(main.state.resources ?? '{}') as { instanceIds?: string[]; label?: string };
      expect(recorded.label).toMatch(/^spot-runner-/);
      expect(recorded.instanceIds).toHaveLength(2);

      expect(post).toBeDefined();
      expect(post?.exitCode).toBe(0);
      expect(post?.stdout).toMatch(/spot-runner post: terminated 2 instance\(s\)/);
      expect(post?.stdout).toMatch(/deleted 2 runner\(s\), 2 parameter\(s\), 1 launch template\(s\)/);
      await lab.sim.waitAllTerminated(10_000);
      for (const i of lab.sim.instances.values()) expect(i.end).toBe('terminated-externally');
      await lab.assertNoLeaks();
    },
    60_000,
  );
});
