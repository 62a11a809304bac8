/**
 * The guard sequence every request goes through, on the fast path and the express path alike:
 * decode the path, match the route, check the GUN, apply the GUN prefix gate, then check the
 * token. Both paths call these functions, so a rule added here holds on both; the fast path may
 * only skip express, never a guard. They decide and return; the caller writes the answer (the
 * fast path hands every refusal to the express path, which writes it).
 *
 * A passing check allocates nothing beyond the route itself: the fast path runs them on every
 * cached read.
 */
import { requiredAccess } from '../auth/access.js';
import type { CallerIdentity, IdentityVerifier } from '../auth/identity.js';
import type { TokenAuthenticator } from '../auth/token-auth.js';
import { HttpError } from './errors.js';
import { gunProblem, isWriteShaped, matchRoute, type Route } from './paths.js';

export interface GuardOptions {
  /** Token authentication; absent = no authentication. */
  auth?: TokenAuthenticator | undefined;
  /** Repository name prefixes served; empty = all (notary's `repositories.gun_prefixes`). */
  gunPrefixes: readonly string[];
  /**
   * Tokens of another kind (OIDC ID tokens) that routes taking a pipeline's identity accept
   * (the signing call). A token it `accepts` skips registry token authentication here and is
   * verified in full by the route (`Caller.pending`), whose use case checks the identity.
   */
  identityVerifier?: IdentityVerifier | undefined;
}

/** Routes where a pipeline may present an identity token instead of a registry token. */
const IDENTITY_ROUTES: ReadonlySet<Route['kind']> = new Set(['signWithSigner']);

/** Who passed step 5. */
export interface Caller {
  /** The authenticated subject ('anonymous' for a token without one). */
  subject: string;
  /** A registry token's identity; absent for a token still to verify (`pending`). */
  identity?: CallerIdentity;
  /** A token for the identity verifier, which the route verifies. */
  pending?: { token: string; verifier: IdentityVerifier };
}

/** Why a request is refused before its route runs. */
export class Refusal {
  constructor(
    /** The route, for the observer; null when the path could not even be decoded. */
    readonly route: Route | null,
    readonly error: HttpError,
    /** Set when the token was refused: the challenge to send, and the reason for the log. */
    readonly auth?: { challenge: string; reason: string },
  ) {}
}

const NOT_FOUND: Route = { kind: 'notFound' };

function decodePath(rawPath: string): string | null {
  try {
    return decodeURIComponent(rawPath);
  } catch {
    return null;
  }
}

/** Steps 1-4: the route a raw (undecoded) path names, or why the name is refused. */
export function resolveRoute(method: string, rawPath: string, gunPrefixes: readonly string[]): Route | Refusal {
  const path = decodePath(rawPath);
  if (path === null) {
    // A write to a name that is not valid percent-encoded UTF-8 is told why, as a write to any
    // other name Signet refuses is; a read of one just finds nothing.
    if (isWriteShaped(method, rawPath)) return new Refusal(null, new HttpError('INVALID_GUN', 'the name is not valid percent-encoded UTF-8'));
    return NOT_FOUND;
  }
  const route = matchRoute(method, path);
  if ('gun' in route) {
    const problem = gunProblem(route.gun);
    if (problem) return new Refusal(route, new HttpError('INVALID_GUN', problem));
    if (gunPrefixes.length > 0 && !gunPrefixes.some((p) => route.gun.startsWith(p))) {
      // As notary: an update is told why; every other route sees no such repository.
      if (route.kind === 'update') return new Refusal(route, new HttpError('INVALID_GUN', `Require GUNs with prefix: [${gunPrefixes.join(' ')}]`));
      return new Refusal(route, new HttpError('METADATA_NOT_FOUND'));
    }
  }
  return route;
}

/**
 * Step 5: the token against the access the route needs. Returns the authenticated subject
 * ('anonymous' for a token without one), undefined when no token was needed, or the refusal.
 */
export function authorizeRoute(route: Route, authorization: string | undefined, auth: TokenAuthenticator | undefined): string | undefined | Refusal {
  const caller = authorizeCaller(route, authorization, auth, undefined);
  return caller instanceof Refusal || caller === undefined ? caller : caller.subject;
}

/** Step 5 with what the token says about its bearer, for the routes that need more than the subject. */
export function authorizeCaller(
  route: Route,
  authorization: string | undefined,
  auth: TokenAuthenticator | undefined,
  identityVerifier: IdentityVerifier | undefined,
): Caller | undefined | Refusal {
  if (identityVerifier && IDENTITY_ROUTES.has(route.kind)) {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    if (token && identityVerifier.accepts(token)) return { subject: 'pending', pending: { token, verifier: identityVerifier } };
  }
  if (!auth) return undefined;
  const required = requiredAccess(route);
  if (!required) return undefined;
  const result = auth.authorize(authorization, required);
  if (result.ok) {
    const subject = result.subject || 'anonymous';
    return { subject, identity: { kind: 'registry-token', subject, claims: result.claims } };
  }
  return new Refusal(
    route,
    new HttpError(
      'UNAUTHORIZED',
      required.map((a) => ({ Type: a.type, Class: '', Name: a.name, Action: a.action })),
    ),
    { challenge: result.challenge, reason: result.reason },
  );
}

/** The whole sequence, as the express path runs it. */
export function guard(
  method: string,
  rawPath: string,
  authorization: string | undefined,
  options: GuardOptions,
): { route: Route; subject: string | undefined; caller: Caller | undefined } | Refusal {
  const route = resolveRoute(method, rawPath, options.gunPrefixes);
  if (route instanceof Refusal) return route;
  const caller = authorizeCaller(route, authorization, options.auth, options.identityVerifier);
  if (caller instanceof Refusal) return caller;
  return { route, subject: caller?.subject, caller };
}
