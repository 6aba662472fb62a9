#!/usr/bin/env node
// `npm run bench` section 6 (also runnable alone: `node scripts/bench-aws.mjs [--runs N]`):
// what each AWS behaviour of the lab's proxy costs a start, in time and calls. N=100 starts
// (and five concurrent starts of 20) against the lab, with the behaviours switched on one at a
// time, and PutParameter paced (the default, 2/s) or left to the SDK's retries. Run alone, it
// rewrites only the "## 6. AWS behaviours" section of docs/benchmarks.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, loadTs } from './lib/load-ts.mjs';

const IDEAL = {
  instanceMs: 0,
  templateMs: 0,
  shuttingDownMs: 0,
  putPerSecond: Infinity,
  getPerSecond: Infinity,
  losePutEvery: 0,
};
const CASES = [
  { name: 'ideal world (all behaviours off), unpaced', count: 100, realism: IDEAL, puts: 0 },
  { name: 'ideal world, paced at 2/s (the default)', count: 100, realism: IDEAL, puts: 2 },
  {
    name: 'consistency window 8 s only, paced',
    count: 100,
    realism: { ...IDEAL, instanceMs: 8000, templateMs: 500 },
    puts: 2,
  },
  {
    name: 'PutParameter 3/s, unpaced (SDK adaptive retries)',
    count: 100,
    realism: { ...IDEAL, putPerSecond: 3 },
    puts: 0,
  },
  { name: 'PutParameter 3/s, paced at 2/s (the default)', count: 100, realism: { ...IDEAL, putPerSecond: 3 }, puts: 2 },
  {
    name: 'every default on, window 8 s (issue 11 scenario), paced',
    count: 100,
    realism: { instanceMs: 8000 },
    puts: 2,
  },
  {
    name: '5 × 20 concurrent, PutParameter 3/s, unpaced',
    count: 20,
    starts: 5,
    realism: { ...IDEAL, putPerSecond: 3 },
    puts: 0,
  },
  {
    name: '5 × 20 concurrent, PutParameter 3/s, paced at 2/s',
    count: 20,
    starts: 5,
    realism: { ...IDEAL, putPerSecond: 3 },
    puts: 2,
  },
];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export async function benchAws({ runs = 1, only, log = (...a) => console.error('[bench-aws]', ...a) } = {}) {
  const [{ startLab }, { scaleStart }] = await loadTs('test/lab/lab.ts', 'test/lab/scale.ts');
  const lab = await startLab({ simulator: { pollMs: 300 } });
  const rows = [];
  try {
    for (const c of CASES.filter((_, k) => !only || only.includes(k))) {
      const got = [];
      for (let i = 0; i < runs; i++) {
        await lab.reset();
        const r = await scaleStart(lab, {
          count: c.count,
          starts: c.starts,
          realism: c.realism,
          putsPerSecond: c.puts,
        });
        await Promise.all(r.labels.map((l) => lab.stop(l, {}, { timeoutMs: 300_000 })));
        await lab.sim.waitAllTerminated(60_000);
        if (!r.ok) log(`${c.name}: FAILED: ${r.errors.join(' | ').slice(0, 300)}`);
        got.push(r);
        log(
          `${c.name}: ${(r.startMs / 1000).toFixed(1)} s, PutParameter ${r.putCalls} calls (${r.putThrottled} throttled), ${r.putsPerSecond.toFixed(2)}/s`,
        );
      }
      rows.push({ c, got });
    }
  } finally {
    await lab.close();
  }
  const baseRow = rows.find((r) => r.c === CASES[1]);
  const base = baseRow ? median(baseRow.got.map((r) => r.startMs)) : NaN;
  const table = [
    '| case | start (s, median) | vs ideal paced | PutParameter calls | throttled | lost answers | account PutParameter rate (/s) | all succeeded |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map(({ c, got }) => {
      const ms = median(got.map((r) => r.startMs));
      return `| ${c.name} | ${(ms / 1000).toFixed(1)} | ${c.starts ? '—' : `${ms - base >= 0 ? '+' : ''}${((ms - base) / 1000).toFixed(1)} s`} | ${median(got.map((r) => r.putCalls))} | ${median(got.map((r) => r.putThrottled))} | ${median(got.map((r) => r.putLost))} | ${median(got.map((r) => r.putsPerSecond)).toFixed(2)} | ${got.every((r) => r.ok) ? 'yes' : 'NO'} |`;
    }),
  ].join('\n');
  const md = `## 6. AWS behaviours

What each behaviour the lab's proxy enforces (\`test/lab/aws-proxy.ts\`, \`Realism\`;
docs/platform-behaviours.md, "AWS") costs a start, measured by \`scripts/bench-aws.mjs\` (${runs} run(s)
per case, ${new Date().toISOString().slice(0, 10)}). Each case is a start of N=100 (or five concurrent
starts of 20) through the bundled action, machines played by the quick boot (\`test/lab/scale.ts\`),
which reads its parameters through the proxy. "Paced" is start's PutParameter pacer
(\`SPOT_RUNNER_SSM_PUTS_PER_SECOND\`, default 2); "unpaced" sets it to 0 and leaves throttling to
the SDK's adaptive retries. The account rate is successful PutParameter calls per second over
the span of the starts' calls: what is left of the 3/s is what other users of the account get.

${table}

Reading it: the consistency window costs a start little, because nothing on start's path needs
DescribeInstances any more (the account comes from STS, the waiter counts unlisted instances as
pending); a rollback pays it instead (about the window, in TerminateInstances retries). Pacing at
2/s makes a lone start of 100 throttle-free at no more calls than configs, and leaves a third of
the account's PutParameter budget free; unpaced, the SDK spends extra calls on throttles and takes
the whole budget while it runs. Concurrent starts throttle each other either way; the retries absorb it.
`;
  return { md, table };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (f) => (process.argv.includes(f) ? process.argv[process.argv.indexOf(f) + 1] : undefined);
  const runs = Number(arg('--runs')) || 1;
  // --cases 0,3: only those rows (for a partial re-run); the file is then left alone.
  const only = arg('--cases')?.split(',').map(Number);
  const { md, table } = await benchAws({ runs, only });
  console.log(table);
  if (only) process.exit(0);
  const file = join(ROOT, 'docs', 'benchmarks.md');
  const doc = readFileSync(file, 'utf8');
  const start = doc.indexOf('## 6. AWS behaviours');
  let next;
  if (start >= 0) {
    const after = doc.indexOf('\n## ', start + 5);
    next = doc.slice(0, start) + md + (after >= 0 ? doc.slice(after + 1) : '');
  } else {
    const caveats = doc.indexOf('## Caveats');
    next = caveats >= 0 ? `${doc.slice(0, caveats)}${md}\n${doc.slice(caveats)}` : `${doc}\n${md}`;
  }
  writeFileSync(file, next);
  process.exit(0);
}
