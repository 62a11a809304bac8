/**
 * A `pg.Pool` look-alike over PGlite (Postgres compiled to WASM), so that kysely's own Postgres
 * dialect runs unchanged on the embedded store: same SQL, same migrations. PGlite is a single
 * connection, so the pool hands it out to one borrower at a time; a transaction therefore holds
 * the database for its whole duration, as it would hold a row lock on a real server.
 *
 * With a WalSync (pglite-durability.ts), a statement that ends a transaction (a COMMIT, or any
 * statement outside one) is answered only once the WAL written so far is on disk. The borrower
 * gives the database up while it waits, so the next transaction runs during the sync and its
 * commit shares the next one (group commit). A borrower that goes on using its connection after
 * that waits for its turn again.
 */
import type { PGlite } from '@electric-sql/pglite';
import type { WalSync } from './pglite-durability.js';

interface QueryResult {
  command: string;
  rowCount: number;
  rows: unknown[];
}

export class PGlitePool {
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: PGlite,
    private readonly wal: WalSync | null = null,
  ) {}

  /** Wait for the database; returns the function that hands it on. */
  private async acquire(): Promise<() => void> {
    let release!: () => void;
    const previous = this.tail;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    let released = false;
    return () => {
      if (!released) {
        released = true;
        release();
      }
    };
  }

  async connect() {
    let release: (() => void) | null = await this.acquire();
    let ended = false;
    return {
      query: async (sql: string, params: readonly unknown[] = []) => {
        if (ended) throw new Error('this connection was released');
        release ??= await this.acquire();
        const result = await this.query(sql, params);
        if (this.wal?.pending() && !this.db.isInTransaction()) {
          const durable = this.wal.flush();
          release();
          release = null;
          await durable;
        }
        return result;
      },
      release: () => {
        ended = true;
        release?.();
        release = null;
      },
    };
  }

  private async query(sql: string, params: readonly unknown[]): Promise<QueryResult> {
    const command = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? '';
    if (params.length === 0) {
      // Scripts (migrations) hold several statements; only the simple protocol runs those. It is
      // also one round trip into Postgres where the extended protocol takes six (BEGIN, COMMIT).
      const results = await this.db.exec(sql);
      const last = results[results.length - 1];
      return { command, rowCount: last?.affectedRows ?? 0, rows: last?.rows ?? [] };
    }
    const result = await this.db.query(sql, params as unknown[]);
    return { command, rowCount: result.affectedRows ?? result.rows.length, rows: result.rows };
  }

  async end(): Promise<void> {
    await this.tail;
    try {
      await this.wal?.flush();
    } finally {
      await this.db.close();
    }
  }
}
