/**
 * The route table: for each route kind of `matchRoute`, how its parameters are parsed and which
 * use case answers it. The access a route needs is src/auth's `requiredAccess`, checked by the
 * guard sequence (pipeline.ts) before anything here runs; so is the GUN. A handler parses,
 * calls one use case and writes the answer; a failure it throws becomes notary's error envelope.
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { auditQuerySchema, readAuditTrail, type Actor } from '../service/audit-query.js';
import { readChangefeed } from '../service/changefeed.js';
import type { ServiceContext } from '../service/context.js';
import { deleteRepository } from '../service/delete-repository.js';
import { scanExpiry } from '../service/expiry.js';
import { repositoryAsOf } from '../service/history.js';
import { publishUpdate } from '../service/publish-update.js';
import { readByChecksum, readByVersion, readCurrent, type MetadataResponse } from '../service/read-metadata.js';
import { getServerKey, rotateServerKey } from '../service/server-keys.js';
import { publicKeyJson } from '../signing/server-key.js';
import type { Logger } from '../log.js';
import { readBody } from './body.js';
import type { MetadataAnswers } from './caching.js';
import { HttpError, toHttpError } from './errors.js';
import { multipartBoundary, parseMultipart } from './multipart.js';
import { requestInfo } from './observe.js';
import type { Route } from './paths.js';
import { STAGED_ROUTES } from './staged-routes.js';
import { SIGNER_ROUTES, type SignerEnv } from './signer-routes.js';
import { INSPECTOR_API } from './inspector-routes.js';
import { UI_ROUTES, type UiState } from '../ui/handlers.js';

/** What handlers work with, besides the request. */
export interface RouteEnv {
  ctx: ServiceContext;
  logger: Logger;
  limits: { maxBodyBytes: number; maxPartBytes: number; maxParts: number };
  /** Default window of the expiring-roles report, seconds. */
  expiryWarningSeconds: number;
  metadata: MetadataAnswers;
  /** The signing call of server-held signers: its rate limit and scan policy. */
  signing: SignerEnv['signing'];
  /** The inspector's pages: whether they are on, and their logins. */
  ui: UiState;
}

type Kind = Route['kind'];
/** The route of one kind (an intersection, since some members carry two kinds). */
type RouteOf<K extends Kind> = Route & { kind: K };

interface RouteSpec<K extends Kind, P> {
  /** Query parameters; a refusal is INVALID_PARAMETERS, thrown before any use case runs. */
  parse?: (req: Request, env: RouteEnv) => P;
  handle: (env: RouteEnv, route: RouteOf<K>, params: P, req: Request, res: Response) => Promise<void> | void;
}

interface RouteRunner {
  run(env: RouteEnv, route: Route, req: Request, res: Response): Promise<void> | void;
}

/** Bind a spec's parser to its handler, keeping the parameter type between them. */
function route<K extends Kind, P = undefined>(spec: RouteSpec<K, P>): RouteRunner {
  return {
    run: (env, r, req, res) => spec.handle(env, r as RouteOf<K>, (spec.parse ? spec.parse(req, env) : undefined) as P, req, res),
  };
}

