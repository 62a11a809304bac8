/**
 * The HTTP side of key ceremonies (staged updates), registered from the route table: JSON in,
 * JSON out, every input checked with zod before a use case runs. Access and the GUN are checked
 * by the guard sequence like every route's.
 *
 *   POST   /api/v1/repositories/{gun}/staged                      stage an update
 *   GET    /api/v1/repositories/{gun}/staged[?state=…]            list (pending by default)
 *   GET    /api/v1/repositories/{gun}/staged/{id}                 one, with what is signed
 *   POST   /api/v1/repositories/{gun}/staged/{id}/signatures      add signatures
 *   DELETE /api/v1/repositories/{gun}/staged/{id}                 cancel
 *   GET    /api/v1/staged[?state=…]                               list across repositories
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { ServiceContext } from '../service/context.js';
import { addSignatures, cancelStaged, getStaged, listStaged, MAX_LIST, stageUpdate } from '../service/staged-updates.js';
import type { Actor } from '../service/audit-query.js';
import { readBody } from './body.js';
import { HttpError } from './errors.js';
import { requestInfo } from './observe.js';
import type { StagedRoute } from './paths.js';

interface StagedEnv {
  ctx: ServiceContext;
  limits: { maxPartBytes: number };
}

const DAY = 86_400;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const signatureSchema = z.strictObject({
  keyid: z.string().min(1).max(256),
  method: z.string().min(1).max(64),
  sig: z
    .string()
    .min(1)
    .max(8192)
    .refine((s) => s.length % 4 === 0 && BASE64.test(s), 'must be standard base64'),
});

const stageSchema = z.strictObject({
  role: z.string().min(1).max(255),
  /** The metadata file: `signed` and the signatures it has so far (zero or more). */
  file: z.looseObject({ signed: z.looseObject({}), signatures: z.array(signatureSchema).max(256).nullish() }),
  /** Seconds until it expires; default the server's setting (7 days). */
  expiresIn: z
    .number()
    .int()
    .min(60)
    .max(365 * DAY)
    .optional(),
});

const signSchema = z.strictObject({ signatures: z.array(signatureSchema).min(1).max(256) });

const STATES = ['pending', 'published', 'cancelled', 'expired'] as const;
const listQuerySchema = z.object({
  state: z.enum([...STATES, 'all']).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIST).optional(),
});

function actorOf(req: Request): Actor {
  const info = requestInfo(req);
  return { subject: info.subject ?? 'anonymous', address: info.remote, requestId: info.id };
}

const json = (res: Response, status: number, body: unknown) =>
  res.status(status).type('application/json').set('Cache-Control', 'no-store').send(JSON.stringify(body));

function issues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
}

async function jsonBody<T>(req: Request, env: StagedEnv, schema: z.ZodType<T>): Promise<T> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new HttpError('INVALID_PARAMETERS', 'the body must be JSON (Content-Type: application/json)');
  // A staged file is one metadata file: the part limit bounds it, with room for the envelope.
  const body = await readBody(req, env.limits.maxPartBytes + 64 * 1024);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new HttpError('MALFORMED_JSON', `the body is not JSON: ${(e as Error).message}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new HttpError('INVALID_PARAMETERS', issues(parsed.error));
  return parsed.data;
}

function listQuery(req: Request): z.infer<typeof listQuerySchema> {
  const q = listQuerySchema.safeParse(req.query);
  if (!q.success) throw new HttpError('INVALID_PARAMETERS', issues(q.error));
  return q.data;
}

const statesOf = (state: string | undefined) => (state === 'all' ? [...STATES] : state ? [state as (typeof STATES)[number]] : undefined);

type RouteOf<K extends StagedRoute['kind']> = StagedRoute & { kind: K };

export const STAGED_ROUTES = {
  stageUpdate: {
    async run(env: StagedEnv, r: RouteOf<'stageUpdate'>, req: Request, res: Response) {
      const body = await jsonBody(req, env, stageSchema);
      const bytes = Buffer.from(JSON.stringify({ signed: body.file.signed, signatures: body.file.signatures ?? [] }));
      const staged = await stageUpdate(
        env.ctx,
        r.gun,
        { role: body.role, bytes, expiresInMs: body.expiresIn ? body.expiresIn * 1000 : undefined },
        actorOf(req),
      );
      json(res, 201, staged);
    },
  },
  listStaged: {
    async run(env: StagedEnv, r: RouteOf<'listStaged'>, req: Request, res: Response) {
      const q = listQuery(req);
      const staged = await listStaged(env.ctx, { gun: r.gun, states: statesOf(q.state), ...(q.limit ? { limit: q.limit } : {}) });
      json(res, 200, { count: staged.length, staged });
    },
  },
  listAllStaged: {
    async run(env: StagedEnv, _r: RouteOf<'listAllStaged'>, req: Request, res: Response) {
      const q = listQuery(req);
      const staged = await listStaged(env.ctx, { states: statesOf(q.state), ...(q.limit ? { limit: q.limit } : {}) });
      json(res, 200, { count: staged.length, staged });
    },
  },
  getStaged: {
    async run(env: StagedEnv, r: RouteOf<'getStaged'>, _req: Request, res: Response) {
      json(res, 200, await getStaged(env.ctx, r.gun, r.id));
    },
  },
  signStaged: {
    async run(env: StagedEnv, r: RouteOf<'signStaged'>, req: Request, res: Response) {
      const body = await jsonBody(req, env, signSchema);
      json(res, 200, await addSignatures(env.ctx, r.gun, r.id, body.signatures, actorOf(req)));
    },
  },
  cancelStaged: {
    async run(env: StagedEnv, r: RouteOf<'cancelStaged'>, req: Request, res: Response) {
      json(res, 200, await cancelStaged(env.ctx, r.gun, r.id, actorOf(req)));
    },
  },
};
