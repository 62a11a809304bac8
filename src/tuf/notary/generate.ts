/**
 * Signed documents: the snapshot and timestamp the server writes with the keys it holds, and the
 * files a client signs with its own keys, all
 * serialised exactly as notary does (`{"signed":<canonical>,"signatures":[…]}`).
 */
import { canonicalJson } from '../core/canonical-json.js';
import { fileMeta, type FileMeta } from '../core/hashes.js';
import { formatRfc3339 } from '../core/time.js';
import type { SignatureEntry } from '../core/signatures.js';

/** Anything that signs a canonical message: a server-held key, or a client's key. */
export interface DocumentSigner {
  sign(message: Buffer): SignatureEntry;
}

/** A private key the server holds for one repository role (snapshot or timestamp). */
export interface ServerSigningKey extends DocumentSigner {
  readonly keyId: string;
  readonly role: 'snapshot' | 'timestamp';
}

/** `{"signed":<canonical JSON>,"signatures":[…]}`, signed by every key given, in order. */
export function signDocument(signed: object, keys: readonly DocumentSigner[]): Buffer {
  const message = canonicalJson(signed);
  const signatures = keys.map((key) => {
    const s = key.sign(message);
    return `{"keyid":${JSON.stringify(s.keyid)},"method":${JSON.stringify(s.method)},"sig":${JSON.stringify(s.sig)}}`;
  });
  return Buffer.concat([Buffer.from('{"signed":'), message, Buffer.from(`,"signatures":[${signatures.join(',')}]}`)]);
}

export function buildSnapshot(previousMeta: Record<string, unknown> | null, changed: ReadonlyMap<string, Buffer>, version: number, expiresMs: number): object {
  const meta: Record<string, unknown> = { ...previousMeta };
  for (const [role, bytes] of changed) meta[role] = fileMeta(bytes);
  return { _type: 'Snapshot', expires: formatRfc3339(expiresMs), meta, version };
}

export function buildTimestamp(snapshot: Buffer | FileMeta, version: number, expiresMs: number): object {
  const meta = Buffer.isBuffer(snapshot) ? fileMeta(snapshot) : snapshot;
  return { _type: 'Timestamp', expires: formatRfc3339(expiresMs), meta: { snapshot: meta }, version };
}
