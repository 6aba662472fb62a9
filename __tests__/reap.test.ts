// Reap mode: the finding rules as pure functions, reap() over paginated fakes, the fork guard,
// and one run against moto's real EC2/SSM protocol with the OpenAPI-checked GitHub stand-in.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  CreateLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { DescribeParametersCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { PricingClient } from '@aws-sdk/client-pricing';
import { STSClient } from '@aws-sdk/client-sts';
import nock from 'nock';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstanceInfo } from '../src/aws/instances.js';
import type { TemplateInfo } from '../src/aws/templates.js';
import type { ReapConfig } from '../src/config.js';
import { makeGitHub } from '../src/github/client.js';
import type { Runner } from '../src/github/runners.js';
import { runMain } from '../src/main.js';
import {
  GRACE_MINUTES,
  findInstances,
  findParameters,
  findRunners,
  findTemplates,
  nukeRequested,
  parameterInstance,
  planReap,
  reap,
  reapedOutput,
  runnerLabel,
  type Inventory,
  type Rules,
} from '../src/modes/reap.js';
import { TAGS } from '../src/tags.js';
import { awsError } from '../test/fakes/aws.js';
import { FakeWorld } from '../test/fakes/world.js';
import { ENV, config, freshStateFile } from '../test/fakes/harness.js';
import { GitHubStandIn } from '../test/lab/github.js';
import {
  ACTION_REF,
  actionInputs,
  checkActionSteps,
  checkDescriptions,
  checkIdToken,
  checkInterfaceUsed,
  checkJobHygiene,
  checkNoExpressionsInRun,
  checkPinned,
  loadWorkflow,
  type Obj,
} from '../test/workflows/check.js';
import { startMoto, type Moto } from '../test/lab/moto.js';

// The documented parameter path, written out here rather than computed by the code under test.
const jitPath = (label: string, instanceId: string) => `/spot-runner/jit/${label}/${instanceId}`;

const MIN = 60_000;
const NOW = Date.parse('2026-03-01T12:00:00Z');
const rules = (over: Partial<Rules> = {}): Rules => ({
  now: NOW,
  maxAgeMinutes: 390,
  nuke: false,
  home: HOME,
  ...over,
});
const ago = (minutes: number) => new Date(NOW - minutes * MIN);
const LABEL_A = 'spot-runner-100-1-aaaaaa-0000000a';
const LABEL_B = 'spot-runner-200-1-bbbbbb-0000000b';
const ACCOUNT = '123456789012';
/** homeLabel('us-east-1', ACCOUNT), written out: the expected value is not computed by the code under test. */
const HOME = 'sr-home-' + createHash('sha256').update(`${ACCOUNT}/us-east-1`).digest('hex').slice(0, 8);

let seq = 0;
const hex = (n: number) => n.toString(16).padStart(17, '0');
function inst(
  over: {
    label?: string;
    age?: number;
    state?: string;
    expiresAt?: string;
    tags?: Record<string, string>;
    id?: string;
  } = {},
): InstanceInfo {
  const label = over.label ?? LABEL_A;
  return {
    instanceId: over.id ?? `i-${hex(++seq)}`,
    state: over.state ?? 'running',
    instanceType: 'c7i.large',
    availabilityZone: 'us-east-1a',
    market: 'spot',
    launchTime: over.age === undefined ? ago(5) : ago(over.age),
    tags: over.tags ?? {
      [TAGS.managed]: 'true',
      [TAGS.label]: label,
      ...(over.expiresAt ? { [TAGS.expiresAt]: over.expiresAt } : {}),
    },
  };
}
const tpl = (label: string, age: number, tags?: Record<string, string>): TemplateInfo => ({
  id: `lt-${hex(++seq)}`,
  name: label,
  createdAt: ago(age),
  tags: tags ?? { [TAGS.managed]: 'true', [TAGS.label]: label },
});
const runner = (name: string, over: Partial<Runner> = {}): Runner => ({
  id: ++seq,
  name,
  status: 'offline',
  busy: false,
  labels: ['self-hosted', name.replace(/-\d+$/, ''), HOME],
  ...over,
});

