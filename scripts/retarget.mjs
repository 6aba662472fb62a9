#!/usr/bin/env node
// `npm run retarget -- myorg/spot-runner`: points every internal reference (workflows, docs,
// examples, README, the stack's snippet and its committed template, package.json) at a fork, so
// no re-synth or rebuild is needed. RETARGET_ROOT runs it on another checkout (the test's copy).
import { ROOT, loadTs } from './lib/load-ts.mjs';

const target = process.argv[2] ?? '';
const [{ retarget, identity }] = await loadTs('scripts/lib/refs.ts');
const root = process.env.RETARGET_ROOT ?? ROOT;
try {
  const from = identity(root);
  const changed = retarget(root, target);
  console.log(
    changed.length
      ? `${from} → ${target} in ${changed.length} files:\n  ${changed.join('\n  ')}`
      : `already ${target}: nothing to change`,
  );
} catch (e) {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
}
