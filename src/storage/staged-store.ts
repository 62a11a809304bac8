/** Staged updates of key ceremonies: one row per staged role file, its signatures as they arrive. */
import type { SignatureEntry } from '../tuf/core/signatures.js';
import type { Db } from './db.js';

export type StagedState = 'pending' | 'published' | 'cancelled' | 'expired';

export interface StagedRow {
  id: string;
  gun: string;
  role: string;
  version: number;
  /** Canonical bytes of the file's `signed` part: what every signature covers. */
  signed: Buffer;
  signatures: SignatureEntry[];
  baseRootVersion: number;
  state: StagedState;
  stagedBy: string;
  createdAt: Date;
  expiresAt: Date;
  closedAt: Date | null;
  closedBy: string | null;
}

export interface NewStagedRow {
  id: string;
  gun: string;
  role: string;
  version: number;
  signed: Buffer;
  signatures: SignatureEntry[];
  baseRootVersion: number;
  stagedBy: string;
  createdAt: Date;
  expiresAt: Date;
}

const COLUMNS = [
  'id',
  'gun',
  'role',
  'version',
  'signed',
  'signatures',
  'base_root_version',
  'state',
  'staged_by',
  'created_at',
  'expires_at',
  'closed_at',
  'closed_by',
] as const;

type Raw = {
  id: string;
  gun: string;
  role: string;
  version: number;
  signed: Buffer | Uint8Array;
  signatures: unknown;
  base_root_version: number;
  state: StagedState;
  staged_by: string;
  created_at: Date;
  expires_at: Date;
  closed_at: Date | null;
  closed_by: string | null;
};

function toRow(r: Raw): StagedRow {
  const sigs = typeof r.signatures === 'string' ? (JSON.parse(r.signatures) as unknown) : r.signatures;
  return {
    id: r.id,
    gun: r.gun,
    role: r.role,
    version: r.version,
    signed: Buffer.from(r.signed),
    signatures: Array.isArray(sigs) ? (sigs as SignatureEntry[]) : [],
    baseRootVersion: r.base_root_version,
    state: r.state,
    stagedBy: r.staged_by,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    closedAt: r.closed_at,
    closedBy: r.closed_by,
  };
}

export interface StagedQuery {
  gun?: string | undefined;
  /** Only these states; all when absent. */
  states?: readonly StagedState[] | undefined;
  limit: number;
}

export class StagedStore {
  constructor(private readonly db: Db) {}

  async insert(row: NewStagedRow): Promise<void> {
    await this.db
      .insertInto('staged_updates')
      .values({
        id: row.id,
        gun: row.gun,
        role: row.role,
        version: row.version,
        signed: row.signed,
        signatures: JSON.stringify(row.signatures),
        base_root_version: row.baseRootVersion,
        state: 'pending',
        staged_by: row.stagedBy,
        created_at: row.createdAt,
        expires_at: row.expiresAt,
      })
      .execute();
  }

  async get(gun: string, id: string): Promise<StagedRow | null> {
    const r = await this.db.selectFrom('staged_updates').select(COLUMNS).where('gun', '=', gun).where('id', '=', id).executeTakeFirst();
    return r ? toRow(r as Raw) : null;
  }

  /** Oldest first. */
  async list(q: StagedQuery): Promise<StagedRow[]> {
    let query = this.db.selectFrom('staged_updates').select(COLUMNS);
    if (q.gun !== undefined) query = query.where('gun', '=', q.gun);
    if (q.states && q.states.length > 0) query = query.where('state', 'in', [...q.states]);
    const rows = await query.orderBy('created_at', 'asc').orderBy('id', 'asc').limit(q.limit).execute();
    return rows.map((r) => toRow(r as Raw));
  }

  async setSignatures(id: string, signatures: readonly SignatureEntry[]): Promise<void> {
    await this.db
      .updateTable('staged_updates')
      .set({ signatures: JSON.stringify(signatures) })
      .where('id', '=', id)
      .execute();
  }

  /** Close a pending item; false when it was no longer pending. */
  async close(id: string, state: Exclude<StagedState, 'pending'>, by: string, at: Date): Promise<boolean> {
    const result = await this.db
      .updateTable('staged_updates')
      .set({ state, closed_by: by, closed_at: at })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Pending items whose expiry has passed, oldest first. */
  async overdue(now: Date, limit: number): Promise<{ id: string; gun: string }[]> {
    return this.db
      .selectFrom('staged_updates')
      .select(['id', 'gun'])
      .where('state', '=', 'pending')
      .where('expires_at', '<', now)
      .orderBy('expires_at', 'asc')
      .limit(limit)
      .execute();
  }
}
