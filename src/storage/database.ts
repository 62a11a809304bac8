/**
 * The database: real Postgres through `pg` when a URL is given, otherwise embedded PGlite in a
 * data directory. Both run the same kysely Postgres dialect, the same SQL and migrations.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { PGlitePool } from './pglite-pool.js';
import { lockDataDir, type StoreLock } from './store-lock.js';
import type { Schema } from './schema.js';

export interface DatabaseOptions {
  /** postgres://… ; when absent the embedded store under `dataDir` is used. */
  url?: string | undefined;
  dataDir: string;
  /** Connections in the pool (real Postgres only). */
  poolSize?: number;
  /** Fail a query that cannot get a connection within this time instead of hanging. */
  connectionTimeoutMs?: number;
}

export interface Database {
  readonly db: Kysely<Schema>;
  readonly kind: 'postgres' | 'pglite';
  /** Throws when the database cannot answer. */
  ping(): Promise<void>;
  /** Pool occupancy (real Postgres only). */
  poolStats?(): { total: number; idle: number; waiting: number };
  /** Record where the server that owns this store answers (embedded store only). */
  noteUrl?(url: string): void;
  close(): Promise<void>;
}

// int8 (bigserial ids) arrive as strings from pg; keep them strings everywhere.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => v);

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  let dialect: PostgresDialect;
  let kind: Database['kind'];
  let end: () => Promise<void>;
  let poolStats: Database['poolStats'];
  let lock: StoreLock | null = null;
  if (options.url) {
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
      // No statement may hold a connection (or wait for a repository lock) without bound.
      statement_timeout: 30_000,
      query_timeout: 35_000,
    });
    // An idle client losing its server must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    poolStats = () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount });
    dialect = new PostgresDialect({ pool });
    kind = 'postgres';
    end = () => pool.end();
  } else {
    const { PGlite } = await import('@electric-sql/pglite');
    const dir = path.resolve(options.dataDir, 'pgdata');
    mkdirSync(dir, { recursive: true });
    const owned = lockDataDir(options.dataDir);
    let pool: PGlitePool;
    try {
      pool = new PGlitePool(await PGlite.create(dir));
    } catch (e) {
      owned.release();
      throw e;
    }
    lock = owned;
    dialect = new PostgresDialect({ pool: pool as unknown as pg.Pool });
    kind = 'pglite';
    end = async () => {
      try {
        await pool.end();
      } finally {
        owned.release();
      }
    };
  }
  const db = new Kysely<Schema>({ dialect });
  return {
    db,
    kind,
    ...(poolStats ? { poolStats } : {}),
    ...(lock ? { noteUrl: (url: string) => lock.noteUrl(url) } : {}),
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy().catch(() => {});
      await end().catch(() => {});
    },
  };
}
