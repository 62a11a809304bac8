/**
 * Reading a notary deployment kept in MySQL/MariaDB (migrations/server/mysql 0001–0005,
 * migrations/signer/mysql 0001–0002): the same rows as the Postgres source, behind the same
 * interfaces (source.ts).
 *
 * - Each database is read inside one REPEATABLE READ, READ ONLY transaction started WITH
 *   CONSISTENT SNAPSHOT, so the import sees one snapshot even if notary is still running.
 * - Times: notary (go-sql-driver/mysql, loc=UTC) writes UTC wall-clock times without a zone, into
 *   `timestamp` columns (created_at) and a `datetime` column (private_keys.last_used). The session
 *   keeps the server's default time zone, as notary's own sessions do, so `timestamp` values come
 *   back as notary wrote them; every value is read as exact text and taken to be in `timezone`
 *   (UTC unless told otherwise).
 * - Repository names are compared byte for byte (notary's tables use a case-insensitive
 *   collation; Signet's names are case-sensitive).
 */
import mysql from 'mysql2/promise';
import {
  SourceError,
  inspectServerSchema,
  inspectSignerSchema,
  parseMysqlDsn,
  type ServerSource,
  type SignerSource,
  type SourceChange,
  type SourceFileRow,
  type SourceKey,
  type SourceKeyInfo,
} from './source.js';

type Row = Record<string, unknown>;

/** Exact wall-clock text of a time column, microseconds included. */
const timeText = (column: string) => `date_format(${column}, '%Y-%m-%d %H:%i:%s.%f')`;

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

abstract class MysqlDatabase {
  protected constructor(
    protected readonly conn: mysql.Connection,
    protected readonly timezone: string,
  ) {}

  protected async rows<R extends Row>(text: string, params: unknown[] = []): Promise<R[]> {
    const [rows] = await this.conn.query(text, params);
    return rows as R[];
  }

  protected static async connect(url: string, what: string, timezone: string): Promise<mysql.Connection> {
    checkTimezone(timezone);
    const dsn = parseMysqlDsn(url, what);
    let conn: mysql.Connection | undefined;
    try {
      conn = await mysql.createConnection({
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
      });
      conn.on('error', () => {});
      await conn.query('set session transaction isolation level repeatable read');
      await conn.query('start transaction with consistent snapshot, read only');
    } catch (e) {
      await conn?.end().catch(() => {});
      throw new SourceError(`${what}: ${(e as Error).message}`);
    }
    return conn;
  }

  protected async columns(table: string): Promise<Set<string>> {
    const rows = await this.rows<{ c: string }>('select column_name as c from information_schema.columns where table_schema = database() and table_name = ?', [
      table,
    ]);
    return new Set(rows.map((r) => String(r.c).toLowerCase()));
  }

  async close(): Promise<void> {
    await this.conn.query('rollback').catch(() => {});
    await this.conn.end().catch(() => {});
  }
}

/** `gun = ?`, byte for byte, still using the index. */
const gunIs = `gun = ? and cast(gun as binary) = cast(? as binary)`;
const str = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : str(v));
const bytes = (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'latin1'));

/** notary-server's MySQL database. */
export class MysqlServerSource extends MysqlDatabase implements ServerSource {
  private softDelete = false;
  hasChangefeed = false;

  static async open(url: string, timezone = 'UTC'): Promise<MysqlServerSource> {
    const source = new MysqlServerSource(await MysqlDatabase.connect(url, '--from', timezone), timezone);
    try {
      ({ softDelete: source.softDelete, hasChangefeed: source.hasChangefeed } = await inspectServerSchema((t) => source.columns(t)));
    } catch (e) {
      await source.close();
      throw e;
    }
    return source;
  }

  private get live(): string {
    return this.softDelete ? 'deleted_at is null' : 'true';
  }

  private gunFilter(onlyGun: string | undefined): { sql: string; params: unknown[] } {
    return onlyGun === undefined ? { sql: 'true', params: [] } : { sql: gunIs, params: [onlyGun, onlyGun] };
  }

  async repositories(onlyGun?: string): Promise<{ gun: string; files: number }[]> {
    const f = this.gunFilter(onlyGun);
    const rows = await this.rows<{ gun: unknown; files: unknown }>(
      `select min(gun) as gun, count(*) as files from tuf_files where ${this.live} and ${f.sql} group by cast(gun as binary)`,
      f.params,
    );
    return rows.map((r) => ({ gun: str(r.gun), files: Number(r.files) })).sort((a, b) => (a.gun < b.gun ? -1 : a.gun > b.gun ? 1 : 0));
  }

