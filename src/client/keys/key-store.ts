/**
 * The private key directory that `docker trust`, the `notary` CLI and Signet share:
 * `<trustDir>/private/<keyID>.key` (trustDir is `$DOCKER_CONFIG/trust` or `~/.docker/trust` for
 * docker, `~/.notary` for notary), files 0600 in a 0700 directory, each an encrypted PKCS#8 PEM
 * with `role` and `gun` headers (see pkcs8.ts). Listing reads only the headers, as notary does,
 * so it needs no passphrase.
 */
import { mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { KeyStoreError } from './errors.js';
import { decodePrivateKeyPem, encodeNotaryPrivateKeyPem, readPrivateKeyHeaders, type EncryptionParameters } from './pkcs8.js';
import type { PassphraseSource } from './passphrase.js';
import { keyFromPrivate, privateKeyOf, type KeyMaterial, type SigningKey } from './signing-key.js';

export interface KeyInfo {
  keyId: string;
  role: string;
  gun?: string;
  path: string;
}

const KEY_EXTENSION = '.key';
/** Key IDs are file names: no separators, no leading dot. */
const SAFE_KEY_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
/** The roles whose keys belong to one repository and carry its GUN (notary's AddKey drops it for root and delegation keys). */
const GUN_ROLES = new Set(['targets', 'snapshot', 'timestamp']);

/** docker's trust directory: `$DOCKER_CONFIG/trust`, else `~/.docker/trust`. */
export function dockerTrustDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env['DOCKER_CONFIG'] || path.join(os.homedir(), '.docker'), 'trust');
}

/** notary's default trust directory, `~/.notary`. */
export function notaryTrustDir(): string {
  return path.join(os.homedir(), '.notary');
}

const errnoCode = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

export class KeyStore {
  readonly privateDir: string;

  constructor(readonly trustDir: string) {
    this.privateDir = path.join(trustDir, 'private');
  }

  private pathOf(keyId: string): string {
    if (typeof keyId !== 'string' || !SAFE_KEY_ID.test(keyId)) throw new KeyStoreError('KEY_NOT_FOUND', `${JSON.stringify(keyId)} is not a key ID`);
    return path.join(this.privateDir, keyId + KEY_EXTENSION);
  }

