// Checks requests and responses against GitHub's published OpenAPI description
// (@octokit/openapi), so the lab's GitHub stand-in cannot drift from the real API.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import * as ajvFormats from 'ajv-formats';

type Json = unknown;
type Schema = Record<string, unknown>;

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: Schema;
}

/** One operation of the description, reduced to what validation needs. */
export interface Operation {
  method: string;
  path: string;
  operationId: string;
  parameters: Parameter[];
  requestBody?: { required: boolean; schema?: Schema };
  /** status code (or "default", "4XX") → JSON schema of the body, null when the response has no body. */
  responses: Record<string, Schema | null>;
}

export interface RouteMatch {
  op: Operation;
  params: Record<string, string>;
}

// Everything the runner stand-in could be asked about. Extracting only these keeps the
// per-process cost to a small JSON file instead of the 70 MB description.
// Plus the GitHub App calls an action authenticating as an App makes: find the installation,
// mint its token.
const KEEP =
  /^\/((repos\/\{owner\}\/\{repo\}|orgs\/\{org\})\/(actions\/runner|installation$)|app\/installations\/\{installation_id\}\/access_tokens$|repos\/\{owner\}\/\{repo\}\/actions\/runs\/\{run_id\}\/cancel$)/;

// Statuses GitHub returns on any operation although most operations do not list them:
// auth failures, rate limits, "not found", and server errors.
const GENERIC_ERROR_STATUSES = new Set(['401', '403', '404', '429', '500', '502', '503', '504']);
const GENERIC_ERROR_SCHEMA: Schema = {
  type: 'object',
  required: ['message'],
  properties: { message: { type: 'string' }, documentation_url: { type: 'string' }, status: { type: 'string' } },
};

const requireCjs = createRequire(import.meta.url);

function specFile(): { file: string; version: string } {
  const pkgJson = requireCjs.resolve('@octokit/openapi/package.json');
  const version = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string }).version;
  return { file: join(dirname(pkgJson), 'generated', 'api.github.com.deref.json'), version };
}

function cacheFile(version: string, size: number): string {
  const pkgJson = requireCjs.resolve('@octokit/openapi/package.json');
  // node_modules/@octokit/openapi/package.json → node_modules/.cache
  const nodeModules = dirname(dirname(dirname(pkgJson)));
  // KEEP is part of the key: widening it must not reuse a cache extracted with the old one.
  const keep = createHash('sha256').update(KEEP.source).digest('hex').slice(0, 8);
  return join(nodeModules, '.cache', 'spot-runner-lab', `runner-ops-${version}-${size}-${keep}.json`);
}

function extract(spec: { paths: Record<string, Record<string, Json>> }): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    if (!KEEP.test(path)) continue;
    for (const [method, raw] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const o = raw as {
        operationId: string;
        parameters?: Parameter[];
        requestBody?: { required?: boolean; content?: Record<string, { schema?: Schema }> };
        responses: Record<string, { content?: Record<string, { schema?: Schema }> }>;
      };
      const responses: Record<string, Schema | null> = {};
      for (const [status, r] of Object.entries(o.responses)) {
        const schema = r.content?.['application/json']?.schema;
        responses[status] = schema ? asSchema(schema) : null;
      }
      const bodySchema = o.requestBody?.content?.['application/json']?.schema;
      ops.push({
        method: method.toUpperCase(),
        path,
        operationId: o.operationId,
        parameters: (o.parameters ?? []).map((p) => ({
          name: p.name,
          in: p.in,
          required: p.required,
          schema: p.schema ? asSchema(p.schema) : undefined,
        })),
        requestBody: o.requestBody
          ? { required: o.requestBody.required === true, schema: bodySchema ? asSchema(bodySchema) : undefined }
          : undefined,
        responses,
      });
    }
  }
  return ops;
}

/**
 * OpenAPI 3.0 schema → JSON Schema that ajv understands: `nullable` becomes a null type,
 * and documentation-only keys (`example`, `description`, `x-*`, ...) are dropped.
 */
export function toJsonSchema(node: Json): Json {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (!node || typeof node !== 'object') return node;
  const out: Schema = {};
  for (const [k, v] of Object.entries(node as Schema)) {
    if (
      k.startsWith('x-') ||
      [
        'example',
        'examples',
        'description',
        'externalDocs',
        'discriminator',
        'xml',
        'nullable',
        'deprecated',
        'readOnly',
        'writeOnly',
        'title',
      ].includes(k)
    )
      continue;
    // properties/patternProperties hold names, not keywords: keep every key there.
    if (k === 'properties' || k === 'patternProperties') {
      out[k] = Object.fromEntries(Object.entries(v as Schema).map(([name, s]) => [name, toJsonSchema(s)]));
    } else {
      out[k] = toJsonSchema(v);
    }
  }
  if ((node as Schema).nullable === true) {
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    else if (Array.isArray(out.enum)) out.enum = [...(out.enum as unknown[]), null];
    else if (out.type === undefined) return { anyOf: [out, { type: 'null' }] };
  }
  return out;
}

const asSchema = (s: Schema): Schema => toJsonSchema(s) as Schema;

