/**
 * Registry token authentication (the distribution "token" spec, docker's `registry/auth`): read a
 * 401's `WWW-Authenticate` challenge, and trade credentials (or nothing: anonymous) at its realm
 * for a bearer token for a scope. Used by the registry client and by the trust-server client,
 * since a Notary server behind a registry's token service asks for the registry's credentials.
 */
import { HttpClient, TransportError, type HttpResponse } from '../net/http-client.js';
import type { CredentialSource, RegistryCredentials } from './docker-config.js';
import { RegistryError } from './errors.js';

export const MIN_TOKEN_LIFETIME_S = 60;
const TOKEN_MARGIN_MS = 5_000;

export interface Challenge {
  scheme: 'bearer' | 'basic';
  realm?: string;
  service?: string;
}

/** One line of what a registry said about a failure: the first `errors[]` entry, else nothing. */
export function registrySays(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] };
    const first = parsed.errors?.[0];
    if (!first) return '';
    const text = [first.code, first.message]
      .filter((v) => typeof v === 'string' && v)
      .join(': ')
      .replace(/\s+/g, ' ');
    return text ? ` (${text.slice(0, 200)})` : '';
  } catch {
    return '';
  }
}

/** `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'bearer' && scheme !== 'basic') return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  const rest = m[2]!;
  re.lastIndex = 0;
  let p: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (p = re.exec(rest))) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  return {
    scheme,
    ...(params['realm'] !== undefined ? { realm: params['realm'] } : {}),
    ...(params['service'] !== undefined ? { service: params['service'] } : {}),
  };
}

/**
 * A bearer token for `scope` from the challenge's realm, with basic credentials, an identity
 * token (OAuth refresh grant), or anonymously. Throws RegistryError naming `registry`, or the
 * client's TransportError when the realm cannot be reached.
 */
export async function fetchToken(
  client: HttpClient,
  challenge: Challenge,
  scope: string,
  creds: RegistryCredentials | undefined,
  registry: string,
): Promise<{ token: string; lifetimeS: number }> {
  let realm: URL;
  try {
    realm = new URL(challenge.realm ?? '');
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw new Error('scheme');
  } catch {
    throw new RegistryError('BAD_RESPONSE', registry, `the Bearer challenge has no usable realm URL`);
  }
  const service = challenge.service;
  const where = `token service ${realm.origin}${realm.pathname}`;
  let res: HttpResponse;
  if (creds?.identityToken) {
    const params = new URLSearchParams();
    params.set('grant_type', 'refresh_token');
    params.set('refresh_token', creds.identityToken);
    params.set('client_id', 'signet');
    if (service) params.set('service', service);
    params.set('scope', scope);
    res = await client.request({
      method: 'POST',
      url: realm,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: params.toString(),
      maxBytes: 1024 * 1024,
    });
  } else {
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    url.searchParams.set('scope', scope);
    const headers: Record<string, string> =
      creds?.username !== undefined && creds.password !== undefined
        ? { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` }
        : {};
    res = await client.request({ url, headers, maxBytes: 1024 * 1024 });
  }
  const anonymous = !creds?.identityToken && (creds?.username === undefined || creds.password === undefined);
  if (res.status === 401 || res.status === 403) {
    throw new RegistryError(
      'UNAUTHORIZED',
      registry,
      `${where} refused ${anonymous ? 'anonymous access' : 'the credentials'} for ${scope}${registrySays(res.body)}`,
      {
        status: res.status,
      },
    );
  }
  if (res.status !== 200)
    throw new RegistryError('BAD_RESPONSE', registry, `${where} answered HTTP ${res.status}${registrySays(res.body)}`, { status: res.status });
  let answer: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    answer = JSON.parse(res.body.toString('utf8')) as typeof answer;
  } catch {
    throw new RegistryError('BAD_RESPONSE', registry, `${where} did not answer JSON`);
  }
  const token = typeof answer?.token === 'string' && answer.token ? answer.token : typeof answer?.access_token === 'string' ? answer.access_token : '';
  if (!token || /[\r\n]/.test(token)) throw new RegistryError('BAD_RESPONSE', registry, `${where} answered without a token`);
  const lifetimeS = typeof answer.expires_in === 'number' && Number.isFinite(answer.expires_in) ? answer.expires_in : MIN_TOKEN_LIFETIME_S;
  return { token, lifetimeS };
}

export interface RepositoryAuthenticatorOptions {
  /** The client for the token realm (its CA is the trust server's). */
  http: HttpClient;
  credentials: CredentialSource;
  /** The registry whose credentials are presented (docker uses the image's registry). */
  registry: string;
  /** The repository the scope names (the GUN for a trust server). */
  repository: string;
}

/**
 * An Authorization header for a 401 challenge on `repository`: `pull` or `pull,push` access,
 * tokens cached per scope for their lifetime. Basic challenges get the credentials as they are.
 * Returns null when there is nothing to present.
 */
export function repositoryAuthenticator(options: RepositoryAuthenticatorOptions) {
  const cache = new Map<string, { header: string; expiresAt: number }>();
  return async (header: string, request: { scope: 'pull' | 'push' }): Promise<string | null> => {
    const challenge = parseChallenge(header);
    if (!challenge) return null;
    const creds = await options.credentials.get(options.registry);
    if (challenge.scheme === 'basic') {
      if (creds?.username === undefined || creds.password === undefined) return null;
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    const scope = `repository:${options.repository}:${request.scope === 'push' ? 'pull,push' : 'pull'}`;
    const key = `${challenge.realm} ${challenge.service ?? ''} ${scope}`;
    const cached = cache.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached.header;
    let answer: { token: string; lifetimeS: number };
    try {
      answer = await fetchToken(options.http, challenge, scope, creds, options.registry);
    } catch (e) {
      if (e instanceof TransportError)
        throw new RegistryError(e.code === 'TLS' || e.code === 'TIMEOUT' ? e.code : 'UNREACHABLE', options.registry, e.message, { cause: e });
      throw e;
    }
    const value = `Bearer ${answer.token}`;
    cache.set(key, { header: value, expiresAt: Date.now() + Math.max(answer.lifetimeS, MIN_TOKEN_LIFETIME_S) * 1000 - TOKEN_MARGIN_MS });
    return value;
  };
}
