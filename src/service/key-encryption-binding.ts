/**
 * Which key-encryption key (KEK) a store's server keys are under, recorded once as a
 * fingerprint (`store_settings.kek_id`), and checked at every start: a process configured with
 * another KEK would otherwise start, answer 500 to every publish (it cannot decrypt the keys),
 * and create new repositories' keys under its own KEK, leaving the store under two.
 */
import type { KeyEncryptionKey } from '../signing/key-encryption.js';
import type { Stores } from '../storage/stores.js';
import { SignetError } from '../tuf/core/signet-error.js';

export class KeyEncryptionKeyMismatchError extends SignetError {
  override name = 'KeyEncryptionKeyMismatchError';
  readonly code = 'KEK_MISMATCH';
}

const describeCounts = (counts: Map<string, number>) => [...counts].map(([id, n]) => `${n} under fingerprint ${id}`).join(', ');

/**
 * Record the store's KEK on first use (the one its existing keys are under, else the configured
 * one), then refuse unless the configured KEK is it and every server key is under it.
 */
export async function bindKeyEncryptionKey(stores: Stores, kek: KeyEncryptionKey): Promise<void> {
  // Server keys and server-held signers' keys are under the same KEK.
  const counts = await stores.serverKeys.countPerKek();
  for (const [id, n] of await stores.signers.countPerKek()) counts.set(id, (counts.get(id) ?? 0) + n);
  let recorded = await stores.settings.read('kek_id');
  if (recorded === null) {
    if (counts.size > 1) {
      throw new KeyEncryptionKeyMismatchError(
        `the server keys in this store are encrypted under ${counts.size} different key-encryption keys (${describeCounts(counts)}): ` +
          're-encrypt them under one with `signet keys rekey --new-key-file FILE --old-key-file FILE…`',
      );
    }
    // A store from before the fingerprint was recorded adopts the KEK its keys are under.
    recorded = await stores.settings.init('kek_id', counts.size === 1 ? [...counts.keys()][0]! : kek.id);
  }
  if (recorded !== kek.id) {
    throw new KeyEncryptionKeyMismatchError(
      `${kek.source} (fingerprint ${kek.id}) is not the key-encryption key of this store (fingerprint ${recorded}): ` +
        'configure the key the store was created with, or re-encrypt its keys with `signet keys rekey`',
    );
  }
  const strays = new Map([...counts].filter(([id]) => id !== recorded));
  if (strays.size > 0) {
    throw new KeyEncryptionKeyMismatchError(
      `some server keys are not under this store's key-encryption key (fingerprint ${recorded}): ${describeCounts(strays)}; ` +
        're-encrypt them with `signet keys rekey --new-key-file FILE --old-key-file FILE…`',
    );
  }
}
