/**
 * Trust pinning for the first root of a repository, as notary's `trust_pinning`
 * (`trustpinning/trustpin.go`): by the TUF IDs of root certificates, by a CA that must have
 * issued the root certificates, or trust on first use when neither is given (unless TOFU is
 * disabled). Later roots are trusted through the rotation chain, not through the pins.
 */
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { decodeBase64 } from '../tuf/core/base64.js';
import { loadVerifierKey, type VerifierKey } from '../tuf/core/keys.js';
import { countValidSignatures } from '../tuf/core/signatures.js';
import type { RootSigned, SignedFile } from '../tuf/notary/metadata.js';
import { ClientError } from './errors.js';

export interface TrustPinning {
  /** TUF key IDs of root certificates (as listed in root.json); one of them must be a root key. */
  certs?: readonly string[];
  /** PEM bundle of CAs; every root certificate must chain to one of them. */
  ca?: string;
  /** Refuse a repository first seen without certs or ca pins. */
  disableTofu?: boolean;
  /**
   * Pinned root public keys, matched by key material (not by key or certificate ID, so one key
   * serves every repository whose roots use it, each in its own certificate). The trust walk
   * then starts at `1.root.json`, whose root threshold these keys must meet, and follows every
   * rotation from there (the deploy gate's mode; no trust on first use).
   */
  rootKeys?: readonly KeyObject[];
}

const pinnedVerifiers = new WeakMap<KeyObject, VerifierKey>();

/** A pinned public key as a verifier (keyed by its identity: the sha256 of its SPKI); made once per key. */
export function pinnedVerifier(key: KeyObject): VerifierKey {
  const known = pinnedVerifiers.get(key);
  if (known) return known;
  const verifier = makePinnedVerifier(key);
  pinnedVerifiers.set(key, verifier);
  return verifier;
}

function makePinnedVerifier(key: KeyObject): VerifierKey {
  const spki = key.export({ type: 'spki', format: 'der' });
  const identity = createHash('sha256').update(spki).digest('hex');
  if (key.asymmetricKeyType === 'ed25519') return loadVerifierKey('ed25519', spki.subarray(spki.length - 32).toString('base64'), identity);
  return loadVerifierKey(key.asymmetricKeyType === 'rsa' ? 'rsa' : 'ecdsa', spki.toString('base64'), identity);
}

/**
 * Throws PINNING unless the distinct pinned keys with a valid signature on `root` (whatever key
 * ID the signature names) meet its root threshold.
 */
export function checkRootSignedByPinnedKeys(gun: string, root: SignedFile, signed: RootSigned, pinned: readonly KeyObject[]): void {
  const threshold = signed.roles['root']?.threshold ?? 1;
  let valid = 0;
  for (const key of pinned) {
    const verifier = pinnedVerifier(key);
    // Present the one pinned key under every key ID the signatures name.
    const keys = new Map(root.signatures.map((s) => [s.keyid, verifier] as const));
    if (countValidSignatures(root.message(), root.signatures, keys) > 0) valid++;
  }
  if (valid < threshold) {
    throw new ClientError('PINNING', `${gun}: root v${signed.version} is signed by ${valid} of the pinned root keys, ${threshold} needed`);
  }
}

function certificatesOf(publicB64: string): X509Certificate[] {
  const pem = decodeBase64(publicB64)?.toString('latin1') ?? '';
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

function chainsTo(leaf: X509Certificate, intermediates: X509Certificate[], anchors: X509Certificate[], nowMs: number): boolean {
  const valid = (c: X509Certificate) => Date.parse(c.validFrom) <= nowMs && nowMs <= Date.parse(c.validTo);
  const issuedBy = (child: X509Certificate, parent: X509Certificate) => child.checkIssued(parent) && child.verify(parent.publicKey) && valid(parent);
  if (!valid(leaf)) return false;
  let current = leaf;
  for (let depth = 0; depth <= intermediates.length; depth++) {
    if (anchors.some((a) => issuedBy(current, a))) return true;
    const next = intermediates.find((i) => i !== current && issuedBy(current, i) && i.ca);
    if (!next) return false;
    current = next;
  }
  return false;
}

/** Throws ClientError PINNING when `root` (the first root seen for `gun`) is not allowed. */
export function checkPinnedRoot(gun: string, root: RootSigned, pinning: TrustPinning | undefined, nowMs: number): void {
  const rootKeyIds = root.roles['root']?.keyids ?? [];
  if (pinning?.certs && pinning.certs.length > 0) {
    if (!rootKeyIds.some((id) => pinning.certs!.includes(id))) {
      throw new ClientError('PINNING', `${gun}: none of the root keys (${rootKeyIds.join(', ')}) is a pinned certificate`);
    }
    return;
  }
  if (pinning?.ca) {
    const anchors = (pinning.ca.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((b) => new X509Certificate(b));
    if (anchors.length === 0) throw new ClientError('BAD_INPUT', 'the pinned CA bundle holds no certificate');
    for (const id of rootKeyIds) {
      const key = root.keys[id];
      let certs: X509Certificate[];
      try {
        certs = key ? certificatesOf(key.keyval.public) : [];
      } catch {
        certs = [];
      }
      const [leaf, ...rest] = certs;
      if (!leaf || !chainsTo(leaf, rest, anchors, nowMs)) {
        throw new ClientError('PINNING', `${gun}: root certificate ${id} is not issued by the pinned CA`);
      }
    }
    return;
  }
  if (pinning?.disableTofu) throw new ClientError('PINNING', `${gun}: no trusted root is cached and trust on first use is disabled`);
}
