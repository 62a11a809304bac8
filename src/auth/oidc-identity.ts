/**
 * OIDC ID tokens as callers of the routes that accept identity tokens (the signing call of
 * server-held signers): the pipeline's IdentityVerifier over the configured issuers. A token is
 * taken as an ID token when its (unverified) issuer is one of them, else registry token
 * authentication checks it; a refused ID token is IDENTITY_REFUSED (401) with the reason, never
 * the token.
 */
import { IdentityRefusedError, type IdentityVerifier } from './identity.js';
import { OidcError } from './oidc-errors.js';
import { unverifiedIssuer, type OidcIssuers } from './oidc.js';

export function oidcIdentityVerifier(issuers: OidcIssuers): IdentityVerifier {
  const known = new Set(issuers.issuers);
  return {
    accepts(token) {
      try {
        return known.has(unverifiedIssuer(token));
      } catch {
        return false;
      }
    },
    async verify(token, nowMs) {
      try {
        return await issuers.verify(token, { nowMs });
      } catch (error) {
        if (error instanceof OidcError) throw new IdentityRefusedError(`OIDC ID token refused (${error.code}): ${error.message}`, { cause: error });
        throw error;
      }
    },
  };
}
