import type { RunContext, Scope } from './config.js';

// The tag schema is the only state reap relies on: every resource start creates carries these.
export const TAG_PREFIX = 'spot-runner:';
export const TAGS = {
  managed: 'spot-runner:managed', // "true" on every resource we create
  label: 'spot-runner:label', // the run's unique runner label
  repo: 'spot-runner:repo', // owner/name, or the org for org scope
  runId: 'spot-runner:run-id',
  runAttempt: 'spot-runner:run-attempt',
  job: 'spot-runner:job',
  runnerName: 'spot-runner:runner-name', // on parameters, and on a watch replacement's instance (from its launch)
  instanceId: 'spot-runner:instance-id', // on parameters
  instanceArn: 'spot-runner:instance-arn', // on parameters: the instance role's policy matches it to ec2:SourceInstanceARN
  expiresAt: 'spot-runner:expires-at', // ISO-8601: launch + max-lifetime
  phase: 'spot-runner:phase', // written by the instance itself
  runnerVersion: 'spot-runner:runner-version', // written by the instance: the version the listener runs
  fingerprint: 'spot-runner:fingerprint', // written by the instance: CPU, microcode, kernel, SMT, governor, turbo, type, AZ
  pool: 'spot-runner:pool', // warm pool: the pool's name while the machine waits stopped; `claimed:<name>` once a start took it
  poolHash: 'spot-runner:pool-hash', // warm pool: hash of the settings the machine was built from (image, types, subnets, user-data, …)
} as const;

/** The tags that name a machine's run, owner and deadline: on every machine start and pool launch. */
export function runTags(
  cfg: { scope: Scope; run: RunContext },
  label: string,
  expiresAt: string,
): Record<string, string> {
  return {
    [TAGS.managed]: 'true',
    [TAGS.label]: label,
    [TAGS.repo]: cfg.scope === 'org' ? cfg.run.owner : `${cfg.run.owner}/${cfg.run.repo}`,
    [TAGS.runId]: cfg.run.runId,
    [TAGS.runAttempt]: cfg.run.runAttempt,
    [TAGS.job]: cfg.run.job.slice(0, 128),
    [TAGS.expiresAt]: expiresAt,
  };
}

/**
 * The phases the instance writes to spot-runner:phase, in order (`pooled`: a warm-pool machine
 * stopped itself at its checkpoint; on resume it starts again at `booting`). A power-off other than
 * job-done writes `failed:<reason>`; after a spot notice every later phase is prefixed
 * `interrupted:`. user-data/bootstrap.sh is held to these names by __tests__/phases.test.ts.
 * `listening`: the listener printed "Listening for Jobs" (its session with GitHub exists), which
 * is what start waits for instead of polling GitHub.
 */
export const PHASES = [
  'booting',
  'pooled',
  'runner-started',
  'listening',
  'job-started',
  'interrupted',
  'shutting-down',
] as const;
export type Phase = (typeof PHASES)[number];
export const FAILED_PHASE_PREFIX = 'failed:';
export const INTERRUPTED_PHASE_PREFIX = 'interrupted:';

/** GitHub runner names and labels start with this, so reap can find ghosts by name. */
export const NAME_PREFIX = 'spot-runner-';
/** The runner label carrying a short hash of the AWS account and region (see homeLabel in src/label.ts). */
export const HOME_PREFIX = 'sr-home-';

/** Every JIT config lives under this SSM path: /spot-runner/jit/<label>/<instance-id>. */
export const PARAMETER_ROOT = '/spot-runner/jit';

export function parameterName(label: string, instanceId: string): string {
  return `${PARAMETER_ROOT}/${label}/${instanceId}`;
}

/** Warm pool: where a pool machine reads its JIT config: the pool's fixed prefix (its user-data cannot know the claiming start's label). */
export function poolParameterPrefix(pool: string): string {
  return `${PARAMETER_ROOT}/pool-${pool}`;
}

/**
 * Warm pool: the claim of a stopped pool machine is its JIT parameter (PutParameter without
 * overwrite is the compare-and-set); a start claims with the JIT config itself.
 */
export function poolClaimName(pool: string, instanceId: string): string {
  return `${poolParameterPrefix(pool)}/${instanceId}`;
}

/** Warm pool: the value of spot-runner:pool once a start has claimed the machine. */
export const CLAIMED_POOL_PREFIX = 'claimed:';

/**
 * Warm pool: what a resumed machine overwrites its JIT parameter with once read (bootstrap.sh,
 * `consumed:` + the config's SHA-256 in hex). The name stays taken for the machine's life, so no
 * later claim can win it; the hash lets the claimer whose config it was know it as its own.
 */
export const CONSUMED_PREFIX = 'consumed:';
