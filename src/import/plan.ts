/**
 * The plan of an import: which keys can be imported (their passphrases known, their roles held by
 * Signet), and for each repository its files checked (verify.ts) and its keys decrypted,
 * converted and re-encrypted under Signet's key-encryption key, ready for the writer.
 */
import type { ServiceContext } from '../service/context.js';
import { keyAssociatedData } from '../signing/key-service.js';
import type { KeyEncryptionKey } from '../signing/key-encryption.js';
import type { Stores } from '../storage/stores.js';
import { tufKeyId } from '../tuf/core/keys.js';
import { readSigned, rootSchema, parseSignedFile } from '../tuf/notary/metadata.js';
import { JweDecryptionError, JweError, decryptPbes2Jwe } from './jwe.js';
import { PrivateKeyError, notaryPrivateKeyToPkcs8 } from './private-key.js';
import type { ImportProgress, ImportReport, KeyProblem } from './report.js';
import type { ServerSource, SignerSource, SourceKey, SourceKeyInfo } from './source.js';
import type { CheckedFile } from './verify.js';

export interface ImportOptions {
  server: ServerSource;
  signer?: SignerSource | undefined;
  /** The passphrase of a notary-signer alias, if known. */
  passphrase: (alias: string) => string | undefined;
  gun?: string | undefined;
  dryRun: boolean;
  /** Where the data came from, for the audit log (no credentials): `host:port/database`. */
  sourceLabel?: string | undefined;
  /** Repositories checked and written at the same time (default 4). */
  concurrency?: number | undefined;
  onProgress?: (progress: ImportProgress) => void;
}

export interface ImportTarget {
  ctx: ServiceContext;
  kek: KeyEncryptionKey;
}

/** notary-signer reads the passphrase of alias X from env NOTARY_SIGNER_<X upper-cased, . → _>. */
export function passphraseEnvName(alias: string): string {
  return `NOTARY_SIGNER_${alias.toUpperCase().replace(/\./g, '_')}`;
}

export const SERVER_KEY_ROLES = new Set(['timestamp', 'snapshot']);

export interface PreparedKey {
  keyId: string;
  gun: string;
  role: 'timestamp' | 'snapshot';
  keytype: string;
  publicKey: string;
  sealed: Buffer;
  kekId: string;
  createdAt: string | null;
  lastUsed: string | null;
  alias: string;
}

export interface Prepared {
  gun: string;
  checked: CheckedFile[];
  keys: PreparedKey[];
  /** Timestamp key IDs of the newest accepted root, if any. */
  timestampKeyIds: string[] | null;
}

export function problemOf(info: SourceKeyInfo): Omit<KeyProblem, 'reason'> {
  return { gun: info.gun, role: info.role, keyId: info.keyId, alias: info.alias };
}

/** Timestamp key IDs of the highest-version root that was not refused. */
export function newestRootTimestampKeys(checked: readonly CheckedFile[]): string[] | null {
  let best: CheckedFile | null = null;
  for (const c of checked) {
    if (c.row.role === 'root' && c.verdict !== 'refused' && (!best || c.row.version > best.row.version)) best = c;
  }
  if (!best) return null;
  try {
    const root = readSigned(rootSchema, parseSignedFile('root', best.row.data));
    return root.ok ? (root.value.roles['timestamp']?.keyids ?? []) : null;
  } catch {
    return null;
  }
}

/** Decrypt, convert, check and re-encrypt one repository's keys. */
export async function prepareKeys(
  signer: SignerSource,
  infos: readonly SourceKeyInfo[],
  options: ImportOptions,
  target: ImportTarget,
  report: ImportReport,
): Promise<PreparedKey[]> {
  const rows = await signer.keys(infos.map((i) => i.id));
  const results = await Promise.all(
    rows.map(async (row): Promise<PreparedKey | null> => {
      const fail = (reason: string) => {
        report.keys.failed++;
        report.keyProblems.push({ gun: row.gun, role: row.role, keyId: row.keyId, alias: row.alias, reason });
        return null;
      };
      let plaintext: Buffer;
      try {
        plaintext = await decryptPbes2Jwe(row.privateJwe, options.passphrase(row.alias)!);
      } catch (e) {
        if (e instanceof JweDecryptionError) return fail(`cannot decrypt with the passphrase of alias ${row.alias}: ${e.message}`);
        if (e instanceof JweError) return fail(`unreadable encrypted key: ${e.message}`);
        throw e;
      }
      try {
        return convertKey(row, plaintext, target);
      } catch (e) {
        if (e instanceof PrivateKeyError) return fail(e.message);
        throw e;
      } finally {
        plaintext.fill(0);
      }
    }),
  );
  return results.filter((k): k is PreparedKey => k !== null);
}

function convertKey(row: SourceKey, plaintext: Buffer, target: ImportTarget): PreparedKey {
  const converted = notaryPrivateKeyToPkcs8(row.algorithm, plaintext);
  try {
    if (!converted.publicBytes.equals(row.publicBytes)) {
      throw new PrivateKeyError('the private key does not belong to the public key stored beside it');
    }
    const publicKey = converted.publicBytes.toString('base64');
    const keyId = tufKeyId(converted.keytype, publicKey);
    if (keyId !== row.keyId) throw new PrivateKeyError(`the key's ID is ${keyId}, not the stored ${row.keyId}`);
    const identity = { keyId, gun: row.gun, role: row.role };
    return {
      keyId,
      gun: row.gun,
      role: row.role as PreparedKey['role'],
      keytype: converted.keytype,
      publicKey,
      sealed: target.kek.encrypt(converted.pkcs8, keyAssociatedData(identity)),
      kekId: target.kek.id,
      createdAt: row.createdAt,
      lastUsed: row.lastUsed,
      alias: row.alias,
    };
  } finally {
    converted.pkcs8.fill(0);
  }
}

export async function presentFiles(stores: Stores, gun: string): Promise<Map<string, string>> {
  return new Map((await stores.metadata.checksumsOf(gun)).map((r) => [`${r.role}\u0000${r.version}`, r.sha256]));
}
