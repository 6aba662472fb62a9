// Lets plain Node scripts (demo, bench) import the lab's TypeScript: registers the hooks in
// ts-hooks.mjs, then import()s each entry in place.
import { register } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
register('./ts-hooks.mjs', import.meta.url);

/** import()s each TypeScript entry (paths relative to the repository root), in order. */
export async function loadTs(...entries) {
  return Promise.all(entries.map((e) => import(pathToFileURL(join(ROOT, e)).href)));
}
