/**
 * OIDC identities for pipelines: a CI system (GitHub Actions, GitLab CI, …) gives each job an
 * ID token, a JWT signed by the CI system's issuer; Signet verifies it and the job is known by
 * its claims (`repository`, `ref`, `workflow`, …) without holding any secret of its own.
 *
 * A token is accepted when, in this order:
 * 1. it is a compact JWS whose `alg` is one of the accepted asymmetric algorithms (RS256 and
 *    ES256 among them; never `none` or HMAC) and whose claims are well formed (`iss`, `sub`,
 *    `aud`, `exp` required);
 * 2. `iss` is the configured issuer, exactly;
 * 3. a key of the issuer's JWKS (by `kid`) verifies the signature;
 * 4. `aud` names one of the configured audiences;
 * 5. `exp`, `nbf` and `iat` hold at the current time within the clock skew (default 60 s), and
 *    the token lives no longer than `maxLifetimeSeconds` from now;
 * 6. the claim conditions of the caller (e.g. a signer's rules) hold;
 * 7. its `jti` has not been accepted before (the replay guard records it until the token expires;
 *    with `deferReplay` the caller records it by `consume` once its own checks pass).
 *
 * Each refusal is an OidcError with a stable code (src/auth/oidc-errors.ts). The token itself is
 * never put in an error, a log line or the audit trail.
 */
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { claimConditionsSchema, describeCondition, matchClaims, type ClaimCondition } from './claim-conditions.js';
import type { OidcIdentity } from './identity.js';
import { JwksSource, type JwksFetchOptions } from './jwks.js';
import { parseJws, TokenFormatError, verifyJws, type ParsedJws } from './jws.js';
import { OidcConfigError, OidcError } from './oidc-errors.js';

export { OidcError, OidcConfigError, OIDC_ERROR_STATUS, type OidcErrorCode } from './oidc-errors.js';

export const DEFAULT_OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'] as const;
export const MAX_JTI_LENGTH = 255;

/**
 * Where `jti`s are remembered. `claimOnce` records (issuer, jti) until `expiresAt` and answers
 * true, or answers false when that pair is already recorded and not yet expired at `now`. It must
 * be atomic across every process that shares it (src/storage/oidc-replay-store.ts is).
 */
export interface ReplayGuard {
  claimOnce(issuer: string, jti: string, expiresAt: Date, now: Date): Promise<boolean>;
}

/** One trusted issuer, as configuration states it (validated by `oidcIssuerConfigSchema`). */
export const oidcIssuerConfigSchema = z
  .strictObject({
    issuer: z.string().min(1).max(512),
    /** Audiences Signet accepts (`aud` must name one). */
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** The JWKS URL; else `jwksFile`; else the issuer's discovery document gives it. */
    jwksUrl: z.string().optional(),
    jwksFile: z.string().optional(),
    algorithms: z.array(z.string()).min(1).optional(),
    clockSkewSeconds: z.number().int().min(0).max(600).optional(),
    maxLifetimeSeconds: z.number().int().min(1).optional(),
    /** Conditions every token of this issuer must meet, on top of each caller's own. */
    conditions: claimConditionsSchema.optional(),
  })
  .refine((c) => !(c.jwksUrl && c.jwksFile), { message: 'give jwksUrl or jwksFile, not both' });

export type OidcIssuerConfig = z.infer<typeof oidcIssuerConfigSchema>;

export interface OidcVerifierOptions extends OidcIssuerConfig {
  /** Where accepted `jti`s are kept; without one, replayed tokens are not detected (tests only). */
  replay?: ReplayGuard;
  /** Keys from here instead of jwksUrl / jwksFile / discovery. */
  jwks?: JwksSource;
  /** Limits of the JWKS fetch and its cache. */
  fetchOptions?: JwksFetchOptions;
}

export interface VerifyOptions {
  /** The caller's conditions on the claims (all must hold). */
  conditions?: readonly ClaimCondition[];
  /** The current time, ms since the epoch (tests). */
  nowMs?: number;
  /**
   * Check that the token has a jti, but record it (and so find a replay) only when the caller
   * calls `consume(identity)`: after its own checks pass and before it acts, so that a refused
   * call does not use up the token. Without this `verify` records the jti itself.
   */
  deferReplay?: boolean;
}

const claimsSchema = z.looseObject({
  iss: z.string(),
  sub: z.string().min(1).max(1024),
  aud: z.union([z.string(), z.array(z.string()).max(64)]),
  exp: z.number().finite(),
  nbf: z.number().finite().optional(),
  iat: z.number().finite().optional(),
  jti: z.string().optional(),
});

const ALLOWED_ALGORITHMS = new Set<string>(DEFAULT_OIDC_ALGORITHMS);

