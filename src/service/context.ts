/** What every use case needs: the stores, the server's keys, caches, clock — one set per context. */
import type { Database } from '../storage/database.js';
import { LockedReads } from '../storage/metadata-store.js';
import { Stores } from '../storage/stores.js';
import type { KeyService } from '../signing/key-service.js';
import { Metrics } from '../observability/metrics.js';
import { CurrentMetadataCache } from './current-cache.js';
import { EmbeddedReads } from './embedded-reads.js';
import { KeyedMutex } from './keyed-mutex.js';
import { ParsedFileCache } from './metadata-cache.js';
import { refreshSummary } from './repository-summary.js';

export interface Expiries {
  snapshotMs: number;
  timestampMs: number;
  /** Lifetime of a staged update (key ceremonies); default 7 days. */
  stagedMs?: number;
}

export interface ServiceContext {
  /** The open database, for what is about the connection itself: its kind, ping, close. Queries go through `stores`. */
  database: Database;
  stores: Stores;
  keys: KeyService;
  cache: ParsedFileCache;
  /** Current metadata by repository; see CurrentMetadataCache for when it is trusted. */
  current: CurrentMetadataCache;
  /**
   * Writers of one repository queue here, in this process, before they take a database
   * connection: a burst of updates to one hot repository then holds one pooled connection at a
   * time instead of exhausting the pool while waiting on the database lock, which stays the
   * guard between processes.
   */
  writers: KeyedMutex;
  /** The embedded store only: what the last committed transaction of each repository read (see EmbeddedReads). */
  embeddedReads: EmbeddedReads | null;
  expiries: Expiries;
  metrics: Metrics;
  now: () => number;
}

export function createContext(database: Database, keys: KeyService, expiries: Expiries): ServiceContext {
  // The embedded store has one process, which sees all its own writes; with Postgres the
  // cache waits until change notifications are being received (see server.ts).
  const current = new CurrentMetadataCache(database.kind === 'pglite');
  const metrics = new Metrics(database.poolStats ? () => database.poolStats!() : undefined);
  return {
    database,
    stores: new Stores(database.db),
    keys,
    cache: new ParsedFileCache(),
    current,
    writers: new KeyedMutex(),
    embeddedReads: database.kind === 'pglite' ? new EmbeddedReads() : null,
    expiries,
    metrics,
    now: Date.now,
  };
}

/**
 * Run `work` in one transaction holding the repository's write lock, with stores bound to that
 * transaction. Unless told it changes no metadata, the repository's summary is rewritten and the change is announced to every process on
 * commit and dropped from this one's cache.
 */
export async function withRepositoryLock<T>(
  ctx: ServiceContext,
  gun: string,
  work: (stores: Stores) => Promise<T>,
  { changesMetadata = true } = {},
): Promise<T> {
  const leave = await ctx.writers.acquire(gun);
  const locked = ctx.embeddedReads?.take(gun) ?? new LockedReads();
  try {
    const out = await ctx.stores.transaction(
      async (stores) => {
        // The embedded store serves one process over one connection that a transaction holds from
        // start to end: no other writer can interleave, so the lock and the notification (other
        // processes drop their cached copies when told; this one's cache is dropped below) would be
        // statements that change nothing.
        const shared = ctx.database.kind !== 'pglite';
        if (shared) await stores.metadata.lockRepository(gun);
        const result = await work(stores);
        if (changesMetadata) {
          // The inspector's summary changes with the metadata, in the same transaction.
          await refreshSummary(stores, ctx.cache, gun);
          if (shared) await stores.metadata.announceChange(gun);
        }
        return result;
      },
      { locked },
    );
    ctx.embeddedReads?.keep(gun, locked);
    return out;
  } finally {
    leave();
    // Also after a failure: a commit may have happened even if its acknowledgement was lost.
    if (changesMetadata) ctx.current.invalidate(gun);
  }
}
