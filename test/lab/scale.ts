// Big starts against the lab, for the fault matrix's scale scenarios and `npm run bench`'s AWS
// section: N runners (or several concurrent starts) under the proxy's AWS behaviours, with the
// quick boot standing in for the machines (the full simulator runs one real bootstrap per
// machine, too much for 100 on 2 cores). The machines read their parameters through the proxy,
// so GetParameter's shared quota applies to them as it does in AWS.
import { SSMClient } from '@aws-sdk/client-ssm';
import type { Realism } from './aws-proxy.js';
import type { Lab } from './lab.js';
import { LAB_REGION } from './lab.js';
import { quickBoot } from './quick-boot.js';

export interface ScaleRun {
  /** Wall time of the slowest start, ms. */
  startMs: number;
  ok: boolean;
  errors: string[];
  labels: string[];
  putCalls: number;
  putThrottled: number;
  putLost: number;
  /** PutParameter calls a second the account saw while the starts wrote (first to last call). */
  putsPerSecond: number;
  createFleetCalls: number;
  terminateNotFound: number;
}

export async function scaleStart(
  lab: Lab,
  o: { count: number; starts?: number; realism?: Partial<Realism>; putsPerSecond?: number },
): Promise<ScaleRun> {
  if (o.realism) lab.proxy.setRealism(o.realism);
  lab.sim.behaviour = { boot: 'never' };
  const ssm = new SSMClient({
    region: LAB_REGION,
    endpoint: lab.proxy.url,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 10,
    retryMode: 'adaptive',
  });
  const boot = quickBoot(lab.ec2, ssm, lab.gh.url, { pollMs: 300 });
  const env: Record<string, string> =
    o.putsPerSecond === undefined ? {} : { SPOT_RUNNER_SSM_PUTS_PER_SECOND: String(o.putsPerSecond) };
  const t0 = Date.now();
  let runs: Awaited<ReturnType<Lab['start']>>[];
  try {
    runs = await Promise.all(
      Array.from({ length: o.starts ?? 1 }, (_, k) =>
        lab.start(
          { count: String(o.count), 'wait-timeout': '5', 'max-lifetime': '10', 'idle-timeout': '5' },
          { env: { ...env, MATRIX_LEG: String(k) }, timeoutMs: 600_000 },
        ),
      ),
    );
  } finally {
    // Even when a start throws: a boot loop left running would boot the next scenario's machines too.
    await boot.stop();
    ssm.destroy();
  }
  const startMs = Date.now() - t0;
  const puts = lab.proxy.calls.filter((c) => c.action === 'PutParameter' && c.source === 'action');
  const span = puts.length > 1 ? ((puts.at(-1)?.at ?? 0) - (puts[0]?.at ?? 0)) / 1000 : 0;
  return {
    startMs,
    ok: runs.every((r) => r.main.exitCode === 0),
    errors: [...runs.flatMap((r) => r.main.errors), ...boot.failures.map((f) => `quick boot: ${f}`)],
    labels: runs.map((r) => r.main.outputs.label ?? ''),
    putCalls: puts.length,
    putThrottled: puts.filter((c) => c.fault === 'rate-limit').length,
    putLost: puts.filter((c) => c.fault === 'lost-answer').length,
    putsPerSecond: span > 0 ? puts.filter((c) => c.status === 200 || c.fault === 'lost-answer').length / span : NaN,
    createFleetCalls: lab.proxy.count('CreateFleet', 'action'),
    terminateNotFound: lab.proxy.calls.filter((c) => c.action === 'TerminateInstances' && c.fault === 'not-yet-visible')
      .length,
  };
}