/** Verifies the ID tokens of one issuer. */
export class OidcVerifier {
  readonly issuer: string;
  private readonly audiences: string[];
  private readonly algorithms: Set<string>;
  private readonly skew: number;
  private readonly maxLifetime: number;
  private readonly jwks: JwksSource;
  private readonly conditions: readonly ClaimCondition[];
  private readonly replay: ReplayGuard | undefined;

  constructor(options: OidcVerifierOptions) {
    const { jwks, replay, fetchOptions, ...config } = options;
    const parsed = oidcIssuerConfigSchema.safeParse(config);
    if (!parsed.success) throw new OidcConfigError(`OIDC issuer ${JSON.stringify(options.issuer)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
    const c = parsed.data;
    this.issuer = c.issuer;
    this.audiences = Array.isArray(c.audience) ? c.audience : [c.audience];
    const algorithms = c.algorithms ?? [...DEFAULT_OIDC_ALGORITHMS];
    for (const alg of algorithms) if (!ALLOWED_ALGORITHMS.has(alg)) throw new OidcConfigError(`OIDC issuer ${c.issuer}: algorithm ${alg} is not supported`);
    this.algorithms = new Set(algorithms);
    this.skew = c.clockSkewSeconds ?? 60;
    this.maxLifetime = c.maxLifetimeSeconds ?? 24 * 3600;
    this.conditions = c.conditions ?? [];
    this.replay = replay;
    this.jwks =
      jwks ??
      (c.jwksUrl
        ? JwksSource.fromUrl(c.jwksUrl, fetchOptions)
        : c.jwksFile
          ? JwksSource.fromFile(c.jwksFile, fetchOptions)
          : JwksSource.fromDiscovery(c.issuer, fetchOptions));
  }

  /** Verify `token` (the bare JWT, no `Bearer `) and return the identity it proves, or throw an OidcError. */
  async verify(token: string, options: VerifyOptions = {}): Promise<OidcIdentity> {
    const nowMs = options.nowMs ?? Date.now();
    const jws = parseToken(token);
    if (!this.algorithms.has(jws.header.alg)) throw new OidcError('OIDC_MALFORMED', `algorithm ${JSON.stringify(jws.header.alg)} is not accepted`);
    const parsed = claimsSchema.safeParse(jws.payload);
    if (!parsed.success) {
      throw new OidcError(
        'OIDC_MALFORMED',
        `token claims are malformed: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'claims'}: ${i.message}`).join('; ')}`,
      );
    }
    const claims = parsed.data;
    if (claims.iss !== this.issuer)
      throw new OidcError('OIDC_WRONG_ISSUER', `token issuer ${JSON.stringify(claims.iss)} is not ${JSON.stringify(this.issuer)}`);

    const kid = typeof jws.header.kid === 'string' ? jws.header.kid : undefined;
    const keys: KeyObject[] = await this.jwks.keysFor(kid, jws.header.alg);
    if (!keys.some((key) => verifyJws(jws, key))) throw new OidcError('OIDC_BAD_SIGNATURE', 'token signature does not verify with the issuer key');

    // From here on the claims are the issuer's: refusals carry them for the audit trail.
    const seen = { subject: claims.sub, issuer: claims.iss, claims: jws.payload };
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.some((a) => this.audiences.includes(a))) {
      throw new OidcError(
        'OIDC_WRONG_AUDIENCE',
        `token audience ${JSON.stringify(claims.aud)} is not ${this.audiences.map((a) => JSON.stringify(a)).join(' or ')}`,
        seen,
      );
    }
    const now = nowMs / 1000;
    if (now > claims.exp + this.skew) throw new OidcError('OIDC_EXPIRED', `token expired at ${new Date(claims.exp * 1000).toISOString()}`, seen);
    if (claims.nbf !== undefined && now < claims.nbf - this.skew) {
      throw new OidcError('OIDC_NOT_YET_VALID', `token is not valid before ${new Date(claims.nbf * 1000).toISOString()}`, seen);
    }
    if (claims.iat !== undefined && now < claims.iat - this.skew) throw new OidcError('OIDC_NOT_YET_VALID', 'token is issued in the future', seen);
    if (claims.exp - now > this.maxLifetime) throw new OidcError('OIDC_MALFORMED', `token is valid for longer than ${this.maxLifetime} s`, seen);

    const conditions = [...this.conditions, ...(options.conditions ?? [])];
    const match = matchClaims(jws.payload, conditions);
    if (!match.ok) {
      const failed = match.failed.map(describeCondition);
      throw new OidcError('OIDC_CLAIMS_MISMATCH', `token claims do not meet: ${failed.join(', ')}`, { ...seen, failed });
    }

    if (this.replay) {
      if (claims.jti === undefined || claims.jti.length === 0) throw new OidcError('OIDC_MALFORMED', 'token has no jti, so its reuse cannot be detected', seen);
      if (claims.jti.length > MAX_JTI_LENGTH) throw new OidcError('OIDC_MALFORMED', `token jti is longer than ${MAX_JTI_LENGTH} characters`, seen);
    }
    const identity: OidcIdentity = { kind: 'oidc', subject: claims.sub, issuer: claims.iss, claims: jws.payload };
    if (!options.deferReplay) await this.consume(identity, { nowMs });
    return identity;
  }

  /**
   * Record the identity's jti as used (what `verify` does unless `deferReplay`): OIDC_REPLAYED if
   * it already was. Without a replay guard it does nothing.
   */
  async consume(identity: OidcIdentity, options: { nowMs?: number } = {}): Promise<void> {
    if (!this.replay) return;
    const { jti, exp } = identity.claims;
    if (identity.issuer !== this.issuer || typeof jti !== 'string' || typeof exp !== 'number') {
      throw new OidcError('OIDC_MALFORMED', 'not an identity verified by this issuer');
    }
    // Remembered until the token could no longer be accepted anyway.
    const until = new Date((exp + this.skew) * 1000);
    if (!(await this.replay.claimOnce(this.issuer, jti, until, new Date(options.nowMs ?? Date.now())))) {
      throw new OidcError('OIDC_REPLAYED', 'token was used before', { subject: identity.subject, issuer: identity.issuer, claims: identity.claims });
    }
  }

  /** Fetch the issuer's keys now (at start, to report a misconfigured issuer early). */
  async prefetch(): Promise<void> {
    await this.jwks.refresh();
  }
}

