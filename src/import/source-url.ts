/** Where a notary deployment's databases are: Postgres URLs, MySQL URLs and notary's own MySQL DSNs. */
import { SignetError } from '../tuf/core/signet-error.js';

export class SourceError extends SignetError {
  readonly code = 'IMPORT_SOURCE';
  override name = 'SourceError';
}

/** A MySQL source: `mysql://…` or notary's own go-sql-driver DSN `user:pass@tcp(host:port)/db`. */
export function isMysqlUrl(url: string): boolean {
  return /^mysql:\/\//i.test(url) || /^[^/]*@(tcp|unix)\(/.test(url);
}

export interface MysqlDsn {
  user: string;
  password?: string | undefined;
  host?: string | undefined;
  port?: number | undefined;
  socketPath?: string | undefined;
  database: string;
}

/**
 * `mysql://user:pass@host:port/db` or notary's own DSN (go-sql-driver/mysql):
 * `user:pass@tcp(host:port)/db?parseTime=True` or `user:pass@unix(/path/mysqld.sock)/db`.
 * Query parameters are ignored (times are read as text, see mysql-source.ts).
 */
export function parseMysqlDsn(url: string, what: string): MysqlDsn {
  const bad = (why: string) => new SourceError(`${what}: ${why}: expected mysql://user:password@host:port/database or user:password@tcp(host:port)/database`);
  let dsn: MysqlDsn;
  if (/^mysql:\/\//i.test(url)) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw bad('not a URL');
    }
    dsn = {
      user: decodeURIComponent(u.username),
      password: u.password ? decodeURIComponent(u.password) : undefined,
      host: u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
      port: u.port ? Number(u.port) : 3306,
      database: decodeURIComponent(u.pathname.replace(/^\//, '')),
    };
  } else {
    // The password may contain '@' and ':': the address is after the last '@' before '(tcp|unix)('.
    const m = /^(.*)@(tcp|unix)\(([^)]*)\)\/([^?]*)(\?.*)?$/s.exec(url);
    if (!m) throw bad('not a MySQL DSN');
    const [, cred, net, addr, db] = m as unknown as [string, string, string, string, string];
    const colon = cred.indexOf(':');
    dsn = {
      user: colon < 0 ? cred : cred.slice(0, colon),
      password: colon < 0 ? undefined : cred.slice(colon + 1),
      database: db,
    };
    if (net === 'unix') dsn.socketPath = addr;
    else {
      const hp = /^(?:\[([^\]]*)\]|([^:]*))(?::(\d+))?$/.exec(addr);
      if (!hp) throw bad(`bad address ${JSON.stringify(addr)}`);
      dsn.host = hp[1] ?? (hp[2] || '127.0.0.1');
      dsn.port = hp[3] ? Number(hp[3]) : 3306;
    }
  }
  if (!dsn.database) throw bad('no database name');
  return dsn;
}

/** `host:port/database` of a source URL, for reports and the audit log: no user, no password. */
export function sourceLabel(url: string): string {
  if (isMysqlUrl(url)) {
    try {
      const d = parseMysqlDsn(url, 'source');
      return `${d.socketPath ?? `${d.host}:${d.port}`}/${d.database}`;
    } catch {
      return 'mysql';
    }
  }
  const u = new URL(url);
  return `${u.host}${u.pathname}`;
}

/** Which databases `signet import` can read. */
export function checkSourceUrl(url: string, what: string): void {
  let parsed: URL;
  if (isMysqlUrl(url)) return;
  try {
    parsed = new URL(url);
  } catch {
    throw new SourceError(`${what}: not a URL: expected postgres://user@host:port/database or mysql://user@host:port/database`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new SourceError(`${what}: unsupported source ${parsed.protocol}// (only postgres:// and mysql:// notary databases can be imported)`);
  }
}
