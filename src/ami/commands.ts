import { appendFileSync, readFileSync } from 'node:fs';
import { errorMessage } from '../errors.js';
import { housekeep, type HousekeepResult } from './housekeep.js';
import { findByContentHash, imageSizeGiB } from './images.js';
import { readManifest, type BuiltImage } from './manifest.js';
import { checkArch, checkContentHash, checkVariant } from './names.js';
import { publish, rollback, type AmiClients, type PublishResult } from './publish.js';

export const USAGE = `usage: ami <command> [options]
  find      --variant V --arch A --hash H [--region R]
            → outputs found, image-id, rolled-back
  publish   --variant V --arch A (--manifest packer/manifest.json | --image-id ami-… [--region R])
            [--skip-if-rolled-back] [--build-seconds N]
  rollback  --variant V --arch A [--region R | --regions r1,r2]
  housekeep --older-than-days N [--keep-newest K] [--dry-run] [--region R | --regions r1,r2]
Region defaults to AWS_REGION. Outputs go to GITHUB_OUTPUT and GITHUB_STEP_SUMMARY when set.`;

export interface CliDeps {
  clients(region: string): AmiClients;
  env: Record<string, string | undefined>;
  log(line: string): void;
  now?(): Date;
}

type Args = Record<string, string | true>;

const FLAGS = new Set(['dry-run', 'skip-if-rolled-back', 'help']);

function parseArgs(argv: string[]): { command: string; args: Args } {
  const [command = '', ...rest] = argv;
  const args: Args = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] ?? '';
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}'`);
    const [key = '', inline] = a.slice(2).split(/=(.*)/s, 2);
    if (FLAGS.has(key)) args[key] = true;
    else if (inline !== undefined) args[key] = inline;
    else {
      const v = rest[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`--${key} needs a value`);
      args[key] = v;
    }
  }
  return { command, args };
}

function str(args: Args, key: string): string {
  const v = args[key];
  if (typeof v !== 'string' || v === '') throw new Error(`--${key} is required`);
  return v;
}

function num(args: Args, key: string, fallback?: number): number {
  const v = args[key];
  if (v === undefined && fallback !== undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n)) throw new Error(`--${key} must be a number`);
  return n;
}

function regions(args: Args, env: CliDeps['env']): string[] {
  const list =
    typeof args.regions === 'string'
      ? args.regions
      : typeof args.region === 'string'
        ? args.region
        : (env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? '');
  const out = list
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  if (out.length === 0) throw new Error('no region: pass --region or set AWS_REGION');
  for (const r of out) if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(r)) throw new Error(`'${r}' is not an AWS region`);
  return [...new Set(out)];
}

function setOutputs(env: CliDeps['env'], outputs: Record<string, string>): void {
  if (!env.GITHUB_OUTPUT) return;
  appendFileSync(
    env.GITHUB_OUTPUT,
    Object.entries(outputs)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  );
}

function summary(env: CliDeps['env'], markdown: string): void {
  if (env.GITHUB_STEP_SUMMARY)
    appendFileSync(env.GITHUB_STEP_SUMMARY, markdown.endsWith('\n') ? markdown : `${markdown}\n`);
}

function duration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
}

async function cmdFind(args: Args, d: CliDeps): Promise<number> {
  const variant = checkVariant(str(args, 'variant'));
  const arch = checkArch(str(args, 'arch'));
  const contentHash = checkContentHash(str(args, 'hash'));
  const [region = ''] = regions(args, d.env);
  const found = await findByContentHash(d.clients(region).ec2, { variant, arch, contentHash });
  const out = {
    found: String(Boolean(found)),
    'image-id': found?.imageId ?? '',
    'rolled-back': String(found?.rolledBack ?? false),
  };
  setOutputs(d.env, out);
  d.log(JSON.stringify({ region, variant, arch, contentHash, ...out }));
  return 0;
}

