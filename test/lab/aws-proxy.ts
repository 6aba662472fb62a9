// The lab's AWS fault proxy: an HTTP server between AWS clients (the action through
// AWS_ENDPOINT_URL, the instances' `aws` shim) and moto. It forwards every request, records
// each call by API action (EC2's Query `Action=`, SSM's JSON `X-Amz-Target`), and injects
// faults per action and per call count:
//   - throttle        EC2 `RequestLimitExceeded` (HTTP 503, what EC2 sends) / SSM `ThrottlingException` (400)
//   - capacity        a whole-call `InsufficientInstanceCapacity` (HTTP 500, as EC2 sends it)
//   - server-error    500/502/503/504 with EC2's `InternalError` / `Unavailable`
//   - latency         the call is delayed, then forwarded
//   - lose-response   the call reaches moto (it takes effect) but the caller gets a 500: the
//                     "timed out after the server acted" case ClientToken exists for
// Two things moto does not do, the proxy does, so the lab tests OUR behaviour against EC2's:
//   - ClientToken idempotency for CreateFleet: a repeated token with the same request replays
//     the first answer (moto would launch again); a different request gets IdempotentParameterMismatch.
//   - Capacity (setCapacity): spot pools without room. The request is rewritten BEFORE moto
//     sees it (overrides of a type without spot room are removed, the target is lowered to the
//     room left), and the answer gains the `errorSet` items EC2 would give for what was dropped.
//     Rewriting the request rather than the answer means no instance is ever launched and
//     then hidden, so nothing can leak. Moto launches every instance of a fleet from its first
//     override, so removing the first type's overrides is exactly "spot fell to the second type".
// And what real AWS does that moto does not, ON BY DEFAULT (docs/platform-behaviours.md, "AWS"):
//   - eventual consistency: instances CreateFleet/RunInstances returned are invisible to
//     DescribeInstances (by id: InvalidInstanceID.NotFound; under filters: left out) and to
//     TerminateInstances for `instanceMs`; a new launch template answers CreateFleet with
//     InvalidLaunchTemplateId.NotFound for `templateMs`; a terminated instance shows
//     shutting-down for `shuttingDownMs` (moto jumps to terminated).
//   - capacity pools: two subnets of one AZ for one type in a fleet is a whole-call
//     InvalidFleetConfig; a (type, AZ) moto's offerings lack (or `notOffered` names) gets a
//     per-override Unsupported, and DescribeInstanceTypeOfferings leaves it out.
//   - SSM throughput: PutParameter 3/s per account, GetParameter(s) 40/s shared (token buckets,
//     ThrottlingException).
//   - lost answers: every `losePutEvery`-th PutParameter from the action is carried out and its
//     answer lost (a 500), so the SDK's retry meets ParameterAlreadyExists.
//   - the Price List Query API (GetProducts), which moto lacks, answered from LAB_PRICE_LIST.
//   - stop and start (the warm pool): a fleet's instances get the launch template's
//     InstanceInitiatedShutdownBehavior (moto leaves its default, stop); StopInstances on a
//     one-time spot instance is UnsupportedOperation; StartInstances on an instance that is
//     terminated, shutting-down or stopping is IncorrectInstanceState (moto would revive a
//     terminated one); a started instance shows pending for `startingMs` (moto jumps to running).
import { randomUUID } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DescribeInstanceTypeOfferingsCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  EC2Client,
  ModifyInstanceAttributeCommand,
} from '@aws-sdk/client-ec2';
import { priceListItem } from '../fakes/price-list.js';
import { TokenBucket } from '../fakes/token-bucket.js';

export type AwsService = 'ec2' | 'ssm' | 'pricing' | 'other';
/** Who made the call: the action (AWS SDK for JS) or an instance (the lab's `aws` shim). */
export type CallSource = 'action' | 'instance' | 'other';

export type AwsFault =
  | { kind: 'throttle' }
  | { kind: 'capacity' }
  | { kind: 'server-error'; status?: 500 | 502 | 503 | 504 }
  | { kind: 'latency'; ms: number }
  | { kind: 'lose-response' };

export interface FaultRule {
  /** API action name (`CreateFleet`, `DescribeInstances`, `GetParameter`…), or '*'. */
  action: string | '*';
  fault: AwsFault;
  /** How many matching calls get the fault; default 1 (Infinity for an outage). */
  times?: number;
  /** Let this many matching calls through first. */
  after?: number;
  /** Only calls from this source; default any. */
  source?: CallSource;
}

export interface CallRecord {
  service: AwsService;
  action: string;
  source: CallSource;
  /** HTTP status the caller got. */
  status: number;
  /** The fault injected, if any; `replay` for a ClientToken replay. */
  fault?:
    | AwsFault['kind']
    | 'replay'
    | 'idempotent-mismatch'
    | 'rate-limit'
    | 'not-yet-visible'
    | 'duplicate-pools'
    | 'lost-answer';
  at: number;
  ms: number;
}

