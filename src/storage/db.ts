/** The handle every store runs its queries on: the database itself, or one open transaction. */
import type { Kysely, Transaction } from 'kysely';
import type { Schema } from './schema.js';

export type Db = Kysely<Schema> | Transaction<Schema>;

/**
 * Bytes read from the database as a Node Buffer of their own, whichever driver returned them
 * (pg gives Buffer, PGlite Uint8Array). Drivers hand out views: pg decodes a
 * small bytea into Node's shared 8 KB Buffer pool, and a view keeps its whole backing memory
 * alive. Files are cached for a long time, so a 500-byte timestamp held that way pinned 8 KB
 * (measured: 43 MB of buffers behind a few MB of cached files after a write load).
 */
export function toBuffer(data: Buffer | Uint8Array): Buffer {
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) {
    return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, 0, data.byteLength);
  }
  return ownCopy(data);
}

/** A copy of `data` in memory of its own (never Node's shared pool). */
export function ownCopy(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(data.byteLength);
  out.set(data);
  return out;
}

/**
 * `char(n)` columns (sha256, key_id) come back blank-padded to their width; values are compared
 * and shown without the padding, so the mappers trim them here and nowhere else.
 */
export function fixedWidth(value: string): string {
  return value.trim();
}

/** Statements that must run inside a transaction (transaction-scoped locks, notifications) refuse a plain handle. */
export function requireTransaction(db: Db, what: string): Transaction<Schema> {
  if (!db.isTransaction) throw new Error(`${what} needs a transaction-bound store`);
  return db as Transaction<Schema>;
}
