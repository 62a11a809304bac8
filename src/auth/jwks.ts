/**
 * An OIDC issuer's signing keys (a JSON Web Key Set, RFC 7517), from a URL, from the issuer's
 * discovery document, or from a file. A URL is fetched with a timeout and a size limit, never
 * following redirects, over https (plain http only to a loopback address, as in tests); the keys
 * are kept for `cacheSeconds` and fetched again early when a token names a `kid` that is not
 * among them (an issuer rotating its key), at most once per `minRefreshSeconds`. When a fetch
 * fails the keys from the last good fetch stay in use; only an issuer whose keys were never
 * fetched is unavailable.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { OidcConfigError, OidcError } from './oidc-errors.js';

export const DEFAULT_JWKS_MAX_BYTES = 256 * 1024;
export const MAX_JWKS_KEYS = 100;

export interface JwksKey {
  kid: string | undefined;
  /** The `alg` the JWK is restricted to, if it names one. */
  alg: string | undefined;
  key: KeyObject;
}

export interface JwksFetchOptions {
  /** Largest JWKS or discovery document read, bytes. Default 256 KiB. */
  maxBytes?: number;
  /** Time for one fetch, body included. Default 5000 ms. */
  timeoutMs?: number;
  /** Keys are fetched again when older than this. Default 3600 s. */
  cacheSeconds?: number;
  /** Least time between two fetches prompted by an unknown `kid`. Default 30 s. */
  minRefreshSeconds?: number;
  /** The fetch to use (tests). */
  fetch?: typeof fetch;
}

const jwksSchema = z.looseObject({
  keys: z.array(z.looseObject({ kty: z.string(), kid: z.string().optional(), use: z.string().optional(), alg: z.string().optional() })).max(MAX_JWKS_KEYS),
});

const discoverySchema = z.looseObject({ issuer: z.string(), jwks_uri: z.string() });

const PUBLIC_MEMBERS: Record<string, string[]> = { RSA: ['kty', 'n', 'e'], EC: ['kty', 'crv', 'x', 'y'], OKP: ['kty', 'crv', 'x'] };

/** Parse a JWKS document into usable verification keys; keys that cannot be used are skipped. */
export function parseJwks(text: string): JwksKey[] {
  let parsed: z.infer<typeof jwksSchema>;
  try {
    parsed = jwksSchema.parse(JSON.parse(text));
  } catch (e) {
    throw new OidcError('OIDC_JWKS_UNAVAILABLE', 'the JWKS is not a JSON Web Key Set', undefined, { cause: e });
  }
  const keys: JwksKey[] = [];
  for (const jwk of parsed.keys) {
    if (jwk.use !== undefined && jwk.use !== 'sig') continue;
    const members = PUBLIC_MEMBERS[jwk.kty];
    if (!members) continue;
    // Only the public members: a JWKS that carries private parts is not trusted to mean them.
    const pub = Object.fromEntries(members.map((m) => [m, (jwk as Record<string, unknown>)[m]]));
    let key: KeyObject;
    try {
      key = createPublicKey({ key: pub as JsonWebKey, format: 'jwk' });
    } catch {
      continue;
    }
    if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) continue;
    keys.push({ kid: jwk.kid, alg: jwk.alg, key });
  }
  return keys;
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** A URL keys may be fetched from: https, or http to a loopback address. */
export function checkFetchUrl(text: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new OidcConfigError(`${what} ${JSON.stringify(text)} is not a URL`);
  }
  if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname))) return url;
  throw new OidcConfigError(`${what} must be an https URL (plain http only to a loopback address), got ${url.protocol}//${url.host}`);
}

/** GET `url` as text within the time and size limits; failures are OIDC_JWKS_UNAVAILABLE. */
async function fetchBounded(url: URL, options: JwksFetchOptions): Promise<string> {
  const maxBytes = options.maxBytes ?? DEFAULT_JWKS_MAX_BYTES;
  const doFetch = options.fetch ?? fetch;
  const fail = (reason: string, cause?: unknown) =>
    new OidcError('OIDC_JWKS_UNAVAILABLE', `fetching ${url.origin}${url.pathname} failed: ${reason}`, undefined, cause ? { cause } : undefined);
  let res: Response;
  try {
    res = await doFetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 5000), redirect: 'error', headers: { accept: 'application/json' } });
  } catch (e) {
    throw fail((e as Error).name === 'TimeoutError' ? 'timed out' : (e as Error).message, e);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw fail(`HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw fail(`larger than ${maxBytes} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > maxBytes) {
          await reader.cancel().catch(() => {});
          throw fail(`larger than ${maxBytes} bytes`);
        }
        chunks.push(value);
      }
    }
  } catch (e) {
    if (e instanceof OidcError) throw e;
    throw fail((e as Error).name === 'TimeoutError' ? 'timed out' : (e as Error).message, e);
  }
  return Buffer.concat(chunks).toString('utf8');
}

type Loader = () => Promise<JwksKey[]>;

/** The keys of one issuer, cached, with refresh on an unknown `kid`. */
export class JwksSource {
  private keys: JwksKey[] | null = null;
  private fetchedAt = 0;
  private inFlight: Promise<JwksKey[]> | null = null;
  private lastError: unknown = null;

  private constructor(
    private readonly load: Loader,
    private readonly options: JwksFetchOptions,
    /** Where the keys come from, for messages. */
    readonly origin: string,
  ) {}

