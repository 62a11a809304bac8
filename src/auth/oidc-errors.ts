/**
 * Why an OIDC ID token was refused: one stable code each, and the HTTP status it stands for.
 * Messages say what was wrong with the token, never the token itself.
 */
import { CodedError } from '../tuf/core/signet-error.js';

export const OIDC_ERROR_STATUS = {
  /** Not a compact JWS, not JSON, a claim missing or of the wrong type, an algorithm not accepted, too long a lifetime. */
  OIDC_MALFORMED: 401,
  /** `iss` is not the configured issuer. */
  OIDC_WRONG_ISSUER: 401,
  /** `aud` does not name the configured audience. */
  OIDC_WRONG_AUDIENCE: 401,
  /** `exp` has passed (beyond the clock skew allowed). */
  OIDC_EXPIRED: 401,
  /** `nbf` or `iat` is in the future (beyond the clock skew allowed). */
  OIDC_NOT_YET_VALID: 401,
  /** No key of the issuer's JWKS has the token's `kid` (even after fetching the JWKS again). */
  OIDC_UNKNOWN_KEY: 401,
  /** The signature does not verify with the issuer's key. */
  OIDC_BAD_SIGNATURE: 401,
  /** This `jti` was accepted before and the token has not expired. */
  OIDC_REPLAYED: 401,
  /** The token is valid but its claims do not meet the conditions (repository, ref, workflow…). */
  OIDC_CLAIMS_MISMATCH: 403,
  /** The issuer's JWKS could not be fetched or read and no earlier copy is at hand. */
  OIDC_JWKS_UNAVAILABLE: 503,
} as const;

export type OidcErrorCode = keyof typeof OIDC_ERROR_STATUS;

export class OidcError extends CodedError<OidcErrorCode> {
  override name = 'OidcError';

  constructor(
    code: OidcErrorCode,
    message: string,
    /** Extra facts for the caller and the audit trail (never the token). */
    readonly detail?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }

  get status(): number {
    return OIDC_ERROR_STATUS[this.code];
  }
}

/** An OIDC issuer is configured wrongly (a bad URL, an unreadable JWKS file): found at start, not per request. */
export class OidcConfigError extends CodedError<'OIDC_CONFIG'> {
  override name = 'OidcConfigError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('OIDC_CONFIG', message, options);
  }
}
