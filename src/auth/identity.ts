/**
 * Who is calling, once a credential has been verified: a registry token (its subject) or an OIDC
 * ID token from a CI system (its subject, issuer and every claim). Rules on signers decide on
 * these claims; the audit trail records them.
 */
export interface CallerIdentity {
  kind: 'registry-token' | 'oidc';
  /** The token's `sub`. */
  subject: string;
  /** The verified claims of the token, as the issuer wrote them. */
  claims: Record<string, unknown>;
  /** The `iss` of an OIDC token. */
  issuer?: string;
}

/** An identity proven by an OIDC ID token. */
export interface OidcIdentity extends CallerIdentity {
  kind: 'oidc';
  issuer: string;
}