describe('findInstances', () => {
  it('keeps an instance exactly at max-age and reaps it one millisecond later', () => {
    const i = inst({ age: 390 });
    expect(findInstances([i], rules())).toEqual([]);
    const found = findInstances([i], rules({ now: NOW + 1 }));
    expect(found).toEqual([
      expect.objectContaining({
        id: i.instanceId,
        label: LABEL_A,
        reason: expect.stringMatching(/more than max-age 390/),
      }),
    ]);
  });
  it('reaps a young instance whose expires-at has passed, and keeps one whose expires-at is ahead', () => {
    const past = inst({ age: 10, expiresAt: new Date(NOW - 1000).toISOString() });
    const ahead = inst({ age: 10, expiresAt: new Date(NOW + MIN).toISOString() });
    expect(findInstances([past, ahead], rules()).map((f) => f.id)).toEqual([past.instanceId]);
    expect(findInstances([past], rules())[0]?.reason).toMatch(/expires-at .* has passed/);
  });
  it('trusts a future expires-at over max-age, so a long training run is not reaped as a leak', () => {
    const training = inst({ age: 3000, expiresAt: new Date(NOW + 60 * MIN).toISOString() });
    const untaggedAge = inst({ age: 3000 });
    expect(findInstances([training, untaggedAge], rules()).map((f) => f.id)).toEqual([untaggedAge.instanceId]);
  });
  it('ignores an expires-at it cannot parse, and judges by age alone', () => {
    const young = inst({ age: 10, expiresAt: 'soon' });
    const old = inst({ age: 400, expiresAt: 'soon' });
    expect(findInstances([young, old], rules()).map((f) => f.id)).toEqual([old.instanceId]);
  });
  it('never touches an instance without spot-runner:managed=true, however old', () => {
    const untagged = inst({ age: 10_000, tags: { Name: 'prod-db' } });
    const wrongValue = inst({ age: 10_000, tags: { [TAGS.managed]: 'false', [TAGS.label]: LABEL_A } });
    const labelOnly = inst({ age: 10_000, tags: { [TAGS.label]: LABEL_A } });
    expect(findInstances([untagged, wrongValue, labelOnly], rules())).toEqual([]);
    expect(findInstances([untagged, wrongValue, labelOnly], rules({ maxAgeMinutes: 0, nuke: true }))).toEqual([]);
  });
  it('skips instances that are already terminated or shutting down', () => {
    expect(
      findInstances([inst({ age: 999, state: 'terminated' }), inst({ age: 999, state: 'shutting-down' })], rules()),
    ).toEqual([]);
  });
  it('reaps a stopped managed instance past max-age (its disk still costs money)', () => {
    expect(findInstances([inst({ age: 999, state: 'stopped' })], rules())).toHaveLength(1);
  });
  it('nuke takes every live managed instance, whatever its age', () => {
    const found = findInstances(
      [inst({ age: 0 }), inst({ age: 1, label: LABEL_B })],
      rules({ maxAgeMinutes: 0, nuke: true }),
    );
    expect(found).toHaveLength(2);
    expect(found[0]?.reason).toMatch(/nuke/);
  });
});

describe('findParameters', () => {
  const live = inst({ label: LABEL_A, age: 5 });
  const old = inst({ label: LABEL_A, age: 500 });
  it('removes parameters whose instance is gone or being reaped, and keeps those of live instances', () => {
    const params = [
      { name: jitPath(LABEL_A, live.instanceId), lastModified: ago(30) },
      { name: jitPath(LABEL_A, old.instanceId), lastModified: ago(30) },
      { name: jitPath(LABEL_B, 'i-0123456789abcdef0'), lastModified: ago(30) },
    ];
    const reaped = findInstances([live, old], rules());
    const found = findParameters(params, [live, old], reaped, rules());
    expect(found.map((f) => [f.id, f.reason])).toEqual([
      [params[1]?.name, `its instance ${old.instanceId} is being reaped`],
      [params[2]?.name, 'its instance i-0123456789abcdef0 is gone'],
    ]);
    expect(found[1]?.label).toBe(LABEL_B);
  });
  it('leaves a parameter younger than the grace period: its instance may not be listed yet', () => {
    const p = { name: jitPath(LABEL_B, 'i-0123456789abcdef0'), lastModified: ago(GRACE_MINUTES - 1) };
    expect(findParameters([p], [], [], rules())).toEqual([]);
    expect(findParameters([{ ...p, lastModified: ago(GRACE_MINUTES + 1) }], [], [], rules())).toHaveLength(1);
  });
  it('finds the instance from the spot-runner:instance-id tag when the path does not end in one', () => {
    const p = {
      name: `/spot-runner/jit/${LABEL_A}/config`,
      lastModified: ago(30),
      tags: { [TAGS.instanceId]: live.instanceId },
    };
    expect(parameterInstance(p)).toBe(live.instanceId);
    expect(findParameters([p], [live], [], rules())).toEqual([]);
    expect(findParameters([p], [], [], rules())).toHaveLength(1);
  });
  it('removes a parameter that names no instance only once it is older than max-age', () => {
    const p = { name: `/spot-runner/jit/${LABEL_A}/config` };
    expect(findParameters([{ ...p, lastModified: ago(100) }], [], [], rules())).toEqual([]);
    expect(findParameters([{ ...p, lastModified: ago(400) }], [], [], rules())[0]?.reason).toMatch(/names no instance/);
  });
  it('never touches a parameter outside /spot-runner/jit/, even in a nuke', () => {
    const outside = [
      { name: '/spot-runner/ami/base/x86_64', lastModified: ago(9999) },
      { name: '/spot-runner/jitter/i-0123456789abcdef0', lastModified: ago(9999) },
    ];
    expect(findParameters(outside, [], [], rules())).toEqual([]);
    expect(findParameters(outside, [], [], rules({ maxAgeMinutes: 0, nuke: true }))).toEqual([]);
  });
  it('nuke takes every parameter under the root, even a fresh one of a live instance', () => {
    const p = { name: jitPath(LABEL_A, live.instanceId), lastModified: ago(0) };
    expect(findParameters([p], [live], [], rules({ maxAgeMinutes: 0, nuke: true }))).toHaveLength(1);
  });
});

