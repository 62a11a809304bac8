/** What every use case needs: the database, the server's keys, parsed-file cache, clock. */
import type { Transaction } from 'kysely';
import type { Database } from '../storage/database.js';
import type { Schema } from '../storage/schema.js';
import type { KeyService } from '../signing/key-service.js';
import { lockRepository } from '../storage/metadata-store.js';
import { ParsedFileCache } from './metadata-cache.js';

export interface Expiries {
  snapshotMs: number;
  timestampMs: number;
}

export interface ServiceContext {
  database: Database;
  keys: KeyService;
  cache: ParsedFileCache;
  expiries: Expiries;
  now: () => number;
}

export function createContext(database: Database, keys: KeyService, expiries: Expiries): ServiceContext {
  return { database, keys, cache: new ParsedFileCache(), expiries, now: Date.now };
}

/** Run `work` in one transaction holding the repository's write lock. */
export function withRepositoryLock<T>(
  ctx: ServiceContext,
  gun: string,
  work: (trx: Transaction<Schema>) => Promise<T>,
): Promise<T> {
  return ctx.database.db.transaction().execute(async (trx) => {
    await lockRepository(trx, gun);
    return work(trx);
  });
}
