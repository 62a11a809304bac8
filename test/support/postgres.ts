/**
 * A private Postgres cluster for tests that must stop and start the database itself (outages).
 * Uses Debian's server binaries; as root, runs them as the `postgres` user.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

function binDir(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(path.join(base, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(a) - Number(b));
  return versions.length ? path.join(base, versions[versions.length - 1]!, 'bin') : null;
}

export const postgresAvailable = (): boolean => binDir() !== null;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface PostgresCluster {
  url: string;
  start(): void;
  stop(): void;
  destroy(): void;
}

export async function createPostgresCluster(): Promise<PostgresCluster> {
  const bin = binDir();
  if (!bin) throw new Error('Postgres server binaries not installed');
  const dir = mkdtempSync('/tmp/signet-test-pg-');
  chmodSync(dir, 0o755);
  const root = process.getuid?.() === 0;
  if (root) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const run = (cmd: string, args: string[]) => {
    const full = [path.join(bin, cmd), ...args];
    const r = root ? spawnSync('su', ['postgres', '-s', '/bin/sh', '-c', full.map((a) => `'${a}'`).join(' ')]) : spawnSync(full[0]!, full.slice(1));
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr?.toString()}`);
  };
  const port = await freePort();
  run('initdb', ['-D', `${dir}/data`, '-A', 'trust', '-U', 'postgres']);
  const cluster: PostgresCluster = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: () => run('pg_ctl', ['-D', `${dir}/data`, '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, '-l', `${dir}/log`, '-w', 'start']),
    stop: () => run('pg_ctl', ['-D', `${dir}/data`, '-m', 'immediate', '-w', 'stop']),
    destroy: () => {
      try {
        cluster.stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  cluster.start();
  return cluster;
}