let operations: Operation[] | undefined;
/** The runner operations of the description: read once per process, from a cache file after the first run. */
export function loadOperations(): Operation[] {
  if (operations) return operations;
  const { file, version } = specFile();
  const cache = cacheFile(version, statSync(file).size);
  if (existsSync(cache)) {
    operations = JSON.parse(readFileSync(cache, 'utf8')) as Operation[];
  } else {
    operations = extract(JSON.parse(readFileSync(file, 'utf8')) as { paths: Record<string, Record<string, Json>> });
    try {
      mkdirSync(dirname(cache), { recursive: true });
      // write-then-rename: parallel jest workers may race to create the cache
      const tmp = `${cache}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(operations));
      renameSync(tmp, cache);
    } catch {
      // a read-only node_modules only costs speed
    }
  }
  return operations;
}

// ajv-formats is CJS with a default export; under NodeNext its callable sits on .default.
type FormatsPlugin = (ajv: Ajv) => Ajv;
const addFormats = ((ajvFormats as unknown as { default?: FormatsPlugin }).default ??
  ajvFormats) as unknown as FormatsPlugin;

function newAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true, coerceTypes, logger: false });
  addFormats(ajv);
  // GitHub-specific formats with no standard meaning
  for (const f of ['timestamp', 'repo.nwo']) ajv.addFormat(f, true);
  return ajv;
}

function fmt(v: ValidateFunction, where: string): string[] {
  return (v.errors ?? []).map(
    (e) =>
      `${where}${e.instancePath || ''} ${e.message ?? 'is invalid'}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}${e.params && 'allowedValues' in e.params ? ` ${JSON.stringify(e.params.allowedValues)}` : ''}`,
  );
}

/** Validates requests and responses of the runner operations. Compiled validators are cached per operation. */
export class OpenApiValidator {
  private readonly ops = loadOperations();
  private readonly bodyAjv = newAjv(false);
  // path and query values arrive as strings: let ajv coerce "5" to 5 when the schema says integer
  private readonly paramAjv = newAjv(true);
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly routes = this.ops.map((op) => ({
    op,
    names: [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string),
    re: new RegExp(`^${op.path.replace(/\{\w+\}/g, '([^/]+)')}$`),
  }));

  /** The operation for a method and URL path, with its path parameters. Literal segments win over templates. */
  match(method: string, pathname: string): RouteMatch | undefined {
    let best: { m: RouteMatch; templated: number } | undefined;
    for (const r of this.routes) {
      if (r.op.method !== method.toUpperCase()) continue;
      const m = r.re.exec(pathname);
      if (!m) continue;
      const params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1] as string)]));
      if (!best || r.names.length < best.templated) best = { m: { op: r.op, params }, templated: r.names.length };
    }
    return best?.m;
  }

  /** Whether a path exists in the description at all (for any method). */
  knowsPath(pathname: string): boolean {
    return this.routes.some((r) => r.re.test(pathname));
  }

  operation(operationId: string): Operation {
    const op = this.ops.find((o) => o.operationId === operationId);
    if (!op) throw new Error(`operation ${operationId} is not in @octokit/openapi`);
    return op;
  }

  private validator(key: string, ajv: Ajv, schema: Schema): ValidateFunction {
    let v = this.compiled.get(key);
    if (!v) {
      v = ajv.compile(schema);
      this.compiled.set(key, v);
    }
    return v;
  }

  /** Problems with a request, as readable strings; empty when it conforms. */
  validateRequest(
    op: Operation,
    params: Record<string, string>,
    query: Record<string, string>,
    body: Json | undefined,
  ): string[] {
    const errors: string[] = [];
    for (const where of ['path', 'query'] as const) {
      const defs = op.parameters.filter((p) => p.in === where);
      const schema: Schema = {
        type: 'object',
        properties: Object.fromEntries(defs.map((p) => [p.name, p.schema ?? {}])),
        required: defs.filter((p) => p.required).map((p) => p.name),
        // a query parameter the description does not know is client drift (GitHub would silently ignore it)
        additionalProperties: false,
      };
      const v = this.validator(`${op.operationId} ${where}`, this.paramAjv, schema);
      if (!v({ ...(where === 'path' ? params : query) })) errors.push(...fmt(v, `${where}`));
    }
    if (op.requestBody) {
      if (body === undefined) {
        if (op.requestBody.required) errors.push('body is required');
      } else if (op.requestBody.schema) {
        const v = this.validator(`${op.operationId} body`, this.bodyAjv, op.requestBody.schema);
        if (!v(body)) errors.push(...fmt(v, 'body'));
      }
    } else if (body !== undefined) {
      errors.push('body is not allowed for this operation');
    }
    return errors;
  }

  /** Problems with a response, as readable strings; empty when it conforms. */
  validateResponse(op: Operation, status: number, body: Json | undefined): string[] {
    const code = String(status);
    let schema: Schema | null | undefined;
    if (code in op.responses) schema = op.responses[code];
    else if (`${code[0]}XX` in op.responses) schema = op.responses[`${code[0]}XX`];
    else if ('default' in op.responses) schema = op.responses.default;
    else if (GENERIC_ERROR_STATUSES.has(code)) schema = GENERIC_ERROR_SCHEMA;
    else
      return [
        `status ${status} is not a documented response of ${op.operationId} (documented: ${Object.keys(op.responses).join(', ')})`,
      ];
    if (schema === null) return body === undefined ? [] : [`status ${status} of ${op.operationId} must have no body`];
    if (body === undefined) return [`status ${status} of ${op.operationId} must have a JSON body`];
    const v = this.validator(`${op.operationId} ${code} response`, this.bodyAjv, schema ?? {});
    return v(body) ? [] : fmt(v, `response ${status}`);
  }
}

let shared: OpenApiValidator | undefined;
/** One validator per process, so every stand-in reuses the same compiled schemas. */
export function sharedValidator(): OpenApiValidator {
  shared ??= new OpenApiValidator();
  return shared;
}
