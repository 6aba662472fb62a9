// CONTRACT (owned by the user-data work, issue 3). The action calls renderUserData() with
// validated, non-secret values; the result is the instance's user-data (a bash script).
import { gzipSync } from 'node:zlib';
import { BOOTSTRAP_TEMPLATE } from './template.js';

export interface BootstrapOptions {
  /** AWS region the instance calls SSM and EC2 in. */
  region: string;
  /** SSM path prefix; the instance reads `${parameterPrefix}/<its own instance id>`. */
  parameterPrefix: string;
  /** Hard deadline, minutes from boot (fractional allowed, for tests). */
  maxLifetimeMinutes: number;
  /** Power off if no job started within this many minutes of the runner starting. */
  idleTimeoutMinutes: number;
  /** The user's shell, run as root before the runner starts. Empty = none. */
  preRunnerScript: string;
  /** Minutes the pre-runner script may take. */
  preRunnerTimeoutMinutes: number;
  /** Whether job steps (the runner user) may reach IMDS. */
  jobImdsAccess: boolean;
  /** The run's unique label, for log lines only. */
  label: string;
  /** Seconds the instance waits for its SSM parameter to appear. Default 300. */
  parameterWaitSeconds?: number;
  /** Seconds each /etc/spot-runner/interruption.d hook may run. Default 60. */
  interruptionHookTimeoutSeconds?: number;
  /** Warm pool: the pool's name. The machine stops itself at its checkpoint (before the JIT read) and resumes there on the next boot. */
  pool?: string;
}

/** EC2 refuses user-data over 16 KB (before base64). */
export const USER_DATA_MAX_BYTES = 16384;

const REGION_RE = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
const LABEL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
// SSM parameter path: absolute, no empty segments, no trailing slash, safe characters only.
const PREFIX_RE = /^(\/[A-Za-z0-9_.-]+)+$/;
const MAX_MINUTES = 30 * 24 * 60;

/** Throws one Error listing every invalid option, so a caller fixes them all at once. */
export function validateBootstrapOptions(o: BootstrapOptions): void {
  const errors: string[] = [];
  const str = (name: string, v: unknown, re: RegExp, what: string): void => {
    if (typeof v !== 'string' || !re.test(v)) errors.push(`${name} ${JSON.stringify(v)} is invalid: ${what}`);
  };
  const num = (name: string, v: unknown, max: number): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) {
      errors.push(`${name} must be a finite number > 0 and <= ${max} (got ${String(v)})`);
    }
  };
  str('region', o.region, REGION_RE, 'expected an AWS region such as us-east-1');
  str('label', o.label, LABEL_RE, 'use 1-128 of A-Z a-z 0-9 . _ - (not starting with . _ -)');
  str(
    'parameterPrefix',
    o.parameterPrefix,
    PREFIX_RE,
    'expected an absolute SSM path of A-Z a-z 0-9 _ . - segments, no trailing /',
  );
  if (typeof o.parameterPrefix === 'string' && o.parameterPrefix.length > 1000)
    errors.push('parameterPrefix is longer than 1000 characters');
  num('maxLifetimeMinutes', o.maxLifetimeMinutes, MAX_MINUTES);
  num('idleTimeoutMinutes', o.idleTimeoutMinutes, MAX_MINUTES);
  num('preRunnerTimeoutMinutes', o.preRunnerTimeoutMinutes, MAX_MINUTES);
  if (o.parameterWaitSeconds !== undefined) num('parameterWaitSeconds', o.parameterWaitSeconds, 3600);
  if (o.interruptionHookTimeoutSeconds !== undefined)
    num('interruptionHookTimeoutSeconds', o.interruptionHookTimeoutSeconds, 3600);
  if (typeof o.jobImdsAccess !== 'boolean') errors.push('jobImdsAccess must be a boolean');
  if (o.pool !== undefined)
    str('pool', o.pool, /^[a-z0-9][a-z0-9-]{0,31}$/, 'use 1-32 lower-case letters, digits and hyphens');
  if (typeof o.preRunnerScript !== 'string') errors.push('pre-runner-script must be a string');
  else if (o.preRunnerScript.includes('\0')) errors.push('pre-runner-script must not contain NUL bytes');
  if (errors.length > 0) throw new Error(`invalid bootstrap options:\n- ${errors.join('\n- ')}`);
}

