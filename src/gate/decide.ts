/**
 * One image, one decision: normalise the reference as the container runtime does, pick the
 * rule, and for a trust rule find the signed digest in the repository's trusted set and apply
 * the signer policy. Signers are delegations (`targets/NAME`, named NAME; "targets" is the
 * repository key); the signers of one digest are counted by distinct key material, so two
 * delegations signed with the same key count once. Without `signers`, docker's pull rule
 * applies: the digest `targets/releases` gives, else the one `targets` gives.
 *
 * A decision never allows on an error in enforce mode; in warn mode it admits with the
 * reasons as warnings.
 */
import { parseImageReference, type ImageReference } from '../registry/reference.js';
import { signetErrorCode } from '../tuf/core/signet-error.js';
import type { SignedTarget, TrustedSet } from '../tuf/notary/trusted-set.js';
import { loadedRoles } from '../client/signed-state.js';
import { matchRule, type Policy, type Rule } from './policy.js';
import type { GateTrustCache } from './trust-cache.js';

const RELEASES = 'targets/releases';
export const MAX_IMAGE_LENGTH = 4096;

export interface ImageDecision {
  /** The image as given. */
  image: string;
  allowed: boolean;
  /** `sha256:…` the decision is about, when one was found. */
  digest?: string;
  /** The rule that decided (its first glob), if any matched. */
  rule?: string;
  mode: 'enforce' | 'warn';
  signers: string[];
  /** Why it is not allowed (or, in warn mode, would not be). */
  reasons: string[];
  /** The reference to run instead (`name:tag@digest`), when the rule pins digests. */
  pinned?: string;
}

const hexOf = (t: SignedTarget) => (t.hashes['sha256'] ? Buffer.from(t.hashes['sha256'], 'base64').toString('hex') : '');
const signerName = (role: string) => (role === 'targets' ? 'targets' : role.slice('targets/'.length));

/** Roles that sign `digest` (hex) for `tag` or, without a tag, under any name. */
function signedBy(set: TrustedSet, role: string, tag: string | undefined, digestHex: string | undefined): SignedTarget[] {
  if (tag !== undefined) {
    const t = set.targetOf(role, tag);
    return t && (digestHex === undefined || hexOf(t) === digestHex) ? [t] : [];
  }
  const names = Object.keys(set.targets(role)?.signed.targets ?? {});
  return names.map((n) => set.targetOf(role, n)).filter((t): t is SignedTarget => t !== null && hexOf(t) === digestHex);
}

interface Found {
  digestHex: string;
  signers: string[];
}

/**
 * Apply the rule's signer policy to a trusted set; returns the signed digest or the reason why
 * not. For `tag@digest` the digest is what runs: it must be signed, and when the tag is signed
 * too, for the same digest.
 */
export function applySigners(set: TrustedSet, rule: Rule, ref: ImageReference): Found | { reason: string } {
  if (ref.digest && ref.tag) {
    const byDigest = signedFor(set, rule, { ...ref, tag: undefined } as ImageReference);
    if ('reason' in byDigest) return { reason: `${ref.name}:${ref.tag}@${ref.digest}: ${byDigest.reason}` };
    const byTag = signedFor(set, rule, { ...ref, digest: undefined } as ImageReference);
    if (!('reason' in byTag) && byTag.digestHex !== byDigest.digestHex) {
      return { reason: `${ref.name}:${ref.tag}@${ref.digest}: the tag is signed with sha256:${byTag.digestHex}, not ${ref.digest}` };
    }
    return byDigest;
  }
  return signedFor(set, rule, ref);
}

