/**
 * The database: real Postgres through `pg` when a URL is given, otherwise embedded PGlite in a
 * data directory. Both run the same kysely Postgres dialect, the same SQL and migrations.
 */
import { existsSync, mkdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { redactUrl } from './database-url.js';
import { PGlitePool } from './pglite-pool.js';
import { lockDataDir, type StoreLock } from './store-lock.js';
import type { Schema } from './schema.js';
import { SignetError } from '../tuf/core/signet-error.js';
import { StorageUnavailableError, withStorageErrors } from './errors.js';

export interface DatabaseOptions {
  /** postgres://… ; when absent the embedded store under `dataDir` is used. */
  url?: string | undefined;
  dataDir: string;
  /** Connections in the pool (real Postgres only). */
  poolSize?: number;
  /** Fail a query that cannot get a connection within this time instead of hanging. */
  connectionTimeoutMs?: number;
  /**
   * Keep retrying the first connection this many seconds (real Postgres only), as a database
   * started alongside Signet may refuse for a while; 0 = one attempt. Default 30.
   */
  connectRetrySeconds?: number;
  /** Told of each failed connection attempt and of the slow first start of the embedded store; default: lines on stderr. */
  log?: StartupLog;
  /** What messages call the URL and the data directory (the caller's setting names). */
  names?: SettingNames;
}

/** How messages name the database URL and the data directory: storage knows no setting names. */
export interface SettingNames {
  url: string;
  dataDir: string;
}

const DEFAULT_NAMES: SettingNames = { url: 'the database URL', dataDir: 'the data directory' };

export interface StartupLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

const stderrLog: StartupLog = {
  info: (msg) => console.error(`signet: ${msg}`),
  warn: (msg, fields) => console.error(`signet: ${msg}${fields?.['error'] ? `: ${String(fields['error'])}` : ''}`),
};

/**
 * The data directory cannot be used (it cannot be created, is not a directory, or is not
 * writable): a configuration mistake, which the command line reports as one (exit 2).
 */
export class DataDirError extends SignetError {
  override name = 'DataDirError';
  readonly code = 'DATA_DIR_UNUSABLE';
}

/** The database could not be reached (after retrying): the message names DATABASE_URL, password hidden. */
export class DatabaseUnavailableError extends StorageUnavailableError {
  override name = 'DatabaseUnavailableError';
}

/**
 * Make sure `dir` exists (creating it and its parents) and can be written, or throw a
 * DataDirError naming it as `name`. Parents are created one by one: mkdirSync's recursive
 * mode never returns for some unwritable trees (under /proc, for one).
 */
export function prepareDataDir(dir: string, name = DEFAULT_NAMES.dataDir): void {
  const target = path.resolve(dir);
  const missing: string[] = [];
  for (let p = target; !existsSync(p); p = path.dirname(p)) {
    missing.unshift(p);
    if (path.dirname(p) === p) break;
  }
  for (const p of missing) {
    try {
      mkdirSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new DataDirError(`${name} ${dir} cannot be created: ${(e as Error).message}`);
    }
  }
  if (!statSync(target).isDirectory()) throw new DataDirError(`${name} ${dir} is not a directory`);
  // Only a real write tells: permission bits say nothing of read-only mounts, and root passes them.
  const probe = path.join(target, `.signet-write-test-${process.pid}`);
  try {
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (e) {
    throw new DataDirError(`${name} ${dir} is not writable: ${(e as Error).message}`);
  }
}

/** A connection error as one line: pg reports some as an AggregateError with an empty message. */
function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reasonOf(error.errors[0]);
  const e = error as Error & { code?: string };
  return e.message || e.code || String(error);
}

// Wrong credentials or a missing database do not mend while we wait.
const PERMANENT = new Set(['28P01', '28000', '3D000']);

async function firstConnection(pool: pg.Pool, url: string, retrySeconds: number, log: StartupLog, name: string): Promise<void> {
  const shownUrl = redactUrl(url);
  const started = Date.now();
  const deadline = started + retrySeconds * 1000;
  let delay = 500;
  for (let attempt = 1; ; attempt++) {
    try {
      const client = await pool.connect();
      client.release();
      if (attempt > 1) log.info(`connected to ${name}`, { url: shownUrl, attempt });
      return;
    } catch (e) {
      const reason = reasonOf(e);
      const left = deadline - Date.now();
      if (PERMANENT.has((e as { code?: string }).code ?? '') || left <= 0) {
        const tried = attempt > 1 ? ` (${attempt} attempts in ${Math.round((Date.now() - started) / 1000)} s)` : '';
        throw new DatabaseUnavailableError(`cannot connect to ${name} ${shownUrl}: ${reason}${tried}`);
      }
      log.warn(`cannot connect to ${name} ${shownUrl} (attempt ${attempt}); retrying for up to ${Math.ceil(left / 1000)} s`, {
        url: shownUrl,
        attempt,
        error: reason,
      });
      await sleep(Math.min(delay, left));
      delay = Math.min(delay * 2, 5000);
    }
  }
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
    try {
      await firstConnection(pool, options.url, options.connectRetrySeconds ?? 30, options.log ?? stderrLog, (options.names ?? DEFAULT_NAMES).url);
    } catch (e) {
      await pool.end().catch(() => {});
      throw e;
    }
    dialect = new PostgresDialect({ pool });
    kind = 'postgres';
    end = () => pool.end();
  } else {
    const dataDirName = (options.names ?? DEFAULT_NAMES).dataDir;
    prepareDataDir(options.dataDir, dataDirName);
    const dir = path.resolve(options.dataDir, 'pgdata');
    prepareDataDir(dir, dataDirName);
    const owned = lockDataDir(options.dataDir);
    let pool: PGlitePool;
    try {
      // initdb inside WASM: tens of seconds on a small machine, so say why nothing happens.
      const engine = await import('./pglite-engine.js');
      if (!existsSync(path.join(dir, 'PG_VERSION'))) {
        (options.log ?? stderrLog).info(`initialising the embedded database in ${options.dataDir} (first start; this can take up to a minute)`);
        await engine.initialiseDataDir(dir);
      }
      const store = await engine.openEmbedded(dir);
      pool = new PGlitePool(store.db, store.wal);
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
  // Every query's failure goes through storageError: callers see StorageUnavailableError, not pg codes.
  const db = new Kysely<Schema>({ dialect: withStorageErrors(dialect) });
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