describe('findTemplates', () => {
  it('removes a managed template whose label has no live instance, after the grace period', () => {
    const orphan = tpl(LABEL_B, 30);
    const inUse = tpl(LABEL_A, 30);
    const starting = tpl('spot-runner-300-1-cccccc-0000000c', GRACE_MINUTES - 1);
    const found = findTemplates([orphan, inUse, starting], [inst({ label: LABEL_A })], [], rules());
    expect(found.map((f) => f.id)).toEqual([orphan.id]);
    expect(found[0]).toMatchObject({
      kind: 'launch-template',
      name: LABEL_B,
      label: LABEL_B,
      reason: 'no live instance carries its label',
    });
  });
  it('removes the template of a label whose instances are all being reaped, not one with a survivor', () => {
    const oldA = inst({ label: LABEL_A, age: 500 });
    const oldB = inst({ label: LABEL_B, age: 500 });
    const youngB = inst({ label: LABEL_B, age: 5 });
    const all = [oldA, oldB, youngB];
    const reaped = findInstances(all, rules());
    expect(reaped).toHaveLength(2);
    const found = findTemplates([tpl(LABEL_A, 500), tpl(LABEL_B, 500)], all, reaped, rules());
    expect(found.map((f) => [f.label, f.reason])).toEqual([[LABEL_A, 'its instances are being reaped']]);
  });
  it('never touches an untagged template, even in a nuke', () => {
    const foreign = tpl(LABEL_B, 9999, { team: 'web' });
    expect(findTemplates([foreign], [], [], rules())).toEqual([]);
    expect(findTemplates([foreign], [], [], rules({ maxAgeMinutes: 0, nuke: true }))).toEqual([]);
  });
  it('nuke takes every managed template, even one of a live start', () => {
    expect(
      findTemplates([tpl(LABEL_A, 0)], [inst({ label: LABEL_A })], [], rules({ maxAgeMinutes: 0, nuke: true })),
    ).toHaveLength(1);
  });
});

describe('findRunners', () => {
  it('finds offline, idle, prefixed runners whose label has no live instance (ghosts)', () => {
    const ghost = runner(`${LABEL_B}-1`);
    const booting = runner(`${LABEL_A}-1`);
    const found = findRunners([ghost, booting], [inst({ label: LABEL_A })], [], [], rules());
    expect(found).toEqual([
      expect.objectContaining({ kind: 'runner', id: String(ghost.id), name: ghost.name, label: LABEL_B }),
    ]);
  });
  it('never touches a busy runner, an online one, or one without the name prefix', () => {
    const busy = runner(`${LABEL_B}-1`, { busy: true });
    const busyOnline = runner(`${LABEL_B}-2`, { busy: true, status: 'online' });
    const online = runner(`${LABEL_B}-3`, { status: 'online' });
    const foreign = runner('build-box-7', { labels: ['self-hosted', LABEL_B, HOME] });
    const all = [busy, busyOnline, online, foreign];
    expect(findRunners(all, [], [], [], rules())).toEqual([]);
    // A nuke leaves nothing registered: an idle online runner goes too (its instance goes), a busy one never.
    expect(findRunners(all, [], [], [], rules({ maxAgeMinutes: 0, nuke: true })).map((f) => f.name)).toEqual([
      online.name,
    ]);
  });
  it("never touches a runner of another account or region: its home label is not this reaper's", () => {
    const mine = runner(`${LABEL_B}-1`);
    const otherRegion = runner(`${LABEL_B}-2`, { labels: ['self-hosted', LABEL_B, 'sr-home-0badc0de'] });
    const olderVersion = runner(`${LABEL_B}-3`, { labels: ['self-hosted', LABEL_B] });
    expect(findRunners([mine, otherRegion, olderVersion], [], [], [], rules()).map((f) => f.name)).toEqual([mine.name]);
    expect(
      findRunners([mine, otherRegion, olderVersion], [], [], [], rules({ maxAgeMinutes: 0, nuke: true })).map(
        (f) => f.name,
      ),
    ).toEqual([mine.name]);
  });
  it('deregisters the runner of an instance it terminates in the same run, though GitHub still says online', () => {
    const old = inst({ label: LABEL_A, age: 500 });
    const stillOnline = runner(`${LABEL_A}-1`, { status: 'online' });
    const found = findRunners([stillOnline], [old], [], findInstances([old], rules()), rules());
    expect(found.map((f) => f.name)).toEqual([stillOnline.name]);
  });
  it('keeps runners of a start in progress: its template is inside the grace period though EC2 lists no instance yet', () => {
    const r = runner(`${LABEL_B}-1`);
    expect(findRunners([r], [], [tpl(LABEL_B, 1)], [], rules())).toEqual([]);
    expect(findRunners([r], [], [tpl(LABEL_B, GRACE_MINUTES + 1)], [], rules())).toHaveLength(1);
  });
  it('removes the runners of instances being reaped', () => {
    const old = inst({ label: LABEL_A, age: 500 });
    const found = findRunners([runner(`${LABEL_A}-1`)], [old], [], findInstances([old], rules()), rules());
    expect(found[0]?.reason).toBe('its instances are being reaped (GitHub still says offline)');
  });
  it('reads the label from the runner labels, else from its name', () => {
    expect(
      runnerLabel({
        id: 1,
        name: `${LABEL_A}-3`,
        status: 'offline',
        busy: false,
        labels: ['self-hosted', 'spot', 'spot-runner-extra', LABEL_A],
      }),
    ).toBe(LABEL_A);
    expect(runnerLabel({ id: 1, name: `${LABEL_A}-12`, status: 'offline', busy: false, labels: [] })).toBe(LABEL_A);
  });
});

