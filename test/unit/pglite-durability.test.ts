/**
 * WalSync, the embedded store's durability layer, against a stand-in for Emscripten's NODEFS over
 * real files: which writes wait for which syncs, and that commits share a flush.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { WalSync, type NodeFsModule } from '../../src/storage/pglite-durability.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'signet-walsync-'));
mkdirSync(path.join(root, 'pg_wal'));
mkdirSync(path.join(root, 'global'));
mkdirSync(path.join(root, 'base'));
after(() => rmSync(root, { recursive: true, force: true }));

interface Node {
  name: string;
  parent: Node;
  mount: { opts: { root?: string } };
  file?: string;
}

/** A NODEFS look-alike: a node per path, writes go straight to the file (as NODEFS's writeSync does). */
function fakeNodeFs() {
  const written: string[] = [];
  const nodefs: NodeFsModule & { node(rel: string): Node; dir(rel: string): Node } = {
    realPath: (node) => (node as Node).file ?? root,
    stream_ops: {
      write: (stream, buffer, offset, length, position) => {
        const file = (stream.node as Node).file!;
        written.push(path.relative(root, file));
        const fd = openSync(file, 'a');
        try {
          return writeSync(fd, buffer, offset, length, position);
        } finally {
          closeSync(fd);
        }
      },
    },
    node_ops: {
      mknod: () => ({}),
      // As NODEFS: (node, new directory, new name); the node lives on under its new name.
      rename: (...args: unknown[]) => {
        const [node, dir, name] = args as [Node, Node, string];
        const to = path.join(dir.file!, name);
        renameSync(node.file!, to);
        node.file = to;
        node.name = name;
      },
    },
    node: (rel) => {
      const dir = { name: path.dirname(rel), file: path.join(root, path.dirname(rel)) } as Node;
      return { name: path.basename(rel), parent: dir, mount: { opts: { root } }, file: path.join(root, rel) };
    },
    dir: (rel: string): Node => ({ name: rel, file: path.join(root, rel) }) as Node,
  };
  return { nodefs, written };
}

test('a WAL write is pending until flushed; concurrent flushes share one sync', async () => {
  const sync = new WalSync(root);
  const { nodefs } = fakeNodeFs();
  sync.install(nodefs);
  const wal = { node: nodefs.node('pg_wal/000000010000000000000001') };
  assert.equal(sync.pending(), false);
  nodefs.stream_ops.write(wal, Buffer.from('commit 1'), 0, 8);
  assert.equal(sync.pending(), true);
  const first = sync.flush();
  // Written while the first flush runs: a later flush covers it, and both waiters share it.
  nodefs.stream_ops.write(wal, Buffer.from('commit 2'), 0, 8);
  const second = sync.flush();
  const third = sync.flush();
  await Promise.all([first, second, third]);
  assert.equal(sync.pending(), false);
  assert.equal(sync.stats.flushes, 2, 'the second and third commit shared one flush');
  await sync.flush();
  assert.equal(sync.stats.flushes, 2, 'nothing pending: no sync');
});

test('a data page waits for the WAL before it; a page of zeros does not', () => {
  const sync = new WalSync(root);
  const { nodefs } = fakeNodeFs();
  sync.install(nodefs);
  const wal = { node: nodefs.node('pg_wal/000000010000000000000002') };
  const data = { node: nodefs.node('base/16384') };
  nodefs.stream_ops.write(wal, Buffer.from('insert'), 0, 6);
  nodefs.stream_ops.write(data, Buffer.alloc(8192), 0, 8192);
  assert.equal(sync.stats.syncWrites, 0, 'a relation growing by an empty page waits for nothing');
  assert.equal(sync.pending(), true);
  const page = Buffer.alloc(8192);
  page[0] = 1;
  nodefs.stream_ops.write(data, page, 0, 8192);
  assert.equal(sync.stats.syncWrites, 1, 'the WAL was synced before the page was written');
  assert.equal(sync.pending(), false);
});

test('pg_control is written only after the WAL and every data file written since the last checkpoint', () => {
  const sync = new WalSync(root);
  const { nodefs, written } = fakeNodeFs();
  sync.install(nodefs);
  const wal = { node: nodefs.node('pg_wal/000000010000000000000003') };
  const control = { node: nodefs.node('global/pg_control'), nfd: openSync(path.join(root, 'global', 'pg_control'), 'a') };
  nodefs.stream_ops.write(wal, Buffer.from('checkpoint'), 0, 10);
  nodefs.stream_ops.write(control, Buffer.from('control'), 0, 7);
  assert.deepEqual(written, ['pg_wal/000000010000000000000003', 'global/pg_control']);
  assert.equal(sync.pending(), false, 'the checkpoint record was synced first');
});

