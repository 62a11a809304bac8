/**
 * Role signature thresholds (notary `tuf/signed/verify.go`, §2.8 of notary-protocol.md).
 */
import { decodeBase64 } from './base64.js';
import type { VerifierKey } from './keys.js';

export interface SignatureEntry {
  keyid: string;
  method: string;
  sig: string; // standard base64
}

/**
 * The number of distinct keys with a valid signature over `message` (the canonical bytes of
 * `signed`). Only keys in `keys` (the role's key IDs → keys) count. Counting is by key identity
 * rather than key ID, so neither a repeated signature nor the same key material listed under
 * two IDs (say as `ecdsa` and as the `ecdsa-x509` certificate of that key) can add up to a
 * threshold on its own. Malformed entries are skipped, never thrown on.
 */
export function countValidSignatures(message: Buffer, signatures: SignatureEntry[], keys: Map<string, VerifierKey>): number {
  const valid = new Set<string>();
  if (!Array.isArray(signatures)) return 0;
  for (const entry of signatures) {
    if (typeof entry !== 'object' || entry === null || typeof entry.keyid !== 'string') continue;
    const key = keys.get(entry.keyid);
    if (!key || valid.has(key.identity)) continue;
    const sig = decodeBase64(entry.sig);
    if (sig && key.verify(entry.method, message, sig)) valid.add(key.identity);
  }
  return valid.size;
}

/** Whether at least `threshold` distinct keys signed. A threshold below 1 never passes. */
export function meetsThreshold(message: Buffer, signatures: SignatureEntry[], keys: Map<string, VerifierKey>, threshold: number): boolean {
  if (!Number.isInteger(threshold) || threshold < 1) return false;
  if (!Array.isArray(signatures) || signatures.length === 0) return false;
  return countValidSignatures(message, signatures, keys) >= threshold;
}
