/**
 * The two engines a notary deployment may keep its databases in, as kysely dialects plus the few
 * things SQL does not say the same way on both: how to read a `timestamp` column as exact UTC
 * text, how to compare repository names byte for byte, and how to open one consistent, read-only
 * snapshot. The queries themselves are written once, in source.ts.
 *
 * - Postgres (migrations/server/postgresql, migrations/signer/postgresql): notary's `timestamp`
 *   columns carry no zone; the session reads them in `timezone` and Postgres renders them in UTC.
 * - MySQL/MariaDB (migrations/server/mysql 0001–0005, migrations/signer/mysql 0001–0002): notary
 *   (go-sql-driver/mysql, loc=UTC) writes UTC wall-clock times without a zone; the session keeps
 *   the server's default zone, as notary's own sessions do, so values come back as notary wrote
 *   them, are read as exact text and taken to be in `timezone`. notary's tables use a
 *   case-insensitive collation, Signet's names are case-sensitive: names compare as binary.
 *
 * Each source holds one connection (a pool of one that never lets it go idle-closed), inside one
 * REPEATABLE READ, READ ONLY transaction, so the whole import sees one snapshot even if notary
 * is still running.
 */
import { Kysely, MysqlDialect, PostgresDialect, sql, type RawBuilder, type SqlBool } from 'kysely';
import { SourceError, parseMysqlDsn } from './source-url.js';

/** The notary tables an import reads (both engines, every migration). */
export interface NotarySchema {
  tuf_files: { id: number; gun: string; role: string; version: number; sha256: string | null; data: Buffer; created_at: unknown; deleted_at: unknown };
  changefeed: { id: number; created_at: unknown; gun: string; version: number; sha256: string | null; category: string | null };
  private_keys: {
    id: number;
    key_id: string;
    algorithm: string;
    passphrase_alias: string;
    gun: string;
    role: string;
    public: Buffer;
    private: Buffer;
    created_at: unknown;
    last_used: unknown;
    deleted_at: unknown;
  };
}

export interface Engine {
  readonly db: Kysely<NotarySchema>;
  /** A time column as text the engine renders exactly (microseconds kept). */
  timeText(column: string): RawBuilder<string | null>;
  /** That text as ISO 8601 UTC with microseconds, or null. */
  readTime(value: unknown): string | null;
  /** `gun = name`, byte for byte, still using the index. */
  gunIs(gun: string): RawBuilder<SqlBool>;
  /** Column names of a table of the connected database (lower case). */
  columns(table: string): Promise<Set<string>>;
  /** Repositories sorted as the engine's report order: Postgres by its own order, MySQL here. */
  readonly sortsRepositories: boolean;
  close(): Promise<void>;
}

const str = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
export const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : str(v));
export { str };
export const bytes = (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'latin1'));

async function started(db: Kysely<NotarySchema>, what: string, statements: RawBuilder<unknown>[]): Promise<void> {
  try {
    for (const statement of statements) await statement.execute(db);
  } catch (e) {
    await db.destroy().catch(() => {});
    throw new SourceError(`${what}: ${(e as Error).message}`);
  }
}

export async function postgresEngine(url: string, what: string, timezone: string): Promise<Engine> {
  const { default: pg } = await import('pg');
  // One connection, never closed for being idle: the snapshot lives in its transaction.
  const pool = new pg.Pool({ connectionString: url, application_name: 'signet-import', max: 1, idleTimeoutMillis: 0 });
  pool.on('error', () => {});
  const db = new Kysely<NotarySchema>({ dialect: new PostgresDialect({ pool }) });
  await started(db, what, [sql`select set_config('TimeZone', ${timezone}, false)`, sql`begin isolation level repeatable read, read only`]);
  return {
    db,
    timeText: (column) =>
      sql<
        string | null
      >`case when ${sql.ref(column)} is null then null else to_char((${sql.ref(column)})::timestamptz at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') end`,
    readTime: (value) => strOrNull(value),
    gunIs: (gun) => sql<SqlBool>`gun = ${gun}`,
    async columns(table) {
      const { rows } = await sql<{ c: string }>`select column_name as c from information_schema.columns
        where table_name = ${table} and table_schema = any (current_schemas(false))`.execute(db);
      return new Set(rows.map((r) => r.c.toLowerCase()));
    },
    sortsRepositories: false,
    async close() {
      await sql`rollback`.execute(db).catch(() => {});
      await db.destroy().catch(() => {});
    },
  };
}