async function cmdPublish(args: Args, d: CliDeps): Promise<number> {
  const variant = checkVariant(str(args, 'variant'));
  const arch = checkArch(str(args, 'arch'));
  let images: BuiltImage[];
  const buildSeconds = typeof args['build-seconds'] === 'string' ? num(args, 'build-seconds') : undefined;
  if (typeof args.manifest === 'string') {
    const entry = readManifest(readFileSync(args.manifest, 'utf8'), { variant, arch });
    images = entry.images;
  } else {
    const [region = ''] = regions(args, d.env);
    images = [{ region, imageId: str(args, 'image-id') }];
  }
  const results: (PublishResult & { region: string })[] = [];
  for (const { region, imageId } of images) {
    const r = await publish(d.clients(region), {
      variant,
      arch,
      imageId,
      skipIfRolledBack: args['skip-if-rolled-back'] === true,
    });
    results.push({ ...r, region });
    const what = r.skipped
      ? `skipped (${r.skipped})`
      : r.changed
        ? `published (previous: ${r.previousImageId ?? 'none'})`
        : 'already current';
    d.log(`${region} ${r.parameter} = ${r.imageId}: ${what}`);
  }
  const home = results[0];
  setOutputs(d.env, {
    'image-id': home?.imageId ?? '',
    changed: String(results.some((r) => r.changed)),
    skipped: String(results.some((r) => r.skipped)),
  });
  const rows = results.map(
    (r) =>
      `| ${variant} | ${arch} | ${r.region} | \`${r.imageId}\` | ${imageSizeGiB(r.image)} GiB | ${duration(buildSeconds)} | \`${r.parameter}\` | ${r.skipped ? `not published: ${r.skipped}` : r.changed ? `published; previous \`${r.previousImageId ?? 'none'}\`` : 'already current'} |`,
  );
  summary(
    d.env,
    [
      '| variant | arch | region | AMI | size | build time | parameter | result |',
      '|---|---|---|---|---|---|---|---|',
      ...rows,
    ].join('\n'),
  );
  return 0;
}

async function cmdRollback(args: Args, d: CliDeps): Promise<number> {
  const variant = checkVariant(str(args, 'variant'));
  const arch = checkArch(str(args, 'arch'));
  for (const region of regions(args, d.env)) {
    const r = await rollback(d.clients(region), { variant, arch }, d.now?.() ?? new Date());
    d.log(`${region} ${r.parameter}: ${r.from} → ${r.to} (${r.from} tagged rolled-back)`);
    summary(d.env, `Rolled back \`${r.parameter}\` in ${region}: \`${r.from}\` → \`${r.to}\``);
  }
  return 0;
}

function describeHousekeeping(region: string, r: HousekeepResult): string {
  const verb = r.dryRun ? 'would deregister' : 'deregistered';
  const lines = [
    `### AMI housekeeping in ${region}${r.dryRun ? ' (dry run)' : ''}`,
    `- referenced by parameters: ${r.referenced.length ? r.referenced.map((i) => `\`${i}\``).join(', ') : 'none'}`,
  ];
  lines.push(`- ${verb}: ${r.deregistered.length ? r.deregistered.map((x) => `\`${x.imageId}\``).join(', ') : 'none'}`);
  lines.push(`- snapshots ${r.dryRun ? 'to delete' : 'deleted'}: ${r.deletedSnapshots.length}`);
  lines.push(`- kept: ${r.kept.length}`);
  for (const e of r.errors) lines.push(`- ERROR ${e.id}: ${e.message}`);
  return lines.join('\n');
}

async function cmdHousekeep(args: Args, d: CliDeps): Promise<number> {
  const olderThanDays = num(args, 'older-than-days');
  const keepNewest = num(args, 'keep-newest', 1);
  let failed = false;
  for (const region of regions(args, d.env)) {
    const c = d.clients(region);
    const r = await housekeep(c.ec2, c.ssm, {
      olderThanDays,
      keepNewest,
      dryRun: args['dry-run'] === true,
      now: d.now?.(),
    });
    const text = describeHousekeeping(region, r);
    d.log(text);
    summary(d.env, text);
    if (r.errors.length > 0) failed = true;
  }
  return failed ? 1 : 0;
}

/** Runs one subcommand; returns the process exit code. Errors are printed, not thrown. */
export async function runCli(argv: string[], d: CliDeps): Promise<number> {
  try {
    const { command, args } = parseArgs(argv);
    if (args.help || command === '' || command === 'help' || command === '--help') {
      d.log(USAGE);
      return command === '' ? 2 : 0;
    }
    switch (command) {
      case 'find':
        return await cmdFind(args, d);
      case 'publish':
        return await cmdPublish(args, d);
      case 'rollback':
        return await cmdRollback(args, d);
      case 'housekeep':
        return await cmdHousekeep(args, d);
      default:
        d.log(`unknown command '${command}'\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    d.log(`error: ${errorMessage(e)}`);
    return 1;
  }
}
