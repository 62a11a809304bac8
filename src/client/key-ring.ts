/**
 * The private keys a client can sign with: the trust directory's key store, unlocked on first
 * use with a passphrase from the passphrase source, and held in memory for the rest of the
 * operation. Keys are matched by canonical key ID (notary's file names), which is what
 * metadata's TUF IDs map to through `canonicalKeyId`.
 */
import { canonicalKeyId } from '../tuf/core/keys.js';
import type { MetadataKey } from '../tuf/notary/metadata.js';
import { ClientError } from './errors.js';
import { generateSigningKey, type ClientKeyType, type KeyStore, type PassphraseSource, type SigningKey } from './keys/index.js';

export class KeyRing {
  private readonly unlocked = new Map<string, SigningKey>();

  constructor(
    readonly store: KeyStore,
    private readonly passphrases: PassphraseSource,
  ) {}

  /** Canonical ID of a key as listed in metadata (null when it cannot be read). */
  static canonicalId(key: MetadataKey): string | null {
    try {
      return canonicalKeyId(key.keytype, key.keyval.public);
    } catch {
      return null;
    }
  }

  holds(canonicalId: string): boolean {
    return this.unlocked.has(canonicalId) || this.store.has(canonicalId);
  }

  /** The TUF IDs among `keyIds` whose private keys are held. */
  heldAmong(keyIds: readonly string[], keys: Record<string, MetadataKey>): string[] {
    return keyIds.filter((id) => {
      const key = keys[id];
      const canonical = key ? KeyRing.canonicalId(key) : null;
      return canonical !== null && this.holds(canonical);
    });
  }

  /** Unlock a held key (asks for its passphrase once). */
  async unlock(canonicalId: string): Promise<SigningKey> {
    const open = this.unlocked.get(canonicalId);
    if (open) return open;
    if (!this.store.has(canonicalId)) throw new ClientError('NO_SIGNING_KEY', `no private key ${canonicalId} in ${this.store.trustDir}`);
    const key = await this.store.unlock(canonicalId, this.passphrases);
    this.unlocked.set(canonicalId, key);
    return key;
  }

  /** Create and store a new key for `role` (of `gun`, except root keys which docker shares). */
  async create(role: string, gun: string | undefined, keytype: ClientKeyType = 'ecdsa'): Promise<SigningKey> {
    const key = generateSigningKey(keytype);
    const passphrase = await this.passphrases.get(role, key.keyId, { create: true });
    this.store.save(key, gun === undefined ? { role } : { role, gun }, passphrase);
    const stored = this.store.load(key.keyId, passphrase);
    this.unlocked.set(key.keyId, stored);
    return stored;
  }

  /** The first held key (by ID) whose role header is `role`, as docker picks its root key. */
  firstWithRole(role: string, gun?: string): string | null {
    const ids = this.store
      .list()
      .filter((k) => k.role === role && (gun === undefined || k.gun === undefined || k.gun === gun))
      .map((k) => k.keyId)
      .sort();
    return ids[0] ?? null;
  }
}
