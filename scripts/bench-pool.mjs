#!/usr/bin/env node
// `npm run bench:pool` (also run by `npm run bench`): the warm pool against a cold start, in the
// lab (moto behind the fault proxy with its default realism, the GitHub stand-in, the instance
// simulator running the REAL rendered bootstrap), always through the bundled dist/index.js.
//
// The machine side is simulated time: a cold machine's user-data starts --cold-boot ms after it
// appears (EC2's boot), a resumed one's per-boot hook --resume ms after StartInstances (EC2's
// resume). Everything else is real: the bootstrap, the SSM reads, the runner connecting.
//
// Figures, per N (medians over --runs):
//   - pool start to all N online, and cold start to all N online, side by side;
//   - pool overhead over the resume: what the control plane adds to the machines' own resume:
//     from start's first request to StartInstances (validation, GitHub checks, the claim, the
//     retag) plus from the last runner online to start's exit (the wait's tail). Target (issue
//     16): ≤ 1 s median. Node's process start (spawn → first request) is the same for every mode
//     and shown in its own column (the main bench's "cold start" figure).
//
// Usage: node scripts/bench-pool.mjs [--runs 3] [--sizes 1,5] [--cold-boot 3000] [--resume 1000] [--no-write]
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, loadTs } from './lib/load-ts.mjs';

const argv = process.argv.slice(2);
const opt = (f, d) => {
  const i = argv.findIndex((a) => a === f || a.startsWith(`${f}=`));
  if (i < 0) return d;
  return argv[i].includes('=') ? argv[i].slice(f.length + 1) : argv[i + 1];
};
const RUNS = Number(opt('--runs', 3));
const SIZES = String(opt('--sizes', '1,5')).split(',').map(Number);
const COLD_MS = Number(opt('--cold-boot', 3000));
const RESUME_MS = Number(opt('--resume', 1000));
const WRITE = !argv.includes('--no-write');
const log = (...a) => console.error('[bench:pool]', ...a);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const sec = (ms) => (ms / 1000).toFixed(2);

const [{ startLab }] = await loadTs('test/lab/lab.ts');
const lab = await startLab();
lab.sim.behaviour = { bootDelayMs: COLD_MS, resumeDelayMs: RESUME_MS };
const ids = (j) => JSON.parse(j ?? '[]');
// Waits this short: the bench measures, it does not wait out a sparse first poll.
const env = { SPOT_RUNNER_EXPECTED_BOOT_SECONDS: '0' };

async function finish(label, instanceIds) {
  const stop = await lab.stop(label);
  if (stop.exitCode !== 0) throw new Error(`stop failed: ${stop.stdout}`);
  await lab.sim.waitAllTerminated(60_000, instanceIds);
  await lab.reset();
  lab.sim.behaviour = { bootDelayMs: COLD_MS, resumeDelayMs: RESUME_MS };
}

// The figures before the one-parameter claim (two PutParameters per machine, one StartInstances
// for all, the overhead then counted to the FIRST StartInstances).
const BEFORE =
  'before: 1.34 s N=1, 2.72 s N=5 (claim and JIT config two PutParameters per machine, one StartInstances for all after every claim; counted to that StartInstances).';
const rows = [];
try {
  for (const n of SIZES) {
    const pool = [];
    const cold = [];
    const overhead = [];
    const procStart = [];
    const jitWaits = [];
    const overFirst = [];
    for (let r = 0; r < RUNS; r++) {
      // Pool: fill (not timed), then the start that resumes all N.
      const fill = await lab.pool('bench', n, {}, { env });
      if (fill.exitCode !== 0 || ids(fill.outputs['pool-ready']).length !== n)
        throw new Error(`fill failed: ${fill.stdout}`);
      lab.proxy.calls.length = 0;
      const spawnedAt = Date.now();
      const { main } = await lab.start({ count: String(n), pool: 'bench' }, { env });
      const exitedAt = Date.now();
      if (main.exitCode !== 0) throw new Error(`pool start failed: ${main.stdout}`);
      const got = ids(main.outputs['instance-ids']);
      if (ids(main.outputs['from-pool']).length !== n)
        throw new Error(`only ${ids(main.outputs['from-pool']).length} of ${n} came from the pool`);
      const action = lab.proxy.calls.filter((c) => c.source === 'action');
      const firstAt = action[0]?.at ?? NaN;
      // The LAST StartInstances: each machine is started on its own once its claim is won, and
      // all N online waits for the last one.
      const startAt = Math.max(
        ...action.filter((c) => c.action === 'StartInstances' && c.status === 200).map((c) => c.at),
      );
      // A machine that asked SSM before its JIT config existed waited for the control plane after
      // its resume: that would hide overhead in the machines' time, so it is counted and shown.
      jitWaits.push(
        lab.proxy.calls.filter((c) => c.source === 'instance' && c.action === 'GetParameter' && c.status !== 200)
          .length,
      );
      const lastOnline = Math.max(...got.map((id) => lab.sim.get(id).connectedAt ?? NaN));
      const over = startAt - firstAt + (exitedAt - lastOnline);
      // As the first version of this bench counted it: to the FIRST StartInstances (kept to compare like with like).
      const firstStart = action.find((c) => c.action === 'StartInstances' && c.status === 200)?.at ?? NaN;
      overFirst.push(firstStart - firstAt + (exitedAt - lastOnline));
      pool.push(main.ms);
      overhead.push(over);
      procStart.push(firstAt - spawnedAt);
      await finish(main.outputs.label, got);

      const { main: c } = await lab.start({ count: String(n) }, { env });
      if (c.exitCode !== 0) throw new Error(`cold start failed: ${c.stdout}`);
      cold.push(c.ms);
      await finish(c.outputs.label, ids(c.outputs['instance-ids']));
      log(`N=${n} run ${r + 1}: pool ${sec(main.ms)} s (overhead ${sec(over)} s), cold ${sec(c.ms)} s`);
    }
    rows.push({
      n,
      pool: median(pool),
      cold: median(cold),
      overhead: median(overhead),
      overFirst: median(overFirst),
      proc: median(procStart),
      jitWaits: Math.max(...jitWaits),
    });
  }
} finally {
  await lab.close();
}