export interface Capacity {
  /** Instance types with no spot capacity at all. */
  noSpotTypes?: string[];
  /** Spot instances the region still has room for (across calls); default unlimited. */
  spotAvailable?: number;
  /** On-demand instances the region still has room for; default unlimited. */
  onDemandAvailable?: number;
}

export interface FleetLaunch {
  fleetId: string;
  clientToken?: string;
  market: string;
  instanceIds: string[];
  at: number;
}

/** The platform's non-ideal behaviours, each on by default; a test may set or turn one off (0 / Infinity), and must say why. */
export interface Realism {
  /** ms a launched instance stays invisible to DescribeInstances/TerminateInstances. */
  instanceMs: number;
  /** ms a new launch template is unknown to CreateFleet. */
  templateMs: number;
  /** ms a terminated instance shows shutting-down. */
  shuttingDownMs: number;
  /** SSM PutParameter calls a second, per account (Infinity = no limit). */
  putPerSecond: number;
  /** SSM GetParameter/GetParameters/GetParametersByPath calls a second, shared. */
  getPerSecond: number;
  /** Every n-th PutParameter from the action loses its answer after taking effect (0 = never). */
  losePutEvery: number;
  /** "type@az" pools to refuse as Unsupported, on top of moto's own offerings. */
  notOffered: string[];
  /** ms a started (StartInstances) instance shows pending before running. */
  startingMs: number;
}

export const REALISM_DEFAULTS: Realism = {
  instanceMs: 1500,
  templateMs: 500,
  shuttingDownMs: 1000,
  putPerSecond: 3,
  getPerSecond: 40,
  losePutEvery: 25,
  notOffered: [],
  startingMs: 500,
};

// On-demand Linux USD/hour the lab's Price List answers with (us-east-1, Shared, no software).
export const LAB_PRICE_LIST: Record<string, number> = {
  'c7i.large': 0.0893,
  'c6i.large': 0.085,
  'c7g.large': 0.0725,
  'm7i.large': 0.1008,
};

interface Rule extends FaultRule {
  times: number;
  after: number;
}