function signedFor(set: TrustedSet, rule: Rule, ref: ImageReference): Found | { reason: string } {
  const tag = ref.tag ?? (ref.digest ? undefined : 'latest');
  const wantHex = ref.digest?.slice('sha256:'.length);
  const what = `${ref.name}${tag !== undefined ? `:${tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
  if (!rule.signers) {
    // docker's rule: targets/releases first, then targets.
    for (const role of [RELEASES, 'targets']) {
      const hits = signedBy(set, role, tag, tag !== undefined ? undefined : wantHex);
      if (hits.length === 0) continue;
      const hex = hexOf(hits[0]!);
      if (wantHex !== undefined && hex !== wantHex) return { reason: `${what}: the tag is signed with sha256:${hex}, not ${ref.digest}` };
      const signers = loadedRoles(set)
        .filter((r) => signedBy(set, r, tag ?? hits[0]!.name, hex).length > 0)
        .map(signerName);
      return { digestHex: hex, signers };
    }
    return { reason: `no signed digest for ${what}` };
  }
  const roles = rule.signers.map((n) => (n === 'targets' ? 'targets' : `targets/${n}`));
  const threshold = rule.threshold ?? roles.length;
  // digest → the signer roles that sign it for this tag (or under any name, for a digest).
  const byDigest = new Map<string, string[]>();
  for (const role of roles) {
    for (const t of signedBy(set, role, tag, tag !== undefined ? undefined : wantHex)) {
      const hex = hexOf(t);
      const list = byDigest.get(hex) ?? [];
      if (!list.includes(role)) list.push(role);
      byDigest.set(hex, list);
    }
  }
  const meeting: Found[] = [];
  let best = { count: 0, hex: '', roles: [] as string[] };
  for (const [hex, signing] of byDigest) {
    // Count signers by distinct key material: a role counts if it brings a key not yet counted.
    const used = new Set<string>();
    const counted: string[] = [];
    for (const role of signing) {
      const keys = set.signingKeysOf(role);
      if ([...keys].some((k) => !used.has(k))) {
        counted.push(role);
        for (const k of keys) used.add(k);
      }
    }
    if (counted.length >= threshold) meeting.push({ digestHex: hex, signers: counted.map(signerName) });
    if (counted.length > best.count) best = { count: counted.length, hex, roles: counted };
  }
  if (meeting.length > 1)
    return { reason: `${what}: the signers disagree (${meeting.map((m) => `sha256:${m.digestHex} by ${m.signers.join(', ')}`).join('; ')})` };
  const found = meeting[0];
  if (!found) {
    if (byDigest.size === 0) return { reason: `no signed digest for ${what} by ${rule.signers.join(', ')}` };
    const missing = rule.signers.filter((n) => !best.roles.map(signerName).includes(n));
    return {
      reason: `${what}: signed by ${best.count} of ${rule.signers.join(', ')} (${best.roles.map(signerName).join(', ') || 'none'}), ${threshold} needed; missing ${missing.join(', ')}`,
    };
  }
  if (wantHex !== undefined && found.digestHex !== wantHex) return { reason: `${what}: the tag is signed with sha256:${found.digestHex}, not ${ref.digest}` };
  return found;
}

function deadline<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), ms);
    }),
  ]);
}

function finish(d: Omit<ImageDecision, 'allowed'>, ok: boolean): ImageDecision {
  // warn mode admits what enforce would deny, keeping the reasons (returned as warnings).
  return { ...d, allowed: ok || d.mode === 'warn' };
}

/**
 * Decide one image under `policy`, within `budgetMs` (what is left of the request's budget,
 * policy.budgetMs at most; the trust fetch goes on in the background).
 */
export async function decideImage(image: string, policy: Policy, trust: GateTrustCache, budgetMs = policy.budgetMs): Promise<ImageDecision> {
  const base = { image, mode: 'enforce' as const, signers: [] as string[], reasons: [] as string[] };
  if (typeof image !== 'string' || image.length === 0) return { ...base, allowed: false, reasons: ['no image given'] };
  if (image.length > MAX_IMAGE_LENGTH)
    return { ...base, image: `${image.slice(0, 64)}…`, allowed: false, reasons: [`image reference longer than ${MAX_IMAGE_LENGTH} characters`] };
  let ref: ImageReference;
  try {
    ref = parseImageReference(image);
  } catch (err) {
    return { ...base, allowed: false, reasons: [(err as Error).message] };
  }
  // Host names are case-insensitive: `Registry.Example.com/app` is pulled from
  // registry.example.com, so it is matched and looked up under that name, never let past a rule.
  const host = ref.registry.toLowerCase();
  if (host !== ref.registry) ref = { ...ref, registry: host, name: `${host}/${ref.repository}` };
  const rule = matchRule(policy, ref.name);
  if (!rule) return { ...base, allowed: false, reasons: [`no rule matches ${ref.name}`] };
  const decided = { ...base, rule: rule.name, mode: rule.mode };
  if (rule.action)
    return rule.action === 'allow' ? { ...decided, allowed: true } : finish({ ...decided, reasons: [`the rule ${rule.name} denies ${ref.name}`] }, false);
  if (rule.requireDigest && !ref.digest) {
    return finish({ ...decided, reasons: [`${image}: the rule ${rule.name} requires images by digest (name@sha256:…)`] }, false);
  }
  const source = policy.trust.get(rule.trust!)!;
  // Only the delegations the rule counts are fetched: its signers, or docker's targets/releases.
  const roles = rule.signers ? rule.signers.filter((n) => n !== 'targets').map((n) => `targets/${n}`) : [RELEASES];
  let set: TrustedSet | 'timeout' | null = trust.peek(source.name, ref.name, roles);
  try {
    set ??= await deadline(trust.trustedSet(source.name, ref.name, roles), budgetMs);
  } catch (err) {
    const code = signetErrorCode(err);
    return finish({ ...decided, reasons: [`trust data of ${ref.name} from ${source.name}: ${code ? `${code}: ` : ''}${(err as Error).message}`] }, false);
  }
  if (set === 'timeout')
    return finish({ ...decided, reasons: [`trust source ${source.name} did not answer for ${ref.name} within the budget of ${policy.budgetMs} ms`] }, false);
  const found = applySigners(set, rule, ref);
  if ('reason' in found) return finish({ ...decided, reasons: [found.reason] }, false);
  const digest = `sha256:${found.digestHex}`;
  const out: ImageDecision = { ...decided, allowed: true, digest, signers: found.signers };
  if (rule.pinDigest && !ref.digest) out.pinned = `${ref.name}:${ref.tag ?? 'latest'}@${digest}`;
  return out;
}
