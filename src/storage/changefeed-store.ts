/**
 * The changefeed: one record per stored timestamp and per repository deletion (written by
 * MetadataStore with the files), read in pages, and filled from another server on import.
 */
import { sql } from 'kysely';
import { requireTransaction, type Db } from './db.js';

export interface ChangeRecord {
  ID: string;
  CreatedAt: string;
  GUN: string;
  Version: number;
  SHA256: string;
  Category: 'update' | 'deletion';
}

/** A change record as another server stored it, to be copied. */
export interface CopiedChange {
  id: number;
  /** RFC 3339 text. */
  createdAt: string;
  gun: string;
  version: number;
  sha256: string;
  category: string;
}

const STAGE_ROWS = 2000;

export class ChangefeedStore {
  constructor(private readonly db: Db) {}

  /**
   * A page of the changefeed, oldest first (notary's `GetChanges`): from after `changeId`
   * forwards, or, for a negative change ID or record count, the page before it going backwards.
   */
  async page(gun: string | null, changeId: number, records: number): Promise<ChangeRecord[]> {
    const reversed = changeId < 0 || records < 0;
    const limit = Math.abs(records);
    let query = this.db.selectFrom('changefeed').select(['id', 'created_at', 'gun', 'version', 'sha256', 'category']);
    if (gun !== null) query = query.where('gun', '=', gun);
    if (reversed) {
      if (changeId > 0) query = query.where('id', '<', String(changeId));
      query = query.orderBy('id', 'desc');
    } else {
      query = query.where('id', '>', String(changeId)).orderBy('id', 'asc');
    }
    const rows = await query.limit(limit).execute();
    if (reversed) rows.reverse();
    return rows.map((r) => ({
      ID: String(r.id),
      CreatedAt: r.created_at.toISOString(),
      GUN: r.gun,
      Version: r.version,
      SHA256: r.sha256,
      Category: r.category,
    }));
  }

  /*
   * Copying another server's changefeed, in one transaction: stage the source records in a
   * temporary table, drop those already present, then append the rest in the source's order.
   */

  /** Keep every other writer of the changefeed out until the transaction ends. */
  async lockForImport(): Promise<void> {
    await sql`lock table changefeed in exclusive mode`.execute(requireTransaction(this.db, 'locking the changefeed'));
  }

  /** A staging table for source records, dropped when the transaction ends. */
  async startStaging(): Promise<void> {
    await sql`create temp table signet_import_changefeed (
      src_id bigint primary key, created_at timestamptz not null, gun varchar(255) not null,
      version integer not null, sha256 varchar(64) not null, category varchar(20) not null) on commit drop`.execute(
      requireTransaction(this.db, 'staging changefeed records'),
    );
  }

  async stage(changes: readonly CopiedChange[]): Promise<void> {
    for (let i = 0; i < changes.length; i += STAGE_ROWS) {
      const values = changes
        .slice(i, i + STAGE_ROWS)
        .map((c) => sql`(${c.id}, ${c.createdAt}::timestamptz, ${c.gun}, ${c.version}, ${c.sha256}, ${c.category})`);
      await sql`insert into signet_import_changefeed values ${sql.join(values)}`.execute(this.db);
    }
  }

  /** Drop staged records already in the changefeed (same repository, version, checksum, category and time); returns how many. */
  async dropStagedDuplicates(): Promise<number> {
    await sql`analyze signet_import_changefeed`.execute(this.db);
    const removed = await sql`delete from signet_import_changefeed s where exists (
        select 1 from changefeed c where c.gun = s.gun and c.version = s.version and c.sha256 = s.sha256
          and c.category = s.category and c.created_at = s.created_at)`.execute(this.db);
    return Number(removed.numAffectedRows ?? 0n);
  }

  /** What is left staged: how many records, and their lowest and highest source IDs. */
  async stagedSpan(): Promise<{ count: number; lowestId: string | null; highestId: string | null }> {
    const span = (
      await sql<{ n: number; lo: string | null; hi: string | null }>`
        select count(*)::int as n, min(src_id)::text as lo, max(src_id)::text as hi from signet_import_changefeed`.execute(this.db)
    ).rows[0]!;
    return { count: span.n, lowestId: span.lo, highestId: span.hi };
  }

  /** The highest change ID handed out so far, by the sequence or by a stored record. */
  async highestIdUsed(): Promise<number> {
    const seq = await this.sequence();
    const state = (await sql<{ last_value: string; is_called: boolean }>`select last_value::text, is_called from ${sql.raw(seq)}`.execute(this.db)).rows[0]!;
    const maxId = (await sql<{ m: string }>`select coalesce(max(id), 0)::text as m from changefeed`.execute(this.db)).rows[0]!.m;
    return Math.max(Number(state.last_value) - (state.is_called ? 0 : 1), Number(maxId));
  }

  /**
   * Append the staged records in source order. With `keepIds` they keep the source's IDs (all
   * above highestIdUsed) and the sequence moves past them; otherwise they get new ones.
   */
  async appendStaged(keepIds: boolean, highestId: string): Promise<void> {
    if (keepIds) {
      await sql`insert into changefeed (id, created_at, gun, version, sha256, category)
        select src_id, created_at, gun, version, sha256, category from signet_import_changefeed order by src_id`.execute(this.db);
      await sql`select setval(${await this.sequence()}::regclass, ${highestId}::bigint)`.execute(this.db);
    } else {
      await sql`insert into changefeed (created_at, gun, version, sha256, category)
        select created_at, gun, version, sha256, category from signet_import_changefeed order by src_id`.execute(this.db);
    }
  }

  private async sequence(): Promise<string> {
    return (await sql<{ seq: string }>`select pg_get_serial_sequence('changefeed', 'id') as seq`.execute(this.db)).rows[0]!.seq;
  }
}
