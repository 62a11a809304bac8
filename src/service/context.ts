/** What every use case needs: the database, the server's keys, parsed-file cache, clock. */
import type { Transaction } from 'kysely';
import type { Database } from '../storage/database.js';
import type { Schema } from '../storage/schema.js';
import type { KeyService } from '../signing/key-service.js';
import { notifyChange } from '../storage/change-notifier.js';
import { lockRepository } from '../storage/metadata-store.js';
import { Metrics } from '../observability/metrics.js';
import { CurrentMetadataCache } from './current-cache.js';
import { ParsedFileCache } from './metadata-cache.js';

export interface Expiries {
  snapshotMs: number;
  timestampMs: number;
}

export interface ServiceContext {
  database: Database;
  keys: KeyService;
  cache: ParsedFileCache;
  /** Current metadata by repository; see CurrentMetadataCache for when it is trusted. */
  current: CurrentMetadataCache;
  expiries: Expiries;
  metrics: Metrics;
  now: () => number;
}

export function createContext(database: Database, keys: KeyService, expiries: Expiries): ServiceContext {
  // The embedded store has one process, which sees all its own writes; with Postgres the
  // cache waits until change notifications are being received (see server.ts).
  const current = new CurrentMetadataCache(database.kind === 'pglite');
  const metrics = new Metrics(database.poolStats ? () => database.poolStats!() : undefined);
  return { database, keys, cache: new ParsedFileCache(), current, expiries, metrics, now: Date.now };
}

/**
 * Writers of one repository queue here, in this process, before they take a database
 * connection: a burst of updates to one hot repository then holds one pooled connection at a
 * time instead of exhausting the pool while waiting on the database lock, which stays the
 * guard between processes.
 */
const localQueues = new Map<string, Promise<void>>();

async function queueFor(gun: string): Promise<() => void> {
  const previous = localQueues.get(gun) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const tail = previous.then(() => mine);
  localQueues.set(gun, tail);
  await previous;
  return () => {
    release();
    if (localQueues.get(gun) === tail) localQueues.delete(gun);
  };
}

/**
 * Run `work` in one transaction holding the repository's write lock. Unless told it changes no
 * metadata, the change is announced to every process on commit and dropped from this one's cache.
 */
export async function withRepositoryLock<T>(
  ctx: ServiceContext,
  gun: string,
  work: (trx: Transaction<Schema>) => Promise<T>,
  { changesMetadata = true } = {},
): Promise<T> {
  const leave = await queueFor(gun);
  try {
    return await ctx.database.db.transaction().execute(async (trx) => {
      await lockRepository(trx, gun);
      const result = await work(trx);
      if (changesMetadata) await notifyChange(trx, gun);
      return result;
    });
  } finally {
    leave();
    // Also after a failure: a commit may have happened even if its acknowledgement was lost.
    if (changesMetadata) ctx.current.invalidate(gun);
  }
}