export async function mysqlEngine(url: string, what: string, timezone: string): Promise<Engine> {
  checkTimezone(timezone);
  const dsn = parseMysqlDsn(url, what);
  const { createPool } = await import('mysql2');
  const pool = createPool({
    host: dsn.host,
    port: dsn.port,
    socketPath: dsn.socketPath,
    user: dsn.user,
    password: dsn.password,
    database: dsn.database,
    charset: 'utf8mb4',
    connectTimeout: 10_000,
    dateStrings: true,
    supportBigNumbers: true,
    // One connection, kept: the snapshot lives in its transaction.
    connectionLimit: 1,
    maxIdle: 1,
    idleTimeout: 2 ** 31 - 1,
  });
  pool.on('connection', (conn) => conn.on('error', () => {}));
  const db = new Kysely<NotarySchema>({ dialect: new MysqlDialect({ pool }) });
  await started(db, what, [sql`set session transaction isolation level repeatable read`, sql`start transaction with consistent snapshot, read only`]);
  return {
    db,
    timeText: (column) => sql<string | null>`date_format(${sql.ref(column)}, '%Y-%m-%d %H:%i:%s.%f')`,
    readTime: (value) => wallClockToUtc(strOrNull(value), timezone),
    gunIs: (gun) => sql<SqlBool>`gun = ${gun} and cast(gun as binary) = cast(${gun} as binary)`,
    async columns(table) {
      const { rows } = await sql<{ c: unknown }>`select column_name as c from information_schema.columns
        where table_schema = database() and table_name = ${table}`.execute(db);
      return new Set(rows.map((r) => str(r.c).toLowerCase()));
    },
    sortsRepositories: true,
    async close() {
      await sql`rollback`.execute(db).catch(() => {});
      await db.destroy().catch(() => {});
    },
  };
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` in `timezone` → ISO 8601 UTC with microseconds. */
export function wallClockToUtc(text: string | null, timezone: string): string | null {
  if (text === null) return null;
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6})$/.exec(text);
  if (!m) throw new SourceError(`unreadable time ${JSON.stringify(text)}`);
  const [, y, mo, d, h, mi, s, us] = m as unknown as string[];
  if (Number(y) === 0) return null; // MySQL's zero date: no time
  if (isUtc(timezone)) return `${y}-${mo}-${d}T${h}:${mi}:${s}.${us}Z`;
  const wall = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  let utc = wall - zoneOffset(wall, timezone);
  utc = wall - zoneOffset(utc, timezone);
  return `${new Date(utc).toISOString().slice(0, 19)}.${us}Z`;
}

const isUtc = (tz: string) => /^(utc|gmt|z|etc\/utc|etc\/gmt|[+-]00:?00)$/i.test(tz);

/** Milliseconds `timezone` is ahead of UTC at the instant `at`. */
function zoneOffset(at: number, timezone: string): number {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
      .formatToParts(new Date(at))
      .map((p) => [p.type, p.value]),
  );
  const local = Date.UTC(
    Number(parts['year']),
    Number(parts['month']) - 1,
    Number(parts['day']),
    Number(parts['hour']),
    Number(parts['minute']),
    Number(parts['second']),
  );
  return local - Math.floor(at / 1000) * 1000;
}

function checkTimezone(timezone: string): void {
  if (isUtc(timezone)) return;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new SourceError(`--source-timezone: unknown time zone ${JSON.stringify(timezone)}`);
  }
}
