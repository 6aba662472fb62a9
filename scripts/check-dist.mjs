#!/usr/bin/env node
// npm test's first check: dist/ must be what the sources build to, because the lab runs the
// committed bundle exactly as the Actions runner would. Builds into a temp dir and compares.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const fix = 'run `npm run bundle` and commit dist/ (the lab tests the committed bundle)';

function files(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(`check-dist: ${cmd} ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
    process.exit(1);
  }
}

run(process.execPath, ['scripts/embed-user-data.mjs', '--check']);
const out = mkdtempSync(join(tmpdir(), 'sr-dist-'));
try {
  const ncc = join(root, 'node_modules', '@vercel', 'ncc', 'dist', 'ncc', 'cli.js');
  run(process.execPath, [ncc, 'build', 'src/index.ts', '-o', out, '--license', 'licenses.txt', '--target', 'es2022']);
  run(process.execPath, [ncc, 'build', 'src/ami/cli.ts', '-o', join(out, 'ami'), '--target', 'es2022']);
  const want = files(out);
  const have = files(join(root, 'dist'));
  const stale = [
    ...want.filter((f) => !have.includes(f)).map((f) => `missing: dist/${f}`),
    ...have.filter((f) => !want.includes(f)).map((f) => `extra: dist/${f}`),
    ...want
      .filter((f) => have.includes(f))
      .filter((f) => !readFileSync(join(out, f)).equals(readFileSync(join(root, 'dist', f))))
      .map((f) => `differs: dist/${f}`),
  ];
  if (stale.length > 0) {
    console.error(`dist/ is not what the sources build to: ${fix}\n  ${stale.join('\n  ')}`);
    process.exit(1);
  }
  console.log('check-dist: dist/ is fresh');
} finally {
  rmSync(out, { recursive: true, force: true });
}
