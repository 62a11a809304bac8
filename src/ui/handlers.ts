/**
 * The inspector's pages under /ui/, registered from the route table: parse the query (zod), call
 * the service's read models, write HTML. GET only, but for the login and logout forms. Every
 * answer carries a strict Content-Security-Policy (no script at all, the one stylesheet from
 * here) and is not cached. With token authentication on, every page but the login needs a
 * session (session.ts) and shows only the repositories it may pull.
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { TokenAuthenticator } from '../auth/token-auth.js';
import type { ServiceContext } from '../service/context.js';
import { NotFoundError } from '../service/errors.js';
import {
  auditTrail,
  expiringAcross,
  listRepositories,
  repositoryDetail,
  repositoryHistory,
  repositoryNames,
  roleDiff,
  type RoleDiff,
} from '../service/inspector.js';
import type { Logger } from '../log.js';
import type { Html } from './html.js';
import { auditPage, expiringPage, loginPage, messagePage, repositoriesPage, repositoryPage, type PageContext } from './pages.js';
import { LoginError, sessionCookie, Sessions, type Session } from './session.js';
import { STYLESHEET } from './style.js';

export interface UiOptions {
  /** SIGNET_UI: off answers every /ui/ path 404 and leaves `/` alone. */
  enabled: boolean;
  /** Token authentication; present = the pages need a login. */
  auth?: TokenAuthenticator | undefined;
  /** Over TLS the session cookie is Secure. */
  tls: boolean;
}

export interface UiEnv {
  ctx: ServiceContext;
  logger: Logger;
  expiryWarningSeconds: number;
  ui: UiState;
}

export class UiState {
  readonly sessions: Sessions | null;
  constructor(
    readonly options: UiOptions,
    now: () => number,
  ) {
    this.sessions = options.auth ? new Sessions(options.auth, now) : null;
  }
}

export const CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const LIMITS = { page: 200, tags: 2000, history: 300, changes: 1000, expiring: 2000, audit: 200, loginBody: 8192 } as const;
const DAY = 86_400;

function secure(res: Response): Response {
  return res
    .set('Content-Security-Policy', CONTENT_SECURITY_POLICY)
    .set('X-Content-Type-Options', 'nosniff')
    .set('Referrer-Policy', 'no-referrer')
    .set('X-Frame-Options', 'DENY')
    .set('Cache-Control', 'no-store');
}

const send = (res: Response, status: number, page: Html) => void secure(res).status(status).type('text/html; charset=utf-8').send(page.value);

class PageError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
  ) {
    super(title);
  }
}

/** Form fields left empty mean "not given". */
function formQuery(req: Request): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(req.query)) if (v !== '') out[k] = v;
  return out;
}