  async softDeletedRows(onlyGun?: string): Promise<number> {
    if (!this.softDelete) return 0;
    const f = this.gunFilter(onlyGun);
    const rows = await this.rows<{ n: unknown }>(`select count(*) as n from tuf_files where deleted_at is not null and ${f.sql}`, f.params);
    return Number(rows[0]!.n);
  }

  async files(gun: string): Promise<SourceFileRow[]> {
    const rows = await this.rows<{ id: unknown; role: unknown; version: unknown; sha256: unknown; data: unknown; created_at: unknown }>(
      `select id, role, version, sha256, data, ${timeText('created_at')} as created_at
         from tuf_files where ${gunIs} and ${this.live} order by id`,
      [gun, gun],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      role: str(r.role),
      version: Number(r.version),
      sha256: strOrNull(r.sha256),
      data: bytes(r.data),
      createdAt: wallClockToUtc(strOrNull(r.created_at), this.timezone),
    }));
  }

  async *changes(onlyGun?: string, pageSize = 10_000): AsyncGenerator<SourceChange[]> {
    if (!this.hasChangefeed) return;
    const f = this.gunFilter(onlyGun);
    let after = -1;
    for (;;) {
      const rows = await this.rows<{ id: unknown; created_at: unknown; gun: unknown; version: unknown; sha256: unknown; category: unknown }>(
        `select id, ${timeText('created_at')} as created_at, gun, version, sha256, category from changefeed
          where id > ? and ${f.sql} order by id limit ?`,
        [after, ...f.params, pageSize],
      );
      if (rows.length === 0) return;
      after = Number(rows[rows.length - 1]!.id);
      yield rows.map((r) => ({
        id: Number(r.id),
        createdAt: wallClockToUtc(strOrNull(r.created_at), this.timezone),
        gun: str(r.gun),
        version: Number(r.version),
        sha256: (strOrNull(r.sha256) ?? '').trim(),
        category: strOrNull(r.category) ?? 'update',
      }));
    }
  }
}

/** notary-signer's MySQL database. */
export class MysqlSignerSource extends MysqlDatabase implements SignerSource {
  private softDelete = false;

  static async open(url: string, timezone = 'UTC'): Promise<MysqlSignerSource> {
    const source = new MysqlSignerSource(await MysqlDatabase.connect(url, '--signer', timezone), timezone);
    try {
      ({ softDelete: source.softDelete } = await inspectSignerSchema((t) => source.columns(t)));
    } catch (e) {
      await source.close();
      throw e;
    }
    return source;
  }

  async keyInfos(onlyGun?: string): Promise<SourceKeyInfo[]> {
    const rows = await this.rows<{ id: unknown; key_id: unknown; algorithm: unknown; passphrase_alias: unknown; gun: unknown; role: unknown }>(
      `select id, key_id, algorithm, passphrase_alias, gun, role from private_keys
        where ${this.softDelete ? 'deleted_at is null' : 'true'} and ${onlyGun === undefined ? 'true' : gunIs} order by id`,
      onlyGun === undefined ? [] : [onlyGun, onlyGun],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      keyId: str(r.key_id).trim(),
      algorithm: str(r.algorithm),
      alias: str(r.passphrase_alias),
      gun: str(r.gun),
      role: str(r.role),
    }));
  }

  async keys(ids: number[]): Promise<SourceKey[]> {
    if (ids.length === 0) return [];
    const rows = await this.rows<{
      id: unknown;
      key_id: unknown;
      algorithm: unknown;
      passphrase_alias: unknown;
      gun: unknown;
      role: unknown;
      public: unknown;
      private: unknown;
      created_at: unknown;
      last_used: unknown;
    }>(
      `select id, key_id, algorithm, passphrase_alias, gun, role, public, private,
              ${timeText('created_at')} as created_at, ${timeText('last_used')} as last_used
         from private_keys where id in (?) order by id`,
      [ids],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      keyId: str(r.key_id).trim(),
      algorithm: str(r.algorithm),
      alias: str(r.passphrase_alias),
      gun: str(r.gun),
      role: str(r.role),
      publicBytes: bytes(r.public),
      privateJwe: bytes(r.private).toString('latin1'),
      createdAt: wallClockToUtc(strOrNull(r.created_at), this.timezone),
      lastUsed: wallClockToUtc(strOrNull(r.last_used), this.timezone),
    }));
  }
}
