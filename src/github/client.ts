import * as core from '@actions/core';
import { getOctokit } from '@actions/github';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import Bottleneck from 'bottleneck';

export type GitHub = ReturnType<typeof getOctokit>;

/** What the last response said about the primary rate limit; the runner waiter paces itself by it. */
export interface RateLimit {
  remaining?: number;
  resetEpochSeconds?: number;
}

/**
 * Octokit with retry (5xx, network) and throttling (primary and secondary rate limits).
 * getOctokit reads GITHUB_API_URL, so GitHub Enterprise Server and our stand-in just work.
 */
export function makeGitHub(token: string, rate: RateLimit = {}): GitHub {
  const env = process.env;
  const proxied = Boolean(env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy);
  const maxRetries = Number(process.env.SPOT_RUNNER_GITHUB_RETRIES) || 4;
  // Retry waits grow as (n+1)² × this; the lab shrinks it to keep outage tests fast.
  const retryAfterBaseValue = Number(process.env.SPOT_RUNNER_GITHUB_RETRY_BASE_MS) || 1000;
  const octokit = getOctokit(
    token,
    {
      // Not request.retries: the plugin would then retry every error, 4xx included.
      retry: { doNotRetry: [400, 401, 404, 409, 410, 422, 451], retries: maxRetries, retryAfterBaseValue },
      // Read at call time: @actions/github fixes its default base URL when first imported.
      baseUrl: env.GITHUB_API_URL || 'https://api.github.com',
      // Node's own fetch unless a proxy is set, where @actions/github's undici proxy fetch is needed.
      request: proxied ? {} : { fetch: globalThis.fetch },
      throttle: {
        // The plugin's default spaces writes 1 s apart, which makes 100 JIT configs take 100 s.
        // GitHub's secondary limit is 900 points a minute (a write costs 5): 100 writes at 4/s
        // stay well inside it, and a secondary-limit answer is still retried below.
        write: new Bottleneck.Group({ id: 'spot-runner-write', maxConcurrent: 1, minTime: Number(process.env.SPOT_RUNNER_GITHUB_WRITE_GAP_MS ?? 250) }),
        onRateLimit: (retryAfter: number, options: { method: string; url: string }, _o: unknown, retryCount: number) => {
          core.warning(`GitHub rate limit hit on ${options.method} ${options.url}; retrying in ${retryAfter}s (try ${retryCount + 1})`);
          return retryCount < 2;
        },
        onSecondaryRateLimit: (retryAfter: number, options: { method: string; url: string }, _o: unknown, retryCount: number) => {
          core.warning(`GitHub secondary rate limit on ${options.method} ${options.url}; retrying in ${retryAfter}s (try ${retryCount + 1})`);
          return retryCount < 3;
        },
      },
    },
    retry,
    throttling,
  );
  octokit.hook.after('request', (response) => {
    const h = response.headers as Record<string, string | undefined>;
    if (h['x-ratelimit-remaining'] !== undefined) rate.remaining = Number(h['x-ratelimit-remaining']);
    if (h['x-ratelimit-reset'] !== undefined) rate.resetEpochSeconds = Number(h['x-ratelimit-reset']);
  });
  return octokit;
}
