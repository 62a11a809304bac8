/**
 * Decryption of notary-signer's stored private keys: JWE compact serialisation as written by
 * jose2go (`vendor/github.com/dvsekhvalnov/jose2go`), key management `PBES2-HS256+A128KW`
 * (RFC 7518 §4.8: PBKDF2 over the passphrase, salt = UTF-8(alg) ‖ 0x00 ‖ p2s, then AES key
 * wrap, RFC 3394) and content encryption `A256GCM` (additional data = the ASCII of the
 * protected header as it appears in the token).
 *
 * notary-signer only ever writes PBES2-HS256+A128KW with A256GCM; the other PBES2 and GCM sizes
 * cost nothing to accept, so they are. Compression (`zip`) is never used by notary and refused.
 */
import { createDecipheriv, pbkdf2 } from 'node:crypto';
import { promisify } from 'node:util';
import { SignetError } from '../tuf/core/signet-error.js';

const pbkdf2Async = promisify(pbkdf2);

export class JweError extends SignetError {
  readonly code: 'JWE' | 'JWE_DECRYPTION' = 'JWE';
  override name = 'JweError';
}

/** The passphrase does not open the key (or the token was altered). */
export class JweDecryptionError extends JweError {
  override name = 'JweDecryptionError';
  override readonly code = 'JWE_DECRYPTION';
}

const KEY_MANAGEMENT: Record<string, { digest: string; kekBytes: number; wrap: string }> = {
  'PBES2-HS256+A128KW': { digest: 'sha256', kekBytes: 16, wrap: 'id-aes128-wrap' },
  'PBES2-HS384+A192KW': { digest: 'sha384', kekBytes: 24, wrap: 'id-aes192-wrap' },
  'PBES2-HS512+A256KW': { digest: 'sha512', kekBytes: 32, wrap: 'id-aes256-wrap' },
};

const CONTENT: Record<string, { cipher: 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm'; keyBytes: number }> = {
  A128GCM: { cipher: 'aes-128-gcm', keyBytes: 16 },
  A192GCM: { cipher: 'aes-192-gcm', keyBytes: 24 },
  A256GCM: { cipher: 'aes-256-gcm', keyBytes: 32 },
};

/** RFC 3394's default initial value. */
const KEY_WRAP_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');
/** jose2go uses 8192; a row asking for absurd work is refused rather than obeyed. */
const MAX_ITERATIONS = 10_000_000;

function base64url(part: string, what: string): Buffer {
  if (!/^[A-Za-z0-9_-]*$/.test(part) || part.length % 4 === 1) throw new JweError(`JWE ${what} is not base64url`);
  return Buffer.from(part, 'base64url');
}

export interface JweHeader {
  alg: string;
  enc: string;
  p2c: number;
  p2s: string;
}

/** The protected header of a compact JWE, checked for what PBES2 decryption needs. */
export function readJweHeader(token: string): { header: JweHeader; parts: string[] } {
  const parts = token.trim().split('.');
  if (parts.length !== 5) throw new JweError(`not a compact JWE (${parts.length} parts, expected 5)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(base64url(parts[0]!, 'header').toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof JweError) throw e;
    throw new JweError('JWE header is not JSON');
  }
  if (typeof header !== 'object' || header === null) throw new JweError('JWE header is not an object');
  const { alg, enc, p2c, p2s, zip } = header;
  if (typeof alg !== 'string' || !KEY_MANAGEMENT[alg]) throw new JweError(`unsupported JWE key management ${JSON.stringify(alg)}`);
  if (typeof enc !== 'string' || !CONTENT[enc]) throw new JweError(`unsupported JWE content encryption ${JSON.stringify(enc)}`);
  if (zip !== undefined) throw new JweError('compressed JWE payloads are not supported');
  if (typeof p2c !== 'number' || !Number.isInteger(p2c) || p2c < 1 || p2c > MAX_ITERATIONS) {
    throw new JweError('JWE p2c (PBKDF2 iterations) is missing or out of range');
  }
  if (typeof p2s !== 'string' || p2s.length === 0) throw new JweError('JWE p2s (PBKDF2 salt) is missing');
  return { header: { alg, enc, p2c, p2s }, parts };
}

/** Decrypt a notary-signer private key. Throws JweError (format) or JweDecryptionError (wrong passphrase). */
export async function decryptPbes2Jwe(token: string, passphrase: string): Promise<Buffer> {
  const { header, parts } = readJweHeader(token);
  const km = KEY_MANAGEMENT[header.alg]!;
  const content = CONTENT[header.enc]!;
  const encryptedKey = base64url(parts[1]!, 'encrypted key');
  const iv = base64url(parts[2]!, 'initialisation vector');
  const ciphertext = base64url(parts[3]!, 'ciphertext');
  const tag = base64url(parts[4]!, 'authentication tag');
  if (iv.length !== 12) throw new JweError('JWE initialisation vector must be 12 bytes');
  if (tag.length !== 16) throw new JweError('JWE authentication tag must be 16 bytes');
  if (encryptedKey.length !== content.keyBytes + 8) throw new JweError('JWE encrypted key has the wrong length');

  const salt = Buffer.concat([Buffer.from(header.alg, 'utf8'), Buffer.from([0]), base64url(header.p2s, 'p2s')]);
  const kek = await pbkdf2Async(Buffer.from(passphrase, 'utf8'), salt, header.p2c, km.kekBytes, km.digest);
  let cek: Buffer;
  try {
    const unwrap = createDecipheriv(km.wrap, kek, KEY_WRAP_IV);
    cek = Buffer.concat([unwrap.update(encryptedKey), unwrap.final()]);
  } catch {
    // The key wrap's integrity check is what a wrong passphrase trips over.
    throw new JweDecryptionError('wrong passphrase (the content key does not unwrap)');
  } finally {
    kek.fill(0);
  }
  try {
    const gcm = createDecipheriv(content.cipher, cek, iv);
    gcm.setAAD(Buffer.from(parts[0]!, 'ascii'));
    gcm.setAuthTag(tag);
    return Buffer.concat([gcm.update(ciphertext), gcm.final()]);
  } catch {
    throw new JweDecryptionError('the encrypted key fails its authentication check (altered row?)');
  } finally {
    cek.fill(0);
  }
}
