// GitHub App authentication as GitHub does it, shared by the nock fake and the lab stand-in:
// the App signs a JWT (RS256, iss = the App id, exp at most 10 minutes ahead) with its private
// key; GitHub exchanges it for an installation token that expires after one hour.
// https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
// https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app
import { createPublicKey, generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';

export interface TestApp {
  appId: number;
  /** PKCS#1 PEM, as GitHub's App settings page hands it out. Generated per test run, never committed. */
  privateKey: string;
  installationId: number;
  /** `repos/{owner}/{repo}` or `orgs/{org}` the installation covers. */
  scopes: string[];
}

/** A fresh 2048-bit RSA key pair per call: tests never commit private keys. */
export function makeTestApp(o: { appId?: number; installationId?: number; scopes?: string[] } = {}): TestApp {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return {
    appId: o.appId ?? 4242,
    privateKey,
    installationId: o.installationId ?? 777,
    scopes: o.scopes ?? ['repos/acme/widgets', 'orgs/acme'],
  };
}

export type AppAuthResult = { ok: true; app: TestApp } | { ok: false; status: 401; message: string };

const b64url = (s: string) => Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');

export const INSTALLATION_TOKEN_SECONDS = 3600;
const MAX_JWT_SECONDS = 600;

export class AppRegistry {
  private readonly apps = new Map<string, { app: TestApp; publicKey: KeyObject }>();
  /** Installation tokens issued: token → expiry (ms epoch). */
  readonly tokens = new Map<string, { expiresAt: number; installationId: number }>();
  now: () => number = Date.now;

  register(app: TestApp): void {
    this.apps.set(String(app.appId), { app, publicKey: createPublicKey(app.privateKey) });
  }

  clear(): void {
    this.apps.clear();
    this.tokens.clear();
  }

  /** Checks a `Bearer <jwt>` the way GitHub documents: RS256, signature, iss, iat/exp, at most 10 minutes. */
  verifyJwt(authorization: string | undefined): AppAuthResult {
    const jwt = /^bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    const fail = (message: string): AppAuthResult => ({ ok: false, status: 401, message });
    if (!jwt) return fail('A JSON web token could not be decoded');
    const parts = jwt.split('.');
    if (parts.length !== 3) return fail('A JSON web token could not be decoded');
    const [h, p, sig] = parts as [string, string, string];
    let header: { alg?: string };
    let payload: { iss?: string | number; iat?: number; exp?: number };
    try {
      header = JSON.parse(b64url(h).toString('utf8')) as typeof header;
      payload = JSON.parse(b64url(p).toString('utf8')) as typeof payload;
    } catch {
      return fail('A JSON web token could not be decoded');
    }
    if (header.alg !== 'RS256') return fail(`'alg' must be RS256, not ${String(header.alg)}`);
    const entry = this.apps.get(String(payload.iss));
    if (!entry) return fail(`Integration not found: no App with id ${String(payload.iss)} ('iss' claim)`);
    if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), entry.publicKey, b64url(sig)))
      return fail('A JSON web token could not be decoded: bad signature');
    const now = Math.floor(this.now() / 1000);
    if (typeof payload.exp !== 'number' || typeof payload.iat !== 'number') return fail("'exp' and 'iat' are required");
    if (payload.exp <= now)
      return fail(
        "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
      );
    if (payload.exp > now + MAX_JWT_SECONDS + 5 || payload.exp - payload.iat > MAX_JWT_SECONDS + 60)
      return fail("'Expiration time' claim ('exp') is too far in the future (at most 10 minutes)");
    if (payload.iat > now + 60)
      return fail("'Issued at' claim ('iat') must be a numeric value representing the time the JWT was issued");
    return { ok: true, app: entry.app };
  }

  /** The installation of `app` that covers a scope, if any. */
  installationFor(app: TestApp, scope: string): number | undefined {
    return app.scopes.includes(scope) ? app.installationId : undefined;
  }

  /** A new installation token, valid one hour. */
  issueToken(app: TestApp, installationId: number): { token: string; expiresAt: string } | undefined {
    if (installationId !== app.installationId) return undefined;
    const token = `ghs_${randomBytes(18).toString('base64url')}`;
    const expiresAt = this.now() + INSTALLATION_TOKEN_SECONDS * 1000;
    this.tokens.set(token, { expiresAt, installationId });
    return { token, expiresAt: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z') };
  }

  /** true for an installation token that was issued and has not expired. */
  tokenValid(token: string): boolean {
    const t = this.tokens.get(token);
    return t !== undefined && t.expiresAt > this.now();
  }

  /** What GET .../installation answers, in the shape of GitHub's `installation` schema. */
  static installationBody(
    app: TestApp,
    baseUrl: string,
    owner: string,
    ownerType: 'User' | 'Organization',
  ): Record<string, unknown> {
    const stamp = '2026-01-01T00:00:00Z';
    return {
      id: app.installationId,
      account: {
        login: owner,
        id: 1,
        node_id: 'MDQ6VXNlcjE=',
        avatar_url: 'https://avatars.githubusercontent.com/u/1',
        gravatar_id: '',
        url: `${baseUrl}/users/${owner}`,
        html_url: `https://github.com/${owner}`,
        followers_url: `${baseUrl}/users/${owner}/followers`,
        following_url: `${baseUrl}/users/${owner}/following{/other_user}`,
        gists_url: `${baseUrl}/users/${owner}/gists{/gist_id}`,
        starred_url: `${baseUrl}/users/${owner}/starred{/owner}{/repo}`,
        subscriptions_url: `${baseUrl}/users/${owner}/subscriptions`,
        organizations_url: `${baseUrl}/users/${owner}/orgs`,
        repos_url: `${baseUrl}/users/${owner}/repos`,
        events_url: `${baseUrl}/users/${owner}/events{/privacy}`,
        received_events_url: `${baseUrl}/users/${owner}/received_events`,
        type: ownerType,
        site_admin: false,
      },
      repository_selection: 'selected',
      access_tokens_url: `${baseUrl}/app/installations/${app.installationId}/access_tokens`,
      repositories_url: `${baseUrl}/installation/repositories`,
      html_url: `https://github.com/settings/installations/${app.installationId}`,
      app_id: app.appId,
      app_slug: 'spot-runner-test',
      target_id: 1,
      target_type: ownerType,
      permissions: { administration: 'write', organization_self_hosted_runners: 'write' },
      events: [],
      created_at: stamp,
      updated_at: stamp,
      single_file_name: null,
      suspended_by: null,
      suspended_at: null,
    };
  }
}
