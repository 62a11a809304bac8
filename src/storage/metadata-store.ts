/**
 * Stored metadata files (`tuf_files`) and the changefeed records written with them, plus the
 * repository write lock that serialises their writers.
 */
import { sql } from 'kysely';
import { sha256Hex } from '../tuf/core/hashes.js';
import { notifyChange } from './change-notifier.js';
import { fixedWidth, requireTransaction, toBuffer, type Db } from './db.js';
import type { ServerKeyRow } from './server-key-store.js';

export interface StoredFileRow {
  role: string;
  version: number;
  sha256: string;
  data: Buffer;
  createdAt: Date;
}

/** A file being imported with the checksum and storage time its source recorded. */
export interface ImportedFile {
  role: string;
  version: number;
  sha256: string;
  data: Buffer;
  /** RFC 3339 text as the source gave it; null lets the database stamp the time. */
  createdAt: string | null;
}

export interface RepositorySummary {
  gun: string;
  files: number;
  lastChange: Date;
}

function toRow(r: { role: string; version: number; sha256: string; data: Buffer | Uint8Array; created_at: Date }): StoredFileRow {
  return { role: r.role, version: r.version, sha256: fixedWidth(r.sha256), data: toBuffer(r.data), createdAt: r.created_at };
}

const FILE_COLUMNS = ['role', 'version', 'sha256', 'data', 'created_at'] as const;
// Bound one INSERT statement: rows (bind parameters) and bytes (the message to the server).
const INSERT_ROWS = 500;
const INSERT_BYTES = 8 * 1024 * 1024;

