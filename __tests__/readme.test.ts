// The README's tables are the user's reference: they must name every input and output action.yml has.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

const action = parse(readFileSync('action.yml', 'utf8')) as { inputs: Record<string, { default?: string }>; outputs: Record<string, unknown>; runs: Record<string, string> };
const readme = readFileSync('README.md', 'utf8');

describe('README and action.yml agree', () => {
  it('opens with the two commands', () => {
    const block = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(block).toMatch(/^npm ci && npm run demo/m);
    expect(block).toMatch(/^npm test/m);
  });
  it.each(Object.keys(action.inputs))('documents input %s with its default', (name) => {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
    expect(row).toBeDefined();
    const d = action.inputs[name]?.default;
    if (d !== undefined && d !== '') expect(row).toContain(`\`${d}\``);
  });
  it.each(Object.keys(action.outputs))('documents output %s', (name) => {
    expect(readme).toContain(`| \`${name}\` |`);
  });
  it('runs on node24 with a post step for failure or cancel', () => {
    expect(action.runs).toMatchObject({ using: 'node24', main: 'dist/index.js', post: 'dist/index.js', 'post-if': 'failure() || cancelled()' });
  });
});
