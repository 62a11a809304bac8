/**
 * The Notary v1 HTTP API on express: every request runs the guard sequence (pipeline.ts), then
 * its route's handler from the route table (routes.ts); every failure leaves as notary's error
 * envelope. The fast path (fast-path.ts) answers cached reads before this, through the same
 * guards.
 */
import express, { type Request, type Response } from 'express';
import type { ServiceContext } from '../service/context.js';
import type { IdentityVerifier } from '../auth/identity.js';
import type { TokenAuthenticator } from '../auth/token-auth.js';
import type { Logger } from '../log.js';
import { MetadataAnswers, type CachePolicy } from './caching.js';
import { HttpError, sendError, toHttpError } from './errors.js';
import { requestInfo } from './observe.js';
import { guard, Refusal } from './pipeline.js';
import { RateLimiter } from './rate-limit.js';
import { ROUTES, type RouteEnv } from './routes.js';
import { auditRefusedSign, type SignerEnv } from './signer-routes.js';
import { UiState } from '../ui/handlers.js';

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
  /** Signing calls of server-held signers per identity per minute in this process; 0 or absent = unlimited. */
  signRateLimit?: number | undefined;
  /** Verifies identity tokens (OIDC) on the signing call; absent = registry tokens only. */
  identityVerifier?: IdentityVerifier | undefined;
  /** Checks scan reports for signers that require one; absent = scan reports refused. */
  scanPolicy?: SignerEnv['signing']['scanPolicy'];
  /** The inspector's pages (SIGNET_UI); on unless told otherwise. `tls` makes the session cookie Secure. */
  ui?: { enabled: boolean; tls: boolean };
}

export function createApp(ctx: ServiceContext, options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // notary sends no ETag; clients rely on Last-Modified/Cache-Control only

  const guards = { auth: options.auth, gunPrefixes: options.gunPrefixes ?? [], identityVerifier: options.identityVerifier };
  const env: RouteEnv = {
    ctx,
    logger: options.logger,
    limits: options.limits,
    expiryWarningSeconds: options.expiryWarningSeconds,
    metadata: new MetadataAnswers(options.cache),
    signing: {
      rateLimiter: options.signRateLimit ? new RateLimiter({ perMinute: options.signRateLimit }) : null,
      scanPolicy: options.scanPolicy,
    },
    ui: new UiState({ enabled: options.ui?.enabled ?? true, tls: options.ui?.tls ?? false, auth: options.auth }, ctx.now),
  };

  const fail = (req: Request, res: Response, error: unknown, update: boolean) => {
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
      sendError(res, new HttpError(update ? 'UPDATING' : 'UNKNOWN'));
    }
  };

  app.use(async (req: Request, res: Response) => {
    const info = requestInfo(req);
    const verdict = guard(req.method, req.path, req.headers.authorization, guards);
    const route = verdict.route;
    // The observer learns the route and repository even of a refused request.
    if (route) {
      info.route = route.kind;
      if ('gun' in route) info.gun = route.gun;
    }
    try {
      if (verdict instanceof Refusal) {
        if (verdict.auth) {
          res.set('WWW-Authenticate', verdict.auth.challenge);
          options.logger.info('request refused by auth', { requestId: info.id, method: req.method, path: req.path, reason: verdict.auth.reason });
        }
        // Every signing call is audited, refused ones included.
        if (verdict.route?.kind === 'signWithSigner') await auditRefusedSign(env, verdict.route, req, verdict.error);
        throw verdict.error;
      }
      if (verdict.subject !== undefined) res.locals['subject'] = info.subject = verdict.subject;
      if (verdict.caller) info.caller = verdict.caller;
      await ROUTES[verdict.route.kind].run(env, verdict.route, req, res);
    } catch (error) {
      fail(req, res, error, route?.kind === 'update');
    }
  });
  return app;
}
