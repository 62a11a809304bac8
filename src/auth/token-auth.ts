/**
 * Registry token authentication (the Docker registry token specification, as notary-server
 * applies it): a Bearer JWT issued by the registry's token service, signed by a key that chains
 * to the configured root certificates (`x5c`) or is named by `kid`, for this issuer and service,
 * inside its validity window, granting the scopes the route needs.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { scopeOf, type Access } from './access.js';
import { SignetError } from '../tuf/core/signet-error.js';
import { libtrustKeyId, parseJws, TokenFormatError, verifyJws, type ParsedJws } from './jws.js';

export interface TokenAuthOptions {
  realm: string;
  service: string;
  issuer: string;
  /** PEM bundle of the certificates whose keys may sign tokens (directly or as chain roots). */
  rootCertBundle: string;
  /** Tolerance for exp/nbf, seconds (the registry library uses 60). */
  leewaySeconds?: number;
}

export type AuthResult =
  | { ok: true; subject: string; /** The token's verified claims. */ claims: Record<string, unknown> }
  | { ok: false; error: 'missing' | 'invalid_token' | 'insufficient_scope'; reason: string; challenge: string };

const claimsSchema = z.looseObject({
  iss: z.string(),
  sub: z.string().optional(),
  aud: z.union([z.string(), z.array(z.string())]),
  exp: z.number(),
  nbf: z.number().optional(),
  access: z.array(z.looseObject({ type: z.string(), name: z.string(), actions: z.array(z.string()) })).nullish(),
});

class InvalidToken extends SignetError {
  readonly code = 'TOKEN_INVALID';
}

export function loadCertificateBundle(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('the token root certificate bundle holds no certificate');
  return blocks.map((b) => new X509Certificate(b));
}

export class TokenAuthenticator {
  private readonly roots: X509Certificate[];
  private readonly keysById = new Map<string, KeyObject>();
  private readonly leeway: number;

  constructor(private readonly options: TokenAuthOptions) {
    this.roots = loadCertificateBundle(options.rootCertBundle);
    for (const cert of this.roots) this.keysById.set(libtrustKeyId(cert.publicKey), cert.publicKey);
    this.leeway = options.leewaySeconds ?? 60;
  }

  static fromFile(options: Omit<TokenAuthOptions, 'rootCertBundle'> & { rootCertBundleFile: string }): TokenAuthenticator {
    return new TokenAuthenticator({ ...options, rootCertBundle: readFileSync(options.rootCertBundleFile, 'utf8') });
  }

  /** The token service that issues this server's tokens. */
  get realm(): string {
    return this.options.realm;
  }

  /** The audience tokens must name. */
  get service(): string {
    return this.options.service;
  }

  /**
   * What a token the realm issued grants, once it is verified like any bearer token (signature,
   * issuer, audience, validity); null if it is not one this server accepts.
   */
  grants(token: string, nowMs = Date.now()): { subject: string; expiresMs: number; access: Access[] } | null {
    try {
      const claims = this.verifyToken(token, nowMs);
      const access: Access[] = [];
      for (const g of claims.access ?? []) {
        if (g.type !== 'repository' && g.type !== 'registry') continue;
        for (const action of g.actions) access.push({ type: g.type, name: g.name, action });
      }
      return { subject: claims.sub ?? '', expiresMs: claims.exp * 1000, access };
    } catch {
      return null;
    }
  }

  challenge(required: readonly Access[], error?: 'invalid_token' | 'insufficient_scope'): string {
    const q = (s: string) => s.replace(/["\\]/g, '\\$&');
    let value = `Bearer realm="${q(this.options.realm)}",service="${q(this.options.service)}"`;
    if (required.length > 0) value += `,scope="${q(scopeOf(required))}"`;
    if (error) value += `,error="${error}"`;
    return value;
  }

  authorize(authorization: string | undefined, required: readonly Access[], nowMs = Date.now()): AuthResult {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) return { ok: false, error: 'missing', reason: 'no bearer token', challenge: this.challenge(required) };
    let claims: z.infer<typeof claimsSchema>;
    try {
      claims = this.verifyToken(m[1]!, nowMs);
    } catch (e) {
      const reason = e instanceof InvalidToken || e instanceof TokenFormatError ? e.message : 'token could not be verified';
      return { ok: false, error: 'invalid_token', reason, challenge: this.challenge(required, 'invalid_token') };
    }
    const granted = claims.access ?? [];
    const missing = required.filter(
      (need) => !granted.some((g) => g.type === need.type && g.name === need.name && (g.actions.includes(need.action) || g.actions.includes('*'))),
    );
    if (missing.length > 0) {
      return { ok: false, error: 'insufficient_scope', reason: `token lacks ${scopeOf(missing)}`, challenge: this.challenge(required, 'insufficient_scope') };
    }
    return { ok: true, subject: claims.sub ?? '', claims };
  }

  private verifyToken(token: string, nowMs: number) {
    const jws = parseJws(token);
    const key = this.signingKey(jws, nowMs);
    if (!verifyJws(jws, key)) throw new InvalidToken('token signature is invalid');
    const parsed = claimsSchema.safeParse(jws.payload);
    if (!parsed.success) throw new InvalidToken('token claims are malformed');
    const claims = parsed.data;
    const now = nowMs / 1000;
    if (claims.iss !== this.options.issuer) throw new InvalidToken('token issuer is not trusted');
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(this.options.service)) throw new InvalidToken('token is for another service');
    if (now > claims.exp + this.leeway) throw new InvalidToken('token has expired');
    if (claims.nbf !== undefined && now < claims.nbf - this.leeway) throw new InvalidToken('token is not valid yet');
    return claims;
  }

  /** The key that must have signed the token: from a certificate chain to a root, or by key ID. */
  private signingKey(jws: ParsedJws, nowMs: number): KeyObject {
    const { x5c, kid } = jws.header;
    if (Array.isArray(x5c) && x5c.length > 0) {
      if (x5c.length > 10) throw new InvalidToken('token certificate chain is too long');
      let chain: X509Certificate[];
      try {
        chain = x5c.map((c) => new X509Certificate(Buffer.from(String(c), 'base64')));
      } catch {
        throw new InvalidToken('token certificate chain is malformed');
      }
      for (const cert of chain) {
        if (Date.parse(cert.validFrom) > nowMs || Date.parse(cert.validTo) < nowMs) throw new InvalidToken('token certificate is outside its validity');
      }
      for (let i = 0; i + 1 < chain.length; i++) {
        // Only a CA may issue: a leaf certificate cannot stand in as an intermediate.
        if (!chain[i + 1]!.ca || !chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) {
          throw new InvalidToken('token certificate chain is broken');
        }
      }
      const top = chain[chain.length - 1]!;
      const valid = (c: X509Certificate) => Date.parse(c.validFrom) <= nowMs && Date.parse(c.validTo) >= nowMs;
      const anchored = this.roots.some(
        (root) => valid(root) && (root.fingerprint256 === top.fingerprint256 || (root.ca && top.checkIssued(root) && top.verify(root.publicKey))),
      );
      if (!anchored) throw new InvalidToken('token is signed by an untrusted key');
      return chain[0]!.publicKey;
    }
    if (typeof kid === 'string') {
      const key = this.keysById.get(kid);
      if (!key) throw new InvalidToken('token is signed by an untrusted key');
      return key;
    }
    throw new InvalidToken('token names no signing key (x5c or kid)');
  }
}
