#!/usr/bin/env node
// Renders user-data with the real renderer built by build-renderer.mjs.
// Usage: render-cli.mjs <built-dir> < options.json > user-data.sh   (exit 2 + message on error)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.argv[2];
const { renderUserData } = await import(pathToFileURL(join(dir, 'render.js')).href);
try {
  process.stdout.write(renderUserData(JSON.parse(readFileSync(0, 'utf8'))));
} catch (e) {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(2);
}
