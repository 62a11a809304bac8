/**
 * How the embedded store (PGlite, Postgres compiled to WebAssembly) is started: small Postgres
 * settings, a data directory made by initdb in a short-lived child process, and the WebAssembly
 * compiler settings, all chosen for memory. See docs/operations.md ("Memory of the embedded store").
 *
 * Where the memory went with PGlite's defaults (measured, one process, idle after start): 128 MB of
 * shared buffers (plus WAL buffers and lock tables sized for 100 connections) touched at start; the
 * optimising WebAssembly compiler's output and its per-thread malloc arenas (tens of MB that glibc
 * keeps after the compile); and, on the first start, the heap grown by initdb running in the same
 * process (about 500 MB more that never went back).
 */
import { spawn } from 'node:child_process';
import { readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import type { PGlite, PGliteOptions } from '@electric-sql/pglite';
import { WalSync, type NodeFsModule } from './pglite-durability.js';

/**
 * Postgres settings of the embedded store, on top of PGlite's own start parameters (single-user
 * mode, no parallel workers). One connection uses the store, so buffers and per-backend tables
 * are sized for a handful; the data a trust server keeps hot is small and the kernel's page cache
 * holds the rest of the files. Shared buffers are resident from the start (8 MB fewer cost 8 MB
 * less RSS at idle); evicting a page is cheap, since a page whose WAL is durable is written
 * without waiting for a sync (pglite-durability.ts): measured, 8 MB wrote as fast as 16.
 */
export const EMBEDDED_SETTINGS: Readonly<Record<string, string>> = {
  shared_buffers: '8MB',
  wal_buffers: '512kB',
  max_connections: '8',
  max_locks_per_transaction: '128',
  work_mem: '2MB',
  maintenance_work_mem: '16MB',
  temp_buffers: '1MB',
  max_prepared_transactions: '0',
  max_wal_size: '256MB',
  min_wal_size: '32MB',
};

/** PGlite's default start parameters (as of 0.5), which the settings above are added to. */
const PGLITE_START = [
  '--single',
  '-F',
  '-O',
  '-j',
  '-c',
  'search_path=public',
  '-c',
  'exit_on_error=false',
  '-c',
  'log_checkpoints=false',
  '-c',
  'max_worker_processes=0',
  '-c',
  'max_parallel_workers=0',
  '-c',
  'max_parallel_workers_per_gather=0',
  '-c',
  'io_method=sync',
  '-c',
  'max_parallel_maintenance_workers=0',
];

export function startParams(): string[] {
  return [...PGLITE_START, ...Object.entries(EMBEDDED_SETTINGS).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
}

let compilerSet = false;

/**
 * Compile Postgres' WebAssembly with the baseline compiler only. The optimising tier compiles the
 * hot functions again on background threads, and its output and the threads' malloc arenas stay
 * resident (about 40 MB here); the queries of a trust server are short and the baseline code
 * serves them nearly as fast. Must run before the module is compiled (the first PGlite.create).
 */
function useBaselineCompiler(): void {
  if (compilerSet) return;
  compilerSet = true;
  v8.setFlagsFromString('--liftoff-only');
}

export function embeddedOptions(): PGliteOptions {
  return { startParams: startParams() };
}

/** The embedded database and the WAL sync that makes its commits durable. */
export interface EmbeddedStore {
  db: PGlite;
  wal: WalSync;
}

/** Open an existing embedded data directory (made by `initialiseDataDir`). */
export async function openEmbedded(dir: string): Promise<EmbeddedStore> {
  useBaselineCompiler();
  const [{ PGlite }, { NodeFS }] = await Promise.all([import('@electric-sql/pglite'), import('@electric-sql/pglite/nodefs')]);
  const root = path.resolve(dir);
  const wal = new WalSync(root);
  // PGlite's NodeFS mounts the directory in a preRun step; ours runs after it, before Postgres starts.
  class DurableNodeFS extends NodeFS {
    override async init(pg: PGlite, opts: Parameters<InstanceType<typeof NodeFS>['init']>[1]) {
      const { emscriptenOpts } = await super.init(pg, opts);
      const install = (mod: { NODEFS: NodeFsModule }) => wal.install(mod.NODEFS);
      return { emscriptenOpts: { ...emscriptenOpts, preRun: [...(emscriptenOpts.preRun ?? []), install] } };
    }
  }
  const db = await PGlite.create({ ...embeddedOptions(), dataDir: root, fs: new DurableNodeFS(root) });
  return { db, wal };
}

const INIT_PREFIX = '.pgdata-init-';

/**
 * Make a new data directory in `dir` (empty) with initdb, in a child process: initdb grows the
 * WebAssembly heap by hundreds of MB, which a process never gives back; the child's exit does.
 * The child writes a sibling directory that is renamed over the empty `dir` once complete, so an
 * interrupted first start leaves no half-made database behind.
 */
export async function initialiseDataDir(dir: string): Promise<void> {
  const parent = path.dirname(dir);
  for (const name of readdirSync(parent)) {
    if (name.startsWith(INIT_PREFIX)) rmSync(path.join(parent, name), { recursive: true, force: true });
  }
  const empty = readdirSync(dir).length === 0;
  const target = empty ? path.join(parent, `${INIT_PREFIX}${process.pid}`) : dir;
  const script = fileURLToPath(new URL('./pglite-initdb.js', import.meta.url));
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [script, target], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`initdb of the embedded database failed (${code ?? signal}): ${stderr.trim()}`));
    });
  });
  if (empty) renameSync(target, dir);
}
