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

const rows = [];
try {
  for (const n of SIZES) {
    const pool = [];
    const cold = [];
    const overhead = [];
    const procStart = [];
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
      const startAt = action.find((c) => c.action === 'StartInstances' && c.status === 200)?.at ?? NaN;
      const lastOnline = Math.max(...got.map((id) => lab.sim.get(id).connectedAt ?? NaN));
      const over = startAt - firstAt + (exitedAt - lastOnline);
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
    rows.push({ n, pool: median(pool), cold: median(cold), overhead: median(overhead), proc: median(procStart) });
  }
} finally {
  await lab.close();
}

const table = [
  `Simulated cold boot ${COLD_MS} ms, simulated resume ${RESUME_MS} ms; medians of ${RUNS} run(s); ${new Date().toISOString().slice(0, 10)}.`,
  '',
  '| N | pool start → all online (s) | cold start → all online (s) | pool / cold | pool overhead over the resume (s, target ≤ 1) | of which not counted: node process start (s) |',
  '|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.n} | ${sec(r.pool)} | ${sec(r.cold)} | ${(r.pool / r.cold).toFixed(2)} | ${sec(r.overhead)}${r.overhead <= 1000 ? '' : ' (over target)'} | ${sec(r.proc)} |`,
  ),
].join('\n');
console.log(table);
if (WRITE) {
  const f = join(ROOT, 'docs', 'benchmarks.md');
  const text = existsSync(f) ? readFileSync(f, 'utf8') : '';
  const begin = '<!-- bench-pool:begin -->';
  const end = '<!-- bench-pool:end -->';
  const block = `${begin}\n## Warm pool (\`scripts/bench-pool.mjs\`)\n\n${table}\n\nOverhead = start's first request → StartInstances (validation, GitHub checks, the claim with its lost-answer retry, the retag) + last runner online → start's exit. The machines' own time (resume, bootstrap with its up-to-2 s SSM jitter, runner connect) is not the control plane's. Both starts run the whole path through moto with the lab's default realism.\n${end}`;
  const next = text.includes(begin)
    ? text.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), block)
    : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(f, next);
  log(`wrote ${f}`);
}
if (rows.some((r) => r.overhead > 1000)) process.exitCode = 1;
