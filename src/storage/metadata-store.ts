/** Queries on stored metadata files and the changefeed. */
import { sql, type Kysely, type Transaction } from 'kysely';
import { sha256Hex } from '../tuf/core/hashes.js';
import type { Schema } from './schema.js';

type Db = Kysely<Schema> | Transaction<Schema>;

export interface StoredFileRow {
  role: string;
  version: number;
  sha256: string;
  data: Buffer;
  createdAt: Date;
}

export interface ChangeRecord {
  ID: string;
  CreatedAt: string;
  GUN: string;
  Version: number;
  SHA256: string;
  Category: 'update' | 'deletion';
}

function toBuffer(data: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function toRow(r: { role: string; version: number; sha256: string; data: Buffer | Uint8Array; created_at: Date }): StoredFileRow {
  return { role: r.role, version: r.version, sha256: r.sha256, data: toBuffer(r.data), createdAt: r.created_at };
}

const FILE_COLUMNS = ['role', 'version', 'sha256', 'data', 'created_at'] as const;

/**
 * Serialise writers of one repository, across every process on the database, until the
 * transaction ends. hashtextextended gives a 64-bit key, so unrelated GUNs rarely share a lock.
 */
export async function lockRepository(trx: Transaction<Schema>, gun: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${gun}, 0))`.execute(trx);
}

export async function latestFile(db: Db, gun: string, role: string): Promise<StoredFileRow | null> {
  const row = await db
    .selectFrom('tuf_files')
    .select(FILE_COLUMNS)
    .where('gun', '=', gun)
    .where('role', '=', role)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? toRow(row) : null;
}

export async function fileByChecksum(db: Db, gun: string, role: string, sha256: string): Promise<StoredFileRow | null> {
  const row = await db
    .selectFrom('tuf_files')
    .select(FILE_COLUMNS)
    .where('gun', '=', gun)
    .where('role', '=', role)
    .where('sha256', '=', sha256)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? toRow(row) : null;
}

export async function fileByVersion(db: Db, gun: string, role: string, version: number): Promise<StoredFileRow | null> {
  const row = await db
    .selectFrom('tuf_files')
    .select(FILE_COLUMNS)
    .where('gun', '=', gun)
    .where('role', '=', role)
    .where('version', '=', version)
    .executeTakeFirst();
  return row ? toRow(row) : null;
}

/** Files of a repository by checksum, for loading the roles a snapshot lists. */
export async function filesByChecksums(db: Db, gun: string, sha256s: string[]): Promise<StoredFileRow[]> {
  if (sha256s.length === 0) return [];
  const rows = await db.selectFrom('tuf_files').select(FILE_COLUMNS).where('gun', '=', gun).where('sha256', 'in', sha256s).execute();
  return rows.map(toRow);
}

export async function latestVersions(db: Db, gun: string): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('tuf_files')
    .select(['role', (eb) => eb.fn.max('version').as('version')])
    .where('gun', '=', gun)
    .groupBy('role')
    .execute();
  return new Map(rows.map((r) => [r.role, Number(r.version)]));
}

/** Insert new files; every stored timestamp also gets a changefeed record. */
export async function insertFiles(trx: Transaction<Schema>, gun: string, files: readonly { role: string; version: number; bytes: Buffer }[]): Promise<void> {
  if (files.length === 0) return;
  await trx
    .insertInto('tuf_files')
    .values(files.map((f) => ({ gun, role: f.role, version: f.version, sha256: sha256Hex(f.bytes), data: f.bytes })))
    .execute();
  const timestamps = files.filter((f) => f.role === 'timestamp');
  if (timestamps.length > 0) {
    await trx
      .insertInto('changefeed')
      .values(timestamps.map((t) => ({ gun, version: t.version, sha256: sha256Hex(t.bytes), category: 'update' as const })))
      .execute();
  }
}

/** Remove every file of a repository; records a deletion when anything existed. */
export async function deleteRepositoryFiles(trx: Transaction<Schema>, gun: string): Promise<number> {
  const result = await trx.deleteFrom('tuf_files').where('gun', '=', gun).executeTakeFirst();
  const deleted = Number(result.numDeletedRows);
  if (deleted > 0) {
    await trx.insertInto('changefeed').values({ gun, version: 0, sha256: '', category: 'deletion' }).execute();
  }
  return deleted;
}

/**
 * A page of the changefeed, oldest first (notary's `GetChanges`): from after `changeId`
 * forwards, or, for a negative change ID or record count, the page before it going backwards.
 */
export async function changes(db: Db, gun: string | null, changeId: number, records: number): Promise<ChangeRecord[]> {
  const reversed = changeId < 0 || records < 0;
  const limit = Math.abs(records);
  let query = db.selectFrom('changefeed').select(['id', 'created_at', 'gun', 'version', 'sha256', 'category']);
  if (gun !== null) query = query.where('gun', '=', gun);
  if (reversed) {
    if (changeId > 0) query = query.where('id', '<', String(changeId));
    query = query.orderBy('id', 'desc');
  } else {
    query = query.where('id', '>', String(changeId)).orderBy('id', 'asc');
  }
  const rows = await query.limit(limit).execute();
  if (reversed) rows.reverse();
  return rows.map((r) => ({
    ID: String(r.id),
    CreatedAt: r.created_at.toISOString(),
    GUN: r.gun,
    Version: r.version,
    SHA256: r.sha256,
    Category: r.category,
  }));
}
