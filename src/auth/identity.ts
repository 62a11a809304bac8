/**
 * Who is calling, as the rules of server-held signers see it, and those rules. A caller is a
 * pipeline presenting a registry token (the token service's `sub` and its verified claims) or
 * an OIDC ID token from its CI system (verified by an `IdentityVerifier`); without token
 * authentication every caller is anonymous. Pure: matching is over values only.
 */

import { CodedError } from '../tuf/core/signet-error.js';

export type IdentityKind = 'registry-token' | 'oidc' | 'anonymous';

export interface CallerIdentity {
  kind: IdentityKind;
  /** The token's `sub` ('anonymous' when there is none or no authentication is configured). */
  subject: string;
  /** The token's verified claims (`iss`, `aud`, `sub`, and for OIDC `repository`, `ref`, `workflow`, …). */
  claims: Record<string, unknown>;
  /** The `iss` of an OIDC token. */
  issuer?: string;
}

/** An identity proven by an OIDC ID token. */
export interface OidcIdentity extends CallerIdentity {
  kind: 'oidc';
  issuer: string;
}

export const ANONYMOUS: CallerIdentity = Object.freeze({ kind: 'anonymous', subject: 'anonymous', claims: Object.freeze({}) }) as CallerIdentity;

/**
 * One rule of who may use a signer: every condition given must hold. `subject` and each claim
 * are patterns: exact text, or a glob (`*` any run of characters but `/`, `**` any run, `?` one
 * character but `/`); a list of patterns holds when one of them does. A claim that is absent,
 * or not a string, number or boolean, matches nothing.
 */
export interface IdentityRule {
  kind?: IdentityKind | undefined;
  subject?: string | string[] | undefined;
  claims?: Record<string, string | string[]> | undefined;
}

/**
 * Verifies a bearer token of another kind than registry tokens (OIDC ID tokens, src/auth/oidc.ts)
 * on the routes that accept one (the signing call). `accepts` is a cheap look at the token (its
 * issuer, unverified) deciding whether this verifier or registry token authentication checks
 * it; `verify` checks it in full (signature, issuer, audience, expiry, replay) and throws a
 * SignetError with a stable code when it is refused.
 */
export interface IdentityVerifier {
  accepts(token: string): boolean;
  verify(token: string, nowMs: number): Promise<CallerIdentity>;
}

/**
 * What an IdentityVerifier throws for a token it refuses (a bad signature, another issuer or
 * audience, expired, replayed): answered `401 UNAUTHORIZED` with the message as detail, and
 * audited as a refused call.
 */
export class IdentityRefusedError extends CodedError<'IDENTITY_REFUSED'> {
  override name = 'IdentityRefusedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('IDENTITY_REFUSED', message, options);
  }
}

const cache = new Map<string, RegExp>();

function globRegExp(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (!re) {
    let out = '';
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i]!;
      if (c === '*') {
        if (pattern[i + 1] === '*') {
          out += '[\\s\\S]*';
          i++;
        } else out += '[^/]*';
      } else if (c === '?') out += '[^/]';
      else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    re = new RegExp(`^${out}$`);
    if (cache.size > 1000) cache.clear();
    cache.set(pattern, re);
  }
  return re;
}

/** Whether `value` matches `pattern` (exact, or a glob as IdentityRule describes). */
export function globMatch(pattern: string, value: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === value;
  return globRegExp(pattern).test(value);
}

const anyOf = (patterns: string | string[], value: string) => (Array.isArray(patterns) ? patterns : [patterns]).some((p) => globMatch(p, value));

function claimText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return null;
}

/** Null when `rule` admits `identity`, else why not (every condition that fails). */
export function ruleProblem(rule: IdentityRule, identity: CallerIdentity): string | null {
  const problems: string[] = [];
  if (rule.kind && rule.kind !== identity.kind) problems.push(`the caller is ${identity.kind}, not ${rule.kind}`);
  if (rule.subject !== undefined && !anyOf(rule.subject, identity.subject)) problems.push(`subject ${JSON.stringify(identity.subject)} does not match`);
  for (const name of Object.keys(rule.claims ?? {}).sort()) {
    const patterns = rule.claims![name]!;
    const value = claimText(identity.claims[name]);
    if (value === null) problems.push(`claim ${name} is missing`);
    else if (!anyOf(patterns, value)) problems.push(`claim ${name} = ${JSON.stringify(value)} does not match`);
  }
  return problems.length > 0 ? problems.join(', ') : null;
}

/**
 * Null when one of `rules` admits `identity` (no rules: everyone who passed authentication),
 * else why none does.
 */
export function identityProblem(rules: readonly IdentityRule[] | undefined, identity: CallerIdentity): string | null {
  if (!rules || rules.length === 0) return null;
  const problems: string[] = [];
  for (const rule of rules) {
    const p = ruleProblem(rule, identity);
    if (p === null) return null;
    problems.push(p);
  }
  return `no identity rule admits ${identity.kind} caller ${JSON.stringify(identity.subject)} (${problems.join('; ')})`;
}

/** Whether `tag` is allowed by `patterns` (absent: every tag). */
export function tagAllowed(patterns: readonly string[] | undefined, tag: string): boolean {
  return !patterns || patterns.length === 0 || patterns.some((p) => globMatch(p, tag));
}
