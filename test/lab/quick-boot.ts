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
  stop(): Promise<void>;
}

export function quickBoot(
  ec2: EC2Client,
  ssm: SSMClient,
  githubUrl: string,
  opts: { bootDelayMs?: number; pollMs?: number; paramWaitMs?: number } = {},
): QuickBoot {
  const booted: string[] = [];
  const seen = new Set<string>();
  let running = true;
  const bootOne = async (id: string, label: string) => {
    await new Promise((r) => setTimeout(r, opts.bootDelayMs ?? 0));
    const name = `${PARAMETER_ROOT}/${label}/${id}`;
    // Like the bootstrap: wait up to SR_PARAM_WAIT_SECONDS (300 s) for the parameter, backing off
    // 50 ms → 4 s (a big start paces its PutParameter calls, so the last config comes late).
    const end = Date.now() + (opts.paramWaitMs ?? 300_000);
    for (let delay = 50; running && Date.now() < end; delay = Math.min(delay * 2, 4_000)) {
      try {
        const p = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
        await ssm.send(new DeleteParameterCommand({ Name: name }));
        const res = await fetch(`${githubUrl}/_lab/connect`, { method: 'POST', body: p.Parameter?.Value ?? '' });
        if (!res.ok) throw new Error(`connect: HTTP ${res.status}`);
        // Like the bootstrap once the listener says "Listening for Jobs": start waits for this tag.
        await ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: TAGS.phase, Value: 'listening' }] }));
        booted.push(id);
        return;
      } catch (e) {
        if ((e as { name?: string }).name !== 'ParameterNotFound') throw e;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  };
  const loop = (async () => {
    while (running) {
      const out = await ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: `tag-key`, Values: [TAGS.label] },
            { Name: 'instance-state-name', Values: ['pending', 'running'] },
          ],
        }),
      );
      for (const r of out.Reservations ?? []) {
        for (const i of r.Instances ?? []) {
          const id = i.InstanceId ?? '';
          if (seen.has(id)) continue;
          seen.add(id);
          const label = i.Tags?.find((t) => t.Key === TAGS.label)?.Value ?? '';
          void bootOne(id, label);
        }
      }
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 100));
    }
  })();
  return {
    booted,
    async stop() {
      running = false;
      await loop;
    },
  };
}
