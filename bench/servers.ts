/**
 * The servers under test, all on loopback with one certificate (RSA-2048, made like
 * anchor-up.sh makes its own): Signet as `signet serve` child processes, the reference
 * notary-server through anchor-up.sh / anchor-down.sh, and a bare node:http(s) server.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeTestTls, type TestTls } from '../test/support/tls.js';
import { projectRoot, sharedDir } from '../test/support/paths.js';
import { HttpClient } from './http.js';
import { freePortPair, onCleanup, postmasterPid, run, spawnReady, type Child } from './proc.js';

export type Store = 'postgres' | 'pglite' | 'memory' | 'none';

export interface Target {
  id: string;
  label: string;
  kind: 'signet' | 'notary-server' | 'bare';
  store: Store;
  url: string;
  pid: number;
  /** Postmaster of the server's own Postgres cluster, when there is one to watch. */
  dbPid?: number | null;
  stop(): Promise<void>;
}

/** A temp dir removed at cleanup. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  onCleanup(
    `remove ${dir}`,
    () => rmSync(dir, { recursive: true, force: true }),
    () => rmSync(dir, { recursive: true, force: true }),
  );
  return dir;
}

/** One CA and server certificate for every server in the run. */
export function makeTls(): TestTls & { caPem: Buffer } {
  const tls = makeTestTls();
  onCleanup(
    'remove TLS files',
    () => rmSync(tls.dir, { recursive: true, force: true }),
    () => rmSync(tls.dir, { recursive: true, force: true }),
  );
  return { ...tls, caPem: readFileSync(tls.caCert) };
}

/** Where `signet serve` and the bare server are run from: dist/, or a snapshot of it. */
let buildRoot = path.join(projectRoot, 'dist');

/**
 * Copy the compiled server (dist/src, dist/bench/bare-server.js) aside so every server started
 * during the run is the same code, even if dist/ is rebuilt meanwhile. The copy lives under
 * bench/results/tmp/ (ignored by git) so that packages still resolve from node_modules.
 * Returns a digest of the copied server code, to record what was measured.
 */
export function snapshotBuild(): string {
  const dir = path.join(projectRoot, 'bench', 'results', 'tmp', `build-${process.pid}-${Date.now()}`);
  const remove = () => {
    rmSync(dir, { recursive: true, force: true });
    try {
      rmdirSync(path.dirname(dir)); // bench/results/tmp, when nothing else is in it
    } catch {
      // not empty, or already gone
    }
  };
  onCleanup('remove build snapshot', remove, remove);
  // Same layout as the project (DIR/dist/src, DIR/migrations): the server finds its migrations from there.
  const dist = path.join(dir, 'dist');
  cpSync(path.join(projectRoot, 'dist', 'src'), path.join(dist, 'src'), { recursive: true });
  cpSync(path.join(projectRoot, 'migrations'), path.join(dir, 'migrations'), { recursive: true });
  mkdirSync(path.join(dist, 'bench'), { recursive: true });
  copyFileSync(path.join(projectRoot, 'dist', 'bench', 'bare-server.js'), path.join(dist, 'bench', 'bare-server.js'));
  buildRoot = dist;
  const hash = createHash('sha256');
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const full = path.join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.js') || name.endsWith('.sql')) hash.update(name).update(readFileSync(full));
    }
  };
  walk(path.join(dist, 'src'));
  walk(path.join(dir, 'migrations'));
  return hash.digest('hex').slice(0, 16);
}

/** The `signet` command of the build being measured (the snapshot once `snapshotBuild` ran). */
export function signetMain(): string {
  return path.join(buildRoot, 'src', 'cli', 'main.js');
}

/** The node options `npm start` runs the server with (package.json), so the figures are those of `npm start`. */
export function startNodeOptions(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const words = (pkg.scripts['start'] ?? '').split(/\s+/);
  const from = words.indexOf('node') + 1;
  const out: string[] = [];
  for (const w of words.slice(from)) {
    if (!w.startsWith('--')) break;
    out.push(w);
  }
  return out;
}

export interface SignetOptions {
  id: string;
  label: string;
  databaseUrl?: string;
  /** PGlite data directory (and key-encryption key); required for both stores. */
  dataDir: string;
  tls?: TestTls;
  env?: Record<string, string>;
  dbPid?: number | null;
}

