/**
 * One image, one decision: normalise the reference as the container runtime does, pick the
 * rule, and for a trust rule run its checks. A Notary check finds the signed digest in the
 * repository's trusted set and applies the signer policy: signers are delegations
 * (`targets/NAME`, named NAME; "targets" is the repository key), and without `signers` docker's
 * pull rule applies (the digest `targets/releases` gives, else the one `targets` gives). A Cosign
 * check asks which of the source's keys signed the digest the image runs: the reference's
 * digest, the one a Notary check of the same `allOf` rule found, or else the one the registry
 * gives for the tag. Signers of one digest are counted by distinct key material, so two names
 * of one key count once. `allOf` needs every check (for one digest), `anyOf` one.
 *
 * A decision never allows on an error in enforce mode; in warn mode it admits with the
 * reasons as warnings.
 */
import { parseImageReference, type ImageReference } from '../registry/reference.js';
import { signetErrorCode } from '../tuf/core/signet-error.js';
import type { SignedTarget, TrustedSet } from '../tuf/notary/trusted-set.js';
import { loadedRoles } from '../client/signed-state.js';
import { matchRule, type Policy, type Rule } from './policy.js';
import type { CosignVerification } from '../cosign/verify.js';
import type { CosignSource, TrustCheck } from './policy.js';
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
  /** What counted: each signer of each check that held, with its source. */
  evidence: DecisionEvidence[];
}

export interface DecisionEvidence {
  source: string;
  kind: 'notary' | 'cosign';
  /** A Notary signer (delegation name) or a Cosign key name. */
  signer: string;
  /** Cosign: the storage format of the signature that counted. */
  format?: 'tag' | 'bundle';
  /** Cosign bundles: whether a transparency-log entry was verified, not checked, or absent. */
  tlog?: 'verified' | 'ignored' | 'none';
  /** Notary, with a rule's `scan`: the scan evidence signed with the digest that counted. */
  scan?: { scanner: string; createdAt: string; counts: Record<string, number> };
  note?: string;
}

export const TLOG_NOT_CHECKED = 'transparency-log entry not checked: no Rekor key configured';

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
export function applySigners(set: TrustedSet, rule: Pick<Rule, 'signers' | 'threshold'>, ref: ImageReference): Found | { reason: string } {
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

function signedFor(set: TrustedSet, rule: Pick<Rule, 'signers' | 'threshold'>, ref: ImageReference): Found | { reason: string } {
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
      timer = setTimeout(() => resolve('timeout'), Math.max(0, ms));
    }),
  ]);
}

function finish(d: Omit<ImageDecision, 'allowed'>, ok: boolean): ImageDecision {
  // warn mode admits what enforce would deny, keeping the reasons (returned as warnings).
  return { ...d, allowed: ok || d.mode === 'warn' };
}

/** What one check of a rule found: the digest and who signed it, or why not. */
type Outcome = { ok: true; digest: string; signers: string[]; evidence: DecisionEvidence[] } | { ok: false; reason: string };

const errorText = (err: unknown) => {
  const code = signetErrorCode(err);
  return `${code ? `${code}: ` : ''}${(err as Error).message}`;
};

/** What a server-held signer signs into a target's custom field after a passing scan (src/scan's summary). */
interface SignedScan {
  scanner: string;
  createdAt: string;
  digest: string;
  counts: Record<string, number>;
}

function signedScanOf(target: SignedTarget): SignedScan | string {
  const custom = target.custom as { signet?: { scan?: Record<string, unknown> } } | null | undefined;
  const scan = typeof custom === 'object' && custom !== null ? custom.signet?.scan : undefined;
  if (typeof scan !== 'object' || scan === null) return 'no scan evidence';
  const { scanner, createdAt, digest, counts } = scan;
  if (typeof digest !== 'string' || typeof scanner !== 'string' || typeof counts !== 'object' || counts === null) return 'unreadable scan evidence';
  if (typeof createdAt !== 'string' || !Number.isFinite(Date.parse(createdAt))) return 'scan evidence without a report time';
  return { scanner: scanner.slice(0, 100), createdAt, digest, counts: counts as Record<string, number> };
}

/**
 * A rule's `scan`: among the signers that counted, one whose target for this digest carries scan
 * evidence for this very digest from a report no older than the limit. The evidence is part of the
 * signed target, so it is as trustworthy as the signature.
 */
function scanEvidence(
  set: TrustedSet,
  check: TrustCheck,
  ref: ImageReference,
  found: Found,
  nowMs: number,
): { scan: SignedScan; signer: string } | { reason: string } {
  const maxAge = check.scanMaxAgeSeconds!;
  const tag = ref.tag ?? (ref.digest ? undefined : 'latest');
  const problems: string[] = [];
  for (const signer of found.signers) {
    const role = signer === 'targets' ? 'targets' : `targets/${signer}`;
    for (const target of signedBy(set, role, tag, tag !== undefined ? undefined : found.digestHex)) {
      if (hexOf(target) !== found.digestHex) continue;
      const scan = signedScanOf(target);
      if (typeof scan === 'string') {
        problems.push(`${signer}: ${scan}`);
        continue;
      }
      if (scan.digest !== `sha256:${found.digestHex}`) {
        problems.push(`${signer}: the scan evidence is for ${scan.digest.slice(0, 80)}`);
        continue;
      }
      const ageS = Math.floor((nowMs - Date.parse(scan.createdAt)) / 1000);
      if (ageS > maxAge) {
        problems.push(`${signer}: the scan report is from ${scan.createdAt}, older than ${maxAge} s`);
        continue;
      }
      return { scan, signer };
    }
  }
  return { reason: `sha256:${found.digestHex} has no passing scan no older than ${maxAge} s signed with it (${problems.join('; ') || 'no scan evidence'})` };
}

