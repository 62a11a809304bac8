/**
 * The hot read path: a GET of metadata that is in the in-process cache is answered straight on
 * node's request/response, before express is involved. It runs the same guard sequence as the
 * express path (pipeline.ts) and writes the same answer (caching.ts); anything else (a refusal,
 * a miss, another route) goes to the express app, which runs the guards again and answers, so
 * the answers are the same either way; only the cost differs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TokenAuthenticator } from '../auth/token-auth.js';
import type { ServiceContext } from '../service/context.js';
import { peekMetadata } from '../service/read-metadata.js';
import { MetadataAnswers, type CachePolicy } from './caching.js';
import { requestInfo } from './observe.js';
import { authorizeRoute, Refusal, resolveRoute } from './pipeline.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function withFastReads(
  ctx: ServiceContext,
  options: { cache: CachePolicy; auth?: TokenAuthenticator | undefined; gunPrefixes?: string[] },
  next: Handler,
): Handler {
  const answers = new MetadataAnswers(options.cache);
  const gunPrefixes = options.gunPrefixes ?? [];

  return (req, res) => {
    const url = req.url;
    if (req.method !== 'GET' || !url || !url.startsWith('/v2/')) return next(req, res);
    const q = url.indexOf('?');
    const route = resolveRoute('GET', q < 0 ? url : url.slice(0, q), gunPrefixes);
    if (route instanceof Refusal) return next(req, res);
    // Only metadata reads are served here; checked before the token, which costs a signature check.
    if (route.kind !== 'current' && route.kind !== 'byChecksum' && route.kind !== 'byVersion') return next(req, res);
    const subject = authorizeRoute(route, req.headers.authorization, options.auth);
    if (subject instanceof Refusal) return next(req, res);
    const hit = peekMetadata(ctx, route.gun, {
      role: route.role,
      ...(route.kind === 'byChecksum' ? { checksum: route.checksum } : {}),
      ...(route.kind === 'byVersion' ? { version: route.version } : {}),
    });
    if (!hit) return next(req, res);
    const info = requestInfo(req);
    info.route = route.kind;
    info.gun = route.gun;
    if (subject !== undefined) info.subject = subject;
    ctx.metrics.cache.inc({ result: 'hit' });
    answers.send(res, hit.data, hit.lastModified, route.kind === 'current');
  };
}
