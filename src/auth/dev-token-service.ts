/**
 * A registry-style token service for development and tests: NOT the production path (use your
 * registry's token service there). It answers `GET /auth/token?service=…&scope=…` with a JWT
 * signed by its own key, carrying an `x5c` certificate that Signet trusts through its root
 * certificate bundle. Users are configured as `name:password` with the repositories they may
 * use; anonymous callers get a token granting only what anonymous access allows (nothing by
 * default), which is what clients expect before they retry with credentials.
 *
 * With `oidc` it is also an OIDC issuer as CI systems run them (GitHub Actions, GitLab CI):
 * `GET /.well-known/openid-configuration` and `GET /.well-known/jwks` publish its keys, and
 * `POST /oidc/token` mints an ID token with the claims asked for (`{"claims": {...},
 * "audience": "...", "lifetimeSeconds": N}`; every claim may be overridden, `exp` and `iss`
 * included, so tests can make expired or foreign tokens); `POST /oidc/rotate` switches to a new
 * key (`{"keepOld": false}` drops the old one from the JWKS). Both POST routes answer only
 * callers on a loopback address.
 */
import { createHash, generateKeyPairSync, randomBytes, randomUUID, timingSafeEqual, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { signJws } from './jws.js';
import { selfSignedCertificate } from './self-signed-certificate.js';

export interface DevUser {
  name: string;
  password: string;
  /** Repository name prefixes this user may push and pull ('' = all); also grants catalog. */
  repositories: string[];
  /** Actions granted on those repositories. */
  actions: string[];
}

export interface DevTokenServiceOptions {
  issuer: string;
  service: string;
  users: DevUser[];
  /** Actions anonymous callers get on every repository (e.g. ['pull']); none by default. */
  anonymousActions?: string[];
  tokenLifetimeSeconds?: number;
  host?: string;
  port?: number;
  /** Also act as an OIDC issuer of ID tokens. */
  oidc?: DevOidcOptions;
}

export interface DevOidcOptions {
  /** The `iss` of its tokens; default the service's own URL (so discovery works). */
  issuer?: string;
  /** `aud` when a mint request names none; default the registry `service`. */
  audience?: string;
  /** Signing algorithm: RS256 (as GitHub Actions and GitLab) or ES256. Default RS256. */
  algorithm?: 'RS256' | 'ES256';
  /** Default lifetime of an ID token, seconds. Default 300. */
  tokenLifetimeSeconds?: number;
  /** Write the JWKS here at start and after each rotation. */
  jwksFile?: string;
}

export interface MintOptions {
  audience?: string | string[];
  lifetimeSeconds?: number;
}

/** The OIDC side of a running development token service. */
export interface DevOidcIssuer {
  issuer: string;
  /** `ISSUER/.well-known/jwks` as served. */
  jwksUrl: string;
  discoveryUrl: string;
  /** The JWKS as served now. */
  jwks(): { keys: Record<string, unknown>[] };
  /** An ID token with these claims over the defaults (iss, sub, aud, iat, nbf, exp, jti). */
  mint(claims?: Record<string, unknown>, options?: MintOptions): string;
  /** Sign with a new key from now on; the old key stays in the JWKS unless keepOld is false. Returns the new kid. */
  rotate(options?: { keepOld?: boolean }): string;
}

export interface RunningTokenService {
  url: string;
  realm: string;
  /** PEM of the certificate tokens are signed under: Signet's root certificate bundle. */
  certificatePem: string;
  /** Present in OIDC mode. */
  oidc?: DevOidcIssuer;
  close(): Promise<void>;
}

/**
 * Parse `name:password[:actions[:prefix,…]]`, e.g. `ci:secret:pull,push:localhost:5000/team/`.
 * Prefixes come last because registry names contain ':' (ports). Defaults: all actions, all
 * repositories.
 */
export function parseDevUser(spec: string): DevUser {
  const [name, password, actions, ...rest] = spec.split(':');
  const prefixes = rest.join(':');
  if (!name || !password) throw new Error(`user must be name:password[:actions[:prefixes]], got ${JSON.stringify(spec)}`);
  if (actions && !/^(\*|pull|push)(,(\*|pull|push))*$/.test(actions))
    throw new Error(`actions must be pull, push or * (comma-separated), got ${JSON.stringify(actions)}`);
  return {
    name,
    password,
    repositories: prefixes ? prefixes.split(',') : [''],
    actions: actions ? actions.split(',') : ['*'],
  };
}

interface RequestedScope {
  type: string;
  name: string;
  actions: string[];
}

/** `repository:<name>:<actions>`; names may contain ':' (registry ports), actions may not. */
function parseScope(scope: string): RequestedScope | null {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return null;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function grant(user: DevUser | null, anonymous: string[], scope: RequestedScope): string[] {
  if (scope.type === 'registry' && scope.name === 'catalog') return user ? scope.actions : [];
  if (scope.type !== 'repository') return [];
  const allowed = user && user.repositories.some((p) => scope.name.startsWith(p)) ? user.actions : anonymous;
  if (allowed.includes('*')) return scope.actions;
  return scope.actions.filter((a) => allowed.includes(a));
}

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

/** RFC 7638 thumbprint: sha256 over the required members in lexicographic order. */
function thumbprint(jwk: Record<string, unknown>): string {
  const members = jwk['kty'] === 'RSA' ? ['e', 'kty', 'n'] : ['crv', 'kty', 'x', 'y'];
  const canonical = JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])));
  return createHash('sha256').update(canonical).digest('base64url');
}

