/**
 * A registry-style token service for development and tests: NOT the production path (use your
 * registry's token service there). It answers `GET /auth/token?service=…&scope=…` with a JWT
 * signed by its own key, carrying an `x5c` certificate that Signet trusts through its root
 * certificate bundle. Users are configured as `name:password` with the repositories they may
 * use; anonymous callers get a token granting only what anonymous access allows (nothing by
 * default), which is what clients expect before they retry with credentials.
 */
import { generateKeyPairSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
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
}

export interface RunningTokenService {
  url: string;
  realm: string;
  /** PEM of the certificate tokens are signed under: Signet's root certificate bundle. */
  certificatePem: string;
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

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token');
    const send = (status: number, body: object) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
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
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`;
  return {
    url,
    realm: `${url}/auth/token`,
    certificatePem,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