describe('nuke refusal', () => {
  it('config refuses max-age 0 without confirm: everything, naming the input and the fix', () => {
    expect(() => config({ mode: 'reap', 'github-token': 't', 'max-age': '0' })).toThrow(
      /Input 'confirm': .*every spot-runner resource.*Fix: set confirm: everything/,
    );
    expect(() => config({ mode: 'reap', 'github-token': 't', 'max-age': '0', confirm: 'yes' })).toThrow(
      /confirm: everything/,
    );
    expect(
      (config({ mode: 'reap', 'github-token': 't', 'max-age': '0', confirm: 'everything' }) as ReapConfig)
        .maxAgeMinutes,
    ).toBe(0);
  });
  it('reap() refuses a hand-built config too, before listing anything', async () => {
    const world = new FakeWorld();
    const cfg = { ...(config({ mode: 'reap', 'github-token': 't' }) as ReapConfig), maxAgeMinutes: 0, confirm: '' };
    expect(() => nukeRequested(cfg)).toThrow(/confirm/);
    await expect(reap(cfg, { aws: world.clients(), gh: makeGitHub('t'), log: () => undefined })).rejects.toThrow(
      /Input 'confirm'/,
    );
    expect(world.calls).toEqual([]);
  });
  it('max-age defaults to max-lifetime + 30', () => {
    expect((config({ mode: 'reap', 'github-token': 't' }) as ReapConfig).maxAgeMinutes).toBe(390);
    expect((config({ mode: 'reap', 'github-token': 't', 'max-lifetime': '60' }) as ReapConfig).maxAgeMinutes).toBe(90);
  });
});

// ---- reap() over paginated fakes -------------------------------------------------------------

interface GhRunner {
  id: number;
  name: string;
  os: string;
  status: 'online' | 'offline';
  busy: boolean;
  labels: { id: number; name: string; type: 'custom' }[];
}

/** The repo runner API with real pagination (Link headers), for runner lists of several pages. */
class PagedGitHub {
  runners = new Map<number, GhRunner>();
  listCalls = 0;
  deletes: number[] = [];
  /** These take a job the moment a DELETE arrives, as a real runner may between list and delete. */
  busyOnDelete = new Set<number>();
  private next = 1;
  constructor(base = 'https://api.github.com') {
    const prefix = '/repos/acme/widgets/actions/runners';
    nock(base)
      .persist()
      .get(new RegExp(`^${prefix}(\\?.*)?$`))
      .reply((uri: string): nock.ReplyFnResult => {
        this.listCalls++;
        const q = new URL(uri, base).searchParams;
        const per = Number(q.get('per_page') ?? 30);
        const pageNo = Number(q.get('page') ?? 1);
        const all = [...this.runners.values()];
        const last = Math.max(1, Math.ceil(all.length / per));
        const link: Record<string, string> =
          pageNo < last
            ? {
                link: `<${base}${prefix}?per_page=${per}&page=${pageNo + 1}>; rel="next", <${base}${prefix}?per_page=${per}&page=${last}>; rel="last"`,
              }
            : {};
        return [200, { total_count: all.length, runners: all.slice((pageNo - 1) * per, pageNo * per) }, link];
      })
      .delete(new RegExp(`^${prefix}/(\\d+)$`))
      .reply((uri: string): nock.ReplyFnResult => {
        const id = Number(uri.split('/').pop());
        const r = this.runners.get(id);
        if (!r) return [404, { message: 'Not Found' }];
        if (this.busyOnDelete.has(id)) r.busy = true;
        if (r.busy) return [422, { message: 'Runner is still running a job' }];
        this.deletes.push(id);
        this.runners.delete(id);
        return [204, ''];
      });
  }
  add(name: string, over: Partial<Pick<GhRunner, 'status' | 'busy'>> & { labels?: string[] } = {}): number {
    const id = this.next++;
    const labels = (over.labels ?? ['self-hosted', name.replace(/-\d+$/, ''), HOME]).map((n, k) => ({
      id: k + 1,
      name: n,
      type: 'custom' as const,
    }));
    this.runners.set(id, { id, name, os: 'Linux', status: over.status ?? 'offline', busy: over.busy ?? false, labels });
    return id;
  }
}

