/**
 * What a trusted set says about an image, in docker trust's terms (`cli/command/trust/common.go`):
 * a *signed tag* is a tag in `targets/releases` or `targets`; its *signers* are the other
 * delegations that sign the same digest for it ("Repo Admin" when only the repository's own
 * key did). `inspect` gives exactly the shape of `docker trust inspect`; `verifyImage` applies
 * a signer policy on top ("signed by ci and qa", or N of them).
 */
import { canonicalKeyId } from '../tuf/core/keys.js';
import type { TrustedSet, SignedTarget } from '../tuf/notary/trusted-set.js';
import { ClientError } from './errors.js';
import { RELEASES_ROLE } from './publisher.js';

export const REPO_ADMIN = 'Repo Admin';

export interface TrustTagRow {
  SignedTag: string;
  Digest: string;
  Signers: string[];
}
export interface TrustSigner {
  Name: string;
  Keys: { ID: string }[];
}
/** `docker trust inspect`'s JSON, field for field. */
export interface TrustRepo {
  Name: string;
  SignedTags: TrustTagRow[];
  Signers: TrustSigner[];
  AdministrativeKeys: TrustSigner[];
}

function hexDigest(target: SignedTarget): string {
  const b64 = target.hashes['sha256'];
  return b64 ? Buffer.from(b64, 'base64').toString('hex') : '';
}

/** Every loaded targets role, pre-order from `targets` (the order notary walks them). */
export function loadedRoles(set: TrustedSet): string[] {
  const out: string[] = [];
  const walk = (role: string) => {
    if (!set.targets(role)) return;
    out.push(role);
    for (const d of set.delegationsOf(role)) walk(d.name);
  };
  walk('targets');
  return out;
}

const signerName = (role: string) => role.slice('targets/'.length);
const isReleased = (role: string) => role === 'targets' || role === RELEASES_ROLE;

/** Go's sortorder.NaturalLess: digit runs compare as numbers. */
export function naturalLess(a: string, b: string): boolean {
  const re = /(\d+)|(\D+)/g;
  const pa = a.match(re) ?? [];
  const pb = b.match(re) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    const nx = /^\d/.test(x);
    const ny = /^\d/.test(y);
    if (nx && ny) {
      const dx = BigInt(x);
      const dy = BigInt(y);
      if (dx !== dy) return dx < dy;
      return x.length < y.length;
    }
    return x < y;
  }
  return pa.length < pb.length;
}

/** Signed tags (all, or one tag) with their signers, docker's matchReleasedSignatures. */
export function signedTags(set: TrustedSet, tag?: string): TrustTagRow[] {
  const roles = loadedRoles(set);
  const all: SignedTarget[] = [];
  for (const role of roles) {
    const names = tag !== undefined ? [tag] : Object.keys(set.targets(role)!.signed.targets ?? {});
    for (const name of names) {
      const t = set.targetOf(role, name);
      if (t) all.push(t);
    }
  }
  const rows = new Map<string, TrustTagRow>();
  for (const t of all) {
    if (isReleased(t.role)) rows.set(`${t.name}\0${hexDigest(t)}`, { SignedTag: t.name, Digest: hexDigest(t), Signers: [] });
  }
  for (const t of all) {
    const row = rows.get(`${t.name}\0${hexDigest(t)}`);
    if (row && !isReleased(t.role)) row.Signers.push(signerName(t.role));
  }
  return [...rows.values()].sort((a, b) => (naturalLess(a.SignedTag, b.SignedTag) ? -1 : naturalLess(b.SignedTag, a.SignedTag) ? 1 : 0));
}

/** Signer name → canonical key IDs, for every delegation but `targets/releases`. */
export function signerKeys(set: TrustedSet): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (role: string) => {
    const file = set.targets(role)?.signed;
    const keys = file?.delegations?.keys ?? {};
    for (const d of file?.delegations?.roles ?? []) {
      if (d.name !== RELEASES_ROLE) {
        out.set(
          signerName(d.name),
          d.keyids.map((id) => {
            const k = keys[id];
            try {
              return k ? canonicalKeyId(k.keytype, k.keyval.public) : id;
            } catch {
              return id;
            }
          }),
        );
      }
      walk(d.name);
    }
  };
  walk('targets');
  return out;
}

/** `docker trust inspect NAME[:TAG]` for one repository. */
export function inspect(set: TrustedSet, name: string, tag?: string): TrustRepo {
  const rows = signedTags(set, tag).map((r) => ({ ...r, Signers: r.Signers.length > 0 ? r.Signers : [REPO_ADMIN] }));
  const signers = [...signerKeys(set)].map(([Name, ids]) => ({ Name, Keys: ids.map((ID) => ({ ID })) }));
  signers.sort((a, b) => (a.Name > b.Name ? -1 : a.Name < b.Name ? 1 : 0));
  const root = set.root.signed;
  const admin: TrustSigner[] = [
    { Name: 'Root', Keys: (root.roles['root']?.keyids ?? []).map((ID) => ({ ID })) },
    { Name: 'Repository', Keys: (root.roles['targets']?.keyids ?? []).map((ID) => ({ ID })) },
  ];
  return { Name: name, SignedTags: rows, Signers: signers, AdministrativeKeys: admin };
}

