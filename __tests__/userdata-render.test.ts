import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import {
  BootstrapOptions,
  USER_DATA_MAX_BYTES,
  renderUserData,
  shellQuote,
  validateBootstrapOptions,
} from '../src/userdata/render.js';
import { BOOTSTRAP_TEMPLATE } from '../src/userdata/template.js';
import { PARAMETER_ROOT } from '../src/tags.js';

const base: BootstrapOptions = {
  region: 'eu-central-1',
  parameterPrefix: `${PARAMETER_ROOT}/spot-runner-123-1-abc`,
  maxLifetimeMinutes: 90,
  idleTimeoutMinutes: 10,
  preRunnerScript: '',
  preRunnerTimeoutMinutes: 5,
  jobImdsAccess: false,
  label: 'spot-runner-123-1-abc',
};

/** The value a rendered `NAME=...` line assigns, as bash sees it. */
function bashValue(script: string, name: string): string {
  const line = script.split('\n').find((l) => l.startsWith(`${name}=`));
  if (!line) throw new Error(`${name} not rendered`);
  return execFileSync('bash', ['-c', `${line}\nprintf %s "$${name}"`], { encoding: 'utf8' });
}

describe('renderUserData', () => {
  it('renders a bash script with every value in place and no template markers left', () => {
    const out = renderUserData(base);
    expect(out.startsWith('#!/bin/bash\n')).toBe(true);
    expect(out).not.toContain('@@VALUES');
    expect(bashValue(out, 'SR_REGION')).toBe('eu-central-1');
    expect(bashValue(out, 'SR_PARAM_PREFIX')).toBe('/spot-runner/jit/spot-runner-123-1-abc');
    expect(bashValue(out, 'SR_LABEL')).toBe('spot-runner-123-1-abc');
    expect(bashValue(out, 'SR_MAX_LIFETIME_SECONDS')).toBe('5400');
    expect(bashValue(out, 'SR_MAX_LIFETIME_MINUTES_CEIL')).toBe('90');
    expect(bashValue(out, 'SR_IDLE_TIMEOUT_SECONDS')).toBe('600');
    expect(bashValue(out, 'SR_PRE_RUNNER_TIMEOUT_SECONDS')).toBe('300');
    expect(bashValue(out, 'SR_PARAM_WAIT_SECONDS')).toBe('300');
    expect(bashValue(out, 'SR_JOB_IMDS_ACCESS')).toBe('0');
    expect(bashValue(out, 'SR_PRE_RUNNER_B64')).toBe('');
    expect(bashValue(renderUserData({ ...base, jobImdsAccess: true }), 'SR_JOB_IMDS_ACCESS')).toBe('1');
  });

  it('is valid bash and strips comments to save bytes', () => {
    const out = renderUserData({ ...base, preRunnerScript: 'echo hi' });
    execFileSync('bash', ['-n'], { input: out });
    expect(out.split('\n').filter((l) => /^\s*# /.test(l) && !l.includes('shellcheck'))).toEqual([]);
    expect(Buffer.byteLength(out)).toBeLessThan(Buffer.byteLength(BOOTSTRAP_TEMPLATE));
  });

  it('scales fractional (test) minutes to whole seconds, at least 1', () => {
    const out = renderUserData({
      ...base,
      maxLifetimeMinutes: 0.1,
      idleTimeoutMinutes: 0.05,
      preRunnerTimeoutMinutes: 0.001,
    });
    expect(bashValue(out, 'SR_MAX_LIFETIME_SECONDS')).toBe('6');
    expect(bashValue(out, 'SR_MAX_LIFETIME_MINUTES_CEIL')).toBe('1');
    expect(bashValue(out, 'SR_IDLE_TIMEOUT_SECONDS')).toBe('3');
    expect(bashValue(out, 'SR_PRE_RUNNER_TIMEOUT_SECONDS')).toBe('1');
  });

  it('embeds the pre-runner script as base64, so nothing in it is shell syntax for the bootstrap', () => {
    const evil = [
      "'; touch /tmp/pwned; echo '",
      '$(touch /tmp/pwned) `touch /tmp/pwned` ${IFS}',
      'EOF',
      '#@@VALUES-END@@',
      '#@@VALUES-BEGIN@@',
      '# a comment line that compact() must not eat',
      '\\\'"\t end',
    ].join('\n');
    const out = renderUserData({ ...base, preRunnerScript: evil });
    expect(out).not.toContain('touch /tmp/pwned');
    expect(gunzipSync(Buffer.from(bashValue(out, 'SR_PRE_RUNNER_B64'), 'base64')).toString('utf8')).toBe(evil);
  });

  it('treats a whitespace-only pre-runner script as none', () => {
    expect(bashValue(renderUserData({ ...base, preRunnerScript: '  \n\t' }), 'SR_PRE_RUNNER_B64')).toBe('');
  });
});

describe('validation rejects injection attempts and bad numbers', () => {
  const bad: Array<[string, Partial<BootstrapOptions>, RegExp]> = [
    ['region with a quote', { region: "us-east-1'; reboot; '" }, /region/],
    ['region with $()', { region: 'us-east-$(id)' }, /region/],
    ['region with a newline', { region: 'us-east-1\nreboot' }, /region/],
    ['label with a quote', { label: "x'y" }, /label/],
    ['label with a space', { label: 'a b' }, /label/],
    ['label with backticks', { label: '`id`' }, /label/],
    ['label with a newline', { label: 'a\nb' }, /label/],
    ['empty label', { label: '' }, /label/],
    ['overlong label', { label: 'a'.repeat(129) }, /label/],
    ['prefix without a leading slash', { parameterPrefix: 'spot-runner/jit/x' }, /parameterPrefix/],
    ['prefix with a trailing slash', { parameterPrefix: '/spot-runner/jit/x/' }, /parameterPrefix/],
    ['prefix with $', { parameterPrefix: '/spot-runner/jit/$(id)' }, /parameterPrefix/],
    ['prefix with a quote', { parameterPrefix: "/spot-runner/jit/a'b" }, /parameterPrefix/],
    ['NaN lifetime', { maxLifetimeMinutes: Number.NaN }, /maxLifetimeMinutes/],
    ['infinite lifetime', { maxLifetimeMinutes: Number.POSITIVE_INFINITY }, /maxLifetimeMinutes/],
    ['zero idle timeout', { idleTimeoutMinutes: 0 }, /idleTimeoutMinutes/],
    ['negative pre-runner timeout', { preRunnerTimeoutMinutes: -1 }, /preRunnerTimeoutMinutes/],
    ['string number', { idleTimeoutMinutes: '5' as unknown as number }, /idleTimeoutMinutes/],
    ['bad parameter wait', { parameterWaitSeconds: 0 }, /parameterWaitSeconds/],
    ['non-boolean IMDS flag', { jobImdsAccess: 'false' as unknown as boolean }, /jobImdsAccess/],
    ['NUL in pre-runner script', { preRunnerScript: 'echo\0hi' }, /pre-runner-script/],
  ];
  it.each(bad)('%s', (_name, patch, re) => {
    expect(() => renderUserData({ ...base, ...patch })).toThrow(re);
  });

  it('reports every problem at once', () => {
    expect(() => validateBootstrapOptions({ ...base, region: 'x', label: '', maxLifetimeMinutes: -1 })).toThrow(
      /region[\s\S]*label[\s\S]*maxLifetimeMinutes/,
    );
  });
});

describe('16 KB user-data limit', () => {
  it('throws naming pre-runner-script when it does not fit', () => {
    const big = randomBytes(9000).toString('hex');
    expect(() => renderUserData({ ...base, preRunnerScript: big })).toThrow(
      /16384-byte limit[\s\S]*pre-runner-script is 18000 bytes/,
    );
  });

  it('gzips the script, so a long but ordinary script still fits', () => {
    const script = Array.from({ length: 400 }, (_, i) => `echo "step ${i}: installing things for the job"`).join('\n');
    expect(Buffer.byteLength(script)).toBeGreaterThan(USER_DATA_MAX_BYTES);
    const out = renderUserData({ ...base, preRunnerScript: script });
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(USER_DATA_MAX_BYTES);
  });

  it('leaves several KB for the pre-runner script even when it does not compress', () => {
    const out = renderUserData({ ...base, preRunnerScript: randomBytes(2000).toString('hex') });
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(USER_DATA_MAX_BYTES);
  });
});

describe('shellQuote', () => {
  it.each(['plain', "it's", "'''", '$(id) `id` $HOME \\ "q"', 'new\nline', ''])('round-trips %j through bash', (s) => {
    expect(execFileSync('bash', ['-c', `printf %s ${shellQuote(s)}`], { encoding: 'utf8' })).toBe(s);
  });
});

describe('generated template', () => {
  it('src/userdata/template.ts matches user-data/bootstrap.sh (run node scripts/embed-user-data.mjs)', () => {
    expect(BOOTSTRAP_TEMPLATE).toBe(readFileSync(join(process.cwd(), 'user-data', 'bootstrap.sh'), 'utf8'));
  });
});