  /** Keys fetched from a JWKS URL (`jwks_uri`). */
  static fromUrl(url: string, options: JwksFetchOptions = {}): JwksSource {
    const u = checkFetchUrl(url, 'the JWKS URL');
    return new JwksSource(async () => parseJwks(await fetchBounded(u, options)), options, u.toString());
  }

  /**
   * Keys found through the issuer's discovery document (`ISSUER/.well-known/openid-configuration`,
   * whose `issuer` must be the issuer itself, OpenID Connect Discovery §4.3).
   */
  static fromDiscovery(issuer: string, options: JwksFetchOptions = {}): JwksSource {
    const configUrl = checkFetchUrl(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, 'the issuer');
    let jwksUrl: URL | null = null;
    return new JwksSource(
      async () => {
        if (!jwksUrl) {
          let doc: z.infer<typeof discoverySchema>;
          try {
            doc = discoverySchema.parse(JSON.parse(await fetchBounded(configUrl, options)));
          } catch (e) {
            if (e instanceof OidcError) throw e;
            throw new OidcError('OIDC_JWKS_UNAVAILABLE', 'the issuer discovery document is not valid', undefined, { cause: e });
          }
          if (doc.issuer !== issuer) throw new OidcError('OIDC_JWKS_UNAVAILABLE', `the discovery document is for issuer ${JSON.stringify(doc.issuer)}`);
          try {
            jwksUrl = checkFetchUrl(doc.jwks_uri, 'the discovered jwks_uri');
          } catch (e) {
            throw new OidcError('OIDC_JWKS_UNAVAILABLE', (e as Error).message, undefined, { cause: e });
          }
        }
        return parseJwks(await fetchBounded(jwksUrl, options));
      },
      options,
      configUrl.toString(),
    );
  }

  /**
   * Keys from a JWKS file, read now (so that a missing or unreadable file is found at start) and
   * again on an unknown `kid` (the file was replaced by a newer set).
   */
  static fromFile(file: string, options: Omit<JwksFetchOptions, 'fetch' | 'timeoutMs'> = {}): JwksSource {
    const maxBytes = options.maxBytes ?? DEFAULT_JWKS_MAX_BYTES;
    const read = (): JwksKey[] => {
      const size = statSync(file).size;
      if (size > maxBytes) throw new OidcError('OIDC_JWKS_UNAVAILABLE', `the JWKS file ${file} is larger than ${maxBytes} bytes`);
      return parseJwks(readFileSync(file, 'utf8'));
    };
    let first: JwksKey[];
    try {
      first = read();
    } catch (e) {
      throw new OidcConfigError(`the JWKS file ${file} cannot be used: ${(e as Error).message}`, { cause: e });
    }
    const source = new JwksSource(async () => read(), options, file);
    source.keys = first;
    source.fetchedAt = Date.now();
    return source;
  }

  /** Load the keys again now (shared by concurrent callers). */
  refresh(): Promise<JwksKey[]> {
    this.inFlight ??= this.load()
      .then((keys) => {
        this.keys = keys;
        this.fetchedAt = Date.now();
        this.lastError = null;
        return keys;
      })
      .catch((e: unknown) => {
        this.lastError = e;
        // A failure counts as a fetch for the rate limit: a dead issuer is not hammered.
        this.fetchedAt = Date.now();
        throw e;
      })
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  private async current(): Promise<JwksKey[]> {
    const stale = Date.now() - this.fetchedAt > (this.options.cacheSeconds ?? 3600) * 1000;
    if (this.keys && !stale) return this.keys;
    const recentFailure = this.lastError !== null && Date.now() - this.fetchedAt < (this.options.minRefreshSeconds ?? 30) * 1000;
    if (!this.keys && recentFailure) throw this.unavailable(this.lastError);
    try {
      return await this.refresh();
    } catch (e) {
      if (this.keys) return this.keys;
      throw this.unavailable(e);
    }
  }

  private unavailable(e: unknown): OidcError {
    return e instanceof OidcError ? e : new OidcError('OIDC_JWKS_UNAVAILABLE', `the keys from ${this.origin} cannot be read`, undefined, { cause: e });
  }

  /**
   * The keys that may have signed a token with this `kid` (all keys fit for `alg` when the
   * token names none). An unknown `kid` prompts one early fetch; still unknown is OIDC_UNKNOWN_KEY.
   */
  async keysFor(kid: string | undefined, alg: string): Promise<KeyObject[]> {
    const pick = (keys: JwksKey[]) => keys.filter((k) => (kid === undefined || k.kid === kid) && (k.alg === undefined || k.alg === alg)).map((k) => k.key);
    let found = pick(await this.current());
    if (found.length === 0 && Date.now() - this.fetchedAt >= (this.options.minRefreshSeconds ?? 30) * 1000) {
      try {
        found = pick(await this.refresh());
      } catch {
        // The keys we have stand; the token's key is not among them.
      }
    }
    if (found.length === 0) {
      throw new OidcError('OIDC_UNKNOWN_KEY', kid === undefined ? `no key of the issuer fits ${alg}` : `the issuer has no key ${JSON.stringify(kid)}`);
    }
    return found;
  }

  /** The last fetch failure, if the last fetch failed (for health reports). */
  get failure(): unknown {
    return this.lastError;
  }
}
