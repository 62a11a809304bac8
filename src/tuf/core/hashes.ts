import { createHash } from 'node:crypto';

/** A `meta` entry in snapshot/timestamp: length and digests of the exact stored bytes. */
export interface FileMeta {
  hashes: { sha256: string; sha512: string };
  length: number;
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function fileMeta(bytes: Buffer): FileMeta {
  return {
    hashes: {
      sha256: createHash('sha256').update(bytes).digest('base64'),
      sha512: createHash('sha512').update(bytes).digest('base64'),
    },
    length: bytes.length,
  };
}

const DIGEST_BYTES: Record<string, number> = { sha256: 32, sha512: 64 };

/**
 * notary's `CheckHashes`: every listed sha256/sha512 must match and at least one must be
 * listed. Returns a reason when the bytes do not match, or null.
 */
export function checkHashes(bytes: Buffer, hashes: Record<string, string>): string | null {
  let checked = 0;
  for (const [alg, size] of Object.entries(DIGEST_BYTES)) {
    const expected = hashes[alg];
    if (expected === undefined) continue;
    const digest = Buffer.from(expected, 'base64');
    if (digest.length !== size) return `${alg} digest has the wrong length`;
    if (!createHash(alg).update(bytes).digest().equals(digest)) return `${alg} checksum mismatch`;
    checked++;
  }
  return checked === 0 ? 'no supported checksum (sha256 or sha512) listed' : null;
}

/** Base64 sha256 from a meta entry as lower-case hex (the index of `<role>.<hex>.json`). */
export function metaSha256Hex(hashes: Record<string, string> | undefined): string | null {
  const b64 = hashes?.sha256;
  if (!b64) return null;
  const digest = Buffer.from(b64, 'base64');
  return digest.length === 32 ? digest.toString('hex') : null;
}
