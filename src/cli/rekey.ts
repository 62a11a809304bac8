/**
 * `signet keys rekey`: re-encrypt every server key under a new key-encryption key. The new key
 * (and any other old ones) come from files, never from the command line, where every user of
 * the machine could read them. When the store's KEK is the generated `<data dir>/signet-kek`,
 * that file is replaced after the database has committed.
 */
import path from 'node:path';
import { type Config, SETTING_NAMES } from '../config.js';
import type { Args } from './args.js';
import { rekeyServerKeys } from '../service/rekey-server-keys.js';
import { KEK_FILE, loadKeyEncryptionKey, readKeyEncryptionKeyFile, replaceKeyEncryptionKeyFile } from '../signing/key-encryption.js';
import { openDatabase } from '../storage/database.js';
import { migrate } from '../storage/migrate.js';

export const REKEY_USAGE = `usage: signet keys rekey --new-key-file FILE [--old-key-file FILE]... [--json]

Re-encrypts every server key (server-held signers' keys included) under the key-encryption key in FILE (32 bytes as 64 hex
characters or base64, as \`openssl rand -hex 32\` writes), in one transaction, and records it as
the store's key. Keys under the configured key (SIGNET_KEY_ENCRYPTION_KEY or <data dir>/signet-kek)
or under a key given with --old-key-file are re-encrypted; keys already under the new key are
checked and left, so an interrupted or partial run is finished by running it again.
Stop every Signet process using the store first; start them again with the new key.`;

/** Run `signet keys rekey` with its parsed arguments (see admin.ts for the command's spec). */
export async function rekeyCommand(config: Config, args: Args): Promise<number> {
  const values = { 'new-key-file': args.string('new-key-file')!, 'old-key-file': args.strings('old-key-file'), json: args.flag('json') };
  const next = readKeyEncryptionKeyFile(values['new-key-file']);
  const old = values['old-key-file'].map(readKeyEncryptionKeyFile);
  const current = loadKeyEncryptionKey(config.SIGNET_KEY_ENCRYPTION_KEY, config.SIGNET_DATA_DIR, SETTING_NAMES.kek);
  const database = await openDatabase({
    url: config.DATABASE_URL,
    dataDir: config.SIGNET_DATA_DIR,
    connectRetrySeconds: config.SIGNET_DB_CONNECT_TIMEOUT,
    names: SETTING_NAMES.database,
  });
  let report;
  try {
    await migrate(database);
    report = await rekeyServerKeys(database, { current, old, next, subject: `cli:${process.env['USER'] ?? 'admin'}` });
  } finally {
    await database.close();
  }
  const kekFile = config.SIGNET_KEY_ENCRYPTION_KEY ? null : path.join(config.SIGNET_DATA_DIR, KEK_FILE);
  if (kekFile && current.id !== next.id) replaceKeyEncryptionKeyFile(kekFile, next.exportKey());
  if (values.json) console.log(JSON.stringify({ ...report, kekFile }, null, 2));
  else {
    console.log(
      `${report.keys} server keys${report.signerKeys > 0 ? ` (${report.signerKeys} of them signers' keys)` : ''}: ${report.reencrypted} re-encrypted, ${report.alreadyUnderNewKey} already under the new key`,
    );
    if (report.tokenSignerKeys > 0) {
      console.log(`${report.tokenSignerKeys} signer keys held in a PKCS#11 token skipped: the token keeps them, nothing to re-encrypt`);
    }
    console.log(`the store's key-encryption key is now fingerprint ${report.kekId}${report.previousKekId ? ` (was ${report.previousKekId})` : ''}`);
    console.log(
      kekFile ? `${kekFile} now holds the new key` : 'set SIGNET_KEY_ENCRYPTION_KEY to the new key for every Signet process on this store, then start them',
    );
  }
  return 0;
}