function invalidParameters(issues: readonly z.core.$ZodIssue[], withPath: boolean): HttpError {
  return new HttpError('INVALID_PARAMETERS', issues.map((i) => (withPath ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; '));
}

/** One point in a repository's history: a time or a timestamp version, never both. */
const historyQuerySchema = z
  .object({
    at: z.iso
      .datetime({ offset: true, error: 'at must be an RFC 3339 time, such as 2026-01-31T12:00:00Z' })
      .transform((t) => new Date(t))
      .optional(),
    timestamp_version: z
      .string()
      .regex(/^[1-9][0-9]{0,9}$/, 'timestamp_version must be a version number, an integer from 1')
      .transform(Number)
      .refine((n) => n <= 2 ** 31 - 1, 'timestamp_version must be at most 2147483647')
      .optional(),
  })
  .refine((q) => q.at === undefined || q.timestamp_version === undefined, 'give either at or timestamp_version, not both');

const expiringQuerySchema = z.object({
  within: z.coerce
    .number()
    .int()
    .min(0)
    .max(10 * 365 * 86400)
    .optional(),
});

/** The changefeed's two parameters, as given (the use case validates them). */
function changefeedQuery(req: Request): { changeId: string | undefined; records: string | undefined } {
  const param = (v: unknown) => (typeof v === 'string' ? v : Array.isArray(v) ? String(v[0]) : undefined);
  return { changeId: param(req.query['change_id']), records: param(req.query['records']) };
}

/** Who is asking, for the audit trail. */
function actorOf(req: Request): Actor {
  const info = requestInfo(req);
  return { subject: info.subject ?? 'anonymous', address: info.remote, requestId: info.id };
}

const json = (res: Response, status: number, body: string) => res.status(status).type('application/json').send(body);
const sendMetadata = (env: RouteEnv, res: Response, meta: MetadataResponse, current: boolean) => env.metadata.send(res, meta.data, meta.lastModified, current);

const keyRoute = route<'getKey' | 'rotateKey'>({
  async handle({ ctx }, r, _p, req, res) {
    const key = r.kind === 'getKey' ? await getServerKey(ctx, r.gun, r.role) : await rotateServerKey(ctx, r.gun, r.role, actorOf(req));
    json(res, 200, publicKeyJson(key.keytype, key.publicKey));
  },
});

const changefeedRoute = route<'changefeed' | 'globalChangefeed', ReturnType<typeof changefeedQuery>>({
  parse: changefeedQuery,
  async handle({ ctx }, r, q, _req, res) {
    json(res, 200, JSON.stringify(await readChangefeed(ctx, r.kind === 'changefeed' ? r.gun : null, q.changeId, q.records)));
  },
});

export const ROUTES: { readonly [K in Kind]: RouteRunner } = {
  ping: route<'ping'>({ handle: (_env, _r, _p, _req, res) => void json(res, 200, '{}') }),
  health: route<'health'>({
    async handle({ ctx }, _r, _p, _req, res) {
      try {
        await ctx.database.ping();
        json(res, 200, '{}');
      } catch (e) {
        json(res, 503, JSON.stringify({ 'DB operational': (e as Error).message }));
      }
    },
  }),
  ready: route<'ready'>({
    async handle({ ctx }, _r, _p, _req, res) {
      const problems: Record<string, string> = {};
      try {
        await ctx.database.ping();
        const keys = await ctx.keys.accessProblem(ctx.stores.serverKeys);
        if (keys) problems['Key access'] = keys;
      } catch (e) {
        problems['DB operational'] = (e as Error).message;
      }
      json(res, Object.keys(problems).length === 0 ? 200 : 503, JSON.stringify(problems));
    },
  }),
  metrics: route<'metrics'>({
    async handle({ ctx }, _r, _p, _req, res) {
      res
        .status(200)
        .type(ctx.metrics.registry.contentType)
        .send(await ctx.metrics.registry.metrics());
    },
  }),
  audit: route<'audit', z.infer<typeof auditQuerySchema>>({
    parse(req) {
      const q = auditQuerySchema.safeParse(req.query);
      if (!q.success) throw invalidParameters(q.error.issues, true);
      return q.data;
    },
    async handle({ ctx }, _r, q, _req, res) {
      const records = await readAuditTrail(ctx, q);
      json(res, 200, JSON.stringify({ count: records.length, records }));
    },
  }),
  expiring: route<'expiring', number>({
    parse(req, env) {
      const q = expiringQuerySchema.safeParse(req.query);
      if (!q.success) throw new HttpError('INVALID_PARAMETERS', 'within must be a number of seconds');
      return (q.data.within ?? env.expiryWarningSeconds) * 1000;
    },
    async handle({ ctx }, _r, windowMs, _req, res) {
      const scan = await scanExpiry(ctx, { windowMs });
      json(res, 200, JSON.stringify({ count: scan.expiring.length, roles: scan.expiring }));
    },
  }),
  history: route<'history', z.infer<typeof historyQuerySchema>>({
    parse(req) {
      const q = historyQuerySchema.safeParse(req.query);
      if (!q.success) throw invalidParameters(q.error.issues, false);
      return q.data;
    },
    async handle({ ctx }, r, q, _req, res) {
      json(res, 200, JSON.stringify(await repositoryAsOf(ctx, r.gun, { at: q.at, timestampVersion: q.timestamp_version })));
    },
  }),
  update: route<'update'>({
    async handle({ ctx, logger, limits }, r, _p, req, res) {
      const boundary = multipartBoundary(req.headers['content-type']);
      const body = await readBody(req, limits.maxBodyBytes);
      const parts = parseMultipart(body, boundary, limits);
      const result = await publishUpdate(ctx, r.gun, parts, actorOf(req)).catch((e: unknown) => {
        const mapped = toHttpError(e);
        const detail = mapped?.detail as { Name?: string } | undefined;
        ctx.metrics.updates.inc({ result: 'refused', reason: mapped ? `${mapped.code}${detail?.Name ? ':' + detail.Name : ''}` : 'UPDATING' });
        throw e;
      });
      ctx.metrics.updates.inc({ result: 'accepted', reason: '' });
      logger.info('update stored', { gun: r.gun, subject: res.locals['subject'] ?? 'anonymous', stored: result.stored });
      res.status(200).end();
    },
  }),
  delete: route<'delete'>({
    async handle({ ctx, logger }, r, _p, req, res) {
      await deleteRepository(ctx, r.gun, actorOf(req));
      logger.info('repository deleted', { gun: r.gun, subject: res.locals['subject'] ?? 'anonymous' });
      res.status(200).end();
    },
  }),
  current: route<'current'>({
    async handle(env, r, _p, _req, res) {
      sendMetadata(env, res, await readCurrent(env.ctx, r.gun, r.role), true);
    },
  }),
  byChecksum: route<'byChecksum'>({
    async handle(env, r, _p, _req, res) {
      sendMetadata(env, res, await readByChecksum(env.ctx, r.gun, r.role, r.checksum), false);
    },
  }),
  byVersion: route<'byVersion'>({
    async handle(env, r, _p, _req, res) {
      sendMetadata(env, res, await readByVersion(env.ctx, r.gun, r.role, r.version), false);
    },
  }),
  getKey: keyRoute,
  rotateKey: keyRoute,
  changefeed: changefeedRoute,
  globalChangefeed: changefeedRoute,
  // ---- staged updates (key ceremonies): staged-routes.ts ----
  ...(STAGED_ROUTES as unknown as { [K in keyof typeof STAGED_ROUTES]: RouteRunner }),
  // ---- server-held signers: signer-routes.ts ----
  ...(SIGNER_ROUTES as unknown as { [K in keyof typeof SIGNER_ROUTES]: RouteRunner }),
  // ---- the inspector: read API (inspector-routes.ts) and pages (src/ui) ----
  ...(INSPECTOR_API as unknown as { [K in keyof typeof INSPECTOR_API]: RouteRunner }),
  ...(UI_ROUTES as unknown as { [K in keyof typeof UI_ROUTES]: RouteRunner }),
  notFound: route<'notFound'>({
    handle() {
      throw new HttpError('METADATA_NOT_FOUND');
    },
  }),
};