const table = [
  `Simulated cold boot ${COLD_MS} ms, simulated resume ${RESUME_MS} ms; medians of ${RUNS} run(s); ${new Date().toISOString().slice(0, 10)}.`,
  '',
  '| N | pool start → all online (s) | cold start → all online (s) | pool / cold | pool overhead over the resume (s, target ≤ 1) | the same to the first StartInstances, as first counted (s) | not counted: node process start (s) | machine SSM reads before their JIT existed (max per run) |',
  '|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.n} | ${sec(r.pool)} | ${sec(r.cold)} | ${(r.pool / r.cold).toFixed(2)} | ${sec(r.overhead)}${r.overhead <= 1000 ? '' : ' (over target)'} | ${sec(r.overFirst)} | ${sec(r.proc)} | ${r.jitWaits} |`,
  ),
].join('\n');
console.log(table);
if (WRITE) {
  const f = join(ROOT, 'docs', 'benchmarks.md');
  const text = existsSync(f) ? readFileSync(f, 'utf8') : '';
  const begin = '<!-- bench-pool:begin -->';
  const end = '<!-- bench-pool:end -->';
  const block = `${begin}\n## Warm pool (\`scripts/bench-pool.mjs\`)\n\n${table}\n\n${BEFORE}\n\nOverhead = start's first request → the last pool machine's StartInstances (validation and GitHub checks at once, per runner its JIT config and the claim with it, lost-answer read-back included, then StartInstances) + last runner online → start's exit. A claim is the machine's JIT config itself, so a machine never waits for its JIT after the resume; the last column checks it (a machine's GetParameter that found nothing would mean hidden control-plane time). The machines' own time (resume, bootstrap with its up-to-2 s SSM jitter, runner connect) is not the control plane's. Both starts run the whole path through moto with the lab's default realism (PutParameter 3/s, every 25th answer lost; start paces PutParameter at 2/s).\n\nN=1 is at the target's edge because of the waiter's EC2 read budget (1.4 reads a second over the whole start, issue 15): a pool start makes 3 reads before its wait (instance types, image, the pool's listing; subnets and capacity pools only for a shortfall), so its first look may come 2.9 s after it began, while its machine is online about 2.2 s after; before the budget (and its 0.7 s fast polls) came in, this branch measured 0.73 s at N=1. Why N=5 misses: each machine may start only once its claim is won, and its claim needs its JIT config. GitHub issues those 250 ms apart (the client's write spacing) and start puts at most 2 a second after a burst of 2, so the fifth machine starts about 1.5 s after the first, whatever the claim's form: the old two-parameter claim was paced alike (its five claims alone took that long) and wrote the JIT configs only after StartInstances (the old bundle, one run of this bench: 2.67 s, and one of five machines asked SSM before its JIT existed). Pacing at the quota itself (3/s) was slower in the lab, not faster (two runs at N=5: 2.95 and 2.75 s): the lost answer's retry then meets ThrottlingException. Starting machines before their claim is won would hide the claims in the resume, but then a machine could be started for nobody or run with a claim it never reads: not done.\n${end}`;
  const next = text.includes(begin)
    ? text.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), block)
    : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(f, next);
  log(`wrote ${f}`);
}
if (rows.some((r) => r.overhead > 1000)) process.exitCode = 1;