function newSigningKey(alg: 'RS256' | 'ES256'): SigningKey {
  const { privateKey, publicKey } = alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const exported = publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  const kid = thumbprint(exported);
  return { kid, privateKey, jwk: { ...exported, kid, use: 'sig', alg } };
}

function devOidcIssuer(options: DevOidcOptions, baseUrl: string, defaultAudience: string): DevOidcIssuer {
  const alg = options.algorithm ?? 'RS256';
  const issuer = options.issuer ?? baseUrl;
  const lifetime = options.tokenLifetimeSeconds ?? 300;
  let keys: SigningKey[] = [newSigningKey(alg)];
  const jwks = () => ({ keys: keys.map((k) => ({ ...k.jwk })) });
  const publish = () => {
    if (options.jwksFile) writeFileSync(options.jwksFile, JSON.stringify(jwks(), null, 2) + '\n');
  };
  publish();
  return {
    issuer,
    jwksUrl: `${baseUrl}/.well-known/jwks`,
    discoveryUrl: `${baseUrl}/.well-known/openid-configuration`,
    jwks,
    mint(claims = {}, mint = {}) {
      const now = Math.floor(Date.now() / 1000);
      const key = keys[keys.length - 1]!;
      const payload = {
        iss: issuer,
        sub: 'dev-pipeline',
        aud: mint.audience ?? options.audience ?? defaultAudience,
        iat: now,
        nbf: now - 1,
        exp: now + (mint.lifetimeSeconds ?? lifetime),
        jti: randomUUID(),
        ...claims,
      };
      return signJws({ alg, typ: 'JWT', kid: key.kid }, payload, key.privateKey);
    },
    rotate({ keepOld = true } = {}) {
      const next = newSigningKey(alg);
      keys = keepOld ? [...keys, next] : [next];
      publish();
      return next.kid;
    },
  };
}

function isLoopbackAddress(address: string | undefined): boolean {
  return !!address && (address === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(address));
}

const MAX_MINT_BODY = 64 * 1024;

