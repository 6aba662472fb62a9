import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { freePort } from './ports.js';

export const MOTO_INSTALL_HINT =
  "moto's server is required: run `pip install 'moto[server]'` (it provides `python3 -m moto.server`).";

export interface Moto {
  endpoint: string;
  port: number;
  /** Wipes every resource in moto, so one server can serve a whole suite. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts moto's server on a free loopback port. Fails loudly, with the install hint, if moto is absent. */
export async function startMoto(): Promise<Moto> {
  const python = process.env.MOTO_PYTHON ?? 'python3';
  const probe = spawnSync(python, ['-c', 'import moto.server'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    throw new Error(
      `${MOTO_INSTALL_HINT}\n(${python} -c 'import moto.server' said: ${(probe.stderr || probe.error?.message || '').trim()})`,
    );
  }
  const port = await freePort();
  const child: ChildProcess = spawn(python, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'true' },
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto exited early (code ${child.exitCode}): ${stderr}`);
    try {
      const r = await fetch(`${endpoint}/moto-api/`);
      if (r.ok || r.status < 500) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`moto did not start on ${endpoint} within 30 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    port,
    async reset() {
      const r = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!r.ok) throw new Error(`moto reset failed: HTTP ${r.status}`);
    },
    async stop() {
      if (child.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      });
    },
  };
}
