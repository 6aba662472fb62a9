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
import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type AwsService = 'ec2' | 'ssm' | 'other';
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
  fault?: AwsFault['kind'] | 'replay' | 'idempotent-mismatch';
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
  private capacity: Required<Pick<Capacity, 'spotAvailable' | 'onDemandAvailable'>> & { noSpotTypes: Set<string> } = AwsFaultProxy.noLimits();
  private tokens = new Map<string, Promise<{ body: string; reply: Forwarded }>>();
  private listeners: Array<(f: FleetLaunch) => void> = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly target: string,
  ) {}

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

  /** Calls per action, optionally of one source. */
  counts(source?: CallSource): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.calls) if (source === undefined || c.source === source) out[c.action] = (out[c.action] ?? 0) + 1;
    return out;
  }

  /** Faults, counts, fleets, tokens and capacity back to a clean state. */
  reset(): void {
    this.calls.length = 0;
    this.fleets.length = 0;
    this.clearFaults();
    this.tokens.clear();
    this.capacity = AwsFaultProxy.noLimits();
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ---- HTTP -----------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = Date.now();
    const raw = await readBody(req);
    const body = raw.toString('utf8');
    const { service, action, form } = classify(req, body);
    const ua = String(req.headers['user-agent'] ?? '');
    const source: CallSource = /spot-runner-lab-shim|spot-runner-bootstrap/.test(ua) ? 'instance' : /aws-sdk-js/i.test(ua) ? 'action' : 'other';
    const record = (status: number, fault?: CallRecord['fault']) => this.calls.push({ service, action, source, status, fault, at: t0, ms: Date.now() - t0 });

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

    let reply: Forwarded;
    let mark: CallRecord['fault'];
    if (service === 'ec2' && action === 'CreateFleet' && form) {
      ({ reply, mark } = await this.createFleet(req, body, form));
    } else {
      reply = await this.forward(req, raw);
    }
    if (loseResponse) {
      const lost = faultReply(service, action, { kind: 'server-error', status: 500 });
      send(res, lost);
      record(lost.status, 'lose-response');
      return;
    }
    send(res, reply);
    record(reply.status, mark);
  }

  /** The first rule that matches and has faults left; a rule's first `after` matches pass untouched. */
  private pickRule(action: string, source: CallSource): Rule | undefined {
    for (const r of this.rules) {
      if (r.times <= 0 || (r.action !== '*' && r.action !== action) || (r.source !== undefined && r.source !== source)) continue;
      if (r.after > 0) {
        r.after--;
        continue;
      }
      return r;
    }
    return undefined;
  }

  private async createFleet(req: IncomingMessage, body: string, form: URLSearchParams): Promise<{ reply: Forwarded; mark?: CallRecord['fault'] }> {
    const token = form.get('ClientToken') ?? '';
    // Strip nothing but the token itself when comparing: the SDK re-signs a retry, the body is the same.
    if (token) {
      const prior = this.tokens.get(token);
      if (prior) {
        const first = await prior.catch(() => undefined);
        if (first && first.reply.status === 200) {
          if (first.body !== body) {
            return { reply: ec2Error(400, 'IdempotentParameterMismatch', `Client token ${token} was used with a different request.`), mark: 'idempotent-mismatch' };
          }
          return { reply: first.reply, mark: 'replay' };
        }
      }
    }
    const work = this.launchFleet(req, body, form, token);
    if (token) this.tokens.set(token, work.then((reply) => ({ body, reply })));
    const reply = await work;
    // A failed call may be retried with the same token and must then really launch.
    if (token && reply.status !== 200) this.tokens.delete(token);
    return { reply };
  }

  private async launchFleet(req: IncomingMessage, body: string, form: URLSearchParams, token: string): Promise<Forwarded> {
    const market = form.get('TargetCapacitySpecification.DefaultTargetCapacityType') ?? 'on-demand';
    const total = Number(form.get('TargetCapacitySpecification.TotalTargetCapacity') ?? '0');
    const overrides = parseOverrides(form);
    const errors: FleetErrorItem[] = [];
    let usable = overrides;
    if (market === 'spot' && this.capacity.noSpotTypes.size > 0) {
      usable = overrides.filter((o) => !this.capacity.noSpotTypes.has(o.fields.InstanceType ?? ''));
      for (const o of overrides.filter((x) => !usable.includes(x))) errors.push({ override: o, lifecycle: market, code: 'InsufficientInstanceCapacity', message: `There is no Spot capacity available that matches your request (${o.fields.InstanceType ?? '?'}).` });
    }
    const room = market === 'spot' ? this.capacity.spotAvailable : this.capacity.onDemandAvailable;
    const granted = usable.length === 0 ? 0 : Math.min(total, room);
    if (granted < total && usable.length > 0) {
      for (const o of usable) errors.push({ override: o, lifecycle: market, code: 'InsufficientInstanceCapacity', message: `We currently do not have sufficient ${o.fields.InstanceType ?? ''} capacity in the Availability Zone you requested.` });
    }
    const ltId = form.get('LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId') ?? '';
    let reply: Forwarded;
    if (granted === 0) {
      reply = { status: 200, headers: { 'content-type': 'text/xml' }, body: Buffer.from(fleetXml(`fleet-${randomUUID()}`, '', errors, ltId)) };
    } else {
      const rewritten = errors.length > 0 ? rewriteFleetForm(form, usable, granted, market) : body;
      reply = await this.forward(req, Buffer.from(rewritten));
      if (reply.status === 200 && errors.length > 0) {
        reply = { ...reply, body: Buffer.from(addErrorSet(reply.body.toString('utf8'), errors, ltId)) };
      }
    }
    if (reply.status === 200) {
      const text = reply.body.toString('utf8');
      const ids = [...(/<fleetInstanceSet>([\s\S]*)<\/fleetInstanceSet>/.exec(text)?.[1] ?? '').matchAll(/<item>(i-[0-9a-f]+)<\/item>/g)].map((m) => m[1] ?? '');
      if (market === 'spot') this.capacity.spotAvailable -= ids.length;
      else this.capacity.onDemandAvailable -= ids.length;
      const launch: FleetLaunch = { fleetId: /<fleetId>([^<]*)<\/fleetId>/.exec(text)?.[1] ?? '', clientToken: token || undefined, market, instanceIds: ids, at: Date.now() };
      this.fleets.push(launch);
      for (const l of this.listeners) l(launch);
    }
    return reply;
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
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !['content-length', 'connection', 'transfer-encoding'].includes(k)) h[k] = Array.isArray(v) ? v.join(', ') : v;
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
    return { service: /ssm/i.test(prefix) ? 'ssm' : 'other', action };
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
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID(), 'x-amzn-errortype': type },
    body: Buffer.from(JSON.stringify({ __type: type, message })),
  };
}

function faultReply(service: AwsService, action: string, f: Exclude<AwsFault, { kind: 'latency' } | { kind: 'lose-response' }> | { kind: 'server-error'; status: number }): Forwarded {
  const json = service === 'ssm';
  switch (f.kind) {
    case 'throttle':
      return json ? jsonError(400, 'ThrottlingException', 'Rate exceeded') : ec2Error(503, 'RequestLimitExceeded', 'Request limit exceeded.');
    case 'capacity':
      return ec2Error(500, 'InsufficientInstanceCapacity', `We currently do not have sufficient capacity to serve ${action}.`);
    case 'server-error': {
      const status = f.status ?? 500;
      if (json) return jsonError(status, 'InternalServerError', 'lab: injected server error');
      return ec2Error(status, status === 503 ? 'Unavailable' : 'InternalError', 'An internal error has occurred (injected by the lab).');
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
  out.set(market === 'spot' ? 'TargetCapacitySpecification.SpotTargetCapacity' : 'TargetCapacitySpecification.OnDemandTargetCapacity', String(granted));
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
