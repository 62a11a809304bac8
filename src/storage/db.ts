/** The handle every store runs its queries on: the database itself, or one open transaction. */
import type { Kysely, Transaction } from 'kysely';
import type { Schema } from './schema.js';

export type Db = Kysely<Schema> | Transaction<Schema>;

/** Bytes as Node buffers, whichever driver returned them (pg gives Buffer, PGlite Uint8Array). */
export function toBuffer(data: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
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
