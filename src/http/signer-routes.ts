/**
 * The HTTP side of server-held signers, registered from the route table: JSON in, JSON out,
 * every input checked with zod before a use case runs. Access and the GUN are checked by the
 * guard sequence like every route's; the signing call also takes the caller's identity from
 * it, applies the per-identity rate limit, and has every refusal audited.
 *
 *   POST   /api/v1/repositories/{gun}/signers                    create (admin)
 *   GET    /api/v1/repositories/{gun}/signers                    list (pull)
 *   GET    /api/v1/repositories/{gun}/signers/{name}             one, with where it is delegated (pull)
 *   POST   /api/v1/repositories/{gun}/signers/{name}/disable     (admin)
 *   POST   /api/v1/repositories/{gun}/signers/{name}/enable      (admin)
 *   POST   /api/v1/repositories/{gun}/signers/{name}/rotate      new key, old one kept for a grace period (admin)
 *   PUT    /api/v1/repositories/{gun}/signers/{name}/rules       replace its rules (admin)
 *   DELETE /api/v1/repositories/{gun}/signers/{name}             (admin)
 *   POST   /api/v1/repositories/{gun}/signers/{name}/sign        sign a tag (push)
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { ANONYMOUS, type CallerIdentity } from '../auth/identity.js';
import type { ServiceContext } from '../service/context.js';
import type { Actor } from '../service/audit-query.js';
import { auditSignRefusal, signRequestSchema, signWithSigner, type ScanPolicy } from '../service/signer-sign.js';
import {
  createSigner,
  deleteSigner,
  getSigner,
  listSigners,
  MAX_ROTATION_GRACE_MS,
  rotateSigner,
  setSignerRules,
  setSignerState,
  signerNameSchema,
  signerRulesSchema,
} from '../service/signers.js';
import { signetErrorCode } from '../tuf/core/signet-error.js';
import { readBody } from './body.js';
import { HttpError, toHttpError } from './errors.js';
import { requestInfo } from './observe.js';
import type { SignerRoute } from './paths.js';
import type { RateLimiter } from './rate-limit.js';

export interface SignerEnv {
  ctx: ServiceContext;
  limits: { maxPartBytes: number };
  signing: {
    /** Per-identity limit of signing calls in this process; null = none. */
    rateLimiter: RateLimiter | null;
    scanPolicy?: ScanPolicy | undefined;
  };
}

/** Bodies here are small: a name and rules, or a tag with a scan report. */
const MAX_BODY = 4 * 1024 * 1024;

const createSchema = z.strictObject({ name: signerNameSchema, rules: signerRulesSchema.optional() });
const rulesSchema = z.strictObject({ rules: signerRulesSchema });
const rotateSchema = z.strictObject({
  /** Seconds the previous key keeps signing (default 7 days; 0 = removed at once). */
  graceSeconds: z
    .number()
    .int()
    .min(0)
    .max(MAX_ROTATION_GRACE_MS / 1000)
    .optional(),
});

function actorOf(req: Request): Actor {
  const info = requestInfo(req);
  return { subject: info.subject ?? 'anonymous', address: info.remote, requestId: info.id };
}

const json = (res: Response, status: number, body: unknown) =>
  res.status(status).type('application/json').set('Cache-Control', 'no-store').send(JSON.stringify(body));

const issues = (error: z.ZodError) => error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');