/** Go's text/tabwriter with docker's settings (minwidth 10, padding 3), last column unpadded. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => Math.max((r[col] ?? '').length + 3, 10))));
  return rows.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('')).join('\n') + '\n';
}

/** `docker trust inspect --pretty NAME[:TAG]`. */
export function inspectPretty(set: TrustedSet, name: string, tag?: string): string {
  let out = '';
  const rows = signedTags(set, tag);
  if (rows.length > 0) {
    out += `\nSignatures for ${name}\n\n`;
    out += table([
      ['SIGNED TAG', 'DIGEST', 'SIGNERS'],
      ...rows.map((r) => [r.SignedTag, r.Digest, (r.Signers.length ? r.Signers : [`(${REPO_ADMIN})`]).join(', ')]),
    ]);
  } else out += `\nNo signatures for ${name}\n\n`;
  const signers = [...signerKeys(set)].sort(([a], [b]) => (naturalLess(a, b) ? -1 : naturalLess(b, a) ? 1 : 0));
  if (signers.length > 0) {
    out += `\nList of signers and their keys for ${name}\n\n`;
    out += table([
      ['SIGNER', 'KEYS'],
      ...signers.map(([n, ids]) => [
        n,
        [...ids]
          .sort()
          .map((id) => id.slice(0, 12))
          .join(', '),
      ]),
    ]);
  }
  out += `\nAdministrative keys for ${name}\n\n`;
  const root = set.root.signed;
  // docker sorts the roles by name, descending: targets (Repository Key) before root.
  out += `  Repository Key:\t${[...(root.roles['targets']?.keyids ?? [])].sort().join(', ')}\n`;
  out += `  Root Key:\t${[...(root.roles['root']?.keyids ?? [])].sort().join(', ')}\n`;
  return out;
}

export interface VerifyPolicy {
  /** Signer names (`targets/NAME`) that must sign the trusted digest. */
  signers?: readonly string[];
  /** How many of `signers` must sign (default: all of them). */
  threshold?: number;
}

export interface Verified {
  name: string;
  tag: string;
  digest: string;
  length: number;
  /** The role the trusted digest comes from: `targets/releases` or `targets`. */
  role: string;
  signers: string[];
}

/**
 * The trusted digest of `tag` (docker's pull rule: `targets/releases`, else `targets`), or of
 * the tags signed with `digest`, with the policy applied. Throws NO_SUCH_TARGET or NOT_TRUSTED.
 */
export function verifyImage(set: TrustedSet, name: string, want: { tag?: string; digest?: string }, policy: VerifyPolicy = {}): Verified {
  const wantHex = want.digest?.replace(/^sha256:/, '');
  const candidates: SignedTarget[] = [];
  const tags = want.tag !== undefined ? [want.tag] : [...new Set(loadedRoles(set).flatMap((r) => Object.keys(set.targets(r)!.signed.targets ?? {})))].sort();
  for (const tag of tags) {
    const t = set.targetOf(RELEASES_ROLE, tag) ?? set.targetOf('targets', tag);
    if (t && (wantHex === undefined || hexDigest(t) === wantHex)) candidates.push(t);
  }
  const what = want.tag !== undefined ? `${name}:${want.tag}` : `${name}@${want.digest}`;
  if (candidates.length === 0) {
    if (want.tag !== undefined && wantHex !== undefined && (set.targetOf(RELEASES_ROLE, want.tag) ?? set.targetOf('targets', want.tag))) {
      throw new ClientError('NOT_TRUSTED', `${name}:${want.tag} is signed with another digest than ${want.digest}`);
    }
    throw new ClientError('NO_SUCH_TARGET', `no trusted signature for ${what}`);
  }
  const required = policy.signers ?? [];
  const threshold = policy.threshold ?? required.length;
  let refusal = '';
  for (const t of candidates) {
    const digest = hexDigest(t);
    const signers = loadedRoles(set)
      .filter((r) => !isReleased(r))
      .filter((r) => {
        const s = set.targetOf(r, t.name);
        return s !== null && hexDigest(s) === digest;
      })
      .map(signerName);
    const agreeing = required.filter((n) => signers.includes(n));
    if (agreeing.length >= threshold) {
      return { name, tag: t.name, digest: `sha256:${digest}`, length: t.length, role: t.role, signers: signers.length ? signers : [REPO_ADMIN] };
    }
    const missing = required.filter((n) => !signers.includes(n));
    refusal = `${name}:${t.name} (sha256:${digest}) is signed by ${signers.length ? signers.join(', ') : REPO_ADMIN}; ${threshold} of ${required.join(', ')} needed, missing ${missing.join(', ')}`;
  }
  throw new ClientError('NOT_TRUSTED', refusal);
}
