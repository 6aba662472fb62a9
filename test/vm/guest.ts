// One real Debian guest under QEMU (TCG), booted from the cached image with the REAL rendered
// user-data on a NoCloud cidata ISO. The guest reaches the host only through slirp guestfwd
// (restrict=on): 169.254.169.254:80 is the IMDS stand-in, 169.254.169.10:80 the AWS proxy.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));

export const VM_INSTALL_HINT =
  'The VM suite needs QEMU, mmdebstrap, socat and xorriso: apt-get install -y qemu-system-x86 qemu-utils mmdebstrap socat xorriso e2fsprogs';

/** Fails loudly (never skips) when a tool is missing. */
export function requireTools(): void {
  const missing = ['qemu-system-x86_64', 'qemu-img', 'mmdebstrap', 'socat', 'xorriso', 'mkfs.ext4', 'python3'].filter(
    (t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0,
  );
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}. ${VM_INSTALL_HINT}`);
}

/** Builds (once, cached) the guest disk and returns the paths QEMU boots. */
export function buildImage(): { image: string; kernel: string; initrd: string } {
  const r = spawnSync('bash', [join(REPO, 'test/vm/build-image.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`building the VM image failed (exit ${r.status}). ${VM_INSTALL_HINT}`);
  const image = r.stdout.trim().split('\n').pop() ?? '';
  const dir = join(image, '..');
  return { image, kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') };
}

export interface GuestSpec {
  name: string;
  userData: string;
  instanceId: string;
  /** The JIT config the instance should hand the runner (the observer scans for it). */
  secret: string;
  /** fake-runner.env lines for the runner stand-in. */
  runnerEnv: Record<string, string>;
  awsPort: number;
  /** What the host does once the job has started. */
  onJobStarted?: 'spot-notice' | 'powerdown';
  /** Give up (and fail) after this long. */
  timeoutMs: number;
}

export interface GuestResult {
  name: string;
  console: string;
  /** Last value reported per key by the observer. */
  report: Map<string, string>;
  startedAt: number;
  exitedAt: number;
  /** QEMU exited on its own (the guest powered off), not killed by the harness. */
  poweredOff: boolean;
  jobStartedAt?: number;
  powerdownAt?: number;
  exitCode: number | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function iso(dir: string, label: string, files: Record<string, string>, out: string): void {
  const src = join(dir, `${label}-src`);
  spawnSync('mkdir', ['-p', src]);
  for (const [name, body] of Object.entries(files)) writeFileSync(join(src, name), body, { mode: 0o600 });
  const r = spawnSync('xorriso', ['-as', 'genisoimage', '-quiet', '-o', out, '-V', label, '-J', '-r', src], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`xorriso failed for ${label}: ${r.stderr}`);
}

function parseReport(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const x = /^VMTEST (\S+) ?(\S*)\r?$/.exec(line.trim());
    if (x?.[1]) m.set(x[1], Buffer.from(x[2] ?? '', 'base64').toString('utf8'));
  }
  return m;
}

function monitor(sock: string, command: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const c = connect(sock, () => {
      c.write(`${command}\n`);
      setTimeout(() => {
        c.end();
        resolvePromise();
      }, 500);
    });
    c.on('error', reject);
  });
}

/** Boots one guest to its power-off (or the timeout) and returns what it showed. */
export async function runGuest(
  spec: GuestSpec,
  disk: { image: string; kernel: string; initrd: string },
): Promise<GuestResult> {
  const dir = mkdtempSync(join(tmpdir(), `spot-vm-${spec.name}-`));
  const spotNotice = join(dir, 'spot-notice');
  const portFile = join(dir, 'imds.port');
  const imds = spawn(
    'python3',
    [
      join(REPO, 'user-data/test/fake-imds.py'),
      '--instance-id',
      spec.instanceId,
      '--port-file',
      portFile,
      '--spot-notice-file',
      spotNotice,
      '--log',
      join(dir, 'imds.log'),
    ],
    { stdio: 'ignore' },
  );
  let qemu: ChildProcess | undefined;
  try {
    for (let i = 0; i < 100 && !existsSync(portFile); i++) await sleep(50);
    const imdsPort = Number(readFileSync(portFile, 'utf8'));
    iso(
      dir,
      'cidata',
      { 'user-data': spec.userData, 'meta-data': `instance-id: ${spec.instanceId}\nlocal-hostname: spot-vm\n` },
      join(dir, 'cidata.iso'),
    );
    const env = Object.entries(spec.runnerEnv)
      .map(([k, v]) => `${k}='${v.replace(/'/g, `'\\''`)}'`)
      .join('\n');
    iso(dir, 'VMTEST', { secret: `${spec.secret}\n`, 'fake-runner.env': `${env}\n` }, join(dir, 'vmtest.iso'));
    const overlay = join(dir, 'disk.qcow2');
    const q = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', disk.image, '-F', 'raw', overlay], {
      encoding: 'utf8',
    });
    if (q.status !== 0) throw new Error(`qemu-img: ${q.stderr}`);
    const consoleLog = join(dir, 'console.log');
    const reportLog = join(dir, 'report.log');
    const mon = join(dir, 'monitor.sock');
    const fwd = (ip: string, port: number) => `guestfwd=tcp:${ip}:80-cmd:socat STDIO TCP:127.0.0.1:${port}`;
    const args = [
      '-accel',
      'tcg',
      '-m',
      '768',
      '-smp',
      '1',
      '-no-reboot',
      '-display',
      'none',
      '-nodefaults',
      '-kernel',
      disk.kernel,
      '-initrd',
      disk.initrd,
      '-append',
      'root=/dev/vda rw console=ttyS0 loglevel=4 systemd.show_status=1 net.ifnames=0',
      '-drive',
      `file=${overlay},if=virtio,format=qcow2`,
      '-drive',
      `file=${join(dir, 'cidata.iso')},if=ide,index=2,media=cdrom,format=raw`,
      '-drive',
      `file=${join(dir, 'vmtest.iso')},if=ide,index=3,media=cdrom,format=raw`,
      '-netdev',
      [
        'user,id=n0,net=169.254.169.0/24,host=169.254.169.1,restrict=on',
        fwd('169.254.169.254', imdsPort),
        fwd('169.254.169.10', spec.awsPort),
      ].join(','),
      '-device',
      'virtio-net-pci,netdev=n0',
      '-serial',
      `file:${consoleLog}`,
      '-serial',
      `file:${reportLog}`,
      '-monitor',
      `unix:${mon},server,nowait`,
    ];
    const startedAt = Date.now();
    qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    qemu.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const exited = new Promise<number | null>((r) => qemu?.once('exit', (code) => r(code)));
    let done = false;
    let exitCode: number | null = null;
    void exited.then((c) => {
      done = true;
      exitCode = c;
    });
    let jobStartedAt: number | undefined;
    let powerdownAt: number | undefined;
    while (!done && Date.now() - startedAt < spec.timeoutMs) {
      await sleep(1000);
      if (
        jobStartedAt === undefined &&
        existsSync(reportLog) &&
        parseReport(readFileSync(reportLog, 'utf8')).has('file:job.pid')
      ) {
        jobStartedAt = Date.now();
        if (spec.onJobStarted === 'spot-notice') {
          writeFileSync(
            spotNotice,
            JSON.stringify({
              action: 'terminate',
              time: new Date(Date.now() + 120_000).toISOString().replace(/\.\d+Z$/, 'Z'),
            }),
          );
        }
      }
      if (
        spec.onJobStarted === 'powerdown' &&
        jobStartedAt !== undefined &&
        powerdownAt === undefined &&
        Date.now() - jobStartedAt > 5000
      ) {
        powerdownAt = Date.now();
        await monitor(mon, 'system_powerdown');
      }
    }
    const poweredOff = done;
    if (!done) {
      qemu.kill('SIGKILL');
      await exited;
    }
    const exitedAt = Date.now();
    const result: GuestResult = {
      name: spec.name,
      console: existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8') : '',
      report: existsSync(reportLog) ? parseReport(readFileSync(reportLog, 'utf8')) : new Map(),
      startedAt,
      exitedAt,
      poweredOff,
      jobStartedAt,
      powerdownAt,
      exitCode,
    };
    writeFileSync(join(dir, 'qemu.stderr'), stderr);
    if (poweredOff && exitCode === 0 && !process.env.SPOT_RUNNER_VM_KEEP) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`VM ${spec.name}: powered off: ${poweredOff}, exit ${exitCode}; logs in ${dir}\n`);
    return result;
  } finally {
    if (qemu && qemu.exitCode === null) qemu.kill('SIGKILL');
    imds.kill('SIGTERM');
  }
}

/** A random stand-in for a JIT config: base64, ~2.4 KB, occurs nowhere by accident. */
export function fakeJitConfig(): string {
  return randomBytes(1800).toString('base64');
}
