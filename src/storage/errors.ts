/**
 * Failures of the store as the rest of Signet sees them. The driver's own errors (pg's SQLSTATE
 * codes, socket errnos, PGlite's messages) stop here: a query that fails because the database
 * cannot be reached leaves storage as a StorageUnavailableError, whatever the driver said, so
 * that no caller has to know which database is underneath.
 */
import type { DatabaseConnection, Dialect, Driver, QueryCompiler, QueryResult, TransactionSettings } from 'kysely';
import { SignetError } from '../tuf/core/signet-error.js';

/** The database cannot answer right now (down, unreachable, shutting down, timed out). */
export class StorageUnavailableError extends SignetError {
  override name = 'StorageUnavailableError';
  readonly code = 'STORAGE_UNAVAILABLE';
}

// Socket errnos, 57014 (statement timeout), 57P01-03 (shutdown), and class 08 (connection).
const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', '57014', '57P01', '57P02', '57P03']);

/** True for driver failures that mean "the database is unreachable right now". */
export function isConnectionFailure(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (!e) return false;
  if (typeof e.code === 'string' && (CONNECTION_ERRORS.has(e.code) || e.code.startsWith('08'))) return true;
  const msg = typeof e.message === 'string' ? e.message : '';
  return /timeout exceeded when trying to connect|Query read timeout|Connection terminated|connect ECONNREFUSED|Client has encountered a connection error/i.test(
    msg,
  );
}

/**
 * The error a caller of storage sees: connection failures become StorageUnavailableError with
 * the driver's message (health reports quote it) and the driver's error as `cause`; every
 * other error (a unique violation the caller handles, a bug) passes through untouched.
 */
export function storageError(error: unknown): unknown {
  if (error instanceof SignetError || !isConnectionFailure(error)) return error;
  const message = (error as { message?: unknown }).message;
  return new StorageUnavailableError(typeof message === 'string' ? message : String(error), { cause: error });
}

async function translated<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (e) {
    throw storageError(e);
  }
}

/**
 * A kysely driver that hands every failure through `storageError`. Wrapping the driver, not
 * each store, catches every query, transaction statement and connection checkout in one place.
 * The inner driver gets back its own connection objects (pg's driver releases a connection by
 * a private symbol on it).
 */
class TranslatingDriver implements Driver {
  private readonly inner = new WeakMap<DatabaseConnection, DatabaseConnection>();
  private readonly outer = new WeakMap<DatabaseConnection, DatabaseConnection>();

  constructor(private readonly driver: Driver) {}

  private unwrap(connection: DatabaseConnection): DatabaseConnection {
    return this.inner.get(connection) ?? connection;
  }

  init(): Promise<void> {
    return translated(this.driver.init());
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await translated(this.driver.acquireConnection());
    let wrapped = this.outer.get(connection);
    if (!wrapped) {
      wrapped = {
        executeQuery: <R>(query: Parameters<DatabaseConnection['executeQuery']>[0]): Promise<QueryResult<R>> => translated(connection.executeQuery<R>(query)),
        streamQuery: <R>(query: Parameters<DatabaseConnection['streamQuery']>[0], chunkSize?: number): AsyncIterableIterator<QueryResult<R>> =>
          translatedStream(connection.streamQuery<R>(query, chunkSize)),
      };
      this.outer.set(connection, wrapped);
      this.inner.set(wrapped, connection);
    }
    return wrapped;
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return translated(this.driver.beginTransaction(this.unwrap(connection), settings));
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return translated(this.driver.commitTransaction(this.unwrap(connection)));
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return translated(this.driver.rollbackTransaction(this.unwrap(connection)));
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.driver.releaseConnection(this.unwrap(connection));
  }

  // Savepoints are optional in kysely's Driver; the Postgres driver (pg and PGlite alike) has them.
  savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return translated(this.optional('savepoint')(this.unwrap(connection), name, compile));
  }

  rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return translated(this.optional('rollbackToSavepoint')(this.unwrap(connection), name, compile));
  }

  releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return translated(this.optional('releaseSavepoint')(this.unwrap(connection), name, compile));
  }

  private optional(method: 'savepoint' | 'rollbackToSavepoint' | 'releaseSavepoint') {
    const own = this.driver[method];
    if (!own) throw new Error(`the database driver has no ${method}`);
    return own.bind(this.driver);
  }

  destroy(): Promise<void> {
    return this.driver.destroy();
  }
}

async function* translatedStream<R>(stream: AsyncIterableIterator<QueryResult<R>>): AsyncIterableIterator<QueryResult<R>> {
  try {
    yield* stream;
  } catch (e) {
    throw storageError(e);
  }
}

/** `dialect` with every driver failure translated by `storageError`. */
export function withStorageErrors(dialect: Dialect): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createDriver: () => new TranslatingDriver(dialect.createDriver()),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createIntrospector: (db) => dialect.createIntrospector(db),
  };
}
