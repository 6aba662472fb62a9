import * as core from '@actions/core';
import type { ReapResult } from './modes/reap.js';

export interface RunnerRow {
  name: string;
  id: number;
  instanceId: string;
  instanceType: string;
  availabilityZone: string;
  market: string;
  spotPrice?: string;
}

function cell(s: string): string {
  return s.replace(/[|<>&]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** core.summary is a no-op outside Actions if GITHUB_STEP_SUMMARY is unset; we skip writing then. */
async function write(build: (s: typeof core.summary) => void): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  build(core.summary);
  await core.summary.write();
}

export async function startSummary(label: string, rows: RunnerRow[], notes: string[]): Promise<void> {
  await write((s) => {
    s.addHeading('spot-runner: runners started', 3)
      .addRaw(`Label: <code>${cell(label)}</code>`, true)
      .addTable([
        [
          { data: 'runner', header: true },
          { data: 'instance', header: true },
          { data: 'type', header: true },
          { data: 'AZ', header: true },
          { data: 'market', header: true },
          { data: 'spot price (USD/h)', header: true },
        ],
        ...rows.map((r) => [cell(r.name), r.instanceId, r.instanceType, r.availabilityZone, r.market, r.spotPrice ?? '—']),
      ]);
    if (notes.length > 0) s.addList(notes.map(cell));
  });
}

export async function stopSummary(
  rows: { instanceId: string; instanceType: string; market: string; state: string; interrupted: boolean; hours: number; cost?: number; priceSource?: string; githubHosted?: string }[],
  total: number | undefined,
  notes: string[],
  githubHostedTotal?: number,
  costNotes: string[] = [],
): Promise<void> {
  await write((s) => {
    s.addHeading('spot-runner: stopped', 3).addTable([
      [
        { data: 'instance', header: true },
        { data: 'type', header: true },
        { data: 'market', header: true },
        { data: 'state before stop', header: true },
        { data: 'interrupted', header: true },
        { data: 'hours', header: true },
        { data: 'cost (USD, with EBS)', header: true },
        { data: 'price from', header: true },
        { data: 'GitHub-hosted, same minutes', header: true },
      ],
      ...rows.map((r) => [r.instanceId, r.instanceType, r.market, r.state, r.interrupted ? 'yes' : 'no', r.hours.toFixed(3), r.cost === undefined ? 'unknown' : r.cost.toFixed(4), r.priceSource ?? '', r.githubHosted ?? '—']),
    ]);
    s.addRaw(`Estimated cost: ${total === undefined ? 'unknown (a price was not available)' : `$${total.toFixed(4)}`}${githubHostedTotal === undefined ? '' : `; on GitHub-hosted larger runners with the same cores: $${githubHostedTotal.toFixed(3)}`}`, true);
    if (costNotes.length > 0) s.addList(costNotes.map(cell));
    if (notes.length > 0) s.addList(notes.map(cell));
  });
}

export async function rollbackSummary(reason: string, lines: string[]): Promise<void> {
  await write((s) => {
    s.addHeading('spot-runner: start failed and was rolled back', 3).addRaw(cell(reason), true).addList(lines.map(cell));
  });
}

/** A job summary is capped at 1 MiB: a reap after a big leak lists the first rows and counts the rest. */
const REAP_ROWS = 500;

export async function reapSummary(r: ReapResult): Promise<void> {
  const rows = [...r.instances, ...r.runners, ...r.parameters, ...r.templates];
  await write((s) => {
    s.addHeading(`spot-runner: reap${r.dryRun ? ' (dry run: nothing was removed)' : ''}${r.nuke ? ' — nuke' : ''}`, 3);
    s.addRaw(
      `Scanned ${r.scanned.instances} instance(s), ${r.scanned.parameters} parameter(s), ${r.scanned.templates} launch template(s), ${r.scanned.runners} runner(s); ` +
        `max-age ${r.maxAgeMinutes} min, grace ${r.graceMinutes} min.`,
      true,
    );
    if (rows.length === 0) {
      s.addRaw('Nothing to reap.', true);
    } else {
      s.addTable([
        [
          { data: 'kind', header: true },
          { data: 'resource', header: true },
          { data: 'label', header: true },
          { data: 'reason', header: true },
          { data: 'outcome', header: true },
        ],
        ...rows.slice(0, REAP_ROWS).map((f) => [f.kind, cell(f.name ? `${f.id} (${f.name})` : f.id), cell(f.label ?? ''), cell(f.reason), f.outcome ?? '']),
      ]);
      if (rows.length > REAP_ROWS) s.addRaw(`… and ${rows.length - REAP_ROWS} more (see the reaped output).`, true);
    }
    if (r.problems.length > 0) s.addList(r.problems.map(cell));
  });
}
