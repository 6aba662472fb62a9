import * as core from '@actions/core';
import type { ReapResult } from './modes/reap.js';
import type { WatchResult } from './modes/watch.js';
import type { FillResult } from './modes/pool.js';
import type { StopRow } from './modes/stop.js';

export interface RunnerRow {
  name: string;
  id: number;
  instanceId: string;
  instanceType: string;
  availabilityZone: string;
  market: string;
  spotPrice?: string;
  /** The version the instance's listener reported (spot-runner:runner-version), once it has. */
  runnerVersion?: string;
  /** The instance's hardware fingerprint (spot-runner:fingerprint), once it has written it. */
  fingerprint?: string;
  /** Warm pool: the pool this machine was resumed from (absent for a cold launch). */
  fromPool?: string;
}

/**
 * A JIT config cannot carry --disableupdate, so a runner older than GitHub's newest release
 * updates itself before its job, and the version that runs is not the one whose SHA-256 the
 * image pinned. One warning per differing version; nothing when the pin or the report is missing.
 */
export function runnerVersionWarnings(
  pinned: string | undefined,
  rows: { instanceId: string; runnerVersion?: string }[],
): string[] {
  if (!pinned) return [];
  const byVersion = new Map<string, string[]>();
  for (const r of rows) {
    if (r.runnerVersion && r.runnerVersion !== pinned)
      byVersion.set(r.runnerVersion, [...(byVersion.get(r.runnerVersion) ?? []), r.instanceId]);
  }
  return [...byVersion].map(
    ([v, ids]) =>
      `Warning: the runner updated itself from the image's pinned ${pinned} to ${v} on ${ids.join(', ')} (a JIT runner cannot disable self-update): ` +
      'the version that ran is not the one whose SHA-256 was pinned. Merge the bump-runner pull request and rebuild the AMI.',
  );
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
          { data: 'runner version', header: true },
          { data: 'fingerprint', header: true },
        ],
        ...rows.map((r) => [
          cell(r.name),
          r.instanceId,
          r.instanceType,
          r.availabilityZone,
          r.fromPool ? `${r.market}, from pool ${cell(r.fromPool)}` : r.market,
          r.spotPrice ?? '—',
          cell(r.runnerVersion ?? 'not reported yet'),
          cell(r.fingerprint ?? 'not reported yet'),
        ]),
      ]);
    const pooled = rows.filter((r) => r.fromPool).length;
    if (pooled > 0)
      s.addRaw(
        `${pooled} of ${rows.length} runner(s) resumed from the warm pool, ${rows.length - pooled} launched cold.`,
        true,
      );
    if (notes.length > 0) s.addList(notes.map(cell));
  });
}

export async function poolSummary(r: FillResult): Promise<void> {
  await write((s) => {
    s.addHeading(`spot-runner: pool ${cell(r.pool)}`, 3).addRaw(
      `Settings hash <code>${cell(r.hash)}</code>: ${r.ready.length} machine(s) stopped and ready, ${r.launched.length} launched by this fill, ${r.failed.length} failed, ${r.stale.length} stale terminated.`,
      true,
    );
    if (r.failed.length > 0) s.addList(r.failed.map((f) => cell(`${f.instanceId}: ${f.why}`)));
  });
}

export async function stopSummary(
  rows: StopRow[],
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
        { data: 'runner version', header: true },
        { data: 'fingerprint', header: true },
      ],
      ...rows.map((r) => [
        r.instanceId,
        r.instanceType,
        r.market,
        r.state,
        r.interrupted ? 'yes' : 'no',
        r.hours.toFixed(3),
        r.cost === undefined ? 'unknown' : r.cost.toFixed(4),
        r.priceSource ?? '',
        r.githubHosted ?? '—',
        cell(r.runnerVersion ?? 'not reported'),
        cell(r.fingerprint ?? 'not reported'),
      ]),
    ]);
    s.addRaw(
      `Estimated cost: ${total === undefined ? 'unknown (a price was not available)' : `$${total.toFixed(4)}`}${githubHostedTotal === undefined ? '' : `; on GitHub-hosted larger runners with the same cores: $${githubHostedTotal.toFixed(3)}`}`,
      true,
    );
    if (costNotes.length > 0) s.addList(costNotes.map(cell));
    if (notes.length > 0) s.addList(notes.map(cell));
  });
}

export async function rollbackSummary(reason: string, lines: string[]): Promise<void> {
  await write((s) => {
    s.addHeading('spot-runner: start failed and was rolled back', 3)
      .addRaw(cell(reason), true)
      .addList(lines.map(cell));
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
        ...rows
          .slice(0, REAP_ROWS)
          .map((f) => [
            f.kind,
            cell(f.name ? `${f.id} (${f.name})` : f.id),
            cell(f.label ?? ''),
            cell(f.reason),
            f.outcome ?? '',
          ]),
      ]);
      if (rows.length > REAP_ROWS) s.addRaw(`… and ${rows.length - REAP_ROWS} more (see the reaped output).`, true);
    }
    if (r.problems.length > 0) s.addList(r.problems.map(cell));
  });
}

/** mode watch: each machine lost before its job, what replaced it, and how the watch ended. */
export async function watchSummary(r: WatchResult): Promise<void> {
  await write((s) => {
    s.addHeading('spot-runner: watch', 3).addRaw(`Label: <code>${cell(r.label)}</code>`, true);
    s.addRaw(
      r.failure
        ? `<p><strong>Gave up; the run is cancelled:</strong> ${cell(r.failure)}</p>`
        : `<p>Every runner took its job; ${r.replacements.length} replacement(s).</p>`,
      true,
    );
    if (r.replacements.length > 0) {
      s.addTable([
        [
          { data: 'lost machine', header: true },
          { data: 'its runner', header: true },
          { data: 'last phase', header: true },
          { data: 'state', header: true },
          { data: 'replacement', header: true },
          { data: 'runner', header: true },
          { data: 'type', header: true },
          { data: 'market', header: true },
        ],
        ...r.replacements.map((x) => [
          x.replaced,
          cell(x.runnerName),
          cell(x.lastPhase || 'none written'),
          cell(x.lastState || 'not listed'),
          x.row?.instanceId ?? cell(`failed: ${x.error ?? 'unknown'}`),
          cell(x.row?.name ?? '—'),
          x.row?.instanceType ?? '—',
          x.row?.market ?? '—',
        ]),
      ]);
    }
  });
}