function parse<S extends z.ZodType>(schema: S, req: Request): z.output<S> {
  const q = schema.safeParse(formQuery(req));
  if (!q.success) throw new PageError(400, q.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; '));
  return q.data;
}

const one = (name: string, max = 255) => z.string({ error: `${name} must be given once` }).max(max, `${name} must be at most ${max} characters`);
const whole = (name: string, max: number) =>
  z
    .string({ error: `${name} must be given once` })
    .regex(/^[0-9]{1,10}$/, `${name} must be a whole number`)
    .transform(Number)
    .refine((n) => n <= max, `${name} must be at most ${max}`);
/** A form's datetime-local (no zone; taken as UTC) or an RFC 3339 time. */
const formTime = (name: string) =>
  z
    .string({ error: `${name} must be given once` })
    .max(40)
    .transform((s, ctx) => {
      const t = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,3})?)?$/.test(s) ? Date.parse(`${s}Z`) : /[zZ]|[+-]\d\d:\d\d$/.test(s) ? Date.parse(s) : NaN;
      if (Number.isNaN(t)) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a time such as 2026-11-23T08:00` });
        return z.NEVER;
      }
      return { text: s, date: new Date(t) };
    });

const listSchema = z.strictObject({
  q: one('q').optional(),
  sort: z.enum(['gun', 'tags', 'changed', 'expiry'], { error: 'sort must be gun, tags, changed or expiry' }).default('gun'),
  order: z.enum(['asc', 'desc'], { error: 'order must be asc or desc' }).optional(),
  limit: whole('limit', LIMITS.page).default(50),
  offset: whole('offset', 100_000_000).default(0),
});
const expiringSchema = z.strictObject({ within: whole('within', 10 * 365 * DAY).optional() });
const auditSchema = z.strictObject({
  gun: one('gun').optional(),
  actor: one('actor').optional(),
  action: one('action', 32).optional(),
  since: formTime('since').optional(),
  until: formTime('until').optional(),
});
const repositorySchema = z.strictObject({
  role: z
    .string({ error: 'role must be given once' })
    .max(255)
    .regex(/^(root|snapshot|timestamp|targets(\/[a-z0-9_\-/]+)?)$/, 'role must be a role name')
    .optional(),
  from: whole('from', 2 ** 31 - 1).optional(),
  to: whole('to', 2 ** 31 - 1).optional(),
});
const loginSchema = z.strictObject({ username: z.string().min(1).max(255), password: z.string().min(1).max(1024) });

interface Viewer {
  page: PageContext;
  /** The repositories the viewer may see; undefined = all (no login needed). */
  only: string[] | undefined;
  may(gun: string): boolean;
}

/** Who is looking, or null after answering with the way to the login. */
function viewer(env: UiEnv, req: Request, res: Response): Viewer | null {
  const sessions = env.ui.sessions;
  const nowMs = env.ctx.now();
  if (!sessions) return { page: { nowMs }, only: undefined, may: () => true };
  const session: Session | null = sessions.fromCookie(req.headers.cookie);
  if (!session) {
    secure(res).redirect(303, '/ui/login');
    return null;
  }
  res.locals['subject'] = session.subject;
  return { page: { nowMs, user: session.subject }, only: [...session.repositories], may: (gun) => session.repositories.has(gun) };
}

async function readForm(req: Request, max: number): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/x-www-form-urlencoded\b/i.test(type)) throw new PageError(400, 'the login form must be sent as a form');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new PageError(413, 'the form is too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Runs a page; a PageError or a missing repository becomes an HTML page with its status. */
async function page(env: UiEnv, res: Response, work: () => Promise<void>): Promise<void> {
  if (!env.ui.options.enabled) throw new NotFoundError('the inspector is off (SIGNET_UI=off)');
  try {
    await work();
  } catch (e) {
    const nowMs = env.ctx.now();
    if (e instanceof PageError) return send(res, e.status, messagePage({ nowMs }, e.status === 400 ? 'Bad request' : e.title, e.title));
    if (e instanceof NotFoundError) return send(res, 404, messagePage({ nowMs }, 'Not found', 'There is no such repository, or you may not see it.'));
    throw e;
  }
}

const warningDays = (env: UiEnv) => Math.round(env.expiryWarningSeconds / DAY);

async function repositoriesList(env: UiEnv, req: Request, res: Response) {
  const v = viewer(env, req, res);
  if (!v) return;
  const q = parse(listSchema, req);
  const order = q.order ?? (q.sort === 'tags' || q.sort === 'changed' ? 'desc' : 'asc');
  const list = await listRepositories(env.ctx, {
    q: q.q,
    sort: q.sort,
    order,
    limit: q.limit,
    offset: q.offset,
    only: v.only,
    warningMs: env.expiryWarningSeconds * 1000,
  });
  send(res, 200, repositoriesPage(v.page, list, { q: q.q ?? '', sort: q.sort, order, limit: q.limit, offset: q.offset }, warningDays(env)));
}

async function expiring(env: UiEnv, req: Request, res: Response) {
  const v = viewer(env, req, res);
  if (!v) return;
  const q = parse(expiringSchema, req);
  const within = q.within ?? env.expiryWarningSeconds;
  const result = await expiringAcross(env.ctx, { windowMs: within * 1000, warningMs: env.expiryWarningSeconds * 1000, only: v.only, limit: LIMITS.expiring });
  send(res, 200, expiringPage(v.page, result.items, within, result.truncated));
}

async function audit(env: UiEnv, req: Request, res: Response) {
  const v = viewer(env, req, res);
  if (!v) return;
  const q = parse(auditSchema, req);
  const records =
    q.gun !== undefined && !v.may(q.gun)
      ? []
      : await auditTrail(env.ctx, {
          gun: q.gun,
          actor: q.actor,
          action: q.action,
          since: q.since?.date,
          until: q.until?.date,
          only: v.only,
          limit: LIMITS.audit,
        });
  send(
    res,
    200,
    auditPage(
      v.page,
      records,
      { gun: q.gun ?? '', actor: q.actor ?? '', action: q.action ?? '', since: q.since?.text ?? '', until: q.until?.text ?? '' },
      null,
    ),
  );
}

async function repository(env: UiEnv, gun: string, req: Request, res: Response) {
  const v = viewer(env, req, res);
  if (!v) return;
  if (!v.may(gun)) throw new NotFoundError(gun);
  const q = parse(repositorySchema, req);
  const [detail, history] = await Promise.all([
    repositoryDetail(env.ctx, gun, { warningMs: env.expiryWarningSeconds * 1000, maxTags: LIMITS.tags }),
    repositoryHistory(env.ctx, gun, { limit: LIMITS.history }),
  ]);
  let diff: RoleDiff | null = null;
  let diffError: string | null = null;
  if (q.role !== undefined && q.from !== undefined && q.to !== undefined) {
    try {
      diff = await roleDiff(env.ctx, gun, q.role, q.from, q.to, { maxChanges: LIMITS.changes });
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      diffError = `There is no version ${q.from} or ${q.to} of ${q.role}.`;
    }
  } else if (q.role !== undefined || q.from !== undefined || q.to !== undefined) {
    diffError = 'Give a role and two versions to compare.';
  }
  send(res, 200, repositoryPage(v.page, detail, history, diff, q, diffError));
}

async function login(env: UiEnv, req: Request, res: Response) {
  const sessions = env.ui.sessions;
  if (!sessions) return void secure(res).redirect(303, '/ui/');
  const form = await readForm(req, LIMITS.loginBody);
  const fields = loginSchema.safeParse({ username: form.get('username') ?? '', password: form.get('password') ?? '' });
  if (!fields.success) return send(res, 400, loginPage('Give a user name and a password.', form.get('username')?.slice(0, 255) ?? ''));
  try {
    const { id, session } = await sessions.login(fields.data.username, fields.data.password, await repositoryNames(env.ctx));
    env.logger.info('inspector login', { subject: session.subject, repositories: session.repositories.size });
    secure(res)
      .set('Set-Cookie', sessionCookie(id, (session.expiresMs - env.ctx.now()) / 1000, env.ui.options.tls))
      .redirect(303, '/ui/');
  } catch (e) {
    if (!(e instanceof LoginError)) throw e;
    env.logger.info('inspector login refused', { reason: e.reason });
    send(
      res,
      e.reason === 'credentials' ? 401 : 502,
      loginPage(e.reason === 'credentials' ? 'Wrong user name or password.' : `Cannot log in: ${e.message}.`, fields.data.username),
    );
  }
}

export const UI_ROUTES = {
  uiHome: {
    run(env: UiEnv, _r: unknown, _req: Request, res: Response) {
      if (!env.ui.options.enabled) throw new NotFoundError('the inspector is off');
      secure(res).redirect(302, '/ui/');
    },
  },
  uiPage: {
    run(env: UiEnv, r: { page: 'repositories' | 'expiring' | 'audit' | 'login' | 'style' }, req: Request, res: Response) {
      return page(env, res, async () => {
        switch (r.page) {
          case 'style':
            secure(res).set('Cache-Control', 'public, max-age=3600').type('text/css; charset=utf-8').send(STYLESHEET);
            return;
          case 'login':
            if (!env.ui.sessions || env.ui.sessions.fromCookie(req.headers.cookie)) return void secure(res).redirect(303, '/ui/');
            return send(res, 200, loginPage(null, ''));
          case 'repositories':
            return repositoriesList(env, req, res);
          case 'expiring':
            return expiring(env, req, res);
          case 'audit':
            return audit(env, req, res);
        }
      });
    },
  },
  uiRepository: {
    run(env: UiEnv, r: { gun: string }, req: Request, res: Response) {
      return page(env, res, () => repository(env, r.gun, req, res));
    },
  },
  uiLogin: {
    run(env: UiEnv, _r: unknown, req: Request, res: Response) {
      return page(env, res, () => login(env, req, res));
    },
  },
  uiLogout: {
    run(env: UiEnv, _r: unknown, req: Request, res: Response) {
      return page(env, res, async () => {
        env.ui.sessions?.end(req.headers.cookie);
        secure(res)
          .set('Set-Cookie', sessionCookie('x'.repeat(20), 0, env.ui.options.tls))
          .redirect(303, env.ui.sessions ? '/ui/login' : '/ui/');
      });
    },
  },
};
