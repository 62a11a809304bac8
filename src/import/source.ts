/**
 * Reading a notary deployment's databases: notary-server's `tuf_files` and `changefeed`
 * (migrations/server/postgresql) and notary-signer's `private_keys` (migrations/signer/postgresql).
 * MySQL sources (migrations/server/mysql, migrations/signer/mysql) are read by mysql-source.ts, behind the same interfaces.
 *
 * Each database is read inside one REPEATABLE READ, READ ONLY transaction, so the whole import
 * sees one consistent snapshot even if notary is still running. notary's `timestamp` columns
 * carry no zone; they are read in `timezone` (UTC unless told otherwise: notary's containers
 * run in UTC) and passed on as exact text, microseconds included.
 */
import pg from 'pg';
import { SignetError } from '../tuf/signet-error.js';

export class SourceError extends SignetError {
  readonly code = 'IMPORT_SOURCE';
  override name = 'SourceError';
}

export interface SourceFileRow {
  id: number;
  role: string;
  version: number;
  /** As stored: may be null (rows written before the column existed) or blank-padded. */
  sha256: string | null;
  data: Buffer;
  /** ISO 8601 UTC with microseconds, or null. */
  createdAt: string | null;
}

export interface SourceChange {
  id: number;
  createdAt: string | null;
  gun: string;
  version: number;
  sha256: string;
  category: string;
}

export interface SourceKeyInfo {
  id: number;
  keyId: string;
  algorithm: string;
  alias: string;
  gun: string;
  role: string;
}

export interface SourceKey extends SourceKeyInfo {
  publicBytes: Buffer;
  /** The JWE compact token. */
  privateJwe: string;
  createdAt: string | null;
  lastUsed: string | null;
}

/**
 * What a notary-server schema has, whatever the engine: refuses a database without tuf_files,
 * and tells whether rows are soft-deleted and whether a changefeed exists.
 */
export async function inspectServerSchema(columns: (table: string) => Promise<Set<string>>): Promise<{ softDelete: boolean; hasChangefeed: boolean }> {
  const files = await columns('tuf_files');
  const missing = ['id', 'gun', 'role', 'version', 'data', 'sha256', 'created_at'].filter((c) => !files.has(c));
  if (missing.length) {
    throw new SourceError(
      files.size === 0
        ? "--from: no tuf_files table: is this notary-server's database?"
        : `--from: tuf_files lacks ${missing.join(', ')}: not a notary-server schema`,
    );
  }
  const feed = await columns('changefeed');
  return {
    softDelete: files.has('deleted_at'),
    hasChangefeed: ['id', 'created_at', 'gun', 'version', 'sha256', 'category'].every((c) => feed.has(c)),
  };
}

/** The same for a notary-signer schema: refuses a database without private_keys. */
export async function inspectSignerSchema(columns: (table: string) => Promise<Set<string>>): Promise<{ softDelete: boolean }> {
  const cols = await columns('private_keys');
  const missing = ['id', 'key_id', 'algorithm', 'passphrase_alias', 'gun', 'role', 'public', 'private', 'created_at', 'last_used'].filter((c) => !cols.has(c));
  if (missing.length) {
    throw new SourceError(
      cols.size === 0
        ? "--signer: no private_keys table: is this notary-signer's database?"
        : `--signer: private_keys lacks ${missing.join(', ')}: not a notary-signer schema`,
    );
  }
  return { softDelete: cols.has('deleted_at') };
}

/** notary-server's database, whichever engine holds it. */
export interface ServerSource {
  readonly hasChangefeed: boolean;
  repositories(onlyGun?: string): Promise<{ gun: string; files: number }[]>;
  softDeletedRows(onlyGun?: string): Promise<number>;
  files(gun: string): Promise<SourceFileRow[]>;
  changes(onlyGun?: string, pageSize?: number): AsyncGenerator<SourceChange[]>;
  close(): Promise<void>;
}

/** notary-signer's database, whichever engine holds it. */
export interface SignerSource {
  keyInfos(onlyGun?: string): Promise<SourceKeyInfo[]>;
  keys(ids: number[]): Promise<SourceKey[]>;
  close(): Promise<void>;
}

/** A MySQL source: `mysql://…` or notary's own go-sql-driver DSN `user:pass@tcp(host:port)/db`. */
export function isMysqlUrl(url: string): boolean {
  return /^mysql:\/\//i.test(url) || /^[^/]*@(tcp|unix)\(/.test(url);
}

export interface MysqlDsn {
  user: string;
  password?: string | undefined;
  host?: string | undefined;
  port?: number | undefined;
  socketPath?: string | undefined;
  database: string;
}

/**
 * `mysql://user:pass@host:port/db` or notary's own DSN (go-sql-driver/mysql):
 * `user:pass@tcp(host:port)/db?parseTime=True` or `user:pass@unix(/path/mysqld.sock)/db`.
 * Query parameters are ignored (times are read as text, see mysql-source.ts).
 */
