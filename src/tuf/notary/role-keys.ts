/**
 * Turning a role's entry (key IDs and threshold) into the keys that may sign for it, in the
 * Notary v1 dialect: root-role keys are x509 certificates whose CN must match the GUN, listed
 * under the ID notary recomputes; delegation certificates pass notary's ValidateCertificate
 * (no SHA-1, RSA ≥ 2048) without the expiry check; every other key is loaded as listed. A key
 * that cannot be loaded cannot sign: it is left out and the threshold count shows the effect.
 */
import { loadVerifierKey, type VerifierKey } from '../core/keys.js';
import type { MetadataKey, RootSigned } from './metadata.js';
import { countValidSignatures, type SignatureEntry } from '../core/signatures.js';
import { parseCertificateBundle } from '../core/certificates.js';
import { loadRootCertificateKey, validateCertificate } from './x509.js';

/**
 * Parsed public keys by (keytype, key ID, key material), bounded: a caller verifying many files
 * (an import, a store check) meets the same root and delegation keys again and again. Owned by
 * that caller, never shared across the process.
 */
export class VerifierKeyCache {
  private readonly keys = new Map<string, VerifierKey | Error>();
  constructor(private readonly limit = 20_000) {}

  /** `load()` once per key: throws for an unusable key (and remembers that it is unusable). */
  get(cacheKey: string, load: () => VerifierKey): VerifierKey {
    let key = this.keys.get(cacheKey);
    if (key === undefined) {
      try {
        key = load();
      } catch (e) {
        key = e instanceof Error ? e : new Error(String(e));
      }
      if (this.keys.size >= this.limit) this.keys.clear();
      this.keys.set(cacheKey, key);
    }
    if (key instanceof Error) throw key;
    return key;
  }
}

export interface RoleKeys {
  keys: Map<string, VerifierKey>;
  threshold: number;
  /** Why listed keys were left out (for messages). */
  problems: string[];
}

/** Keys of `root`, `targets`, `snapshot` or `timestamp` as the root lists them. */
export function rootRoleKeys(root: RootSigned, role: 'targets' | 'snapshot' | 'timestamp', cache?: VerifierKeyCache): RoleKeys {
  const entry = root.roles[role];
  if (!entry) return { keys: new Map(), threshold: 1, problems: [`root does not define the ${role} role`] };
  return { ...loadListedKeys(entry.keyids, root.keys, false, cache), threshold: entry.threshold };
}

/**
 * The root role's own keys, valid for `gun`. `checkExpiry`: a root being accepted needs valid
 * certificates; one that is already trusted (and is signing its successor) does not.
 */
export function rootKeys(root: RootSigned, gun: string, opts: { checkExpiry: boolean; nowMs: number }): RoleKeys {
  const keys = new Map<string, VerifierKey>();
  const problems: string[] = [];
  for (const id of root.roles['root']?.keyids ?? []) {
    const key = root.keys[id];
    if (!key) continue;
    const loaded = loadRootCertificateKey(key.keytype, key.keyval.public, gun, { checkExpiry: opts.checkExpiry, now: new Date(opts.nowMs) });
    if (loaded.key) keys.set(loaded.key.keyId, loaded.key);
    else problems.push(`${id.slice(0, 12)}…: ${loaded.reason}`);
  }
  return { keys, threshold: root.roles['root']?.threshold ?? 1, problems };
}

/** Keys of a delegation as its parent lists them. */
export function delegationKeys(keyIds: readonly string[], keys: Record<string, MetadataKey>, threshold: number, cache?: VerifierKeyCache): RoleKeys {
  return { ...loadListedKeys(keyIds, keys, true, cache), threshold };
}

function loadListedKeys(
  keyIds: readonly string[],
  keys: Record<string, MetadataKey>,
  validateCerts: boolean,
  cache?: VerifierKeyCache,
): Omit<RoleKeys, 'threshold'> {
  const out = new Map<string, VerifierKey>();
  const problems: string[] = [];
  for (const id of keyIds) {
    const key = keys[id];
    if (!key) {
      problems.push(`${id.slice(0, 12)}…: listed but not defined`);
      continue;
    }
    try {
      const load = () => loadListedKey(key, id, validateCerts);
      out.set(id, cache ? cache.get(`${validateCerts ? 'c' : 'p'}\u0000${key.keytype}\u0000${id}\u0000${key.keyval.public}`, load) : load());
    } catch (e) {
      problems.push(`${id.slice(0, 12)}…: ${(e as Error).message}`);
    }
  }
  return { keys: out, problems };
}

function loadListedKey(key: MetadataKey, id: string, validateCerts: boolean): VerifierKey {
  if (validateCerts && key.keytype.endsWith('-x509')) {
    const pem = Buffer.from(key.keyval.public, 'base64').toString('utf8');
    const [leaf] = parseCertificateBundle(pem);
    if (!leaf) throw new Error('no certificate');
    // The clock is not consulted: notary does not check delegation certificate expiry.
    validateCertificate(leaf, { checkExpiry: false, now: new Date(0) });
  }
  return loadVerifierKey(key.keytype, key.keyval.public, id);
}

/** How many distinct keys of the role signed `message`, against how many it needs. */
export function signatureCount(message: Buffer, signatures: SignatureEntry[], role: RoleKeys): { valid: number; threshold: number; met: boolean } {
  const valid = countValidSignatures(message, signatures, role.keys);
  const threshold = role.threshold;
  return { valid, threshold, met: Number.isInteger(threshold) && threshold >= 1 && valid >= threshold };
}
