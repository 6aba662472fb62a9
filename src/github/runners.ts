import * as core from '@actions/core';
import type { GitHub } from './client.js';
import { httpStatus, SpotRunnerError, errorMessage } from '../errors.js';

export interface Target {
  scope: 'repo' | 'org';
  owner: string;
  repo: string;
}

export interface Runner {
  id: number;
  name: string;
  status: string;
  busy: boolean;
  labels: string[];
}

function toRunner(r: { id: number; name: string; status: string; busy: boolean; labels: { name: string }[] }): Runner {
  return { id: r.id, name: r.name, status: r.status, busy: r.busy, labels: r.labels.map((l) => l.name) };
}

/** Resolves a runner group given by name or id (org scope). Repo runners always join group 1. */
export async function resolveRunnerGroup(gh: GitHub, t: Target, group: string | undefined): Promise<number> {
  if (t.scope === 'repo' || group === undefined) return 1;
  const groups = await gh.paginate(
    'GET /orgs/{org}/actions/runner-groups',
    { org: t.owner, per_page: 100 },
    (r) =>
      (r.data as unknown as { runner_groups: { id: number; name: string }[] }).runner_groups ??
      (r.data as unknown as { id: number; name: string }[]),
  );
  const found = /^\d+$/.test(group) ? groups.find((g) => g.id === Number(group)) : groups.find((g) => g.name === group);
  if (!found) {
    throw new SpotRunnerError(
      `Input 'runner-group': no runner group '${group}' in organisation ${t.owner}. Fix: use one of: ${groups.map((g) => `${g.name} (${g.id})`).join(', ')}`,
    );
  }
  return found.id;
}

export interface JitRunner {
  runner: Runner;
  encodedJitConfig: string;
}

/** How often start re-creates a runner whose first answer was lost (409 on the resend). */
export const JIT_ATTEMPTS = 3;

async function postJit(gh: GitHub, t: Target, body: Record<string, unknown>) {
  return t.scope === 'org'
    ? gh.request('POST /orgs/{org}/actions/runners/generate-jitconfig', {
        org: t.owner,
        ...(body as { name: string; runner_group_id: number; labels: string[] }),
      })
    : gh.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', {
        owner: t.owner,
        repo: t.repo,
        ...(body as { name: string; runner_group_id: number; labels: string[] }),
      });
}

/**
 * Registers one JIT runner. If GitHub carried out a request whose answer was lost, the retry
 * plugin's resend gets 409 Already exists: the runner exists but its JIT config never arrived.
 * Then the runner is found by name, deleted, and created again, at most JIT_ATTEMPTS times.
 */
export async function createJitRunner(
  gh: GitHub,
  t: Target,
  name: string,
  labels: string[],
  groupId: number,
  log: (l: string) => void = () => {},
): Promise<JitRunner> {
  const body = { name, runner_group_id: groupId, labels, work_folder: '_work' };
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await postJit(gh, t, body);
      const data = res.data as unknown as { runner: Parameters<typeof toRunner>[0]; encoded_jit_config: string };
      // Masked before anything could print it.
      core.setSecret(data.encoded_jit_config);
      return { runner: toRunner(data.runner), encodedJitConfig: data.encoded_jit_config };
    } catch (e) {
      if (httpStatus(e) !== 409 || attempt >= JIT_ATTEMPTS) {
        if (httpStatus(e) === 409)
          throw new SpotRunnerError(
            `Runner ${name} still exists after ${attempt} attempts to replace it (GitHub answers 409 Already exists): ${errorMessage(e)}`,
          );
        throw e;
      }
      const stale = (await listRunners(gh, t, name)).filter((r) => r.name === name);
      log(
        `Runner ${name} already exists (a lost answer: GitHub created it but its reply never arrived); deleting ${stale.map((r) => r.id).join(', ') || 'nothing found'} and creating it again`,
      );
      for (const r of stale) {
        const outcome = await deleteRunner(gh, t, r.id);
        if (outcome === 'busy')
          throw new SpotRunnerError(
            `Runner ${name} (id ${r.id}) already exists and is running a job; pick another label`,
          );
      }
    }
  }
}

/** undefined when GitHub no longer knows the runner (ephemeral runners vanish after their job). */
export async function getRunner(gh: GitHub, t: Target, id: number): Promise<Runner | undefined> {
  try {
    const res =
      t.scope === 'org'
        ? await gh.request('GET /orgs/{org}/actions/runners/{runner_id}', { org: t.owner, runner_id: id })
        : await gh.request('GET /repos/{owner}/{repo}/actions/runners/{runner_id}', {
            owner: t.owner,
            repo: t.repo,
            runner_id: id,
          });
    return toRunner(res.data as unknown as Parameters<typeof toRunner>[0]);
  } catch (e) {
    if (httpStatus(e) === 404) return undefined;
    throw e;
  }
}

/** Every runner of the scope, all pages; with `name`, only the runners of that name (GitHub filters). */
export async function listRunners(gh: GitHub, t: Target, name?: string): Promise<Runner[]> {
  const pick = (r: { data: unknown }) =>
    (
      (r.data as { runners?: Parameters<typeof toRunner>[0][] }).runners ?? (r.data as Parameters<typeof toRunner>[0][])
    ).map(toRunner);
  const byName = name === undefined ? {} : { name };
  return t.scope === 'org'
    ? gh.paginate('GET /orgs/{org}/actions/runners', { org: t.owner, per_page: 100, ...byName }, pick)
    : gh.paginate(
        'GET /repos/{owner}/{repo}/actions/runners',
        { owner: t.owner, repo: t.repo, per_page: 100, ...byName },
        pick,
      );
}

export type DeleteOutcome = 'deleted' | 'gone' | 'busy';

/**
 * GitHub answers 422 on DELETE for two reasons ("Validation failed, or the endpoint has been
 * spammed"): the runner is running a job, or too many requests hit the endpoint. The first is an
 * outcome; the second is retried after a pause.
 */
export function isBusyRefusal(e: unknown): boolean {
  return /still running a job|is busy|currently running/i.test(errorMessage(e));
}

export interface DeleteOptions {
  /** How often a "spammed" 422 is retried. */
  spamRetries?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** Idempotent: a runner that is already gone counts as removed. */
export async function deleteRunner(gh: GitHub, t: Target, id: number, o: DeleteOptions = {}): Promise<DeleteOutcome> {
  const retries = o.spamRetries ?? 4;
  const pause = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const baseMs = Number(process.env.SPOT_RUNNER_GITHUB_RETRY_BASE_MS) || 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      if (t.scope === 'org')
        await gh.request('DELETE /orgs/{org}/actions/runners/{runner_id}', { org: t.owner, runner_id: id });
      else
        await gh.request('DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}', {
          owner: t.owner,
          repo: t.repo,
          runner_id: id,
        });
      return 'deleted';
    } catch (e) {
      const status = httpStatus(e);
      if (status === 404) return 'gone';
      if (status === 422 && isBusyRefusal(e)) return 'busy';
      if (status === 422 && attempt < retries) {
        core.info(
          `Deleting runner ${id}: GitHub refused (${errorMessage(e)}); retrying in ${(baseMs * 2 ** attempt) / 1000} s`,
        );
        await pause(baseMs * 2 ** attempt);
        continue;
      }
      throw new SpotRunnerError(`Deleting runner ${id} failed: ${errorMessage(e)}`);
    }
  }
}
