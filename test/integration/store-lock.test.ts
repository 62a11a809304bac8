/**
 * The embedded store belongs to one process at a time: while a server owns `./data`, admin
 * commands and a second server are refused with a message naming the owner, and nothing they
 * would have changed is changed. A lock left by a killed process is stale and taken over.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import request from 'supertest';
import { createRepository } from '../support/client.js';
import { runSignet } from '../support/cli.js';
import { spawnServer, type ServerProcess } from '../support/server.js';
import { LOCK_FILE } from '../../src/storage/store-lock.js';
import { openDatabase } from '../../src/storage/database.js';

const G = 'registry.example.com/lock/app';

let dataDir: string;
let env: Record<string, string>;
let server: ServerProcess | null = null;

const signet = (...args: string[]) => runSignet(args, { ...env, DATABASE_URL: '' });

before(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'signet-lock-'));
  env = { SIGNET_DATA_DIR: dataDir, SIGNET_EXPIRY_SCAN_INTERVAL: '0' };
  server = await spawnServer({ ...env, DATABASE_URL: '' });
  await createRepository(server.url, G, { serverSnapshot: true });
});

after(async () => {
  await server?.stop('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

test('the running server holds the lock, with its PID and URL', () => {
  const lock = JSON.parse(readFileSync(path.join(dataDir, LOCK_FILE), 'utf8')) as { pid: number; url: string };
  assert.equal(lock.pid, server!.child.pid);
  assert.equal(lock.url, server!.url);
});

test('repos delete while the server runs is refused, naming the server; the repository stays', async () => {
  const r = await signet('repos', 'delete', G, '--yes');
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`in use by a Signet server listening on ${server!.url.replace(/[.]/g, '\\.')}, PID ${server!.child.pid}`));
  assert.doesNotMatch(r.stdout, /deleted/);
  assert.equal((await request(server!.url).get(`/v2/${G}/_trust/tuf/root.json`)).status, 200);
});

test('every command that opens the store is refused alike', async () => {
  for (const args of [['repos', 'list'], ['keys', 'rotate', G, 'timestamp'], ['check'], ['migrate'], ['audit']]) {
    const r = await signet(...args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /in use by a Signet server/, args.join(' '));
  }
  const keys = await request(server!.url).get(`/v2/${G}/_trust/tuf/timestamp.key`);
  assert.equal(keys.status, 200);
});

test('a second server on the same data directory exits at once with the reason', async () => {
  await assert.rejects(spawnServer({ ...env, DATABASE_URL: '' }), /in use by a Signet server listening on/);
  assert.equal((await request(server!.url).get('/_notary_server/health')).status, 200);
});

test('the same process cannot open the store twice', async () => {
  const other = mkdtempSync(path.join(os.tmpdir(), 'signet-lock-self-'));
  try {
    const db = await openDatabase({ dataDir: other });
    await assert.rejects(openDatabase({ dataDir: other }), /in use by another Signet process/);
    await db.close();
    assert.equal(existsSync(path.join(other, LOCK_FILE)), false, 'close releases the lock');
    const again = await openDatabase({ dataDir: other });
    await again.close();
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test('after the server is killed (-9) its lock is stale: commands work, and a dead PID in the file is taken over', async () => {
  await server!.stop('SIGKILL');
  server = null;
  assert.ok(existsSync(path.join(dataDir, LOCK_FILE)), 'kill -9 leaves the file behind');
  const list = await signet('repos', 'list', '--json');
  assert.equal(list.code, 0, list.stderr);
  assert.ok((JSON.parse(list.stdout) as { gun: string }[]).some((r) => r.gun === G));
  // A PID that is not running (or is another process now) does not hold the store either.
  writeFileSync(path.join(dataDir, LOCK_FILE), JSON.stringify({ pid: 2 ** 22 + 1, startTime: '1', command: 'serve', since: 'then' }));
  const deleted = await signet('repos', 'delete', G, '--yes');
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal(existsSync(path.join(dataDir, LOCK_FILE)), false, 'released on exit');
});