function* chunks<T extends { data: Buffer }>(files: readonly T[]): Generator<T[]> {
  let chunk: T[] = [];
  let bytes = 0;
  for (const f of files) {
    if (chunk.length > 0 && (chunk.length >= INSERT_ROWS || bytes + f.data.length > INSERT_BYTES)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(f);
    bytes += f.data.length;
  }
  if (chunk.length > 0) yield chunk;
}

/**
 * What one transaction holding a repository's write lock has read or written of its files and
 * server keys (the embedded store carries it on to the repository's next transaction: see
 * EmbeddedReads). Under the lock no other writer can change the repository, and stored files
 * never change, so asking again within the transaction would give the same answer: an update
 * reads the current chain to validate against, writes the new files, then summarises the
 * result, and the summary needs no second round of queries.
 */
export class LockedReads {
  private readonly latestByRole = new Map<string, StoredFileRow | null>();
  private readonly byRoleSha = new Map<string, StoredFileRow>();
  private readonly versions = new Map<string, Map<string, number>>();
  private readonly guns = new Set<string>();
  /** Server keys by repository, read and kept up to date by ServerKeyStore. */
  readonly serverKeys = new Map<string, ServerKeyRow[]>();
  /** Bytes of the files remembered, each counted once. */
  bytes = 0;

  private static key(...parts: string[]): string {
    return parts.join('\u0000');
  }

  latest(gun: string, role: string): StoredFileRow | null | undefined {
    return this.latestByRole.get(LockedReads.key(gun, role));
  }

  checksum(gun: string, role: string, sha256: string): StoredFileRow | undefined {
    return this.byRoleSha.get(LockedReads.key(gun, role, sha256));
  }

  latestVersions(gun: string): Map<string, number> | undefined {
    const v = this.versions.get(gun);
    return v ? new Map(v) : undefined;
  }

  rememberLatest(gun: string, role: string, row: StoredFileRow | null): void {
    this.guns.add(gun);
    this.latestByRole.set(LockedReads.key(gun, role), row);
    if (row) this.rememberFile(gun, row);
  }

  rememberFile(gun: string, row: StoredFileRow): void {
    this.guns.add(gun);
    const key = LockedReads.key(gun, row.role, row.sha256);
    if (!this.byRoleSha.has(key)) this.bytes += row.data.length;
    this.byRoleSha.set(key, row);
  }

  rememberVersions(gun: string, versions: ReadonlyMap<string, number>): void {
    this.guns.add(gun);
    this.versions.set(gun, new Map(versions));
  }

  /** Whether everything remembered is about `gun`. */
  only(gun: string): boolean {
    for (const g of this.serverKeys.keys()) if (g !== gun) return false;
    return this.guns.size === 0 || (this.guns.size === 1 && this.guns.has(gun));
  }

  /** Files this transaction stored: each is now its role's newest; the one it replaces is let go. */
  stored(gun: string, rows: readonly StoredFileRow[]): void {
    for (const row of rows) {
      const previous = this.latestByRole.get(LockedReads.key(gun, row.role));
      const previousKey = previous ? LockedReads.key(gun, previous.role, previous.sha256) : null;
      if (previousKey && this.byRoleSha.delete(previousKey)) this.bytes -= previous!.data.length;
      this.rememberLatest(gun, row.role, row);
      this.versions.get(gun)?.set(row.role, row.version);
    }
  }

  forget(): void {
    this.latestByRole.clear();
    this.byRoleSha.clear();
    this.versions.clear();
    this.guns.clear();
    this.bytes = 0;
  }
}

export class MetadataStore {
  constructor(
    private readonly db: Db,
    /** Set only on stores bound to a transaction that holds the repository lock (withRepositoryLock). */
    private readonly locked: LockedReads | null = null,
  ) {}

  /**
   * Serialise writers of one repository, across every process on the database, until the
   * transaction ends. hashtextextended gives a 64-bit key, so unrelated GUNs rarely share a lock.
   */
  async lockRepository(gun: string): Promise<void> {
    await sql`select pg_advisory_xact_lock(hashtextextended(${gun}, 0))`.execute(requireTransaction(this.db, 'the repository lock'));
  }

  /** Tell every process on the database, when the transaction commits, that `gun` changed. */
  async announceChange(gun: string): Promise<void> {
    await notifyChange(requireTransaction(this.db, 'a change notification'), gun);
  }

  async latest(gun: string, role: string): Promise<StoredFileRow | null> {
    const known = this.locked?.latest(gun, role);
    if (known !== undefined) return known;
    const row = await this.db
      .selectFrom('tuf_files')
      .select(FILE_COLUMNS)
      .where('gun', '=', gun)
      .where('role', '=', role)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    const out = row ? toRow(row) : null;
    this.locked?.rememberLatest(gun, role, out);
    return out;
  }

  async byChecksum(gun: string, role: string, sha256: string): Promise<StoredFileRow | null> {
    const known = this.locked?.checksum(gun, role, sha256);
    if (known) return known;
    const row = await this.db
      .selectFrom('tuf_files')
      .select(FILE_COLUMNS)
      .where('gun', '=', gun)
      .where('role', '=', role)
      .where('sha256', '=', sha256)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    const out = row ? toRow(row) : null;
    if (out) this.locked?.rememberFile(gun, out);
    return out;
  }

  async byVersion(gun: string, role: string, version: number): Promise<StoredFileRow | null> {
    const row = await this.db
      .selectFrom('tuf_files')
      .select(FILE_COLUMNS)
      .where('gun', '=', gun)
      .where('role', '=', role)
      .where('version', '=', version)
      .executeTakeFirst();
    return row ? toRow(row) : null;
  }

  /** Files of a repository by checksum, for loading the roles a snapshot lists. */
  async byChecksums(gun: string, sha256s: string[]): Promise<StoredFileRow[]> {
    if (sha256s.length === 0) return [];
    const rows = await this.db.selectFrom('tuf_files').select(FILE_COLUMNS).where('gun', '=', gun).where('sha256', 'in', sha256s).execute();
    return rows.map(toRow);
  }

  /** The file of each role with the checksum given for it (the roles a snapshot lists); missing ones are left out. */
  async byRoleChecksums(gun: string, wanted: ReadonlyMap<string, string>): Promise<StoredFileRow[]> {
    const out: StoredFileRow[] = [];
    const missing = new Map<string, string>();
    for (const [role, sha] of wanted) {
      const known = this.locked?.checksum(gun, role, sha);
      if (known) out.push(known);
      else missing.set(role, sha);
    }
    if (missing.size === 0) return out;
    for (const row of await this.byChecksums(gun, [...new Set(missing.values())])) {
      if (missing.get(row.role) !== row.sha256) continue;
      out.push(row);
      this.locked?.rememberFile(gun, row);
    }
    return out;
  }

  /** The newest `role` file stored at or before `at`. */
  async latestAsOf(gun: string, role: string, at: Date): Promise<StoredFileRow | null> {
    const row = await this.db
      .selectFrom('tuf_files')
      .select(FILE_COLUMNS)
      .where('gun', '=', gun)
      .where('role', '=', role)
      .where('created_at', '<=', at)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? toRow(row) : null;
  }

  /** Every stored file of a repository, by role then version. */
  async allOf(gun: string): Promise<StoredFileRow[]> {
    const rows = await this.db.selectFrom('tuf_files').select(FILE_COLUMNS).where('gun', '=', gun).orderBy('role').orderBy('version').execute();
    return rows.map(toRow);
  }

  /** Role, version and checksum of every stored file of a repository, without the bytes. */
  async checksumsOf(gun: string): Promise<{ role: string; version: number; sha256: string }[]> {
    const rows = await this.db.selectFrom('tuf_files').select(['role', 'version', 'sha256']).where('gun', '=', gun).execute();
    return rows.map((r) => ({ role: r.role, version: r.version, sha256: fixedWidth(r.sha256) }));
  }

  /** Every stored version of a repository, newest first, without the bytes. */
  async versionsOf(gun: string, limit: number): Promise<{ role: string; version: number; sha256: string; length: number; createdAt: Date }[]> {
    const rows = await this.db
      .selectFrom('tuf_files')
      .select(['role', 'version', 'sha256', 'created_at', sql<number>`octet_length(data)`.as('length')])
      .where('gun', '=', gun)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ role: r.role, version: r.version, sha256: fixedWidth(r.sha256), length: Number(r.length), createdAt: r.created_at }));
  }

  /**
   * The highest version stored of each role. A walk down the (gun, role, version) index, one
   * probe per role (a loose index scan): the cost does not grow with the number of versions a
   * repository keeps, as a GROUP BY over all its rows would (every update asks for this).
   */
  async latestVersions(gun: string): Promise<Map<string, number>> {
    const known = this.locked?.latestVersions(gun);
    if (known) return known;
    const result = await sql<{ role: string; version: number }>`
      with recursive latest as (
        (select role, version from tuf_files where gun = ${gun} order by role desc, version desc limit 1)
        union all
        select next.role, next.version from latest, lateral (
          select role, version from tuf_files where gun = ${gun} and role < latest.role order by role desc, version desc limit 1
        ) next
      )
      select role, version from latest`.execute(this.db);
    const versions = new Map(result.rows.map((r) => [r.role, Number(r.version)]));
    this.locked?.rememberVersions(gun, versions);
    return versions;
  }

  async exists(gun: string): Promise<boolean> {
    return (await this.db.selectFrom('tuf_files').select('gun').where('gun', '=', gun).limit(1).executeTakeFirst()) !== undefined;
  }

  /** Every repository with stored files, by name. */
  async repositories(): Promise<string[]> {
    return (await this.db.selectFrom('tuf_files').select('gun').distinct().orderBy('gun').execute()).map((r) => r.gun);
  }

  /** Every repository with its number of stored files and the time of its newest one, by name. */
  async repositorySummaries(): Promise<RepositorySummary[]> {
    const rows = await this.db
      .selectFrom('tuf_files')
      .select(['gun', (eb) => eb.fn.countAll<string>().as('files'), (eb) => eb.fn.max('created_at').as('changed')])
      .groupBy('gun')
      .orderBy('gun')
      .execute();
    return rows.map((r) => ({ gun: r.gun, files: Number(r.files), lastChange: new Date(r.changed as unknown as string) }));
  }

  /** Insert new files; every stored timestamp also gets a changefeed record. */
  async insert(gun: string, files: readonly { role: string; version: number; bytes: Buffer }[]): Promise<void> {
    if (files.length === 0) return;
    const values = files.map((f) => ({ gun, role: f.role, version: f.version, sha256: sha256Hex(f.bytes), data: f.bytes }));
    const feed = values.filter((v) => v.role === 'timestamp').map((t) => ({ gun, version: t.version, sha256: t.sha256, category: 'update' as const }));
    // One statement: the changefeed records are written by a data-modifying CTE of the files' insert.
    const stamped =
      feed.length > 0
        ? await this.db
            .with('feed', (db) => db.insertInto('changefeed').values(feed))
            .insertInto('tuf_files')
            .values(values)
            .returning(['role', 'created_at'])
            .execute()
        : await this.db.insertInto('tuf_files').values(values).returning(['role', 'created_at']).execute();
    const at = new Map(stamped.map((r) => [r.role, r.created_at]));
    this.locked?.stored(
      gun,
      values.map((v) => ({ role: v.role, version: v.version, sha256: v.sha256, data: toBuffer(v.data), createdAt: at.get(v.role)! })),
    );
  }

  /**
   * Insert files copied from another server, with the times it recorded. No changefeed records:
   * an import copies the source's changefeed as it was (ChangefeedStore).
   */
  async insertImported(gun: string, files: readonly ImportedFile[]): Promise<void> {
    this.locked?.forget();
    for (const chunk of chunks(files)) {
      await this.db
        .insertInto('tuf_files')
        .values(
          chunk.map((f) => ({
            gun,
            role: f.role,
            version: f.version,
            sha256: f.sha256,
            data: f.data,
            ...(f.createdAt ? { created_at: sql<Date>`${f.createdAt}::timestamptz` } : {}),
          })),
        )
        .execute();
    }
  }

  /** Remove every file of a repository; records a deletion when anything existed. */
  async deleteRepository(gun: string): Promise<number> {
    this.locked?.forget();
    const result = await this.db.deleteFrom('tuf_files').where('gun', '=', gun).executeTakeFirst();
    const deleted = Number(result.numDeletedRows);
    if (deleted > 0) {
      await this.db.insertInto('changefeed').values({ gun, version: 0, sha256: '', category: 'deletion' }).execute();
    }
    return deleted;
  }
}