test('a new WAL segment makes the next flush sync pg_wal/ too', async () => {
  const sync = new WalSync(root);
  const { nodefs } = fakeNodeFs();
  sync.install(nodefs);
  nodefs.node_ops['mknod']!({ name: 'pg_wal', file: path.join(root, 'pg_wal') }, 'xlogtemp.1', 0o600, 0);
  assert.equal(sync.pending(), true, 'a segment created is not durable until its directory is synced');
  await sync.flush();
  assert.equal(sync.pending(), false);
});

test('a WAL segment made under a temporary name and renamed is synced under its new name', async () => {
  const sync = new WalSync(root);
  const { nodefs } = fakeNodeFs();
  sync.install(nodefs);
  const segment = { node: nodefs.node('pg_wal/xlogtemp.42') };
  nodefs.stream_ops.write(segment, Buffer.alloc(16), 0, 16);
  nodefs.node_ops['rename']!(segment.node, nodefs.dir('pg_wal'), '000000010000000000000004');
  nodefs.stream_ops.write(segment, Buffer.from('commit'), 0, 6);
  await sync.flush();
  assert.equal(sync.pending(), false);
  assert.equal(sync.stats.vanished, 0, 'every WAL write was synced where the file now is');
});

/** `count` WAL pages whose first header says they start at WAL position `at`. */
function walPages(at: number, count: number): Buffer {
  const b = Buffer.alloc(8192 * count);
  for (let i = 0; i < count; i++) {
    b.writeUInt16LE(0xd116, i * 8192);
    b.writeBigUInt64LE(BigInt(at + i * 8192), i * 8192 + 8);
    b[i * 8192 + 100] = 1;
  }
  return b;
}

/** A relation page whose header says its WAL reaches `lsn` (pd_lsn: xlogid, xrecoff). */
function relationPage(lsn: number): Buffer {
  const b = Buffer.alloc(8192);
  b.writeUInt32LE(Math.floor(lsn / 2 ** 32), 0);
  b.writeUInt32LE(lsn % 2 ** 32, 4);
  b[200] = 1;
  return b;
}

test('a relation page whose WAL is already durable is written without a sync; a newer one, or another file, waits', async () => {
  const sync = new WalSync(root);
  const { nodefs } = fakeNodeFs();
  sync.install(nodefs);
  const segmentStart = 6 * 16 * 1024 * 1024;
  const wal = { node: nodefs.node('pg_wal/000000010000000000000006') };
  nodefs.stream_ops.write(wal, walPages(segmentStart, 2), 0, 16384, 0);
  await sync.flush();
  // More WAL, not yet synced: the first page again (partly filled before) and the next.
  nodefs.stream_ops.write(wal, walPages(segmentStart + 8192, 2), 0, 16384, 8192);
  assert.equal(sync.pending(), true);

  mkdirSync(path.join(root, 'base', '5'), { recursive: true });
  const relation = { node: nodefs.node('base/5/16390') };
  nodefs.stream_ops.write(relation, relationPage(segmentStart + 4000), 0, 8192, 0);
  assert.equal(sync.stats.syncWrites, 0, 'its WAL ends in a page synced whole before');
  assert.equal(sync.stats.pagesWithoutWait, 1);
  assert.equal(sync.pending(), true);

  // Its WAL ends in the page that was partly filled when synced: it must wait.
  nodefs.stream_ops.write(relation, relationPage(segmentStart + 8192 + 50), 0, 8192, 8192);
  assert.equal(sync.stats.syncWrites, 1);
  assert.equal(sync.pending(), false);

  // Not a relation page (the commit log has no page LSN): the conservative rule.
  nodefs.stream_ops.write(wal, walPages(segmentStart + 16384, 1), 0, 8192, 16384);
  mkdirSync(path.join(root, 'pg_xact'), { recursive: true });
  const clog = { node: nodefs.node('pg_xact/0000') };
  nodefs.stream_ops.write(clog, relationPage(segmentStart), 0, 8192, 0);
  assert.equal(sync.stats.syncWrites, 2);
});

test('WAL writes that are not whole pages at their own address move the durable position nowhere', async () => {
  const sync = new WalSync(root);
  const { nodefs } = fakeNodeFs();
  sync.install(nodefs);
  const wal = { node: nodefs.node('pg_wal/000000010000000000000007') };
  // An address that does not match the place in the file, then a part of a page.
  nodefs.stream_ops.write(wal, walPages(7 * 16 * 1024 * 1024 + 8192, 1), 0, 8192, 100);
  nodefs.stream_ops.write(wal, walPages(7 * 16 * 1024 * 1024, 1), 0, 4096, 0);
  await sync.flush();
  nodefs.stream_ops.write(wal, Buffer.from('more'), 0, 4);
  mkdirSync(path.join(root, 'base', '5'), { recursive: true });
  nodefs.stream_ops.write({ node: nodefs.node('base/5/16391') }, relationPage(1), 0, 8192, 0);
  assert.equal(sync.stats.pagesWithoutWait, 0);
  assert.equal(sync.stats.syncWrites, 1);
});
