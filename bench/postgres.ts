/**
 * Postgres for Signet: the server named by BENCH_DATABASE_URL, or a private cluster started here
 * the way .ci/run does (initdb + pg_ctl as the postgres user, in a temp dir, on a free loopback
 * port). The private cluster keeps Postgres' default durability settings (fsync on), as the
 * reference server's cluster started by anchor-up.sh does, so write figures compare fairly.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, onCleanup, postmasterPid, run } from './proc.js';

export interface PostgresServer {
  /** Admin URL (database `postgres`). */
  adminUrl: string;
  origin: 'private cluster' | 'BENCH_DATABASE_URL';
  version: string;
  /** The postmaster's pid when the cluster is ours (to count its CPU), else null. */
  dbPid: number | null;
  /** A new empty database; dropped at cleanup. */
  createDatabase(prefix: string): Promise<string>;
}

function pgBin(): string {
  const base = '/usr/lib/postgresql';
  const preferred = path.join(base, '15', 'bin');
  if (existsSync(path.join(preferred, 'initdb'))) return preferred;
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(a) - Number(b)) : [];
  for (const v of versions.reverse()) {
    const bin = path.join(base, v, 'bin');
    if (existsSync(path.join(bin, 'initdb'))) return bin;
  }
  throw new Error('no Postgres binaries under /usr/lib/postgresql (apt-get install postgresql), or set BENCH_DATABASE_URL');
}

const asPostgres = (command: string) => (process.getuid?.() === 0 ? run('su', ['postgres', '-s', '/bin/sh', '-c', command]) : run('sh', ['-c', command]));

async function query(url: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

export async function startPostgres(): Promise<PostgresServer> {
  const given = process.env['BENCH_DATABASE_URL'];
  let adminUrl: string;
  let origin: PostgresServer['origin'];
  let dbPid: number | null = null;
  if (given) {
    adminUrl = given;
    origin = 'BENCH_DATABASE_URL';
  } else {
    const bin = pgBin();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'signet-bench-pg.'));
    chmodSync(dir, 0o755);
    if (process.getuid?.() === 0) run('chown', ['postgres', dir]);
    const port = await freePort();
    const stop = () => {
      try {
        asPostgres(`${bin}/pg_ctl -D ${dir}/data -m immediate stop`);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    };
    onCleanup('private Postgres cluster', stop, stop);
    asPostgres(`${bin}/initdb -D ${dir}/data -A trust -U postgres`);
    asPostgres(`${bin}/pg_ctl -D ${dir}/data -o '-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200' -l ${dir}/log -w start`);
    adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    origin = 'private cluster';
    dbPid = postmasterPid(path.join(dir, 'data'));
  }
  const version = String((await query(adminUrl, 'show server_version')).rows[0].server_version);
  return {
    adminUrl,
    origin,
    version,
    dbPid,
    async createDatabase(prefix: string) {
      const name = `${prefix}_${randomBytes(4).toString('hex')}`;
      await query(adminUrl, `CREATE DATABASE ${name}`);
      onCleanup(`database ${name}`, async () => {
        await query(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      });
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      return url.toString();
    },
  };
}

/** A short-lived connection pool for bulk SQL (scale workloads). */
export async function withPool<T>(url: string, work: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    return await work(pool);
  } finally {
    await pool.end();
  }
}