/** A Notary check: the cached trusted set when it can be used as it is (no promise, no timer), else a fetch within the budget. */
function notaryCheck(check: TrustCheck, ref: ImageReference, policy: Policy, trust: GateTrustCache, until: number): Outcome | Promise<Outcome> {
  const source = policy.trust.get(check.trust)!;
  // Only the delegations the check counts are fetched: its signers, or docker's targets/releases.
  const roles = check.signers ? check.signers.filter((n) => n !== 'targets').map((n) => `targets/${n}`) : [RELEASES];
  const apply = (set: TrustedSet): Outcome => {
    const found = applySigners(set, check, ref);
    if ('reason' in found) return { ok: false, reason: found.reason };
    const scanned = check.scanMaxAgeSeconds !== undefined ? scanEvidence(set, check, ref, found, Date.now()) : undefined;
    if (scanned && 'reason' in scanned) return { ok: false, reason: scanned.reason };
    return {
      ok: true,
      digest: `sha256:${found.digestHex}`,
      signers: found.signers,
      evidence: found.signers.map((signer) => ({
        source: source.name,
        kind: 'notary' as const,
        signer,
        ...(scanned && scanned.signer === signer
          ? { scan: { scanner: scanned.scan.scanner, createdAt: scanned.scan.createdAt, counts: scanned.scan.counts } }
          : {}),
      })),
    };
  };
  const cached = trust.peek(source.name, ref.name, roles);
  if (cached) return apply(cached);
  return deadline(trust.trustedSet(source.name, ref.name, roles), until - Date.now()).then(
    (set): Outcome =>
      set === 'timeout'
        ? { ok: false, reason: `trust source ${source.name} did not answer for ${ref.name} within the budget of ${policy.budgetMs} ms` }
        : apply(set),
    (err: unknown): Outcome => ({ ok: false, reason: `trust data of ${ref.name} from ${source.name}: ${errorText(err)}` }),
  );
}

const shorten = (text: string, max = 240) => (text.length > max ? `${text.slice(0, max - 3)}...` : text);

/** The signers of a Cosign verification that a check counts, by distinct key material. */
function cosignOutcome(check: TrustCheck, source: CosignSource, v: CosignVerification, what: string): Outcome {
  const wanted = check.signers ?? [...source.keys.keys()];
  const threshold = check.threshold ?? (check.signers ? check.signers.length : 1);
  // A name counts when its key signed, under whichever name the verifier credited it.
  const signedIds = new Set(v.signers.map((n) => source.keyIds.get(n)));
  const used = new Set<string>();
  const counted: string[] = [];
  for (const n of wanted) {
    const id = source.keyIds.get(n)!;
    if (signedIds.has(id) && !used.has(id)) {
      used.add(id);
      counted.push(n);
    }
  }
  if (counted.length >= threshold) {
    const evidence = counted.flatMap((signer) => {
      const id = source.keyIds.get(signer);
      const lines = v.evidence.filter((e) => source.keyIds.get(e.key) === id);
      return lines.map((e): DecisionEvidence => {
        const out: DecisionEvidence = { source: source.name, kind: 'cosign', signer, format: e.format };
        if (e.format === 'bundle' && e.tlog) {
          out.tlog = e.tlog;
          if (e.tlog === 'ignored') out.note = TLOG_NOT_CHECKED;
          else if (e.tlog === 'verified') out.note = 'transparency-log entry verified with the configured Rekor key';
        }
        return out;
      });
    });
    return { ok: true, digest: v.digest, signers: counted, evidence };
  }
  const problems = v.problems.length
    ? ` (${v.problems
        .slice(0, 3)
        .map((p) => shorten(p))
        .join('; ')}${v.problems.length > 3 ? `; and ${v.problems.length - 3} more` : ''})`
    : '';
  if (v.found === 0) return { ok: false, reason: `no Cosign signature of ${what}${problems}` };
  if (counted.length === 0) return { ok: false, reason: `no Cosign signature of ${what} by ${wanted.join(', ')}${problems}` };
  const missing = wanted.filter((n) => !counted.includes(n));
  return {
    ok: false,
    reason: `${what}: Cosign signatures by ${counted.length} of ${wanted.join(', ')} (${counted.join(', ')}), ${threshold} needed; missing ${missing.join(', ')}${problems}`,
  };
}