export function parseMysqlDsn(url: string, what: string): MysqlDsn {
  const bad = (why: string) => new SourceError(`${what}: ${why}: expected mysql://user:password@host:port/database or user:password@tcp(host:port)/database`);
  let dsn: MysqlDsn;
  if (/^mysql:\/\//i.test(url)) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw bad('not a URL');
    }
    dsn = {
      user: decodeURIComponent(u.username),
      password: u.password ? decodeURIComponent(u.password) : undefined,
      host: u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
      port: u.port ? Number(u.port) : 3306,
      database: decodeURIComponent(u.pathname.replace(/^\//, '')),
    };
  } else {
    // The password may contain '@' and ':': the address is after the last '@' before '(tcp|unix)('.
    const m = /^(.*)@(tcp|unix)\(([^)]*)\)\/([^?]*)(\?.*)?$/s.exec(url);
    if (!m) throw bad('not a MySQL DSN');
    const [, cred, net, addr, db] = m as unknown as [string, string, string, string, string];
    const colon = cred.indexOf(':');
    dsn = {
      user: colon < 0 ? cred : cred.slice(0, colon),
      password: colon < 0 ? undefined : cred.slice(colon + 1),
      database: db,
    };
    if (net === 'unix') dsn.socketPath = addr;
    else {
      const hp = /^(?:\[([^\]]*)\]|([^:]*))(?::(\d+))?$/.exec(addr);
      if (!hp) throw bad(`bad address ${JSON.stringify(addr)}`);
      dsn.host = hp[1] ?? (hp[2] || '127.0.0.1');
      dsn.port = hp[3] ? Number(hp[3]) : 3306;
    }
  }
  if (!dsn.database) throw bad('no database name');
  return dsn;
}

/** `host:port/database` of a source URL, for reports and the audit log: no user, no password. */
export function sourceLabel(url: string): string {
  if (isMysqlUrl(url)) {
    try {
      const d = parseMysqlDsn(url, 'source');
      return `${d.socketPath ?? `${d.host}:${d.port}`}/${d.database}`;
    } catch {
      return 'mysql';
    }
  }
  const u = new URL(url);
  return `${u.host}${u.pathname}`;
}

/** Which databases `signet import` can read. */
export function checkSourceUrl(url: string, what: string): void {
  let parsed: URL;
  if (isMysqlUrl(url)) return;
  try {
    parsed = new URL(url);
  } catch {
    throw new SourceError(`${what}: not a URL: expected postgres://user@host:port/database or mysql://user@host:port/database`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new SourceError(`${what}: unsupported source ${parsed.protocol}// (only postgres:// and mysql:// notary databases can be imported)`);
  }
}

/** Open notary-server's database: Postgres or MySQL, by the URL. */
export async function openServerSource(url: string, timezone = 'UTC'): Promise<ServerSource> {
  checkSourceUrl(url, '--from');
  if (isMysqlUrl(url)) return (await import('./mysql-source.js')).MysqlServerSource.open(url, timezone);
  return NotaryServerSource.open(url, timezone);
}

/** Open notary-signer's database: Postgres or MySQL, by the URL. */
export async function openSignerSource(url: string, timezone = 'UTC'): Promise<SignerSource> {
  checkSourceUrl(url, '--signer');
  if (isMysqlUrl(url)) return (await import('./mysql-source.js')).MysqlSignerSource.open(url, timezone);
  return NotarySignerSource.open(url, timezone);
}

// Exact text of a timestamp column in UTC: `timestamp` values are taken in the session zone.
const utcText = (column: string) =>
  `case when ${column} is null then null else to_char((${column})::timestamptz at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') end`;

abstract class SourceDatabase {
  private tail: Promise<unknown> = Promise.resolve();

  protected constructor(private readonly client: pg.Client) {}

  /** One query at a time on the one connection (several repositories are read concurrently). */
  protected query<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    const run = this.tail.then(() => this.client.query<R>(text, params));
    this.tail = run.catch(() => {});
    return run;
  }

  protected static async connect(url: string, what: string, timezone: string): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: url, application_name: 'signet-import' });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query(`select set_config('TimeZone', $1, false)`, [timezone]);
      await client.query('begin isolation level repeatable read, read only');
    } catch (e) {
      await client.end().catch(() => {});
      throw new SourceError(`${what}: ${(e as Error).message}`);
    }
    return client;
  }

  protected async columns(table: string): Promise<Set<string>> {
    const { rows } = await this.query<{ column_name: string }>(
      `select column_name from information_schema.columns where table_name = $1 and table_schema = any (current_schemas(false))`,
      [table],
    );
    return new Set(rows.map((r) => r.column_name));
  }

  async close(): Promise<void> {
    await this.query('rollback').catch(() => {});
    await this.client.end().catch(() => {});
  }
}

/** notary-server's database. */
export class NotaryServerSource extends SourceDatabase implements ServerSource {
  private softDelete = false;
  hasChangefeed = false;

