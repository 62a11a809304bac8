/**
 * The Notary v1 HTTP API. Handlers parse the request, call one use case, and write the answer;
 * every failure leaves as notary's error envelope.
 */
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { auditQuerySchema, readAuditTrail, type Actor } from '../service/audit-query.js';
import { scanExpiry } from '../service/expiry.js';
import { repositoryAsOf } from '../service/history.js';
import { deleteRepository } from '../service/delete-repository.js';
import { readChangefeed } from '../service/changefeed.js';
import type { ServiceContext } from '../service/context.js';
import { publishUpdate } from '../service/publish-update.js';
import { readByChecksum, readByVersion, readCurrent, type MetadataResponse } from '../service/read-metadata.js';
import { getServerKey, rotateServerKey } from '../service/server-keys.js';
import { publicKeyJson } from '../signing/server-key.js';
import { requiredAccess } from '../auth/access.js';
import type { TokenAuthenticator } from '../auth/token-auth.js';
import type { Logger } from '../log.js';
import { readBody } from './body.js';
import { setMetadataCacheHeaders, type CachePolicy } from './caching.js';
import { HttpError, sendError, toHttpError } from './errors.js';
import { multipartBoundary, parseMultipart } from './multipart.js';
import { requestInfo } from './observe.js';
import { gunProblem, isWriteShaped, matchRoute, type Route } from './paths.js';

