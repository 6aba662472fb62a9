import * as core from '@actions/core';
import { GitHub as ActionsOctokit } from '@actions/github/lib/utils';
import { createAppAuth } from '@octokit/auth-app';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import Bottleneck from 'bottleneck';
import { InputError } from '../errors.js';

const Octokit = ActionsOctokit.plugin(retry, throttling);
export type GitHub = InstanceType<typeof Octokit>;

/** A PAT (or any token) in github-token, or a GitHub App whose installation token the action mints. */
export type GitHubAuth =
  { kind: 'token'; token: string } | { kind: 'app'; appId: string; privateKey: string; installationId?: number };

/**
 * What the last response said about the core rate limit; the runner waiter paces itself by it.
 * GitHub names the bucket of each answer in x-ratelimit-resource: generate-jitconfig draws on
 * actions_runner_registration, the polls on core, and the two must not be mixed up.
 */
export interface RateLimit {
  remaining?: number;
  resetEpochSeconds?: number;
  /** Every other bucket seen, by its x-ratelimit-resource name. */
  buckets?: Record<string, { remaining: number; resetEpochSeconds: number }>;
}

/** Reads one answer's rate-limit headers into `rate`, by bucket. */
export function recordRateLimit(rate: RateLimit, headers: Record<string, string | number | undefined>): void {
  const remaining = headers['x-ratelimit-remaining'];
  const reset = headers['x-ratelimit-reset'];
  if (remaining === undefined || reset === undefined) return;
  const resource = String(headers['x-ratelimit-resource'] ?? 'core');
  if (resource === 'core') {
    rate.remaining = Number(remaining);
    rate.resetEpochSeconds = Number(reset);
  } else {
    rate.buckets = { ...rate.buckets, [resource]: { remaining: Number(remaining), resetEpochSeconds: Number(reset) } };
  }
}

const masked = new Set<string>();
function mask(secret: string): void {
  if (secret === '' || masked.has(secret)) return;
  masked.add(secret);
  core.setSecret(secret);
}

/**
 * Octokit with retry (5xx, network) and throttling (primary and secondary rate limits).
 * getOctokit reads GITHUB_API_URL, so GitHub Enterprise Server and our stand-in just work.
 */
