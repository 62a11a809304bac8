/**
 * Conditions on the claims of a verified identity, as signers state them: every condition must
 * hold. A condition names one top-level claim and either the exact value it must have
 * (`equals`) or a glob it must match (`glob`):
 *
 * - `*` matches any run of characters except `/` (`refs/heads/*` matches `refs/heads/main`, not
 *   `refs/heads/a/b`);
 * - `**` matches any run of characters, `/` included (`refs/heads/**` matches both);
 * - every other character matches itself; matching is case-sensitive and covers the whole value.
 *
 * A claim that is a string is matched as it is; a number or a boolean by its JSON text (`true`,
 * `42`); an array holds when one of its string elements matches. A missing claim, or one whose
 * value is an object or null, never matches. Matching runs in time linear in pattern × value
 * (no regular expression is built from the pattern).
 */
import { z } from 'zod';

export const MAX_PATTERN_LENGTH = 1024;
export const MAX_CONDITIONS = 32;

export const claimConditionSchema = z
  .strictObject({
    claim: z.string().min(1).max(256),
    equals: z.string().max(MAX_PATTERN_LENGTH).optional(),
    glob: z.string().min(1).max(MAX_PATTERN_LENGTH).optional(),
  })
  .refine((c) => (c.equals === undefined) !== (c.glob === undefined), { message: 'a claim condition has exactly one of equals or glob' });

export const claimConditionsSchema = z.array(claimConditionSchema).max(MAX_CONDITIONS);

export type ClaimCondition = z.infer<typeof claimConditionSchema>;

type Token = { kind: 'lit'; ch: string } | { kind: 'star' } | { kind: 'globstar' };

function tokens(pattern: string): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        // Three or more stars in a row are one `**`.
        while (pattern[i + 1] === '*') i++;
        out.push({ kind: 'globstar' });
      } else out.push({ kind: 'star' });
    } else out.push({ kind: 'lit', ch: pattern[i]! });
  }
  return out;
}

/** Whether `value` matches `pattern` (`*` within one path segment, `**` across segments). */
export function globMatch(pattern: string, value: string): boolean {
  const toks = tokens(pattern);
  // reach[j]: the first i tokens can match the first j characters of value.
  let reach: boolean[] = new Array<boolean>(value.length + 1).fill(false);
  reach[0] = true;
  for (const tok of toks) {
    const next: boolean[] = new Array<boolean>(value.length + 1).fill(false);
    if (tok.kind === 'lit') {
      for (let j = 0; j < value.length; j++) if (reach[j] && value[j] === tok.ch) next[j + 1] = true;
    } else {
      // A star extends any reachable position over characters it may cross.
      let open = false;
      for (let j = 0; j <= value.length; j++) {
        if (reach[j]) open = true;
        if (open) next[j] = true;
        if (open && tok.kind === 'star' && value[j] === '/') open = false;
      }
    }
    reach = next;
    if (!reach.includes(true)) return false;
  }
  return reach[value.length] === true;
}

function candidates(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (typeof value === 'number' || typeof value === 'boolean') return [JSON.stringify(value)];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

/** Whether one condition holds for these claims. */
export function conditionHolds(claims: Record<string, unknown>, condition: ClaimCondition): boolean {
  if (!Object.prototype.hasOwnProperty.call(claims, condition.claim)) return false;
  const values = candidates(claims[condition.claim]);
  if (condition.equals !== undefined) return values.includes(condition.equals);
  const glob = condition.glob!;
  return values.some((v) => globMatch(glob, v));
}

export type ClaimsMatch = { ok: true } | { ok: false; failed: ClaimCondition[] };

/** Check every condition; the ones that do not hold come back, in order. */
export function matchClaims(claims: Record<string, unknown>, conditions: readonly ClaimCondition[]): ClaimsMatch {
  const failed = conditions.filter((c) => !conditionHolds(claims, c));
  return failed.length === 0 ? { ok: true } : { ok: false, failed };
}

/** A condition as one line for error messages and the audit trail: `ref glob refs/heads/*`. */
export function describeCondition(c: ClaimCondition): string {
  return c.equals !== undefined ? `${c.claim} equals ${JSON.stringify(c.equals)}` : `${c.claim} glob ${JSON.stringify(c.glob)}`;
}
