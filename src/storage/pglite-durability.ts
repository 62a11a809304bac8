/**
 * Durability of the embedded store. PGlite's Postgres writes its files through Emscripten's
 * NODEFS, which hands every write to the kernel at once (fs.writeSync) but never reaches the disk:
 * Emscripten's fdatasync is a no-op, NODEFS has no fsync, and PGlite starts Postgres with fsync
 * off. A committed transaction therefore survived `kill -9` (the kernel has the bytes) but not a
 * power loss. `relaxedDurability` does not change that: it only lets PGlite skip waiting for its
 * own file-system sync after a query, which on NODEFS does nothing.
 *
 * WalSync restores what Postgres' fsync would do, watching the writes at the file-system layer:
 * - WAL writes (pg_wal/) are remembered; `flush()` fdatasyncs the WAL files written since the last
 *   flush (on libuv's thread pool, so Postgres keeps running other work meanwhile) and fsyncs
 *   pg_wal/ when a segment was created or renamed. Every commit that waits for the same flush is
 *   made durable by it: group commit. The pool (pglite-pool.ts) answers no statement that ended a
 *   transaction before the WAL it wrote is durable.
 * - A data file is written only once the WAL before it is durable (write-ahead, as Postgres does
 *   with XLogFlush before writing out a buffer): pending WAL is synced first, synchronously. A
 *   relation page says in its header (pd_lsn) how far the WAL must be durable, and WAL pages say
 *   where they are (xlp_pageaddr): a page evicted long after it was changed, whose WAL a commit
 *   has synced since, is written without waiting, as Postgres writes it without a flush.
 * - Before pg_control is rewritten (a checkpoint, which lets old WAL go), every data file and
 *   directory written since the last checkpoint is fsynced; pg_control itself right after.
 */
import { closeSync, fdatasyncSync, fsyncSync, openSync, promises as fsp } from 'node:fs';
import path from 'node:path';

/** The parts of Emscripten's NODEFS and its nodes that WalSync wraps. */
interface FsNode {
  name: string;
  parent: FsNode;
  mount: { opts: { root?: string } };
}
interface FsStream {
  node: FsNode;
  nfd?: number;
}
type Write = (stream: FsStream, buffer: Uint8Array, offset: number, length: number, position?: number) => number;
type NodeOp = (...args: unknown[]) => unknown;
export interface NodeFsModule {
  realPath(node: FsNode): string;
  stream_ops: { write: Write };
  node_ops: Record<string, NodeOp>;
}

type Kind = 'wal' | 'control' | 'data';

/** Postgres' page size (BLCKSZ and XLOG_BLCKSZ as PGlite builds it). */
const PAGE = 8192;
/** The name of a relation's file: a filenode, a fork suffix, a segment number. */
const RELATION_FILE = /^\d+(_fsm|_vm|_init)?(\.\d+)?$/;

export class WalSync {
  private readonly dirtyWal = new Set<string>();
  private readonly inFlightWal = new Set<string>();
  private readonly dirtyData = new Set<string>();
  private readonly dirtyDirs = new Set<string>();
  private walDirDirty = false;
  private walSeq = 0;
  private syncedSeq = 0;
  private inFlight: Promise<void> | null = null;
  private failure: Error | null = null;
  private readonly kinds = new WeakMap<FsNode, { kind: Kind; path: string; pages: boolean }>();
  /**
   * WAL positions: every WAL byte before `writtenLsn` has been written (it is the start of the
   * last page of the latest WAL write, which may be partly filled and is written again later),
   * and every one before `durableLsn` is on disk.
   */
  private writtenLsn = 0;
  private durableLsn = 0;
  /** Flushes done and the WAL writes they covered, for tests and metrics. */
  readonly stats = { flushes: 0, syncWrites: 0, vanished: 0, pagesWithoutWait: 0 };

  constructor(private readonly root: string) {}

