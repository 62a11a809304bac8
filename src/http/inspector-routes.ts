/**
 * The inspector's read API, registered from the route table: GET only, JSON out, every query
 * parameter checked with zod before a use case runs (a refusal is 400 INVALID_PARAMETERS).
 * Access and the GUN are checked by the guard sequence like every route's: one repository
 * needs pull on it, the lists across repositories need `registry:catalog:*`.
 *
 *   GET /api/v1/repositories[?q=&sort=&order=&limit=&cursor=]
 *   GET /api/v1/repositories/{gun}
 *   GET /api/v1/repositories/{gun}/history[?limit=]
 *   GET /api/v1/repositories/{gun}/diff?role=&from=&to=
 *   GET /api/v1/expiring[?within=]
 *   GET /api/v1/audit[?gun=&actor=&action=&since=&until=&limit=]
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { ServiceContext } from '../service/context.js';
import { auditTrail, expiringAcross, listRepositories, repositoryDetail, repositoryHistory, roleDiff } from '../service/inspector.js';
import { HttpError } from './errors.js';
import type { InspectorRoute } from './paths.js';

export interface InspectorEnv {
  ctx: ServiceContext;
  /** The warning window: what expires sooner is flagged, seconds. */
  expiryWarningSeconds: number;
}

/** Limits of every answer. */
export const INSPECTOR_LIMITS = { page: 500, tags: 5000, history: 1000, changes: 2000, expiring: 5000, audit: 1000 } as const;

const DAY = 86_400;
const text = (name: string, max = 255) =>
  z
    .string({ error: `${name} must be given once` })
    .min(1, `${name} must not be empty`)
    .max(max, `${name} must be at most ${max} characters`);
const time = (name: string) =>
  z.iso.datetime({ offset: true, error: `${name} must be an RFC 3339 time, e.g. 2026-11-23T08:00:00Z` }).transform((t) => new Date(t));
const count = (name: string, max: number) =>
  z
    .string({ error: `${name} must be given once` })
    .regex(/^[1-9][0-9]{0,6}$/, `${name} must be a whole number from 1 to ${max}`)
    .transform(Number)
    .refine((n) => n <= max, `${name} must be a whole number from 1 to ${max}`);
const version = (name: string) =>
  z
    .string({ error: `${name} must be given once` })
    .regex(/^[1-9][0-9]{0,9}$/, `${name} must be a version number`)
    .transform(Number)
    .refine((n) => n <= 2 ** 31 - 1, `${name} must be at most 2147483647`);

/** An opaque page cursor: the offset of the next page. */
export const encodeCursor = (offset: number) => Buffer.from(`o:${offset}`).toString('base64url');
const cursor = z
  .string({ error: 'cursor must be given once' })
  .max(32, 'cursor is not one this server gave')
  .transform((c, ctx) => {
    const m = /^o:([0-9]{1,9})$/.exec(Buffer.from(c, 'base64url').toString('utf8'));
    if (!m) {
      ctx.addIssue({ code: 'custom', message: 'cursor is not one this server gave' });
      return z.NEVER;
    }
    return Number(m[1]);
  });

export const listQuerySchema = z.strictObject({
  q: z.string({ error: 'q must be given once' }).max(255, 'q must be at most 255 characters').optional(),
  sort: z.enum(['gun', 'tags', 'changed', 'expiry'], { error: 'sort must be gun, tags, changed or expiry' }).default('gun'),
  order: z.enum(['asc', 'desc'], { error: 'order must be asc or desc' }).optional(),
  limit: count('limit', INSPECTOR_LIMITS.page).default(50),
  cursor: cursor.optional(),
});

export const withinSchema = z
  .string({ error: 'within must be given once' })
  .regex(/^[0-9]{1,10}$/, 'within must be a number of seconds')
  .transform(Number)
  .refine((n) => n <= 10 * 365 * DAY, 'within must be at most ten years');
const expiringQuerySchema = z.strictObject({ within: withinSchema.optional(), limit: count('limit', INSPECTOR_LIMITS.expiring).default(1000) });

