import type { AwsClients } from '../aws/clients.js';
import { describeByIds, describeByTag, volumeSizes, waitTerminated, type InstanceInfo } from '../aws/instances.js';
import { estimateCost } from '../aws/pricing.js';
import type { StopConfig } from '../config.js';
import { SpotRunnerError } from '../errors.js';
import type { GitHub } from '../github/client.js';
import type { Target } from '../github/runners.js';
import { emptyResources } from '../state.js';
import { TAGS } from '../tags.js';
import { teardown, type TeardownReport } from '../teardown.js';

export interface StopResult {
  interrupted: boolean;
  cost?: number;
  report: TeardownReport;
  rows: StopRow[];
  /** What the same minutes would have cost on GitHub-hosted runners with as many cores. */
  githubHostedCost?: number;
  /** Where the prices came from (summary only, not warnings). */
  costNotes: string[];
  notes: string[];
}

export interface StopRow {
  instanceId: string;
  instanceType: string;
  market: string;
  state: string;
  interrupted: boolean;
  hours: number;
  cost?: number;
  priceSource?: string;
  githubHosted?: string;
  /** What the instance tagged itself (spot-runner:runner-version, spot-runner:fingerprint), if it did. */
  runnerVersion?: string;
  fingerprint?: string;
}

/** EC2 says so in the state reason; the instance's phase tag covers a notice it saw first. */
export function wasInterrupted(i: InstanceInfo): boolean {
  return i.stateReasonCode === 'Server.SpotInstanceTermination' || (i.tags[TAGS.phase] ?? '').startsWith('interrupted');
}

export interface StopDeps {
  aws: AwsClients;
  gh: GitHub;
  log: (line: string) => void;
  now?: () => Date;
  terminateWaitSeconds?: number;
  /** The waiter's first delay; tests shorten it. */
  terminatePollSeconds?: number;
}

export async function stop(cfg: StopConfig, deps: StopDeps): Promise<StopResult> {
  const { aws, gh } = deps;
  const target: Target = { scope: cfg.scope, owner: cfg.run.owner, repo: cfg.run.repo };
  const labels = new Set(cfg.label ? [cfg.label] : []);
  // Given only ids, the instances' own label tags lead to their runners, parameters and template.
  if (cfg.instanceIds.length > 0) {
    for (const i of await describeByIds(aws, cfg.instanceIds)) {
      const l = i.tags[TAGS.label];
      if (l) labels.add(l);
      else
        deps.log(
          `Warning: ${i.instanceId} has no ${TAGS.label} tag; it was not started by spot-runner and is left alone`,
        );
    }
  }
  // Volume sizes for the EBS part of the cost, read while the volumes still exist.
  const before = labels.size > 0 ? await describeByTag(aws, TAGS.label, [...labels]).catch(() => []) : [];
  const volumes = await volumeSizes(aws, before);
  // Only instances carrying a label are touched: the label filter drops foreign ids.
  const report = await teardown(aws, gh, target, emptyResources(), [...labels]);
  const unmanaged = cfg.instanceIds.filter((id) => !report.instances.some((i) => i.instanceId === id));
  if (unmanaged.length > 0)
    report.problems.push(`not touched (not spot-runner instances or unknown): ${unmanaged.join(', ')}`);

  const terminatedNow = report.terminated;
  const settled = await waitTerminated(
    aws,
    terminatedNow,
    deps.terminateWaitSeconds ?? 120,
    deps.terminatePollSeconds ?? 2,
  );
  const notes: string[] = [];
  if (!settled) {
    const states = await describeByIds(aws, terminatedNow);
    const stuck = states.filter((s) => s.state !== 'shutting-down' && s.state !== 'terminated');
    if (stuck.length > 0)
      report.problems.push(
        `still not terminating after the wait: ${stuck.map((s) => `${s.instanceId} (${s.state})`).join(', ')}`,
      );
    else notes.push('some instances are still shutting down; EC2 will finish terminating them');
  }

  const now = deps.now?.() ?? new Date();
  const {
    lines,
    total,
    githubHostedTotal,
    notes: costNotes,
  } = await estimateCost(aws, report.instances, now, { region: cfg.region, volumeGiB: volumes });
  const rows: StopRow[] = report.instances.map((i, k) => ({
    instanceId: i.instanceId,
    instanceType: i.instanceType,
    market: i.market,
    state: i.state,
    interrupted: wasInterrupted(i),
    hours: lines[k]?.hours ?? 0,
    cost: lines[k]?.cost,
    priceSource: lines[k]?.priceSource,
    githubHosted: lines[k]?.githubHosted
      ? `${lines[k]?.githubHosted?.label}: $${lines[k]?.githubHosted?.cost.toFixed(3)}`
      : undefined,
    runnerVersion: i.tags[TAGS.runnerVersion],
    fingerprint: i.tags[TAGS.fingerprint],
  }));
  const interrupted = rows.some((r) => r.interrupted);
  if (report.instances.length === 0)
    notes.push(`nothing was running for ${[...labels].join(', ') || 'the given ids'} (already stopped?)`);
  deps.log(
    `Stopped: terminated ${report.terminated.length}, deleted ${report.runnersDeleted.length} runner(s), ${report.parametersDeleted.length} parameter(s), ${report.templatesDeleted.length} template(s)${interrupted ? '; spot capacity was reclaimed' : ''}`,
  );
  const hard = report.problems.filter((p) => !p.startsWith('runners ') && !p.startsWith('not touched'));
  if (hard.length > 0) {
    throw Object.assign(new SpotRunnerError(`stop could not remove everything: ${hard.join('; ')}`), {
      result: { interrupted, cost: total, githubHostedCost: githubHostedTotal, costNotes, report, rows, notes },
    });
  }
  notes.push(...report.problems);
  return { interrupted, cost: total, githubHostedCost: githubHostedTotal, costNotes, report, rows, notes };
}