/** The JSON body (an empty one is `{}`), or the refusal. */
async function readJson(req: Request): Promise<unknown> {
  const body = await readBody(req, MAX_BODY);
  if (body.length === 0) return {};
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new HttpError('INVALID_PARAMETERS', 'the body must be JSON (Content-Type: application/json)');
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (e) {
    throw new HttpError('MALFORMED_JSON', `the body is not JSON: ${(e as Error).message}`);
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new HttpError('INVALID_PARAMETERS', issues(parsed.error));
  return parsed.data;
}

type RouteOf<K extends SignerRoute['kind']> = SignerRoute & { kind: K };

/** The caller's identity: a registry token's, an identity token verified now, or anonymous without authentication. */
async function identityOf(env: SignerEnv, req: Request): Promise<CallerIdentity> {
  const caller = requestInfo(req).caller;
  if (caller?.pending) {
    const identity = await caller.pending.verifier.verify(caller.pending.token, env.ctx.now());
    const info = requestInfo(req);
    info.subject = identity.subject;
    return identity;
  }
  return caller?.identity ?? ANONYMOUS;
}

const reasonOf = (e: unknown) => {
  const mapped = toHttpError(e);
  const detail = mapped?.detail;
  return typeof detail === 'string' ? detail : mapped ? mapped.message : (e as Error).message;
};

/**
 * Audit a signing call the guard sequence refused (no token, a token without push): rate
 * limited by peer address, so that refusals cannot fill the audit trail.
 */
export async function auditRefusedSign(env: SignerEnv, route: { gun: string; name: string }, req: Request, error: HttpError): Promise<void> {
  const info = requestInfo(req);
  if (env.signing.rateLimiter && env.signing.rateLimiter.take(`refused:${info.remote ?? ''}`, env.ctx.now()) > 0) return;
  await auditSignRefusal(env.ctx, route.gun, route.name, ANONYMOUS, actorOf(req), {}, { code: error.code, reason: reasonOf(error) });
}

export const SIGNER_ROUTES = {
  createSigner: {
    async run(env: SignerEnv, r: RouteOf<'createSigner'>, req: Request, res: Response) {
      const body = parse(createSchema, await readJson(req));
      json(res, 201, await createSigner(env.ctx, r.gun, body.name, body.rules ?? {}, actorOf(req)));
    },
  },
  listSigners: {
    async run(env: SignerEnv, r: RouteOf<'listSigners'>, _req: Request, res: Response) {
      const signers = await listSigners(env.ctx, r.gun);
      json(res, 200, { count: signers.length, signers });
    },
  },
  getSigner: {
    async run(env: SignerEnv, r: RouteOf<'getSigner'>, _req: Request, res: Response) {
      json(res, 200, await getSigner(env.ctx, r.gun, r.name));
    },
  },
  disableSigner: {
    async run(env: SignerEnv, r: RouteOf<'disableSigner'>, req: Request, res: Response) {
      json(res, 200, await setSignerState(env.ctx, r.gun, r.name, 'disabled', actorOf(req)));
    },
  },
  enableSigner: {
    async run(env: SignerEnv, r: RouteOf<'enableSigner'>, req: Request, res: Response) {
      json(res, 200, await setSignerState(env.ctx, r.gun, r.name, 'active', actorOf(req)));
    },
  },
  rotateSigner: {
    async run(env: SignerEnv, r: RouteOf<'rotateSigner'>, req: Request, res: Response) {
      const body = parse(rotateSchema, await readJson(req));
      const graceMs = body.graceSeconds === undefined ? undefined : body.graceSeconds * 1000;
      json(res, 200, await rotateSigner(env.ctx, r.gun, r.name, { graceMs }, actorOf(req)));
    },
  },
  setSignerRules: {
    async run(env: SignerEnv, r: RouteOf<'setSignerRules'>, req: Request, res: Response) {
      const body = parse(rulesSchema, await readJson(req));
      json(res, 200, await setSignerRules(env.ctx, r.gun, r.name, body.rules, actorOf(req)));
    },
  },
  deleteSigner: {
    async run(env: SignerEnv, r: RouteOf<'deleteSigner'>, req: Request, res: Response) {
      json(res, 200, await deleteSigner(env.ctx, r.gun, r.name, actorOf(req)));
    },
  },
  signWithSigner: {
    async run(env: SignerEnv, r: RouteOf<'signWithSigner'>, req: Request, res: Response) {
      const actor = actorOf(req);
      let identity: CallerIdentity = ANONYMOUS;
      let body: unknown = {};
      try {
        identity = await identityOf(env, req);
        actor.subject = identity.subject;
        const wait = env.signing.rateLimiter?.take(`${identity.kind}:${identity.subject}`, env.ctx.now()) ?? 0;
        if (wait > 0) {
          res.set('Retry-After', String(wait));
          throw new HttpError('RATE_LIMITED', `too many signing calls by ${identity.kind} ${identity.subject}: try again in ${wait} s`);
        }
        body = await readJson(req);
      } catch (e) {
        // Refused before the use case: audited here (the use case audits its own refusals).
        if (e instanceof HttpError || signetErrorCode(e) !== undefined) {
          const attempt = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
          await auditSignRefusal(env.ctx, r.gun, r.name, identity, actor, attempt, {
            code: e instanceof HttpError ? e.code : signetErrorCode(e)!,
            reason: reasonOf(e),
          });
        }
        throw e;
      }
      const parsed = signRequestSchema.safeParse(body);
      if (!parsed.success) {
        const error = new HttpError('INVALID_PARAMETERS', issues(parsed.error));
        const attempt = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
        await auditSignRefusal(env.ctx, r.gun, r.name, identity, actor, attempt, { code: error.code, reason: String(error.detail) });
        throw error;
      }
      json(
        res,
        200,
        await signWithSigner(env.ctx, r.gun, r.name, parsed.data, identity, actor, {
          scanPolicy: env.signing.scanPolicy,
          maxFileBytes: env.limits.maxPartBytes,
        }),
      );
    },
  },
};