  /** Wrap NODEFS's write and directory operations (in PGlite's preRun, before Postgres starts). */
  install(nodefs: NodeFsModule): void {
    const write = nodefs.stream_ops.write;
    nodefs.stream_ops.write = (stream, buffer, offset, length, position) => {
      const { kind, path: file, pages } = this.classify(nodefs, stream.node);
      if (kind === 'wal') {
        const n = write(stream, buffer, offset, length, position);
        this.dirtyWal.add(file);
        this.walSeq++;
        const start = walPagesStart(buffer, offset, length, position);
        if (start !== null) this.writtenLsn = Math.max(this.writtenLsn, start + length - PAGE);
        return n;
      }
      // Write-ahead: no data page reaches the disk before the WAL that describes it. A page of
      // zeros (a relation growing) describes nothing, and a relation page whose WAL is already
      // durable has nothing to wait for.
      if ((this.dirtyWal.size > 0 || this.inFlightWal.size > 0) && !allZero(buffer, offset, length)) {
        const lsn = pages ? highestPageLsn(buffer, offset, length) : null;
        if (lsn !== null && lsn <= this.durableLsn) this.stats.pagesWithoutWait++;
        else this.syncWalNow();
      }
      if (kind === 'control') this.syncDataNow();
      const n = write(stream, buffer, offset, length, position);
      if (kind === 'control' && stream.nfd !== undefined) fsyncSync(stream.nfd);
      else this.dirtyData.add(file);
      return n;
    };
    const dirChanged = (dir: string) => {
      if (dir === path.join(this.root, 'pg_wal')) {
        this.walDirDirty = true;
        this.walSeq++;
      } else this.dirtyDirs.add(dir);
    };
    // mknod, unlink, rmdir and symlink get (parent directory, name, …).
    for (const op of ['mknod', 'unlink', 'rmdir', 'symlink']) {
      const original = nodefs.node_ops[op];
      if (!original) continue;
      nodefs.node_ops[op] = (...args: unknown[]) => {
        const result = original(...args);
        dirChanged(nodefs.realPath(args[0] as FsNode));
        return result;
      };
    }
    // rename gets (the node, its new directory, its new name): a WAL segment is made as
    // xlogtemp.N and renamed, old segments are renamed for reuse. Both directories change, and
    // the node, which keeps being used under its new name, is classified again.
    const rename = nodefs.node_ops['rename'];
    if (rename) {
      nodefs.node_ops['rename'] = (...args: unknown[]) => {
        const node = args[0] as FsNode;
        const from = nodefs.realPath(node.parent);
        const before = nodefs.realPath(node);
        const result = rename(...args);
        this.kinds.delete(node);
        // Writes not yet synced follow the file to its new name.
        const after = path.join(nodefs.realPath(args[1] as FsNode), String(args[2]));
        for (const dirty of [this.dirtyWal, this.dirtyData]) {
          if (dirty.delete(before)) dirty.add(after);
        }
        dirChanged(from);
        dirChanged(nodefs.realPath(args[1] as FsNode));
        return result;
      };
    }
  }

  private classify(nodefs: NodeFsModule, node: FsNode): { kind: Kind; path: string; pages: boolean } {
    let known = this.kinds.get(node);
    if (!known) {
      const file = nodefs.realPath(node);
      const rel = path.relative(this.root, file);
      const kind: Kind = rel.startsWith(`pg_wal${path.sep}`) ? 'wal' : rel === path.join('global', 'pg_control') ? 'control' : 'data';
      const parts = rel.split(path.sep);
      // base/<database>/<relation> and global/<relation>: pages with a standard header.
      const pages =
        kind === 'data' &&
        RELATION_FILE.test(parts[parts.length - 1]!) &&
        ((parts[0] === 'base' && parts.length === 3) || (parts[0] === 'global' && parts.length === 2));
      known = { kind, path: file, pages };
      this.kinds.set(node, known);
    }
    return known;
  }

  /** True while some WAL write is not yet on disk. */
  pending(): boolean {
    return this.walSeq > this.syncedSeq;
  }

  /**
   * Resolve once every WAL write made before the call is on disk. Callers arriving while a
   * flush runs share the next one.
   */
  async flush(): Promise<void> {
    const target = this.walSeq;
    while (this.syncedSeq < target) {
      if (this.failure) throw this.failure;
      this.inFlight ??= this.flushOnce().finally(() => (this.inFlight = null));
      await this.inFlight;
    }
    if (this.failure) throw this.failure;
  }

