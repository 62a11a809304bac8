/** Queries on server-held keys. Private parts stay encrypted here; decryption is signing's job. */
import type { Kysely, Transaction } from 'kysely';
import type { Schema } from './schema.js';

type Db = Kysely<Schema> | Transaction<Schema>;
export type ServerKeyRole = 'timestamp' | 'snapshot';

export interface ServerKeyRow {
  keyId: string;
  gun: string;
  role: ServerKeyRole;
  keytype: string;
  publicKey: string;
  privateKey: Buffer;
  kekId: string;
  createdAt: Date;
  lastUsed: Date | null;
}

const COLUMNS = ['key_id', 'gun', 'role', 'keytype', 'public_key', 'private_key', 'kek_id', 'created_at', 'last_used'] as const;

function toRow(r: {
  key_id: string;
  gun: string;
  role: ServerKeyRole;
  keytype: string;
  public_key: string;
  private_key: Buffer | Uint8Array;
  kek_id: string;
  created_at: Date;
  last_used: Date | null;
}): ServerKeyRow {
  const p = r.private_key;
  return {
    keyId: r.key_id.trim(),
    gun: r.gun,
    role: r.role,
    keytype: r.keytype,
    publicKey: r.public_key,
    privateKey: Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength),
    kekId: r.kek_id,
    createdAt: r.created_at,
    lastUsed: r.last_used,
  };
}

export async function keysOfRepository(db: Db, gun: string): Promise<ServerKeyRow[]> {
  const rows = await db.selectFrom('server_keys').select(COLUMNS).where('gun', '=', gun).orderBy('created_at').execute();
  return rows.map(toRow);
}

/** The newest key of (gun, role) that has never signed: handed out again instead of a new one. */
export async function pendingKey(db: Db, gun: string, role: ServerKeyRole): Promise<ServerKeyRow | null> {
  const row = await db
    .selectFrom('server_keys')
    .select(COLUMNS)
    .where('gun', '=', gun)
    .where('role', '=', role)
    .where('last_used', 'is', null)
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? toRow(row) : null;
}

export async function insertKey(db: Db, key: Omit<ServerKeyRow, 'createdAt' | 'lastUsed'>): Promise<void> {
  await db
    .insertInto('server_keys')
    .values({
      key_id: key.keyId,
      gun: key.gun,
      role: key.role,
      keytype: key.keytype,
      public_key: key.publicKey,
      private_key: key.privateKey,
      kek_id: key.kekId,
    })
    .execute();
}

export async function markKeysUsed(db: Db, keyIds: readonly string[]): Promise<void> {
  if (keyIds.length === 0) return;
  await db.updateTable('server_keys').set({ last_used: new Date() }).where('key_id', 'in', keyIds).where('last_used', 'is', null).execute();
}

/** How many server keys are encrypted under each KEK (by fingerprint). */
export async function keysPerKek(db: Db): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('server_keys')
    .select(['kek_id', (eb) => eb.fn.countAll<string>().as('n')])
    .groupBy('kek_id')
    .execute();
  return new Map(rows.map((r) => [r.kek_id, Number(r.n)]));
}

/** Every server key, locked for re-encryption until the transaction ends. */
export async function allKeysForUpdate(db: Transaction<Schema>): Promise<ServerKeyRow[]> {
  const rows = await db.selectFrom('server_keys').select(COLUMNS).orderBy('key_id').forUpdate().execute();
  return rows.map(toRow);
}

export async function replaceEncryptedKey(db: Db, keyId: string, privateKey: Buffer, kekId: string): Promise<void> {
  await db.updateTable('server_keys').set({ private_key: privateKey, kek_id: kekId }).where('key_id', '=', keyId).execute();
}