export function makeGitHub(auth: string | GitHubAuth, rate: RateLimit = {}): GitHub {
  const a: GitHubAuth = typeof auth === 'string' ? { kind: 'token', token: auth } : auth;
  const env = process.env;
  const proxied = Boolean(env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy);
  const maxRetries = Number(process.env.SPOT_RUNNER_GITHUB_RETRIES) || 4;
  // Retry waits grow as (n+1)² × this; the lab shrinks it to keep outage tests fast.
  const retryAfterBaseValue = Number(process.env.SPOT_RUNNER_GITHUB_RETRY_BASE_MS) || 1000;
  const octokit = new Octokit({
    // An App mints an installation token (1 h) and renews it before it expires, itself.
    ...(a.kind === 'token'
      ? { auth: a.token }
      : {
          authStrategy: createAppAuth,
          auth: {
            appId: a.appId,
            privateKey: a.privateKey,
            ...(a.installationId === undefined ? {} : { installationId: a.installationId }),
          },
        }),
    userAgent: 'spot-runner',
    // Not request.retries: the plugin would then retry every error, 4xx included.
    // 403 and 429 belong to the throttling plugin, which honours retry-after and x-ratelimit-reset;
    // plugin-retry would resend them after its own short backoff.
    retry: { doNotRetry: [400, 401, 403, 404, 409, 410, 422, 429, 451], retries: maxRetries, retryAfterBaseValue },
    // Read at call time: @actions/github fixes its default base URL when first imported.
    baseUrl: env.GITHUB_API_URL || 'https://api.github.com',
    // Node's own fetch unless a proxy is set, where @actions/github's undici proxy fetch is needed.
    request: proxied ? {} : { fetch: globalThis.fetch },
    throttle: {
      // retry-after × this; the lab and unit tests shrink it like the retry base.
      retryAfterBaseValue,
      // The plugin's default spaces writes 1 s apart, which makes 100 JIT configs take 100 s.
      // GitHub's secondary limit is 900 points a minute (a write costs 5): 100 writes at 4/s
      // stay well inside it, and a secondary-limit answer is still retried below.
      write: new Bottleneck.Group({
        id: 'spot-runner-write',
        maxConcurrent: 1,
        minTime: Number(process.env.SPOT_RUNNER_GITHUB_WRITE_GAP_MS ?? 250),
      }),
      onRateLimit: (retryAfter: number, options: { method: string; url: string }, _o: unknown, retryCount: number) => {
        core.warning(
          `GitHub rate limit hit on ${options.method} ${options.url}; retrying in ${retryAfter}s (try ${retryCount + 1})`,
        );
        return retryCount < 2;
      },
      onSecondaryRateLimit: (
        retryAfter: number,
        options: { method: string; url: string },
        _o: unknown,
        retryCount: number,
      ) => {
        core.warning(
          `GitHub secondary rate limit on ${options.method} ${options.url}; retrying in ${retryAfter}s (try ${retryCount + 1})`,
        );
        return retryCount < 3;
      },
    },
  });
  // The runner masks a multi-line secret only as a whole: mask each line of the key as well.
  if (a.kind === 'app')
    for (const part of [
      a.privateKey,
      ...a.privateKey.split('\n').filter((l) => l.trim().length > 8 && !l.startsWith('-----')),
    ])
      mask(part.trim());
  else mask(a.token);
  // Every credential that goes out (the App's JWT, each installation token) is masked first.
  octokit.hook.before('request', (o) => {
    const h = (o.headers ?? {}) as Record<string, string | undefined>;
    const cred = /^(?:token|bearer)\s+(\S+)$/i.exec(h.authorization ?? '')?.[1];
    if (cred) mask(cred);
  });
  octokit.hook.after('request', (response) => {
    // The auth strategy adds its header below these hooks; the minted token is masked as it arrives.
    const minted = (response.data as { token?: unknown } | undefined)?.token;
    if (typeof minted === 'string' && /\/access_tokens$/.test(new URL(response.url, 'https://x').pathname))
      mask(minted);
    recordRateLimit(rate, response.headers as Record<string, string | undefined>);
  });
  return octokit;
}

/**
 * The Octokit for a mode. An App without github-app-installation-id looks its installation up
 * first (GET /repos/{owner}/{repo}/installation, or /orgs/{org}/installation for org runners),
 * signed with the App's JWT; after that every call uses the installation token.
 */
export async function connectGitHub(
  auth: GitHubAuth,
  target: { scope: 'repo' | 'org'; owner: string; repo: string },
  rate: RateLimit = {},
): Promise<GitHub> {
  if (auth.kind === 'token' || auth.installationId !== undefined) return makeGitHub(auth, rate);
  const appOnly = makeGitHub(auth, rate);
  try {
    const res =
      target.scope === 'org'
        ? await appOnly.request('GET /orgs/{org}/installation', { org: target.owner })
        : await appOnly.request('GET /repos/{owner}/{repo}/installation', { owner: target.owner, repo: target.repo });
    return makeGitHub({ ...auth, installationId: res.data.id }, rate);
  } catch (e) {
    const status = (e as { status?: number }).status;
    const where = target.scope === 'org' ? `organisation ${target.owner}` : `repository ${target.owner}/${target.repo}`;
    if (status === 404)
      throw new InputError(
        'github-app-id',
        `GitHub App ${auth.appId} is not installed on the ${where}`,
        `install the App there (with ${target.scope === 'org' ? '"Self-hosted runners: write"' : '"Administration: write"'}), or give github-app-installation-id`,
      );
    if (status === 401)
      throw new InputError(
        'github-app-private-key',
        `GitHub refused the App's JWT (401): ${(e as Error).message}`,
        "give the App's current private key and its numeric id (github-app-id)",
      );
    throw e;
  }
}
