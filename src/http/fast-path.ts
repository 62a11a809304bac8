/**
 * The hot read path: a GET of metadata that is in the in-process cache is answered straight on
 * node's request/response, with headers computed once per file, before express is involved.
 * Everything else (misses, errors, writes, auth failures) goes to the express app, so the
 * answers are the same either way; only the cost differs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requiredAccess } from '../auth/access.js';
import type { TokenAuthenticator } from '../auth/token-auth.js';
import type { ServiceContext } from '../service/context.js';
import { peekMetadata } from '../service/read-metadata.js';
import { formatLastModified } from '../tuf/core/time.js';
import type { CachePolicy } from './caching.js';
import { requestInfo } from './observe.js';
import { gunProblem, matchRoute } from './paths.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

function cacheControl(maxAge: number, current: boolean): Record<string, string> {
  return maxAge > 0
    ? { 'Cache-Control': `public, max-age=${maxAge}, s-maxage=${maxAge}${current ? ', must-revalidate' : ''}` }
    : { 'Cache-Control': 'max-age=0, no-cache, no-store', Pragma: 'no-cache' };
}

export function withFastReads(
  ctx: ServiceContext,
  options: { cache: CachePolicy; auth?: TokenAuthenticator | undefined; gunPrefixes?: string[] },
  next: Handler,
): Handler {
  const currentHeaders = cacheControl(options.cache.currentMaxAge, true);
  const consistentHeaders = cacheControl(options.cache.consistentMaxAge, false);
  const lastModified = new WeakMap<Date, string>();

  return (req, res) => {
    if (req.method !== 'GET' || !req.url || !req.url.startsWith('/v2/')) return next(req, res);
    const q = req.url.indexOf('?');
    let path: string;
    try {
      path = decodeURIComponent(q < 0 ? req.url : req.url.slice(0, q));
    } catch {
      return next(req, res);
    }
    const route = matchRoute('GET', path);
    if (route.kind !== 'current' && route.kind !== 'byChecksum' && route.kind !== 'byVersion') return next(req, res);
    if (gunProblem(route.gun)) return next(req, res);
    if (options.gunPrefixes?.length && !options.gunPrefixes.some((p) => route.gun.startsWith(p))) return next(req, res);
    let subject: string | undefined;
    if (options.auth) {
      const result = options.auth.authorize(req.headers.authorization, requiredAccess(route)!);
      if (!result.ok) return next(req, res);
      subject = result.subject || 'anonymous';
    }
    const hit = peekMetadata(ctx, route.gun, {
      role: route.role,
      ...(route.kind === 'byChecksum' ? { checksum: route.checksum } : {}),
      ...(route.kind === 'byVersion' ? { version: route.version } : {}),
    });
    if (!hit) return next(req, res);
    const info = requestInfo(req);
    info.route = route.kind;
    info.gun = route.gun;
    if (subject) info.subject = subject;
    ctx.metrics.cache.inc({ result: 'hit' });
    let modified = lastModified.get(hit.lastModified);
    if (!modified) {
      modified = formatLastModified(hit.lastModified.getTime());
      lastModified.set(hit.lastModified, modified);
    }
    res.writeHead(200, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': hit.data.length,
      'Last-Modified': modified,
      ...(route.kind === 'current' ? currentHeaders : consistentHeaders),
    });
    res.end(hit.data);
  };
}
