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
  const groups = await gh.paginate('GET /orgs/{org}/actions/runner-groups', { org: t.owner, per_page: 100 }, (r) =>
    (r.data as unknown as { runner_groups: { id: number; name: string }[] }).runner_groups ?? (r.data as unknown as { id: number; name: string }[]),
  );
  const found = /^\d+$/.test(group) ? groups.find((g) => g.id === Number(group)) : groups.find((g) => g.name === group);
  if (!found) {
    throw new SpotRunnerError(`Input 'runner-group': no runner group '${group}' in organisation ${t.owner}. Fix: use one of: ${groups.map((g) => `${g.name} (${g.id})`).join(', ')}`);
  }
  return found.id;
}

export interface JitRunner {
  runner: Runner;
  encodedJitConfig: string;
}

export async function createJitRunner(gh: GitHub, t: Target, name: string, labels: string[], groupId: number): Promise<JitRunner> {
  const body = { name, runner_group_id: groupId, labels, work_folder: '_work' };
  const res =
    t.scope === 'org'
      ? await gh.request('POST /orgs/{org}/actions/runners/generate-jitconfig', { org: t.owner, ...body })
      : await gh.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', { owner: t.owner, repo: t.repo, ...body });
  const data = res.data as unknown as { runner: Parameters<typeof toRunner>[0]; encoded_jit_config: string };
  // Masked before anything could print it.
  core.setSecret(data.encoded_jit_config);
  return { runner: toRunner(data.runner), encodedJitConfig: data.encoded_jit_config };
}

/** undefined when GitHub no longer knows the runner (ephemeral runners vanish after their job). */
export async function getRunner(gh: GitHub, t: Target, id: number): Promise<Runner | undefined> {
  try {
    const res =
      t.scope === 'org'
        ? await gh.request('GET /orgs/{org}/actions/runners/{runner_id}', { org: t.owner, runner_id: id })
        : await gh.request('GET /repos/{owner}/{repo}/actions/runners/{runner_id}', { owner: t.owner, repo: t.repo, runner_id: id });
    return toRunner(res.data as unknown as Parameters<typeof toRunner>[0]);
  } catch (e) {
    if (httpStatus(e) === 404) return undefined;
    throw e;
  }
}

/** Every runner of the scope, all pages. */
export async function listRunners(gh: GitHub, t: Target): Promise<Runner[]> {
  const pick = (r: { data: unknown }) => ((r.data as { runners?: Parameters<typeof toRunner>[0][] }).runners ?? (r.data as Parameters<typeof toRunner>[0][])).map(toRunner);
  return t.scope === 'org'
    ? gh.paginate('GET /orgs/{org}/actions/runners', { org: t.owner, per_page: 100 }, pick)
    : gh.paginate('GET /repos/{owner}/{repo}/actions/runners', { owner: t.owner, repo: t.repo, per_page: 100 }, pick);
}

export type DeleteOutcome = 'deleted' | 'gone' | 'busy';

/** Idempotent: a runner that is already gone counts as removed. */
export async function deleteRunner(gh: GitHub, t: Target, id: number): Promise<DeleteOutcome> {
  try {
    if (t.scope === 'org') await gh.request('DELETE /orgs/{org}/actions/runners/{runner_id}', { org: t.owner, runner_id: id });
    else await gh.request('DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}', { owner: t.owner, repo: t.repo, runner_id: id });
    return 'deleted';
  } catch (e) {
    const status = httpStatus(e);
    if (status === 404) return 'gone';
    if (status === 422) return 'busy';
    throw new SpotRunnerError(`Deleting runner ${id} failed: ${errorMessage(e)}`);
  }
}
