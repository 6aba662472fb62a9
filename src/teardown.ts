import type { AwsClients } from './aws/clients.js';
import {
  DEFAULT_TERMINATE,
  describeByIds,
  describeByTag,
  terminate,
  type InstanceInfo,
  type TerminateOptions,
} from './aws/instances.js';
import { deleteParameters, describeUnder } from './aws/params.js';
import { deleteTemplate, describeTemplatesByTag } from './aws/templates.js';
import { errorMessage } from './errors.js';
import type { GitHub } from './github/client.js';
import { deleteRunner, listRunners, type Target } from './github/runners.js';
import type { Resources } from './state.js';
import { CLAIMED_POOL_PREFIX, PARAMETER_ROOT, TAGS, poolClaimName } from './tags.js';

export interface TeardownReport {
  /** Every instance seen, in its state before termination. */
  instances: InstanceInfo[];
  terminated: string[];
  runnersDeleted: number[];
  runnersBusy: number[];
  parametersDeleted: string[];
  templatesDeleted: string[];
  /** Failures; each names the resource and what went wrong. */
  problems: string[];
  /** What could not be known, and why it is no failure. */
  notes: string[];
}

/**
 * Removes what one start created: what is recorded, plus whatever carries its label (a launch
 * whose answer never arrived still tagged its instances). Each kind is removed independently, so
 * one failure never keeps the others alive. Already-gone is success.
 */
export async function teardown(
  aws: AwsClients,
  gh: GitHub | undefined,
  target: Target,
  res: Resources,
  labels: string[] = res.label ? [res.label] : [],
  terminateOptions: TerminateOptions = DEFAULT_TERMINATE,
): Promise<TeardownReport> {
  const report: TeardownReport = {
    instances: [],
    terminated: [],
    runnersDeleted: [],
    runnersBusy: [],
    parametersDeleted: [],
    templatesDeleted: [],
    problems: [],
    notes: [],
  };
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      report.problems.push(`${what}: ${errorMessage(e)}`);
    }
  };

  const seen = new Map<string, InstanceInfo>();
  const byTag = async (): Promise<InstanceInfo[]> => {
    if (labels.length > 0) return describeByTag(aws, TAGS.label, labels);
    // By record only: a watch's replacement carries its runner name, recorded before its launch.
    if (res.runnerNames.length > 0) return describeByTag(aws, TAGS.runnerName, res.runnerNames);
    return [];
  };
  const isGone = (i: InstanceInfo) => i.state === 'terminated' || i.state === 'shutting-down';

  // Instances first: they are what costs money. The recorded ids go straight to
  // TerminateInstances: right after a launch, Describe may not list them yet (eventual
  // consistency), and a rollback that only terminated what it could see would leak them.
  await attempt('terminating instances', async () => {
    for (const i of await describeByIds(aws, res.instanceIds)) seen.set(i.instanceId, i);
    for (const i of await byTag()) seen.set(i.instanceId, i);
    report.instances = [...seen.values()];
    const gone = new Set(report.instances.filter(isGone).map((i) => i.instanceId));
    const ids = [...new Set([...res.instanceIds, ...seen.keys()])].filter((id) => !gone.has(id));
    const out = await terminate(aws, ids, terminateOptions);
    report.terminated = out.terminated;
    if (out.unknown.length > 0)
      report.problems.push(
        `terminating instances: EC2 still does not know ${out.unknown.join(', ')} after ${Math.round(terminateOptions.notFoundBudgetMs / 1000)} s; check them in the console`,
      );
  });

  await Promise.all([
    attempt('deleting runners', async () => {
      if (!gh) return;
      const ids = new Set(res.runnerIds);
      if (labels.length > 0) {
        for (const r of await listRunners(gh, target)) if (r.labels.some((l) => labels.includes(l))) ids.add(r.id);
      } else {
        // By record only (a watch's post): a runner registered while the step was killed has no
        // recorded id, only the name recorded before the request. Names carry the label: never another's.
        for (const name of res.runnerNames)
          for (const r of await listRunners(gh, target, name)) if (r.name === name) ids.add(r.id);
      }
      for (const id of ids) {
        const outcome = await deleteRunner(gh, target, id);
        if (outcome === 'deleted') report.runnersDeleted.push(id);
        if (outcome === 'busy') report.runnersBusy.push(id);
      }
      if (report.runnersBusy.length > 0)
        report.problems.push(
          `runners ${report.runnersBusy.join(', ')} are busy and were left registered; their instances are terminated, so GitHub will drop them when the job ends`,
        );
    }),
    attempt('deleting parameters', async () => {
      const names = new Set(res.parameterNames);
      for (const l of labels) for (const p of await describeUnder(aws, `${PARAMETER_ROOT}/${l}`)) names.add(p.name);
      // A warm-pool machine's claim, its JIT parameter, is under the pool's path, not the label's.
      for (const i of report.instances) {
        const pool = i.tags[TAGS.pool]?.replace(CLAIMED_POOL_PREFIX, '');
        if (pool) names.add(poolClaimName(pool, i.instanceId));
      }
      report.parametersDeleted = await deleteParameters(aws, [...names]);
    }),
    attempt('deleting launch templates', async () => {
      const ids = new Set(res.launchTemplateIds);
      if (labels.length > 0) for (const t of await describeTemplatesByTag(aws, TAGS.label, labels)) ids.add(t.id);
      for (const id of ids) if (await deleteTemplate(aws, id)) report.templatesDeleted.push(id);
    }),
  ]);

  // A launch whose answer never came (the step was killed in it, or the call failed without a
  // verdict): EC2 may have launched machines it does not list yet. Look again, after the rest
  // is removed, until each shows or the not-found budget is spent.
  const unanswered = res.launchingNames.filter((n) => !res.launchedNames.includes(n));
  if (unanswered.length > 0)
    await attempt('looking for the machines of an unanswered launch', async () => {
      const recorded = new Set(res.instanceIds);
      const shown = () =>
        labels.length > 0
          ? [...seen.keys()].filter((id) => !recorded.has(id)).length >= unanswered.length
          : unanswered.every((n) => [...seen.values()].some((i) => i.tags[TAGS.runnerName] === n));
      let waited = 0;
      for (
        let delay = 500;
        !shown() && waited < terminateOptions.notFoundBudgetMs;
        delay = Math.min(delay * 2, 8_000)
      ) {
        await terminateOptions.sleep(delay);
        waited += delay;
        const fresh = (await byTag()).filter((i) => !seen.has(i.instanceId));
        for (const i of fresh) seen.set(i.instanceId, i);
        report.instances.push(...fresh);
        const live = fresh.filter((i) => !isGone(i)).map((i) => i.instanceId);
        if (live.length > 0) report.terminated.push(...(await terminate(aws, live, terminateOptions)).terminated);
      }
      if (!shown())
        report.notes.push(
          `no machine showed in ${Math.round(waited / 1000)} s for the unanswered launch of ${unanswered.join(', ')}: it most likely never launched, and a machine that did powers itself off when no JIT config comes`,
        );
    });
  return report;
}