export async function startSignet(opts: SignetOptions): Promise<Target & { proc: Child }> {
  const main = signetMain();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SIGNET_HOST: '127.0.0.1',
    SIGNET_PORT: '0',
    SIGNET_DATA_DIR: opts.dataDir,
    // notary-server runs at level warn under anchor-up.sh: no per-update log lines on either side.
    SIGNET_LOG_LEVEL: 'warn',
    ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : { DATABASE_URL: '' }),
    ...(opts.tls ? { SIGNET_TLS_CERT: opts.tls.cert, SIGNET_TLS_KEY: opts.tls.key } : { SIGNET_TLS_CERT: '', SIGNET_TLS_KEY: '' }),
    ...opts.env,
  };
  const { proc, match } = await spawnReady(opts.id, process.execPath, [...startNodeOptions(), main, 'serve'], {
    env,
    ready: /^signet listening on (\S+)$/m,
  });
  return {
    id: opts.id,
    label: opts.label,
    kind: 'signet',
    store: opts.databaseUrl ? 'postgres' : 'pglite',
    url: match[1]!,
    pid: proc.pid,
    dbPid: opts.dbPid ?? null,
    proc,
    stop: proc.stop,
  };
}

export const anchorDir = process.env['BENCH_ANCHOR_DIR'] ?? path.join(sharedDir, 'anchor');

/**
 * The reference notary-server via anchor-up.sh (memory or postgres store, https). The bench
 * certificate is put in DIR first, so anchor-up.sh keeps it and every server uses the same one.
 */
export async function startNotaryServer(opts: { id: string; label: string; store: 'memory' | 'postgres'; tls: TestTls }): Promise<Target> {
  const dir = tempDir(`signet-bench-anchor-${opts.store}.`);
  for (const name of ['ca.crt', 'server.crt', 'server.key']) {
    copyFileSync(path.join(opts.tls.dir, name), path.join(dir, name));
  }
  const port = await freePortPair(10000);
  let serverPid = 0;
  const down = () => {
    // anchor-down.sh exits 1 when there was no Postgres to remove (its last test fails): not an error.
    spawnSync('bash', [path.join(anchorDir, 'anchor-down.sh'), dir], { stdio: 'ignore', timeout: 60_000 });
    if (serverPid && existsSync(`/proc/${serverPid}`)) {
      try {
        process.kill(serverPid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  };
  // Registered before starting: a half-started anchor (Postgres up, server not) is stopped too.
  const stop = onCleanup(`notary-server ${opts.store} (anchor-down.sh)`, down, down);
  const out = run('bash', [path.join(anchorDir, 'anchor-up.sh'), dir, opts.store, String(port)], { timeoutMs: 600_000 });
  const url = out.trim().split('\n').pop()!.trim();
  const pidLine = readFileSync(path.join(dir, 'pids'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('pid '));
  const pid = Number(pidLine?.split(' ')[1]);
  serverPid = pid;
  const client = new HttpClient(url, readFileSync(opts.tls.caCert));
  try {
    let healthy = false;
    for (let i = 0; i < 100 && !healthy; i++) {
      healthy = await client.request('GET', '/_notary_server/health').then(
        (r) => r.status === 200,
        () => false,
      );
      if (!healthy) await new Promise((r) => setTimeout(r, 200));
    }
    if (!healthy || !existsSync(`/proc/${pid}`)) {
      const log = existsSync(path.join(dir, 'server.log')) ? readFileSync(path.join(dir, 'server.log'), 'utf8') : '';
      throw new Error(`notary-server (${opts.store}) is not healthy at ${url}:\n${log.slice(-2000)}`);
    }
  } catch (e) {
    await stop();
    throw e;
  } finally {
    client.close();
  }
  const pgDir = existsSync(path.join(dir, 'pgdir')) ? readFileSync(path.join(dir, 'pgdir'), 'utf8').trim() : null;
  const dbPid = pgDir ? postmasterPid(path.join(pgDir, 'data')) : null;
  return { id: opts.id, label: opts.label, kind: 'notary-server', store: opts.store, url, pid, dbPid, stop };
}

/** A bare node:http(s) server answering fixed paths with fixed bytes from memory. */
export async function startBare(opts: { id: string; label: string; files: Record<string, Buffer>; tls?: TestTls }): Promise<Target> {
  const dir = tempDir('signet-bench-bare.');
  mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      ...(opts.tls ? { cert: opts.tls.cert, key: opts.tls.key } : {}),
      files: Object.fromEntries(Object.entries(opts.files).map(([p, b]) => [p, b.toString('base64')])),
    }),
  );
  const main = path.join(buildRoot, 'bench', 'bare-server.js');
  // With the node options Signet runs with, so that the comparison is of the code, not of node's settings.
  const { proc, match } = await spawnReady(opts.id, process.execPath, [...startNodeOptions(), main, config], { ready: /^bare listening on (\S+)$/m });
  return { id: opts.id, label: opts.label, kind: 'bare', store: 'none', url: match[1]!, pid: proc.pid, stop: proc.stop };
}