const EC2_NS = 'http://ec2.amazonaws.com/doc/2016-11-15';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface Forwarded {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export class AwsFaultProxy {
  readonly calls: CallRecord[] = [];
  readonly fleets: FleetLaunch[] = [];
  private rules: Rule[] = [];
  private capacity: Required<Pick<Capacity, 'spotAvailable' | 'onDemandAvailable'>> & { noSpotTypes: Set<string> } =
    AwsFaultProxy.noLimits();
  private tokens = new Map<string, Promise<{ body: string; reply: Forwarded }>>();
  private listeners: Array<(f: FleetLaunch) => void> = [];
  realism: Realism = { ...REALISM_DEFAULTS };
  private visibleAt = new Map<string, number>();
  private templateVisibleAt = new Map<string, number>();
  private terminatedAt = new Map<string, number>();
  /** StateReasons EC2 gives where moto says Client.UserInitiatedShutdown (a spot reclaim, a guest power-off). */
  private stateReasons = new Map<string, { code: string; message: string }>();
  private startedAt = new Map<string, number>();
  /** Launch template id → its InstanceInitiatedShutdownBehavior; instance ids a spot fleet launched. */
  private templateShutdown = new Map<string, string>();
  private spotIds = new Set<string>();
  private putBucket = new TokenBucket(REALISM_DEFAULTS.putPerSecond);
  private getBucket = new TokenBucket(REALISM_DEFAULTS.getPerSecond);
  private putsFromAction = 0;
  private subnetAz = new Map<string, string>();
  private offered = new Map<string, Set<string>>();
  private readonly moto: EC2Client;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly target: string,
  ) {
    this.moto = new EC2Client({
      region: 'us-east-1',
      endpoint: target,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
  }

  /** Sets some of the platform behaviours (the rest keep their values). */
  setRealism(r: Partial<Realism>): void {
    this.realism = { ...this.realism, ...r };
    this.putBucket = new TokenBucket(this.realism.putPerSecond);
    this.getBucket = new TokenBucket(this.realism.getPerSecond);
  }

  /** Starts the proxy on a free loopback port, forwarding to `target` (moto's endpoint). */
  static async start(target: string): Promise<AwsFaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const proxy = new AwsFaultProxy(server, `http://127.0.0.1:${port}`, target);
    server.on('request', (req, res) => {
      proxy.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`lab aws proxy: ${String(e)}`);
      });
    });
    return proxy;
  }

  private static noLimits() {
    return { spotAvailable: Infinity, onDemandAvailable: Infinity, noSpotTypes: new Set<string>() };
  }

  // ---- test controls --------------------------------------------------------------------

  inject(rule: FaultRule): void {
    this.rules.push({ ...rule, times: rule.times ?? 1, after: rule.after ?? 0 });
  }

  clearFaults(): void {
    this.rules = [];
  }

  setCapacity(c: Capacity): void {
    this.capacity = {
      spotAvailable: c.spotAvailable ?? Infinity,
      onDemandAvailable: c.onDemandAvailable ?? Infinity,
      noSpotTypes: new Set(c.noSpotTypes ?? []),
    };
  }

  /** Called with every fleet moto launched through the proxy (the simulator boots them at once). */
  onFleet(fn: (f: FleetLaunch) => void): void {
    this.listeners.push(fn);
  }

  /** Calls of an action (and source), as the caller saw them (faulted ones included). */
  count(action: string, source?: CallSource): number {
    return this.calls.filter((c) => c.action === action && (source === undefined || c.source === source)).length;
  }

  /** Calls of an action that succeeded (HTTP 200): a CreateFleet refused while its template was not yet known does not count. */
  accepted(action: string, source?: CallSource): number {
    return this.calls.filter(
      (c) => c.action === action && c.status === 200 && (source === undefined || c.source === source),
    ).length;
  }

  /** Calls per action, optionally of one source. */
  counts(source?: CallSource): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.calls)
      if (source === undefined || c.source === source) out[c.action] = (out[c.action] ?? 0) + 1;
    return out;
  }

  /**
   * The instance was ended by EC2 or by its own OS, not through the API: DescribeInstances gives
   * this StateReason as EC2 does (moto gives Client.UserInitiatedShutdown for every termination).
   */
  setStateReason(id: string, code: string, message: string): void {
    this.stateReasons.set(id, { code, message });
  }

  /** Faults, counts, fleets, tokens and capacity back to a clean state. */
  reset(): void {
    this.calls.length = 0;
    this.fleets.length = 0;
    this.clearFaults();
    this.tokens.clear();
    this.capacity = AwsFaultProxy.noLimits();
    this.visibleAt.clear();
    this.templateVisibleAt.clear();
    this.terminatedAt.clear();
    this.stateReasons.clear();
    this.startedAt.clear();
    this.templateShutdown.clear();
    this.spotIds.clear();
    this.subnetAz.clear();
    this.putsFromAction = 0;
    this.setRealism({ ...REALISM_DEFAULTS });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.moto.destroy();
  }

  // ---- HTTP -----------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = Date.now();
    const raw = await readBody(req);
    const body = raw.toString('utf8');
    const { service, action, form } = classify(req, body);
    const ua = String(req.headers['user-agent'] ?? '');
    const source: CallSource = /spot-runner-lab-shim|spot-runner-bootstrap/.test(ua)
      ? 'instance'
      : /aws-sdk-js/i.test(ua)
        ? 'action'
        : 'other';
    const record = (status: number, fault?: CallRecord['fault']) =>
      this.calls.push({ service, action, source, status, fault, at: t0, ms: Date.now() - t0 });

    const rule = this.pickRule(action, source);
    let loseResponse = false;
    if (rule) {
      rule.times--;
      const f = rule.fault;
      if (f.kind === 'latency') {
        await sleep(f.ms);
      } else if (f.kind === 'lose-response') {
        loseResponse = true;
      } else {
        const reply = faultReply(service, action, f);
        send(res, reply);
        record(reply.status, f.kind);
        return;
      }
    }

    // SSM's throughput quotas, before anything reaches moto.
    if (service === 'ssm' && !this.withinSsmQuota(action)) {
      const reply = jsonError(400, 'ThrottlingException', 'Rate exceeded');
      send(res, reply);
      record(reply.status, 'rate-limit');
      return;
    }
    let lostByDefault = false;
    if (
      !loseResponse &&
      service === 'ssm' &&
      action === 'PutParameter' &&
      source === 'action' &&
      this.realism.losePutEvery > 0
    ) {
      lostByDefault = this.putsFromAction++ % this.realism.losePutEvery === 0;
    }

    let reply: Forwarded;
    let mark: CallRecord['fault'];
    if (service === 'ec2' && action === 'CreateFleet' && form) {
      ({ reply, mark } = await this.createFleet(req, body, form));
    } else if (
      service === 'ec2' &&
      form &&
      (action === 'DescribeInstances' ||
        action === 'TerminateInstances' ||
        action === 'DescribeInstanceTypeOfferings' ||
        action === 'RunInstances' ||
        action === 'CreateLaunchTemplate' ||
        action === 'StopInstances' ||
        action === 'StartInstances')
    ) {
      ({ reply, mark } = await this.ec2Realism(req, raw, form, action));
    } else if (service === 'pricing') {
      reply = priceList(action, body);
    } else if (service === 'ssm' && action === 'DescribeParameters') {
      reply = await this.describeParameters(req, body);
    } else {
      reply = await this.forward(req, raw);
    }
    if (loseResponse || (lostByDefault && reply.status === 200)) {
      const lost = faultReply(service, action, { kind: 'server-error', status: 500 });
      send(res, lost);
      record(lost.status, loseResponse ? 'lose-response' : 'lost-answer');
      return;
    }
    send(res, reply);
    record(reply.status, mark);
  }

  /** The first rule that matches and has faults left; a rule's first `after` matches pass untouched. */
  private pickRule(action: string, source: CallSource): Rule | undefined {
    for (const r of this.rules) {
      if (r.times <= 0 || (r.action !== '*' && r.action !== action) || (r.source !== undefined && r.source !== source))
        continue;
      if (r.after > 0) {
        r.after--;
        continue;
      }
      return r;
    }
    return undefined;
  }

  private async createFleet(
    req: IncomingMessage,
    body: string,
    form: URLSearchParams,
  ): Promise<{ reply: Forwarded; mark?: CallRecord['fault'] }> {
    const token = form.get('ClientToken') ?? '';
    // Strip nothing but the token itself when comparing: the SDK re-signs a retry, the body is the same.
    if (token) {
      const prior = this.tokens.get(token);
      if (prior) {
        const first = await prior.catch(() => undefined);
        if (first && first.reply.status === 200) {
          if (first.body !== body) {
            return {
              reply: ec2Error(
                400,
                'IdempotentParameterMismatch',
                `Client token ${token} was used with a different request.`,
              ),
              mark: 'idempotent-mismatch',
            };
          }
          return { reply: first.reply, mark: 'replay' };
        }
      }
    }
    const work = this.launchFleet(req, body, form, token);
    if (token)
      this.tokens.set(
        token,
        work.then((reply) => ({ body, reply })),
      );
    const reply = await work;
    // A failed call may be retried with the same token and must then really launch.
    if (token && reply.status !== 200) this.tokens.delete(token);
    return { reply };
  }

  private async launchFleet(
    req: IncomingMessage,
    body: string,
    form: URLSearchParams,
    token: string,
  ): Promise<Forwarded> {
    const market = form.get('TargetCapacitySpecification.DefaultTargetCapacityType') ?? 'on-demand';
    const total = Number(form.get('TargetCapacitySpecification.TotalTargetCapacity') ?? '0');
    const overrides = parseOverrides(form);
    const errors: FleetErrorItem[] = [];
    const ltIdReq = form.get('LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId') ?? '';
    const ltAt = this.templateVisibleAt.get(ltIdReq);
    if (ltAt !== undefined && Date.now() < ltAt) {
      return ec2Error(
        400,
        'InvalidLaunchTemplateId.NotFound',
        `The specified launch template, with template ID ${ltIdReq}, does not exist.`,
      );
    }
    await this.poolFacts(
      [...new Set(overrides.map((o) => o.fields.SubnetId ?? '').filter(Boolean))],
      [...new Set(overrides.map((o) => o.fields.InstanceType ?? ''))],
    );
    const pools = new Set<string>();
    for (const o of overrides) {
      if (!o.fields.SubnetId) continue;
      const pool = `${o.fields.InstanceType ?? ''}@${this.subnetAz.get(o.fields.SubnetId) ?? ''}`;
      if (pools.has(pool))
        return ec2Error(
          400,
          'InvalidFleetConfig',
          `The fleet configuration contains duplicate instance pools (${pool}).`,
        );
      pools.add(pool);
    }
    const unsupported = overrides.filter((o) => {
      const az = o.fields.SubnetId ? this.subnetAz.get(o.fields.SubnetId) : undefined;
      const t = o.fields.InstanceType ?? '';
      return az !== undefined && (!this.offered.get(t)?.has(az) || this.realism.notOffered.includes(`${t}@${az}`));
    });
    for (const o of unsupported) {
      const az = this.subnetAz.get(o.fields.SubnetId ?? '') ?? '';
      errors.push({
        override: o,
        lifecycle: market,
        code: 'Unsupported',
        message: `Your requested instance type (${o.fields.InstanceType ?? ''}) is not supported in your requested Availability Zone (${az}).`,
      });
    }
    let usable = overrides.filter((o) => !unsupported.includes(o));
    if (market === 'spot' && this.capacity.noSpotTypes.size > 0) {
      const before = usable;
      usable = before.filter((o) => !this.capacity.noSpotTypes.has(o.fields.InstanceType ?? ''));
      for (const o of before.filter((x) => !usable.includes(x)))
        errors.push({
          override: o,
          lifecycle: market,
          code: 'InsufficientInstanceCapacity',
          message: `There is no Spot capacity available that matches your request (${o.fields.InstanceType ?? '?'}).`,
        });
    }
    const room = market === 'spot' ? this.capacity.spotAvailable : this.capacity.onDemandAvailable;
    const granted = usable.length === 0 ? 0 : Math.min(total, room);
    if (granted < total && usable.length > 0) {
      for (const o of usable)
        errors.push({
          override: o,
          lifecycle: market,
          code: 'InsufficientInstanceCapacity',
          message: `We currently do not have sufficient ${o.fields.InstanceType ?? ''} capacity in the Availability Zone you requested.`,
        });
    }
    const ltId = form.get('LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId') ?? '';
    let reply: Forwarded;
    if (granted === 0) {
      reply = {
        status: 200,
        headers: { 'content-type': 'text/xml' },
        body: Buffer.from(fleetXml(`fleet-${randomUUID()}`, '', errors, ltId)),
      };
    } else {
      const rewritten = errors.length > 0 ? rewriteFleetForm(form, usable, granted, market) : body;
      reply = await this.forward(req, Buffer.from(rewritten));
      if (reply.status === 200 && errors.length > 0) {
        reply = { ...reply, body: Buffer.from(addErrorSet(reply.body.toString('utf8'), errors, ltId)) };
      }
    }
    if (reply.status === 200) {
      const text = reply.body.toString('utf8');
      const ids = [
        ...(/<fleetInstanceSet>([\s\S]*)<\/fleetInstanceSet>/.exec(text)?.[1] ?? '').matchAll(
          /<item>(i-[0-9a-f]+)<\/item>/g,
        ),
      ].map((m) => m[1] ?? '');
      if (market === 'spot') this.capacity.spotAvailable -= ids.length;
      else this.capacity.onDemandAvailable -= ids.length;
      for (const id of ids) this.visibleAt.set(id, Date.now() + this.realism.instanceMs);
      if (market === 'spot') for (const id of ids) this.spotIds.add(id);
      // EC2 gives the instances the template's shutdown behaviour; moto keeps its default (stop).
      const behaviour = this.templateShutdown.get(ltId);
      if (behaviour) {
        for (const id of ids)
          await this.moto.send(
            new ModifyInstanceAttributeCommand({
              InstanceId: id,
              Attribute: 'instanceInitiatedShutdownBehavior',
              Value: behaviour,
            }),
          );
      }
      const launch: FleetLaunch = {
        fleetId: /<fleetId>([^<]*)<\/fleetId>/.exec(text)?.[1] ?? '',
        clientToken: token || undefined,
        market,
        instanceIds: ids,
        at: Date.now(),
      };
      this.fleets.push(launch);
      for (const l of this.listeners) l(launch);
    }
    return reply;
  }

  /** SSM pages DescribeParameters at MaxResults (≤ 50); moto returns everything at once. */
  private async describeParameters(req: IncomingMessage, body: string): Promise<Forwarded> {
    const input = JSON.parse(body || '{}') as { MaxResults?: number; NextToken?: string };
    const max = Math.min(input.MaxResults ?? 50, 50);
    const offset = input.NextToken?.startsWith('lab-page-') ? Number(input.NextToken.slice(9)) : 0;
    const { MaxResults: _m, NextToken: _n, ...rest } = input;
    const reply = await this.forward(req, Buffer.from(JSON.stringify(rest)));
    if (reply.status !== 200) return reply;
    const all = (JSON.parse(reply.body.toString('utf8')) as { Parameters?: unknown[] }).Parameters ?? [];
    const page = all.slice(offset, offset + max);
    const next = offset + max < all.length ? `lab-page-${offset + max}` : undefined;
    return { ...reply, body: Buffer.from(JSON.stringify({ Parameters: page, ...(next ? { NextToken: next } : {}) })) };
  }

  private withinSsmQuota(action: string): boolean {
    if (action === 'PutParameter') return this.putBucket.take();
    if (action === 'GetParameter' || action === 'GetParameters' || action === 'GetParametersByPath')
      return this.getBucket.take();
    return true;
  }

  private hidden(id: string): boolean {
    const at = this.visibleAt.get(id);
    return at !== undefined && Date.now() < at;
  }

  private async ec2Realism(
    req: IncomingMessage,
    raw: Buffer,
    form: URLSearchParams,
    action: string,
  ): Promise<{ reply: Forwarded; mark?: CallRecord['fault'] }> {
    const ids = [...form.entries()].filter(([k]) => /^InstanceId\.\d+$/.test(k)).map(([, v]) => v);
    if (action === 'TerminateInstances' || (action === 'DescribeInstances' && ids.length > 0)) {
      const unseen = ids.filter((id) => this.hidden(id));
      if (unseen.length > 0) {
        const msg =
          unseen.length === 1
            ? `The instance ID '${unseen[0]}' does not exist`
            : `The instance IDs '${unseen.join(', ')}' do not exist`;
        return { reply: ec2Error(400, 'InvalidInstanceID.NotFound', msg), mark: 'not-yet-visible' };
      }
    }
    if (action === 'StopInstances') {
      const spot = ids.filter((id) => this.spotIds.has(id));
      if (spot.length > 0) {
        return {
          reply: ec2Error(
            400,
            'UnsupportedOperation',
            `You can't stop the Spot Instance '${spot[0]}' because it is associated with a one-time Spot Instance request. You can only stop Spot Instances associated with persistent Spot Instance requests.`,
          ),
        };
      }
    }
    if (action === 'StartInstances') {
      const out = await this.moto.send(new DescribeInstancesCommand({ InstanceIds: ids })).catch(() => undefined);
      const bad = (out?.Reservations ?? [])
        .flatMap((r) => r.Instances ?? [])
        .find(
          (i) =>
            ['terminated', 'shutting-down', 'stopping'].includes(i.State?.Name ?? '') ||
            this.terminatedAt.has(i.InstanceId ?? ''),
        );
      if (bad)
        return {
          reply: ec2Error(
            400,
            'IncorrectInstanceState',
            `The instance '${bad.InstanceId ?? ''}' is not in a state from which it can be started.`,
          ),
        };
    }
    let reply = await this.forward(req, raw);
    if (reply.status !== 200) return { reply };
    const now = Date.now();
    let text = reply.body.toString('utf8');
    if (action === 'RunInstances') {
      for (const m of text.matchAll(/<instanceId>(i-[0-9a-f]+)<\/instanceId>/g))
        this.visibleAt.set(m[1] ?? '', now + this.realism.instanceMs);
    } else if (action === 'CreateLaunchTemplate') {
      const id = /<launchTemplateId>(lt-[0-9a-f]+)<\/launchTemplateId>/.exec(text)?.[1];
      if (id) this.templateVisibleAt.set(id, now + this.realism.templateMs);
      const behaviour = form.get('LaunchTemplateData.InstanceInitiatedShutdownBehavior');
      if (id && behaviour) this.templateShutdown.set(id, behaviour);
    } else if (action === 'StartInstances') {
      for (const id of ids) this.startedAt.set(id, now);
      text = text.replace(/(<currentState>\s*<code>)16(<\/code>\s*<name>)running(<\/name>)/g, '$10$2pending$3');
    } else if (action === 'TerminateInstances') {
      for (const id of ids) if (!this.terminatedAt.has(id)) this.terminatedAt.set(id, now);
    } else if (action === 'DescribeInstanceTypeOfferings' && this.realism.notOffered.length > 0) {
      text = text.replace(
        /<item>\s*<instanceType>([^<]+)<\/instanceType>\s*<locationType>[^<]*<\/locationType>\s*<location>([^<]+)<\/location>\s*<\/item>/g,
        (all, t: string, az: string) => (this.realism.notOffered.includes(`${t}@${az}`) ? '' : all),
      );
    } else if (action === 'DescribeInstances') {
      // Under filters a not-yet-visible instance is simply absent: ask moto again for the visible ones only.
      const found = [...new Set([...text.matchAll(/<instanceId>(i-[0-9a-f]+)<\/instanceId>/g)].map((m) => m[1] ?? ''))];
      const unseen = found.filter((id) => this.hidden(id));
      if (unseen.length > 0) {
        const visible = found.filter((id) => !unseen.includes(id));
        if (visible.length === 0) {
          text = `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstancesResponse xmlns="${EC2_NS}"><requestId>${randomUUID()}</requestId><reservationSet/></DescribeInstancesResponse>`;
        } else {
          const again = new URLSearchParams();
          for (const [k, v] of form) if (k !== 'MaxResults' && k !== 'NextToken') again.append(k, v);
          visible.forEach((id, k) => again.append(`InstanceId.${k + 1}`, id));
          text = (await this.forward(req, Buffer.from(again.toString()))).body.toString('utf8');
        }
      }
      for (const [id, r] of this.stateReasons) text = withStateReason(text, id, r.code, r.message);
      // moto jumps to running; EC2 shows pending first.
      for (const [id, at] of this.startedAt) {
        if (now - at >= this.realism.startingMs) continue;
        text = text.replace(
          new RegExp(
            `(<instanceId>${id}</instanceId>[\\s\\S]*?<instanceState>\\s*<code>)16(</code>\\s*<name>)running(</name>)`,
          ),
          '$10$2pending$3',
        );
      }
      // moto jumps to terminated; EC2 shows shutting-down first.
      for (const [id, at] of this.terminatedAt) {
        if (now - at >= this.realism.shuttingDownMs) continue;
        text = text.replace(
          new RegExp(
            `(<instanceId>${id}</instanceId>[\\s\\S]*?<instanceState>\\s*<code>)48(</code>\\s*<name>)terminated(</name>)`,
          ),
          '$132$2shutting-down$3',
        );
      }
    }
    reply = { ...reply, body: Buffer.from(text) };
    return { reply, mark: undefined };
  }

  /** subnet → AZ and type → offered AZs, from moto itself (cached). */
  private async poolFacts(subnets: string[], types: string[]): Promise<void> {
    const missing = subnets.filter((s) => !this.subnetAz.has(s));
    if (missing.length > 0) {
      const out = await this.moto.send(new DescribeSubnetsCommand({ SubnetIds: missing }));
      for (const sn of out.Subnets ?? []) this.subnetAz.set(sn.SubnetId ?? '', sn.AvailabilityZone ?? '');
    }
    const unknownTypes = types.filter((t) => !this.offered.has(t));
    if (unknownTypes.length > 0) {
      const out = await this.moto.send(
        new DescribeInstanceTypeOfferingsCommand({
          LocationType: 'availability-zone',
          Filters: [{ Name: 'instance-type', Values: unknownTypes }],
        }),
      );
      for (const t of unknownTypes) this.offered.set(t, new Set());
      for (const o of out.InstanceTypeOfferings ?? []) this.offered.get(o.InstanceType ?? '')?.add(o.Location ?? '');
    }
  }

  private forward(req: IncomingMessage, body: Buffer): Promise<Forwarded> {
    const target = new URL(req.url ?? '/', this.target);
    const headers = { ...req.headers, host: target.host, 'content-length': String(body.length) };
    delete headers['transfer-encoding'];
    return new Promise((resolve, reject) => {
      const r = httpRequest(target, { method: req.method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const h: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers))
            if (v !== undefined && !['content-length', 'connection', 'transfer-encoding'].includes(k))
              h[k] = Array.isArray(v) ? v.join(', ') : v;
          resolve({ status: res.statusCode ?? 502, headers: h, body: Buffer.concat(chunks) });
        });
        res.on('error', reject);
      });
      r.on('error', reject);
      r.end(body);
    });
  }
}

