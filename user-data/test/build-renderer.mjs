#!/usr/bin/env node
// Builds the REAL renderer for the shell tests: transpiles src/userdata/render.ts (no type
// check; tsc/jest do that) and generates template.js straight from user-data/bootstrap.sh,
// so the bats suite always runs the current script. Usage: build-renderer.mjs <out-dir>
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = process.argv[2];
if (!out) {
  console.error('usage: build-renderer.mjs <out-dir>');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const src = readFileSync(join(root, 'src', 'userdata', 'render.ts'), 'utf8');
const js = ts.transpileModule(src, {
  compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
}).outputText;
writeFileSync(join(out, 'render.js'), js);
const script = readFileSync(join(root, 'user-data', 'bootstrap.sh'), 'utf8');
writeFileSync(join(out, 'template.js'), `export const BOOTSTRAP_TEMPLATE = ${JSON.stringify(script)};\n`);
writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
