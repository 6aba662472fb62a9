import * as core from '@actions/core';

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

export async function stopSummary(rows: { instanceId: string; instanceType: string; market: string; state: string; interrupted: boolean; hours: number; cost?: number }[], total: number | undefined, notes: string[]): Promise<void> {
  await write((s) => {
    s.addHeading('spot-runner: stopped', 3).addTable([
      [
        { data: 'instance', header: true },
        { data: 'type', header: true },
        { data: 'market', header: true },
        { data: 'state before stop', header: true },
        { data: 'interrupted', header: true },
        { data: 'hours', header: true },
        { data: 'cost (USD)', header: true },
      ],
      ...rows.map((r) => [r.instanceId, r.instanceType, r.market, r.state, r.interrupted ? 'yes' : 'no', r.hours.toFixed(3), r.cost === undefined ? 'unknown' : r.cost.toFixed(4)]),
    ]);
    s.addRaw(`Estimated cost: ${total === undefined ? 'unknown (a price was not available)' : `$${total.toFixed(4)}`}`, true);
    if (notes.length > 0) s.addList(notes.map(cell));
  });
}

export async function rollbackSummary(reason: string, lines: string[]): Promise<void> {
  await write((s) => {
    s.addHeading('spot-runner: start failed and was rolled back', 3).addRaw(cell(reason), true).addList(lines.map(cell));
  });
}