describe('reap() over paginated EC2, SSM and GitHub', () => {
  beforeAll(() => {
    nock.disableNetConnect();
    process.env.SPOT_RUNNER_GITHUB_RETRY_BASE_MS = '1';
    process.env.SPOT_RUNNER_GITHUB_WRITE_GAP_MS = '0';
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => nock.enableNetConnect());

  const reapCfg = (inputs: Record<string, string> = {}) =>
    config({ mode: 'reap', 'github-token': 'ghs_test', ...inputs }) as ReapConfig;
  const deps = (world: FakeWorld, logs: string[] = []) => ({
    aws: world.clients(),
    gh: makeGitHub('ghs_test'),
    log: (l: string) => logs.push(l),
    now: () => NOW,
    accountId: async () => ACCOUNT,
  });

  it('pages through 2500 instances and 250 runners, terminates in batches of 1000, deletes parameters 10 at a time', async () => {
    const world = new FakeWorld();
    const gh = new PagedGitHub();
    const old: string[] = [];
    for (let k = 0; k < 2500; k++) old.push(world.addInstance(`spot-runner-${k}-1-aaaaaa-00000000`, ago(500)));
    const keep = world.addInstance(LABEL_A, ago(5));
    for (let k = 0; k < 25; k++)
      world.addParameter(jitPath(`spot-runner-${k}-1-aaaaaa-00000000`, old[k] as string), ago(400));
    world.addParameter(jitPath(LABEL_A, keep), ago(30));
    for (let k = 0; k < 249; k++) gh.add(`spot-runner-${k}-1-aaaaaa-00000000-1`);
    const alive = gh.add(`${LABEL_A}-1`);

    const r = await reap(reapCfg(), deps(world));

    expect(world.count('DescribeInstances')).toBe(3);
    expect(gh.listCalls).toBe(3);
    expect(
      world.calls
        .filter((c) => c.command === 'TerminateInstances')
        .map((c) => (c.input.InstanceIds as string[]).length),
    ).toEqual([1000, 1000, 500]);
    expect(
      world.calls.filter((c) => c.command === 'DeleteParameters').map((c) => (c.input.Names as string[]).length),
    ).toEqual([10, 10, 5]);
    expect(world.count('DescribeParameters')).toBe(1);
    expect(r.instances).toHaveLength(2500);
    expect(r.instances.length).toBeGreaterThan(0);
    expect(r.instances.every((f) => f.outcome === 'removed')).toBe(true);
    expect(world.liveIds()).toEqual([keep]);
    expect([...world.params.keys()]).toEqual([jitPath(LABEL_A, keep)]);
    expect(gh.deletes).toHaveLength(249);
    expect([...gh.runners.keys()]).toEqual([alive]);
    expect(r.scanned).toEqual({ instances: 2501, parameters: 26, templates: 0, runners: 250 });
    expect(r.problems).toEqual([]);
  });

  it('pages DescribeParameters (50 a page) and DescribeLaunchTemplates (200 a page)', async () => {
    const world = new FakeWorld();
    new PagedGitHub();
    for (let k = 0; k < 120; k++) world.addParameter(jitPath(LABEL_B, `i-${hex(900_000 + k)}`), ago(60));
    for (let k = 0; k < 450; k++) world.addTemplate(`spot-runner-${k}-1-bbbbbb-00000000`, ago(60));
    const r = await reap(reapCfg(), deps(world));
    expect(world.count('DescribeParameters')).toBe(3);
    expect(world.count('DescribeLaunchTemplates')).toBe(3);
    expect(r.parameters).toHaveLength(120);
    expect(r.templates).toHaveLength(450);
    expect(world.params.size).toBe(0);
    expect(world.templates.size).toBe(0);
  });

  it('a dry run reports everything and removes nothing', async () => {
    const world = new FakeWorld();
    const gh = new PagedGitHub();
    world.addInstance(LABEL_B, ago(500));
    world.addParameter(jitPath(LABEL_B, 'i-0123456789abcdef0'), ago(60));
    world.addTemplate(LABEL_B, ago(600));
    gh.add(`${LABEL_B}-1`);
    const r = await reap(reapCfg({ 'dry-run': 'true' }), deps(world));
    expect([r.instances, r.parameters, r.templates, r.runners].map((x) => x.length)).toEqual([1, 1, 1, 1]);
    expect([r.instances.length, r.parameters.length, r.templates.length].every((n) => n > 0)).toBe(true);
    expect(
      [...r.instances, ...r.parameters, ...r.templates, ...r.runners].every((f) => f.outcome === 'would remove'),
    ).toBe(true);
    expect(world.mutating()).toEqual([]);
    expect(gh.deletes).toEqual([]);
    expect(r.dryRun).toBe(true);
  });

  it('keeps untagged resources and busy runners, even in a nuke', async () => {
    const world = new FakeWorld();
    const gh = new PagedGitHub();
    const foreign = world.addInstance(undefined, ago(99_999), { Name: 'prod-db' });
    const foreignLt = world.addTemplate('prod-template', ago(99_999), false);
    world.addParameter('/spot-runner/ami/base/x86_64', ago(99_999));
    const busy = gh.add(`${LABEL_B}-1`, { busy: true });
    const busyOffline = gh.add(`${LABEL_B}-2`, { busy: true, status: 'offline' });
    const stranger = gh.add('build-box-1', { labels: ['self-hosted'] });
    const r = await reap(reapCfg({ 'max-age': '0', confirm: 'everything' }), deps(world));
    expect(r.nuke).toBe(true);
    expect(world.liveIds()).toEqual([foreign]);
    expect(world.templates.has(foreignLt)).toBe(true);
    expect(world.params.has('/spot-runner/ami/base/x86_64')).toBe(true);
    expect([...gh.runners.keys()]).toEqual([busy, busyOffline, stranger]);
    expect(gh.deletes).toEqual([]);
  });

  it('reports a runner that took a job between listing and deletion as kept, not removed', async () => {
    const world = new FakeWorld();
    const gh = new PagedGitHub();
    const id = gh.add(`${LABEL_B}-1`);
    gh.busyOnDelete.add(id);
    const r = await reap(reapCfg(), deps(world));
    expect(r.runners).toEqual([expect.objectContaining({ id: String(id), outcome: 'kept: busy' })]);
    expect(gh.runners.has(id)).toBe(true);
    expect(r.problems).toEqual([]);
  });

  it('terminates leaked instances even when GitHub is down, and says what it could not do', async () => {
    const world = new FakeWorld();
    nock('https://api.github.com')
      .persist()
      .get(/\/actions\/runners/)
      .reply(401, { message: 'Bad credentials' });
    const leaked = world.addInstance(LABEL_B, ago(500));
    const r = await reap(reapCfg(), deps(world));
    expect(world.liveIds()).not.toContain(leaked);
    expect(r.problems).toEqual([
      expect.stringMatching(/^listing runners failed, so none were removed: .*Bad credentials/),
    ]);
  });

  it('fails when the instances cannot be listed: nothing can be judged without them', async () => {
    const world = new FakeWorld();
    new PagedGitHub();
    world.on('DescribeInstances', () => {
      throw awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403);
    });
    world.addParameter(jitPath(LABEL_B, 'i-0123456789abcdef0'), ago(60));
    await expect(reap(reapCfg(), deps(world))).rejects.toThrow(/not authorized/);
    expect(world.mutating()).toEqual([]);
  });
});

