/**
 * The parameters of an audit trail query, one schema for `GET /_signet/audit` and `signet
 * audit` so both accept and refuse the same values. Input is text, as query strings and
 * command lines give it.
 */
import { z } from 'zod';
import type { AuditQuery, AuditRecord } from '../storage/audit-store.js';
import type { ServiceContext } from './context.js';

export type { Actor, AuditQuery, AuditRecord } from '../storage/audit-store.js';

const time = z.iso.datetime({ offset: true, error: 'must be an RFC 3339 time, e.g. 2026-11-23T08:00:00Z' }).transform((t) => new Date(t));
const LIMIT = 'must be a whole number from 1 to 1000';

export const auditQuerySchema = z.object({
  gun: z.string().min(1, 'must be a repository name').max(255, 'must be at most 255 characters').optional(),
  signer: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,199}$/, 'must be a signer name')
    .optional(),
  since: time.optional(),
  until: time.optional(),
  limit: z.coerce.number({ error: LIMIT }).int(LIMIT).min(1, LIMIT).max(1000, LIMIT).default(100),
});

/** The audit trail, newest first. */
export function readAuditTrail(ctx: ServiceContext, query: AuditQuery): Promise<AuditRecord[]> {
  return ctx.stores.audit.read(query);
}
