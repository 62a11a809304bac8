/**
 * Reading a notary deployment's databases: notary-server's `tuf_files` and `changefeed` and
 * notary-signer's `private_keys`, on Postgres or MySQL/MariaDB. The queries are written once,
 * over kysely; what the two engines say differently (time columns, byte-wise name comparison,
 * the read-only snapshot) is in source-engines.ts.
 */
import { sql } from 'kysely';
import { bytes, mysqlEngine, postgresEngine, str, strOrNull, type Engine } from './source-engines.js';
import { SourceError, checkSourceUrl, isMysqlUrl } from './source-url.js';

export { SourceError, sourceLabel } from './source-url.js';

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

/** Connect to `url` on its engine, inspect the schema, and hand both to the source's class. */
async function openSource<S, Schema>(
  url: string,
  what: '--from' | '--signer',
  timezone: string,
  inspect: (columns: (table: string) => Promise<Set<string>>) => Promise<Schema>,
  make: (engine: Engine, schema: Schema) => S,
): Promise<S> {
  checkSourceUrl(url, what);
  const engine = isMysqlUrl(url) ? await mysqlEngine(url, what, timezone) : await postgresEngine(url, what, timezone);
  try {
    return make(engine, await inspect((t) => engine.columns(t)));
  } catch (e) {
    await engine.close();
    throw e;
  }
}

/** Open notary-server's database: Postgres or MySQL, by the URL. */
export function openServerSource(url: string, timezone = 'UTC'): Promise<ServerSource> {
  return openSource(url, '--from', timezone, inspectServerSchema, (engine, schema) => new NotaryServerSource(engine, schema));
}

/** Open notary-signer's database: Postgres or MySQL, by the URL. */
export function openSignerSource(url: string, timezone = 'UTC'): Promise<SignerSource> {
  return openSource(url, '--signer', timezone, inspectSignerSchema, (engine, schema) => new NotarySignerSource(engine, schema));
}

const byName = (a: { gun: string }, b: { gun: string }) => (a.gun < b.gun ? -1 : a.gun > b.gun ? 1 : 0);

/** notary-server's database. */
class NotaryServerSource implements ServerSource {
  readonly hasChangefeed: boolean;
  private readonly softDelete: boolean;

  constructor(
    private readonly engine: Engine,
    schema: { softDelete: boolean; hasChangefeed: boolean },
  ) {
    this.softDelete = schema.softDelete;
    this.hasChangefeed = schema.hasChangefeed;
  }

  /** Rows gorm shows (not soft-deleted), of one repository or all. */
  private liveFiles(onlyGun?: string) {
    let q = this.engine.db.selectFrom('tuf_files');
    if (this.softDelete) q = q.where('deleted_at', 'is', null);
    if (onlyGun !== undefined) q = q.where(this.engine.gunIs(onlyGun));
    return q;
  }

  /** Repositories (GUNs) with their number of files, by name. */
  async repositories(onlyGun?: string): Promise<{ gun: string; files: number }[]> {
    // MySQL groups byte for byte (its collation would merge names differing in case).
    const grouped = this.engine.sortsRepositories
      ? this.liveFiles(onlyGun)
          .select([sql<string>`min(gun)`.as('gun'), (eb) => eb.fn.countAll().as('files')])
          .groupBy(sql`cast(gun as binary)`)
      : this.liveFiles(onlyGun)
          .select(['gun', (eb) => eb.fn.countAll().as('files')])
          .groupBy('gun')
          .orderBy('gun');
    const rows = (await grouped.execute()).map((r) => ({ gun: str(r.gun), files: Number(r.files) }));
    return this.engine.sortsRepositories ? rows.sort(byName) : rows;
  }

