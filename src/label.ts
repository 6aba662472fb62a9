import { createHash, randomBytes } from 'node:crypto';
import type { RunContext } from './config.js';
import { NAME_PREFIX } from './tags.js';

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
