/** The audit trail: appended in the transaction of each change, read by time and repository. */
import { sql } from 'kysely';
import type { Db } from './db.js';

/** Who asked for a change, as the HTTP layer knows it. */
export interface Actor {
  subject: string;
  address?: string | undefined;
  requestId?: string | undefined;
}

export interface AuditRecord {
  id: string;
  time: string;
  gun: string;
  action: string;
  subject: string;
  address: string | null;
  requestId: string | null;
  detail: unknown;
}

export const SYSTEM_ACTOR: Actor = { subject: 'signet' };

export interface AuditQuery {
  gun?: string | undefined;
  /** Only records about this server-held signer (`detail.signer`). */
  signer?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  /** Only this subject. */
  actor?: string | undefined;
  /** Only this action (`update`, `delete`, `rotate_key`, `staged-…`). */
  action?: string | undefined;
  /** Only these repositories. */
  only?: readonly string[] | undefined;
  limit: number;
}

export class AuditStore {
  constructor(private readonly db: Db) {}

  async append(gun: string, action: string, actor: Actor, detail: object): Promise<void> {
    await this.db
      .insertInto('audit_log')
      .values({ gun, action, subject: actor.subject, address: actor.address ?? null, request_id: actor.requestId ?? null, detail: JSON.stringify(detail) })
      .execute();
  }

  /** Newest first. */
  async read(q: AuditQuery): Promise<AuditRecord[]> {
    let query = this.db.selectFrom('audit_log').select(['id', 'created_at', 'gun', 'action', 'subject', 'address', 'request_id', 'detail']);
    if (q.gun !== undefined) query = query.where('gun', '=', q.gun);
    if (q.signer !== undefined) query = query.where(sql<boolean>`detail ? 'signer' and detail->>'signer' = ${q.signer}`);
    if (q.since) query = query.where('created_at', '>=', q.since);
    if (q.until) query = query.where('created_at', '<', q.until);
    if (q.actor !== undefined) query = query.where('subject', '=', q.actor);
    if (q.action !== undefined) query = query.where('action', '=', q.action);
    if (q.only) {
      if (q.only.length === 0) return [];
      query = query.where('gun', 'in', q.only.slice(0, 5000));
    }
    const rows = await query.orderBy('id', 'desc').limit(q.limit).execute();
    return rows.map((r) => ({
      id: String(r.id),
      time: r.created_at.toISOString(),
      gun: r.gun,
      action: r.action,
      subject: r.subject,
      address: r.address,
      requestId: r.request_id,
      detail: typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail,
    }));
  }
}