  /** Rows gorm would never show (soft-deleted): not part of the deployment, only counted. */
  async softDeletedRows(onlyGun?: string): Promise<number> {
    if (!this.softDelete) return 0;
    let q = this.engine.db.selectFrom('tuf_files').where('deleted_at', 'is not', null);
    if (onlyGun !== undefined) q = q.where(this.engine.gunIs(onlyGun));
    const row = await q.select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Every file of a repository in insertion order (notary inserts root, targets…, snapshot, timestamp). */
  async files(gun: string): Promise<SourceFileRow[]> {
    const rows = await this.liveFiles(gun)
      .select(['id', 'role', 'version', 'sha256', 'data', this.engine.timeText('created_at').as('created_at')])
      .orderBy('id')
      .execute();
    return rows.map((r) => ({
      id: Number(r.id),
      role: str(r.role),
      version: Number(r.version),
      sha256: strOrNull(r.sha256),
      data: bytes(r.data),
      createdAt: this.engine.readTime(r.created_at),
    }));
  }

  /** The changefeed in id order, in pages. */
  async *changes(onlyGun?: string, pageSize = 10_000): AsyncGenerator<SourceChange[]> {
    if (!this.hasChangefeed) return;
    let after = -1;
    for (;;) {
      let q = this.engine.db
        .selectFrom('changefeed')
        .select(['id', this.engine.timeText('created_at').as('created_at'), 'gun', 'version', 'sha256', 'category'])
        .where('id', '>', after);
      if (onlyGun !== undefined) q = q.where(this.engine.gunIs(onlyGun));
      const rows = await q.orderBy('id').limit(pageSize).execute();
      if (rows.length === 0) return;
      after = Number(rows[rows.length - 1]!.id);
      yield rows.map((r) => ({
        id: Number(r.id),
        createdAt: this.engine.readTime(r.created_at),
        gun: str(r.gun),
        version: Number(r.version),
        sha256: (strOrNull(r.sha256) ?? '').trim(),
        category: strOrNull(r.category) ?? 'update',
      }));
    }
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}

/** A private_keys row's description; key_id is char(64) in notary's schema, hence the trim. */
function keyInfoOf(r: { id: unknown; key_id: unknown; algorithm: unknown; passphrase_alias: unknown; gun: unknown; role: unknown }): SourceKeyInfo {
  return { id: Number(r.id), keyId: str(r.key_id).trim(), algorithm: str(r.algorithm), alias: str(r.passphrase_alias), gun: str(r.gun), role: str(r.role) };
}

/** notary-signer's database. */
class NotarySignerSource implements SignerSource {
  private readonly softDelete: boolean;

  constructor(
    private readonly engine: Engine,
    schema: { softDelete: boolean },
  ) {
    this.softDelete = schema.softDelete;
  }

  /** Every key's description (no key material), in id order. */
  async keyInfos(onlyGun?: string): Promise<SourceKeyInfo[]> {
    let q = this.engine.db.selectFrom('private_keys').select(['id', 'key_id', 'algorithm', 'passphrase_alias', 'gun', 'role']);
    if (this.softDelete) q = q.where('deleted_at', 'is', null);
    if (onlyGun !== undefined) q = q.where(this.engine.gunIs(onlyGun));
    const rows = await q.orderBy('id').execute();
    return rows.map(keyInfoOf);
  }

  /** The full rows, key material included, of the given row ids. */
  async keys(ids: number[]): Promise<SourceKey[]> {
    if (ids.length === 0) return [];
    const rows = await this.engine.db
      .selectFrom('private_keys')
      .select([
        'id',
        'key_id',
        'algorithm',
        'passphrase_alias',
        'gun',
        'role',
        'public',
        'private',
        this.engine.timeText('created_at').as('created_at'),
        this.engine.timeText('last_used').as('last_used'),
      ])
      .where('id', 'in', ids)
      .orderBy('id')
      .execute();
    return rows.map((r) => ({
      ...keyInfoOf(r),
      publicBytes: bytes(r.public),
      privateJwe: bytes(r.private).toString('latin1'),
      createdAt: this.engine.readTime(r.created_at),
      lastUsed: this.engine.readTime(r.last_used),
    }));
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}