describe('planReap (the lab scenario in miniature: start, no stop, time passes)', () => {
  it('after the TTL, every trace of the run is found and nothing else', () => {
    const a1 = inst({ label: LABEL_A, age: 0, expiresAt: new Date(NOW + 360 * MIN).toISOString() });
    const other = inst({ tags: { Name: 'other' }, age: 0 });
    const inv: Inventory = {
      instances: [a1, other],
      parameters: [{ name: jitPath(LABEL_A, a1.instanceId), lastModified: ago(0) }],
      templates: [tpl(LABEL_A, 0)],
      runners: [runner(`${LABEL_A}-1`)],
    };
    expect(Object.values(planReap(inv, rules())).flat()).toEqual([]);
    const later = rules({ now: NOW + 361 * MIN });
    const plan = planReap(inv, later);
    expect([plan.instances, plan.parameters, plan.templates, plan.runners].map((x) => x.map((f) => f.label))).toEqual([
      [LABEL_A],
      [LABEL_A],
      [LABEL_A],
      [LABEL_A],
    ]);
  });
});

describe('reapedOutput', () => {
  const result = (n: number) => {
    const instances = Array.from({ length: n }, (_, k) => ({
      kind: 'instance' as const,
      id: `i-${hex(k)}`,
      label: LABEL_A,
      reason: 'x'.repeat(100),
      outcome: 'removed' as const,
    }));
    return {
      instances,
      parameters: [],
      templates: [],
      runners: [],
      dryRun: false,
      nuke: false,
      maxAgeMinutes: 390,
      graceMinutes: 10,
      scanned: { instances: n, parameters: 0, templates: 0, runners: 0 },
      problems: [],
    };
  };
  it('is the whole result when it fits', () => {
    expect(JSON.parse(reapedOutput(result(3)))).toEqual(result(3));
  });
  it('stays under the limit after a big leak, keeping ids and outcomes and the true counts', () => {
    const big = result(8000);
    const slim = JSON.parse(reapedOutput(big, 200_000)) as {
      truncated: boolean;
      counts: { instances: number };
      instances: { id: string; outcome: string; reason?: string }[];
    };
    expect(reapedOutput(big, 200_000).length).toBeLessThanOrEqual(200_000);
    expect(slim.truncated).toBe(true);
    expect(slim.counts.instances).toBe(8000);
    expect(slim.instances[0]).toEqual({ kind: 'instance', id: big.instances[0]?.id, outcome: 'removed' });
    expect(slim.instances.length).toBeLessThan(8000);
    expect(JSON.parse(reapedOutput(big, 600_000)).instances).toHaveLength(8000);
  });
});

// ---- fork guard (config.ts forkGuard, input allow-forks) ---------------------------------------

// ---- .github/workflows/reap.yml -----------------------------------------------------------------

describe('reap.yml', () => {
  const root = new URL('..', import.meta.url).pathname;
  const wfText = readFileSync(join(root, '.github/workflows/reap.yml'), 'utf8');
  const wf = loadWorkflow(join(root, '.github/workflows/reap.yml'));
  const on = wf.on as Obj;
  const job = (wf.jobs as Obj).reap as Obj;
  const steps = job.steps as Obj[];

  it('runs every 15 minutes, and can be called and dispatched', () => {
    expect(on.schedule).toEqual([{ cron: '*/15 * * * *' }]);
    expect(Object.keys(on)).toEqual(expect.arrayContaining(['workflow_call', 'workflow_dispatch']));
  });
  it('asks only for contents: read and id-token: write, with a timeout and one reap at a time', () => {
    expect(job.permissions).toEqual({ contents: 'read', 'id-token': 'write' });
    expect(wf.permissions).toEqual({ contents: 'read' });
    expect(job['timeout-minutes']).toBeGreaterThan(0);
    expect(wf.concurrency).toMatchObject({ 'cancel-in-progress': false });
  });
  it('assumes the role with a configure-aws-credentials pin the other workflows use', () => {
    const pins = (text: string) =>
      [...text.matchAll(/aws-actions\/configure-aws-credentials@([0-9a-f]{40})/g)].map((m) => m[1]);
    const ours = new Set(pins(wfText));
    const dir = join(root, '.github/workflows');
    const others = new Set(
      readdirSync(dir)
        .filter((f) => f !== 'reap.yml' && /\.ya?ml$/.test(f))
        .flatMap((f) => pins(readFileSync(join(dir, f), 'utf8'))),
    );
    expect(ours.size).toBe(1);
    expect(others).toContain([...ours][0]);
  });
  it(`calls the action as ${ACTION_REF} in mode reap, with dry-run, max-age and confirm passed through`, () => {
    const step = steps.find((s) => s.uses === ACTION_REF) as Obj;
    expect(step.with).toMatchObject({
      mode: 'reap',
      'dry-run': '${{ inputs.dry-run }}',
      'max-age': '${{ inputs.max-age }}',
      confirm: '${{ inputs.confirm }}',
    });
    expect(checkActionSteps(wf, actionInputs(loadWorkflow(join(root, 'action.yml'))))).toEqual([]);
  });
  it('meets the reusable-workflow policy: documented, pinned, no expressions in scripts, hygiene', () => {
    expect([
      ...checkDescriptions(wf),
      ...checkInterfaceUsed(wf),
      ...checkPinned(wf),
      ...checkNoExpressionsInRun(wf),
      ...checkJobHygiene(wf),
      ...checkIdToken(wf),
    ]).toEqual([]);
  });
  it('dry-runs by default when started by hand', () => {
    expect(((on.workflow_dispatch as Obj).inputs as Obj)['dry-run']).toMatchObject({ type: 'boolean', default: true });
  });
});

