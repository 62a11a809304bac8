/**
 * Encryption at rest of server-held private keys: AES-256-GCM under a key-encryption key (KEK)
 * given in configuration or created once in the data directory with 0600 rights. Each
 * ciphertext is bound to its key ID (additional authenticated data), so rows cannot be swapped.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SignetError } from '../tuf/core/signet-error.js';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export class KeyEncryptionError extends SignetError {
  readonly code = 'KEY_ENCRYPTION';
  override name = 'KeyEncryptionError';
}

export class KeyEncryptionKey {
  /** Names the KEK without revealing it: stored beside each encrypted key. */
  readonly id: string;

  /**
   * @param source where the key came from (a setting or a file), for messages; never the key.
   */
  constructor(
    private readonly key: Buffer,
    readonly source = 'the key-encryption key',
  ) {
    if (key.length !== 32) throw new KeyEncryptionError('the key-encryption key must be 32 bytes');
    this.id = createHash('sha256').update('signet-kek').update(key).digest('hex').slice(0, 16);
  }

  /** The key itself, for writing it to its file; never log or return it. */
  exportKey(): Buffer {
    return Buffer.from(this.key);
  }

  encrypt(plaintext: Buffer, associated: string): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(Buffer.from(associated, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([nonce, body, cipher.getAuthTag()]);
  }

  decrypt(sealed: Buffer, associated: string): Buffer {
    if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new KeyEncryptionError('encrypted key is truncated');
    const decipher = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(associated, 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new KeyEncryptionError('a server key could not be decrypted: wrong key-encryption key or corrupted row');
    }
  }
}

/** Decode a configured KEK: 32 bytes as 64 hex characters or base64. */
export function parseKeyEncryptionKey(text: string): Buffer | null {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const b = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
    return b.length === 32 ? b : null;
  }
  return null;
}

export const KEK_FILE = 'signet-kek';

/**
 * The configured KEK, or the one in `<dataDir>/signet-kek`, created on first start. `setting`
 * is what messages call the configured one (the caller's setting name).
 */
export function loadKeyEncryptionKey(configured: string | undefined, dataDir: string, setting = 'the configured key-encryption key'): KeyEncryptionKey {
  if (configured) {
    const key = parseKeyEncryptionKey(configured);
    if (!key) throw new KeyEncryptionError(`${setting} must be 32 bytes as 64 hex characters or base64`);
    return new KeyEncryptionKey(key, setting);
  }
  const file = path.join(dataDir, KEK_FILE);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    // 'wx' refuses to overwrite a KEK another process created in the meantime.
    try {
      writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  const key = parseKeyEncryptionKey(readFileSync(file, 'utf8'));
  if (!key) throw new KeyEncryptionError(`${file} does not hold a 32-byte key`);
  return new KeyEncryptionKey(key, file);
}

/** A KEK from a file holding 32 bytes as 64 hex characters or base64 (as `signet-kek`). */
export function readKeyEncryptionKeyFile(file: string): KeyEncryptionKey {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new KeyEncryptionError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const key = parseKeyEncryptionKey(text);
  if (!key) throw new KeyEncryptionError(`${file} does not hold a 32-byte key (64 hex characters or base64)`);
  return new KeyEncryptionKey(key, file);
}

/** Replace the KEK file with `key`, atomically (a crash leaves the old file or the new one). */
export function replaceKeyEncryptionKeyFile(file: string, key: Buffer): void {
  const temporary = `${file}.${process.pid}.new`;
  writeFileSync(temporary, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  renameSync(temporary, file);
}
