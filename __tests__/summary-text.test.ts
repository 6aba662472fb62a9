// The demo shows job summaries in a terminal: the HTML src/summary.ts writes through
// @actions/core, rendered as text. Fed the real summary, not a hand-written sample.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import * as core from '@actions/core';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSummary, stopSummary } from '../src/summary.js';
import { decode, renderSummary } from '../test/lab/summary-text.js';

// core.summary remembers the file it first wrote to, so every case shares one.
const file = join(mkdtempSync(join(tmpdir(), 'summary-')), 'summary');
beforeEach(() => {
  writeFileSync(file, '');
  process.env.GITHUB_STEP_SUMMARY = file;
  core.summary.emptyBuffer();
});
afterEach(() => {
  delete process.env.GITHUB_STEP_SUMMARY;
});

describe('renderSummary', () => {
  it("lays out start's summary as a heading and an aligned table, with no HTML left", async () => {
    await startSummary(
      'spot-runner-1-1-ab|<x>',
      [
        {
          name: 'r-1',
          id: 1,
          instanceId: 'i-0123456789abcdef0',
          instanceType: 'c7i.large',
          availabilityZone: 'us-east-1a',
          market: 'spot',
          spotPrice: '0.0312',
        },
        {
          name: 'runner-number-2',
          id: 2,
          instanceId: 'i-1',
          instanceType: 'm7i.4xlarge',
          availabilityZone: 'us-east-1b',
          market: 'on-demand',
        },
      ],
      ['spot capacity short: 1 on-demand & fine'],
    );
    const html = readFileSync(file, 'utf8');
    expect(html).toContain('<table>');
    const text = renderSummary(html);
    expect(text).not.toMatch(/<\/?(h3|code|table|tr|th|td|ul|li)>|&#\d+;/);
    const lines = text.split('\n');
    expect(lines[0]).toBe('spot-runner: runners started');
    expect(lines[1]).toBe('═'.repeat(lines[0]?.length ?? 0));
    expect(text).toContain('Label: spot-runner-1-1-ab|<x>');
    const header = lines.find((l) => l.includes('runner') && l.includes('instance')) ?? '';
    const rows = [
      lines.find((l) => l.includes('i-0123456789abcdef0')) ?? '',
      lines.find((l) => l.includes('runner-number-2')) ?? '',
    ];
    // Every column starts where its header does.
    for (const [col, values] of [
      ['instance', ['i-0123456789abcdef0', 'i-1']],
      ['type', ['c7i.large', 'm7i.4xlarge']],
      ['market', ['spot', 'on-demand']],
      ['spot price (USD/h)', ['0.0312', '—']],
    ] as const) {
      const at = header.indexOf(col);
      expect(at).toBeGreaterThan(0);
      values.forEach((v, k) => expect(rows[k]?.indexOf(v)).toBe(at));
    }
    // runner, instance, type, AZ, market, spot price, runner version, fingerprint
    expect(lines[lines.indexOf(header) + 1]).toMatch(/^ {2}─+( {2}─+){7}$/);
    expect(text).toContain('  • spot capacity short: 1 on-demand & fine');
  });
  it("keeps stop's text after the table", async () => {
    await stopSummary(
      [
        {
          instanceId: 'i-1',
          instanceType: 'c7i.large',
          market: 'spot',
          state: 'running',
          interrupted: false,
          hours: 0.5,
          cost: 0.0156,
        },
      ],
      0.0156,
      [],
    );
    const text = renderSummary(readFileSync(file, 'utf8'));
    expect(text).toMatch(/i-1 +c7i\.large +spot +running +no +0\.500 +0\.0156/);
    expect(text.split('\n').at(-1)).toBe('Estimated cost: $0.0156');
  });
  it('decodes numeric and named entities once', () => {
    expect(decode('&#124; &#x3c; &amp;lt; &nbsp;')).toBe('| < &lt;  ');
    expect(renderSummary('<p>a &amp;lt; b</p>')).toBe('a &lt; b');
  });
});