  private async flushOnce(): Promise<void> {
    const seq = this.walSeq;
    const lsn = this.writtenLsn;
    const files = [...this.dirtyWal];
    this.dirtyWal.clear();
    for (const f of files) this.inFlightWal.add(f);
    const dir = this.walDirDirty;
    this.walDirDirty = false;
    try {
      const found = await Promise.all(files.map((f) => syncFile(f, true)));
      this.stats.vanished += found.filter((f) => !f).length;
      if (dir) await syncFile(path.join(this.root, 'pg_wal'), false);
      this.stats.flushes++;
      this.syncedSeq = Math.max(this.syncedSeq, seq);
      this.durableLsn = Math.max(this.durableLsn, lsn);
    } catch (e) {
      // A failed fsync may have dropped the dirty pages: nothing written since can be trusted.
      this.failure = new Error(`the embedded store could not sync its WAL to disk: ${(e as Error).message}`);
      throw this.failure;
    } finally {
      for (const f of files) this.inFlightWal.delete(f);
    }
  }

  /** Sync every unsynced WAL file now, on this thread (before a data write). */
  private syncWalNow(): void {
    const seq = this.walSeq;
    const lsn = this.writtenLsn;
    const files = new Set([...this.dirtyWal, ...this.inFlightWal]);
    this.dirtyWal.clear();
    for (const f of files) if (!syncFileNow(f, true)) this.stats.vanished++;
    if (this.walDirDirty) syncFileNow(path.join(this.root, 'pg_wal'), false);
    this.walDirDirty = false;
    this.stats.syncWrites++;
    this.syncedSeq = Math.max(this.syncedSeq, seq);
    this.durableLsn = Math.max(this.durableLsn, lsn);
  }

  /** Sync every data file and directory written since the last checkpoint (before pg_control changes). */
  private syncDataNow(): void {
    for (const f of this.dirtyData) syncFileNow(f, false);
    for (const d of this.dirtyDirs) syncFileNow(d, false);
    this.dirtyData.clear();
    this.dirtyDirs.clear();
  }
}

/** A 64-bit little-endian position (an LSN) read as a number: exact below 2^53 bytes of WAL. */
function readLsn(buffer: Uint8Array, at: number): number {
  const view = new DataView(buffer.buffer, buffer.byteOffset + at, 8);
  return view.getUint32(4, true) * 2 ** 32 + view.getUint32(0, true);
}

/**
 * The WAL position of a write of whole WAL pages: the first page's xlp_pageaddr (its header's
 * bytes 8–15). Null for anything else (a segment being zero-filled, a write Postgres does not
 * make), which then advances nothing.
 */
function walPagesStart(buffer: Uint8Array, offset: number, length: number, position: number | undefined): number | null {
  if (position === undefined || position % PAGE !== 0 || length < PAGE || length % PAGE !== 0) return null;
  const at = readLsn(buffer, offset + 8);
  // The page's address within its segment is its place in the file (segments are 2^n MB).
  if (at === 0 || at % PAGE !== 0 || at < position || (at - position) % 2 ** 20 !== 0) return null;
  return at;
}

/** The highest pd_lsn (each page header's first 8 bytes: xlogid, xrecoff) of a write of whole pages; else null. */
function highestPageLsn(buffer: Uint8Array, offset: number, length: number): number | null {
  if (length < PAGE || length % PAGE !== 0) return null;
  let highest = 0;
  for (let at = offset; at < offset + length; at += PAGE) {
    const view = new DataView(buffer.buffer, buffer.byteOffset + at, 8);
    highest = Math.max(highest, view.getUint32(0, true) * 2 ** 32 + view.getUint32(4, true));
  }
  return highest;
}

function allZero(buffer: Uint8Array, offset: number, length: number): boolean {
  for (let i = offset, end = offset + length; i < end; i++) if (buffer[i] !== 0) return false;
  return true;
}

const gone = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';

/** False when the file is gone (removed since it was written: a dropped relation, a WAL segment removed at a checkpoint). */
async function syncFile(file: string, dataOnly: boolean): Promise<boolean> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, 'r');
  } catch (e) {
    if (gone(e)) return false;
    throw e;
  }
  try {
    await (dataOnly ? handle.datasync() : handle.sync());
    return true;
  } finally {
    await handle.close();
  }
}

function syncFileNow(file: string, dataOnly: boolean): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    if (gone(e)) return false;
    throw e;
  }
  try {
    (dataOnly ? fdatasyncSync : fsyncSync)(fd);
    return true;
  } finally {
    closeSync(fd);
  }
}
