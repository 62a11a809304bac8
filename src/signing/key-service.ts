/**
 * The server's keys per repository: hands out public keys (creating them on demand), and
 * decrypts private keys for signing. Decrypted keys are cached in memory by key ID; they never
 * leave the process and are never logged.
 */
import type { DocumentSigner, ServerSigningKey } from '../tuf/notary/generate.js';
import type { ServerKeyRole, ServerKeyRow, ServerKeyStore } from '../storage/server-key-store.js';
import type { SignerKeyRow } from '../storage/signer-store.js';
import type { Stores } from '../storage/stores.js';
import { KeyEncryptionError, type KeyEncryptionKey } from './key-encryption.js';
import { generateServerKey, signingKey, type ServerKeyAlgorithm } from './server-key.js';
import { Pkcs11Error, type Pkcs11Token } from './pkcs11-keys.js';
import { generateSignerKey, generateTokenSignerKey, signerSigningKey, tokenSigningKey } from './signer-key.js';

export interface PublicServerKey {
  keyId: string;
  keytype: string;
  publicKey: string;
}

/** Associated data binding a key's ciphertext to its row (key ID, repository, role). */
export function keyAssociatedData(row: { keyId: string; gun: string; role: string }): string {
  return `${row.keyId}|${row.gun}|${row.role}`;
}

/** Associated data binding a signer key's ciphertext to its row (key ID, repository, signer). */
export function signerKeyAssociatedData(row: { keyId: string; gun: string; name: string }): string {
  return `signer|${row.keyId}|${row.gun}|${row.name}`;
}

export interface PublicSignerKey {
  keyId: string;
  keytype: string;
  /** base64 of the certificate PEM, as delegations list it. */
  publicKey: string;
  certificatePem: string;
}

export class KeyService {
  private readonly signers = new Map<string, ServerSigningKey>();
  private readonly signerKeys = new Map<string, DocumentSigner & { keyId: string }>();

  /**
   * `token`: where new signer keys are generated and kept (SIGNET_PKCS11_MODULE); without one
   * they are sealed under the KEK in their rows.
   */
  constructor(
    private readonly kek: KeyEncryptionKey,
    private readonly algorithm: ServerKeyAlgorithm,
    readonly token: Pkcs11Token | null = null,
  ) {}

  /** Where new signer keys go. */
  get signerKeyBackend(): 'kek' | 'pkcs11' {
    return this.token ? 'pkcs11' : 'kek';
  }

  /** Create and persist a new key for (gun, role). */
  async create(stores: Stores, gun: string, role: ServerKeyRole): Promise<PublicServerKey> {
    // After `signet keys rekey` the store is under another KEK: a process still holding the old
    // one must not add a key under it (the share lock waits for a rekey in progress).
    const storeKek = await stores.settings.read('kek_id', 'share');
    if (storeKek !== null && storeKek !== this.kek.id) {
      throw new KeyEncryptionError(`the store's key-encryption key is now fingerprint ${storeKek} (re-keyed): restart this process with that key`);
    }
    const key = generateServerKey(this.algorithm);
    const row = { keyId: key.keyId, gun, role, keytype: key.keytype, publicKey: key.publicKey };
    await stores.serverKeys.insert({ ...row, privateKey: this.kek.encrypt(key.privateDer, keyAssociatedData(row)), kekId: this.kek.id });
    key.privateDer.fill(0);
    return row;
  }

  /** Create and persist a new key for server-held signer `name` of `gun` (the active one). */
  async createSignerKey(stores: Stores, gun: string, name: string, nowMs: number): Promise<PublicSignerKey> {
    if (this.token) {
      // Generated in the token, which keeps the private key: the row has the public key and the objects' CKA_ID.
      const key = generateTokenSignerKey(this.token, gun, name, nowMs);
      try {
        await stores.signers.insertKey(
          { keyId: key.keyId, gun, name, keytype: key.keytype, publicKey: key.publicKey, backend: 'pkcs11', pkcs11Id: key.pkcs11Id },
          new Date(nowMs),
        );
      } catch (e) {
        this.token.destroy(key.pkcs11Id);
        throw e;
      }
      return { keyId: key.keyId, keytype: key.keytype, publicKey: key.publicKey, certificatePem: key.certificatePem };
    }
    await this.checkStoreKek(stores);
    const key = generateSignerKey(name, nowMs);
    const row = { keyId: key.keyId, gun, name, keytype: key.keytype, publicKey: key.publicKey };
    await stores.signers.insertKey({ ...row, privateKey: this.kek.encrypt(key.privateDer, signerKeyAssociatedData(row)), kekId: this.kek.id }, new Date(nowMs));
    key.privateDer.fill(0);
    return { keyId: key.keyId, keytype: key.keytype, publicKey: key.publicKey, certificatePem: key.certificatePem };
  }

