// The VM suite (npm run test:vm): real Debian guests (kernel, systemd, cloud-init) under QEMU
// TCG run the REAL rendered user-data against moto and an IMDS stand-in, with a runner
// stand-in that behaves like actions/runner 2.330 (user-data/test/fake-runner). Each boot ends
// in one power-off path; the assertions read the guest's console, the root observer's report
// (test/vm/guest) and every CreateTags the guest sent. Never skipped: a missing tool fails.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CreateTagsCommand, DescribeImagesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { renderUserData, type BootstrapOptions } from '../../src/userdata/render.js';
import { parameterName, TAGS } from '../../src/tags.js';
import { startMoto, type Moto } from '../lab/moto.js';
import { startAwsRecorder, type AwsRecorder } from './aws-recorder.js';
import { buildImage, fakeJitConfig, requireTools, runGuest, type GuestResult } from './guest.js';

type Path = 'job-done' | 'job-failed' | 'idle-timeout' | 'max-lifetime' | 'spot-notice' | 'powerdown';

interface Scenario {
  path: Path;
  options: Partial<BootstrapOptions>;
  runner: Record<string, string>;
  onJobStarted?: 'spot-notice' | 'powerdown';
}

const JOB_OUT = '/var/tmp/vmtest-out';
const SCENARIOS: Scenario[] = [
  // The long one first: cloud-init is checked while the runner waits 40 s for its job, and
  // the job waits for the observer's isolation scan.
  {
    path: 'job-done',
    options: {},
    runner: {
      FAKE_JOB_DELAY: '40',
      FAKE_JOB_TENTHS: '3000',
      FAKE_JOB_WAIT_FILE: '/run/vmtest-scan-done',
      FAKE_IMDS_URL: 'http://169.254.169.254',
    },
  },
  {
    path: 'powerdown',
    options: {},
    runner: { FAKE_JOB_DELAY: '1', FAKE_JOB_TENTHS: '6000' },
    onJobStarted: 'powerdown',
  },
  { path: 'job-failed', options: {}, runner: { FAKE_JOB_DELAY: '1', FAKE_JOB_TENTHS: '5', FAKE_STEP_EXIT: '1' } },
  { path: 'idle-timeout', options: { idleTimeoutMinutes: 0.75 }, runner: { FAKE_JOB: '0' } },
  {
    path: 'spot-notice',
    options: {},
    runner: { FAKE_JOB_DELAY: '1', FAKE_JOB_TENTHS: '450' },
    onJobStarted: 'spot-notice',
  },
  {
    path: 'max-lifetime',
    options: { maxLifetimeMinutes: 2 },
    runner: { FAKE_JOB_DELAY: '1', FAKE_JOB_TENTHS: '6000' },
  },
];
const LANES = Number(process.env.SPOT_RUNNER_VM_LANES ?? 2);
// Debugging aid: SPOT_RUNNER_VM_ONLY=job-done,powerdown boots only those (the others then fail).
const ONLY = process.env.SPOT_RUNNER_VM_ONLY?.split(',');

let moto: Moto;
let recorder: AwsRecorder;
const results = new Map<Path, GuestResult & { instanceId: string; secret: string }>();

async function bootAll(): Promise<void> {
  const disk = buildImage();
  const client = {
    region: 'us-east-1',
    endpoint: moto.endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
  const ec2 = new EC2Client(client);
  const ssm = new SSMClient(client);
  const images = await ec2.send(new DescribeImagesCommand({}));
  const imageId = images.Images?.[0]?.ImageId;
  if (!imageId) throw new Error('moto offers no AMI to launch');
  const queue = SCENARIOS.filter((s) => !ONLY || ONLY.includes(s.path));
  const lane = async (): Promise<void> => {
    for (let s = queue.shift(); s; s = queue.shift()) {
      const run = await ec2.send(
        new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1, InstanceType: 'c7i.large' }),
      );
      const instanceId = run.Instances?.[0]?.InstanceId ?? '';
      const label = `spot-runner-vm-${s.path}`;
      await ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: TAGS.label, Value: label }] }));
      const secret = fakeJitConfig();
      await ssm.send(
        new PutParameterCommand({ Name: parameterName(label, instanceId), Value: secret, Type: 'SecureString' }),
      );
      const options: BootstrapOptions = {
        region: 'us-east-1',
        parameterPrefix: `/spot-runner/jit/${label}`,
        label,
        maxLifetimeMinutes: 30,
        idleTimeoutMinutes: 15,
        preRunnerScript: '',
        preRunnerTimeoutMinutes: 5,
        jobImdsAccess: false,
        parameterWaitSeconds: 600,
        ...s.options,
      };
      const r = await runGuest(
        {
          name: s.path,
          userData: renderUserData(options),
          instanceId,
          secret,
          runnerEnv: { FAKE_STATE: JOB_OUT, FAKE_INTERRUPTED_MARKER: '/run/spot-runner/interrupted', ...s.runner },
          awsPort: recorder.port,
          onJobStarted: s.onJobStarted,
          timeoutMs: 9 * 60_000,
        },
        disk,
      );
      results.set(s.path, { ...r, instanceId, secret });
    }
  };
  await Promise.all(Array.from({ length: LANES }, lane));
}

