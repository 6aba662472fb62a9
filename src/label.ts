import { createHash, randomBytes } from 'node:crypto';
import type { RunContext } from './config.js';
import { HOME_PREFIX, NAME_PREFIX } from './tags.js';

function shortHash(s: string, len: number): string {
  return createHash('sha256').update(s).digest('hex').slice(0, len);
}

/**
 * Unique to this run, attempt and job, plus a random part: matrix legs share a job name, and a
 * label two jobs share would let one job's work land on another's runner.
 */
export function makeLabel(run: RunContext, random: () => string = () => randomBytes(4).toString('hex')): string {
  const runId = run.runId.replace(/[^0-9]/g, '').slice(-12) || '0';
  const attempt = run.runAttempt.replace(/[^0-9]/g, '').slice(-3) || '1';
  return `${NAME_PREFIX}${runId}-${attempt}-${shortHash(`${run.owner}/${run.repo}/${run.job}`, 6)}-${random()}`;
}

/**
 * GitHub gives a JIT runner exactly the labels in its generate-jitconfig request: config.sh adds
 * self-hosted, the OS and the architecture, but a JIT runner never runs config.sh. So start
 * registers them itself, next to the unique label, the home label and the extra labels.
 */
export function runnerLabels(label: string, arch: 'x86_64' | 'arm64', home: string, extra: string[]): string[] {
  const builtIn = ['self-hosted', 'Linux', arch === 'arm64' ? 'ARM64' : 'X64'];
  const out: string[] = [];
  for (const l of [...builtIn, label, home, ...extra])
    if (!out.some((o) => o.toLowerCase() === l.toLowerCase())) out.push(l);
  return out;
}

/**
 * The label that says which region and AWS account a runner's machine lives in: a reaper in one
 * region or account must never deregister runners started from another.
 */
export function homeLabel(region: string, accountId: string): string {
  return `${HOME_PREFIX}${shortHash(`${accountId}/${region}`, 8)}`;
}

export function runnerName(label: string, index: number): string {
  return `${label}-${index + 1}`;
}

/**
 * EC2 keeps a ClientToken's answer for a while: a retried CreateFleet with the same token returns
 * the first fleet instead of launching again. The label carries the random part, so two matrix
 * legs never share a token while every retry inside one start does.
 */
export function clientToken(label: string, purpose: string): string {
  return `${purpose}-${shortHash(label, 40)}`.slice(0, 64);
}
