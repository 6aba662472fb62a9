#!/usr/bin/env node
// `npm run synth`: writes deploy/spot-runner.template.json from the CDK app in deploy/.
import { relative } from 'node:path';
import { ROOT, loadTs } from './lib/load-ts.mjs';

const [{ TEMPLATE, writeTemplate }] = await loadTs('deploy/app.ts');
writeTemplate();
console.log(`wrote ${relative(ROOT, TEMPLATE)}`);
