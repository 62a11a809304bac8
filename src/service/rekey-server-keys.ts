/**
 * Re-encrypt every server key under a new key-encryption key, in one transaction: either every
 * key is under the new KEK and the store records it, or nothing changed. Keys already under the
 * new KEK are checked and left, so a run that was interrupted, or a store whose keys ended up
 * under two KEKs, is finished by running it again with the keys it needs.
 */
import { SYSTEM_ACTOR } from '../storage/audit-store.js';
import type { Database } from '../storage/database.js';
import { Stores } from '../storage/stores.js';
import { KeyEncryptionError, type KeyEncryptionKey } from '../signing/key-encryption.js';
import { keyAssociatedData, signerKeyAssociatedData } from '../signing/key-service.js';
import { SignetError } from '../tuf/core/signet-error.js';

export interface RekeyReport {
  /** Every key: server keys and server-held signers' keys. */
  keys: number;
  /** Of which signers' keys. */
  signerKeys: number;
  /** Signers' keys held in a PKCS#11 token: skipped, nothing to re-encrypt. */
  tokenSignerKeys: number;
  reencrypted: number;
  alreadyUnderNewKey: number;
  previousKekId: string | null;
  kekId: string;
}

export class RekeyError extends SignetError {
  override name = 'RekeyError';
  readonly code = 'REKEY_REFUSED';
}

export async function rekeyServerKeys(
  database: Database,
  options: { current: KeyEncryptionKey; old?: KeyEncryptionKey[]; next: KeyEncryptionKey; subject?: string },
): Promise<RekeyReport> {
  const { next } = options;
  const known = new Map<string, KeyEncryptionKey>();
  for (const k of [options.current, ...(options.old ?? []), next]) known.set(k.id, k);
  return new Stores(database.db).transaction(async ({ serverKeys, signers, settings, audit }) => {
    // Row locks: a process creating a key meanwhile waits, then sees the new fingerprint.
    const previous = await settings.read('kek_id', 'update');
    const serverRows = await serverKeys.allForUpdate();
    const signerRows = await signers.allKeysForUpdate();
    // One list of every sealed key, each with its binding and its way back into the store.
    const rows = [
      ...serverRows.map((row) => ({
        ...row,
        what: `server key ${row.keyId} (${row.gun} ${row.role})`,
        associated: keyAssociatedData(row),
        replace: (sealed: Buffer, kekId: string) => serverKeys.replaceEncrypted(row.keyId, sealed, kekId),
      })),
      ...signerRows.map((row) => ({
        ...row,
        what: `signer key ${row.keyId} (${row.gun} signer ${row.name})`,
        associated: signerKeyAssociatedData(row),
        replace: (sealed: Buffer, kekId: string) => signers.replaceEncrypted(row.keyId, sealed, kekId),
      })),
    ];
    const missing = new Map<string, number>();
    for (const row of rows) if (!known.has(row.kekId)) missing.set(row.kekId, (missing.get(row.kekId) ?? 0) + 1);
    if (missing.size > 0) {
      throw new RekeyError(
        `server keys are encrypted under key-encryption keys that were not given (${[...missing].map(([id, n]) => `${n} under fingerprint ${id}`).join(', ')}): ` +
          'pass each with --old-key-file; nothing was changed',
      );
    }
    let reencrypted = 0;
    let already = 0;
    for (const row of rows) {
      const associated = row.associated;
      let plain: Buffer;
      try {
        plain = known.get(row.kekId)!.decrypt(row.privateKey, associated);
      } catch {
        throw new RekeyError(`${row.what} could not be decrypted: its row is corrupted; nothing was changed`);
      }
      try {
        if (row.kekId === next.id) {
          already++;
          continue;
        }
        const sealed = next.encrypt(plain, associated);
        if (!next.decrypt(sealed, associated).equals(plain)) throw new KeyEncryptionError('re-encryption did not round-trip');
        await row.replace(sealed, next.id);
        reencrypted++;
      } finally {
        plain.fill(0);
      }
    }
    // Verify what will be committed: every stored key opens under the new KEK.
    for (const row of await serverKeys.allForUpdate()) {
      if (row.kekId !== next.id) throw new RekeyError(`server key ${row.keyId} is still under fingerprint ${row.kekId}; nothing was changed`);
      next.decrypt(row.privateKey, keyAssociatedData(row)).fill(0);
    }
    for (const row of await signers.allKeysForUpdate()) {
      if (row.kekId !== next.id) throw new RekeyError(`signer key ${row.keyId} is still under fingerprint ${row.kekId}; nothing was changed`);
      next.decrypt(row.privateKey, signerKeyAssociatedData(row)).fill(0);
    }
    await settings.write('kek_id', next.id);
    const report: RekeyReport = {
      keys: rows.length,
      signerKeys: signerRows.length,
      tokenSignerKeys: await signers.countInToken(),
      reencrypted,
      alreadyUnderNewKey: already,
      previousKekId: previous,
      kekId: next.id,
    };
    await audit.append('', 'rekey', { subject: options.subject ?? SYSTEM_ACTOR.subject }, report);
    return report;
  });
}