  private read(keyId: string): { file: string; text: string } {
    const file = this.pathOf(keyId);
    try {
      return { file, text: readFileSync(file, 'latin1') };
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'EISDIR') throw new KeyStoreError('KEY_NOT_FOUND', `no key ${keyId} in ${this.privateDir}`);
      throw new KeyStoreError('KEY_UNREADABLE', `${file}: ${errnoCode(err) ?? 'cannot be read'}`, { cause: err });
    }
  }

  /** The keys in the directory, by key ID, from their headers. Files that are not private keys are skipped (notary logs and skips them too). */
  list(): KeyInfo[] {
    let names: string[];
    try {
      names = readdirSync(this.privateDir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw new KeyStoreError('KEY_UNREADABLE', `${this.privateDir}: ${errnoCode(err) ?? 'cannot be listed'}`, { cause: err });
    }
    const out: KeyInfo[] = [];
    for (const name of names.sort()) {
      if (!name.endsWith(KEY_EXTENSION)) continue;
      const keyId = name.slice(0, -KEY_EXTENSION.length);
      if (!SAFE_KEY_ID.test(keyId)) continue;
      const file = path.join(this.privateDir, name);
      try {
        const headers = readPrivateKeyHeaders(readFileSync(file, 'latin1'), file);
        out.push({ keyId, role: headers.role ?? '', ...(headers.gun ? { gun: headers.gun } : {}), path: file });
      } catch {
        continue;
      }
    }
    return out;
  }

  has(keyId: string): boolean {
    return this.list().some((k) => k.keyId === keyId);
  }

  /** The keys of `role` (and, if given, `gun`). */
  findByRole(role: string, gun?: string): KeyInfo[] {
    return this.list().filter((k) => k.role === role && (gun === undefined || k.gun === gun));
  }

  /**
   * The key `keyId`, decrypted with `passphrase` (ignored for an unencrypted file). Throws
   * KEY_NOT_FOUND, PASSPHRASE_REQUIRED, PASSPHRASE_WRONG (naming the file), KEY_UNREADABLE
   * (also when the file holds a different key than its name says), KEY_UNSUPPORTED.
   */
  load(keyId: string, passphrase?: string): SigningKey {
    const { file, text } = this.read(keyId);
    const decoded = decodePrivateKeyPem(text, passphrase, file);
    if (decoded.key.keyId !== keyId) throw new KeyStoreError('KEY_UNREADABLE', `${file} holds the key ${decoded.key.keyId}, not ${keyId}`);
    return keyFromPrivate(privateKeyOf(decoded.key), file, decoded.role ?? '', decoded.gun);
  }

  /**
   * load() with the passphrase from `source`, asked for the file's role. A wrong answer is asked
   * again (a prompt may get a better one) up to three times; an unchanged answer is not retried.
   */
  async unlock(keyId: string, source: PassphraseSource): Promise<SigningKey> {
    const { file, text } = this.read(keyId);
    const headers = readPrivateKeyHeaders(text, file);
    if (!headers.encrypted) return this.load(keyId);
    let previous: string | undefined;
    for (let attempt = 0; ; attempt++) {
      const passphrase = await source.get(headers.role ?? '', keyId, { create: false, attempt });
      try {
        return this.load(keyId, passphrase);
      } catch (err) {
        if (!(err instanceof KeyStoreError) || err.code !== 'PASSPHRASE_WRONG' || attempt >= 2 || passphrase === previous) throw err;
        previous = passphrase;
      }
    }
  }

  /**
   * Store `key` for `role` (and `gun`, kept only for targets, snapshot and timestamp keys, as
   * notary does), encrypted with `passphrase`, atomically, replacing any file of that ID.
   * Returns the file's path.
   */
  save(key: KeyMaterial, info: { role: string; gun?: string }, passphrase: string, params?: EncryptionParameters): string {
    if (!info.role) throw new KeyStoreError('KEY_ROLE_INVALID', `a key needs a role to be stored`);
    const gun = GUN_ROLES.has(info.role) ? info.gun : undefined;
    if (GUN_ROLES.has(info.role) && !gun) throw new KeyStoreError('KEY_ROLE_INVALID', `a ${info.role} key needs the GUN it belongs to`);
    const pem = encodeNotaryPrivateKeyPem(key, { role: info.role, ...(gun ? { gun } : {}) }, passphrase, params);
    const file = this.pathOf(key.keyId);
    try {
      mkdirSync(this.privateDir, { recursive: true, mode: 0o700 });
      writeFileAtomic(file, pem, 0o600);
    } catch (err) {
      throw new KeyStoreError('KEY_WRITE_FAILED', `cannot write ${file}: ${errnoCode(err) ?? 'write failed'}`, { cause: err });
    }
    return file;
  }

  /** save() with a new-key passphrase from `source`. */
  async saveWith(key: KeyMaterial, info: { role: string; gun?: string }, source: PassphraseSource): Promise<string> {
    return this.save(key, info, await source.get(info.role, key.keyId, { create: true }));
  }

  /** Delete the key file. Throws KEY_NOT_FOUND if there is none. */
  remove(keyId: string): void {
    const file = this.pathOf(keyId);
    try {
      unlinkSync(file);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new KeyStoreError('KEY_NOT_FOUND', `no key ${keyId} in ${this.privateDir}`);
      throw new KeyStoreError('KEY_WRITE_FAILED', `cannot remove ${file}: ${errnoCode(err) ?? 'unlink failed'}`, { cause: err });
    }
  }
}