  static async open(url: string, timezone = 'UTC'): Promise<NotaryServerSource> {
    checkSourceUrl(url, '--from');
    const source = new NotaryServerSource(await SourceDatabase.connect(url, '--from', timezone));
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

  /** Repositories (GUNs) with their number of files, by name. */
  async repositories(onlyGun?: string): Promise<{ gun: string; files: number }[]> {
    const { rows } = await this.query<{ gun: string; files: number }>(
      `select gun, count(*)::int as files from tuf_files where ${this.live} and ($1::text is null or gun = $1) group by gun order by gun`,
      [onlyGun ?? null],
    );
    return rows;
  }

  /** Rows gorm would never show (soft-deleted): not part of the deployment, only counted. */
  async softDeletedRows(onlyGun?: string): Promise<number> {
    if (!this.softDelete) return 0;
    const { rows } = await this.query<{ n: number }>(
      `select count(*)::int as n from tuf_files where deleted_at is not null and ($1::text is null or gun = $1)`,
      [onlyGun ?? null],
    );
    return rows[0]!.n;
  }

  /** Every file of a repository in insertion order (notary inserts root, targets…, snapshot, timestamp). */
  async files(gun: string): Promise<SourceFileRow[]> {
    const { rows } = await this.query<{
      id: number;
      role: string;
      version: number;
      sha256: string | null;
      data: Buffer;
      created_at: string | null;
    }>(
      `select id, role, version, sha256, data, ${utcText('created_at')} as created_at
         from tuf_files where gun = $1 and ${this.live} order by id`,
      [gun],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      role: r.role,
      version: r.version,
      sha256: r.sha256,
      data: r.data,
      createdAt: r.created_at,
    }));
  }

  /** The changefeed in id order, in pages. */
  async *changes(onlyGun?: string, pageSize = 10_000): AsyncGenerator<SourceChange[]> {
    if (!this.hasChangefeed) return;
    let after = -1;
    for (;;) {
      const { rows } = await this.query<{
        id: number;
        created_at: string | null;
        gun: string;
        version: number;
        sha256: string | null;
        category: string | null;
      }>(
        `select id, ${utcText('created_at')} as created_at, gun, version, sha256, category from changefeed
          where id > $1 and ($2::text is null or gun = $2) order by id limit $3`,
        [after, onlyGun ?? null, pageSize],
      );
      if (rows.length === 0) return;
      after = Number(rows[rows.length - 1]!.id);
      yield rows.map((r) => ({
        id: Number(r.id),
        createdAt: r.created_at,
        gun: r.gun,
        version: r.version,
        sha256: (r.sha256 ?? '').trim(),
        category: r.category ?? 'update',
      }));
    }
  }
}

/** notary-signer's database. */
export class NotarySignerSource extends SourceDatabase implements SignerSource {
  private softDelete = false;

  static async open(url: string, timezone = 'UTC'): Promise<NotarySignerSource> {
    checkSourceUrl(url, '--signer');
    const source = new NotarySignerSource(await SourceDatabase.connect(url, '--signer', timezone));
    try {
      ({ softDelete: source.softDelete } = await inspectSignerSchema((t) => source.columns(t)));
    } catch (e) {
      await source.close();
      throw e;
    }
    return source;
  }

  /** Every key's description (no key material), in id order. */
  async keyInfos(onlyGun?: string): Promise<SourceKeyInfo[]> {
    const { rows } = await this.query<{
      id: number;
      key_id: string;
      algorithm: string;
      passphrase_alias: string;
      gun: string;
      role: string;
    }>(
      `select id, key_id, algorithm, passphrase_alias, gun, role from private_keys
        where ${this.softDelete ? 'deleted_at is null' : 'true'} and ($1::text is null or gun = $1) order by id`,
      [onlyGun ?? null],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      keyId: r.key_id.trim(),
      algorithm: r.algorithm,
      alias: r.passphrase_alias,
      gun: r.gun,
      role: r.role,
    }));
  }

  /** The full rows, key material included, of the given row ids. */
  async keys(ids: number[]): Promise<SourceKey[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.query<{
      id: number;
      key_id: string;
      algorithm: string;
      passphrase_alias: string;
      gun: string;
      role: string;
      public: Buffer;
      private: Buffer;
      created_at: string | null;
      last_used: string | null;
    }>(
      `select id, key_id, algorithm, passphrase_alias, gun, role, public, private,
              ${utcText('created_at')} as created_at, ${utcText('last_used')} as last_used
         from private_keys where id = any ($1::int[]) order by id`,
      [ids],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      keyId: r.key_id.trim(),
      algorithm: r.algorithm,
      alias: r.passphrase_alias,
      gun: r.gun,
      role: r.role,
      publicBytes: r.public,
      privateJwe: r.private.toString('latin1'),
      createdAt: r.created_at,
      lastUsed: r.last_used,
    }));
  }
}
