// A minimal stand-in for booting instances: for every instance of a label that appears in
// moto, do what the bootstrap does with its parameter (read it with decryption, delete it),
// bring its runner online at the GitHub stand-in, then tag phase `listening` as the bootstrap
// does. The full simulator, which runs the real rendered bootstrap, lives in the lab; this one
// is for quick start→stop checks.
import { CreateTagsCommand, DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { DeleteParameterCommand, GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { PARAMETER_ROOT, TAGS } from '../../src/tags.js';

export interface QuickBoot {
  booted: string[];
  /** Machines that could not come up, with why: a scenario reports these as errors. */
  failures: string[];
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function quickBoot(
  ec2: EC2Client,
  ssm: SSMClient,
  githubUrl: string,
  opts: { bootDelayMs?: number; pollMs?: number; paramWaitMs?: number } = {},
): QuickBoot {
  const booted: string[] = [];
  const failures: string[] = [];
  const seen = new Set<string>();
  let running = true;
  const bootOne = async (id: string, label: string) => {
    await sleep(opts.bootDelayMs ?? 0);
    const name = `${PARAMETER_ROOT}/${label}/${id}`;
    // Like the bootstrap (user-data/bootstrap.sh §5): any failed read (not there yet, throttled,
    // the SDK's retry quota spent) is retried, backing off 50 ms → 4 s, until SR_PARAM_WAIT_SECONDS
    // (300 s); a big start paces its PutParameter calls, so the last config comes late.
    const end = Date.now() + (opts.paramWaitMs ?? 300_000);
    let value = '';
    let lastError = 'ParameterNotFound';
    for (let delay = 50; running && !value && Date.now() < end; delay = Math.min(delay * 2, 4_000)) {
      try {
        value = (await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter?.Value ?? '';
      } catch (e) {
        lastError = (e as { name?: string }).name ?? String(e);
      }
      if (!value) await sleep(delay);
    }
    if (!value) {
      if (running) failures.push(`${id}: no JIT config within the wait (${lastError})`);
      return;
    }
    // Like the bootstrap: three tries to clear it, then go on (stop and reap clear it too).
    for (let k = 0; k < 3; k++) {
      try {
        await ssm.send(new DeleteParameterCommand({ Name: name }));
        break;
      } catch (e) {
        if ((e as { name?: string }).name === 'ParameterNotFound') break;
        await sleep(1_000);
      }
    }
    const res = await fetch(`${githubUrl}/_lab/connect`, { method: 'POST', body: value });
    if (!res.ok) {
      failures.push(`${id}: connect HTTP ${res.status} ${await res.text()}`);
      return;
    }
    // Like the bootstrap once the listener says "Listening for Jobs": start waits for this tag.
    // Its phase queue retries a tag write; so does this.
    for (let k = 0; ; k++) {
      try {
        await ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: TAGS.phase, Value: 'listening' }] }));
        break;
      } catch (e) {
        if (k >= 4 || !running) {
          failures.push(`${id}: phase tag not written (${(e as { name?: string }).name ?? String(e)})`);
          return;
        }
        await sleep(1_000);
      }
    }
    booted.push(id);
  };
  const loop = (async () => {
    while (running) {
      // A failed listing (throttled, say) is only a missed look; the next poll sees the machines.
      const out = await ec2
        .send(
          new DescribeInstancesCommand({
            Filters: [
              { Name: `tag-key`, Values: [TAGS.label] },
              { Name: 'instance-state-name', Values: ['pending', 'running'] },
            ],
          }),
        )
        .catch(() => ({ Reservations: [] }));
      for (const r of out.Reservations ?? []) {
        for (const i of r.Instances ?? []) {
          const id = i.InstanceId ?? '';
          if (seen.has(id)) continue;
          seen.add(id);
          const label = i.Tags?.find((t) => t.Key === TAGS.label)?.Value ?? '';
          void bootOne(id, label).catch((e: unknown) => failures.push(`${id}: ${String(e)}`));
        }
      }
      await sleep(opts.pollMs ?? 100);
    }
  })();
  return {
    booted,
    failures,
    async stop() {
      running = false;
      await loop;
    },
  };
}
