/**
 * Logins to the inspector when token authentication is on. A browser has no registry token, so
 * the login form's credentials are exchanged at the configured token service (the realm), as
 * `docker login` does: HTTP Basic, `service=…`, and `scope=repository:<gun>:pull` for every
 * repository in batches. The tokens are verified like any bearer token; the session remembers
 * the repositories they grant pull on, for no longer than the shortest token lives (and at most
 * an hour). Neither the password nor a token is kept, logged or put in a page: the session
 * cookie is a random identifier, HttpOnly, SameSite=Strict, Secure over TLS.
 */
import { randomBytes } from 'node:crypto';
import type { TokenAuthenticator } from '../auth/token-auth.js';

export interface Session {
  subject: string;
  /** The repositories the user may pull, by name. */
  repositories: ReadonlySet<string>;
  expiresMs: number;
}

export class LoginError extends Error {
  constructor(
    readonly reason: 'credentials' | 'realm',
    message: string,
  ) {
    super(message);
  }
}

export const SESSION_COOKIE = 'signet_session';
const MAX_SESSION_MS = 3600_000;
const MAX_SESSIONS = 10_000;
/** Scopes per token request: keeps the request line well under common URL limits. */
const SCOPES_PER_REQUEST = 40;
const REALM_TIMEOUT_MS = 10_000;

export class Sessions {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly auth: TokenAuthenticator,
    private readonly now: () => number = Date.now,
  ) {}

  /** The live session a cookie header names, if any. */
  fromCookie(cookieHeader: string | undefined): Session | null {
    const id = cookieValue(cookieHeader, SESSION_COOKIE);
    if (!id) return null;
    const session = this.sessions.get(id);
    if (!session) return null;
    if (session.expiresMs <= this.now()) {
      this.sessions.delete(id);
      return null;
    }
    return session;
  }

  end(cookieHeader: string | undefined): void {
    const id = cookieValue(cookieHeader, SESSION_COOKIE);
    if (id) this.sessions.delete(id);
  }

  /** Exchange credentials at the realm for tokens covering `repositories`; returns the new session's id. */
  async login(username: string, password: string, repositories: readonly string[]): Promise<{ id: string; session: Session }> {
    const basic = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    let expiresMs = this.now() + MAX_SESSION_MS;
    let subject: string | null = null;
    const allowed = new Set<string>();
    // One request even with no repositories: it checks the credentials.
    const batches = repositories.length === 0 ? [[]] : chunk(repositories, SCOPES_PER_REQUEST);
    for (const batch of batches) {
      const url = new URL(this.auth.realm);
      url.searchParams.set('service', this.auth.service);
      url.searchParams.set('account', username);
      for (const gun of batch) url.searchParams.append('scope', `repository:${gun}:pull`);
      let response: Response;
      try {
        response = await fetch(url, { headers: { Authorization: basic }, signal: AbortSignal.timeout(REALM_TIMEOUT_MS), redirect: 'error' });
      } catch {
        throw new LoginError('realm', 'the token service could not be reached');
      }
      if (response.status === 401 || response.status === 403) throw new LoginError('credentials', 'wrong user name or password');
      if (!response.ok) throw new LoginError('realm', `the token service answered ${response.status}`);
      const body = (await response.json().catch(() => null)) as { token?: unknown; access_token?: unknown } | null;
      const token = typeof body?.token === 'string' ? body.token : typeof body?.access_token === 'string' ? body.access_token : null;
      const grants = token ? this.auth.grants(token, this.now()) : null;
      if (!grants) throw new LoginError('realm', 'the token service gave a token this server does not accept');
      // An anonymous token (no subject) means the realm did not take the credentials.
      if (!grants.subject) throw new LoginError('credentials', 'wrong user name or password');
      subject ??= grants.subject;
      expiresMs = Math.min(expiresMs, grants.expiresMs);
      for (const a of grants.access) if (a.type === 'repository' && (a.action === 'pull' || a.action === '*')) allowed.add(a.name);
    }
    const session: Session = { subject: subject!, repositories: allowed, expiresMs };
    this.sweep();
    const id = randomBytes(32).toString('base64url');
    this.sessions.set(id, session);
    return { id, session };
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) if (s.expiresMs <= now) this.sessions.delete(id);
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
  }
}

function chunk<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

export function cookieValue(header: string | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      const v = part.slice(i + 1).trim();
      return /^[A-Za-z0-9_-]{20,100}$/.test(v) ? v : null;
    }
  }
  return null;
}

export function sessionCookie(id: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}${secure ? '; Secure' : ''}`;
}