// ---- protocol helpers ------------------------------------------------------------------

function classify(req: IncomingMessage, body: string): { service: AwsService; action: string; form?: URLSearchParams } {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') {
    const [prefix = '', action = ''] = target.split('.');
    return { service: /ssm/i.test(prefix) ? 'ssm' : /PriceList/i.test(prefix) ? 'pricing' : 'other', action };
  }
  const ctype = String(req.headers['content-type'] ?? '');
  if (ctype.includes('x-www-form-urlencoded') || body.includes('Action=')) {
    const form = new URLSearchParams(body);
    const action = form.get('Action') ?? new URL(req.url ?? '/', 'http://x').searchParams.get('Action') ?? 'Unknown';
    return { service: 'ec2', action, form };
  }
  return { service: 'other', action: `${req.method ?? 'GET'} ${req.url ?? '/'}` };
}

function ec2Error(status: number, code: string, message: string): Forwarded {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`;
  return { status, headers: { 'content-type': 'text/xml;charset=UTF-8' }, body: Buffer.from(xml) };
}

function jsonError(status: number, type: string, message: string): Forwarded {
  return {
    status,
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amzn-requestid': randomUUID(),
      'x-amzn-errortype': type,
    },
    body: Buffer.from(JSON.stringify({ __type: type, message })),
  };
}

function faultReply(
  service: AwsService,
  action: string,
  f: Exclude<AwsFault, { kind: 'latency' } | { kind: 'lose-response' }> | { kind: 'server-error'; status: number },
): Forwarded {
  const json = service === 'ssm';
  switch (f.kind) {
    case 'throttle':
      return json
        ? jsonError(400, 'ThrottlingException', 'Rate exceeded')
        : ec2Error(503, 'RequestLimitExceeded', 'Request limit exceeded.');
    case 'capacity':
      return ec2Error(
        500,
        'InsufficientInstanceCapacity',
        `We currently do not have sufficient capacity to serve ${action}.`,
      );
    case 'server-error': {
      const status = f.status ?? 500;
      if (json) return jsonError(status, 'InternalServerError', 'lab: injected server error');
      return ec2Error(
        status,
        status === 503 ? 'Unavailable' : 'InternalError',
        'An internal error has occurred (injected by the lab).',
      );
    }
  }
}

function send(res: ServerResponse, r: Forwarded): void {
  res.writeHead(r.status, { ...r.headers, 'content-length': String(r.body.length) });
  res.end(r.body);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

interface Override {
  index: number;
  fields: Record<string, string>;
}

interface FleetErrorItem {
  override: Override;
  lifecycle: string;
  code: string;
  message: string;
}

function parseOverrides(form: URLSearchParams): Override[] {
  const byIndex = new Map<number, Record<string, string>>();
  for (const [k, v] of form) {
    const m = /^LaunchTemplateConfigs\.1\.Overrides\.(\d+)\.(.+)$/.exec(k);
    if (!m) continue;
    const i = Number(m[1]);
    const f = byIndex.get(i) ?? {};
    f[m[2] ?? ''] = v;
    byIndex.set(i, f);
  }
  return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([index, fields]) => ({ index, fields }));
}

function rewriteFleetForm(form: URLSearchParams, usable: Override[], granted: number, market: string): string {
  const out = new URLSearchParams();
  for (const [k, v] of form) if (!/^LaunchTemplateConfigs\.1\.Overrides\./.test(k)) out.append(k, v);
  usable.forEach((o, i) => {
    for (const [f, v] of Object.entries(o.fields)) out.append(`LaunchTemplateConfigs.1.Overrides.${i + 1}.${f}`, v);
  });
  out.set('TargetCapacitySpecification.TotalTargetCapacity', String(granted));
  out.set(
    market === 'spot'
      ? 'TargetCapacitySpecification.SpotTargetCapacity'
      : 'TargetCapacitySpecification.OnDemandTargetCapacity',
    String(granted),
  );
  return out.toString();
}

function errorItemsXml(errors: FleetErrorItem[], ltId: string): string {
  return errors
    .map((e) => {
      const o = e.override.fields;
      const ov = [
        o.InstanceType ? `<instanceType>${xmlEscape(o.InstanceType)}</instanceType>` : '',
        o.SubnetId ? `<subnetId>${xmlEscape(o.SubnetId)}</subnetId>` : '',
        o.Priority ? `<priority>${xmlEscape(o.Priority)}</priority>` : '',
      ].join('');
      return `<item><launchTemplateAndOverrides><launchTemplateSpecification><launchTemplateId>${xmlEscape(ltId)}</launchTemplateId><version>1</version></launchTemplateSpecification><overrides>${ov}</overrides></launchTemplateAndOverrides><lifecycle>${e.lifecycle}</lifecycle><errorCode>${e.code}</errorCode><errorMessage>${xmlEscape(e.message)}</errorMessage></item>`;
    })
    .join('');
}

function fleetXml(fleetId: string, instanceSet: string, errors: FleetErrorItem[], ltId: string): string {
  return `<?xml version="1.0" encoding="utf-8"?>\n<CreateFleetResponse xmlns="${EC2_NS}"><requestId>${randomUUID()}</requestId><fleetId>${fleetId}</fleetId><errorSet>${errorItemsXml(errors, ltId)}</errorSet><fleetInstanceSet>${instanceSet}</fleetInstanceSet></CreateFleetResponse>`;
}

function addErrorSet(xml: string, errors: FleetErrorItem[], ltId: string): string {
  const items = errorItemsXml(errors, ltId);
  if (xml.includes('<errorSet>')) return xml.replace('<errorSet>', `<errorSet>${items}`);
  if (xml.includes('<errorSet/>')) return xml.replace('<errorSet/>', `<errorSet>${items}</errorSet>`);
  return xml.replace('</fleetId>', `</fleetId><errorSet>${items}</errorSet>`);
}

/** The Price List Query API's GetProducts (moto has no pricing), for TERM_MATCH filters on instanceType and regionCode. */
function priceList(action: string, body: string): Forwarded {
  if (action !== 'GetProducts')
    return jsonError(400, 'InvalidParameterException', `lab: pricing ${action} is not modelled`);
  const req = JSON.parse(body || '{}') as { ServiceCode?: string; Filters?: { Field: string; Value: string }[] };
  const f = (name: string) => req.Filters?.find((x) => x.Field === name)?.Value;
  const type = f('instanceType') ?? '';
  const price =
    req.ServiceCode === 'AmazonEC2' && (f('regionCode') ?? 'us-east-1') === 'us-east-1'
      ? LAB_PRICE_LIST[type]
      : undefined;
  const items = price === undefined ? [] : [priceListItem(type, 'us-east-1', price, 'LAB')];
  return {
    status: 200,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() },
    body: Buffer.from(JSON.stringify({ FormatVersion: 'aws_v1', PriceList: items })),
  };
}

/** Sets one instance's <stateReason> in a DescribeInstances answer (moto puts it before the id, in the same <item>). */
function withStateReason(xml: string, id: string, code: string, message: string): string {
  const at = xml.indexOf(`<instanceId>${id}</instanceId>`);
  if (at < 0) return xml;
  const tags = [...xml.matchAll(/<\/?item>/g)];
  let start = -1;
  let end = -1;
  for (let k = tags.filter((t) => t.index < at).length - 1, depth = 0; k >= 0; k--) {
    if (tags[k]?.[0] === '</item>') depth++;
    else if (depth-- === 0) {
      start = tags[k]?.index ?? -1;
      break;
    }
  }
  for (let k = tags.findIndex((t) => t.index > at), depth = 0; k >= 0 && k < tags.length; k++) {
    if (tags[k]?.[0] === '<item>') depth++;
    else if (depth-- === 0) {
      end = tags[k]?.index ?? -1;
      break;
    }
  }
  if (start < 0 || end < 0) return xml;
  const reason = `<stateReason><code>${code}</code><message>${message}</message></stateReason>`;
  let item = xml.slice(start, end);
  item = /<stateReason>[\s\S]*?<\/stateReason>/.test(item)
    ? item.replace(/<stateReason>[\s\S]*?<\/stateReason>/, reason)
    : item.replace('</instanceState>', `</instanceState>${reason}`);
  return xml.slice(0, start) + item + xml.slice(end);
}