function readJsonBody(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Past the limit the rest is read and dropped, so that the caller still gets an answer.
      if (size <= MAX_MINT_BODY) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_MINT_BODY) return reject(new Error(`body larger than ${MAX_MINT_BODY} bytes`));
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(text.trim() === '' ? {} : JSON.parse(text));
      } catch {
        reject(new Error('body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

export async function startDevTokenService(options: DevTokenServiceOptions): Promise<RunningTokenService> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const certificatePem = selfSignedCertificate(privateKey, publicKey, { commonName: `${options.issuer} token signer` });
  const certDer = Buffer.from(certificatePem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const lifetime = options.tokenLifetimeSeconds ?? 300;

  const issue = (key: KeyObject, subject: string, access: RequestedScope[]) => {
    const now = Math.floor(Date.now() / 1000);
    return signJws(
      { alg: 'ES256', typ: 'JWT', x5c: [certDer.toString('base64')] },
      { iss: options.issuer, sub: subject, aud: options.service, exp: now + lifetime, nbf: now - 1, iat: now, jti: randomBytes(12).toString('hex'), access },
      key,
    );
  };

  let oidc: DevOidcIssuer | undefined;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token');
    const send = (status: number, body: object) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (oidc && (url.pathname.startsWith('/.well-known/') || url.pathname.startsWith('/oidc/'))) {
      return void serveOidc(oidc, req, url.pathname, send).catch(() => {
        if (!res.headersSent) send(500, { errors: [{ code: 'UNKNOWN', message: 'the token could not be made' }] });
      });
    }
    if (req.method !== 'GET' || url.pathname !== '/auth/token') return send(404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
    let user: DevUser | null = null;
    const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      const [name, password] = [decoded.slice(0, i), decoded.slice(i + 1)];
      user = options.users.find((u) => u.name === name && safeEqual(u.password, password)) ?? null;
      if (!user) {
        res.setHeader('WWW-Authenticate', 'Basic realm="signet-dev-token-service"');
        return send(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] });
      }
    }
    if (url.searchParams.get('service') !== options.service) return send(400, { errors: [{ code: 'INVALID_SERVICE', message: `unknown service` }] });
    const access: RequestedScope[] = [];
    for (const raw of url.searchParams.getAll('scope').flatMap((s) => s.split(' '))) {
      const scope = parseScope(raw);
      if (!scope) continue;
      const actions = grant(user, options.anonymousActions ?? [], scope);
      if (actions.length > 0) access.push({ ...scope, actions });
    }
    const token = issue(privateKey, user?.name ?? '', access);
    send(200, { token, access_token: token, expires_in: lifetime, issued_at: new Date().toISOString() });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (options.oidc) oidc = devOidcIssuer(options.oidc, url, options.service);
  return {
    url,
    realm: `${url}/auth/token`,
    certificatePem,
    ...(oidc ? { oidc } : {}),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function serveOidc(oidc: DevOidcIssuer, req: http.IncomingMessage, pathname: string, send: (status: number, body: object) => void): Promise<void> {
  const notFound = () => send(404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
  if (req.method === 'GET' && pathname === '/.well-known/openid-configuration') {
    return send(200, {
      issuer: oidc.issuer,
      jwks_uri: oidc.jwksUrl,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [...new Set(oidc.jwks().keys.map((k) => String(k['alg'])))],
      claims_supported: [
        'sub',
        'aud',
        'exp',
        'iat',
        'iss',
        'jti',
        'nbf',
        'ref',
        'repository',
        'repository_owner',
        'workflow',
        'job_workflow_ref',
        'environment',
      ],
    });
  }
  if (req.method === 'GET' && pathname === '/.well-known/jwks') return send(200, oidc.jwks());
  if (req.method !== 'POST' || (pathname !== '/oidc/token' && pathname !== '/oidc/rotate')) return notFound();
  // Minting is for tests on this machine only.
  if (!isLoopbackAddress(req.socket.remoteAddress)) return send(403, { errors: [{ code: 'DENIED', message: 'tokens are minted for loopback callers only' }] });
  let body: unknown;
  try {
    body = await readJsonBody(req);
  } catch (e) {
    return send(400, { errors: [{ code: 'BAD_REQUEST', message: (e as Error).message }] });
  }
  const b = (body && typeof body === 'object' && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
  if (pathname === '/oidc/rotate') return send(200, { kid: oidc.rotate({ keepOld: b['keepOld'] !== false }) });
  const claims = b['claims'] && typeof b['claims'] === 'object' && !Array.isArray(b['claims']) ? (b['claims'] as Record<string, unknown>) : {};
  const audience = typeof b['audience'] === 'string' || Array.isArray(b['audience']) ? (b['audience'] as string | string[]) : undefined;
  const lifetime = typeof b['lifetimeSeconds'] === 'number' ? b['lifetimeSeconds'] : undefined;
  const token = oidc.mint(claims, { ...(audience ? { audience } : {}), ...(lifetime !== undefined ? { lifetimeSeconds: lifetime } : {}) });
  // `value` is what GitHub Actions' token request answers; `token` what the rest of this service does.
  send(200, { token, value: token });
}