export const auditQuerySchema = z.strictObject({
  gun: text('gun').optional(),
  actor: text('actor').optional(),
  action: text('action', 32).optional(),
  since: time('since').optional(),
  until: time('until').optional(),
  limit: count('limit', INSPECTOR_LIMITS.audit).default(100),
});

const historyQuerySchema = z.strictObject({ limit: count('limit', INSPECTOR_LIMITS.history).default(200) });
export const diffQuerySchema = z.strictObject({
  role: z
    .string({ error: 'role must be given once' })
    .regex(/^(root|snapshot|timestamp|targets(\/[a-z0-9_\-/]+)?)$/, 'role must be root, targets, snapshot, timestamp or a delegation (targets/…)')
    .max(255),
  from: version('from'),
  to: version('to'),
});

export function issues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; ');
}

/** Parse a query string with a schema, or refuse with 400 INVALID_PARAMETERS. */
export function parseQuery<S extends z.ZodType>(schema: S, req: Request): z.output<S> {
  const q = schema.safeParse(req.query);
  if (!q.success) throw new HttpError('INVALID_PARAMETERS', issues(q.error));
  return q.data;
}

const json = (res: Response, body: unknown) => res.status(200).type('application/json').set('Cache-Control', 'no-store').send(JSON.stringify(body));

type RouteOf<K extends InspectorRoute['kind']> = InspectorRoute & { kind: K };

export const INSPECTOR_API = {
  listRepositories: {
    async run(env: InspectorEnv, _r: RouteOf<'listRepositories'>, req: Request, res: Response) {
      const q = parseQuery(listQuerySchema, req);
      const offset = q.cursor ?? 0;
      const list = await listRepositories(env.ctx, {
        q: q.q,
        sort: q.sort,
        order: q.order ?? (q.sort === 'tags' || q.sort === 'changed' ? 'desc' : 'asc'),
        limit: q.limit,
        offset,
        warningMs: env.expiryWarningSeconds * 1000,
      });
      json(res, { total: list.total, repositories: list.repositories, next: list.next === null ? null : encodeCursor(list.next) });
    },
  },
  getRepository: {
    async run(env: InspectorEnv, r: RouteOf<'getRepository'>, req: Request, res: Response) {
      parseQuery(z.strictObject({}), req);
      json(res, await repositoryDetail(env.ctx, r.gun, { warningMs: env.expiryWarningSeconds * 1000, maxTags: INSPECTOR_LIMITS.tags }));
    },
  },
  repositoryHistory: {
    async run(env: InspectorEnv, r: RouteOf<'repositoryHistory'>, req: Request, res: Response) {
      const q = parseQuery(historyQuerySchema, req);
      json(res, await repositoryHistory(env.ctx, r.gun, { limit: q.limit }));
    },
  },
  roleDiff: {
    async run(env: InspectorEnv, r: RouteOf<'roleDiff'>, req: Request, res: Response) {
      const q = parseQuery(diffQuerySchema, req);
      json(res, await roleDiff(env.ctx, r.gun, q.role, q.from, q.to, { maxChanges: INSPECTOR_LIMITS.changes }));
    },
  },
  apiExpiring: {
    async run(env: InspectorEnv, _r: RouteOf<'apiExpiring'>, req: Request, res: Response) {
      const q = parseQuery(expiringQuerySchema, req);
      const windowSeconds = q.within ?? env.expiryWarningSeconds;
      const result = await expiringAcross(env.ctx, { windowMs: windowSeconds * 1000, warningMs: env.expiryWarningSeconds * 1000, limit: q.limit });
      json(res, { within: windowSeconds, ...result });
    },
  },
  apiAudit: {
    async run(env: InspectorEnv, _r: RouteOf<'apiAudit'>, req: Request, res: Response) {
      const q = parseQuery(auditQuerySchema, req);
      const records = await auditTrail(env.ctx, q);
      json(res, { count: records.length, records });
    },
  },
};