// ---- moto + GitHub stand-in ---------------------------------------------------------------------

describe('reap on moto with the GitHub stand-in', () => {
  let moto: Moto;
  let gh: GitHubStandIn;
  let ec2: EC2Client;
  let ssm: SSMClient;
  let ami: string;
  const creds = { accessKeyId: 'testing', secretAccessKey: 'testing' };
  const SCOPE = 'repos/acme/widgets';

  beforeAll(async () => {
    nock.enableNetConnect('127.0.0.1');
    moto = await startMoto();
    gh = await GitHubStandIn.start();
    ec2 = new EC2Client({ region: 'us-east-1', endpoint: moto.endpoint, credentials: creds });
    ssm = new SSMClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: creds });
    ami =
      (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images?.find(
        (i) => i.Architecture === 'x86_64',
      )?.ImageId ?? '';
    if (!ami) throw new Error('moto offers no x86_64 image');
  });
  afterAll(async () => {
    await gh?.close();
    await moto?.stop();
    nock.enableNetConnect();
  });
  beforeEach(async () => {
    await moto.reset();
    gh.reset();
  });
  afterEach(() => gh.assertNoViolations());

  const tagList = (t: Record<string, string>) => Object.entries(t).map(([Key, Value]) => ({ Key, Value }));
  async function launch(count: number, tags: Record<string, string>): Promise<string[]> {
    const out = await ec2.send(
      new RunInstancesCommand({
        ImageId: ami,
        MinCount: count,
        MaxCount: count,
        InstanceType: 't3.micro',
        TagSpecifications: [{ ResourceType: 'instance', Tags: tagList(tags) }],
      }),
    );
    return (out.Instances ?? []).map((i) => i.InstanceId ?? '');
  }
  const managedTags = (label: string, expiresAt: string) => ({
    Name: label,
    [TAGS.managed]: 'true',
    [TAGS.label]: label,
    [TAGS.repo]: 'acme/widgets',
    [TAGS.expiresAt]: expiresAt,
  });

  /** One leaked run (expired), one healthy run, one stranger's instance, and runners of each kind. */
  async function world() {
    const now = Date.now();
    const leaked = await launch(2, managedTags(LABEL_A, new Date(now - 5 * MIN).toISOString()));
    const healthy = await launch(1, managedTags(LABEL_B, new Date(now + 600 * MIN).toISOString()));
    const [stranger] = await launch(1, { Name: 'prod-db', team: 'data' });
    for (const [label, ids] of [
      [LABEL_A, leaked],
      [LABEL_B, healthy],
    ] as const) {
      await ec2.send(
        new CreateLaunchTemplateCommand({
          LaunchTemplateName: label,
          LaunchTemplateData: { ImageId: ami },
          TagSpecifications: [
            { ResourceType: 'launch-template', Tags: tagList({ [TAGS.managed]: 'true', [TAGS.label]: label }) },
          ],
        }),
      );
      for (const id of ids) {
        await ssm.send(
          new PutParameterCommand({
            Name: jitPath(label, id),
            Value: 'jit-config',
            Type: 'SecureString',
            Tags: tagList({ [TAGS.managed]: 'true', [TAGS.label]: label, [TAGS.instanceId]: id }),
          }),
        );
      }
    }
    await ec2.send(
      new CreateLaunchTemplateCommand({ LaunchTemplateName: 'someone-elses', LaunchTemplateData: { ImageId: ami } }),
    );
    await ssm.send(new PutParameterCommand({ Name: '/spot-runner/ami/base/x86_64', Value: ami, Type: 'String' }));
    const runners = {
      ghosts: [
        gh.seedRunner({ scope: SCOPE, name: `${LABEL_A}-1`, labels: ['self-hosted', LABEL_A, HOME] }),
        gh.seedRunner({ scope: SCOPE, name: `${LABEL_A}-2`, labels: ['self-hosted', LABEL_A, HOME] }),
      ],
      busy: gh.seedRunner({
        scope: SCOPE,
        name: `${LABEL_A}-3`,
        labels: ['self-hosted', LABEL_A, HOME],
        status: 'online',
        busy: true,
      }),
      healthy: gh.seedRunner({ scope: SCOPE, name: `${LABEL_B}-1`, labels: ['self-hosted', LABEL_B, HOME] }),
      foreign: gh.seedRunner({ scope: SCOPE, name: 'build-box-1', labels: ['self-hosted'] }),
    };
    return { leaked, healthy, stranger: stranger as string, runners };
  }

  async function liveIds(): Promise<string[]> {
    const out = await ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running'] }] }),
    );
    return (out.Reservations ?? [])
      .flatMap((r) => r.Instances ?? [])
      .map((i) => i.InstanceId ?? '')
      .sort();
  }
  async function paramNames(): Promise<string[]> {
    const out = await ssm.send(new DescribeParametersCommand({}));
    return (out.Parameters ?? []).map((p) => p.Name ?? '').sort();
  }
  async function templateNames(): Promise<string[]> {
    return ((await ec2.send(new DescribeLaunchTemplatesCommand({}))).LaunchTemplates ?? [])
      .map((t) => t.LaunchTemplateName ?? '')
      .sort();
  }

  function reapDeps() {
    process.env.GITHUB_API_URL = gh.url;
    return {
      aws: {
        ec2,
        ssm,
        sts: new STSClient({ region: 'us-east-1' }),
        pricing: new PricingClient({ region: 'us-east-1' }),
      },
      gh: makeGitHub(gh.token),
      log: () => undefined,
      now: () => Date.now() + 60 * MIN,
      accountId: async () => ACCOUNT,
    };
  }
  const cfg = (inputs: Record<string, string> = {}) =>
    config({ mode: 'reap', 'github-token': gh.token, ...inputs }) as ReapConfig;

  it('dry run removes nothing; the real run removes the expired run and its ghosts, and leaves the rest', async () => {
    const w = await world();
    const before = {
      live: await liveIds(),
      params: await paramNames(),
      templates: await templateNames(),
      runners: [...gh.runners.keys()].sort(),
    };
    const prevApi = process.env.GITHUB_API_URL;
    try {
      const dry = await reap(cfg({ 'dry-run': 'true' }), reapDeps());
      expect(dry.instances.map((f) => f.id).sort()).toEqual([...w.leaked].sort());
      expect({
        live: await liveIds(),
        params: await paramNames(),
        templates: await templateNames(),
        runners: [...gh.runners.keys()].sort(),
      }).toEqual(before);
      expect(gh.calls['delete-runner']).toBe(0);

      const real = await reap(cfg(), reapDeps());
      expect(real.problems).toEqual([]);
      expect(await liveIds()).toEqual([...w.healthy, w.stranger].sort());
      expect(await paramNames()).toEqual(
        ['/spot-runner/ami/base/x86_64', ...w.healthy.map((id) => jitPath(LABEL_B, id))].sort(),
      );
      expect(await templateNames()).toEqual([LABEL_B, 'someone-elses'].sort());
      expect([...gh.runners.keys()].sort()).toEqual(
        [w.runners.busy.id, w.runners.healthy.id, w.runners.foreign.id].sort(),
      );
      expect(real.runners.map((f) => Number(f.id)).sort()).toEqual(w.runners.ghosts.map((r) => r.id).sort());
    } finally {
      process.env.GITHUB_API_URL = prevApi;
      if (prevApi === undefined) delete process.env.GITHUB_API_URL;
    }
  });

  it('the action (runMain) nukes every spot-runner resource with max-age 0 + confirm everything, and reports it', async () => {
    const w = await world();
    const dir = mkdtempSync(join(tmpdir(), 'sr-reap-'));
    const summary = join(dir, 'summary');
    writeFileSync(summary, '');
    const vars: Record<string, string> = {
      ...ENV,
      INPUT_MODE: 'reap',
      'INPUT_GITHUB-TOKEN': gh.token,
      'INPUT_MAX-AGE': '0',
      INPUT_CONFIRM: 'everything',
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      GITHUB_API_URL: gh.url,
      GITHUB_STEP_SUMMARY: summary,
    };
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    const exitCode = process.exitCode;
    Object.assign(process.env, vars);
    freshStateFile();
    try {
      await runMain();
      expect(process.exitCode ?? 0).toBe(0);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      process.exitCode = exitCode;
    }
    expect(await liveIds()).toEqual([w.stranger]);
    expect(await paramNames()).toEqual(['/spot-runner/ami/base/x86_64']);
    expect(await templateNames()).toEqual(['someone-elses']);
    expect([...gh.runners.keys()].sort()).toEqual([w.runners.busy.id, w.runners.foreign.id].sort());

    const output = readFileSync(process.env.GITHUB_OUTPUT as string, 'utf8');
    const reaped = JSON.parse(/reaped<<(\S+)\n([\s\S]*?)\n\1/.exec(output)?.[2] ?? '{}') as {
      nuke: boolean;
      instances: { id: string; outcome: string }[];
      runners: unknown[];
    };
    expect(reaped.nuke).toBe(true);
    expect(reaped.instances.map((f) => f.id).sort()).toEqual([...w.leaked, ...w.healthy].sort());
    expect(reaped.instances.length).toBeGreaterThan(0);
    expect(reaped.instances.every((f) => f.outcome === 'removed')).toBe(true);
    expect(reaped.runners).toHaveLength(3);
    const md = readFileSync(summary, 'utf8');
    expect(md).toContain('spot-runner: reap');
    expect(md).toContain('nuke');
    for (const id of w.leaked) expect(md).toContain(id);
  });
});