beforeAll(async () => {
  requireTools();
  moto = await startMoto();
  recorder = await startAwsRecorder(moto.endpoint);
  const t0 = Date.now();
  await bootAll();
  process.stderr.write(
    `VM suite: ${SCENARIOS.length} boots in ${Math.round((Date.now() - t0) / 1000)} s (${LANES} at a time)\n`,
  );
}, 40 * 60_000);

afterAll(async () => {
  await recorder?.close();
  await moto?.stop();
});

function get(path: Path): GuestResult & { instanceId: string; secret: string } {
  const r = results.get(path);
  if (!r) throw new Error(`no result for the ${path} boot`);
  return r;
}
const report = (path: Path, key: string): string => get(path).report.get(key) ?? `<no ${key} reported>`;
const tagsOf = (path: Path, key: string = TAGS.phase): string[] =>
  recorder.tags
    .filter((t) => t.resource === get(path).instanceId && t.key === key && t.status === 200)
    .map((t) => t.value);

describe.each<[Path, string, string]>([
  ['job-done', 'job-done', 'shutting-down'],
  ['job-failed', 'job-failed:Failed', 'failed:job-failed:Failed'],
  ['idle-timeout', 'idle-timeout', 'failed:idle-timeout'],
  ['max-lifetime', 'max-lifetime', 'failed:max-lifetime'],
  ['spot-notice', 'job-done', 'interrupted:shutting-down'],
  ['powerdown', 'signal-TERM', 'failed:signal-TERM'],
])('power-off path %s', (path, reason, finalPhase) => {
  it('powers the guest off by itself, with its reason on the console and as the final phase tag', () => {
    const r = get(path);
    expect(r.poweredOff).toBe(true);
    expect(r.console).toContain(`spot-runner: power-off: ${reason}`);
    expect(report(path, 'file:poweroff-reason').trim()).toBe(reason);
    expect(tagsOf(path).at(-1)).toBe(finalPhase);
  });

  it('nothing dies of SIGPIPE; the supervisor unit ends cleanly', () => {
    const r = get(path);
    const journal = report(path, 'journal');
    for (const text of [r.console, journal]) {
      expect(text).not.toMatch(/SIGPIPE|status=13\/PIPE|signal=PIPE/);
    }
    expect(journal).toContain('final phase tag written');
  });

  it('the phase tags survive the slow emulated CLI: booting and the final phase are written', () => {
    const phases = tagsOf(path);
    expect(phases[0]).toBe('booting');
    if (path !== 'idle-timeout') expect(phases).toContain('job-started');
    expect(phases).toContain(finalPhase);
  });
});

// Not the powerdown path: there the final phase jumps the queue and may cut queued tags short.
describe.each<Path>(['job-done', 'job-failed', 'idle-timeout', 'max-lifetime', 'spot-notice'])(
  'readiness on path %s',
  (path) => {
    it('listening is tagged once the listener printed "Listening for Jobs": after runner-started, before job-started', () => {
      const phases = tagsOf(path);
      expect(phases.indexOf('runner-started')).toBeGreaterThan(0);
      expect(phases.indexOf('listening')).toBeGreaterThan(phases.indexOf('runner-started'));
      if (path !== 'idle-timeout') expect(phases.indexOf('job-started')).toBeGreaterThan(phases.indexOf('listening'));
    });
  },
);