export interface AppOptions {
  /** Token authentication; absent = no authentication. */
  auth?: TokenAuthenticator | undefined;
  cache: CachePolicy;
  limits: { maxBodyBytes: number; maxPartBytes: number; maxParts: number };
  logger: Logger;
  /** Default window of the expiring-roles report, seconds. */
  expiryWarningSeconds: number;
  /** Repository name prefixes served; empty = all (notary's `repositories.gun_prefixes`). */
  gunPrefixes?: string[];
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

/** Who is asking, for the audit trail. */
function actorOf(req: Request): Actor {
  const info = requestInfo(req);
  return { subject: info.subject ?? 'anonymous', address: info.remote, requestId: info.id };
}

function decodePath(rawPath: string): string | null {
  try {
    return decodeURIComponent(rawPath);
  } catch {
    return null;
  }
}

export function createApp(ctx: ServiceContext, options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // notary sends no ETag; clients rely on Last-Modified/Cache-Control only

  const sendMetadata = (res: Response, meta: MetadataResponse, current: boolean) => {
    setMetadataCacheHeaders(res, current ? options.cache.currentMaxAge : options.cache.consistentMaxAge, current, meta.lastModified);
    // res.end, not res.send: no conditional 304s, exactly as notary (and the fast path) answer.
    res.status(200).type('application/json').set('Content-Length', String(meta.data.length)).end(meta.data);
  };

  const handle = async (route: Route, req: Request, res: Response): Promise<void> => {
    const info = requestInfo(req);
    info.route = route.kind;
    if ('gun' in route) {
      info.gun = route.gun;
      const problem = gunProblem(route.gun);
      if (problem) throw new HttpError('INVALID_GUN', problem);
      const prefixes = options.gunPrefixes ?? [];
      if (prefixes.length > 0 && !prefixes.some((p) => route.gun.startsWith(p))) {
        // As notary: an update is told why; every other route sees no such repository.
        if (route.kind === 'update') throw new HttpError('INVALID_GUN', `Require GUNs with prefix: [${prefixes.join(' ')}]`);
        throw new HttpError('METADATA_NOT_FOUND');
      }
    }
    const required = options.auth ? requiredAccess(route) : null;
    if (options.auth && required) {
      const result = options.auth.authorize(req.headers.authorization, required);
      if (!result.ok) {
        res.set('WWW-Authenticate', result.challenge);
        options.logger.info('request refused by auth', { requestId: info.id, method: req.method, path: req.path, reason: result.reason });
        throw new HttpError(
          'UNAUTHORIZED',
          required.map((a) => ({ Type: a.type, Class: '', Name: a.name, Action: a.action })),
        );
      }
      res.locals['subject'] = info.subject = result.subject || 'anonymous';
    }
    switch (route.kind) {
      case 'ping':
        res.status(200).type('application/json').send('{}');
        return;
      case 'health': {
        try {
          await ctx.database.ping();
          res.status(200).type('application/json').send('{}');
        } catch (e) {
          res
            .status(503)
            .type('application/json')
            .send(JSON.stringify({ 'DB operational': (e as Error).message }));
        }
        return;
      }
      case 'ready': {
        const problems: Record<string, string> = {};
        try {
          await ctx.database.ping();
          const keys = await ctx.keys.accessProblem(ctx.stores.serverKeys);
          if (keys) problems['Key access'] = keys;
        } catch (e) {
          problems['DB operational'] = (e as Error).message;
        }
        const ok = Object.keys(problems).length === 0;
        res
          .status(ok ? 200 : 503)
          .type('application/json')
          .send(JSON.stringify(problems));
        return;
      }
      case 'audit': {
        const q = auditQuerySchema.safeParse(req.query);
        if (!q.success) throw new HttpError('INVALID_PARAMETERS', q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
        const records = await readAuditTrail(ctx, q.data);
        res
          .status(200)
          .type('application/json')
          .send(JSON.stringify({ count: records.length, records }));
        return;
      }
      case 'expiring': {
        const q = z
          .object({
            within: z.coerce
              .number()
              .int()
              .min(0)
              .max(10 * 365 * 86400)
              .optional(),
          })
          .safeParse(req.query);
        if (!q.success) throw new HttpError('INVALID_PARAMETERS', 'within must be a number of seconds');
        const scan = await scanExpiry(ctx, { windowMs: (q.data.within ?? options.expiryWarningSeconds) * 1000 });
        res
          .status(200)
          .type('application/json')
          .send(JSON.stringify({ count: scan.expiring.length, roles: scan.expiring }));
        return;
      }
      case 'history': {
        const q = historyQuerySchema.safeParse(req.query);
        if (!q.success) throw new HttpError('INVALID_PARAMETERS', q.error.issues.map((i) => i.message).join('; '));
        res
          .status(200)
          .type('application/json')
          .send(JSON.stringify(await repositoryAsOf(ctx, route.gun, { at: q.data.at, timestampVersion: q.data.timestamp_version })));
        return;
      }
      case 'metrics':
        res
          .status(200)
          .type(ctx.metrics.registry.contentType)
          .send(await ctx.metrics.registry.metrics());
        return;
      case 'update': {
        const boundary = multipartBoundary(req.headers['content-type']);
        const body = await readBody(req, options.limits.maxBodyBytes);
        const parts = parseMultipart(body, boundary, options.limits);
        const result = await publishUpdate(ctx, route.gun, parts, actorOf(req)).catch((e: unknown) => {
          const mapped = toHttpError(e);
          const detail = mapped?.detail as { Name?: string } | undefined;
          ctx.metrics.updates.inc({ result: 'refused', reason: mapped ? `${mapped.code}${detail?.Name ? ':' + detail.Name : ''}` : 'UPDATING' });
          throw e;
        });
        ctx.metrics.updates.inc({ result: 'accepted', reason: '' });
        options.logger.info('update stored', { gun: route.gun, subject: res.locals['subject'] ?? 'anonymous', stored: result.stored });
        res.status(200).end();
        return;
      }
      case 'delete':
        await deleteRepository(ctx, route.gun, actorOf(req));
        options.logger.info('repository deleted', { gun: route.gun, subject: res.locals['subject'] ?? 'anonymous' });
        res.status(200).end();
        return;
      case 'current':
        sendMetadata(res, await readCurrent(ctx, route.gun, route.role), true);
        return;
      case 'byChecksum':
        sendMetadata(res, await readByChecksum(ctx, route.gun, route.role, route.checksum), false);
        return;
      case 'byVersion':
        sendMetadata(res, await readByVersion(ctx, route.gun, route.role, route.version), false);
        return;
      case 'getKey':
      case 'rotateKey': {
        const key = route.kind === 'getKey' ? await getServerKey(ctx, route.gun, route.role) : await rotateServerKey(ctx, route.gun, route.role, actorOf(req));
        res.status(200).type('application/json').send(publicKeyJson(key.keytype, key.publicKey));
        return;
      }
      case 'changefeed':
      case 'globalChangefeed': {
        const q = req.query;
        const param = (v: unknown) => (typeof v === 'string' ? v : Array.isArray(v) ? String(v[0]) : undefined);
        const page = await readChangefeed(ctx, route.kind === 'changefeed' ? route.gun : null, param(q['change_id']), param(q['records']));
        res.status(200).type('application/json').send(JSON.stringify(page));
        return;
      }
      case 'notFound':
        throw new HttpError('METADATA_NOT_FOUND');
    }
  };

  app.use(async (req: Request, res: Response) => {
    const path = decodePath(req.path);
    const route: Route = path === null ? { kind: 'notFound' } : matchRoute(req.method, path);
    try {
      // A write to a name that is not valid percent-encoded UTF-8 is told why, as a write to any
      // other name Signet refuses is; a read of one just finds nothing.
      if (path === null && isWriteShaped(req.method, req.path)) {
        throw new HttpError('INVALID_GUN', 'the name is not valid percent-encoded UTF-8');
      }
      await handle(route, req, res);
    } catch (error) {
      const mapped = toHttpError(error);
      if (mapped) {
        if (mapped.status >= 500)
          options.logger.warn('request failed', { requestId: requestInfo(req).id, method: req.method, path: req.path, code: mapped.code });
        if (mapped.code === 'TOO_LARGE') res.set('Connection', 'close');
        sendError(res, mapped);
      } else {
        options.logger.error('unexpected error', {
          requestId: requestInfo(req).id,
          method: req.method,
          path: req.path,
          error: (error as Error).message,
          stack: (error as Error).stack,
        });
        sendError(res, new HttpError(route.kind === 'update' ? 'UPDATING' : 'UNKNOWN'));
      }
    }
  });
  return app;
}