/** A Cosign check of `digest`: the cached result when it can be used as it is, else the registry within the budget. */
async function cosignCheck(check: TrustCheck, ref: ImageReference, digest: string, policy: Policy, trust: GateTrustCache, until: number): Promise<Outcome> {
  const source = policy.cosign.get(check.trust)!;
  const what = `${ref.name}@${digest}`;
  let v: CosignVerification | 'timeout' | null = trust.cosign.peek(source.name, ref, digest);
  try {
    v ??= await deadline(trust.cosign.verification(source.name, ref, digest), until - Date.now());
  } catch (err) {
    return { ok: false, reason: `Cosign signatures of ${what} (trust source ${source.name}): ${errorText(err)}` };
  }
  if (v === 'timeout')
    return {
      ok: false,
      reason: `registry ${ref.registry} did not answer for ${ref.name} within the budget of ${policy.budgetMs} ms (trust source ${source.name})`,
    };
  return cosignOutcome(check, source, v, what);
}

/**
 * Decide one image under `policy`, within `budgetMs` (what is left of the request's budget,
 * policy.budgetMs at most; trust and registry fetches go on in the background).
 */
export async function decideImage(image: string, policy: Policy, trust: GateTrustCache, budgetMs = policy.budgetMs): Promise<ImageDecision> {
  const base = { image, mode: 'enforce' as const, signers: [] as string[], reasons: [] as string[], evidence: [] as DecisionEvidence[] };
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
  const until = Date.now() + budgetMs;
  const several = rule.checks.length > 1;
  const label = (check: TrustCheck, o: Outcome): Outcome => (o.ok || !several ? o : { ok: false, reason: `${check.trust}: ${o.reason}` });
  const outcomes = new Map<TrustCheck, Outcome>();

  // Notary checks first: they need no registry, and under allOf they give the digest the Cosign checks verify.
  const notary = rule.checks.filter((c) => c.kind === 'notary');
  const pending: Promise<void>[] = [];
  for (const check of notary) {
    const o = notaryCheck(check, ref, policy, trust, until);
    if (o instanceof Promise) pending.push(o.then((done) => void outcomes.set(check, label(check, done))));
    else outcomes.set(check, label(check, o));
  }
  if (pending.length) await Promise.all(pending);

  const cosign = rule.checks.filter((c) => c.kind === 'cosign');
  const notaryOk = notary.map((c) => outcomes.get(c)!).filter((o) => o.ok);
  const skipCosign = rule.combine === 'allOf' ? notaryOk.length < notary.length : notaryOk.length > 0;
  if (cosign.length && !skipCosign) {
    // The digest the image runs: the reference's, else (allOf) the one the Notary checks found, else the registry's for the tag.
    let digest: string | undefined = ref.digest ?? (rule.combine === 'allOf' ? notaryOk[0]?.digest : undefined);
    let failure: string | undefined;
    if (!digest) {
      const tagged = `${ref.name}:${ref.tag ?? 'latest'}`;
      try {
        const found = await deadline(trust.cosign.digestOf(cosign[0]!.trust, ref), until - Date.now());
        if (found === 'timeout') failure = `registry ${ref.registry} did not answer for ${tagged} within the budget of ${policy.budgetMs} ms`;
        else digest = found;
      } catch (err) {
        failure = `${tagged}: no digest from the registry: ${errorText(err)}`;
      }
    }
    const results = await Promise.all(
      cosign.map((check): Promise<Outcome> | Outcome => (digest ? cosignCheck(check, ref, digest, policy, trust, until) : { ok: false, reason: failure! })),
    );
    cosign.forEach((check, i) => outcomes.set(check, label(check, results[i]!)));
  }

  const done = rule.checks.map((c) => outcomes.get(c)).filter((o): o is Outcome => o !== undefined);
  const passed = done.filter((o): o is Extract<Outcome, { ok: true }> => o.ok);
  const failed = done.filter((o): o is Extract<Outcome, { ok: false }> => !o.ok);
  let chosen: Extract<Outcome, { ok: true }>[];
  if (rule.combine === 'allOf') {
    if (failed.length) return finish({ ...decided, reasons: failed.map((f) => f.reason) }, false);
    const digests = [...new Set(passed.map((p) => p.digest))];
    if (digests.length > 1) {
      const by = rule.checks.map((c, i) => `${c.trust}: ${passed[i]?.digest ?? '?'}`).join('; ');
      return finish({ ...decided, reasons: [`${ref.name}${ref.tag ? `:${ref.tag}` : ''}: the trust sources disagree on the digest (${by})`] }, false);
    }
    chosen = passed;
  } else {
    if (passed.length === 0) return finish({ ...decided, reasons: failed.map((f) => f.reason) }, false);
    chosen = passed.filter((p) => p.digest === passed[0]!.digest);
  }
  const digest = chosen[0]!.digest;
  const out: ImageDecision = {
    ...decided,
    allowed: true,
    digest,
    signers: [...new Set(chosen.flatMap((c) => c.signers))],
    evidence: chosen.flatMap((c) => c.evidence),
  };
  if (rule.pinDigest && !ref.digest) out.pinned = `${ref.name}:${ref.tag ?? 'latest'}@${digest}`;
  return out;
}