function parseToken(token: string): ParsedJws {
  try {
    return parseJws(token.trim());
  } catch (e) {
    if (e instanceof TokenFormatError) throw new OidcError('OIDC_MALFORMED', e.message);
    throw e;
  }
}

/** The issuer a token claims, read without verifying anything (to pick its verifier). */
export function unverifiedIssuer(token: string): string {
  const iss = parseToken(token).payload['iss'];
  if (typeof iss !== 'string') throw new OidcError('OIDC_MALFORMED', 'token has no issuer');
  return iss;
}

/** Several trusted issuers: a token is verified by the one its `iss` names. */
export class OidcIssuers {
  private readonly byIssuer = new Map<string, OidcVerifier>();

  constructor(verifiers: readonly OidcVerifier[]) {
    for (const v of verifiers) {
      if (this.byIssuer.has(v.issuer)) throw new OidcConfigError(`OIDC issuer ${v.issuer} is configured twice`);
      this.byIssuer.set(v.issuer, v);
    }
  }

  get issuers(): string[] {
    return [...this.byIssuer.keys()];
  }

  /** Verify with the verifier of the token's issuer; an issuer not configured is OIDC_WRONG_ISSUER. */
  async verify(token: string, options: VerifyOptions & { issuer?: string } = {}): Promise<OidcIdentity> {
    const iss = unverifiedIssuer(token);
    if (options.issuer !== undefined && iss !== options.issuer) {
      throw new OidcError('OIDC_WRONG_ISSUER', `token issuer ${JSON.stringify(iss)} is not ${JSON.stringify(options.issuer)}`);
    }
    const verifier = this.byIssuer.get(iss);
    if (!verifier) throw new OidcError('OIDC_WRONG_ISSUER', `token issuer ${JSON.stringify(iss)} is not trusted`);
    return verifier.verify(token, options);
  }

  /** Record a deferred identity's jti with the verifier of its issuer (see `VerifyOptions.deferReplay`). */
  async consume(identity: OidcIdentity, options: { nowMs?: number } = {}): Promise<void> {
    const verifier = this.byIssuer.get(identity.issuer);
    if (!verifier) throw new OidcError('OIDC_WRONG_ISSUER', `issuer ${JSON.stringify(identity.issuer)} is not trusted`);
    await verifier.consume(identity, options);
  }
}

/**
 * The trusted issuers from configuration (a JSON array of `oidcIssuerConfigSchema` objects),
 * sharing one replay guard; a mistake in any of them is an OidcConfigError naming it.
 */
export function oidcIssuersFromConfig(value: unknown, options: { replay?: ReplayGuard; fetchOptions?: JwksFetchOptions } = {}): OidcIssuers {
  const parsed = z.array(z.unknown()).max(100).safeParse(value);
  if (!parsed.success) throw new OidcConfigError('the OIDC issuers must be a list of issuer objects');
  return new OidcIssuers(
    parsed.data.map((entry, i) => {
      const c = oidcIssuerConfigSchema.safeParse(entry);
      if (!c.success)
        throw new OidcConfigError(`OIDC issuer #${i + 1}: ${c.error.issues.map((x) => `${x.path.join('.') || 'issuer'}: ${x.message}`).join('; ')}`);
      return new OidcVerifier({
        ...c.data,
        ...(options.replay ? { replay: options.replay } : {}),
        ...(options.fetchOptions ? { fetchOptions: options.fetchOptions } : {}),
      });
    }),
  );
}

/** The token of an `Authorization: Bearer …` header, or null. */
export function bearerToken(authorization: string | undefined): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return m ? m[1]! : null;
}