describe('job-done boot: cloud-init, toolchains, isolation', () => {
  it('cloud-init reaches done while the runner waits for its job (supervisor in its own unit)', () => {
    expect(report('job-done', 'cloud-init-status')).toMatch(/status: done/);
    expect(report('job-done', 'runner-waiting-at-cloud-init-done')).toBe('yes');
    // cloud-final first (done: active/exited), then the supervisor's own unit, still running.
    const units = report('job-done', 'units').split('\n');
    expect(units.slice(0, 2)).toEqual(['ActiveState=active', 'SubState=exited']);
    expect(units.slice(2, 6).sort()).toEqual([
      'ActiveState=active',
      'ControlGroup=/system.slice/spot-runner-bootstrap.service',
      'KillMode=mixed',
      'SubState=running',
    ]);
  });

  it("the job's PATH holds the image's .path entries and finds the toolchain", () => {
    expect(report('job-done', 'file:job-path').trim().split(':')[0]).toBe('/opt/toolchain/bin');
    expect(report('job-done', 'file:job-which-tool').trim()).toBe('/opt/toolchain/bin/cargo-kani');
  });

  it('the job runs as the runner uid and cannot reach IMDS; root can', () => {
    expect(report('job-done', 'file:job-uid').trim()).toBe('1001');
    expect(report('job-done', 'job-uid-live')).toBe('1001');
    expect(report('job-done', 'file:job-imds')).toMatch(/^000 exit=7/);
    expect(report('job-done', 'root-imds')).toBe('200');
  });

  it('the JIT config is in no argv, no file the job can read, and not in the job environment', () => {
    const r = get('job-done');
    expect(report('job-done', 'scan-control')).toBe('1');
    expect(Number(report('job-done', 'argv-scanned'))).toBeGreaterThan(30);
    expect(report('job-done', 'argv-hits')).toBe('');
    expect(report('job-done', 'runner-file-hits')).toBe('');
    expect(report('job-done', 'job-environ')).toBe('0\n0');
    expect(report('job-done', 'file:job-env')).not.toContain(r.secret);
    expect(report('job-done', 'file:job-env')).not.toContain('ACTIONS_RUNNER_INPUT_');
    expect(r.console).not.toContain(r.secret);
    // Positive control: the runner stand-in received exactly this config.
    expect(get('job-done').report.has('file:jit-ok')).toBe(true);
  });

  it('records the runner version and the hardware fingerprint as tags', () => {
    expect(tagsOf('job-done', TAGS.runnerVersion)).toEqual(['2.330.0']);
    const fp = tagsOf('job-done', TAGS.fingerprint)[0] ?? '';
    expect(fp).toMatch(
      /^cpu=\S.* ucode=\S+ kernel=\S+ smt=(on|off|unknown) gov=\S+ turbo=(on|off|unknown) type=c7i\.large az=us-east-1a$/,
    );
    expect(report('job-done', 'file:fingerprint').trim()).toBe(fp);
  });
});

describe('other paths', () => {
  it('job failed: seen through the listener result and the job-completed hook marker', () => {
    expect(report('job-failed', 'file:completed')).toBe('');
    expect(get('job-failed').report.has('file:completed')).toBe(true);
  });

  it('spot notice: the job saw the marker, the console has the notice', () => {
    expect(report('spot-notice', 'file:job-saw-interrupted')).toMatch(/"action": ?"terminate"/);
    expect(get('spot-notice').console).toContain('spot interruption notice');
    expect(tagsOf('spot-notice')).toContain('interrupted');
  });

  it('external power-down: the runner gets SIGTERM first, the guest is off within 45 s', () => {
    const r = get('powerdown');
    expect(r.powerdownAt).toBeDefined();
    process.stderr.write(`VM suite: system_powerdown -> QEMU exit ${r.exitedAt - (r.powerdownAt ?? 0)} ms\n`);
    expect(r.exitedAt - (r.powerdownAt ?? 0)).toBeLessThan(45_000);
    expect(get('powerdown').report.has('file:listener-got-sigint')).toBe(true);
    const journal = report('powerdown', 'journal');
    expect(journal).toMatch(/stopping the runner \(SIGTERM/);
    expect(journal).toMatch(/runner exited/);
    // Stopped as a unit early in the shutdown, not by systemd-shutdown's final broadcast.
    const i = r.console.indexOf('spot-runner: power-off: signal-TERM');
    const j = r.console.search(/Sending SIGTERM to remaining processes/);
    expect(i).toBeGreaterThan(0);
    if (j >= 0) expect(i).toBeLessThan(j);
    expect(journal).toMatch(/spot-runner-bootstrap.service: (Deactivated successfully|Succeeded)/);
  });
});
