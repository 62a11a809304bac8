/**
 * One row per repository with current metadata (`repository_summaries`), rewritten in the
 * transaction of every change to the repository: what the inspector lists, searches and sorts
 * without reading any metadata file.
 */
import { sql } from 'kysely';
import type { Db } from './db.js';

export interface RoleExpiry {
  role: string;
  version: number;
  expires: string;
}

export interface RepositorySummaryRow {
  gun: string;
  signedTags: number;
  signers: string[];
  lastChange: Date;
  nearestExpiry: Date | null;
  nearestRole: string | null;
  expiries: RoleExpiry[];
}

export type SummarySort = 'gun' | 'tags' | 'changed' | 'expiry';

export interface SummaryQuery {
  /** Case-insensitive substring of the GUN. */
  q?: string | undefined;
  /** Only these repositories; undefined = all. */
  only?: readonly string[] | undefined;
  sort: SummarySort;
  order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

const SORT_COLUMNS = { gun: 'gun', tags: 'signed_tags', changed: 'last_change', expiry: 'nearest_expiry' } as const;
const COLUMNS = ['gun', 'signed_tags', 'signers', 'last_change', 'nearest_expiry', 'nearest_role', 'expiries'] as const;
// Bind parameters per `gun in (…)` list.
const IN_BATCH = 5000;

const batches = (list: readonly string[]) => Array.from({ length: Math.ceil(list.length / IN_BATCH) }, (_, i) => list.slice(i * IN_BATCH, (i + 1) * IN_BATCH));
const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

function toRow(r: {
  gun: string;
  signed_tags: number;
  signers: unknown;
  last_change: Date;
  nearest_expiry: Date | null;
  nearest_role: string | null;
  expiries: unknown;
}): RepositorySummaryRow {
  return {
    gun: r.gun,
    signedTags: r.signed_tags,
    signers: json(r.signers) as string[],
    lastChange: r.last_change,
    nearestExpiry: r.nearest_expiry,
    nearestRole: r.nearest_role,
    expiries: json(r.expiries) as RoleExpiry[],
  };
}

/** `%`, `_` and `\` taken literally in an ILIKE pattern. */
const likeLiteral = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export class SummaryStore {
  constructor(private readonly db: Db) {}

  async put(row: RepositorySummaryRow): Promise<void> {
    const values = {
      gun: row.gun,
      signed_tags: row.signedTags,
      signers: JSON.stringify(row.signers),
      last_change: row.lastChange,
      nearest_expiry: row.nearestExpiry,
      nearest_role: row.nearestRole,
      expiries: JSON.stringify(row.expiries),
    };
    await this.db
      .insertInto('repository_summaries')
      .values(values)
      .onConflict((oc) => oc.column('gun').doUpdateSet({ ...values, updated_at: sql<Date>`now()` }))
      .execute();
  }

  async remove(gun: string): Promise<void> {
    await this.db.deleteFrom('repository_summaries').where('gun', '=', gun).execute();
  }

  /** One page, and how many match in all. */
  async list(q: SummaryQuery): Promise<{ total: number; rows: RepositorySummaryRow[] }> {
    if (q.only && q.only.length === 0) return { total: 0, rows: [] };
    let base = this.db.selectFrom('repository_summaries');
    if (q.q) base = base.where('gun', 'ilike', `%${likeLiteral(q.q)}%`);
    if (q.only) {
      const only = q.only;
      base = base.where((eb) => eb.or(batches(only).map((b) => eb('gun', 'in', b))));
    }
    const column = SORT_COLUMNS[q.sort];
    const [count, rows] = await Promise.all([
      base.select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow(),
      base
        .select(COLUMNS)
        .orderBy(column, (ob) => (q.order === 'asc' ? ob.asc().nullsLast() : ob.desc().nullsLast()))
        .orderBy('gun')
        .limit(q.limit)
        .offset(q.offset)
        .execute(),
    ]);
    return { total: Number(count.n), rows: rows.map(toRow) };
  }

  /** Repositories with a role that needs its owner before `before`, soonest first. */
  async expiringBefore(before: Date, only?: readonly string[], limit = 10_000): Promise<RepositorySummaryRow[]> {
    if (only && only.length === 0) return [];
    let query = this.db.selectFrom('repository_summaries').select(COLUMNS).where('nearest_expiry', '<', before);
    if (only) query = query.where((eb) => eb.or(batches(only).map((b) => eb('gun', 'in', b))));
    const rows = await query.orderBy('nearest_expiry').orderBy('gun').limit(limit).execute();
    return rows.map(toRow);
  }

  /** Every summarised repository's name. */
  async names(): Promise<string[]> {
    return (await this.db.selectFrom('repository_summaries').select('gun').orderBy('gun').execute()).map((r) => r.gun);
  }

  /** Repositories with stored files but no summary (stored before summaries existed, or imported by an older version). */
  async missing(limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('tuf_files')
      .select('tuf_files.gun')
      .distinct()
      .where('tuf_files.role', '=', 'timestamp')
      .where((eb) =>
        eb.not(eb.exists(eb.selectFrom('repository_summaries').select('repository_summaries.gun').whereRef('repository_summaries.gun', '=', 'tuf_files.gun'))),
      )
      .limit(limit)
      .execute();
    return rows.map((r) => r.gun);
  }
}
