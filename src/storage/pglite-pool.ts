/**
 * A `pg.Pool` look-alike over PGlite (Postgres compiled to WASM), so that kysely's own Postgres
 * dialect runs unchanged on the embedded store: same SQL, same migrations. PGlite is a single
 * connection, so the pool hands it out to one borrower at a time; a transaction therefore holds
 * the database for its whole duration, as it would hold a row lock on a real server.
 */
import type { PGlite } from '@electric-sql/pglite';

interface QueryResult {
  command: string;
  rowCount: number;
  rows: unknown[];
}

export class PGlitePool {
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly db: PGlite) {}

  async connect() {
    let release!: () => void;
    const previous = this.tail;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    let released = false;
    return {
      query: (sql: string, params: readonly unknown[] = []) => this.query(sql, params),
      release: () => {
        if (!released) {
          released = true;
          release();
        }
      },
    };
  }

  private async query(sql: string, params: readonly unknown[]): Promise<QueryResult> {
    const command = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? '';
    if (params.length === 0 && sql.includes(';')) {
      // Scripts (migrations) hold several statements; only the simple protocol runs those.
      const results = await this.db.exec(sql);
      const last = results[results.length - 1];
      return { command, rowCount: last?.affectedRows ?? 0, rows: last?.rows ?? [] };
    }
    const result = await this.db.query(sql, params as unknown[]);
    return { command, rowCount: result.affectedRows ?? result.rows.length, rows: result.rows };
  }

  async end(): Promise<void> {
    await this.tail;
    await this.db.close();
  }
}
