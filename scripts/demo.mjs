#!/usr/bin/env node
// `npm run demo`: the main job on the local lab, narrated. Scenario 1 of the fault matrix:
// start 3 runners with the bundled action, run a job on each, stop, and check nothing leaked.
// Real parts throughout: dist/index.js run as the Actions runner runs it, the real rendered
// user-data booted by the instance simulator, the AWS SDK against moto, and the OpenAPI-checked
// GitHub stand-in.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, loadTs } from './lib/load-ts.mjs';

// The demo is for a person: a warning is one line, never a stack trace. The AWS SDK warns on
// Node 20 that its releases from January 2027 need Node 22 (a plain Warning whose message starts
// NodeVersionSupportWarning); that is said once, briefly. Node's own experimental notices are dropped.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name === 'ExperimentalWarning') return;
  const first = String(w.message).split('\n')[0];
  if (/^NodeVersionSupportWarning\b/.test(w.message))
    console.warn(`note: the AWS SDK's releases from January 2027 need Node.js >= 22 (this is ${process.version})`);
  else console.warn(`warning: ${w.name}: ${first}`);
});

const COUNT = 3;
const t0 = Date.now();
const say = (line) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}`);
const fromLog = (stdout, re) =>
  stdout
    .split('\n')
    .filter((l) => re.test(l))
    .map((l) => l.trim());

if (!existsSync(join(ROOT, 'dist', 'index.js'))) {
  console.error("dist/index.js is missing: run 'npm run bundle' first");
  process.exit(1);
}
const [{ startLab }, { renderSummary }] = await loadTs('test/lab/lab.ts', 'test/lab/summary-text.ts');

say('Starting the lab: moto (EC2 + SSM), the GitHub stand-in, the AWS fault proxy and the instance simulator');
const lab = await startLab({ simulator: { behaviour: { bootDelayMs: 500, jobMs: 1500 } } });
let failed = false;
try {
  say(`Lab up. AWS_ENDPOINT_URL=${lab.proxy.url} (moto behind it), GITHUB_API_URL=${lab.gh.url}`);

  say(
    `start: count=${COUNT}, image ssm:/spot-runner/ami/base/{arch}, types c7i.large + c6i.large, ${lab.subnets.length} subnets`,
  );
  const { main } = await lab.start({ count: String(COUNT) });
  for (const l of fromLog(main.stdout, /^Validated:/)) say(`  validated   ${l.replace(/^Validated: /, '')}`);
  const fleets = lab.proxy.calls.filter((c) => c.action === 'CreateFleet');
  say(`  fleet       ${fleets.length} CreateFleet request(s), type instant, ${COUNT} × spot, price-capacity-optimized`);
  for (const l of fromLog(main.stdout, /^Fleet launched/)) say(`              ${l}`);
  for (const l of fromLog(main.stdout, /^Runner .* is online/)) say(`  online      ${l}`);
  if (main.exitCode !== 0) throw new Error(`start failed: ${main.errors.join('; ') || main.stderr}`);
  const label = main.outputs.label;
  say(`  start returned in ${(main.ms / 1000).toFixed(1)} s with label ${label}`);

  say(`job: queueing ${COUNT} jobs for runs-on: ${label}`);
  const jobs = Array.from({ length: COUNT }, (_, k) => lab.gh.queueJob({ labels: [label], id: `demo-job-${k + 1}` }));
  await lab.sim.waitAllTerminated(60_000);
  for (const j of jobs) say(`  ${j.id} ran on runner ${j.runnerId}: ${j.result}`);
  for (const i of lab.sim.instances.values())
    say(
      `  ${i.instanceId} powered itself off (${i.powerOffReason}) after ${((i.lifetimeMs() ?? 0) / 1000).toFixed(1)} s; EC2 terminated it`,
    );

  say(`stop: label ${label}`);
  const stop = await lab.stop(label);
  if (stop.exitCode !== 0) throw new Error(`stop failed: ${stop.errors.join('; ') || stop.stderr}`);
  for (const l of fromLog(stop.stdout, /^Stopped:/)) say(`  ${l}`);
  say(`  interrupted=${stop.outputs.interrupted} cost=$${stop.outputs.cost || 'unknown'}`);

  const leaks = await lab.leaks();
  say(
    `leak check: ${leaks.instances.length} live instances, ${leaks.parameters.length} SSM parameters, ${leaks.launchTemplates.length} launch templates, ${leaks.runners.length} registered runners`,
  );
  await lab.assertNoLeaks();
  say('leak check: clean, and every GitHub request and response matched the OpenAPI description');

  // What the Actions UI shows on the run page, rendered for a terminal.
  console.log('\n---- job summary of start ----\n');
  console.log(renderSummary(main.summary));
  console.log('\n---- job summary of stop ----\n');
  console.log(renderSummary(stop.summary));
} catch (e) {
  failed = true;
  console.error(`\ndemo failed: ${e instanceof Error ? e.message : String(e)}`);
} finally {
  await lab.close();
}
process.exit(failed ? 1 : 0);