  /** A signer's stored key, ready to sign. */
  signerKey(row: SignerKeyRow): DocumentSigner & { keyId: string } {
    let signer = this.signerKeys.get(row.keyId);
    if (!signer && row.backend === 'pkcs11') {
      if (!this.token || row.pkcs11Id === null) {
        throw new Pkcs11Error('PKCS11_FAILED', `signer key ${row.keyId} is held in a PKCS#11 token: configure SIGNET_PKCS11_MODULE to sign with it`);
      }
      signer = tokenSigningKey(this.token, row.keyId, row.pkcs11Id);
      this.signerKeys.set(row.keyId, signer);
    }
    if (!signer) {
      if (row.kekId !== this.kek.id || row.privateKey === null) {
        throw new KeyEncryptionError(
          `signer key ${row.keyId} is encrypted under another key-encryption key (fingerprint ${row.kekId}): restart this process with the store's key`,
        );
      }
      const der = this.kek.decrypt(row.privateKey, signerKeyAssociatedData(row));
      signer = signerSigningKey(row.keyId, der);
      der.fill(0);
      this.signerKeys.set(row.keyId, signer);
    }
    return signer;
  }

  /** Drop decrypted signer keys whose rows were removed. */
  forgetSignerKeys(keyIds: readonly string[]): void {
    for (const id of keyIds) this.signerKeys.delete(id);
  }

  /**
   * Remove from the token the objects of signer keys whose rows were removed (a committed
   * change: call it after the transaction). Best effort: returns the key IDs it could not remove.
   */
  destroyTokenKeys(keyIds: readonly string[]): string[] {
    if (!this.token) return [];
    const failed: string[] = [];
    for (const id of keyIds) {
      this.signerKeys.delete(id);
      try {
        this.token.destroy(id);
      } catch {
        failed.push(id);
      }
    }
    return failed;
  }

  /** Log out of the token, if one is open. */
  close(): void {
    this.token?.close();
  }

  private async checkStoreKek(stores: Stores): Promise<void> {
    const storeKek = await stores.settings.read('kek_id', 'share');
    if (storeKek !== null && storeKek !== this.kek.id) {
      throw new KeyEncryptionError(`the store's key-encryption key is now fingerprint ${storeKek} (re-keyed): restart this process with that key`);
    }
  }

  /** An unused key for (gun, role) if one is pending, else a new one. */
  async pendingOrCreate(stores: Stores, gun: string, role: ServerKeyRole): Promise<PublicServerKey> {
    return (await stores.serverKeys.pending(gun, role)) ?? this.create(stores, gun, role);
  }

  /** Every key the server holds for a repository, ready to sign. */
  async signingKeys(stores: Stores, gun: string): Promise<ServerSigningKey[]> {
    const rows = await stores.serverKeys.ofRepository(gun);
    return rows.map((row) => this.signer(row));
  }

  /**
   * Whether stored keys can be used: one key is decrypted as a probe. Null when fine (or no key
   * exists yet), else the reason.
   */
  async accessProblem(serverKeys: ServerKeyStore): Promise<string | null> {
    const row = await serverKeys.newest();
    if (!row) return null;
    if (row.kekId !== this.kek.id) return `keys are encrypted under another key-encryption key (${row.kekId})`;
    try {
      this.kek.decrypt(row.privateKey, keyAssociatedData(row)).fill(0);
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }

  private signer(row: ServerKeyRow): ServerSigningKey {
    let signer = this.signers.get(row.keyId);
    if (!signer) {
      if (row.kekId !== this.kek.id) {
        throw new KeyEncryptionError(
          `server key ${row.keyId} is encrypted under another key-encryption key (fingerprint ${row.kekId}): restart this process with the store's key`,
        );
      }
      const der = this.kek.decrypt(row.privateKey, keyAssociatedData(row));
      signer = signingKey(row.keyId, row.role, row.keytype, der);
      der.fill(0);
      this.signers.set(row.keyId, signer);
    }
    return signer;
  }
}