/** POSIX single-quote a string: safe in any shell context, whatever it holds. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** gzip + base64 (the bootstrap runs `base64 -d | gunzip`); empty for a blank script. */
export function encodePreRunnerScript(script: string): string {
  if (script.trim() === '') return '';
  return gzipSync(Buffer.from(script, 'utf8'), { level: 9 }).toString('base64');
}

const seconds = (minutes: number): number => Math.max(1, Math.ceil(minutes * 60));

/** The values block that replaces the template's defaults. Every string is validated AND quoted. */
function valuesBlock(o: BootstrapOptions): string {
  const pre = encodePreRunnerScript(o.preRunnerScript);
  const lines: Array<[string, string]> = [
    ['SR_REGION', shellQuote(o.region)],
    ['SR_PARAM_PREFIX', shellQuote(o.parameterPrefix)],
    ['SR_LABEL', shellQuote(o.label)],
    ['SR_MAX_LIFETIME_SECONDS', String(seconds(o.maxLifetimeMinutes))],
    ['SR_MAX_LIFETIME_MINUTES_CEIL', String(Math.max(1, Math.ceil(o.maxLifetimeMinutes)))],
    ['SR_IDLE_TIMEOUT_SECONDS', String(seconds(o.idleTimeoutMinutes))],
    ['SR_PRE_RUNNER_TIMEOUT_SECONDS', String(seconds(o.preRunnerTimeoutMinutes))],
    ['SR_PARAM_WAIT_SECONDS', String(Math.ceil(o.parameterWaitSeconds ?? 300))],
    ['SR_HOOK_TIMEOUT_SECONDS', String(Math.ceil(o.interruptionHookTimeoutSeconds ?? 60))],
    ['SR_JOB_IMDS_ACCESS', o.jobImdsAccess ? '1' : '0'],
    // base64 of the gzipped script: no quoting or heredoc-delimiter games possible, and small.
    ['SR_PRE_RUNNER_B64', shellQuote(pre)],
    ['SR_POOL', shellQuote(o.pool ?? '')],
  ];
  return lines.map(([k, v]) => `${k}=${v}`).join('\n');
}

/** Drop full-line comments and blank lines (not the shebang or shellcheck directives) to save bytes. */
function compact(script: string): string {
  return script
    .split('\n')
    .filter((line, i) => i === 0 || /^\s*# shellcheck /.test(line) || !(line.trim() === '' || /^\s*#(\s|$)/.test(line)))
    .join('\n');
}

const BEGIN = '#@@VALUES-BEGIN@@';
const END = '#@@VALUES-END@@';

/**
 * The user-data: the values in clear, then the bootstrap's code gzipped and base64-encoded (the
 * code alone is close to EC2's 16 KB limit), decoded and run in the same shell. A payload that
 * does not decode powers the machine off with a reason, like every other failure.
 */
export function renderUserData(o: BootstrapOptions, template: string = BOOTSTRAP_TEMPLATE): string {
  validateBootstrapOptions(o);
  const b = template.indexOf(BEGIN);
  const e = template.indexOf(END);
  if (b < 0 || e < b || template.indexOf(BEGIN, b + 1) >= 0)
    throw new Error('bootstrap template: values markers missing or repeated');
  const code = compact(`${template.slice(0, b)}${template.slice(e + END.length)}`);
  const packed = gzipSync(Buffer.from(code, 'utf8'), { level: 9 }).toString('base64');
  const out = [
    '#!/bin/bash',
    '# shellcheck disable=SC2034 # the values are used by the code below',
    valuesBlock(o),
    `SR_CODE='${packed}'`,
    'if ! SR_SRC=$(base64 -d <<<"$SR_CODE" | gunzip); then',
    "  printf 'spot-runner: power-off: user-data-undecodable\\n' >/dev/console",
    '  poweroff -f',
    'fi',
    'eval "$SR_SRC"',
    '',
  ].join('\n');
  const size = Buffer.byteLength(out, 'utf8');
  if (size > USER_DATA_MAX_BYTES) {
    const preSize = Buffer.byteLength(o.preRunnerScript, 'utf8');
    const encoded = encodePreRunnerScript(o.preRunnerScript).length;
    const room = Math.max(0, USER_DATA_MAX_BYTES - (size - encoded));
    throw new Error(
      `user-data would be ${size} bytes, over EC2's ${USER_DATA_MAX_BYTES}-byte limit: ` +
        `pre-runner-script is ${preSize} bytes (${encoded} once gzipped and base64-encoded), ` +
        `and only ${room} encoded bytes fit. Move the bulk of it into the AMI or a file the script downloads.`,
    );
  }
  return out;
}
